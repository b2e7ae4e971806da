/*
 * temporal.cuh -- the phases of temporal.cu's psp kernel, usable on the host
 * and the device, so that tests/c/test_cuda_temporal.c can run the kernel's
 * schedule thread after thread and check it against csrc/ops/temporal.c
 * without a GPU.
 *
 * A block computes one output row's tile of TV * nthreads bins (thread tid
 * the TV consecutive outputs from t0 + TV * tid).  Taps are taken in chunks
 * of KC: the block stages the samples the chunk needs and its taps (one
 * phase, then a barrier), then every thread runs the chunk's taps over its
 * outputs, sliding a window of TV samples through registers:
 *   conv: acc[v] += h[i] * x[t - i]      corr: acc[v] += h[i] * g[t + i]
 * with fused multiply-adds, in increasing i (the CPU's order).
 */
#ifndef SLAYER_CUDA_TEMPORAL_CUH
#define SLAYER_CUDA_TEMPORAL_CUH

#include <math.h>
#include <stdint.h>

#include "../hostdev.h"

#define SLC_TV 4            /* outputs per thread */
#define SLC_KC 256          /* taps staged at a time */
#define SLC_MAX_THREADS 256 /* per block: tiles of up to 1024 bins */

/* threads per block: whole warps covering the row in one tile when T <=
   TV * SLC_MAX_THREADS, else SLC_MAX_THREADS */
SL_HD int slc_temporal_threads(int64_t T)
{
    int64_t warps = (T + 32 * SLC_TV - 1) / (32 * SLC_TV);
    return warps >= SLC_MAX_THREADS / 32 ? SLC_MAX_THREADS : (int)warps * 32;
}

/* the filter and the input row of output row orow: conv rows are (n, f, r)
   reading (n, r); corr rows are (n, r), reading (n, fi, r) of the gradient */
SL_HD void slc_temporal_rows(int corr, int64_t orow, int64_t fi, int64_t R, int64_t F, int64_t *f, int64_t *irow)
{
    if (corr) {
        *f = fi;
        *irow = ((orow / R) * F + fi) * R + orow % R;
    } else {
        *f = (orow / R) % F;
        *irow = (orow / (R * F)) * R + orow % R;
    }
}

/* whether taps from i0 on can meet the outputs [t0, t0 + tile) at all */
SL_HD int slc_temporal_chunk_live(int corr, int64_t t0, int64_t i0, int64_t T, int64_t tile)
{
    return corr ? t0 + i0 < T : i0 <= t0 + tile - 1;
}

/* A chunk of kn taps stages XS = TILE + KP + 4 samples (KP = kn rounded up
   to a multiple of 4): staged sample k is conv x[t0 - i0 - KP + k] or corr
   g[t0 + i0 + k] (zero outside the row).  They are stored in four phases,
   sample k at xs[(k & 3) * Q + (k >> 2)]: thread tid's window of samples
   4 * tid + m then reads xs[phase * Q + tid + const], consecutive words
   across a warp (no bank conflicts), at addresses known without arithmetic
   per tap; Q is congruent to 8 modulo 32, so the staging writes of a warp
   (samples k .. k + 31) hit 32 different banks too. */
SL_HD int slc_temporal_kp(int kn) { return (kn + 3) & ~3; }

SL_HD int slc_temporal_xs(int nthreads, int kn) { return nthreads * SLC_TV + slc_temporal_kp(kn) + 4; }

/* words per phase */
SL_HD int slc_temporal_q(int xs)
{
    int q = (xs + 3) / 4;
    return q + ((8 - q % 32) + 32) % 32;
}

/* the most shared memory a chunk's samples take, in floats */
#define SLC_XS_WORDS (4 * (((SLC_MAX_THREADS * SLC_TV + SLC_KC + 4 + 3) / 4) + 32))

/* stage the chunk of taps i0 .. i0 + kn - 1 (thread tid of nthreads): its
   samples into xs (phases of Q words), its taps into hs */
SL_HD void slc_temporal_stage(int corr, float *xs, float *hs, const float *x, const float *hf, int64_t t0,
                              int64_t i0, int64_t T, int kn, int tid, int nthreads)
{
    const int XS = slc_temporal_xs(nthreads, kn), Q = slc_temporal_q(XS);
    const int64_t base = corr ? t0 + i0 : t0 - i0 - slc_temporal_kp(kn);
    for (int k = tid; k < XS; k += nthreads) {
        int64_t ti = base + k;
        xs[(k & 3) * Q + (k >> 2)] = ti >= 0 && ti < T ? x[ti] : 0.0f;
    }
    for (int k = tid; k < kn; k += nthreads) hs[k] = hf[i0 + k];
}

/* thread tid's TV = 4 outputs over the staged chunk, taps in increasing
   order, four at a time (and the rest one by one), the window of 4 samples
   sliding through registers: conv acc[v] += h[ii] * x[t + v - ii] (window
   samples 4 * tid + KP + v - ii), corr acc[v] += h[ii] * g[t + v + ii]
   (samples 4 * tid + v + ii) */
SL_HD void slc_temporal_taps(int corr, float *acc, const float *xs, const float *hs, int tid, int kn, int Q)
{
    float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int ii = 0;
    if (!corr) {
        const float *p = xs + tid + slc_temporal_kp(kn) / 4;
        float w0 = p[0], w1 = p[Q], w2 = p[2 * Q], w3 = p[3 * Q];
        p -= 1; /* the next samples, 4 * tid + KP - ii - 1 - u, are p[(3 - u) * Q] */
        for (; ii + 4 <= kn; ii += 4, p -= 1) {
            const float h0 = hs[ii], h1 = hs[ii + 1], h2 = hs[ii + 2], h3 = hs[ii + 3];
            a0 = fmaf(w0, h0, a0), a1 = fmaf(w1, h0, a1), a2 = fmaf(w2, h0, a2), a3 = fmaf(w3, h0, a3);
            const float n1 = p[3 * Q];
            a0 = fmaf(n1, h1, a0), a1 = fmaf(w0, h1, a1), a2 = fmaf(w1, h1, a2), a3 = fmaf(w2, h1, a3);
            const float n2 = p[2 * Q];
            a0 = fmaf(n2, h2, a0), a1 = fmaf(n1, h2, a1), a2 = fmaf(w0, h2, a2), a3 = fmaf(w1, h2, a3);
            const float n3 = p[Q];
            a0 = fmaf(n3, h3, a0), a1 = fmaf(n2, h3, a1), a2 = fmaf(n1, h3, a2), a3 = fmaf(w0, h3, a3);
            w0 = p[0], w1 = n3, w2 = n2, w3 = n1;
        }
        for (int u = 0; ii < kn; ii++, u++) {
            const float h = hs[ii];
            a0 = fmaf(w0, h, a0), a1 = fmaf(w1, h, a1), a2 = fmaf(w2, h, a2), a3 = fmaf(w3, h, a3);
            w3 = w2, w2 = w1, w1 = w0, w0 = p[(3 - u) * Q];
        }
    } else {
        const float *p = xs + tid;
        float w0 = p[0], w1 = p[Q], w2 = p[2 * Q], w3 = p[3 * Q];
        p += 1; /* the next samples, 4 * tid + 4 + ii + u, are p[u * Q] */
        for (; ii + 4 <= kn; ii += 4, p += 1) {
            const float h0 = hs[ii], h1 = hs[ii + 1], h2 = hs[ii + 2], h3 = hs[ii + 3];
            a0 = fmaf(w0, h0, a0), a1 = fmaf(w1, h0, a1), a2 = fmaf(w2, h0, a2), a3 = fmaf(w3, h0, a3);
            const float n1 = p[0];
            a0 = fmaf(w1, h1, a0), a1 = fmaf(w2, h1, a1), a2 = fmaf(w3, h1, a2), a3 = fmaf(n1, h1, a3);
            const float n2 = p[Q];
            a0 = fmaf(w2, h2, a0), a1 = fmaf(w3, h2, a1), a2 = fmaf(n1, h2, a2), a3 = fmaf(n2, h2, a3);
            const float n3 = p[2 * Q];
            a0 = fmaf(w3, h3, a0), a1 = fmaf(n1, h3, a1), a2 = fmaf(n2, h3, a2), a3 = fmaf(n3, h3, a3);
            w0 = n1, w1 = n2, w2 = n3, w3 = p[3 * Q];
        }
        for (int u = 0; ii < kn; ii++, u++) {
            const float h = hs[ii];
            a0 = fmaf(w0, h, a0), a1 = fmaf(w1, h, a1), a2 = fmaf(w2, h, a2), a3 = fmaf(w3, h, a3);
            w0 = w1, w1 = w2, w2 = w3, w3 = p[u * Q];
        }
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* a filter's sums into the result: conv multiplies by Ts once; corr adds
   the filters' products in filter order */
SL_HD void slc_temporal_finish(int corr, float *res, const float *acc, float Ts)
{
    for (int v = 0; v < SLC_TV; v++) res[v] = corr ? res[v] + acc[v] * Ts : acc[v] * Ts;
}

#endif
