/*
 * elementwise.cu -- the GPU twins of csrc/ops/elementwise.c.
 *
 *   binary:  out[i] = a[ia(i)] (op) b[ib(i)]   numpy broadcasting
 *   scalar:  out[i] = a[i] (op) s, or s (op) a[i]
 *   unary:   out[i] = f(a[i]);  clamp, axpy (y += alpha x), where_mask
 *
 * Broadcasting is resolved on the host exactly as on the CPU: operand strides
 * (0 along broadcast dims, sl_bcast_strides in ../shapes.h), then dims
 * contiguous in all three tensors merged.  The CPU ops check the operands
 * (contiguous, sizes that fit or broadcast, a known op code) before they
 * dispatch here.
 * One merged dim with unit or zero strides runs the flat kernel; otherwise
 * each thread decomposes its output index over the merged dims (32-bit
 * divisions when the tensor fits).  Each op is a template parameter, so each
 * kernel is a straight load-compute-store loop.  Built with --fmad=false and
 * IEEE division and square root, results round like the CPU build's; exp,
 * log, tanh and pow use CUDA's libm (within 2 ulp of glibc's).
 */
#include "common.cuh"

#include <math.h>

/* ---- the operations ------------------------------------------------------ */

template <int OP>
__device__ __forceinline__ float binop(float x, float y)
{
    if (OP == SL_ADD) return x + y;
    if (OP == SL_SUB) return x - y;
    if (OP == SL_MUL) return x * y;
    if (OP == SL_DIV) return x / y;
    if (OP == SL_POW) return powf(x, y);
    if (OP == SL_MAX) return x > y || isnan(x) ? x : y;
    if (OP == SL_MIN) return x < y || isnan(x) ? x : y;
    if (OP == SL_GT) return x > y ? 1.0f : 0.0f;
    if (OP == SL_GE) return x >= y ? 1.0f : 0.0f;
    if (OP == SL_LT) return x < y ? 1.0f : 0.0f;
    if (OP == SL_LE) return x <= y ? 1.0f : 0.0f;
    if (OP == SL_EQ) return x == y ? 1.0f : 0.0f;
    return x != y ? 1.0f : 0.0f; /* SL_NE */
}

template <int OP>
__device__ __forceinline__ float unop(float x)
{
    if (OP == SL_NEG) return -x;
    if (OP == SL_ABS) return fabsf(x);
    if (OP == SL_EXP) return expf(x);
    if (OP == SL_LOG) return logf(x);
    if (OP == SL_SQRT) return sqrtf(x);
    if (OP == SL_SIGN) return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f);
    if (OP == SL_TANH) return tanhf(x);
    if (OP == SL_SIGMOID) return 1.0f / (1.0f + expf(-x));
    if (OP == SL_RELU) return x > 0 ? x : 0.0f;
    if (OP == SL_FLOOR) return floorf(x);
    if (OP == SL_CEIL) return ceilf(x);
    if (OP == SL_ROUND) return rintf(x); /* half to even, as the CPU's nearbyintf */
    if (OP == SL_RSQRT) return 1.0f / sqrtf(x);
    return x * x; /* SL_SQUARE */
}

/* call F<op> for a run-time op code */
#define SLC_BINARY_CASES(F)                                                       \
    F(SL_ADD) F(SL_SUB) F(SL_MUL) F(SL_DIV) F(SL_POW) F(SL_MAX) F(SL_MIN)         \
    F(SL_GT) F(SL_GE) F(SL_LT) F(SL_LE) F(SL_EQ) F(SL_NE)
#define SLC_UNARY_CASES(F)                                                        \
    F(SL_NEG) F(SL_ABS) F(SL_EXP) F(SL_LOG) F(SL_SQRT) F(SL_SIGN) F(SL_TANH)      \
    F(SL_SIGMOID) F(SL_RELU) F(SL_FLOOR) F(SL_CEIL) F(SL_ROUND) F(SL_RSQRT) F(SL_SQUARE)

#define GRID_STRIDE(i, n)                                                         \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);     \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---- kernels ------------------------------------------------------------- */

/* one merged dim: operand strides are 0 or 1 */
template <int OP>
__global__ void binary_flat_kernel(float *o, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n)
{
    GRID_STRIDE(i, n) o[i] = binop<OP>(a[i * sa], b[i * sb]);
}

template <int OP, typename I>
__global__ void binary_nd_kernel(float *o, const float *a, const float *b, slc::Strided g, int64_t n)
{
    GRID_STRIDE(i, n)
    {
        int64_t off[3];
        slc::strided_offsets<I, 3>(g, (I)i, off);
        o[off[0]] = binop<OP>(a[off[1]], b[off[2]]);
    }
}

template <int OP>
__global__ void binary_scalar_kernel(float *o, const float *a, float s, int reversed, int64_t n)
{
    if (reversed) {
        GRID_STRIDE(i, n) o[i] = binop<OP>(s, a[i]);
    } else {
        GRID_STRIDE(i, n) o[i] = binop<OP>(a[i], s);
    }
}

template <int OP>
__global__ void unary_kernel(float *o, const float *a, int64_t n)
{
    GRID_STRIDE(i, n) o[i] = unop<OP>(a[i]);
}

__global__ void clamp_kernel(float *o, const float *a, float lo, float hi, int64_t n)
{
    GRID_STRIDE(i, n)
    {
        float x = a[i];
        o[i] = x < lo ? lo : (x > hi ? hi : x);
    }
}

__global__ void axpy_kernel(float *y, float alpha, const float *x, int64_t n)
{
    GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

__global__ void where_mask_kernel(float *o, const float *g, const float *mask, int64_t n)
{
    GRID_STRIDE(i, n) o[i] = mask[i] != 0.0f ? g[i] : 0.0f;
}

/* ---- host side ----------------------------------------------------------- */

SL_CUDA_API int sl_binary_cuda(int op, sl_tensor *out, const sl_tensor *a, const sl_tensor *b)
{
    slc::Strided g;
    sl_bcast_strides(a, out, g.st[1]);
    sl_bcast_strides(b, out, g.st[2]);
    int64_t n = out->numel;
    if (n == 0) return 0;
    g.nd = out->ndim;
    for (int d = 0; d < out->ndim; d++) {
        g.size[d] = out->shape[d];
        g.st[0][d] = out->stride[d];
    }
    slc::coalesce(&g, 3);
    cudaStream_t st = slc::stream();
    unsigned grid = slc::grid_for(n);
    float *o = out->data;
    const float *pa = a->data, *pb = b->data;
    if (g.nd == 1) {
        int64_t sa = g.st[1][0], sb = g.st[2][0];
#define CASE(OP)                                                                  \
    case OP: binary_flat_kernel<OP><<<grid, slc::THREADS, 0, st>>>(o, pa, sa, pb, sb, n); break;
        switch (op) { SLC_BINARY_CASES(CASE) }
#undef CASE
    } else if (n <= INT32_MAX) {
#define CASE(OP)                                                                  \
    case OP: binary_nd_kernel<OP, uint32_t><<<grid, slc::THREADS, 0, st>>>(o, pa, pb, g, n); break;
        switch (op) { SLC_BINARY_CASES(CASE) }
#undef CASE
    } else {
#define CASE(OP)                                                                  \
    case OP: binary_nd_kernel<OP, int64_t><<<grid, slc::THREADS, 0, st>>>(o, pa, pb, g, n); break;
        switch (op) { SLC_BINARY_CASES(CASE) }
#undef CASE
    }
    SLC_LAUNCHED("binary");
    return 0;
}

SL_CUDA_API int sl_binary_scalar_cuda(int op, sl_tensor *out, const sl_tensor *a, float s, int reversed)
{
    int64_t n = out->numel;
    if (n == 0) return 0;
    unsigned grid = slc::grid_for(n);
    cudaStream_t st = slc::stream();
#define CASE(OP)                                                                  \
    case OP: binary_scalar_kernel<OP><<<grid, slc::THREADS, 0, st>>>(out->data, a->data, s, reversed, n); break;
    switch (op) { SLC_BINARY_CASES(CASE) }
#undef CASE
    SLC_LAUNCHED("binary");
    return 0;
}

SL_CUDA_API int sl_unary_cuda(int op, sl_tensor *out, const sl_tensor *a)
{
    int64_t n = out->numel;
    if (n == 0) return 0;
    unsigned grid = slc::grid_for(n);
    cudaStream_t st = slc::stream();
#define CASE(OP)                                                                  \
    case OP: unary_kernel<OP><<<grid, slc::THREADS, 0, st>>>(out->data, a->data, n); break;
    switch (op) { SLC_UNARY_CASES(CASE) }
#undef CASE
    SLC_LAUNCHED("unary");
    return 0;
}

SL_CUDA_API int sl_clamp_cuda(sl_tensor *out, const sl_tensor *a, float lo, float hi)
{
    int64_t n = out->numel;
    if (n == 0) return 0;
    clamp_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(out->data, a->data, lo, hi, n);
    SLC_LAUNCHED("clamp");
    return 0;
}

SL_CUDA_API int sl_axpy_cuda(sl_tensor *y, float alpha, const sl_tensor *x)
{
    int64_t n = y->numel;
    if (n == 0) return 0;
    axpy_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(y->data, alpha, x->data, n);
    SLC_LAUNCHED("axpy");
    return 0;
}

SL_CUDA_API int sl_where_mask_cuda(sl_tensor *out, const sl_tensor *g, const sl_tensor *mask)
{
    int64_t n = out->numel;
    if (n == 0) return 0;
    where_mask_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(out->data, g->data, mask->data, n);
    SLC_LAUNCHED("where_mask");
    return 0;
}
