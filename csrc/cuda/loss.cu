/*
 * loss.cu -- the GPU twins of csrc/ops/loss.c: the numSpikes error's
 * element-wise steps, fused.
 *
 * One grid-stride pass over the output's elements; the thread of a row's
 * first bin also sums the row's window (sequentially, in double, as the CPU)
 * and computes the row's correction c.  Built with --fmad=false, so every
 * step rounds as on the CPU.
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

int check_rows(const char *op, const sl_tensor *a, const sl_tensor *b, const sl_tensor *c, const sl_tensor *rowsOf,
               int64_t lo, int64_t hi, int64_t *rows, int64_t *T)
{
    char b1[128], b2[128];
    if (a->ndim < 1) return sl_errorf("%s: expected a (..., T) tensor, got %s", op, sl_shape_str(a, b1, sizeof b1));
    *T = a->shape[a->ndim - 1];
    *rows = *T ? a->numel / *T : 0;
    if (b->numel != a->numel)
        return sl_errorf("%s: %s and %s differ in size", op, sl_shape_str(a, b1, sizeof b1),
                         sl_shape_str(b, b2, sizeof b2));
    if (c->numel != *rows || (rowsOf && rowsOf->numel != *rows))
        return sl_errorf("%s: expected one value per row (%lld), got %s", op, (long long)*rows,
                         sl_shape_str(c->numel != *rows ? c : rowsOf, b1, sizeof b1));
    if (lo < 0 || hi < lo || hi > *T)
        return sl_errorf("%s: window [%lld, %lld) outside the %lld bins", op, (long long)lo, (long long)hi,
                         (long long)*T);
    return 0;
}

} /* namespace */

SL_CUDA_API int sl_numspikes_prep_cuda(sl_tensor *x, sl_tensor *c, const sl_tensor *out, const sl_tensor *desired,
                                       int64_t lo, int64_t hi, float Ts, float countTrue, float countFalse, float len,
                                       float scale)
{
    SLC_REQUIRE_CONTIGUOUS("numSpikes", x, c, out, desired);
    int64_t rows = 0, T = 0;
    int rc = check_rows("numSpikes", out, x, c, desired, lo, hi, &rows, &T);
    if (rc) return rc;
    int64_t n = out->numel;
    if (n == 0) return 0;
    prep_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(x->data, c->data, out->data, desired->data, T, lo,
                                                                      hi, Ts, countTrue, countFalse, len, scale, n);
    SLC_LAUNCHED("numSpikes");
    return 0;
}

SL_CUDA_API int sl_window_add_cuda(sl_tensor *e, const sl_tensor *p, const sl_tensor *c, int64_t lo, int64_t hi)
{
    SLC_REQUIRE_CONTIGUOUS("numSpikes", e, p, c);
    int64_t rows = 0, T = 0;
    int rc = check_rows("numSpikes", p, e, c, NULL, lo, hi, &rows, &T);
    if (rc) return rc;
    int64_t n = p->numel;
    if (n == 0) return 0;
    window_add_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(e->data, p->data, c->data, T, lo, hi, n);
    SLC_LAUNCHED("numSpikes");
    return 0;
}
