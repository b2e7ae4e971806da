/*
 * spike.c -- the SRM spike function with refractory response, and SLAYER's
 * surrogate gradient.
 *
 * Forward, per neuron row u[0..T-1], strictly in time order (as the
 * reference's getSpikesKernel):
 *   if u[t] >= theta:  s[t] = 1/Ts;  u[t + j] += nu[j]  for j < Knu, t + j < T
 *   else               s[t] = 0
 * u is modified in place: afterwards it holds the post-refractory potential
 * (nu[0] = -0, so u[t] itself is unchanged and the dip starts at t + 1).
 *
 * Backward (surrogate), on that post-refractory u:
 *   du[t] = ds[t] * rho(u[t]),  rho(u) = (scale / tau) * exp(-|u - theta| / tau)
 * with tau = tauRho * theta and every constant a float32, as the reference.
 * No gradient flows through the refractory kernel.
 */
#include "../hostdev.h"
#include "../internal.h"

#include <math.h>

/* Sixteen rows at a time, as the lanes of one vector: the rows are
   transposed into a [T][16] tile, the recurrence runs in time order with the
   threshold test and the refractory additions done for all lanes at once
   (an addition only where that lane spiked, so each element receives
   exactly the reference's additions, in spike order), and the tile is
   transposed back.  Spiking is a data-dependent branch per bin in a scalar
   loop; here it is a mask.  Unused lanes hold -inf and never spike. */
#define LANES 16
typedef float v16f __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t v16i __attribute__((vector_size(LANES * sizeof(int32_t))));

SL_HOT
static void spike_tile(float *restrict tile, float *restrict st, int64_t T, const float *restrict nu, int64_t K,
                       float theta, float amp)
{
    const v16f th = (v16f){0} + theta, am = (v16f){0} + amp;
    for (int64_t t = 0; t < T; t++) {
        v16f *cur = (v16f *)(tile + t * LANES);
        v16i fired = *cur >= th; /* all ones where the lane spikes */
        *(v16f *)(st + t * LANES) = (v16f)((v16i)am & fired);
        int32_t any = 0;
        for (int l = 0; l < LANES; l++) any |= fired[l];
        if (!any) continue;
        int64_t n = K < T - t ? K : T - t;
        /* lanes that did not spike add +0 (only -0 would change, to +0) */
        for (int64_t j = 0; j < n; j++) cur[j] += (v16f)((v16i)((v16f){0} + nu[j]) & fired);
    }
}

static void spike_block(float *u, float *s, int64_t nrows, int64_t T, const float *nu, int64_t K, float theta,
                        float amp, float *tile, float *st)
{
    for (int64_t t = 0; t < T; t++)
        for (int l = 0; l < LANES; l++) tile[t * LANES + l] = l < nrows ? u[l * T + t] : -INFINITY;
    spike_tile(tile, st, T, nu, K, theta, amp);
    for (int64_t l = 0; l < nrows; l++)
        for (int64_t t = 0; t < T; t++) {
            u[l * T + t] = tile[t * LANES + l];
            s[l * T + t] = st[t * LANES + l];
        }
}

int sl_spike_forward(sl_tensor *spikes, sl_tensor *u, const sl_tensor *ref, float theta, float Ts)
{
    int dev = SL_DEVICE_OF("spike", spikes, u, ref);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("spike", spikes, u, ref);
    char b1[128], b2[128];
    if (!sl_same_shape(spikes, u) || u->ndim < 1)
        return sl_errorf("spike: output %s and membrane potential %s differ", sl_shape_str(spikes, b1, sizeof b1),
                         sl_shape_str(u, b2, sizeof b2));
    SL_DISPATCH(sl_spike_forward, dev, spikes, u, ref, theta, Ts);
    int64_t T = u->shape[u->ndim - 1];
    if (T == 0 || u->numel == 0) return 0;
    int64_t rows = u->numel / T, K = ref->numel;
    const float *nu = ref->data;
    const float amp = 1.0f / Ts;
    int64_t blocks = (rows + LANES - 1) / LANES;
    size_t tileBytes = (size_t)(2 * T * LANES) * sizeof(float);
    int oom = 0;
#pragma omp parallel if (blocks > 1 && rows * T > SL_PAR_MIN / 4)
    {
        float *tile = sl_scratch_alloc(tileBytes);
        if (!tile) oom = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            if (!tile) continue;
            int64_t r0 = b * LANES, nr = rows - r0 < LANES ? rows - r0 : LANES;
            spike_block(u->data + r0 * T, spikes->data + r0 * T, nr, T, nu, K, theta, amp, tile, tile + T * LANES);
        }
        sl_scratch_free(tile, tileBytes);
    }
    if (oom) return sl_errorf_code(SL_ENOMEM, "spike: out of memory");
    return 0;
}

SL_HOT
static void rho_chunk(float *restrict gin, const float *restrict gout, const float *restrict u, int64_t n,
                      float theta, float tau, float st)
{
    for (int64_t i = 0; i < n; i++) gin[i] = sl_spike_surrogate(gout[i], u[i], theta, tau, st);
}

int sl_spike_backward(sl_tensor *gin, const sl_tensor *gout, const sl_tensor *u, float theta, float tau,
                      float scale)
{
    int dev = SL_DEVICE_OF("spike backward", gin, gout, u);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("spike backward", gin, gout, u);
    if (gin->numel != u->numel || gout->numel != u->numel)
        return sl_errorf("spike backward: gradient and potential sizes differ");
    if (!(tau > 0)) return sl_errorf("spike backward: tauRho * theta must be positive, got %g", tau);
    SL_DISPATCH(sl_spike_backward, dev, gin, gout, u, theta, tau, scale);
    float st = scale / tau;
    int64_t n = u->numel, chunks = n > 4 * SL_PAR_MIN ? (n + SL_PAR_MIN - 1) / SL_PAR_MIN : 1;
    SL_FOR(c, chunks, chunks > 1, {
        int64_t lo = c * n / chunks, hi = (c + 1) * n / chunks;
        rho_chunk(gin->data + lo, gout->data + lo, u->data + lo, hi - lo, theta, tau, st);
    });
    return 0;
}
