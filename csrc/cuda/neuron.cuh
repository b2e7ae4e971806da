/*
 * neuron.cuh -- the per-neuron arithmetic of spike.cu and loihi.cu, usable on
 * the host and the device, so that tests/c/test_cuda_neuron.c can check it
 * against the CPU ops (csrc/ops/spike.c, csrc/ops/loihi.c) without a GPU.
 * The device code is built with --fmad=false and the CPU code with FP
 * contraction off, so the float expressions below round alike on both.
 *
 * SRM spike function (spike.cu's shared-memory kernel): a block of
 *   SLC_SPIKE_ROWS rows, one thread each, moves through time SLC_SPIKE_TB
 *   bins at a time; each row keeps a circular window of M bins (a power of
 *   two, M >= TB + K - 1, so every bin a spike can reach is loaded).  The
 *   phases below (load, steps, store) are separated by barriers in the
 *   kernel; the host test runs them thread after thread.
 *
 * The surrogate gradient's exp is ../hostdev.h's sl_exp_nonpos, the CPU's.
 *
 * Loihi CUBA neuron (SPEC.md 15.5), one bin t >= 1 of one row:
 *   a  = trunc(x * Ts)                     (toward zero, saturating, NaN -> 0)
 *   u  = sgn(u) * ((|u| * keep_i) >> 12) + wScale * a
 *   v' = sgn(v) * ((|v| * keep_v) >> 12) + u
 *   spike = v' > theta  and not refractory
 *   v  = (spike or refractory) ? 0 : v'
 * in 32-bit two's complement with wrap-around.  The CPU counts refractory
 * spikes with a counter that rises at a spike and falls refDelay bins
 * later; as no spike can occur while it is non-zero, it is 0 or 1, and it is
 * 1 exactly when the last spike lies less than refDelay bins back: that is
 * what the state keeps here (no history of spikes needed).
 */
#ifndef SLAYER_CUDA_NEURON_CUH
#define SLAYER_CUDA_NEURON_CUH

#include <math.h>
#include <stdint.h>

#include "../hostdev.h"
#include "../slayer.h"

#define SLC_SPIKE_ROWS 32
#define SLC_SPIKE_TB 32

/* bins a spike changes (the refractory kernel's length, at least 1) */
SL_HD int64_t slc_spike_reach(int64_t K) { return K > 0 ? K : 1; }

/* the window: the smallest power of two >= TB + reach - 1 (at least 32) */
SL_HD int64_t slc_spike_window(int64_t K)
{
    int64_t need = SLC_SPIKE_TB + slc_spike_reach(K) - 1, M = 32;
    while (M < need) M *= 2;
    return M;
}

/* the step starting at bin t0 needs bins [.., min(T, t0 + TB + reach - 1)) */
SL_HD int64_t slc_spike_loaded(int64_t t0, int64_t T, int64_t K)
{
    int64_t L = t0 + SLC_SPIKE_TB + slc_spike_reach(K) - 1;
    return L < T ? L : T;
}

/* bins [b0, b1) of the block's nr rows into their windows (row r's at
   win + r * (M + 1)); thread tid of nthreads, consecutive threads on
   consecutive bins */
SL_HD void slc_spike_load(float *win, int M, const float *u, int64_t row0, int nr, int64_t T, int64_t b0,
                            int64_t b1, int tid, int nthreads)
{
    for (int r = 0; r < nr; r++) { /* rows in turn: no division per element */
        const float *ur = u + (row0 + r) * T;
        float *wr = win + r * (M + 1);
        for (int64_t t = b0 + tid; t < b1; t += nthreads) wr[(int)(t & (M - 1))] = ur[t];
    }
}

/* one row's bins [t0, t1) in time order: the spike test, and the refractory
   kernel added into the window (u[t + j] += nu[j], j < K, t + j < T); the
   spikes into st[0 .. t1 - t0) */
SL_HD void slc_spike_steps(float *wr, int M, float *st, int64_t t0, int64_t t1, int64_t T, const float *nu,
                             int64_t K, float theta, float amp)
{
    for (int64_t t = t0; t < t1; t++) {
        float o = 0.0f;
        if (wr[t & (M - 1)] >= theta) {
            o = amp;
            int64_t n = K < T - t ? K : T - t;
            for (int64_t j = 0; j < n; j++) {
                int q = (int)((t + j) & (M - 1));
                wr[q] = wr[q] + nu[j];
            }
        }
        st[t - t0] = o;
    }
}

/* bins [t0, t1) of the block's rows from their windows (and the spikes
   from st, row r's at st + r * (TB + 1)) back to u and s */
SL_HD void slc_spike_store(float *u, float *s, const float *win, int M, const float *st, int64_t row0, int nr,
                             int64_t T, int64_t t0, int64_t t1, int tid, int nthreads)
{
    for (int r = 0; r < nr; r++) {
        float *ur = u + (row0 + r) * T, *sr = s + (row0 + r) * T;
        const float *wr = win + r * (M + 1), *str = st + r * (SLC_SPIKE_TB + 1);
        for (int64_t t = t0 + tid; t < t1; t += nthreads) {
            ur[t] = wr[(int)(t & (M - 1))];
            sr[t] = str[(int)(t - t0)];
        }
    }
}

/* float -> int32 toward zero, saturating at the limits, NaN -> 0 */
SL_HD uint32_t slc_to_int_rz(float x)
{
#ifdef __CUDA_ARCH__
    return (uint32_t)__float2int_rz(x);
#else
    if (x != x) return 0u;
    if (x >= 2147483648.0f) return (uint32_t)INT32_MAX;
    if (x < -2147483648.0f) return (uint32_t)INT32_MIN;
    return (uint32_t)(int32_t)x;
#endif
}

/* sgn(z) * ((|z| * keep mod 2^32) >> 12), mod 2^32 */
SL_HD uint32_t slc_loihi_decay(uint32_t z, uint32_t keep)
{
    uint32_t neg = (int32_t)z < 0;
    uint32_t mag = neg ? 0u - z : z; /* INT32_MIN stays 2^31 */
    uint32_t d = (mag * keep) >> 12;
    return neg ? 0u - d : d;
}

typedef struct {
    uint32_t wScale, keepI, keepV;
    int32_t theta;
    int64_t refDelay;
    float Ts, vDecay, amp;
} slc_loihi_consts;

/* the step's constants for neuron n and bins of Ts ms (host side) */
static inline slc_loihi_consts slc_loihi_consts_of(const sl_loihi_neuron *n, float Ts)
{
    slc_loihi_consts c;
    c.wScale = 1u << (6 + n->wgtExp);
    c.theta = n->vThMant * 64;
    c.keepI = 4096u - (uint32_t)n->iDecay;
    c.keepV = 4096u - (uint32_t)n->vDecay;
    c.refDelay = n->refDelay;
    c.Ts = Ts;
    c.vDecay = (float)n->vDecay;
    c.amp = 1.0f / Ts;
    return c;
}

typedef struct {
    uint32_t u, v;
    int64_t last; /* bin of the last spike */
} slc_loihi_state;

SL_HD void slc_loihi_init(slc_loihi_state *s, const slc_loihi_consts *c)
{
    s->u = 0u;
    s->v = 0u;
    s->last = -c->refDelay - 1; /* no spike yet: never refractory */
}

/* bin t >= 1 with input x: the spike output (0 or 1/Ts), current U and
   voltage V (vDecay at a spike) */
SL_HD float slc_loihi_step(slc_loihi_state *s, const slc_loihi_consts *c, int64_t t, float x, float *U, float *V)
{
    uint32_t a = slc_to_int_rz(x * c->Ts);
    s->u = slc_loihi_decay(s->u, c->keepI) + c->wScale * a;
    uint32_t vn = slc_loihi_decay(s->v, c->keepV) + s->u;
    int refractory = t - s->last < c->refDelay;
    int spike = (int32_t)vn > c->theta && !refractory;
    s->v = (spike || refractory) ? 0u : vn;
    if (spike) s->last = t;
    *U = (float)(int32_t)s->u;
    *V = spike ? c->vDecay : (float)(int32_t)s->v;
    return spike ? c->amp : 0.0f;
}

#endif
