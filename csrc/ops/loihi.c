/*
 * loihi.c -- the integer current-based (CUBA) neuron of Intel's Loihi chip,
 * exactly as the reference computes it (src/cuda/spikeLoihiKernels.h,
 * SPEC.md 15.5).
 *
 * Layout: the input (weighted spikes, not psp-filtered) is viewed as
 * rows x T, time innermost; every row is one neuron, simulated on its own
 * and strictly in time order.  Per row, with x = in * Ts (float32),
 * wScale = 2^(6 + wgtExp), theta = vThMant * 2^6, keep_i = 4096 - iDecay,
 * keep_v = 4096 - vDecay, state u = v = 0, refractory counter r = 0:
 *
 *   t = 0:  s = U = V = 0 (the input at t = 0 is ignored)
 *   t >= 1: a  = trunc(x[t])                         (toward zero)
 *           u  = sgn(u) * ((|u| * keep_i) >> 12) + wScale * a
 *           v' = sgn(v) * ((|v| * keep_v) >> 12) + u
 *           r -= s[t - refDelay]                     (when t >= refDelay)
 *           spike = v' > theta  and  r == 0
 *           v  = (spike or r != 0) ? 0 : v'
 *           r += spike
 *           s[t] = spike / Ts,  U[t] = u,  V[t] = spike ? vDecay : v
 *
 * with sgn(z) = +1 for z >= 0, else -1.  Everything is 32-bit two's
 * complement with wrap-around, as on the GPU: the product |u| * keep is
 * formed in unsigned 32-bit (so it wraps once it reaches 2^32, e.g.
 * |u| > 1.4e6 for iDecay 1024), the shift is logical, and there is no
 * saturation to Loihi's 24-bit state.  The arithmetic is done on uint32_t,
 * where C defines the wrap, and reinterpreted as int32_t for the sign and
 * the threshold test.  The float -> int conversion of the input follows the
 * GPU's cvt.rzi: toward zero, saturating at the int32 limits, NaN -> 0.
 * Voltage and current are written as float32 (exact below 2^24 in
 * magnitude, rounded to nearest above, as the reference's stores).
 *
 * Rows are independent and split across threads, so the result does not
 * depend on the thread count.  The spikes written so far double as the
 * refractory history, so no scratch memory is needed.
 */
#include "../internal.h"

#include <math.h>

/* float -> int32 toward zero, saturating, NaN -> 0 (the GPU's conversion;
   a plain C cast is undefined out of range) */
static inline uint32_t to_int_rz(float x)
{
    if (x != x) return 0u;
    if (x >= 2147483648.0f) return (uint32_t)INT32_MAX;
    if (x < -2147483648.0f) return (uint32_t)INT32_MIN;
    return (uint32_t)(int32_t)x;
}

/* sgn(z) * ((|z| * keep mod 2^32) >> 12), mod 2^32 */
static inline uint32_t decay(uint32_t z, uint32_t keep)
{
    uint32_t neg = (int32_t)z < 0;
    uint32_t mag = neg ? 0u - z : z;   /* INT32_MIN stays 2^31, as on the GPU */
    uint32_t d = (mag * keep) >> 12;
    return neg ? 0u - d : d;
}

static inline float as_float(uint32_t z) { return (float)(int32_t)z; }

SL_HOT
static void loihi_row(float *restrict s, float *restrict V, float *restrict U, const float *restrict in,
                      int64_t T, float Ts, uint32_t wScale, int32_t theta, uint32_t keepI, uint32_t keepV,
                      int64_t refDelay, float vDecay)
{
    const float amp = 1.0f / Ts;
    uint32_t u = 0, v = 0, r = 0;
    s[0] = 0.0f;
    if (V) V[0] = 0.0f;
    if (U) U[0] = 0.0f;
    for (int64_t t = 1; t < T; t++) {
        uint32_t a = to_int_rz(in[t] * Ts);
        u = decay(u, keepI) + wScale * a;
        uint32_t vn = decay(v, keepV) + u;
        if (t >= refDelay) r -= s[t - refDelay] != 0.0f;
        uint32_t spike = (int32_t)vn > theta && r == 0;
        v = (spike || r != 0) ? 0u : vn;
        r += spike;
        s[t] = spike ? amp : 0.0f;
        if (U) U[t] = as_float(u);
        if (V) V[t] = spike ? vDecay : as_float(v);
    }
}

int sl_loihi_forward(sl_tensor *spikes, sl_tensor *voltage, sl_tensor *current, const sl_tensor *in,
                     const sl_loihi_neuron *n, float Ts)
{
    int dev = SL_DEVICE_OF("spikeLoihi", spikes, voltage, current, in);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("spikeLoihi", spikes, voltage, current, in);
    char b1[128], b2[128];
    if (in->ndim < 1 || !sl_same_shape(spikes, in) || (voltage && !sl_same_shape(voltage, in)) ||
        (current && !sl_same_shape(current, in)))
        return sl_errorf("spikeLoihi: outputs must have the input's shape %s (spikes %s)",
                         sl_shape_str(in, b1, sizeof b1), sl_shape_str(spikes, b2, sizeof b2));
    if (n->iDecay < 0 || n->iDecay > 4096 || n->vDecay < 0 || n->vDecay > 4096)
        return sl_errorf("spikeLoihi: decays must lie in [0, 4096], got iDecay %d, vDecay %d", (int)n->iDecay,
                         (int)n->vDecay);
    if (n->refDelay < 1) return sl_errorf("spikeLoihi: refDelay must be >= 1, got %d", (int)n->refDelay);
    if (n->wgtExp < -6 || n->wgtExp > 25) return sl_errorf("spikeLoihi: wgtExp %d out of range", (int)n->wgtExp);
    if (n->vThMant < 0 || n->vThMant > (INT32_MAX >> 6))
        return sl_errorf("spikeLoihi: vThMant %d out of range", (int)n->vThMant);
    if (!(Ts > 0) || isinf(Ts)) return sl_errorf("spikeLoihi: Ts must be positive, got %g", (double)Ts);
    SL_DISPATCH(sl_loihi_forward, dev, spikes, voltage, current, in, n, Ts);
    int64_t T = in->shape[in->ndim - 1];
    if (T == 0 || in->numel == 0) return 0;
    int64_t rows = in->numel / T;
    const uint32_t wScale = 1u << (6 + n->wgtExp);
    const int32_t theta = n->vThMant * 64;
    const uint32_t keepI = 4096u - (uint32_t)n->iDecay, keepV = 4096u - (uint32_t)n->vDecay;
    const float vDecay = (float)n->vDecay;
    float *s = spikes->data, *V = voltage ? voltage->data : NULL, *U = current ? current->data : NULL;
    const float *x = in->data;
    SL_FOR(i, rows, rows > 1 && rows * T > SL_PAR_MIN / 8,
           loihi_row(s + i * T, V ? V + i * T : NULL, U ? U + i * T : NULL, x + i * T, T, Ts, wScale, theta,
                     keepI, keepV, n->refDelay, vDecay););
    return 0;
}
