/* The GPU psp kernel's schedule (csrc/cuda/temporal.cuh) run on the host,
   thread after thread and phase after phase (the kernel's barriers make that
   its result), against the CPU's sl_temporal_conv and sl_temporal_corr:
   bit for bit, for filters shorter and longer than a staged chunk (256 taps)
   and than the row, of every length modulo 4 (taps go four at a time, the
   rest one by one), rows of one and several tiles, and banks of filters. */
#define _POSIX_C_SOURCE 200809L
#include "slayer.h"
#include "ctest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/temporal.cuh"

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static double uniform(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

static sl_tensor *tensor(int ndim, const int32_t *shape)
{
    sl_tensor *t = sl_tensor_new(ndim, shape, SL_CPU);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = 0.0f;
    return t;
}

/* temporal.cu's kernel for every block: out [N, F*R, T] (conv) or [N, R, T]
   (corr) from in [N, R, T] (conv) or [N, F*R, T] (corr) */
static void psp_blocks(int corr, float *out, const float *in, const float *h, int64_t N, int64_t R, int64_t F,
                       int64_t T, int64_t K, float Ts)
{
    const int nthreads = slc_temporal_threads(T), TILE = nthreads * SLC_TV;
    const int64_t tiles = (T + TILE - 1) / TILE, orows = corr ? N * R : N * F * R;
    float *xs = malloc(sizeof(float) * SLC_XS_WORDS), hs[SLC_KC];
    float (*acc)[SLC_TV] = malloc(sizeof(float[SLC_TV]) * (size_t)nthreads);
    float (*res)[SLC_TV] = malloc(sizeof(float[SLC_TV]) * (size_t)nthreads);
    const int64_t kmax = K < T ? K : T;
    for (int64_t b = 0; b < orows * tiles; b++) {
        const int64_t tile = b % tiles, orow = b / tiles, t0 = tile * TILE;
        memset(res, 0, sizeof(float[SLC_TV]) * (size_t)nthreads);
        for (int64_t fi = 0; fi < (corr ? F : 1); fi++) {
            int64_t f, irow;
            slc_temporal_rows(corr, orow, fi, R, F, &f, &irow);
            memset(acc, 0, sizeof(float[SLC_TV]) * (size_t)nthreads);
            for (int64_t i0 = 0; i0 < kmax && slc_temporal_chunk_live(corr, t0, i0, T, TILE); i0 += SLC_KC) {
                const int kn = (int)(kmax - i0 < SLC_KC ? kmax - i0 : SLC_KC);
                const int Q = slc_temporal_q(slc_temporal_xs(nthreads, kn));
                CHECK(4 * Q <= SLC_XS_WORDS && Q % 32 == 8);
                for (int i = 0; i < SLC_XS_WORDS; i++) xs[i] = NAN; /* unstaged reads show */
                for (int i = 0; i < SLC_KC; i++) hs[i] = NAN;
                for (int tid = 0; tid < nthreads; tid++)
                    slc_temporal_stage(corr, xs, hs, in + irow * T, h + f * K, t0, i0, T, kn, tid, nthreads);
                for (int tid = 0; tid < nthreads; tid++) slc_temporal_taps(corr, acc[tid], xs, hs, tid, kn, Q);
            }
            for (int tid = 0; tid < nthreads; tid++) slc_temporal_finish(corr, res[tid], acc[tid], Ts);
        }
        for (int tid = 0; tid < nthreads; tid++)
            for (int v = 0; v < SLC_TV; v++) {
                int64_t t = t0 + SLC_TV * tid + v;
                if (t < T) out[orow * T + t] = res[tid][v];
            }
    }
    free(xs);
    free(acc);
    free(res);
}

static int differ(const float *a, const float *b, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

TEST(psp_schedule_matches_the_cpu_conv_and_corr_bit_for_bit)
{
    /* {T, K, F}: one tile of 128, 384 and 1024 bins, three tiles; taps within
       a chunk, exactly one, one more, several; filters longer than the row */
    const int64_t cases[][3] = {
        {1, 5, 1}, {33, 77, 1}, {300, 77, 1}, {300, 256, 2}, {300, 257, 3}, {1024, 700, 1}, {1025, 77, 2},
        {2500, 700, 1}, {50, 400, 2}, {300, 76, 1}, {300, 78, 1}, {300, 79, 1}, {7, 3, 1}, {2, 1, 2},
    };
    const float Ts = 0.5f;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t T = cases[c][0], K = cases[c][1], F = cases[c][2], N = 2, R = 3;
        int32_t sx[3] = {(int32_t)N, (int32_t)R, (int32_t)T}, sy[3] = {(int32_t)N, (int32_t)(F * R), (int32_t)T};
        int32_t sh[2] = {(int32_t)F, (int32_t)K};
        sl_tensor *x = tensor(3, sx), *y = tensor(3, sy), *h = tensor(2, sh), *g = tensor(3, sy), *gx = tensor(3, sx);
        for (int64_t i = 0; i < x->numel; i++) x->data[i] = uniform() < 0.3 ? (float)(uniform() * 4 - 2) : 0.0f;
        for (int64_t i = 0; i < g->numel; i++) g->data[i] = (float)(uniform() * 2 - 1);
        for (int64_t i = 0; i < h->numel; i++) h->data[i] = (float)(uniform() * 2 - 1);
        CHECK(sl_temporal_conv(y, x, h, Ts) == 0);
        CHECK(sl_temporal_corr(gx, g, h, Ts) == 0);
        float *y2 = malloc(sizeof(float) * (size_t)y->numel), *gx2 = malloc(sizeof(float) * (size_t)gx->numel);
        psp_blocks(0, y2, x->data, h->data, N, R, F, T, K, Ts);
        psp_blocks(1, gx2, g->data, h->data, N, R, F, T, K, Ts);
        int bc = differ(y2, y->data, y->numel), br = differ(gx2, gx->data, gx->numel);
        if (bc || br)
            fprintf(stderr, "  T %lld, K %lld, F %lld: conv %d, corr %d elements differ\n", (long long)T, (long long)K,
                    (long long)F, bc, br);
        CHECK(bc == 0 && br == 0);
        free(y2);
        free(gx2);
        sl_tensor_free(x);
        sl_tensor_free(y);
        sl_tensor_free(h);
        sl_tensor_free(g);
        sl_tensor_free(gx);
    }
}

int main(void)
{
    RUN(psp_schedule_matches_the_cpu_conv_and_corr_bit_for_bit);
    return END();
}
