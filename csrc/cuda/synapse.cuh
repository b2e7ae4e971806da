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

/* im2col by rows: row ((s * C + c) * KK + k) * OH + oh of the columns of
   samples n0, n0 + 1, ... holds OW * T elements q = ow * T + t.  The row's
   geometry is worked out once (slc_im2col_row_of: a block's), each element
   with one 32-bit division (OW * T fits an int: the CPU op checks P), not
   the six 64-bit ones of a flat element index */
typedef struct {
    const float *xr; /* the input row (n0 + s, c, ih), NULL when ih falls outside */
    int64_t iw0;     /* iw at ow = 0: j * dw - pw */
} slc_im2col_row;

SL_HD slc_im2col_row slc_im2col_row_of(const float *x, const slc_conv_dims *d, int64_t n0, int64_t row)
{
    int64_t oh = row % d->OH, r = row / d->OH;
    int64_t k = r % d->KK;
    r /= d->KK;
    int64_t c = r % d->C, s = r / d->C;
    int64_t ih = oh * d->sh - d->ph + (k / d->kw) * d->dh;
    slc_im2col_row out;
    out.xr = ih >= 0 && ih < d->H ? x + (((n0 + s) * d->C + c) * d->H + ih) * d->W * d->T : (const float *)0;
    out.iw0 = (k % d->kw) * d->dw - d->pw;
    return out;
}

SL_HD float slc_im2col_row_value(const slc_im2col_row *r, const slc_conv_dims *d, uint32_t q)
{
    const uint32_t T = (uint32_t)d->T, ow = q / T, t = q - ow * T;
    const int64_t iw = (int64_t)ow * d->sw + r->iw0;
    return r->xr && iw >= 0 && iw < d->W ? r->xr[iw * d->T + t] : 0.0f;
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

/* ---- direct convolution (no columns) -------------------------------------
   y[n, o, oh, ow, t] = sum over c, i, j in order of w[o, c, i, j] *
   x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw, t]  (0 outside), G = 1.
   A block takes one output row (n, oh), a tile of SLC_DC_TILE of its OW * T
   positions p = ow * T + t (a thread each) and a group of OB outputs, held
   in registers; the group's weights are staged in shared memory, as many
   input channels at a time as SLC_DC_WS floats hold, laid out [c][i][j][o]
   so that a thread's OB products read consecutive words (the same for the
   whole block).  Consecutive threads read consecutive t, so the input loads
   are coalesced.  The im2col path wrote C * KK floats of columns per
   position, each with six 64-bit divisions, and read them back.
   The adjoint (the input gradient of a stride-1, dilation-1 conv, and so
   convTranspose's forward) is the same loop over the output gradient with
   the weights transposed and flipped: gin[n, c, ih, iw, t] = sum over o,
   i', j' of w[o, c, kh-1-i', kw-1-j'] * g[n, o, ih - (kh-1-ph) + i',
   iw - (kw-1-pw) + j', t].  Products are fused multiply-adds accumulated
   in float32 in (c, i, j) order: not the order of the CPU's GEMM, so the
   results agree with it to rounding, as cuBLAS's did. */
#define SLC_DC_TILE 128  /* positions (threads) per block */
#define SLC_DC_WS 8192   /* staged weights per block (32 KB) */
#define SLC_DC_MAX_O 128 /* outputs of a layer the direct path takes, at most */

typedef struct {
    int64_t N, C, H, W, T, O, OH, OW, kh, kw, KK, sh, sw, ph, pw, dh, dw;
    int adjoint; /* weights read as w[c][o][flipped k] of a conv from O to C channels */
} slc_direct;

/* the conv d as a direct loop; the adjoint runs over the output gradient
   [N, O, OH, OW, T] into [N, C, H, W, T] */
static inline slc_direct slc_direct_of(const slc_conv_dims *d, int adjoint)
{
    slc_direct q;
    q.N = d->N, q.T = d->T, q.kh = d->kh, q.kw = d->kw, q.KK = d->KK, q.adjoint = adjoint;
    if (!adjoint) {
        q.C = d->C, q.H = d->H, q.W = d->W, q.O = d->O, q.OH = d->OH, q.OW = d->OW;
        q.sh = d->sh, q.sw = d->sw, q.ph = d->ph, q.pw = d->pw, q.dh = d->dh, q.dw = d->dw;
    } else {
        q.C = d->O, q.H = d->OH, q.W = d->OW, q.O = d->C, q.OH = d->H, q.OW = d->W;
        q.sh = q.sw = q.dh = q.dw = 1;
        q.ph = d->kh - 1 - d->ph, q.pw = d->kw - 1 - d->pw; /* may be negative */
    }
    return q;
}

/* outputs per block: 8, 16 or 32 */
static inline int slc_direct_ob(int64_t O) { return O <= 8 ? 8 : O <= 16 ? 16 : 32; }

/* whether the direct loop takes the conv d (its adjoint: the input
   gradient), else the columns and cuBLAS (also when the layer forces its
   GEMM path: sl_conv_params.sparse -1, conv.sparse = false): one group, a kernel that does not
   cover the input (dense layers stay GEMMs), at most SLC_DC_MAX_O outputs
   (beyond that cuBLAS's blocking reuses the staged input better), an input
   channel's weights that fit the stage, and for the adjoint stride 1 and
   dilation 1 */
static inline int slc_direct_takes(const slc_conv_dims *d, int full, int adjoint)
{
    int64_t O = adjoint ? d->C : d->O;
    if (full || d->G != 1 || O > SLC_DC_MAX_O || d->KK * slc_direct_ob(O) > SLC_DC_WS) return 0;
    if (d->OW * d->T > INT32_MAX || d->W * d->T > INT32_MAX) return 0;
    if (adjoint && (d->sh != 1 || d->sw != 1 || d->dh != 1 || d->dw != 1)) return 0;
    /* slc_direct_accumulate's 32-bit columns: every column a tap visits
       within 2^28 of the row, on either side */
    const slc_direct q = slc_direct_of(d, adjoint);
    const int64_t lim = (int64_t)1 << 28;
    return q.W < lim && q.pw < lim && -q.pw < lim && (q.OW - 1) * q.sw < lim && (q.kw - 1) * q.dw < lim;
}

/* input channels staged at a time */
static inline int64_t slc_direct_cchunk(const slc_direct *q, int ob)
{
    int64_t c = SLC_DC_WS / (q->KK * ob);
    return c < q->C ? c : q->C;
}

/* stage the weights of outputs o0 .. o0 + ob - 1 (0 past O) and channels
   c0 .. c0 + cn - 1: ws[((c - c0) * KK + k) * ob + (o - o0)]; thread tid of
   nthreads */
SL_HD void slc_direct_stage(float *ws, const float *w, const slc_direct *q, int64_t o0, int ob, int64_t c0,
                            int64_t cn, int tid, int nthreads)
{
    /* fewer than SLC_DC_WS elements: 32-bit index arithmetic */
    const uint32_t n = (uint32_t)(cn * q->KK * ob), KK = (uint32_t)q->KK;
    for (uint32_t e = (uint32_t)tid; e < n; e += (uint32_t)nthreads) {
        const uint32_t oo = e % (uint32_t)ob, ck = e / (uint32_t)ob, k = ck % KK;
        const int64_t c = c0 + ck / KK, o = o0 + oo;
        float v = 0.0f;
        if (o < q->O) v = q->adjoint ? w[(c * q->O + o) * q->KK + (q->KK - 1 - k)] : w[(o * q->C + c) * q->KK + k];
        ws[e] = v;
    }
}

/* thread's position: acc[0 .. ob-1] += the staged channels' terms at output
   (n, oh, ow, t), in (c, i, j) order */
SL_HD void slc_direct_accumulate(float *acc, int ob, const float *ws, const float *x, const slc_direct *q, int64_t n,
                                 int64_t oh, int64_t ow, int64_t t, int64_t c0, int64_t cn)
{
    /* within an input row, 32-bit unsigned arithmetic: a column iw inside
       the row passes (uint32_t)iw < W, one in the padding (negative) wraps
       and fails, and inside the row iw * T < W * T fits (slc_direct_takes) */
    const uint32_t T = (uint32_t)q->T, dw = (uint32_t)q->dw, step = dw * T; /* j moves the input by dw columns */
    const uint32_t iw0 = (uint32_t)(ow * q->sw - q->pw);
    for (int64_t cc = 0; cc < cn; cc++) {
        const float *xc = x + ((n * q->C + c0 + cc) * q->H) * q->W * q->T + t;
        for (int64_t i = 0; i < q->kh; i++) {
            const int64_t ih = oh * q->sh - q->ph + i * q->dh;
            /* a row outside the input: no column passes */
            const int rok = ih >= 0 && ih < q->H;
            const uint32_t W = rok ? (uint32_t)q->W : 0u;
            const float *xr = xc + (rok ? ih : 0) * q->W * q->T;
            uint32_t iw = iw0, off = iw0 * T;
            for (int64_t j = 0; j < q->kw; j++, iw += dw, off += step) {
                /* outside the input, read the row's first element and drop
                   it: a load on every path, no branch around it, so the
                   compiler can issue the next taps' loads early */
                const int in = iw < W;
                const float raw = xr[in ? off : 0u], v = in ? raw : 0.0f;
                const float *wv = ws + (cc * q->KK + i * q->kw + j) * ob;
                for (int o = 0; o < ob; o++) acc[o] = fmaf(wv[o], v, acc[o]);
            }
        }
    }
}

/* the block's outputs o0 .. at position p = ow * T + t of row (n, oh) */
SL_HD void slc_direct_store(float *y, const float *acc, int ob, const slc_direct *q, int64_t n, int64_t o0,
                            int64_t oh, int64_t p)
{
    const int64_t rowlen = q->OW * q->T;
    float *yo = y + ((n * q->O + o0) * q->OH + oh) * rowlen + p;
    for (int o = 0; o < ob; o++)
        if (o0 + o < q->O) yo[o * q->OH * rowlen] = acc[o];
}

/* block b's output row (n, oh), first output o0 of its group of ob and
   first position p0 of its tile */
typedef struct {
    int64_t n, oh, o0, p0;
} slc_direct_blk;

SL_HD slc_direct_blk slc_direct_block(int64_t b, const slc_direct *q, int64_t tiles, int64_t groups, int ob)
{
    slc_direct_blk k;
    k.p0 = b % tiles * SLC_DC_TILE;
    b /= tiles;
    k.o0 = b % groups * ob;
    b /= groups;
    k.oh = b % q->OH;
    k.n = b / q->OH;
    return k;
}

/* ---- direct weight gradient (no columns) ---------------------------------
   gw[o, ck] = sum over n, p of g[n, o, p] * col_n[ck, p]  (ck = (c, i, j),
   p = (oh, ow, t), col_n read from x as im2col would write it), G = 1.
   The (n, p) sum is cut into chunks: a segment of up to SLC_WG_SEG positions
   of one output row (n, oh).  A block takes a chunk and a tile of WO outputs
   by SLC_WG_WCK columns; it stages SLC_WG_PCH positions at a time of the
   tile's output gradient and of its columns (computed from x: the tile's
   (c, i, j) offsets are tabulated once, each thread stages one position's
   values, so one 32-bit division per thread and step), then each thread adds
   the step's products into its 2 x 4 outputs, positions in order, four at a
   time (vector loads).  Each chunk's sums are a partial product; the
   partials are added in a fixed order afterwards (slc_lane_sum), as the
   segmented cuBLAS path's. */
#define SLC_WG_PCH 64    /* positions staged per step */
#define SLC_WG_LD 68     /* staged row stride (PCH + 4: 16-byte rows, spread over the banks) */
#define SLC_WG_WCK 64    /* columns per tile */
#define SLC_WG_SEG 2048  /* positions per chunk, at most */

/* threads of a block with WO outputs per tile (2 x 4 each): WO / 2 x 16 */
static inline int slc_wg_threads(int wo) { return wo / 2 * 16; }

/* outputs per tile: 16 or 32 */
static inline int slc_wg_wo(int64_t O) { return O <= 16 ? 16 : 32; }

/* whether the direct loop takes the weight gradient of conv d */
static inline int slc_wg_takes(const slc_conv_dims *d, int full)
{
    /* the stage's 32-bit arithmetic: rows, columns and paddings far from
       SLC_WG_NONE, and every column's offset (slc_wg_table) in 32 bits: the
       last channel's, which a kernel row reaching past the input's rows (in
       the padding) can take past the sample's end (no overflow here: a
       sample's input has at most INT32_MAX elements) */
    const int64_t lim = (int64_t)1 << 26;
    if (full || d->G != 1 || d->O > SLC_DC_MAX_O || d->OW * d->T > INT32_MAX || d->C * d->KK > INT32_MAX ||
        d->H >= lim || d->W >= lim || d->ph >= lim || d->pw >= lim || d->C * d->H * d->W * d->T > INT32_MAX)
        return 0;
    const int64_t reach = (((d->C - 1) * d->H + (d->kh - 1) * d->dh) * d->W + (d->kw - 1) * d->dw + 1) * d->T;
    return reach <= INT32_MAX;
}

/* chunks of one output row, and in all for samples n0 .. n0 + m - 1 */
SL_HD int64_t slc_wg_segs(const slc_conv_dims *d) { return (d->OW * d->T + SLC_WG_SEG - 1) / SLC_WG_SEG; }

/* samples whose partials (per = OH * segs of wn weights each) fit part_cap
   bytes at a time: at least one */
static inline int64_t slc_wg_samples(const slc_conv_dims *d, size_t part_cap)
{
    const int64_t per = d->OH * slc_wg_segs(d), wn = d->O * d->C * d->KK;
    int64_t ms = (int64_t)(part_cap / ((size_t)(per * wn) * sizeof(float)));
    return ms < 1 ? 1 : ms > d->N ? d->N : ms;
}

/* block b's chunk (sample n0 + s, row oh, positions [pstart, pend) of the
   row; partial `chunk` of its group of samples) and tile (og, cg) */
typedef struct {
    int64_t s, oh, og, cg, chunk, pstart, pend;
} slc_wg_blk;

SL_HD slc_wg_blk slc_wg_block(int64_t b, const slc_conv_dims *d, int64_t otiles, int64_t ctiles)
{
    slc_wg_blk k;
    k.cg = b % ctiles;
    b /= ctiles;
    k.og = b % otiles;
    b /= otiles;
    k.chunk = b; /* (s * OH + oh) * segs + seg */
    const int64_t segs = slc_wg_segs(d), seg = b % segs, rowlen = d->OW * d->T;
    b /= segs;
    k.oh = b % d->OH;
    k.s = b / d->OH;
    k.pstart = seg * SLC_WG_SEG;
    k.pend = k.pstart + SLC_WG_SEG < rowlen ? k.pstart + SLC_WG_SEG : rowlen;
    return k;
}

/* a tile column: its kernel offsets i * dh and j * dw, and the offset of
   its element for input position (0, 0) within a sample, ((c * H + i * dh)
   * W + j * dw) * T.  Past the layer's columns the offsets are SLC_WG_NONE,
   far outside any input, so that the stage's bounds tests fail there. */
#define SLC_WG_NONE (-(1 << 29))
typedef struct {
    int32_t di, dj, off, pad;
} slc_wg_col;

/* the tile's column table (columns ck0 ..) */
SL_HD void slc_wg_table(slc_wg_col *tab, const slc_conv_dims *d, int64_t ck0, int tid, int nthreads)
{
    for (int r = tid; r < SLC_WG_WCK; r += nthreads) {
        const int64_t ck = ck0 + r, c = ck / d->KK, k = ck % d->KK;
        const int64_t di = (k / d->kw) * d->dh, dj = (k % d->kw) * d->dw;
        slc_wg_col e = {SLC_WG_NONE, SLC_WG_NONE, 0, 0};
        if (ck < d->C * d->KK)
            e.di = (int32_t)di, e.dj = (int32_t)dj, e.off = (int32_t)(((c * d->H + di) * d->W + dj) * d->T);
        tab[r] = e;
    }
}

/* stage positions p0 .. p0 + PCH - 1 of row oh of sample n (those before
   pend): gs[o][pp] = g[n, o0 + o, p], cs[r][pp] = col_n[ck0 + r, p] (0 past
   the ends).  Each thread stages one position pp (nthreads is a multiple of
   PCH), so its row and column are worked out once: a column's value is
   then a table entry, two 32-bit bounds tests and a load, without branches
   around each (the tests of a thread past pend, or of a column past the
   layer's, fail by SLC_WG_NONE) */
SL_HD void slc_wg_stage(float *gs, float *cs, const slc_wg_col *tab, const float *g, const float *x,
                        const slc_conv_dims *d, int wo, int64_t o0, int64_t n, int64_t oh, int64_t p0, int64_t pend,
                        int tid, int nthreads)
{
    const int pp = tid % SLC_WG_PCH, r0 = tid / SLC_WG_PCH, rstep = nthreads / SLC_WG_PCH;
    const int64_t p = p0 + pp, rowlen = d->OW * d->T, ostride = d->OH * rowlen;
    const int live = p < pend;
    const float *gp = g + ((n * d->O + o0) * d->OH + oh) * rowlen + (live ? p : 0);
    for (int o = r0; o < wo; o += rstep) gs[o * SLC_WG_LD + pp] = live && o0 + o < d->O ? gp[o * ostride] : 0.0f;
    const uint32_t pu = live ? (uint32_t)p : 0u, T = (uint32_t)d->T, ow = pu / T, t = pu - ow * T;
    const uint32_t H = (uint32_t)d->H, W = (uint32_t)d->W;
    const int32_t ihp = (int32_t)(oh * d->sh - d->ph), iw0 = (int32_t)(ow * d->sw - d->pw);
    const int32_t ih0 = live ? ihp : 2 * SLC_WG_NONE;
    /* the element of input position (ihp, iw0), which may lie in the padding;
       outside the input a column reads the sample's first element and drops
       it (a load on every path: the loop's loads can all be in flight) */
    const int64_t first = n * d->C * d->H * d->W * d->T, base = first + ((int64_t)ihp * d->W + iw0) * d->T + t;
    for (int r = r0; r < SLC_WG_WCK; r += rstep) {
        const slc_wg_col e = tab[r];
        const int ok = (uint32_t)(ih0 + e.di) < H && (uint32_t)(iw0 + e.dj) < W;
        const float raw = x[ok ? base + e.off : first];
        cs[r * SLC_WG_LD + pp] = ok ? raw : 0.0f;
    }
}

/* thread (to, tc) of a block with WO outputs per tile: outputs o = to +
   a * WO / 2 (a < 2), columns tc + 16 * k (k < 4), so that a warp's 16 column
   rows are consecutive rows (SLC_WG_LD = 17 16-byte words apart: its
   vector loads hit different banks) and its output rows two broadcasts.
   acc[a * 4 + k] += the step's products, positions in order, four at a time */
SL_HD void slc_wg_accumulate(float *acc, const float *gs, const float *cs, int wo, int to, int tc)
{
    const float *g0 = gs + to * SLC_WG_LD, *g1 = g0 + (wo / 2) * SLC_WG_LD, *c0 = cs + tc * SLC_WG_LD;
    for (int p4 = 0; p4 < SLC_WG_PCH; p4 += 4) {
        float ga[4], gb[4], cv[4][4];
        for (int q = 0; q < 4; q++) ga[q] = g0[p4 + q], gb[q] = g1[p4 + q];
        for (int k = 0; k < 4; k++)
            for (int q = 0; q < 4; q++) cv[k][q] = c0[k * 16 * SLC_WG_LD + p4 + q];
        for (int q = 0; q < 4; q++)
            for (int k = 0; k < 4; k++) {
                acc[k] = fmaf(ga[q], cv[k][q], acc[k]);
                acc[4 + k] = fmaf(gb[q], cv[k][q], acc[4 + k]);
            }
    }
}

/* the thread's outputs into partial `chunk` (O * CK weights each) */
SL_HD void slc_wg_store(float *part, const float *acc, const slc_conv_dims *d, int64_t chunk, int64_t o0,
                        int64_t ck0, int wo, int to, int tc)
{
    const int64_t CK = d->C * d->KK, wn = d->O * CK;
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < 4; k++) {
            const int64_t o = o0 + to + a * (wo / 2), ck = ck0 + tc + 16 * k;
            if (o < d->O && ck < CK) part[chunk * wn + o * CK + ck] = acc[a * 4 + k];
        }
}

/* the folded pooling geometry (sl_fold, shapes.h) */
typedef sl_fold slc_fold;

/* Pooling by rows, as im2col: a block takes a row of the output (pool:
   row a = (n, r) of y, Q * T elements) or of the input (unpool: row a =
   (n, c, h) of x, W * T elements), each thread SLC_POOL_EPT of its elements
   e0, e0 + stride, ...: the row's geometry and each kernel row i's once
   for all of them, 32-bit arithmetic per element (W * T fits an int).
   Each element sums its window in the CPU's (i, j) order with separately
   rounded products: bit-identical to csrc/ops/synapse.c. */
#define SLC_POOL_EPT 4

/* a thread's elements e0 + k * stride of a row of len = (columns) * T:
   column and bin (element 0's for those past the row), and their sums */
typedef struct {
    int32_t col[SLC_POOL_EPT];
    uint32_t t[SLC_POOL_EPT];
    float acc[SLC_POOL_EPT];
} slc_row_elems;

SL_HD slc_row_elems slc_row_elements(uint32_t e0, uint32_t stride, uint32_t len, uint32_t T)
{
    slc_row_elems r;
    for (int k = 0; k < SLC_POOL_EPT; k++) {
        const uint32_t e = e0 + (uint32_t)k * stride, ee = e < len ? e : 0;
        r.col[k] = (int32_t)(ee / T);
        r.t[k] = ee - (uint32_t)r.col[k] * T;
        r.acc[k] = 0.0f;
    }
    return r;
}

/* the sums into row a of out, for the elements inside the row */
SL_HD void slc_row_store(float *out, int64_t a, uint32_t e0, uint32_t stride, uint32_t len, const float *acc)
{
    for (int k = 0; k < SLC_POOL_EPT; k++) {
        const uint32_t e = e0 + (uint32_t)k * stride;
        if (e < len) out[a * (int64_t)len + e] = acc[k];
    }
}

/* y elements (n, r, q, t) of row a */
SL_HD void slc_pool_row(float *y, const float *x, const float *w, const slc_fold *f, int64_t a, uint32_t e0,
                        uint32_t stride)
{
    const uint32_t T = (uint32_t)f->T, len = (uint32_t)(f->Q * f->T);
    slc_row_elems m = slc_row_elements(e0, stride, len, T);
    const int64_t r = a % f->Rf, n = a / f->Rf;
    for (int i = 0; i < f->kh; i++) {
        const int64_t fr = r * f->sh - f->ph + (int64_t)i * f->dh;
        if (fr < 0 || fr >= f->Hf) continue;
        const int64_t c = fr / f->Hp, h = fr % f->Hp;
        if (h >= f->H) continue; /* appended zero row */
        const float *xr = x + ((n * f->C + c) * f->H + h) * f->W * f->T;
        for (int j = 0; j < f->kw; j++) /* each element's terms still in (i, j) order */
            for (int k = 0; k < SLC_POOL_EPT; k++) {
                const int32_t col = m.col[k] * f->sw - f->pw + j * f->dw;
                if (col >= 0 && col < f->W) m.acc[k] = m.acc[k] + w[i * f->kw + j] * xr[(int64_t)col * f->T + m.t[k]];
            }
    }
    slc_row_store(y, a, e0, stride, len, m.acc);
}

/* x elements (n, c, h, col, t) of row a of the adjoint */
SL_HD void slc_unpool_row(float *x, const float *y, const float *w, const slc_fold *f, int64_t a, uint32_t e0,
                          uint32_t stride)
{
    const uint32_t T = (uint32_t)f->T, len = (uint32_t)(f->W * f->T);
    slc_row_elems m = slc_row_elements(e0, stride, len, T);
    const int64_t h = a % f->H, c = (a / f->H) % f->C, n = a / f->H / f->C, fr = c * f->Hp + h;
    for (int i = 0; i < f->kh; i++) {
        const int64_t num = fr + f->ph - (int64_t)i * f->dh;
        if (num < 0 || num % f->sh) continue;
        const int64_t r = num / f->sh;
        if (r >= f->Rf) continue;
        const float *yr = y + (n * f->Rf + r) * f->Q * f->T;
        for (int j = 0; j < f->kw; j++) /* each element's terms still in (i, j) order */
            for (int k = 0; k < SLC_POOL_EPT; k++) {
                const int32_t qn = m.col[k] + f->pw - j * f->dw;
                if (qn < 0 || qn % f->sw) continue;
                const int32_t qq = qn / f->sw;
                if (qq < f->Q) m.acc[k] = m.acc[k] + w[i * f->kw + j] * yr[(int64_t)qq * f->T + m.t[k]];
            }
    }
    slc_row_store(x, a, e0, stride, len, m.acc);
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
