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
 * OpenBLAS's to float32 rounding.  The CPU ops check the operands
 * (contiguous, 2-D or 3-D, sizes and batches that fit) before they dispatch
 * here.
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

/* op(a) is m x k and c is m x n, at dims base and base + 1 */
static void gemm_dims(const sl_tensor *c, const sl_tensor *a, int ta, int base, int *m, int *n, int *k)
{
    *m = c->shape[base];
    *n = c->shape[base + 1];
    *k = ta ? a->shape[base] : a->shape[base + 1];
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
    int m = 0, n = 0, k = 0;
    gemm_dims(c, a, ta, 0, &m, &n, &k);
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
    int B = c->shape[0], m = 0, n = 0, k = 0;
    gemm_dims(c, a, ta, 1, &m, &n, &k);
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
