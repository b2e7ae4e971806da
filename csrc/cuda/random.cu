/*
 * random.cu -- the GPU twins of csrc/ops/random.c: the same Philox4x32-10
 * stream and the same float mappings (csrc/philox.h, shared with the CPU), so a seed gives the same
 * numbers on both devices.  The CUDA generator's seed and offset live in
 * libslayer (sl_rng_seed / sl_rng_reserve with SL_CUDA): reserving the
 * blocks on the host keeps launches asynchronous and the sequence
 * independent of the grid.
 *
 *   element i of a call = word i % 4 of block (offset + i / 4)
 *   uniform:   lo + (hi - lo) * u01(w)
 *   normal:    mean + std * box_muller(words)[i % 4]
 *   bernoulli: u01(w) < p ? 1 : 0
 * The CPU ops check the output (contiguous) and the parameters before they
 * dispatch here.
 */
#include "common.cuh"
#include "../philox.h"

#include <math.h>

enum { DRAW_UNIFORM, DRAW_NORMAL, DRAW_BERNOULLI };

/* one thread per Philox block: four consecutive elements */
template <int KIND>
__global__ void draw_kernel(float *o, int64_t n, uint64_t key, uint64_t base, float p0, float p1)
{
    int64_t blocks = (n + 3) / 4;
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < blocks; j += (int64_t)gridDim.x * blockDim.x) {
        uint32_t w[4];
        sl_philox(key, base + (uint64_t)j, w);
        float v[4];
        if (KIND == DRAW_NORMAL) {
            float z[4];
            sl_box_muller(w, z);
            for (int l = 0; l < 4; l++) v[l] = p0 + p1 * z[l];
        } else if (KIND == DRAW_UNIFORM) {
            for (int l = 0; l < 4; l++) v[l] = p0 + (p1 - p0) * sl_u01(w[l]);
        } else {
            for (int l = 0; l < 4; l++) v[l] = sl_u01(w[l]) < p0 ? 1.0f : 0.0f;
        }
        for (int l = 0; l < 4 && 4 * j + l < n; l++) o[4 * j + l] = v[l];
    }
}

template <int KIND>
static int draw(const char *op, sl_tensor *out, float p0, float p1)
{
    int64_t n = out->numel;
    uint64_t key = sl_rng_seed(SL_CUDA), base = sl_rng_reserve(SL_CUDA, n);
    if (n == 0) return 0;
    draw_kernel<KIND><<<slc::grid_for((n + 3) / 4), slc::THREADS, 0, slc::stream()>>>(out->data, n, key, base, p0, p1);
    SLC_LAUNCHED(op);
    return 0;
}

SL_CUDA_API int sl_rand_uniform_cuda(sl_tensor *out, float lo, float hi)
{
    return draw<DRAW_UNIFORM>("rand", out, lo, hi);
}

SL_CUDA_API int sl_rand_normal_cuda(sl_tensor *out, float mean, float std)
{
    return draw<DRAW_NORMAL>("randn", out, mean, std);
}

SL_CUDA_API int sl_rand_bernoulli_cuda(sl_tensor *out, float p)
{
    return draw<DRAW_BERNOULLI>("bernoulli", out, p, 0.0f);
}
