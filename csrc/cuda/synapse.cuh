/*
 * synapse.cuh -- the per-element and per-phase arithmetic of synapse.cu,
 * usable on the host and the device, so that tests/c/test_cuda_synapse.c can
 * check it against csrc/ops/synapse.c without a GPU.
 *
 *   batch:   chunks of samples whose columns fit a cap, one GEMM plan per group and chunk
 *   im2col:  col[s, (c, i, j), (oh, ow, t)] = x[n0 + s, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw, t]
 *   col2im:  gin[s, c, ih, iw, t] = sum over the (i, j) that read it of col[s, (c, i, j), (oh, ow, t)]
 *   pool:    y[n, r, q, t] = sum_{i, j} w[i, j] * xf[n, r*sh - ph + i*dh, q*sw - pw + j*dw, t]
 *   unpool:  its adjoint, x[n, fr, col, t] = sum of w[i, j] * y[n, r, q, t] over the windows reading it
 *   sparse dense: y[n, o, t] = sum over the non-zeros x[n, i, t] = v of v * wT[i, o]
 *                 gw[o, i] = sum over the non-zeros of row (n, i) of v * gT[n, t, o]
 * Sums run in the CPU's order with separately rounded products, so pool,
 * unpool, col2im and the sparse dense path are bit-identical to the CPU.
 */
#ifndef SLAYER_CUDA_SYNAPSE_CUH
#define SLAYER_CUDA_SYNAPSE_CUH

#include <stdint.h>

#include "../shapes.h"
#include "../slayer.h"

#include "../hostdev.h"

/* the geometry of a per-time-bin convolution, as csrc/ops/synapse.c's
   (../shapes.h: P = OH * OW * T, and the kernel's sizes) */
typedef sl_conv_dims slc_conv_dims;

/* ---- the products, as cuBLAS's column-major arguments ------------------
   C[b] = op(A[b]) op(B[b]) + beta C[b] for b < batch (op: transpose when
   ta/tb), column-major with leading dimensions ld*, batch strides s*.  Our
   matrices are row-major: a row-major [r, c] is the column-major [c, r] of
   its transpose, so row-major Y = X1 . X2 is the column-major Y^T = X2^T
   X1^T, the operands swapped.  synapse.cu hands plans to cuBLAS; the host
   test runs them with a plain loop. */
typedef struct {
    int ta, tb, m, n, k, batch;
    const float *A;
    int lda;
    long long sA;
    const float *B;
    int ldb;
    long long sB;
    float *C;
    int ldc;
    long long sC;
    float beta;
} slc_gemm;

/* forward, group g, `batch` samples: y[s] (O x P, rows g*Og..) = W_g (Og x Kg)
   . src[s] (rows g*Kg.. of Kg x P, sample stride sSrc) */
static inline slc_gemm slc_gemm_forward(const slc_conv_dims *d, int64_t g, const float *src, long long sSrc,
                                        const float *w, float *y, int batch)
{
    int64_t Og = d->O / d->G, Kg = d->C / d->G * d->KK;
    slc_gemm q = {0, 0, (int)d->P, (int)Og, (int)Kg, batch, src + g * Kg * d->P, (int)d->P, sSrc,
                  w + g * Og * Kg, (int)Kg, 0, y + g * Og * d->P, (int)d->P, (long long)(d->O * d->P), 0.0f};
    return q;
}

/* input gradient columns, group g: dst[s] (rows g*Kg.., Kg x P, sample
   stride sDst) = W_g^T (Kg x Og) . gout[s] (rows g*Og.., Og x P) */
static inline slc_gemm slc_gemm_dgrad(const slc_conv_dims *d, int64_t g, const float *gout, const float *w, float *dst,
                                      long long sDst, int batch)
{
    int64_t Og = d->O / d->G, Kg = d->C / d->G * d->KK;
    slc_gemm q = {0, 1, (int)d->P, (int)Kg, (int)Og, batch, gout + g * Og * d->P, (int)d->P,
                  (long long)(d->O * d->P), w + g * Og * Kg, (int)Kg, 0, dst + g * Kg * d->P, (int)d->P, sDst, 0.0f};
    return q;
}

/* weight gradient, group g: dst[s] (rows g*Og.. of O x Kg, sample stride
   sDst) = beta dst[s] + gout[s] (Og x P) . src[s]^T (P x Kg) */
static inline slc_gemm slc_gemm_wgrad(const slc_conv_dims *d, int64_t g, const float *src, long long sSrc,
                                      const float *gout, float *dst, long long sDst, int batch, float beta)
{
    int64_t Og = d->O / d->G, Kg = d->C / d->G * d->KK;
    slc_gemm q = {1, 0, (int)Kg, (int)Og, (int)d->P, batch, src + g * Kg * d->P, (int)d->P, sSrc,
                  gout + g * Og * d->P, (int)d->P, (long long)(d->O * d->P), dst + g * Og * Kg, (int)Kg, sDst, beta};
    return q;
}

/* ---- how a call's batch is cut --------------------------------------------
   Chunks of nb samples, one batched product per group and chunk: as many
   samples as keep their columns within col_cap bytes (at least one), or the
   whole batch when the kernel covers the input (the columns are x itself).
   The weight gradient takes per-sample partial products, as many samples at
   a time as fit in part_cap bytes, when two or more fit and N > 1;
   otherwise one product per sample (and, covering, one sample a chunk). */
typedef struct {
    slc_conv_dims d;
    int full;           /* the kernel covers the input */
    int64_t nb;         /* samples per chunk */
    int64_t xs, ys, cs; /* one sample's elements of x, y and the columns */
} slc_conv_job;

static inline slc_conv_job slc_conv_job_of(const slc_conv_dims *d, size_t col_cap)
{
    slc_conv_job j;
    j.d = *d;
    j.full = d->OH == 1 && d->OW == 1 && d->ph == 0 && d->pw == 0 && d->dh == 1 && d->dw == 1 && d->H == d->kh &&
             d->W == d->kw;
    j.xs = d->C * d->H * d->W * d->T;
    j.ys = d->O * d->P;
    j.cs = d->C * d->KK * d->P;
    if (j.full) {
        j.nb = d->N;
    } else {
        size_t per = (size_t)j.cs * sizeof(float);
        int64_t nb = per ? (int64_t)(col_cap / per) : d->N;
        if (nb < 1) nb = 1;
        j.nb = nb < d->N ? nb : d->N;
    }
    return j;
}

/* the samples of the chunk starting at n0 */
static inline int64_t slc_conv_chunk(const slc_conv_job *j, int64_t n0)
{
    return j->d.N - n0 < j->nb ? j->d.N - n0 : j->nb;
}

/* column elements of one chunk's buffer (none when the columns are x) */
static inline size_t slc_conv_col_elems(const slc_conv_job *j)
{
    return j->full ? 0 : (size_t)(j->nb * j->cs);
}

/* ---- the weight gradient's segments ----------------------------------------
   Its products run over P = OH*OW*T, long beside their small Og x Kg
   result (W2's first conv: 307,200 against 16 x 50), and cuBLAS gives such a
   product a handful of thread blocks (W2's first conv at batch 64 took 57 ms
   on an H200 for 31 GFLOP).  So when P holds two segments or more, each
   sample's P is cut into segments of `seg` positions (at least min_seg, at
   most 256 of them), one partial product each, batched with stride seg, and
   one more for the tail; the partials are added in a fixed order
   afterwards (slc_lane_sum). */
static inline int64_t slc_wgrad_seg(int64_t P, int64_t min_seg)
{
    if (P < 2 * min_seg) return P;
    int64_t s = (P + 255) / 256;
    return s < min_seg ? min_seg : s;
}

/* partial products per sample */
static inline int64_t slc_wgrad_nseg(int64_t P, int64_t seg) { return (P + seg - 1) / seg; }

/* sample s's segments, group g: dst[q] (rows g*Og.. of O x Kg, partial
   stride wn) = gout[:, q*seg ..] . src[:, q*seg ..]^T; the full segments in
   one batched plan (*full), the tail in *tail (batch 0 when there is none) */
static inline void slc_gemm_wgrad_segments(const slc_conv_dims *d, int64_t g, const float *src, const float *gout,
                                           float *dst, long long wn, int64_t seg, slc_gemm *full, slc_gemm *tail)
{
    int64_t Og = d->O / d->G, Kg = d->C / d->G * d->KK;
    int64_t nfull = d->P / seg, rest = d->P - nfull * seg;
    slc_gemm a = {1, 0, (int)Kg, (int)Og, (int)seg, (int)nfull, src + g * Kg * d->P, (int)d->P, (long long)seg,
                  gout + g * Og * d->P, (int)d->P, (long long)seg, dst + g * Og * Kg, (int)Kg, wn, 0.0f};
    slc_gemm b = a;
    b.k = (int)rest;
    b.batch = rest > 0;
    b.A = a.A + nfull * seg;
    b.B = a.B + nfull * seg;
    b.C = a.C + nfull * wn;
    *full = a;
    *tail = b;
}

/* the weight gradient's cut for wn weights and nseg partials a sample: 1
   when it takes partial products (j->nb samples at a time), 0 for one
   product per sample accumulated in place */
static inline int slc_conv_wgrad_partials(slc_conv_job *j, int64_t wn, int64_t nseg, size_t part_cap)
{
    int64_t maxSamples = (int64_t)(part_cap / ((size_t)wn * (size_t)nseg * sizeof(float)));
    int partials = nseg > 1 ? maxSamples >= 1 : j->d.N > 1 && maxSamples >= 2;
    if (partials && j->nb > maxSamples) j->nb = maxSamples;
    if (!partials && j->full) j->nb = 1;
    return partials;
}

/* the partials' sum for weight k: lane `lane` of `lanes` adds partials
   lane, lane + lanes, ... in order; the lanes' sums are then added to the
   weight in lane order */
SL_HD float slc_lane_sum(const float *part, int64_t np, int64_t wn, int64_t k, int lane, int lanes)
{
    float v = 0.0f;
    for (int64_t s = lane; s < np; s += lanes) v = v + part[s * wn + k];
    return v;
}

/* element e of the columns of samples n0, n0 + 1, ... */
SL_HD float slc_im2col_value(const float *x, const slc_conv_dims *d, int64_t n0, int64_t e)
{
    int64_t q = e / d->T, t = e % d->T;
    int64_t ow = q % d->OW;
    q /= d->OW;
    int64_t oh = q % d->OH;
    q /= d->OH;
    int64_t k = q % d->KK;
    q /= d->KK;
    int64_t c = q % d->C, s = q / d->C;
    int64_t ih = oh * d->sh - d->ph + (k / d->kw) * d->dh, iw = ow * d->sw - d->pw + (k % d->kw) * d->dw;
    return ih >= 0 && ih < d->H && iw >= 0 && iw < d->W ? x[((((n0 + s) * d->C + c) * d->H + ih) * d->W + iw) * d->T + t]
                                                        : 0.0f;
}

/* element e (sample s, c, ih, iw, t) of the input gradient from the
   gradient columns col [s, (c, i, j), P]: the (i, j) terms in order */
SL_HD float slc_col2im_value(const float *col, const slc_conv_dims *d, int64_t e)
{
    int64_t q = e / d->T, t = e % d->T;
    int64_t iw = q % d->W;
    q /= d->W;
    int64_t ih = q % d->H;
    q /= d->H;
    int64_t c = q % d->C, s = q / d->C;
    const float *src = col + (s * d->C + c) * d->KK * d->P;
    float acc = 0.0f;
    for (int64_t k = 0; k < d->KK; k++) {
        int64_t ohn = ih + d->ph - (k / d->kw) * d->dh, own = iw + d->pw - (k % d->kw) * d->dw;
        if (ohn < 0 || own < 0 || ohn % d->sh || own % d->sw) continue;
        int64_t oh = ohn / d->sh, ow = own / d->sw;
        if (oh >= d->OH || ow >= d->OW) continue;
        acc = acc + src[k * d->P + (oh * d->OW + ow) * d->T + t];
    }
    return acc;
}

/* the folded pooling geometry (sl_fold, shapes.h) */
typedef sl_fold slc_fold;

/* y element e = (n, r, q, t) */
SL_HD float slc_pool_value(const float *x, const float *w, const slc_fold *f, int64_t e)
{
    int64_t a = e / f->T, t = e % f->T;
    int64_t q = a % f->Q;
    a /= f->Q;
    int64_t r = a % f->Rf, n = a / f->Rf;
    float acc = 0.0f;
    for (int i = 0; i < f->kh; i++) {
        int64_t fr = r * f->sh - f->ph + (int64_t)i * f->dh;
        if (fr < 0 || fr >= f->Hf) continue;
        int64_t c = fr / f->Hp, h = fr % f->Hp;
        if (h >= f->H) continue; /* appended zero row */
        const float *xr = x + ((n * f->C + c) * f->H + h) * f->W * f->T;
        for (int j = 0; j < f->kw; j++) {
            int64_t col = q * f->sw - f->pw + (int64_t)j * f->dw;
            if (col < 0 || col >= f->W) continue;
            acc = acc + w[i * f->kw + j] * xr[col * f->T + t];
        }
    }
    return acc;
}

/* x element e = (n, c, h, col, t) of the adjoint */
SL_HD float slc_unpool_value(const float *y, const float *w, const slc_fold *f, int64_t e)
{
    int64_t a = e / f->T, t = e % f->T;
    int64_t col = a % f->W;
    a /= f->W;
    int64_t h = a % f->H;
    a /= f->H;
    int64_t c = a % f->C, n = a / f->C;
    int64_t fr = c * f->Hp + h;
    float acc = 0.0f;
    for (int i = 0; i < f->kh; i++) {
        int64_t num = fr + f->ph - (int64_t)i * f->dh;
        if (num < 0 || num % f->sh) continue;
        int64_t r = num / f->sh;
        if (r >= f->Rf) continue;
        const float *yr = y + (n * f->Rf + r) * f->Q * f->T;
        for (int j = 0; j < f->kw; j++) {
            int64_t qn = col + f->pw - (int64_t)j * f->dw;
            if (qn < 0 || qn % f->sw) continue;
            int64_t q = qn / f->sw;
            if (q >= f->Q) continue;
            acc = acc + w[i * f->kw + j] * yr[q * f->T + t];
        }
    }
    return acc;
}

/* ---- sparse dense: x [N, I, T] listed as a CSR over rows (n, i):
   row r holds (tt[k], vv[k]) for start[r] <= k < start[r + 1], t increasing */

#define SLC_SP_OB 128   /* outputs per block, one per thread */
#define SLC_SP_TT 64    /* time bins per forward block */
#define SLC_SP_ROWS 512 /* row starts staged at a time */
#define SLC_SP_MAX_DENSITY 0.05 /* the event path's largest expected share of non-zeros */

/* The path and the list's capacity for an input of elems values, chosen on
   the host without waiting for the device: hint is the non-zero count of
   the layer's last input (-1 when none is known yet), force the layer's
   sparse setting (sl_conv_params).  0: the GEMM path (force -1, or a hint
   above SLC_SP_MAX_DENSITY of elems unless force is 1); otherwise the event
   path with room for that many non-zeros: twice the hint plus elems / 256,
   at most twice SLC_SP_MAX_DENSITY of elems (all of them when forced).
   The count is exact on the device: a list that would overflow is not
   written, and the kernels read x itself instead (the *_scan twins), so
   the hint decides the speed, never the result. */
SL_HD int64_t slc_sp_capacity(int64_t elems, int64_t hint, int force)
{
    if (force < 0) return 0;
    const int64_t most = force > 0 ? elems : (int64_t)(2 * SLC_SP_MAX_DENSITY * (double)elems);
    int64_t cap = most;
    if (hint >= 0) {
        if (!force && (double)hint > SLC_SP_MAX_DENSITY * (double)elems) return 0;
        cap = 2 * hint + elems / 256;
        cap = cap < most ? cap : most;
    }
    return cap > 0 ? cap : 1;
}

/* forward block (n, output block ob, tile of SLC_SP_TT bins from t0) */
typedef struct {
    int64_t n, ob, t0, t1; /* bins [t0, t1) */
} slc_sp_block;

SL_HD slc_sp_block slc_sp_forward_block(int64_t b, int64_t T, int64_t oblocks)
{
    slc_sp_block k;
    int64_t tiles = (T + SLC_SP_TT - 1) / SLC_SP_TT, rest = b / tiles;
    k.t0 = (b % tiles) * SLC_SP_TT;
    k.t1 = k.t0 + SLC_SP_TT < T ? k.t0 + SLC_SP_TT : T;
    k.ob = rest % oblocks;
    k.n = rest / oblocks;
    return k;
}

/* stage the starts of rows (n, i0 .. i0 + ni) (ni + 1 values) */
SL_HD void slc_sp_stage(int64_t *st, const int64_t *start, const slc_sp_block *k, int64_t I, int64_t i0, int ni,
                          int tid, int nthreads)
{
    for (int j = tid; j <= ni; j += nthreads) st[j] = start[k->n * I + i0 + j];
}

/* thread tid's output column over the staged rows: acc[t - t0] (stride
   accStride) += v * wT[i, o] for the row's non-zeros in [t0, t1) */
SL_HD void slc_sp_forward_rows(float *acc, int accStride, const int64_t *st, const int32_t *tt, const float *vv,
                                 const float *wT, const slc_sp_block *k, int64_t O, int64_t i0, int ni, int tid)
{
    const int64_t o = k->ob * SLC_SP_OB + tid;
    for (int ii = 0; ii < ni; ii++) {
        int64_t j = st[ii];
        const int64_t j1 = st[ii + 1];
        while (j < j1 && tt[j] < k->t0) j++;
        if (j == j1 || tt[j] >= k->t1) continue;
        const float w = o < O ? wT[(i0 + ii) * O + o] : 0.0f;
        for (; j < j1; j++) {
            const int64_t t = tt[j];
            if (t >= k->t1) break;
            float *a = acc + (t - k->t0) * accStride;
            *a = *a + vv[j] * w;
        }
    }
}

/* the same over rows i0 .. i0 + ni - 1 read from x [N, I, T] itself (the
   list overflowed): the same non-zeros in the same order, so the same sums */
SL_HD void slc_sp_forward_scan(float *acc, int accStride, const float *x, const float *wT, const slc_sp_block *k,
                                 int64_t O, int64_t I, int64_t T, int64_t i0, int ni, int tid)
{
    const int64_t o = k->ob * SLC_SP_OB + tid;
    for (int ii = 0; ii < ni; ii++) {
        const float *row = x + (k->n * I + i0 + ii) * T;
        const float w = o < O ? wT[(i0 + ii) * O + o] : 0.0f;
        for (int64_t t = k->t0; t < k->t1; t++) {
            const float v = row[t];
            if (v != 0.0f) {
                float *a = acc + (t - k->t0) * accStride;
                *a = *a + v * w;
            }
        }
    }
}

/* the block's outputs from acc [t][o] (stride accStride) to y [N, O, T],
   consecutive threads on consecutive bins */
SL_HD void slc_sp_forward_store(float *y, const float *acc, int accStride, const slc_sp_block *k, int64_t O,
                                  int64_t T, int tid, int nthreads)
{
    const int w = (int)(k->t1 - k->t0);
    const int no = (int)(O - k->ob * SLC_SP_OB < SLC_SP_OB ? O - k->ob * SLC_SP_OB : SLC_SP_OB);
    for (int idx = tid; idx < no * w; idx += nthreads) {
        int ol = idx / w, j = idx % w;
        y[(k->n * O + k->ob * SLC_SP_OB + ol) * T + k->t0 + j] = acc[j * accStride + ol];
    }
}

/* gw[o, i] for output o: over n, then the non-zeros of row (n, i), of v * gT[n, t, o] */
SL_HD float slc_sp_wgrad_value(const int64_t *start, const int32_t *tt, const float *vv, const float *gT,
                                 int64_t N, int64_t I, int64_t O, int64_t T, int64_t i, int64_t o)
{
    float a = 0.0f;
    for (int64_t n = 0; n < N; n++) {
        const int64_t j1 = start[n * I + i + 1];
        const float *g = gT + n * T * O + o;
        for (int64_t j = start[n * I + i]; j < j1; j++) a = a + vv[j] * g[(int64_t)tt[j] * O];
    }
    return a;
}

/* the same, reading row (n, i) of x [N, I, T] itself (the list overflowed) */
SL_HD float slc_sp_wgrad_scan(const float *x, const float *gT, int64_t N, int64_t I, int64_t O, int64_t T, int64_t i,
                                int64_t o)
{
    float a = 0.0f;
    for (int64_t n = 0; n < N; n++) {
        const float *row = x + (n * I + i) * T;
        const float *g = gT + n * T * O + o;
        for (int64_t t = 0; t < T; t++) {
            const float v = row[t];
            if (v != 0.0f) a = a + v * g[t * O];
        }
    }
    return a;
}

#endif
