/*
 * synapse.c -- synaptic layers applied at every time bin: dense, conv,
 * convTranspose (as the adjoint of conv), and the reference's folded sum
 * pooling.
 *
 * conv (dense is the conv whose kernel covers the whole input):
 *   y[n, o, oh, ow, t] = sum_{c in group(o), i, j} W[o, c, i, j] * x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw, t]
 * Layout NCHWT with time innermost, so im2col copies contiguous runs of T:
 *   col[(c, i, j), (oh, ow, t)] = x[n, c, ih, iw, t]          (0 outside)
 * and the whole sample, all time bins at once, is one GEMM per group:
 *   y[n] (O x OH*OW*T) = W (O x C*kh*kw) . col
 * Backward: dW = sum_n g[n] . col^T;  dcol = W^T . g[n], scattered back
 * (col2im, parallel over input channels, so no two threads write the same
 * element).  When the kernel covers the input exactly (dense), col is x[n]
 * itself.  Threads split the batch (one GEMM per sample and thread) or, for
 * small batches, each GEMM; the sum over samples of dW uses a chunking that
 * depends on the sizes only, so every result is the same for any thread
 * count.
 *
 * Sparse input (spike trains, e.g. the first dense layer): for every
 * non-zero x[n, i, t] = v,
 *   yT[n, t, :] += v * WT[i, :]      and      dW[:, i] += v * gT[n, t, :]
 * with WT = W^T and gT, yT time-major copies; the non-zeros are listed once
 * in forward (CSR over the rows (n, i)) and reused by backward.  The weight
 * gradient is split across threads by input index i (and blocks of
 * outputs), so it is race-free and deterministic.  The input gradient, when
 * needed, is the dense GEMM above.
 *
 * Folded pooling (SPEC.md 9.4, 9.5): the input (for pool padded with
 * H mod kh zero rows and W mod kw zero columns, for unpool not) is viewed as
 * one channel of height C*H'; pooling is a single-channel conv with the fixed
 * weight (1.1 theta) over that folded axis, unpooling the transposed conv.
 * The result is reshaped back to C channels; the Lua layer rejects
 * geometries where a window would mix channels.
 */
#include "../internal.h"
#include "../shapes.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#undef I /* complex.h, pulled in by cblas.h */

/* GCC's -O3 unroll-and-jam fuses two spikes' row updates into one scalar
   loop instead of vectorising each: keep it off where that happens */
#if defined(__GNUC__) && !defined(__clang__)
#define SL_NO_JAM __attribute__((optimize("no-loop-unroll-and-jam")))
#else
#define SL_NO_JAM
#endif

/* o[t] += w * s[t] over one row of time bins */
SL_HOT
static void axpy_t(float *restrict o, const float *restrict s, float w, int64_t T)
{
    for (int64_t t = 0; t < T; t++) o[t] += w * s[t];
}

/* ---- shapes -------------------------------------------------------------- */

static int conv_dims_of(const char *op, const sl_tensor *x, const sl_tensor *w, const sl_tensor *y,
                        const sl_conv_params *p, sl_conv_dims *d)
{
    char b1[128], b2[128], b3[128];
    if (x->ndim != 5 || w->ndim != 5 || y->ndim != 5)
        return sl_errorf("%s: expected 5-D input, weight and output, got %s, %s, %s", op, sl_shape_str(x, b1, sizeof b1),
                         sl_shape_str(w, b2, sizeof b2), sl_shape_str(y, b3, sizeof b3));
    if (p->groups < 1 || p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->ph < 0 ||
        p->pw < 0)
        return sl_errorf("%s: invalid kernel, stride, padding, dilation or groups", op);
    sl_conv_dims_of(d, x, w, y, p);
    int64_t oh = (d->H + 2 * (int64_t)p->ph - (int64_t)p->dh * (p->kh - 1) - 1) / p->sh + 1;
    int64_t ow = (d->W + 2 * (int64_t)p->pw - (int64_t)p->dw * (p->kw - 1) - 1) / p->sw + 1;
    if (w->shape[1] * d->G != d->C || w->shape[2] != p->kh || w->shape[3] != p->kw || d->O % d->G != 0 ||
        y->shape[0] != d->N || y->shape[1] != d->O || y->shape[4] != d->T || d->OH != oh || d->OW != ow || oh < 1 ||
        ow < 1)
        return sl_errorf("%s: input %s, weight %s and output %s do not fit (groups %d)", op,
                         sl_shape_str(x, b1, sizeof b1), sl_shape_str(w, b2, sizeof b2), sl_shape_str(y, b3, sizeof b3),
                         p->groups);
    /* the GEMMs take int sizes: positions x time, and the column rows (the
       outputs are a shape entry, an int32 already) */
    if (d->P > INT32_MAX)
        return sl_errorf("%s: output %s has %lld positions x time bins per sample, more than BLAS's limit of %d", op,
                         sl_shape_str(y, b3, sizeof b3), (long long)d->P, INT32_MAX);
    if (d->C * d->KK > INT32_MAX)
        return sl_errorf("%s: weight %s has %lld inputs per output, more than BLAS's limit of %d", op,
                         sl_shape_str(w, b2, sizeof b2), (long long)(d->C * d->KK), INT32_MAX);
    return 0;
}

/* the kernel covers the input exactly: col == x[n] */
static int is_full_cover(const sl_conv_dims *d, const sl_conv_params *p)
{
    return d->OH == 1 && d->OW == 1 && p->ph == 0 && p->pw == 0 && p->dh == 1 && p->dw == 1 && d->H == p->kh &&
           d->W == p->kw;
}

static void im2col(float *col, const float *x, const sl_conv_dims *d, const sl_conv_params *p)
{
    int64_t rows = d->C * d->KK, T = d->T;
    SL_FOR(r, rows, rows * d->P > SL_PAR_MIN, {
        int64_t c = r / d->KK, i = (r % d->KK) / p->kw, j = r % p->kw;
        float *dst = col + r * d->P;
        for (int64_t oh = 0; oh < d->OH; oh++) {
            int64_t ih = oh * p->sh - p->ph + i * p->dh;
            for (int64_t ow = 0; ow < d->OW; ow++) {
                int64_t iw = ow * p->sw - p->pw + j * p->dw;
                float *o = dst + (oh * d->OW + ow) * T;
                if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) memset(o, 0, (size_t)T * sizeof(float));
                else memcpy(o, x + ((c * d->H + ih) * d->W + iw) * T, (size_t)T * sizeof(float));
            }
        }
    });
}

/* gin[c, ih, iw, t] = sum of col[(c, i, j), (oh, ow, t)] over the (i, j,
   oh, ow) that read it; parallel over c, each channel cleared just before
   its sums, while it is in cache */
static void col2im(float *gin, const float *col, const sl_conv_dims *d, const sl_conv_params *p)
{
    int64_t T = d->T;
    SL_FOR(c, d->C, d->C * d->KK * d->P > SL_PAR_MIN, {
        memset(gin + c * d->H * d->W * T, 0, (size_t)(d->H * d->W * T) * sizeof(float));
        for (int64_t k = 0; k < d->KK; k++) {
            int64_t i = k / p->kw, j = k % p->kw;
            const float *src = col + (c * d->KK + k) * d->P;
            for (int64_t oh = 0; oh < d->OH; oh++) {
                int64_t ih = oh * p->sh - p->ph + i * p->dh;
                if (ih < 0 || ih >= d->H) continue;
                for (int64_t ow = 0; ow < d->OW; ow++) {
                    int64_t iw = ow * p->sw - p->pw + j * p->dw;
                    if (iw < 0 || iw >= d->W) continue;
                    axpy_t(gin + ((c * d->H + ih) * d->W + iw) * T, src + (oh * d->OW + ow) * T, 1.0f, T);
                }
            }
        }
    });
}

/* Work is split across threads by sample when there are enough samples
   (each thread with its own column buffer and a single-threaded GEMM),
   otherwise each sample's im2col and GEMM are split instead. */
static int by_sample(const sl_conv_dims *d)
{
    int nt = SL_OMP_THREADS();
    return nt > 1 && d->N >= nt && (double)d->O * d->C / d->G * d->KK * d->P * d->N > 4e6;
}

static void conv_fwd_sample(const sl_conv_dims *d, const sl_conv_params *p, float *y, const float *x, const float *w,
                            float *col, int full, int par)
{
    const float *src = x;
    if (!full) {
        im2col(col, x, d, p);
        src = col;
    }
    int64_t Og = d->O / d->G, Kg = d->C / d->G * d->KK;
    for (int64_t g = 0; g < d->G; g++) {
        if (par)
            sl_sgemm_par(0, 0, (int)Og, (int)d->P, (int)Kg, 1.0f, w + g * Og * Kg, (int)Kg, src + g * Kg * d->P,
                         (int)d->P, 0.0f, y + g * Og * d->P, (int)d->P);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Og, (int)d->P, (int)Kg, 1.0f,
                        w + g * Og * Kg, (int)Kg, src + g * Kg * d->P, (int)d->P, 0.0f, y + g * Og * d->P, (int)d->P);
    }
}

/* one sample's work: dst from src and the weight, with a column buffer
   (unused when full) and the GEMM split across threads when par */
typedef void (*conv_sample_fn)(const sl_conv_dims *d, const sl_conv_params *p, float *dst, const float *src,
                               const float *w, float *col, int full, int par);

/* fn over the batch, dst and src advancing by their per-sample strides:
   threads take whole samples (each with its own columns) or, with few
   samples, share each sample's GEMM */
static int conv_each_sample(const char *fname, const sl_conv_dims *d, const sl_conv_params *p, conv_sample_fn fn,
                            float *dst, int64_t dstStride, const float *src, int64_t srcStride, const float *w)
{
    int full = is_full_cover(d, p);
    size_t colBytes = full ? 0 : (size_t)(d->C * d->KK * d->P) * sizeof(float);
    if (by_sample(d)) {
        int oom = 0;
#pragma omp parallel
        {
            float *col = full ? NULL : sl_scratch_alloc(colBytes);
            if (!full && !col) oom = 1;
#pragma omp for schedule(static)
            for (int64_t n = 0; n < d->N; n++)
                if (full || col) fn(d, p, dst + n * dstStride, src + n * srcStride, w, col, full, 0);
            sl_scratch_free(col, colBytes);
        }
        if (oom) return sl_errorf_code(SL_ENOMEM, "%s: out of memory for %zu bytes of columns", fname, colBytes);
        return 0;
    }
    float *col = full ? NULL : sl_scratch_alloc(colBytes);
    if (!full && !col) return sl_errorf_code(SL_ENOMEM, "%s: out of memory for %zu bytes of columns", fname, colBytes);
    for (int64_t n = 0; n < d->N; n++)
        fn(d, p, dst + n * dstStride, src + n * srcStride, w, col, full, 1);
    sl_scratch_free(col, colBytes);
    return 0;
}

int sl_conv_forward(sl_tensor *out, const sl_tensor *in, const sl_tensor *weight, const sl_conv_params *p)
{
    int dev = SL_DEVICE_OF("conv", out, in, weight);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("conv", out, in, weight);
    sl_conv_dims d;
    int rc = conv_dims_of("conv", in, weight, out, p, &d);
    if (rc) return rc;
    SL_DISPATCH(sl_conv_forward, dev, out, in, weight, p);
    if (out->numel == 0) return 0;
    return conv_each_sample("conv", &d, p, conv_fwd_sample, out->data, d.O * d.P, in->data, d.C * d.H * d.W * d.T,
                            weight->data);
}

static void conv_bwd_input_sample(const sl_conv_dims *d, const sl_conv_params *p, float *gx, const float *g,
                                  const float *w, float *col, int full, int par)
{
    int64_t Og = d->O / d->G, Kg = d->C / d->G * d->KK;
    float *dst = full ? gx : col;
    for (int64_t gg = 0; gg < d->G; gg++) {
        if (par)
            sl_sgemm_par(1, 0, (int)Kg, (int)d->P, (int)Og, 1.0f, w + gg * Og * Kg, (int)Kg, g + gg * Og * d->P,
                         (int)d->P, 0.0f, dst + gg * Kg * d->P, (int)d->P);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Kg, (int)d->P, (int)Og, 1.0f, w + gg * Og * Kg,
                        (int)Kg, g + gg * Og * d->P, (int)d->P, 0.0f, dst + gg * Kg * d->P, (int)d->P);
    }
    if (!full) col2im(gx, col, d, p);
}

int sl_conv_backward_input(sl_tensor *gin, const sl_tensor *gout, const sl_tensor *weight, const sl_conv_params *p)
{
    int dev = SL_DEVICE_OF("conv backward", gin, gout, weight);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("conv backward", gin, gout, weight);
    sl_conv_dims d;
    int rc = conv_dims_of("conv backward", gin, weight, gout, p, &d);
    if (rc) return rc;
    SL_DISPATCH(sl_conv_backward_input, dev, gin, gout, weight, p);
    if (gin->numel == 0) return 0;
    return conv_each_sample("conv backward", &d, p, conv_bwd_input_sample, gin->data, d.C * d.H * d.W * d.T,
                            gout->data, d.O * d.P, weight->data);
}

static void conv_bwd_weight_sample(const sl_conv_dims *d, const sl_conv_params *p, float *gw, const float *g,
                                   const float *x, float *col, int full, int par)
{
    const float *src = x;
    if (!full) {
        im2col(col, x, d, p);
        src = col;
    }
    int64_t Og = d->O / d->G, Kg = d->C / d->G * d->KK;
    for (int64_t gg = 0; gg < d->G; gg++) {
        if (par)
            sl_sgemm_par(0, 1, (int)Og, (int)Kg, (int)d->P, 1.0f, g + gg * Og * d->P, (int)d->P, src + gg * Kg * d->P,
                         (int)d->P, 1.0f, gw + gg * Og * Kg, (int)Kg);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Og, (int)Kg, (int)d->P, 1.0f, g + gg * Og * d->P,
                        (int)d->P, src + gg * Kg * d->P, (int)d->P, 1.0f, gw + gg * Og * Kg, (int)Kg);
    }
}

/* The weight gradient is a sum over samples.  So that it does not depend on
   the thread count, the samples are cut into a number of chunks that
   depends on the sizes only; each chunk is summed, sample after sample, into
   its own buffer by one thread, and the buffers are then added in chunk
   order.  One chunk: the samples in turn, each product split across the
   threads by blocks of the weight (which leaves every sum's order alone). */
static int64_t wgrad_chunks(const sl_conv_dims *d, int64_t wn)
{
    if (d->N < 2 || (double)d->O * d->C / d->G * d->KK * d->P * d->N <= 4e6) return 1;
    int64_t cap = ((int64_t)1 << 24) / wn; /* partial sums: at most 64 MB */
    int64_t c = d->N < 16 ? d->N : 16;
    return c < cap ? c : (cap > 1 ? cap : 1);
}

int sl_conv_backward_weight(sl_tensor *gweight, const sl_tensor *gout, const sl_tensor *in, const sl_conv_params *p)
{
    int dev = SL_DEVICE_OF("conv weight gradient", gweight, gout, in);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("conv weight gradient", gweight, gout, in);
    sl_conv_dims d;
    int rc = conv_dims_of("conv weight gradient", in, gweight, gout, p, &d);
    if (rc) return rc;
    SL_DISPATCH(sl_conv_backward_weight, dev, gweight, gout, in, p);
    memset(gweight->data, 0, (size_t)gweight->numel * sizeof(float));
    if (gout->numel == 0 || gweight->numel == 0) return 0;
    int full = is_full_cover(&d, p);
    size_t colBytes = full ? 0 : (size_t)(d.C * d.KK * d.P) * sizeof(float);
    int64_t xs = d.C * d.H * d.W * d.T, ys = d.O * d.P, wn = gweight->numel;
    int64_t chunks = wgrad_chunks(&d, wn);
    if (chunks > 1) {
        size_t partBytes = (size_t)((chunks - 1) * wn) * sizeof(float);
        float *part = sl_scratch_alloc(partBytes); /* chunk c > 0 at part + (c - 1) * wn */
        if (!part) return sl_errorf_code(SL_ENOMEM, "conv weight gradient: out of memory");
        memset(part, 0, partBytes);
        int oom = 0;
#pragma omp parallel
        {
            float *col = full ? NULL : sl_scratch_alloc(colBytes);
            if (!full && !col) oom = 1;
#pragma omp for schedule(dynamic, 1)
            for (int64_t c = 0; c < chunks; c++) {
                if (!full && !col) continue;
                float *acc = c == 0 ? gweight->data : part + (c - 1) * wn;
                for (int64_t n = d.N * c / chunks; n < d.N * (c + 1) / chunks; n++)
                    conv_bwd_weight_sample(&d, p, acc, gout->data + n * ys, in->data + n * xs, col, full, 0);
            }
            sl_scratch_free(col, colBytes);
        }
        SL_FOR(i, wn, wn * chunks > SL_PAR_MIN, {
            float v = gweight->data[i];
            for (int64_t c = 1; c < chunks; c++) v += part[(c - 1) * wn + i];
            gweight->data[i] = v;
        });
        sl_scratch_free(part, partBytes);
        if (oom) return sl_errorf_code(SL_ENOMEM, "conv weight gradient: out of memory");
        return 0;
    }
    float *col = full ? NULL : sl_scratch_alloc(colBytes);
    if (!full && !col) return sl_errorf_code(SL_ENOMEM, "conv weight gradient: out of memory");
    for (int64_t n = 0; n < d.N; n++)
        conv_bwd_weight_sample(&d, p, gweight->data, gout->data + n * ys, in->data + n * xs, col, full, 1);
    sl_scratch_free(col, colBytes);
    return 0;
}

/* ---- sparse dense ------------------------------------------------------- */

/* Non-zeros of x [N, I, T] in (n, i, t) order, as a CSR over rows (n, i).
   The arrays come from the caching allocator: they are megabytes, built
   every training step, and fresh pages from the system would cost more
   than the scan itself. */
struct sl_sparse_rows {
    int64_t N, I, T, nnz;
    int64_t *start; /* N*I + 1 */
    int32_t *t;
    float *v;
};

static size_t start_bytes(const sl_sparse_rows *s) { return sizeof(int64_t) * (size_t)(s->N * s->I + 1); }

void sl_sparse_rows_free(sl_sparse_rows *s)
{
    if (!s) return;
    sl_scratch_free(s->start, start_bytes(s));
    sl_scratch_free(s->t, sizeof(int32_t) * (size_t)(s->nnz + 1));
    sl_scratch_free(s->v, sizeof(float) * (size_t)(s->nnz + 1));
    free(s);
}

int64_t sl_sparse_rows_nnz(const sl_sparse_rows *s) { return s->nnz; }

/* number of non-zeros (neither +0 nor -0) in row [0, T) */
SL_HOT
static int64_t count_row(const float *restrict row, int64_t T)
{
    int32_t c = 0;
    for (int64_t t = 0; t < T; t++) {
        uint32_t b;
        memcpy(&b, row + t, sizeof b);
        c += (b & 0x7fffffffu) != 0;
    }
    return c;
}

/* The nnz non-zeros of row [0, T) into (t, v).  Runs of 16 zeros are
   skipped with one vector test; inside a run with a non-zero the stores are
   unconditional and the index advances on non-zeros (a data-dependent branch
   would mispredict at every spike); stopping at the last non-zero keeps the
   stores inside this row's nnz slots. */
SL_HOT
static void fill_row(int32_t *restrict tt, float *restrict vv, const float *restrict row, int64_t T, int64_t nnz)
{
    int64_t k = 0, t0 = 0;
    for (; t0 + 16 <= T && k < nnz; t0 += 16) {
        uint32_t bits[16], any = 0; /* +-0 have no bits outside the sign */
        memcpy(bits, row + t0, sizeof bits);
        for (int j = 0; j < 16; j++) any |= bits[j];
        if (!(any & 0x7fffffffu)) continue;
        for (int j = 0; j < 16 && k < nnz; j++) {
            tt[k] = (int32_t)(t0 + j);
            vv[k] = row[t0 + j];
            k += row[t0 + j] != 0.0f;
        }
    }
    for (int64_t t = t0; t < T && k < nnz; t++) {
        tt[k] = (int32_t)t;
        vv[k] = row[t];
        k += row[t] != 0.0f;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* fill_row with AVX-512: per block of 16 bins, the non-zeros' values and
   bin numbers are compressed within a register and stored under a mask of
   their count (compressing straight to memory is slow on some CPUs) */
__attribute__((target("avx512f")))
static void fill_row_avx512(int32_t *restrict tt, float *restrict vv, const float *restrict row, int64_t T, int64_t nnz)
{
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    int64_t k = 0, t0 = 0;
    for (; t0 + 16 <= T && k < nnz; t0 += 16) {
        __m512i b = _mm512_loadu_si512(row + t0);
        __mmask16 m = _mm512_test_epi32_mask(b, magnitude);
        if (!m) continue;
        int c = __builtin_popcount(m);
        __mmask16 head = (__mmask16)((1u << c) - 1);
        _mm512_mask_storeu_epi32(vv + k, head, _mm512_maskz_compress_epi32(m, b));
        _mm512_mask_storeu_epi32(tt + k, head,
                                 _mm512_maskz_compress_epi32(m, _mm512_add_epi32(lanes, _mm512_set1_epi32((int)t0))));
        k += c;
    }
    for (int64_t t = t0; t < T && k < nnz; t++) {
        tt[k] = (int32_t)t;
        vv[k] = row[t];
        k += row[t] != 0.0f;
    }
}
#endif

typedef void (*fill_fn)(int32_t *restrict, float *restrict, const float *restrict, int64_t, int64_t);

/* SLAYER_NO_AVX512=1 keeps the portable fill (the specs compare the two) */
static fill_fn fill_impl(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const char *off = getenv("SLAYER_NO_AVX512");
    if (__builtin_cpu_supports("avx512f") && !(off && *off && strcmp(off, "0") != 0)) return fill_row_avx512;
#endif
    return fill_row;
}

int sl_sparse_rows_new(sl_sparse_rows **out, const sl_tensor *x, double maxDensity)
{
    static fill_fn fill; /* chosen once (every thread would choose the same) */
    if (!fill) fill = fill_impl();
    *out = NULL;
    if (x->device != SL_CPU || !sl_tensor_is_contiguous(x) || x->ndim < 2)
        return sl_errorf("dense: sparse input must be a contiguous CPU tensor with a time dimension");
    sl_sparse_rows *s = calloc(1, sizeof *s);
    if (!s) return sl_errorf_code(SL_ENOMEM, "dense: out of memory building the sparse input");
    s->T = x->shape[x->ndim - 1];
    s->N = x->shape[0];
    s->I = s->N && s->T ? x->numel / (s->N * s->T) : 0;
    int64_t rows = s->N * s->I;
    s->start = sl_scratch_alloc(start_bytes(s));
    if (!s->start) goto oom;
    /* count per row, then fill: two passes, both parallel over rows */
    SL_FOR(r, rows, rows * s->T > SL_PAR_MIN, { s->start[r + 1] = count_row(x->data + r * s->T, s->T); });
    s->start[0] = 0;
    for (int64_t r = 0; r < rows; r++) s->start[r + 1] += s->start[r];
    if ((double)s->start[rows] > maxDensity * (double)x->numel) {
        sl_sparse_rows_free(s); /* nnz is still 0: only start is held */
        return 0;
    }
    s->nnz = s->start[rows];
    s->t = sl_scratch_alloc(sizeof(int32_t) * (size_t)(s->nnz + 1));
    s->v = sl_scratch_alloc(sizeof(float) * (size_t)(s->nnz + 1));
    if (!s->t || !s->v) goto oom;
    SL_FOR(r, rows, rows * s->T > SL_PAR_MIN, {
        int64_t k = s->start[r], end = s->start[r + 1];
        if (k < end) fill(s->t + k, s->v + k, x->data + r * s->T, s->T, end - k);
    });
    *out = s;
    return 0;
oom:
    sl_sparse_rows_free(s);
    return sl_errorf_code(SL_ENOMEM, "dense: out of memory building the sparse input");
}

/* One sample, one block of on outputs starting at o0:
   yT[t, o] += v * wT[i, o0 + o] for every non-zero v = x[n, i, t].
   (One hot function around the whole loop nest, so the row update is
   inlined and vectorised rather than called per spike.) */
SL_HOT SL_NO_JAM
static void scatter_block(float *restrict yT, const float *restrict wT, const sl_sparse_rows *x, int64_t n, int64_t o0,
                          int64_t on, int64_t O)
{
    const int64_t *start = x->start + n * x->I;
    for (int64_t i = 0; i < x->I; i++) {
        const float *w = wT + i * O + o0;
        for (int64_t k = start[i]; k < start[i + 1]; k++) {
            float *y = yT + (int64_t)x->t[k] * on, v = x->v[k];
#pragma omp simd
            for (int64_t o = 0; o < on; o++) y[o] += v * w[o];
        }
    }
}

/* out [N, O, T] = W [O, I] . x[n] for sparse x; wT is W^T [I, O] */
#define SPARSE_FWD_OB 256
int sl_dense_sparse_forward(sl_tensor *out, const sl_sparse_rows *x, const sl_tensor *wT)
{
    SL_REQUIRE_CONTIGUOUS("dense", out, wT);
    int64_t N = x->N, I = x->I, T = x->T, O = wT->numel / (I ? I : 1);
    if (wT->numel != I * O || out->numel != N * O * T)
        return sl_errorf("dense: sparse input [%lld, %lld, %lld], weight of %lld and output of %lld elements do not fit",
                         (long long)N, (long long)I, (long long)T, (long long)wT->numel, (long long)out->numel);
    if (out->numel == 0) return 0;
    /* split O into blocks so that a batch of one still uses every thread,
       and a block's yT [T, ob] stays in L2 */
    int64_t ob = O > SPARSE_FWD_OB ? SPARSE_FWD_OB : O;
    int64_t nob = (O + ob - 1) / ob;
    size_t bufBytes = (size_t)(T * ob) * sizeof(float);
    int64_t jobs = N * nob;
    int oom = 0;
#pragma omp parallel if (jobs > 1 && x->nnz * O > SL_PAR_MIN)
    {
        float *yT = sl_scratch_alloc(bufBytes);
        if (!yT) oom = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t j = 0; j < jobs; j++) {
            if (!yT) continue;
            int64_t n = j / nob, o0 = (j % nob) * ob, on = O - o0 < ob ? O - o0 : ob;
            memset(yT, 0, (size_t)(T * on) * sizeof(float));
            scatter_block(yT, wT->data, x, n, o0, on, O);
            float *y = out->data + (n * O + o0) * T;
            for (int64_t o = 0; o < on; o++)
                for (int64_t t = 0; t < T; t++) y[o * T + t] = yT[t * on + o];
        }
        sl_scratch_free(yT, bufBytes);
    }
    if (oom) return sl_errorf_code(SL_ENOMEM, "dense: out of memory");
    return 0;
}

/* gw [O, I] = sum_{n,t} g[n, :, t] x[n, i, t] for sparse x; g [N, O, T].
   The output gradient is copied time-major in blocks of SPARSE_OB outputs
   (the last block zero-padded), gT[b][n, t, 0..SPARSE_OB), so one block
   stays in L2 while the non-zeros of x gather from it into SPARSE_OB
   accumulators held in registers; the work is split by (block, input
   index), so each gw[o, i] is written once, by one thread. */
#define SPARSE_OB 32
SL_HOT SL_NO_JAM
static void gather_block(float *restrict acc, const float *restrict gb, const sl_sparse_rows *x, int64_t i)
{
    float a[SPARSE_OB] = {0};
    for (int64_t n = 0; n < x->N; n++) {
        const int64_t *start = x->start + n * x->I + i;
        for (int64_t k = start[0]; k < start[1]; k++) {
            const float *g = gb + (n * x->T + x->t[k]) * SPARSE_OB;
            float v = x->v[k];
#pragma omp simd
            for (int o = 0; o < SPARSE_OB; o++) a[o] += v * g[o];
        }
    }
    memcpy(acc, a, sizeof a);
}

int sl_dense_sparse_weight_grad(sl_tensor *gw, const sl_sparse_rows *x, const sl_tensor *gout)
{
    SL_REQUIRE_CONTIGUOUS("dense weight gradient", gw, gout);
    int64_t N = x->N, I = x->I, T = x->T, O = gw->numel / (I ? I : 1);
    if (gw->numel != I * O || gout->numel != N * O * T)
        return sl_errorf("dense weight gradient: sparse input [%lld, %lld, %lld], weight of %lld and output gradient "
                         "of %lld elements do not fit",
                         (long long)N, (long long)I, (long long)T, (long long)gw->numel, (long long)gout->numel);
    if (gw->numel == 0) return 0;
    int64_t nob = (O + SPARSE_OB - 1) / SPARSE_OB, bs = N * T * SPARSE_OB;
    size_t gtBytes = (size_t)(nob * bs) * sizeof(float);
    float *gT = sl_scratch_alloc(gtBytes);
    if (!gT) return sl_errorf_code(SL_ENOMEM, "dense weight gradient: out of memory");
    SL_FOR(j, nob * N, nob * bs > SL_PAR_MIN, {
        int64_t b = j / N, n = j % N, o0 = b * SPARSE_OB, on = O - o0 < SPARSE_OB ? O - o0 : SPARSE_OB;
        float *d = gT + b * bs + n * T * SPARSE_OB;
        const float *g = gout->data + (n * O + o0) * T;
        if (on < SPARSE_OB) memset(d, 0, (size_t)(T * SPARSE_OB) * sizeof(float));
        for (int64_t o = 0; o < on; o++)
            for (int64_t t = 0; t < T; t++) d[t * SPARSE_OB + o] = g[o * T + t];
    });
    SL_FOR(j, nob * I, x->nnz * SPARSE_OB * nob > SL_PAR_MIN, {
        int64_t b = j / I, i = j % I, o0 = b * SPARSE_OB, on = O - o0 < SPARSE_OB ? O - o0 : SPARSE_OB;
        float acc[SPARSE_OB];
        gather_block(acc, gT + b * bs, x, i);
        for (int64_t o = 0; o < on; o++) gw->data[(o0 + o) * I + i] = acc[o];
    });
    sl_scratch_free(gT, gtBytes);
    return 0;
}

/* ---- sparse conv ---------------------------------------------------------

   The same scatter and gather for a convolution whose input is a spike
   train (groups 1): input row i = (c, ih, iw) reaches output position
   (oh, ow) through tap (ki, kj) when ih = oh*sh - ph + ki*dh and
   iw = ow*sw - pw + kj*dw.  Forward, per sample:
     yT[(oh, ow, t), :] += v * wT[(c, ki, kj), :]   for every non-zero v = x[n, c, ih, iw, t]
   Weight gradient, race-free by weight column (c, ki, kj):
     gw[:, c, ki, kj] = sum_{n, ih, iw, t} x[n, c, ih, iw, t] * g[n, :, oh, ow, t]   */

/* output position reached from input (ih, iw) through tap (ki, kj), or -1 */
static inline int64_t tap_target(int64_t ih, int64_t iw, int64_t ki, int64_t kj, const sl_conv_dims *d,
                                 const sl_conv_params *p)
{
    int64_t nh = ih + p->ph - ki * p->dh, nw = iw + p->pw - kj * p->dw;
    if (nh < 0 || nw < 0 || nh % p->sh || nw % p->sw) return -1;
    int64_t oh = nh / p->sh, ow = nw / p->sw;
    return oh < d->OH && ow < d->OW ? oh * d->OW + ow : -1;
}

static int sparse_conv_check(const char *op, const sl_tensor *in, const sl_sparse_rows *x, const sl_conv_dims *d,
                             const sl_conv_params *p)
{
    if (p->groups != 1) return sl_errorf("%s: the sparse path needs groups = 1, got %d", op, p->groups);
    if (x->N != d->N || x->T != d->T || x->I != d->C * d->H * d->W)
        return sl_errorf("%s: sparse input does not match the input tensor", op);
    (void)in;
    return 0;
}

SL_HOT SL_NO_JAM
static void conv_scatter_sample(float *restrict yT, const float *restrict wT, const sl_sparse_rows *x, int64_t n,
                                const sl_conv_dims *d, const sl_conv_params *p)
{
    int64_t O = d->O, T = d->T;
    const int64_t *start = x->start + n * x->I;
    for (int64_t c = 0; c < d->C; c++)
        for (int64_t ih = 0; ih < d->H; ih++)
            for (int64_t iw = 0; iw < d->W; iw++) {
                int64_t i = (c * d->H + ih) * d->W + iw;
                if (start[i] == start[i + 1]) continue;
                for (int64_t ki = 0; ki < p->kh; ki++)
                    for (int64_t kj = 0; kj < p->kw; kj++) {
                        int64_t pos = tap_target(ih, iw, ki, kj, d, p);
                        if (pos < 0) continue;
                        const float *w = wT + ((c * p->kh + ki) * p->kw + kj) * O;
                        float *yb = yT + pos * T * O;
                        for (int64_t k = start[i]; k < start[i + 1]; k++) {
                            float *y = yb + (int64_t)x->t[k] * O, v = x->v[k];
#pragma omp simd
                            for (int64_t o = 0; o < O; o++) y[o] += v * w[o];
                        }
                    }
            }
}

/* out [N, O, OH, OW, T] = conv(x) for sparse x (of the shape of `in`);
   wT is the weight as [C*kh*kw, O] */
int sl_conv_sparse_forward(sl_tensor *out, const sl_tensor *in, const sl_sparse_rows *x, const sl_tensor *wT,
                           const sl_conv_params *p)
{
    SL_REQUIRE_CONTIGUOUS("conv", out, wT);
    sl_conv_dims d;
    /* conv_dims_of reads the weight's shape: [O, C, kh, kw, 1] as a view of wT's size */
    sl_tensor wview = *wT;
    wview.ndim = 5;
    wview.shape[0] = out->shape[1];
    wview.shape[1] = in->shape[1];
    wview.shape[2] = p->kh;
    wview.shape[3] = p->kw;
    wview.shape[4] = 1;
    if (wT->numel != (int64_t)out->shape[1] * in->shape[1] * p->kh * p->kw)
        return sl_errorf("conv: the transposed weight has %lld elements, expected %lld", (long long)wT->numel,
                         (long long)out->shape[1] * in->shape[1] * p->kh * p->kw);
    int rc = conv_dims_of("conv", in, &wview, out, p, &d);
    if (!rc) rc = sparse_conv_check("conv", in, x, &d, p);
    if (rc || out->numel == 0) return rc;
    size_t bufBytes = (size_t)(d.P * d.O) * sizeof(float);
    int oom = 0;
#pragma omp parallel if (d.N > 1 && x->nnz * d.KK * d.O > SL_PAR_MIN)
    {
        float *yT = sl_scratch_alloc(bufBytes);
        if (!yT) oom = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t n = 0; n < d.N; n++) {
            if (!yT) continue;
            memset(yT, 0, bufBytes);
            conv_scatter_sample(yT, wT->data, x, n, &d, p);
            float *y = out->data + n * d.O * d.P;
            for (int64_t o = 0; o < d.O; o++)
                for (int64_t q = 0; q < d.P; q++) y[o * d.P + q] = yT[q * d.O + o];
        }
        sl_scratch_free(yT, bufBytes);
    }
    if (oom) return sl_errorf_code(SL_ENOMEM, "conv: out of memory");
    return 0;
}

SL_HOT SL_NO_JAM
static void conv_gather_column(float *restrict acc, const float *restrict gb, const sl_sparse_rows *x, int64_t c,
                               int64_t ki, int64_t kj, const sl_conv_dims *d, const sl_conv_params *p)
{
    float a[SPARSE_OB] = {0};
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t ih = 0; ih < d->H; ih++)
            for (int64_t iw = 0; iw < d->W; iw++) {
                const int64_t *start = x->start + n * x->I + (c * d->H + ih) * d->W + iw;
                if (start[0] == start[1]) continue;
                int64_t pos = tap_target(ih, iw, ki, kj, d, p);
                if (pos < 0) continue;
                const float *gn = gb + (n * d->P + pos * d->T) * SPARSE_OB;
                for (int64_t k = start[0]; k < start[1]; k++) {
                    const float *g = gn + (int64_t)x->t[k] * SPARSE_OB;
                    float v = x->v[k];
#pragma omp simd
                    for (int o = 0; o < SPARSE_OB; o++) a[o] += v * g[o];
                }
            }
    memcpy(acc, a, sizeof a);
}

/* gw [O, C, kh, kw] = the weight gradient of conv for sparse x */
int sl_conv_sparse_weight_grad(sl_tensor *gw, const sl_tensor *in, const sl_sparse_rows *x, const sl_tensor *gout,
                               const sl_conv_params *p)
{
    SL_REQUIRE_CONTIGUOUS("conv weight gradient", gw, gout);
    sl_conv_dims d;
    int rc = conv_dims_of("conv weight gradient", in, gw, gout, p, &d);
    if (!rc) rc = sparse_conv_check("conv weight gradient", in, x, &d, p);
    if (rc || gw->numel == 0) return rc;
    int64_t O = d.O, nob = (O + SPARSE_OB - 1) / SPARSE_OB, bs = d.N * d.P * SPARSE_OB, CKK = d.C * d.KK;
    size_t gtBytes = (size_t)(nob * bs) * sizeof(float);
    float *gT = sl_scratch_alloc(gtBytes);
    if (!gT) return sl_errorf_code(SL_ENOMEM, "conv weight gradient: out of memory");
    /* position-major copies of the output gradient, SPARSE_OB outputs a block */
    SL_FOR(j, nob * d.N, nob * bs > SL_PAR_MIN, {
        int64_t b = j / d.N, n = j % d.N, o0 = b * SPARSE_OB, on = O - o0 < SPARSE_OB ? O - o0 : SPARSE_OB;
        float *dst = gT + b * bs + n * d.P * SPARSE_OB;
        const float *g = gout->data + (n * O + o0) * d.P;
        if (on < SPARSE_OB) memset(dst, 0, (size_t)(d.P * SPARSE_OB) * sizeof(float));
        for (int64_t o = 0; o < on; o++)
            for (int64_t q = 0; q < d.P; q++) dst[q * SPARSE_OB + o] = g[o * d.P + q];
    });
    SL_FOR(j, nob * CKK, x->nnz * d.KK * SPARSE_OB * nob > SL_PAR_MIN, {
        int64_t b = j / CKK, col = j % CKK, o0 = b * SPARSE_OB, on = O - o0 < SPARSE_OB ? O - o0 : SPARSE_OB;
        int64_t c = col / d.KK, ki = (col % d.KK) / p->kw, kj = col % p->kw;
        float acc[SPARSE_OB];
        conv_gather_column(acc, gT + b * bs, x, c, ki, kj, &d, p);
        for (int64_t o = 0; o < on; o++) gw->data[(o0 + o) * CKK + col] = acc[o];
    });
    sl_scratch_free(gT, gtBytes);
    return 0;
}

/* ---- folded sum pooling -------------------------------------------------- */

/*
 * x [N, C, H, W, T] seen as [N, C*Hp, Wp, T] (Hp = H + H mod kh, Wp = W +
 * W mod kw, padding rows and columns zero).  pool (adjoint = 0):
 *   y[n, r, q, t] = sum_{i,j} w[i, j] * xf[n, r*sh - ph + i*dh, q*sw - pw + j*dw, t]
 * y is [N, C*Hp/... folded rows = Rf, Wout, T]; unpool (adjoint = 1) is the
 * transpose: it scatters y back into xf.  `in` is x for pool and y for
 * unpool; both tensors are given with their C-channel shapes.
 */
int sl_fold_pool(sl_tensor *y, sl_tensor *x, const sl_tensor *weight, const sl_conv_params *p, int adjoint,
                 int odd_pad)
{
    int dev = SL_DEVICE_OF("pool", y, x, weight);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("pool", y, x, weight);
    char b1[128], b2[128];
    if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->ph < 0 || p->pw < 0)
        return sl_errorf("pool: invalid kernel, stride, padding or dilation");
    if (x->ndim != 5 || y->ndim != 5 || weight->numel != (int64_t)p->kh * p->kw)
        return sl_errorf("pool: expected 5-D tensors and a %dx%d weight", p->kh, p->kw);
    sl_fold f;
    int bad = sl_fold_of(&f, x->shape, p, odd_pad);
    int64_t N = f.N, C = f.C, H = f.H, W = f.W, T = f.T, Hp = f.Hp, Hf = f.Hf, Rf = f.Rf, Q = f.Q;
    if (bad || y->shape[0] != N || y->shape[1] != C || y->shape[2] != Rf / C || y->shape[3] != Q || y->shape[4] != T)
        return sl_errorf("pool: input %s and output %s do not fit the folded pooling", sl_shape_str(x, b1, sizeof b1),
                         sl_shape_str(y, b2, sizeof b2));
    SL_DISPATCH(sl_fold_pool, dev, y, x, weight, p, adjoint, odd_pad);
    if ((adjoint ? x : y)->numel == 0) return 0; /* nothing to write (and no data pointer) */
    const float *w = weight->data;
    if (!adjoint) {
        /* parallel over (n, output row): each clears and fills its own row
           while it is in cache */
        SL_FOR(job, N * Rf, y->numel * p->kh * p->kw > SL_PAR_MIN, {
            int64_t n = job / Rf, r = job % Rf;
            float *yr = y->data + (n * Rf + r) * Q * T;
            memset(yr, 0, (size_t)(Q * T) * sizeof(float));
            for (int64_t i = 0; i < p->kh; i++) {
                int64_t fr = r * p->sh - p->ph + i * p->dh;
                if (fr < 0 || fr >= Hf) continue;
                int64_t c = fr / Hp, h = fr % Hp;
                if (h >= H) continue; /* appended zero row */
                const float *xr = x->data + ((n * C + c) * H + h) * W * T;
                for (int64_t j = 0; j < p->kw; j++) {
                    float wij = w[i * p->kw + j];
                    for (int64_t q = 0; q < Q; q++) {
                        int64_t col = q * p->sw - p->pw + j * p->dw;
                        if (col < 0 || col >= W) continue;
                        axpy_t(yr + q * T, xr + col * T, wij, T);
                    }
                }
            }
        });
        return 0;
    }
    /* adjoint: x[n, fr, col, t] += w[i, j] * y[n, r, q, t]; parallel over
       (n, input row fr) gathering from the output rows that reach it */
    SL_FOR(job, N * Hf, x->numel * p->kh * p->kw > SL_PAR_MIN, {
        int64_t n = job / Hf, fr = job % Hf;
        int64_t c = fr / Hp, h = fr % Hp;
        if (h < H) { /* every real row is one job: cleared here, in cache */
            float *xr = x->data + ((n * C + c) * H + h) * W * T;
            memset(xr, 0, (size_t)(W * T) * sizeof(float));
            for (int64_t i = 0; i < p->kh; i++) {
                int64_t num = fr + p->ph - i * p->dh;
                if (num < 0 || num % p->sh) continue;
                int64_t r = num / p->sh;
                if (r >= Rf) continue;
                const float *yr = y->data + (n * Rf + r) * Q * T;
                for (int64_t j = 0; j < p->kw; j++) {
                    float wij = w[i * p->kw + j];
                    for (int64_t q = 0; q < Q; q++) {
                        int64_t col = q * p->sw - p->pw + j * p->dw;
                        if (col < 0 || col >= W) continue;
                        axpy_t(xr + col * T, yr + q * T, wij, T);
                    }
                }
            }
        }
    });
    return 0;
}
