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

/* one padding word every 32 staged samples: a warp's TV-strided reads hit
   at most two banks at once */
SL_HD int slc_pad(int p) { return p + (p >> 5); }

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

/* stage the chunk of taps i0 .. i0 + kn - 1: the samples conv x[t0 - i0 -
   (KC-1) + k] or corr g[t0 + i0 + k] for k < tile + KC - 1 (zero outside the
   row) into xs, the taps into hs; thread tid of nthreads */
SL_HD void slc_temporal_stage(int corr, float *xs, float *hs, const float *x, const float *hf, int64_t t0,
                                int64_t i0, int64_t T, int kn, int tid, int nthreads)
{
    const int XS = nthreads * SLC_TV + SLC_KC - 1;
    const int64_t base = corr ? t0 + i0 : t0 - i0 - (SLC_KC - 1);
    for (int k = tid; k < XS; k += nthreads) {
        int64_t ti = base + k;
        xs[slc_pad(k)] = ti >= 0 && ti < T ? x[ti] : 0.0f;
    }
    for (int k = tid; k < kn; k += nthreads) hs[k] = hf[i0 + k];
}

/* thread tid's outputs over the staged chunk: conv output t0 + TV*tid + v
   reads staged sample c + v - ii, corr reads c + v + ii */
SL_HD void slc_temporal_taps(int corr, float *acc, const float *xs, const float *hs, int tid, int kn)
{
    const int c = corr ? SLC_TV * tid : SLC_TV * tid + SLC_KC - 1;
    float w[SLC_TV];
    for (int v = 0; v < SLC_TV; v++) w[v] = xs[slc_pad(c + v)];
    for (int ii = 0; ii < kn; ii++) {
        const float hi = hs[ii];
        for (int v = 0; v < SLC_TV; v++) acc[v] = fmaf(w[v], hi, acc[v]);
        if (ii + 1 < kn) {
            if (corr) {
                for (int v = 0; v < SLC_TV - 1; v++) w[v] = w[v + 1];
                w[SLC_TV - 1] = xs[slc_pad(c + SLC_TV + ii)];
            } else {
                for (int v = SLC_TV - 1; v > 0; v--) w[v] = w[v - 1];
                w[0] = xs[slc_pad(c - ii - 1)];
            }
        }
    }
}

/* a filter's sums into the result: conv multiplies by Ts once; corr adds
   the filters' products in filter order */
SL_HD void slc_temporal_finish(int corr, float *res, const float *acc, float Ts)
{
    for (int v = 0; v < SLC_TV; v++) res[v] = corr ? res[v] + acc[v] * Ts : acc[v] * Ts;
}

#endif
