/* The GPU synapse kernels' arithmetic (csrc/cuda/synapse.cuh) run on the
   host against the CPU ops of csrc/ops/synapse.c, without a GPU:
     - pool and unpool elements, bit for bit, with the reference's odd-size
       padding, strides, padding and dilation;
     - the cuBLAS plans of conv, its input gradient and its weight gradient
       (per-sample partial products, or sample after sample), run by a plain
       column-major product with im2col and col2im, chunk after chunk as the
       GPU cuts the batch, against the CPU (within float rounding: cuBLAS and
       OpenBLAS sum in their own orders), with stride, padding, dilation,
       groups, and a kernel covering the input;
     - the direct conv loops (forward, stride-1 input gradient, weight
       gradient) block after block, phase after phase and thread after
       thread, against the CPU (within float rounding);
     - the sparse dense path's forward blocks (phase after phase, thread
       after thread) and weight gradient, bit for bit against the CPU's
       sparse path. */
#define _POSIX_C_SOURCE 200809L
#include "slayer.h"
#include "ctest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/synapse.cuh"

static uint64_t rng = 0xD1B54A32D192ED03ull;

static double uniform(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

static sl_tensor *tensor(int ndim, const int32_t *shape)
{
    sl_tensor *t = sl_tensor_new(ndim, shape, SL_CPU);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(uniform() * 2 - 1);
    return t;
}

static int bits_differ(const float *a, const float *b, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

TEST(pool_and_unpool_elements_match_the_cpu_bit_for_bit)
{
    /* {C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, odd_pad} */
    const int cases[][12] = {
        {3, 7, 5, 2, 2, 2, 2, 0, 0, 1, 1, 1}, {2, 8, 8, 4, 4, 4, 4, 0, 0, 1, 1, 1}, {1, 6, 6, 2, 2, 1, 1, 0, 0, 1, 1, 1},
        {1, 5, 7, 3, 2, 2, 1, 1, 1, 1, 2, 1}, {2, 4, 5, 2, 2, 2, 2, 0, 0, 1, 1, 0}, {1, 9, 9, 3, 3, 3, 3, 0, 0, 1, 1, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int *k = cases[c];
        sl_conv_params p = {k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], 1};
        int32_t xs[5] = {2, k[0], k[1], k[2], 7};
        slc_fold f;
        CHECK(sl_fold_of(&f, xs, &p, k[11]) == 0);
        int32_t ys[5] = {2, k[0], (int32_t)(f.Rf / f.C), (int32_t)f.Q, 7}, ws[2] = {k[3], k[4]};
        sl_tensor *x = tensor(5, xs), *y = tensor(5, ys), *w = tensor(2, ws), *x2 = tensor(5, xs);
        CHECK(sl_fold_pool(y, x, w, &p, 0, k[11]) == 0);
        float *yh = malloc(sizeof(float) * (size_t)y->numel), *xh = malloc(sizeof(float) * (size_t)x->numel);
        /* row after row, thread after thread (a stride of 5 elements, as
           256 of pool_kernel's threads: each thread's last may lie past
           the row) */
        for (int64_t e = 0; e < y->numel; e++) yh[e] = NAN;
        for (int64_t a = 0; a < f.N * f.Rf; a++)
            for (uint32_t e0 = 0; e0 < f.Q * f.T; e0 += 5 * SLC_POOL_EPT)
                for (uint32_t tid = 0; tid < 5; tid++) slc_pool_row(yh, x->data, w->data, &f, a, e0 + tid, 5);
        int bp = bits_differ(yh, y->data, y->numel);
        CHECK(sl_fold_pool(y, x2, w, &p, 1, k[11]) == 0); /* the adjoint of the same geometry */
        for (int64_t e = 0; e < x2->numel; e++) xh[e] = NAN;
        for (int64_t a = 0; a < f.N * f.C * f.H; a++)
            for (uint32_t e0 = 0; e0 < f.W * f.T; e0 += 5 * SLC_POOL_EPT)
                for (uint32_t tid = 0; tid < 5; tid++) slc_unpool_row(xh, y->data, w->data, &f, a, e0 + tid, 5);
        int bu = bits_differ(xh, x2->data, x2->numel);
        if (bp || bu) fprintf(stderr, "  pool case %zu: pool %d, unpool %d elements differ\n", c, bp, bu);
        CHECK(bp == 0 && bu == 0);
        free(yh);
        free(xh);
        sl_tensor_free(x);
        sl_tensor_free(y);
        sl_tensor_free(w);
        sl_tensor_free(x2);
    }
}

/* |got - want| <= 1e-5 * bound + 1e-30, element by element */
static int not_close(const float *got, const float *want, const float *bound, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !(fabs((double)got[i] - want[i]) <= 1e-5 * bound[i] + 1e-30);
    return bad;
}

/* a plan's column-major products, as cuBLAS defines them (in double; with
   `absolute`, of the operands' magnitudes: the bound on rounding) */
static void run_plan(const slc_gemm *q, int absolute)
{
    for (int b = 0; b < q->batch; b++) {
        const float *A = q->A + b * q->sA, *B = q->B + b * q->sB;
        float *C = q->C + b * q->sC;
        for (int i = 0; i < q->m; i++)
            for (int j = 0; j < q->n; j++) {
                double s = 0;
                for (int l = 0; l < q->k; l++) {
                    double a = q->ta ? A[l + (int64_t)i * q->lda] : A[i + (int64_t)l * q->lda];
                    double v = q->tb ? B[j + (int64_t)l * q->ldb] : B[l + (int64_t)j * q->ldb];
                    s += absolute ? fabs(a * v) : a * v;
                }
                float *c = C + i + (int64_t)j * q->ldc;
                /* as cuBLAS: with beta 0, C is not read (it may hold anything) */
                const double c0 = q->beta == 0.0f ? 0.0 : q->beta * (double)*c;
                *c = (float)(s + (absolute ? fabs(c0) : c0));
            }
    }
}

/* an output buffer holding NaN: the plans must write every element without
   reading what was there (cuBLAS does not read C when beta is 0) */
static float *nan_buffer(int64_t n)
{
    float *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) y[i] = NAN;
    return y;
}

static float *fabs_copy(const float *x, int64_t n)
{
    float *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
    return y;
}

/* the columns of samples n0 .. n0 + m - 1, row after row as im2col_kernel's
   blocks write them */
static void im2col_rows(float *col, const float *x, const slc_conv_dims *d, int64_t n0, int64_t m)
{
    const int64_t len = d->OW * d->T;
    for (int64_t row = 0; row < m * d->C * d->KK * d->OH; row++) {
        const slc_im2col_row r = slc_im2col_row_of(x, d, n0, row);
        for (int64_t q = 0; q < len; q++) col[row * len + q] = slc_im2col_row_value(&r, d, (uint32_t)q);
    }
}

/* what synapse.cu computes on the device, chunk after chunk as its batch
   is cut by col_cap and part_cap (its COL_CAP and PART_CAP) and the weight
   gradient's positions by seg_min (its WG_SEG_MIN), with the host running
   the plans: y, the input gradient gx and the weight gradient gw */
static void conv_by_plans(const slc_conv_dims *d, size_t col_cap, size_t part_cap, int64_t seg_min, const float *x,
                          const float *w, const float *g, float *y, float *gx, float *gw, int absolute)
{
    const int64_t N = d->N, wn = d->O * (d->C / d->G) * d->KK;
    /* forward, then the input gradient (col2im after each chunk) */
    slc_conv_job j = slc_conv_job_of(d, col_cap);
    float *col = nan_buffer((int64_t)slc_conv_col_elems(&j));
    for (int64_t n0 = 0; n0 < N; n0 += j.nb) {
        const int64_t m = slc_conv_chunk(&j, n0);
        if (!j.full)
            im2col_rows(col, x, d, n0, m);
        for (int64_t g0 = 0; g0 < d->G; g0++) {
            slc_gemm f = slc_gemm_forward(d, g0, j.full ? x + n0 * j.xs : col, j.full ? j.xs : j.cs, w, y + n0 * j.ys,
                                          (int)m);
            run_plan(&f, absolute);
        }
    }
    for (int64_t n0 = 0; n0 < N; n0 += j.nb) {
        const int64_t m = slc_conv_chunk(&j, n0);
        for (int64_t g0 = 0; g0 < d->G; g0++) {
            slc_gemm b = slc_gemm_dgrad(d, g0, g + n0 * j.ys, w, j.full ? gx + n0 * j.xs : col, j.full ? j.xs : j.cs,
                                        (int)m);
            run_plan(&b, absolute);
        }
        if (!j.full)
            for (int64_t e = 0; e < m * j.xs; e++) gx[n0 * j.xs + e] = slc_col2im_value(col, d, e); /* col2im_kernel */
    }
    free(col);
    /* the weight gradient, cut again for its partial products */
    slc_conv_job jw = slc_conv_job_of(d, col_cap);
    const int64_t seg = slc_wgrad_seg(d->P, seg_min), nseg = slc_wgrad_nseg(d->P, seg);
    const int partials = slc_conv_wgrad_partials(&jw, wn, nseg, part_cap);
    col = nan_buffer((int64_t)slc_conv_col_elems(&jw));
    float *part = nan_buffer(partials ? jw.nb * nseg * wn : 0);
    for (int64_t i = 0; i < wn; i++) gw[i] = 0.0f;
    for (int64_t n0 = 0; n0 < N; n0 += jw.nb) {
        const int64_t m = slc_conv_chunk(&jw, n0);
        if (!jw.full)
            im2col_rows(col, x, d, n0, m);
        const float *src = jw.full ? x + n0 * jw.xs : col, *g0 = g + n0 * jw.ys;
        const long long sSrc = jw.full ? jw.xs : jw.cs;
        if (partials && nseg == 1) {
            for (int64_t gg = 0; gg < d->G; gg++) {
                slc_gemm q = slc_gemm_wgrad(d, gg, src, sSrc, g0, part, wn, (int)m, 0.0f);
                run_plan(&q, absolute);
            }
        } else if (partials) {
            for (int64_t s = 0; s < m; s++)
                for (int64_t gg = 0; gg < d->G; gg++) {
                    slc_gemm full, tail;
                    slc_gemm_wgrad_segments(d, gg, src + s * sSrc, g0 + s * jw.ys, part + s * nseg * wn, wn, seg,
                                            &full, &tail);
                    CHECK(full.batch == d->P / seg && tail.batch == (d->P % seg != 0));
                    if (full.batch > 0) run_plan(&full, absolute);
                    if (tail.batch > 0) run_plan(&tail, absolute);
                }
        } else {
            for (int64_t s = 0; s < m; s++)
                for (int64_t gg = 0; gg < d->G; gg++) {
                    slc_gemm q = slc_gemm_wgrad(d, gg, src + s * sSrc, 0, g0 + s * jw.ys, gw, 0, 1, 1.0f);
                    run_plan(&q, absolute);
                }
        }
        if (partials) /* sum_partials_kernel: 16 lanes, then the lanes in order */
            for (int64_t i = 0; i < wn; i++) {
                float v = gw[i];
                for (int l = 0; l < 16; l++) v = v + slc_lane_sum(part, m * nseg, wn, i, l, 16);
                gw[i] = v;
            }
    }
    free(col);
    free(part);
}

/* one conv geometry k = {N, C, H, W, T, O, kh, kw, sh, sw, ph, pw, dh, dw}
   with `groups`: random x, w and output gradient g, the CPU's y, input
   gradient gx and weight gradient gw, and the operands' magnitudes (the
   bound on rounding, run through the same plans or phases) */
typedef struct {
    sl_conv_params p;
    slc_conv_dims d;
    sl_tensor *x, *w, *y, *g, *gx, *gw;
    float *ax, *aw, *ag;
} conv_case;

static conv_case conv_case_of(const int *k, int groups)
{
    conv_case c;
    sl_conv_params p = {k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], groups};
    slc_conv_dims d;
    d.N = k[0], d.C = k[1], d.H = k[2], d.W = k[3], d.T = k[4], d.O = k[5], d.G = groups;
    d.kh = p.kh, d.kw = p.kw, d.sh = p.sh, d.sw = p.sw, d.ph = p.ph, d.pw = p.pw, d.dh = p.dh, d.dw = p.dw;
    d.KK = (int64_t)p.kh * p.kw;
    d.OH = (d.H + 2 * p.ph - p.dh * (p.kh - 1) - 1) / p.sh + 1;
    d.OW = (d.W + 2 * p.pw - p.dw * (p.kw - 1) - 1) / p.sw + 1;
    d.P = d.OH * d.OW * d.T;
    int32_t xs[5] = {k[0], k[1], k[2], k[3], k[4]}, ws[5] = {k[5], k[1] / groups, k[6], k[7], 1};
    int32_t ys[5] = {k[0], k[5], (int32_t)d.OH, (int32_t)d.OW, k[4]};
    c.p = p, c.d = d;
    c.x = tensor(5, xs), c.w = tensor(5, ws), c.y = tensor(5, ys), c.g = tensor(5, ys), c.gx = tensor(5, xs);
    c.gw = tensor(5, ws);
    CHECK(sl_conv_forward(c.y, c.x, c.w, &c.p) == 0);
    CHECK(sl_conv_backward_input(c.gx, c.g, c.w, &c.p) == 0);
    CHECK(sl_conv_backward_weight(c.gw, c.g, c.x, &c.p) == 0);
    c.ax = fabs_copy(c.x->data, c.x->numel), c.aw = fabs_copy(c.w->data, c.w->numel);
    c.ag = fabs_copy(c.g->data, c.g->numel);
    return c;
}

static void conv_case_free(conv_case *c)
{
    free(c->ax), free(c->aw), free(c->ag);
    sl_tensor_free(c->x), sl_tensor_free(c->w), sl_tensor_free(c->y), sl_tensor_free(c->g), sl_tensor_free(c->gx);
    sl_tensor_free(c->gw);
}

TEST(conv_plans_with_im2col_and_col2im_give_the_cpu_conv_and_its_gradients)
{
    /* {N, C, H, W, T, O, kh, kw, sh, sw, ph, pw, dh, dw, groups}; the last
       covers the input (dense: no columns) */
    const int cases[][15] = {
        {2, 3, 7, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {2, 4, 9, 8, 3, 6, 3, 2, 2, 1, 1, 0, 1, 2, 2},
        {1, 2, 6, 7, 4, 5, 5, 3, 1, 2, 2, 1, 1, 1, 1}, {3, 2, 5, 5, 2, 3, 5, 5, 1, 1, 0, 0, 1, 1, 1},
        {3, 3, 4, 5, 6, 7, 4, 5, 1, 1, 0, 0, 1, 1, 1}, {5, 3, 6, 6, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int *k = cases[c];
        conv_case cc = conv_case_of(k, k[14]);
        const slc_conv_dims d = cc.d;
        const sl_tensor *x = cc.x, *w = cc.w, *y = cc.y, *g = cc.g, *gx = cc.gx, *gw = cc.gw;
        const float *ax = cc.ax, *aw = cc.aw, *ag = cc.ag;
        /* cuts of the batch: whole (partial products of all samples); one
           sample a chunk; two a chunk, the last chunk short when N is odd
           (partial products two at a time); no room for two partial
           products (one product per sample); and the weight gradient's
           positions in segments of 4 and of 5 (with a tail, or none, as P
           divides) */
        const size_t colBytes = (size_t)slc_conv_job_of(&d, 0).cs * sizeof(float);
        const size_t wBytes = (size_t)w->numel * sizeof(float);
        const size_t cuts[][3] = {{SIZE_MAX, SIZE_MAX, 1 << 30}, {1, SIZE_MAX, 1 << 30},
                                  {2 * colBytes, 2 * wBytes, 1 << 30}, {SIZE_MAX, wBytes, 1 << 30},
                                  {SIZE_MAX, SIZE_MAX, 4}, {2 * colBytes, SIZE_MAX, 5}, {1, SIZE_MAX, 4}};
        const slc_conv_job two = slc_conv_job_of(&d, 2 * colBytes);
        CHECK(two.full ? two.nb == d.N : two.nb == (d.N < 2 ? d.N : 2));
        for (size_t u = 0; u < sizeof cuts / sizeof cuts[0]; u++) {
            float *yh = nan_buffer(y->numel), *yb = nan_buffer(y->numel);
            float *gh = nan_buffer(x->numel), *gb = nan_buffer(x->numel);
            float *wh = nan_buffer(w->numel), *wb = nan_buffer(w->numel);
            conv_by_plans(&d, cuts[u][0], cuts[u][1], (int64_t)cuts[u][2], x->data, w->data, g->data, yh, gh, wh, 0);
            conv_by_plans(&d, cuts[u][0], cuts[u][1], (int64_t)cuts[u][2], ax, aw, ag, yb, gb, wb, 1);
            int bf = not_close(yh, y->data, yb, y->numel), bi = not_close(gh, gx->data, gb, x->numel);
            int bw = not_close(wh, gw->data, wb, w->numel);
            if (bf || bi || bw)
                fprintf(stderr, "  conv case %zu (cut %zu): forward %d, input gradient %d, weight gradient %d off\n", c,
                        u, bf, bi, bw);
            CHECK(bf == 0 && bi == 0 && bw == 0);
            free(yh), free(yb), free(gh), free(gb), free(wh), free(wb);
        }
        conv_case_free(&cc);
    }
}

/* the direct loop q (synapse.cuh) block after block, phase after phase,
   thread after thread, as direct_conv_kernel runs it, into out (NaN first:
   every output must be written) */
static void direct_by_phases(const slc_direct *q, const float *in, const float *w, float *out)
{
    const int ob = slc_direct_ob(q->O);
    const int64_t tiles = (q->OW * q->T + SLC_DC_TILE - 1) / SLC_DC_TILE, groups = (q->O + ob - 1) / ob;
    const int64_t cchunk = slc_direct_cchunk(q, ob);
    float *ws = malloc(sizeof(float) * SLC_DC_WS), acc[SLC_DC_TILE][32];
    for (int64_t b = 0; b < q->N * q->OH * groups * tiles; b++) {
        const slc_direct_blk k = slc_direct_block(b, q, tiles, groups, ob);
        for (int tid = 0; tid < SLC_DC_TILE; tid++)
            for (int o = 0; o < ob; o++) acc[tid][o] = 0.0f;
        for (int64_t c0 = 0; c0 < q->C; c0 += cchunk) {
            const int64_t cn = q->C - c0 < cchunk ? q->C - c0 : cchunk;
            for (int e = 0; e < SLC_DC_WS; e++) ws[e] = NAN; /* only what is staged may be read */
            for (int tid = 0; tid < SLC_DC_TILE; tid++)
                slc_direct_stage(ws, w, q, k.o0, ob, c0, cn, tid, SLC_DC_TILE);
            for (int tid = 0; tid < SLC_DC_TILE; tid++) {
                const int64_t p = k.p0 + tid, pp = p < q->OW * q->T ? p : 0;
                slc_direct_accumulate(acc[tid], ob, ws, in, q, k.n, k.oh, pp / q->T, pp % q->T, c0, cn);
            }
        }
        for (int tid = 0; tid < SLC_DC_TILE; tid++) {
            const int64_t p = k.p0 + tid;
            if (p < q->OW * q->T) slc_direct_store(out, acc[tid], ob, q, k.n, k.o0, k.oh, p);
        }
    }
    free(ws);
}

/* the direct weight gradient (synapse.cuh) as wgrad_direct runs it:
   samples in groups whose partials fit part_cap, each group's blocks phase
   after phase and thread after thread, then the partials added in lanes as
   sum_partials_kernel adds them */
static void wgrad_by_phases(const slc_conv_dims *d, size_t part_cap, const float *x, const float *g, float *gw)
{
    const int wo = slc_wg_wo(d->O), nt = slc_wg_threads(wo);
    const int64_t CK = d->C * d->KK, wn = d->O * CK, otiles = (d->O + wo - 1) / wo;
    const int64_t ctiles = (CK + SLC_WG_WCK - 1) / SLC_WG_WCK, per = d->OH * slc_wg_segs(d);
    const int64_t ms = slc_wg_samples(d, part_cap);
    float *part = nan_buffer(ms * per * wn), *gs = malloc(sizeof(float) * 32 * SLC_WG_LD);
    float *cs = malloc(sizeof(float) * SLC_WG_WCK * SLC_WG_LD), (*acc)[8] = malloc(sizeof(float[8]) * (size_t)nt);
    slc_wg_col tab[SLC_WG_WCK];
    for (int64_t i = 0; i < wn; i++) gw[i] = 0.0f;
    for (int64_t n0 = 0; n0 < d->N; n0 += ms) {
        const int64_t m = d->N - n0 < ms ? d->N - n0 : ms;
        for (int64_t b = 0; b < m * per * otiles * ctiles; b++) {
            const slc_wg_blk k = slc_wg_block(b, d, otiles, ctiles);
            for (int tid = 0; tid < nt; tid++) slc_wg_table(tab, d, k.cg * SLC_WG_WCK, tid, nt);
            memset(acc, 0, sizeof(float[8]) * (size_t)nt);
            for (int64_t p0 = k.pstart; p0 < k.pend; p0 += SLC_WG_PCH) {
                for (int e = 0; e < 32 * SLC_WG_LD; e++) gs[e] = NAN;
                for (int e = 0; e < SLC_WG_WCK * SLC_WG_LD; e++) cs[e] = NAN;
                for (int tid = 0; tid < nt; tid++)
                    slc_wg_stage(gs, cs, tab, g, x, d, wo, k.og * wo, n0 + k.s, k.oh, p0, k.pend, tid, nt);
                for (int tid = 0; tid < nt; tid++) slc_wg_accumulate(acc[tid], gs, cs, wo, tid / 16, tid % 16);
            }
            for (int tid = 0; tid < nt; tid++)
                slc_wg_store(part, acc[tid], d, k.chunk, k.og * wo, k.cg * SLC_WG_WCK, wo, tid / 16, tid % 16);
        }
        for (int64_t i = 0; i < wn; i++) {
            float v = gw[i];
            for (int l = 0; l < 16; l++) v = v + slc_lane_sum(part, m * per, wn, i, l, 16);
            gw[i] = v;
        }
    }
    free(part), free(gs), free(cs), free(acc);
}

TEST(direct_conv_loops_give_the_cpu_conv_and_its_gradients)
{
    /* {N, C, H, W, T, O, kh, kw, sh, sw, ph, pw, dh, dw}: W2's three convs
       (small), stride and dilation (forward only), more outputs than a
       block's group (two groups, the last short), a kernel whose weights
       stage one channel at a time (KK * 32 > SLC_DC_WS / 2), padding past
       the kernel (the adjoint's padding negative), rows longer than a tile,
       rows of two weight-gradient chunks */
    const int cases[][14] = {
        {2, 2, 9, 9, 7, 16, 5, 5, 1, 1, 1, 1, 1, 1},  {2, 16, 6, 6, 5, 32, 3, 3, 1, 1, 1, 1, 1, 1},
        {3, 32, 4, 4, 6, 64, 3, 3, 1, 1, 1, 1, 1, 1}, {2, 3, 9, 8, 5, 5, 3, 2, 2, 1, 1, 0, 1, 2},
        {1, 3, 5, 6, 4, 40, 3, 3, 1, 1, 1, 1, 1, 1},  {1, 3, 16, 16, 3, 33, 15, 15, 1, 1, 7, 7, 1, 1},
        {2, 2, 4, 5, 3, 3, 2, 2, 1, 1, 2, 3, 1, 1},   {1, 2, 3, 7, 100, 4, 3, 3, 1, 1, 1, 1, 1, 1},
        {3, 2, 4, 9, 300, 4, 3, 3, 1, 1, 1, 1, 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int *k = cases[c];
        conv_case cc = conv_case_of(k, 1);
        const slc_conv_dims d = cc.d;
        const sl_conv_params p = cc.p;
        const sl_tensor *x = cc.x, *w = cc.w, *y = cc.y, *g = cc.g, *gx = cc.gx, *gw = cc.gw;
        const float *ax = cc.ax, *aw = cc.aw, *ag = cc.ag;
        CHECK(slc_direct_takes(&d, 0, 0));
        const int adjoint = p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1;
        CHECK(slc_direct_takes(&d, 0, 1) == adjoint);
        const slc_direct fq = slc_direct_of(&d, 0), bq = slc_direct_of(&d, 1);
        /* the weight gradient: all samples' partials at once, and one
           sample's at a time (a cap too small for two) */
        CHECK(slc_wg_takes(&d, 0));
        const size_t one = (size_t)(d.OH * slc_wg_segs(&d) * w->numel) * sizeof(float);
        CHECK(slc_wg_samples(&d, one) == 1 && slc_wg_samples(&d, SIZE_MAX / 2) == d.N);
        for (int u = 0; u < 2; u++) {
            float *wh = nan_buffer(w->numel), *wb = nan_buffer(w->numel);
            wgrad_by_phases(&d, u ? one : SIZE_MAX / 2, x->data, g->data, wh);
            wgrad_by_phases(&d, u ? one : SIZE_MAX / 2, ax, ag, wb);
            const int bw = not_close(wh, gw->data, wb, w->numel);
            if (bw) fprintf(stderr, "  direct weight gradient case %zu (cut %d): %d off\n", c, u, bw);
            CHECK(bw == 0);
            free(wh), free(wb);
        }
        float *yh = nan_buffer(y->numel), *yb = nan_buffer(y->numel), *gh = nan_buffer(x->numel),
              *gb = nan_buffer(x->numel);
        direct_by_phases(&fq, x->data, w->data, yh);
        direct_by_phases(&fq, ax, aw, yb); /* the bound on rounding */
        int bf = not_close(yh, y->data, yb, y->numel), bi = 0;
        if (adjoint) {
            direct_by_phases(&bq, g->data, w->data, gh);
            direct_by_phases(&bq, ag, aw, gb);
            bi = not_close(gh, gx->data, gb, x->numel);
        }
        if (bf || bi) fprintf(stderr, "  direct conv case %zu: forward %d, input gradient %d off\n", c, bf, bi);
        CHECK(bf == 0 && bi == 0);
        free(yh), free(yb), free(gh), free(gb);
        conv_case_free(&cc);
    }
    /* what it leaves to the columns: groups, a covering kernel, wide layers */
    slc_conv_dims d = {0};
    d.N = 1, d.C = 4, d.H = 5, d.W = 5, d.T = 3, d.O = 4, d.G = 2, d.kh = d.kw = 3, d.KK = 9, d.sh = d.sw = 1;
    d.dh = d.dw = 1, d.OH = d.OW = 3, d.P = 27;
    CHECK(!slc_direct_takes(&d, 0, 0));
    d.G = 1;
    CHECK(slc_direct_takes(&d, 0, 0) && !slc_direct_takes(&d, 1, 0));
    d.O = SLC_DC_MAX_O + 1;
    CHECK(!slc_direct_takes(&d, 0, 0) && slc_direct_takes(&d, 0, 1));
    d.O = 4, d.pw = (int64_t)1 << 28; /* columns the loop's 32-bit arithmetic cannot reach */
    CHECK(!slc_direct_takes(&d, 0, 0));
    d.pw = 0;
    /* the direct weight gradient indexes a sample's input, and the kernel's
       reach past its rows, in 32 bits */
    d.O = 4, d.C = 2, d.H = d.W = 1024, d.T = 1023, d.kh = d.kw = 3, d.ph = d.pw = 1, d.OH = d.OW = 1024;
    CHECK(slc_wg_takes(&d, 0) && !slc_wg_takes(&d, 1));
    d.T = 1024; /* 2^31 elements a sample */
    CHECK(!slc_wg_takes(&d, 0));
    d.T = 1023, d.dh = 600, d.ph = 600; /* the input fits; the kernel's last row, 1,200 rows down, does not */
    CHECK(!slc_wg_takes(&d, 0));
}

TEST(sparse_dense_blocks_match_the_cpu_sparse_path_bit_for_bit)
{
    const int64_t N = 3, I = 700, O = 150, T = 130; /* two output blocks, three time tiles, two row chunks */
    int32_t xs[3] = {N, I, T}, ws[2] = {I, O}, ys[3] = {N, O, T}, gws[2] = {O, I};
    sl_tensor *x = tensor(3, xs), *wT = tensor(2, ws), *y = tensor(3, ys), *g = tensor(3, ys), *gw = tensor(2, gws);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = uniform() < 0.03 ? (float)(uniform() * 4 - 1) : 0.0f;
    sl_sparse_rows *csr = NULL;
    CHECK(sl_sparse_rows_new(&csr, x, 1.0) == 0 && csr != NULL);
    CHECK(sl_dense_sparse_forward(y, csr, wT) == 0);
    CHECK(sl_dense_sparse_weight_grad(gw, csr, g) == 0);
    /* the list as the GPU builds it: rows (n, i), t increasing */
    int64_t *start = malloc(sizeof(int64_t) * (size_t)(N * I + 1)), nnz = 0;
    int32_t *tt = malloc(sizeof(int32_t) * (size_t)x->numel);
    float *vv = malloc(sizeof(float) * (size_t)x->numel);
    for (int64_t r = 0; r < N * I; r++) {
        start[r] = nnz;
        for (int64_t t = 0; t < T; t++)
            if (x->data[r * T + t] != 0.0f) tt[nnz] = (int32_t)t, vv[nnz++] = x->data[r * T + t];
    }
    start[N * I] = nnz;
    CHECK(nnz == sl_sparse_rows_nnz(csr));
    /* the time-major gradient gT [N, T, O] of the weight gradient */
    float *gT = malloc(sizeof(float) * (size_t)g->numel), *gwh = malloc(sizeof(float) * (size_t)gw->numel);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t t = 0; t < T; t++) gT[(n * T + t) * O + o] = g->data[(n * O + o) * T + t];
    const int64_t oblocks = (O + SLC_SP_OB - 1) / SLC_SP_OB, tiles = (T + SLC_SP_TT - 1) / SLC_SP_TT;
    float *yh = malloc(sizeof(float) * (size_t)y->numel), *acc = malloc(sizeof(float) * SLC_SP_TT * (SLC_SP_OB + 1));
    int64_t st[SLC_SP_ROWS + 1];
    /* from the list, then from x itself (the kernels' path when the list overflowed its capacity) */
    for (int listed = 1; listed >= 0; listed--) {
        for (int64_t b = 0; b < N * oblocks * tiles; b++) {
            slc_sp_block k = slc_sp_forward_block(b, T, oblocks);
            for (int i = 0; i < SLC_SP_TT * (SLC_SP_OB + 1); i++) acc[i] = 0.0f;
            for (int64_t i0 = 0; i0 < I; i0 += SLC_SP_ROWS) {
                const int ni = (int)(I - i0 < SLC_SP_ROWS ? I - i0 : SLC_SP_ROWS);
                for (int tid = 0; tid < SLC_SP_OB && listed; tid++) slc_sp_stage(st, start, &k, I, i0, ni, tid, SLC_SP_OB);
                for (int tid = 0; tid < SLC_SP_OB; tid++)
                    if (listed) slc_sp_forward_rows(acc + tid, SLC_SP_OB + 1, st, tt, vv, wT->data, &k, O, i0, ni, tid);
                    else slc_sp_forward_scan(acc + tid, SLC_SP_OB + 1, x->data, wT->data, &k, O, I, T, i0, ni, tid);
            }
            for (int tid = 0; tid < SLC_SP_OB; tid++)
                slc_sp_forward_store(yh, acc, SLC_SP_OB + 1, &k, O, T, tid, SLC_SP_OB);
        }
        for (int64_t i = 0; i < I; i++)
            for (int64_t o = 0; o < O; o++)
                gwh[o * I + i] = listed ? slc_sp_wgrad_value(start, tt, vv, gT, N, I, O, T, i, o)
                                        : slc_sp_wgrad_scan(x->data, gT, N, I, O, T, i, o);
        int bf = bits_differ(yh, y->data, y->numel), bw = bits_differ(gwh, gw->data, gw->numel);
        if (bf || bw)
            fprintf(stderr, "  sparse dense (%s): forward %d, weight gradient %d elements differ\n",
                    listed ? "listed" : "read from x", bf, bw);
        CHECK(bf == 0 && bw == 0);
    }
    sl_sparse_rows_free(csr);
    free(start), free(tt), free(vv), free(yh), free(acc), free(gT), free(gwh);
    sl_tensor_free(x), sl_tensor_free(wT), sl_tensor_free(y), sl_tensor_free(g), sl_tensor_free(gw);
}

TEST(sparse_dense_capacity_follows_the_hint)
{
    const int64_t e = 1000000, most = (int64_t)(2 * SLC_SP_MAX_DENSITY * e); /* elements of the input */
    const int64_t edge = (int64_t)(SLC_SP_MAX_DENSITY * e);
    CHECK(slc_sp_capacity(e, -1, 0) == most);                /* unknown: the most */
    CHECK(slc_sp_capacity(e, 0, 0) == e / 256);              /* silent: the floor */
    CHECK(slc_sp_capacity(e, 15000, 0) == 30000 + e / 256);  /* 1.5%: twice, plus the floor */
    CHECK(slc_sp_capacity(e, edge, 0) == most);
    CHECK(slc_sp_capacity(e, edge + 1, 0) == 0);             /* denser: the GEMM path */
    CHECK(slc_sp_capacity(e, e, 0) == 0);
    CHECK(slc_sp_capacity(1, -1, 0) == 1 && slc_sp_capacity(1, 0, 0) == 1); /* never an empty list */
    /* forced: events at any density, room for all when the density is not known */
    CHECK(slc_sp_capacity(e, -1, 1) == e && slc_sp_capacity(e, e, 1) == e);
    CHECK(slc_sp_capacity(e, edge + 1, 1) == 2 * (edge + 1) + e / 256);
    CHECK(slc_sp_capacity(e, 15000, 1) == 30000 + e / 256);
    CHECK(slc_sp_capacity(e, -1, -1) == 0 && slc_sp_capacity(e, 10, -1) == 0); /* forced GEMM */
}

int main(void)
{
    RUN(pool_and_unpool_elements_match_the_cpu_bit_for_bit);
    RUN(conv_plans_with_im2col_and_col2im_give_the_cpu_conv_and_its_gradients);
    RUN(direct_conv_loops_give_the_cpu_conv_and_its_gradients);
    RUN(sparse_dense_blocks_match_the_cpu_sparse_path_bit_for_bit);
    RUN(sparse_dense_capacity_follows_the_hint);
    return END();
}
