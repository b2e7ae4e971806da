/*
 * loss.cu -- the GPU twins of csrc/ops/loss.c: the numSpikes error's
 * element-wise steps, fused.
 *
 * One grid-stride pass over the output's elements; the thread of a row's
 * first bin also sums the row's window (sequentially, in double, as the CPU)
 * and computes the row's correction c.  Built with --fmad=false, so every
 * step rounds as on the CPU.  The CPU ops check the operands (contiguous,
 * one c per row, the window inside the bins) before they dispatch here.
 */
#include "common.cuh"

namespace {

__global__ void prep_kernel(float *__restrict__ x, float *__restrict__ c, const float *__restrict__ out,
                            const float *__restrict__ desired, int64_t T, int64_t lo, int64_t hi, float Ts,
                            float countTrue, float countFalse, float len, float scale, int64_t n)
{
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / T, t = e % T;
        float o = out[e];
        float m = t >= lo && t < hi ? 1.0f : 0.0f;
        x[e] = o - o * m;
        if (t == 0) {
            const float *row = out + r * T;
            double s = 0;
            for (int64_t k = lo; k < hi; k++) s += row[k];
            float actual = (float)s * Ts;
            float isTrue = desired[r] == 1.0f ? 1.0f : 0.0f;
            float d = isTrue * countTrue + (1.0f - isTrue) * countFalse;
            c[r] = (actual - d) / len * scale;
        }
    }
}

__global__ void window_add_kernel(float *__restrict__ e, const float *__restrict__ p, const float *__restrict__ c,
                                  int64_t T, int64_t lo, int64_t hi, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = i % T;
        float m = t >= lo && t < hi ? 1.0f : 0.0f;
        e[i] = p[i] + c[i / T] * m;
    }
}

} /* namespace */

SL_CUDA_API int sl_numspikes_prep_cuda(sl_tensor *x, sl_tensor *c, const sl_tensor *out, const sl_tensor *desired,
                                       int64_t lo, int64_t hi, float Ts, float countTrue, float countFalse, float len,
                                       float scale)
{
    int64_t T = out->shape[out->ndim - 1], n = out->numel;
    if (n == 0) return 0;
    prep_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(x->data, c->data, out->data, desired->data, T, lo,
                                                                      hi, Ts, countTrue, countFalse, len, scale, n);
    SLC_LAUNCHED("numSpikes");
    return 0;
}

SL_CUDA_API int sl_window_add_cuda(sl_tensor *e, const sl_tensor *p, const sl_tensor *c, int64_t lo, int64_t hi)
{
    int64_t T = p->shape[p->ndim - 1], n = p->numel;
    if (n == 0) return 0;
    window_add_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(e->data, p->data, c->data, T, lo, hi, n);
    SLC_LAUNCHED("numSpikes");
    return 0;
}
