/*
 * delay.c -- axonal delays: whole-bin shifts in time and the delay gradient.
 *
 * shift: per neuron row r (rows repeat every R rows, one per sample),
 *   k = (int)(d_r / Ts)            float32 division, truncated toward zero
 *                                  (a NaN delay gives k = 0, as the float
 *                                  to int conversion of the reference's
 *                                  CUDA kernel does)
 *   y[t] = x[t - k]  if 0 <= t - k < T, else 0
 * so a negative k advances the signal.  d is one scalar for every row, or
 * one value per neuron of a sample (R values).  The input gradient of a
 * shift by d is a shift of the output gradient by -d.
 *
 * Delay gradient (the reference's surrogate: the shift is treated as
 * continuous through the backward difference of the delayed output):
 *   D[t] = (y[t-1] - y[t]) / Ts        (y[-1] = 0, computed as the
 *          reference's conv with the filter [-1/Ts, 1/Ts] and Ts = 1)
 *   dd_r = Ts * sum_{n, t} g[n, r, t] * D[n, r, t]
 */
#include "../internal.h"
#include "../shapes.h"

#include <math.h>
#include <string.h>

static int rows_of(const char *op, const sl_tensor *x, int64_t *T, int64_t *rows, int64_t *R)
{
    char b[128];
    if (x->ndim < 2) return sl_errorf("%s: expected an (N, ..., T) tensor, got %s", op, sl_shape_str(x, b, sizeof b));
    sl_time_rows(x, T, rows, R);
    return 0;
}

int sl_shift(sl_tensor *out, const sl_tensor *in, const sl_tensor *delay, float scalar, float Ts)
{
    int dev = SL_DEVICE_OF("delayShift", out, in, delay);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("delayShift", out, in, delay);
    int64_t T = 0, rows = 0, R = 0;
    int rc = rows_of("delayShift", in, &T, &rows, &R);
    if (rc) return rc;
    if (!sl_same_shape(out, in)) return sl_errorf("delayShift: output and input shapes differ");
    if (delay && delay->numel != R)
        return sl_errorf("delayShift: expected one delay per neuron (%lld values), got %lld", (long long)R,
                         (long long)delay->numel);
    if (!(Ts > 0)) return sl_errorf("delayShift: Ts must be positive, got %g", Ts);
    SL_DISPATCH(sl_shift, dev, out, in, delay, scalar, Ts);
    SL_FOR(r, rows, rows * T > SL_PAR_MIN, {
        float d = delay ? delay->data[r % R] : scalar;
        float q = d / Ts;
        /* clamp before converting: a shift beyond the row only zeroes it */
        int64_t k = q != q ? 0 : (q >= (float)T ? T : (q <= -(float)T ? -T : (int64_t)q));
        const float *x = in->data + r * T;
        float *y = out->data + r * T;
        for (int64_t t = 0; t < T; t++) {
            int64_t s = t - k;
            y[t] = (s >= 0 && s < T) ? x[s] : 0.0f;
        }
    });
    return 0;
}

int sl_delay_grad(sl_tensor *gdelay, const sl_tensor *grad, const sl_tensor *out, float Ts)
{
    int dev = SL_DEVICE_OF("delay backward", gdelay, grad, out);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("delay backward", gdelay, grad, out);
    int64_t T = 0, rows = 0, R = 0;
    int rc = rows_of("delay backward", out, &T, &rows, &R);
    if (rc) return rc;
    if (grad->numel != out->numel) return sl_errorf("delay backward: gradient and output sizes differ");
    if (gdelay->numel != R)
        return sl_errorf("delay backward: expected %lld delays, got %lld", (long long)R, (long long)gdelay->numel);
    SL_DISPATCH(sl_delay_grad, dev, gdelay, grad, out, Ts);
    int64_t N = R ? rows / R : 0;
    float m = -1.0f / Ts, p = 1.0f / Ts;
    SL_FOR(r, R, rows * T > SL_PAR_MIN, {
        double s = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *y = out->data + (n * R + r) * T, *g = grad->data + (n * R + r) * T;
            float prev = 0.0f;
            for (int64_t t = 0; t < T; t++) {
                float dt = fmaf(prev, p, fmaf(y[t], m, 0.0f));
                s += (double)(g[t] * dt);
                prev = y[t];
            }
        }
        gdelay->data[r] = (float)s * Ts;
    });
    return 0;
}
