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
#include "../internal.h"

#include <math.h>

int sl_spike_forward(sl_tensor *spikes, sl_tensor *u, const sl_tensor *ref, float theta, float Ts)
{
    SL_DISPATCH(sl_spike_forward, SL_DEVICE_OF("spike", spikes, u, ref), spikes, u, ref, theta, Ts);
    SL_REQUIRE_CONTIGUOUS("spike", spikes, u, ref);
    char b1[128], b2[128];
    if (!sl_same_shape(spikes, u) || u->ndim < 1)
        return sl_errorf("spike: output %s and membrane potential %s differ", sl_shape_str(spikes, b1, sizeof b1),
                         sl_shape_str(u, b2, sizeof b2));
    int64_t T = u->shape[u->ndim - 1];
    if (T == 0 || u->numel == 0) return 0;
    int64_t rows = u->numel / T, K = ref->numel;
    const float *nu = ref->data;
    const float amp = 1.0f / Ts;
    SL_FOR(r, rows, rows * T > SL_PAR_MIN / 4, {
        float *ur = u->data + r * T;
        float *sr = spikes->data + r * T;
        for (int64_t t = 0; t < T; t++) {
            if (ur[t] >= theta) {
                sr[t] = amp;
                int64_t n = K < T - t ? K : T - t;
                float *a = ur + t;
                for (int64_t j = 0; j < n; j++) a[j] += nu[j];
            } else {
                sr[t] = 0.0f;
            }
        }
    });
    return 0;
}

SL_HOT
static void rho_chunk(float *restrict gin, const float *restrict gout, const float *restrict u, int64_t n,
                      float theta, float tau, float st)
{
    for (int64_t i = 0; i < n; i++) gin[i] = gout[i] * (st * expf(-fabsf(u[i] - theta) / tau));
}

int sl_spike_backward(sl_tensor *gin, const sl_tensor *gout, const sl_tensor *u, float theta, float tau,
                      float scale)
{
    SL_DISPATCH(sl_spike_backward, SL_DEVICE_OF("spike backward", gin, gout, u), gin, gout, u, theta, tau, scale);
    SL_REQUIRE_CONTIGUOUS("spike backward", gin, gout, u);
    if (gin->numel != u->numel || gout->numel != u->numel)
        return sl_errorf("spike backward: gradient and potential sizes differ");
    if (!(tau > 0)) return sl_errorf("spike backward: tauRho * theta must be positive, got %g", tau);
    float st = scale / tau;
    int64_t n = u->numel, chunks = n > 4 * SL_PAR_MIN ? (n + SL_PAR_MIN - 1) / SL_PAR_MIN : 1;
    SL_FOR(c, chunks, chunks > 1, {
        int64_t lo = c * n / chunks, hi = (c + 1) * n / chunks;
        rho_chunk(gin->data + lo, gout->data + lo, u->data + lo, hi - lo, theta, tau, st);
    });
    return 0;
}
