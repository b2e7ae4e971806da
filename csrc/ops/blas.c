/*
 * blas.c -- matrix products through OpenBLAS.
 *
 *   c = alpha * op(a) @ op(b) + beta * c,   op(x) = x or x^T
 *
 * OpenBLAS runs single-threaded; the product is split across the OpenMP
 * threads by blocks of rows (or columns, whichever is longer) of c, each a
 * cblas_sgemm of its own.  Batched products split the batch first.
 */
#include "../internal.h"

#include <cblas.h>

static int mat_dims(const sl_tensor *x, int t, int base, int *rows, int *cols)
{
    int r = x->shape[base], c = x->shape[base + 1];
    *rows = t ? c : r;
    *cols = t ? r : c;
    return 0;
}

static int gemm_check(const char *op, const sl_tensor *c, const sl_tensor *a, int ta,
                      const sl_tensor *b, int tb, int base, int *m, int *n, int *k)
{
    int am, ak, bk, bn;
    mat_dims(a, ta, base, &am, &ak);
    mat_dims(b, tb, base, &bk, &bn);
    if (ak != bk || c->shape[base] != am || c->shape[base + 1] != bn)
        return sl_errorf("%s: expected [%d, %d] x [%d, N] into [%d, N], got [%d, %d] x [%d, %d] into [%d, %d]",
                         op, am, ak, ak, am, am, ak, bk, bn, c->shape[base], c->shape[base + 1]);
    *m = am;
    *n = bn;
    *k = ak;
    return 0;
}

/* row-major c[m x n] = alpha op(a) op(b) + beta c, split across threads */
void sl_sgemm_par(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc)
{
    int nt = SL_OMP_THREADS();
    double work = (double)m * n * k;
    if (nt <= 1 || work < 4e6) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                    a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int byRows = m >= n;
    int len = byRows ? m : n;
    int blocks = nt < len ? nt : len;
#pragma omp parallel for schedule(static)
    for (int bi = 0; bi < blocks; bi++) {
        int lo = (int)((int64_t)len * bi / blocks), hi = (int)((int64_t)len * (bi + 1) / blocks);
        if (hi <= lo) continue;
        if (byRows) {
            const float *ab = ta ? a + lo : a + (int64_t)lo * lda;
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, hi - lo, n,
                        k, alpha, ab, lda, b, ldb, beta, c + (int64_t)lo * ldc, ldc);
        } else {
            const float *bb = tb ? b + (int64_t)lo * ldb : b + lo;
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, hi - lo,
                        k, alpha, a, lda, bb, ldb, beta, c + lo, ldc);
        }
    }
}

int sl_gemm(sl_tensor *c, const sl_tensor *a, int ta, const sl_tensor *b, int tb, float alpha,
            float beta)
{
    int dev = SL_DEVICE_OF("matmul", c, a, b);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("matmul", c, a, b);
    if (a->ndim != 2 || b->ndim != 2 || c->ndim != 2)
        return sl_errorf("matmul: expected 2-D operands, got %d-D and %d-D", a->ndim, b->ndim);
    int m = 0, n = 0, k = 0;
    int rc = gemm_check("matmul", c, a, ta, b, tb, 0, &m, &n, &k);
    if (rc) return rc;
    SL_DISPATCH(sl_gemm, dev, c, a, ta, b, tb, alpha, beta);
    if (m == 0 || n == 0) return 0;
    if (k == 0) {
        for (int64_t i = 0; i < c->numel; i++) c->data[i] *= beta;
        return 0;
    }
    sl_sgemm_par(ta, tb, m, n, k, alpha, a->data, a->shape[1], b->data, b->shape[1], beta, c->data, n);
    return 0;
}

int sl_bmm(sl_tensor *c, const sl_tensor *a, int ta, const sl_tensor *b, int tb, float alpha,
           float beta)
{
    int dev = SL_DEVICE_OF("bmm", c, a, b);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("bmm", c, a, b);
    if (a->ndim != 3 || b->ndim != 3 || c->ndim != 3)
        return sl_errorf("bmm: expected 3-D operands, got %d-D and %d-D", a->ndim, b->ndim);
    int B = c->shape[0];
    if ((a->shape[0] != B && a->shape[0] != 1) || (b->shape[0] != B && b->shape[0] != 1))
        return sl_errorf("bmm: batch sizes %d and %d do not match result batch %d", a->shape[0],
                         b->shape[0], B);
    int m = 0, n = 0, k = 0;
    int rc = gemm_check("bmm", c, a, ta, b, tb, 1, &m, &n, &k);
    if (rc) return rc;
    SL_DISPATCH(sl_bmm, dev, c, a, ta, b, tb, alpha, beta);
    int64_t sa = a->shape[0] == 1 ? 0 : (int64_t)a->shape[1] * a->shape[2];
    int64_t sb = b->shape[0] == 1 ? 0 : (int64_t)b->shape[1] * b->shape[2];
    int64_t sc = (int64_t)m * n;
    int nt = SL_OMP_THREADS();
    int outer = B >= nt && (double)B * m * n * k > 4e6;
    SL_FOR(i, B, outer, {
        if (k == 0) {
            for (int64_t j = 0; j < sc; j++) c->data[i * sc + j] *= beta;
        } else if (outer) {
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                        alpha, a->data + i * sa, a->shape[2], b->data + i * sb, b->shape[2], beta, c->data + i * sc,
                        n);
        } else {
            sl_sgemm_par(ta, tb, m, n, k, alpha, a->data + i * sa, a->shape[2], b->data + i * sb, b->shape[2], beta,
                         c->data + i * sc, n);
        }
    });
    return 0;
}

extern void openblas_set_num_threads(int n);

/* OpenBLAS on its own, with as many of its threads as we use OpenMP
   threads: the yardstick for the benchmark of sl_gemm */
void sl_raw_sgemm(int m, int n, int k, const float *a, const float *b, float *c)
{
    openblas_set_num_threads(SL_OMP_THREADS());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    openblas_set_num_threads(1);
}
