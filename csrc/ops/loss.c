/*
 * loss.c -- the numSpikes error's element-wise steps, fused (SPEC.md 11).
 *
 * The loss (lua/slayer/loss.lua) needs, per neuron row, the spike count in
 * the target window, the correction c that pulls it to the target count, the
 * output with the window's bins cancelled (it goes through the psp), and
 * later that psp plus c inside the window.  As separate tensor ops those are
 * about fifteen passes and launches over tiny (N, C, H, W, 1) tensors; here
 * they are two.  The count is summed in double and rounded to float32 (as
 * sum(5)), times Ts in float32; c is computed in double and rounded once,
 * as the reference's NumPy float64 step (its float32 count minus an integer
 * count promotes to float64), and every other step rounds to float32 as the
 * separate tensor ops do.
 *
 * Both losses end in E = 1/2 * sum(e^2) * Ts: square, sum, two scalings and,
 * backward, as many again.  half_sq_sum does it in one pass each way, with
 * the squares summed in the order of sum(e:square()) on the device (on the
 * CPU: in double, over fixed chunks of 65,536 added in order, as sum_all),
 * so E and its gradient are bit-identical to the composed ops as well.
 *
 * Every op checks its operands before it dispatches, so the CUDA twins
 * (cuda/loss.cu) need not.
 */
#include "../internal.h"

static int check_rows(const char *op, const sl_tensor *a, const sl_tensor *b, const sl_tensor *c,
                      const sl_tensor *rowsOf, int64_t lo, int64_t hi, int64_t *rows, int64_t *T)
{
    char b1[128], b2[128];
    if (a->ndim < 1) return sl_errorf("%s: expected a (..., T) tensor, got %s", op, sl_shape_str(a, b1, sizeof b1));
    *T = a->shape[a->ndim - 1];
    *rows = *T ? a->numel / *T : 0;
    if (b->numel != a->numel)
        return sl_errorf("%s: %s and %s differ in size", op, sl_shape_str(a, b1, sizeof b1), sl_shape_str(b, b2, sizeof b2));
    if (c->numel != *rows || (rowsOf && rowsOf->numel != *rows))
        return sl_errorf("%s: expected one value per row (%lld), got %s", op, (long long)*rows,
                         sl_shape_str(c->numel != *rows ? c : rowsOf, b1, sizeof b1));
    if (lo < 0 || hi < lo || hi > *T)
        return sl_errorf("%s: window [%lld, %lld) outside the %lld bins", op, (long long)lo, (long long)hi, (long long)*T);
    return 0;
}

int sl_numspikes_prep(sl_tensor *x, sl_tensor *c, const sl_tensor *out, const sl_tensor *desired, int64_t lo,
                      int64_t hi, float Ts, double countTrue, double countFalse, double len, double scale)
{
    int dev = SL_DEVICE_OF("numSpikes", x, c, out, desired);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("numSpikes", x, c, out, desired);
    int64_t rows = 0, T = 0;
    int rc = check_rows("numSpikes", out, x, c, desired, lo, hi, &rows, &T);
    if (rc) return rc;
    SL_DISPATCH(sl_numspikes_prep, dev, x, c, out, desired, lo, hi, Ts, countTrue, countFalse, len, scale);
    SL_FOR(r, rows, rows * T > SL_PAR_MIN, {
        const float *o = out->data + r * T;
        float *y = x->data + r * T;
        double s = 0;
        for (int64_t t = lo; t < hi; t++) s += o[t];
        float actual = (float)s * Ts;
        double d = desired->data[r] == 1.0f ? countTrue : countFalse;
        c->data[r] = (float)(((double)actual - d) / len * scale);
        for (int64_t t = 0; t < T; t++) {
            float m = t >= lo && t < hi ? 1.0f : 0.0f;
            y[t] = o[t] - o[t] * m;
        }
    });
    return 0;
}

int sl_window_add(sl_tensor *e, const sl_tensor *p, const sl_tensor *c, int64_t lo, int64_t hi)
{
    int dev = SL_DEVICE_OF("numSpikes", e, p, c);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("numSpikes", e, p, c);
    int64_t rows = 0, T = 0;
    int rc = check_rows("numSpikes", p, e, c, NULL, lo, hi, &rows, &T);
    if (rc) return rc;
    SL_DISPATCH(sl_window_add, dev, e, p, c, lo, hi);
    SL_FOR(r, rows, rows * T > SL_PAR_MIN, {
        const float *pr = p->data + r * T;
        float *er = e->data + r * T;
        float cr = c->data[r];
        for (int64_t t = 0; t < T; t++) {
            float m = t >= lo && t < hi ? 1.0f : 0.0f;
            er[t] = pr[t] + cr * m;
        }
    });
    return 0;
}

static int check_half_sq(const char *op, const sl_tensor *one, const sl_tensor *a, const sl_tensor *b)
{
    char b1[128], b2[128];
    if (one->numel != 1) return sl_errorf("%s: expected a one-element tensor, got %s", op, sl_shape_str(one, b1, sizeof b1));
    if (b && a->numel != b->numel)
        return sl_errorf("%s: %s and %s differ in size", op, sl_shape_str(a, b1, sizeof b1), sl_shape_str(b, b2, sizeof b2));
    return 0;
}

int sl_half_sq_sum(sl_tensor *out, const sl_tensor *e, float scale)
{
    int dev = SL_DEVICE_OF("loss", out, e);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("loss", out, e);
    int rc = check_half_sq("loss", out, e, NULL);
    if (rc) return rc;
    SL_DISPATCH(sl_half_sq_sum, dev, out, e, scale);
    double s = sl_sum_chunked(e->data, e->numel, 1);
    out->data[0] = ((float)s * 0.5f) * scale;
    return 0;
}

int sl_half_sq_sum_backward(sl_tensor *ge, const sl_tensor *g, const sl_tensor *e, float scale)
{
    int dev = SL_DEVICE_OF("loss backward", ge, g, e);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("loss backward", ge, g, e);
    int rc = check_half_sq("loss backward", g, ge, e);
    if (rc) return rc;
    SL_DISPATCH(sl_half_sq_sum_backward, dev, ge, g, e, scale);
    float h = (g->data[0] * scale) * 0.5f;
    SL_FOR(i, e->numel, e->numel > SL_PAR_MIN, { ge->data[i] = (h * e->data[i]) * 2.0f; });
    return 0;
}
