/*
 * loss.cu -- the GPU twins of csrc/ops/loss.c: the numSpikes error's
 * element-wise steps, fused, and E = 1/2 * sum(e^2) * Ts with its gradient.
 *
 * One grid-stride pass over the output's elements; the thread of a row's
 * first bin also sums the row's window (sequentially, in double, as the CPU)
 * and computes the row's correction c.  Built with --fmad=false, so every
 * step rounds as on the CPU.  half_sq_sum sums the squares in the order
 * cuda/reduce.cu's sum over a whole tensor uses (one thread up to 64
 * values, one block of RBLOCK threads below 65,536, else blocks of 16,384
 * values and their partial sums in order), so E is bit-identical to
 * sum(e:square()) * 0.5 * Ts on the GPU.  The CPU ops check the operands (contiguous,
 * one c per row, the window inside the bins) before they dispatch here.
 */
#include "common.cuh"

namespace {

__global__ void prep_kernel(float *__restrict__ x, float *__restrict__ c, const float *__restrict__ out,
                            const float *__restrict__ desired, int64_t T, int64_t lo, int64_t hi, float Ts,
                            double countTrue, double countFalse, double len, double scale, int64_t n)
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
            double d = desired[r] == 1.0f ? countTrue : countFalse;
            c[r] = (float)(((double)actual - d) / len * scale);
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

const int RBLOCK = 256;                /* as cuda/reduce.cu's reductions */
const int64_t SERIAL_MAX = 64, BLOCK_MAX = 65535, CHUNK = 16384;

__device__ inline float squared(float v) { return v * v; }

/* n <= SERIAL_MAX: one thread; else one block (grid 1), or with part != NULL
   block b sums values [b * CHUNK, (b + 1) * CHUNK) into part[b] */
__global__ void half_sq_kernel(float *out, double *part, const float *__restrict__ e, int64_t n, float scale)
{
    __shared__ double sh[32];
    double s = 0;
    if (n <= SERIAL_MAX) {
        if (threadIdx.x == 0) {
            for (int64_t k = 0; k < n; k++) s += squared(e[k]);
            out[0] = ((float)s * 0.5f) * scale;
        }
        return;
    }
    int64_t k0 = part ? (int64_t)blockIdx.x * CHUNK : 0, k1 = part ? (k0 + CHUNK < n ? k0 + CHUNK : n) : n;
    for (int64_t k = k0 + threadIdx.x; k < k1; k += blockDim.x) s += squared(e[k]);
    s = slc::block_sum(s, sh);
    if (threadIdx.x == 0) {
        if (part) part[blockIdx.x] = s;
        else out[0] = ((float)s * 0.5f) * scale;
    }
}

__global__ void half_sq_parts_kernel(float *out, const double *part, int64_t nparts, float scale)
{
    double s = 0;
    for (int64_t c = 0; c < nparts; c++) s += part[c];
    out[0] = ((float)s * 0.5f) * scale;
}

__global__ void half_sq_backward_kernel(float *__restrict__ ge, const float *__restrict__ g,
                                        const float *__restrict__ e, float scale, int64_t n)
{
    float h = (g[0] * scale) * 0.5f;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        ge[i] = (h * e[i]) * 2.0f;
}

} /* namespace */

SL_CUDA_API int sl_numspikes_prep_cuda(sl_tensor *x, sl_tensor *c, const sl_tensor *out, const sl_tensor *desired,
                                       int64_t lo, int64_t hi, float Ts, double countTrue, double countFalse, double len,
                                       double scale)
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

SL_CUDA_API int sl_half_sq_sum_cuda(sl_tensor *out, const sl_tensor *e, float scale)
{
    int64_t n = e->numel;
    cudaStream_t st = slc::stream();
    if (n <= BLOCK_MAX) {
        half_sq_kernel<<<1, RBLOCK, 0, st>>>(out->data, NULL, e->data, n, scale);
        SLC_LAUNCHED("loss");
        return 0;
    }
    int64_t nchunks = (n + CHUNK - 1) / CHUNK;
    size_t bytes = (size_t)nchunks * sizeof(double);
    double *part = (double *)slc::scratch(bytes);
    if (!part) return SL_ENOMEM;
    half_sq_kernel<<<(unsigned)nchunks, RBLOCK, 0, st>>>(out->data, part, e->data, n, scale);
    half_sq_parts_kernel<<<1, 1, 0, st>>>(out->data, part, nchunks, scale);
    cudaError_t err = cudaGetLastError();
    slc::scratch_free(part, bytes);
    return err == cudaSuccess ? 0 : slc::cuda_fail("loss", err);
}

SL_CUDA_API int sl_half_sq_sum_backward_cuda(sl_tensor *ge, const sl_tensor *g, const sl_tensor *e, float scale)
{
    int64_t n = e->numel;
    if (n == 0) return 0;
    half_sq_backward_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(ge->data, g->data, e->data, scale, n);
    SLC_LAUNCHED("loss backward");
    return 0;
}
