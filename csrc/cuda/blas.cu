/*
 * blas.cu -- the GPU twins of csrc/ops/blas.c, through cuBLAS.
 *
 *   c = alpha * op(a) @ op(b) + beta * c,   op(x) = x or x^T
 *
 * Our matrices are row-major, cuBLAS's column-major.  A row-major [m, n]
 * matrix is the column-major [n, m] matrix of its transpose, so
 *     c^T = op(b)^T op(a)^T
 * is one column-major sgemm with the operands swapped and the same
 * transpose flags; no data moves.  Batched products use the strided-batched
 * call with a zero stride for an operand of batch 1.  cuBLAS runs in its
 * default math mode: true float32 (no TF32), so products agree with
 * OpenBLAS's to float32 rounding.
 */
#include "common.cuh"

#include <cublas_v2.h>

namespace slc {
cublasHandle_t blas();
}

static int blas_fail(const char *op, cublasStatus_t s)
{
    return sl_errorf_code(SL_EDEVICE, "%s: cuBLAS error: %s", op, cublasGetStatusString(s));
}

static int gemm_check(const char *op, const sl_tensor *c, const sl_tensor *a, int ta, const sl_tensor *b, int tb,
                      int base, int *m, int *n, int *k)
{
    int am = ta ? a->shape[base + 1] : a->shape[base], ak = ta ? a->shape[base] : a->shape[base + 1];
    int bk = tb ? b->shape[base + 1] : b->shape[base], bn = tb ? b->shape[base] : b->shape[base + 1];
    if (ak != bk || c->shape[base] != am || c->shape[base + 1] != bn)
        return sl_errorf("%s: expected [%d, %d] x [%d, N] into [%d, N], got [%d, %d] x [%d, %d] into [%d, %d]", op, am,
                         ak, ak, am, am, ak, bk, bn, c->shape[base], c->shape[base + 1]);
    *m = am;
    *n = bn;
    *k = ak;
    return 0;
}

__global__ void scale_kernel(float *c, float beta, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        c[i] = beta == 0.0f ? 0.0f : c[i] * beta; /* BLAS: beta = 0 does not read c */
}

/* c = beta * c, for products with k = 0 */
static int scale(const char *op, float *c, float beta, int64_t n)
{
    if (n == 0 || beta == 1.0f) return 0;
    scale_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(c, beta, n);
    SLC_LAUNCHED(op);
    return 0;
}

SL_CUDA_API int sl_gemm_cuda(sl_tensor *c, const sl_tensor *a, int ta, const sl_tensor *b, int tb, float alpha,
                             float beta)
{
    SLC_REQUIRE_CONTIGUOUS("matmul", c, a, b);
    if (a->ndim != 2 || b->ndim != 2 || c->ndim != 2)
        return sl_errorf("matmul: expected 2-D operands, got %d-D and %d-D", a->ndim, b->ndim);
    int m = 0, n = 0, k = 0;
    int rc = gemm_check("matmul", c, a, ta, b, tb, 0, &m, &n, &k);
    if (rc) return rc;
    if (m == 0 || n == 0) return 0;
    if (k == 0) return scale("matmul", c->data, beta, c->numel);
    cublasStatus_t s = cublasSgemm(slc::blas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m,
                                   k, &alpha, b->data, b->shape[1], a->data, a->shape[1], &beta, c->data, n);
    if (s != CUBLAS_STATUS_SUCCESS) return blas_fail("matmul", s);
    return 0;
}

SL_CUDA_API int sl_bmm_cuda(sl_tensor *c, const sl_tensor *a, int ta, const sl_tensor *b, int tb, float alpha,
                            float beta)
{
    SLC_REQUIRE_CONTIGUOUS("bmm", c, a, b);
    if (a->ndim != 3 || b->ndim != 3 || c->ndim != 3)
        return sl_errorf("bmm: expected 3-D operands, got %d-D and %d-D", a->ndim, b->ndim);
    int B = c->shape[0];
    if ((a->shape[0] != B && a->shape[0] != 1) || (b->shape[0] != B && b->shape[0] != 1))
        return sl_errorf("bmm: batch sizes %d and %d do not match result batch %d", a->shape[0], b->shape[0], B);
    int m = 0, n = 0, k = 0;
    int rc = gemm_check("bmm", c, a, ta, b, tb, 1, &m, &n, &k);
    if (rc) return rc;
    if (B == 0 || m == 0 || n == 0) return 0;
    if (k == 0) return scale("bmm", c->data, beta, c->numel);
    long long sa = a->shape[0] == 1 ? 0 : (long long)a->shape[1] * a->shape[2];
    long long sb = b->shape[0] == 1 ? 0 : (long long)b->shape[1] * b->shape[2];
    long long sc = (long long)m * n;
    cublasStatus_t s = cublasSgemmStridedBatched(slc::blas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                 ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b->data, b->shape[2],
                                                 sb, a->data, a->shape[2], sa, &beta, c->data, n, sc, B);
    if (s != CUBLAS_STATUS_SUCCESS) return blas_fail("bmm", s);
    return 0;
}
