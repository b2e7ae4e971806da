/* The GPU synapse kernels' arithmetic (csrc/cuda/synapse.cuh) run on the
   host against the CPU ops of csrc/ops/synapse.c, without a GPU:
     - pool and unpool elements, bit for bit, with the reference's odd-size
       padding, strides, padding and dilation;
     - im2col and col2im, through a plain product with the weight, against
       conv forward and its input gradient (within float rounding, as cuBLAS
       and OpenBLAS sum in their own orders), with stride, padding,
       dilation and groups;
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
        CHECK(slc_fold_of(&f, xs, &p, k[11]) == 0);
        int32_t ys[5] = {2, k[0], (int32_t)(f.Rf / f.C), (int32_t)f.Q, 7}, ws[2] = {k[3], k[4]};
        sl_tensor *x = tensor(5, xs), *y = tensor(5, ys), *w = tensor(2, ws), *x2 = tensor(5, xs);
        CHECK(sl_fold_pool(y, x, w, &p, 0, k[11]) == 0);
        float *yh = malloc(sizeof(float) * (size_t)y->numel), *xh = malloc(sizeof(float) * (size_t)x->numel);
        for (int64_t e = 0; e < y->numel; e++) yh[e] = slc_pool_value(x->data, w->data, &f, e);
        int bp = bits_differ(yh, y->data, y->numel);
        CHECK(sl_fold_pool(y, x2, w, &p, 1, k[11]) == 0); /* the adjoint of the same geometry */
        for (int64_t e = 0; e < x2->numel; e++) xh[e] = slc_unpool_value(y->data, w->data, &f, e);
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
static int not_close(const float *got, const float *want, const double *bound, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !(fabs((double)got[i] - want[i]) <= 1e-5 * bound[i] + 1e-30);
    return bad;
}

TEST(im2col_and_col2im_give_conv_and_its_input_gradient)
{
    /* {N, C, H, W, T, O, kh, kw, sh, sw, ph, pw, dh, dw, groups} */
    const int cases[][15] = {
        {2, 3, 7, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {2, 4, 9, 8, 3, 6, 3, 2, 2, 1, 1, 0, 1, 2, 2},
        {1, 2, 6, 7, 4, 5, 5, 3, 1, 2, 2, 1, 1, 1, 1}, {3, 2, 5, 5, 2, 3, 5, 5, 1, 1, 0, 0, 1, 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int *k = cases[c];
        sl_conv_params p = {k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14]};
        slc_conv_dims d;
        d.N = k[0], d.C = k[1], d.H = k[2], d.W = k[3], d.T = k[4], d.O = k[5], d.G = k[14];
        d.kh = p.kh, d.kw = p.kw, d.sh = p.sh, d.sw = p.sw, d.ph = p.ph, d.pw = p.pw, d.dh = p.dh, d.dw = p.dw;
        d.KK = (int64_t)p.kh * p.kw;
        d.OH = (d.H + 2 * p.ph - p.dh * (p.kh - 1) - 1) / p.sh + 1;
        d.OW = (d.W + 2 * p.pw - p.dw * (p.kw - 1) - 1) / p.sw + 1;
        d.P = d.OH * d.OW * d.T;
        int32_t xs[5] = {k[0], k[1], k[2], k[3], k[4]}, ws[5] = {k[5], k[1] / k[14], k[6], k[7], 1};
        int32_t ys[5] = {k[0], k[5], (int32_t)d.OH, (int32_t)d.OW, k[4]};
        sl_tensor *x = tensor(5, xs), *w = tensor(5, ws), *y = tensor(5, ys), *g = tensor(5, ys), *gx = tensor(5, xs);
        CHECK(sl_conv_forward(y, x, w, &p) == 0);
        CHECK(sl_conv_backward_input(gx, g, w, &p) == 0);
        const int64_t CK = d.C * d.KK, Og = d.O / d.G, Kg = CK / d.G;
        float *col = malloc(sizeof(float) * (size_t)(CK * d.P)), *dcol = malloc(sizeof(float) * (size_t)(CK * d.P));
        float *yh = malloc(sizeof(float) * (size_t)y->numel), *gh = malloc(sizeof(float) * (size_t)x->numel);
        double *yb = malloc(sizeof(double) * (size_t)y->numel), *gb = malloc(sizeof(double) * (size_t)x->numel);
        float *abscol = malloc(sizeof(float) * (size_t)(CK * d.P));
        for (int64_t n = 0; n < d.N; n++) {
            for (int64_t e = 0; e < CK * d.P; e++) col[e] = slc_im2col_value(x->data, &d, n, e);
            /* y[n] = W . col per group; dcol = W^T . g[n] */
            for (int64_t gg = 0; gg < d.G; gg++)
                for (int64_t o = 0; o < Og; o++)
                    for (int64_t q = 0; q < d.P; q++) {
                        double s = 0, b = 0;
                        for (int64_t r = 0; r < Kg; r++) {
                            double a = (double)w->data[(gg * Og + o) * Kg + r] * col[(gg * Kg + r) * d.P + q];
                            s += a;
                            b += fabs(a);
                        }
                        yh[(n * d.O + gg * Og + o) * d.P + q] = (float)s;
                        yb[(n * d.O + gg * Og + o) * d.P + q] = b;
                    }
            for (int pass = 0; pass < 2; pass++) {
                /* pass 0: the gradient columns; pass 1: their magnitudes, for the bound */
                for (int64_t gg = 0; gg < d.G; gg++)
                    for (int64_t r = 0; r < Kg; r++)
                        for (int64_t q = 0; q < d.P; q++) {
                            double s = 0;
                            for (int64_t o = 0; o < Og; o++) {
                                double a = (double)w->data[(gg * Og + o) * Kg + r] *
                                           g->data[(n * d.O + gg * Og + o) * d.P + q];
                                s += pass ? fabs(a) : a;
                            }
                            (pass ? abscol : dcol)[(gg * Kg + r) * d.P + q] = (float)s;
                        }
                int64_t per = d.C * d.H * d.W * d.T;
                for (int64_t e = 0; e < per; e++) {
                    float v = slc_col2im_value(pass ? abscol : dcol, &d, e);
                    if (pass) gb[n * per + e] = v * 1.0001 + 1e-6;
                    else gh[n * per + e] = v;
                }
            }
        }
        int bf = not_close(yh, y->data, yb, y->numel), bb = not_close(gh, gx->data, gb, x->numel);
        if (bf || bb) fprintf(stderr, "  conv case %zu: forward %d, input gradient %d elements off\n", c, bf, bb);
        CHECK(bf == 0 && bb == 0);
        free(col), free(dcol), free(yh), free(gh), free(yb), free(gb), free(abscol);
        sl_tensor_free(x), sl_tensor_free(w), sl_tensor_free(y), sl_tensor_free(g), sl_tensor_free(gx);
    }
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
    /* forward, block after block */
    const int64_t oblocks = (O + SLC_SP_OB - 1) / SLC_SP_OB, tiles = (T + SLC_SP_TT - 1) / SLC_SP_TT;
    float *yh = malloc(sizeof(float) * (size_t)y->numel), *acc = malloc(sizeof(float) * SLC_SP_TT * (SLC_SP_OB + 1));
    int64_t st[SLC_SP_ROWS + 1];
    for (int64_t b = 0; b < N * oblocks * tiles; b++) {
        slc_sp_block k = slc_sp_forward_block(b, T, oblocks);
        for (int i = 0; i < SLC_SP_TT * (SLC_SP_OB + 1); i++) acc[i] = 0.0f;
        for (int64_t i0 = 0; i0 < I; i0 += SLC_SP_ROWS) {
            const int ni = (int)(I - i0 < SLC_SP_ROWS ? I - i0 : SLC_SP_ROWS);
            for (int tid = 0; tid < SLC_SP_OB; tid++) slc_sp_stage(st, start, &k, I, i0, ni, tid, SLC_SP_OB);
            for (int tid = 0; tid < SLC_SP_OB; tid++)
                slc_sp_forward_rows(acc + tid, SLC_SP_OB + 1, st, tt, vv, wT->data, &k, O, i0, ni, tid);
        }
        for (int tid = 0; tid < SLC_SP_OB; tid++) slc_sp_forward_store(yh, acc, SLC_SP_OB + 1, &k, O, T, tid, SLC_SP_OB);
    }
    int bf = bits_differ(yh, y->data, y->numel);
    /* weight gradient from the time-major gradient gT [N, T, O] */
    float *gT = malloc(sizeof(float) * (size_t)g->numel), *gwh = malloc(sizeof(float) * (size_t)gw->numel);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t t = 0; t < T; t++) gT[(n * T + t) * O + o] = g->data[(n * O + o) * T + t];
    for (int64_t i = 0; i < I; i++)
        for (int64_t o = 0; o < O; o++) gwh[o * I + i] = slc_sp_wgrad_value(start, tt, vv, gT, N, I, O, T, i, o);
    int bw = bits_differ(gwh, gw->data, gw->numel);
    if (bf || bw) fprintf(stderr, "  sparse dense: forward %d, weight gradient %d elements differ\n", bf, bw);
    CHECK(bf == 0 && bw == 0);
    sl_sparse_rows_free(csr);
    free(start), free(tt), free(vv), free(yh), free(acc), free(gT), free(gwh);
    sl_tensor_free(x), sl_tensor_free(wT), sl_tensor_free(y), sl_tensor_free(g), sl_tensor_free(gw);
}

int main(void)
{
    RUN(pool_and_unpool_elements_match_the_cpu_bit_for_bit);
    RUN(im2col_and_col2im_give_conv_and_its_input_gradient);
    RUN(sparse_dense_blocks_match_the_cpu_sparse_path_bit_for_bit);
    return END();
}
