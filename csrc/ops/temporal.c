/*
 * temporal.c -- causal filtering of every neuron row in time (psp, pspLayer,
 * pspFilter) and its adjoints.
 *
 * Layout: the input is viewed as rows x T (time innermost, contiguous); a
 * bank of F filters of length K is applied to every row:
 *
 *   conv: y[n, f, r, t] = Ts * sum_{i=0}^{min(K-1, t)}     h_f[i] * x[n, r, t - i]
 *   corr: x'[n, r, t]   = Ts * sum_f sum_{i=0}^{min(K-1, T-1-t)} h_f[i] * g[n, f, r, t + i]
 *   filter gradient:  dh_f[i] = Ts * sum_{n, r, t} g[n, f, r, t] * x[n, r, t - i]
 *
 * with n the sample (leading dimension), r the neuron row within a sample
 * and f the filter (F = 1 for psp; the pspFilter bank's output channel is
 * filter-major, f * R + r).  corr is the exact adjoint of conv.
 *
 * Like the reference's CUDA kernels (src/cuda/convKernels.h) each output is
 * accumulated in float32 over increasing i with fused multiply-adds and
 * multiplied by Ts once at the end.  Blocks of consecutive outputs are held
 * in vector registers while the taps go by in increasing order (taps_blocks),
 * which keeps each output's summation order.  Rows
 * with few non-zeros (spike trains) are processed event by event, visiting
 * the events in the order that again keeps each output's summation order;
 * skipped terms are exact zeros.  Rows are independent and split across
 * threads, so results do not depend on the thread count.
 */
#include "../internal.h"
#include "../shapes.h"

#include <math.h>
#include <string.h>

/* The dense loops hold a block of W consecutive outputs in registers while
   the taps go by, in increasing order: acc[t] += h[i] * x[t + dir * i] for
   t in [t0, t0 + W).  W = 128 is eight AVX-512 vectors, enough independent
   sums to hide the latency of the multiply-adds; narrower blocks finish the
   range.  Returns where the blocks stopped (fewer than 16 outputs left). */
#define TAPS_BLOCK(W)                                                                                                  \
    for (; t0 + (W) <= end; t0 += (W)) {                                                                               \
        float a[W];                                                                                                    \
        for (int j = 0; j < (W); j++) a[j] = acc[t0 + j];                                                              \
        for (int64_t i = 0; i < kmax; i++) {                                                                           \
            float hi = h[i];                                                                                           \
            const float *xs = x + t0 + dir * i;                                                                        \
            for (int j = 0; j < (W); j++) a[j] = fmaf(xs[j], hi, a[j]);                                                \
        }                                                                                                              \
        for (int j = 0; j < (W); j++) acc[t0 + j] = a[j];                                                              \
    }

static inline __attribute__((always_inline)) int64_t taps_blocks(float *restrict acc, const float *restrict x,
                                                                 const float *restrict h, int64_t kmax, int64_t t0,
                                                                 int64_t end, int64_t dir)
{
    TAPS_BLOCK(128)
    TAPS_BLOCK(64)
    TAPS_BLOCK(32)
    TAPS_BLOCK(16)
    return t0;
}

/* acc[t] += h[i] * x[t - i] for all i < K, in increasing i per output */
SL_HOT
static void conv_row(float *restrict acc, const float *restrict x, const float *restrict h, int64_t T,
                     int64_t K, int sparse)
{
    if (sparse) {
        for (int64_t s = T - 1; s >= 0; s--) {
            float v = x[s];
            if (v == 0.0f) continue;
            int64_t n = K < T - s ? K : T - s;
            float *a = acc + s;
            for (int64_t i = 0; i < n; i++) a[i] = fmaf(v, h[i], a[i]);
        }
        return;
    }
    int64_t kmax = K < T ? K : T;
    /* outputs t >= kmax - 1 see every tap: in register blocks; the first
       outputs and the tail, tap by tap over memory */
    int64_t lo = kmax - 1;
    int64_t t0 = taps_blocks(acc, x, h, kmax, lo, T, -1);
    for (int64_t i = 0; i < kmax; i++) {
        float hi = h[i];
        const float *xs = x - i;
        for (int64_t t = i; t < lo; t++) acc[t] = fmaf(xs[t], hi, acc[t]);
        for (int64_t t = t0 > i ? t0 : i; t < T; t++) acc[t] = fmaf(xs[t], hi, acc[t]);
    }
}

/* acc[t] += h[i] * g[t + i] for all i < K, in increasing i per output */
SL_HOT
static void corr_row(float *restrict acc, const float *restrict g, const float *restrict h, int64_t T,
                     int64_t K, int sparse)
{
    if (sparse) {
        for (int64_t s = 0; s < T; s++) {
            float v = g[s];
            if (v == 0.0f) continue;
            int64_t n = K < s + 1 ? K : s + 1;
            float *a = acc + s;
            for (int64_t i = 0; i < n; i++) a[-i] = fmaf(v, h[i], a[-i]);
        }
        return;
    }
    int64_t kmax = K < T ? K : T;
    /* outputs t <= T - kmax see every tap: in register blocks as in
       conv_row; the last outputs tap by tap */
    int64_t t0 = taps_blocks(acc, g, h, kmax, 0, T - kmax + 1, 1);
    for (int64_t i = 0; i < kmax; i++) {
        float hi = h[i];
        const float *gs = g + i;
        for (int64_t t = t0; t < T - i; t++) acc[t] = fmaf(gs[t], hi, acc[t]);
    }
}

/* events pay off when a row has fewer than one non-zero in four bins */
static int row_is_sparse(const float *x, int64_t T)
{
    int64_t nz = 0, limit = T / 4;
    for (int64_t t = 0; t < T; t++) {
        nz += x[t] != 0.0f;
        if (nz > limit) return 0;
    }
    return 1;
}

static int check_bank(const char *op, const sl_tensor *y, const sl_tensor *x, const sl_tensor *h,
                      int64_t *N, int64_t *F, int64_t *R, int64_t *T, int64_t *K)
{
    char b1[128], b2[128], b3[128];
    if (x->ndim < 2)
        return sl_errorf("%s: expected an input with a time dimension, got %s", op, sl_shape_str(x, b1, sizeof b1));
    if (h->ndim < 1 || h->numel == 0) return sl_errorf("%s: empty filter", op);
    sl_bank_dims(x, h, N, F, R, T, K);
    if (y->numel != *N * *F * *R * *T || y->shape[y->ndim - 1] != *T)
        return sl_errorf("%s: output %s does not match input %s with %lld filters %s", op,
                         sl_shape_str(y, b1, sizeof b1), sl_shape_str(x, b2, sizeof b2), (long long)*F,
                         sl_shape_str(h, b3, sizeof b3));
    return 0;
}

int sl_temporal_conv(sl_tensor *out, const sl_tensor *in, const sl_tensor *filters, float Ts)
{
    int dev = SL_DEVICE_OF("psp", out, in, filters);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("psp", out, in, filters);
    int64_t N, F, R, T, K;
    int rc = check_bank("psp", out, in, filters, &N, &F, &R, &T, &K);
    if (rc) return rc;
    SL_DISPATCH(sl_temporal_conv, dev, out, in, filters, Ts);
    if (out->numel == 0) return 0;
    const float *x = in->data, *h = filters->data;
    float *y = out->data;
    int64_t jobs = N * R;
    int oom = 0;
#pragma omp parallel if (jobs * T * K * F > SL_PAR_MIN)
    {
        float *acc = sl_scratch_alloc((size_t)T * sizeof(float));
        if (!acc) oom = 1;
#pragma omp for schedule(static)
        for (int64_t j = 0; j < jobs; j++) {
            if (!acc) continue;
            int64_t n = j / R, r = j % R;
            const float *xr = x + j * T;
            int sparse = row_is_sparse(xr, T);
            for (int64_t f = 0; f < F; f++) {
                memset(acc, 0, (size_t)T * sizeof(float));
                conv_row(acc, xr, h + f * K, T, K, sparse);
                float *yr = y + ((n * F + f) * R + r) * T;
                for (int64_t t = 0; t < T; t++) yr[t] = acc[t] * Ts;
            }
        }
        sl_scratch_free(acc, (size_t)T * sizeof(float));
    }
    if (oom) return sl_errorf_code(SL_ENOMEM, "psp: out of memory for a row of %lld bins", (long long)T);
    return 0;
}

int sl_temporal_corr(sl_tensor *out, const sl_tensor *grad, const sl_tensor *filters, float Ts)
{
    int dev = SL_DEVICE_OF("psp backward", out, grad, filters);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("psp backward", out, grad, filters);
    /* out plays the role of the conv input here: [N, R, T]; grad is [N, F, R, T] */
    int64_t N, F, R, T, K;
    int rc = check_bank("psp backward", grad, out, filters, &N, &F, &R, &T, &K);
    if (rc) return rc;
    SL_DISPATCH(sl_temporal_corr, dev, out, grad, filters, Ts);
    if (out->numel == 0) return 0;
    const float *g = grad->data, *h = filters->data;
    float *x = out->data;
    int64_t jobs = N * R;
    int oom = 0;
#pragma omp parallel if (jobs * T * K * F > SL_PAR_MIN)
    {
        float *acc = sl_scratch_alloc((size_t)T * sizeof(float));
        if (!acc) oom = 1;
#pragma omp for schedule(static)
        for (int64_t j = 0; j < jobs; j++) {
            if (!acc) continue;
            int64_t n = j / R, r = j % R;
            float *xr = x + j * T;
            memset(xr, 0, (size_t)T * sizeof(float));
            for (int64_t f = 0; f < F; f++) {
                const float *gr = g + ((n * F + f) * R + r) * T;
                memset(acc, 0, (size_t)T * sizeof(float));
                corr_row(acc, gr, h + f * K, T, K, row_is_sparse(gr, T));
                for (int64_t t = 0; t < T; t++) xr[t] += acc[t] * Ts;
            }
        }
        sl_scratch_free(acc, (size_t)T * sizeof(float));
    }
    if (oom) return sl_errorf_code(SL_ENOMEM, "psp backward: out of memory for a row of %lld bins", (long long)T);
    return 0;
}

/* rows are grouped into fixed chunks whose partial sums are added in chunk
   order, so the result does not depend on the thread count */
#define FG_CHUNK 16

int sl_temporal_filter_grad(sl_tensor *dfilters, const sl_tensor *grad, const sl_tensor *in, float Ts)
{
    int dev = SL_DEVICE_OF("psp filter gradient", dfilters, grad, in);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("psp filter gradient", dfilters, grad, in);
    int64_t N, F, R, T, K;
    int rc = check_bank("psp filter gradient", grad, in, dfilters, &N, &F, &R, &T, &K);
    if (rc) return rc;
    SL_DISPATCH(sl_temporal_filter_grad, dev, dfilters, grad, in, Ts);
    const float *g = grad->data, *x = in->data;
    float *dh = dfilters->data;
    int64_t rows = N * R, chunks = (rows + FG_CHUNK - 1) / FG_CHUNK;
    double *part = sl_scratch_alloc((size_t)(chunks * F * K + 1) * sizeof(double));
    if (!part) return sl_errorf_code(SL_ENOMEM, "psp filter gradient: out of memory");
    SL_FOR(c, chunks, chunks > 1 && rows * T * K * F > SL_PAR_MIN, {
        double *p = part + c * F * K;
        memset(p, 0, (size_t)(F * K) * sizeof(double));
        int64_t lo = c * FG_CHUNK, hi = lo + FG_CHUNK < rows ? lo + FG_CHUNK : rows;
        for (int64_t j = lo; j < hi; j++) {
            int64_t n = j / R, r = j % R;
            const float *xr = x + j * T;
            for (int64_t f = 0; f < F; f++) {
                const float *gr = g + ((n * F + f) * R + r) * T;
                double *pf = p + f * K;
                for (int64_t i = 0; i < K && i < T; i++) {
                    double s = 0;
                    for (int64_t t = i; t < T; t++) s += (double)gr[t] * xr[t - i];
                    pf[i] += s;
                }
            }
        }
    });
    for (int64_t k = 0; k < F * K; k++) {
        double s = 0;
        for (int64_t c = 0; c < chunks; c++) s += part[c * F * K + k];
        dh[k] = (float)(s * Ts);
    }
    sl_scratch_free(part, (size_t)(chunks * F * K + 1) * sizeof(double));
    return 0;
}

int sl_temporal_flip(sl_tensor *out, const sl_tensor *in)
{
    int dev = SL_DEVICE_OF("flip", out, in);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("flip", out, in);
    if (!sl_same_shape(out, in) || in->ndim < 1) return sl_errorf("flip: output and input shapes differ");
    SL_DISPATCH(sl_temporal_flip, dev, out, in);
    int64_t K = in->shape[in->ndim - 1];
    int64_t rows = K ? in->numel / K : 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < K; i++) out->data[r * K + i] = in->data[r * K + K - 1 - i];
    return 0;
}
