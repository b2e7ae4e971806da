/*
 * elementwise.c -- element-wise maths with numpy broadcasting.
 *
 *   out[i] = a[ia(i)] (op) b[ib(i)]
 *
 * where ia, ib map an output index to the operand index, a size-1 (or
 * missing leading) dimension repeating its single element.  Dimensions that
 * are contiguous in all three tensors are merged first, so most calls reduce
 * to one flat loop whose operand strides are 0 or 1.
 */
#include "../internal.h"
#include "../shapes.h"

#include <math.h>
#include <string.h>

static inline float apply(int op, float x, float y)
{
    switch (op) {
    case SL_ADD: return x + y;
    case SL_SUB: return x - y;
    case SL_MUL: return x * y;
    case SL_DIV: return x / y;
    case SL_POW: return powf(x, y);
    case SL_MAX: return x > y || isnan(x) ? x : y;
    case SL_MIN: return x < y || isnan(x) ? x : y;
    case SL_GT: return x > y ? 1.0f : 0.0f;
    case SL_GE: return x >= y ? 1.0f : 0.0f;
    case SL_LT: return x < y ? 1.0f : 0.0f;
    case SL_LE: return x <= y ? 1.0f : 0.0f;
    case SL_EQ: return x == y ? 1.0f : 0.0f;
    case SL_NE: return x != y ? 1.0f : 0.0f;
    default: return NAN;
    }
}

/* one row: strides of a and b are 0 or 1 in the fast cases */
#define ROW_LOOP(EXPR)                                                                \
    do {                                                                              \
        if (sa == 1 && sb == 1) {                                                     \
            for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); } \
        } else if (sa == 1 && sb == 0) {                                              \
            float y = b[0];                                                           \
            for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }        \
        } else if (sa == 0 && sb == 1) {                                              \
            float x = a[0];                                                           \
            for (int64_t i = 0; i < n; i++) { float y = b[i]; o[i] = (EXPR); }        \
        } else {                                                                      \
            for (int64_t i = 0; i < n; i++) {                                         \
                float x = a[i * sa], y = b[i * sb];                                   \
                o[i] = (EXPR);                                                        \
            }                                                                         \
        }                                                                             \
    } while (0)

SL_HOT
static void binary_row(int op, int64_t n, float *restrict o, const float *a, int64_t sa,
                       const float *b, int64_t sb)
{
    switch (op) {
    case SL_ADD: ROW_LOOP(x + y); break;
    case SL_SUB: ROW_LOOP(x - y); break;
    case SL_MUL: ROW_LOOP(x * y); break;
    case SL_DIV: ROW_LOOP(x / y); break;
    default: ROW_LOOP(apply(op, x, y)); break;
    }
}

/* broadcast strides of t aligned to out's dims, or an error naming both */
static int bcast_strides(const sl_tensor *t, const sl_tensor *out, int64_t *st, const char *op)
{
    char b1[128], b2[128];
    switch (sl_bcast_strides(t, out, st)) {
    case SL_BCAST_DIMS:
        return sl_errorf("%s: operand %s has more dimensions than the result %s", op,
                         sl_shape_str(t, b1, sizeof b1), sl_shape_str(out, b2, sizeof b2));
    case SL_BCAST_SHAPES:
        return sl_errorf("%s: shapes %s and result %s do not broadcast", op,
                         sl_shape_str(t, b1, sizeof b1), sl_shape_str(out, b2, sizeof b2));
    default: return 0;
    }
}

/* contiguous output strides */
static void out_strides(const sl_tensor *out, int64_t *st)
{
    int64_t s = 1;
    for (int d = out->ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= out->shape[d];
    }
}

/* merge dims contiguous in all of (so, sa, sb); returns new count */
static int coalesce3(int ndim, const int32_t *shape, int64_t *so, int64_t *sa, int64_t *sb,
                     int64_t *cs)
{
    int k = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        if (k > 0 && so[k - 1] == shape[d] * so[d] && sa[k - 1] == shape[d] * sa[d] &&
            sb[k - 1] == shape[d] * sb[d]) {
            cs[k - 1] *= shape[d];
            so[k - 1] = so[d];
            sa[k - 1] = sa[d];
            sb[k - 1] = sb[d];
        } else {
            cs[k] = shape[d];
            so[k] = so[d];
            sa[k] = sa[d];
            sb[k] = sb[d];
            k++;
        }
    }
    if (k == 0) {
        cs[0] = 1;
        so[0] = 1;
        sa[0] = sb[0] = 0;
        k = 1;
    }
    return k;
}

int sl_binary(int op, sl_tensor *out, const sl_tensor *a, const sl_tensor *b)
{
    int dev = SL_DEVICE_OF("binary", out, a, b);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("binary", out, a, b);
    if (op < SL_ADD || op > SL_NE) return sl_errorf("binary: unknown operation %d", op);
    int64_t so[SL_MAX_DIMS], sa[SL_MAX_DIMS], sb[SL_MAX_DIMS], cs[SL_MAX_DIMS];
    int rc = bcast_strides(a, out, sa, "binary");
    if (!rc) rc = bcast_strides(b, out, sb, "binary");
    if (rc) return rc;
    SL_DISPATCH(sl_binary, dev, op, out, a, b);
    if (out->numel == 0) return 0;
    out_strides(out, so);
    int k = coalesce3(out->ndim, out->shape, so, sa, sb, cs);
    int64_t rows = 1;
    for (int d = 0; d < k - 1; d++) rows *= cs[d];
    int64_t len = cs[k - 1];
    float *o = out->data;
    const float *pa = a->data, *pb = b->data;
    if (rows == 1) {
        /* one long row: split it across threads */
        int64_t ia = sa[k - 1], ib = sb[k - 1];
        int64_t chunks = len > 4 * SL_PAR_MIN ? (len + SL_PAR_MIN - 1) / SL_PAR_MIN : 1;
        SL_FOR(c, chunks, chunks > 1, {
            int64_t lo = c * len / chunks, hi = (c + 1) * len / chunks;
            binary_row(op, hi - lo, o + lo, pa + lo * ia, ia, pb + lo * ib, ib);
        });
        return 0;
    }
    SL_FOR(r, rows, out->numel > 4 * SL_PAR_MIN, {
        int64_t oo = 0, oa = 0, ob = 0, rem = r;
        for (int d = k - 2; d >= 0; d--) {
            int64_t i = rem % cs[d];
            rem /= cs[d];
            oo += i * so[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        binary_row(op, len, o + oo, pa + oa, sa[k - 1], pb + ob, sb[k - 1]);
    });
    return 0;
}

int sl_binary_scalar(int op, sl_tensor *out, const sl_tensor *a, float s, int reversed)
{
    int dev = SL_DEVICE_OF("binary", out, a);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("binary", out, a);
    char b1[128], b2[128];
    if (out->numel != a->numel)
        return sl_errorf("binary: result %s and operand %s differ", sl_shape_str(out, b1, sizeof b1),
                         sl_shape_str(a, b2, sizeof b2));
    if (op < SL_ADD || op > SL_NE) return sl_errorf("binary: unknown operation %d", op);
    SL_DISPATCH(sl_binary_scalar, dev, op, out, a, s, reversed);
    int64_t n = out->numel;
    int64_t chunks = n > 4 * SL_PAR_MIN ? (n + SL_PAR_MIN - 1) / SL_PAR_MIN : 1;
    SL_FOR(c, chunks, chunks > 1, {
        int64_t lo = c * n / chunks, hi = (c + 1) * n / chunks;
        if (reversed) binary_row(op, hi - lo, out->data + lo, &s, 0, a->data + lo, 1);
        else binary_row(op, hi - lo, out->data + lo, a->data + lo, 1, &s, 0);
    });
    return 0;
}

static inline float unary(int op, float x)
{
    switch (op) {
    case SL_NEG: return -x;
    case SL_ABS: return fabsf(x);
    case SL_EXP: return expf(x);
    case SL_LOG: return logf(x);
    case SL_SQRT: return sqrtf(x);
    case SL_SIGN: return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f);
    case SL_TANH: return tanhf(x);
    case SL_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case SL_RELU: return x > 0 ? x : 0.0f;
    case SL_FLOOR: return floorf(x);
    case SL_CEIL: return ceilf(x);
    case SL_ROUND: return nearbyintf(x); /* half to even, as numpy/torch round */
    case SL_RSQRT: return 1.0f / sqrtf(x);
    case SL_SQUARE: return x * x;
    default: return NAN;
    }
}

SL_HOT
static void unary_chunk(int op, int64_t n, float *restrict o, const float *restrict a)
{
    switch (op) {
    case SL_NEG: for (int64_t i = 0; i < n; i++) o[i] = -a[i]; break;
    case SL_ABS: for (int64_t i = 0; i < n; i++) o[i] = fabsf(a[i]); break;
    case SL_SQUARE: for (int64_t i = 0; i < n; i++) o[i] = a[i] * a[i]; break;
    default: for (int64_t i = 0; i < n; i++) o[i] = unary(op, a[i]); break;
    }
}

int sl_unary(int op, sl_tensor *out, const sl_tensor *a)
{
    int dev = SL_DEVICE_OF("unary", out, a);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("unary", out, a);
    if (out->numel != a->numel) return sl_errorf("unary: result and operand sizes differ");
    if (op < SL_NEG || op > SL_SQUARE) return sl_errorf("unary: unknown operation %d", op);
    SL_DISPATCH(sl_unary, dev, op, out, a);
    int64_t n = out->numel;
    int64_t chunks = n > 4 * SL_PAR_MIN ? (n + SL_PAR_MIN - 1) / SL_PAR_MIN : 1;
    SL_FOR(c, chunks, chunks > 1, {
        int64_t lo = c * n / chunks, hi = (c + 1) * n / chunks;
        unary_chunk(op, hi - lo, out->data + lo, a->data + lo);
    });
    return 0;
}

int sl_clamp(sl_tensor *out, const sl_tensor *a, float lo, float hi)
{
    int dev = SL_DEVICE_OF("clamp", out, a);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("clamp", out, a);
    if (out->numel != a->numel) return sl_errorf("clamp: result and operand sizes differ");
    SL_DISPATCH(sl_clamp, dev, out, a, lo, hi);
    int64_t n = out->numel;
    SL_FOR(i, n, n > 4 * SL_PAR_MIN, {
        float x = a->data[i];
        out->data[i] = x < lo ? lo : (x > hi ? hi : x);
    });
    return 0;
}

int sl_axpy(sl_tensor *y, float alpha, const sl_tensor *x)
{
    int dev = SL_DEVICE_OF("axpy", y, x);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("axpy", y, x);
    char b1[128], b2[128];
    if (y->numel != x->numel)
        return sl_errorf("axpy: sizes differ (%s and %s)", sl_shape_str(y, b1, sizeof b1),
                         sl_shape_str(x, b2, sizeof b2));
    SL_DISPATCH(sl_axpy, dev, y, alpha, x);
    int64_t n = y->numel;
    float *restrict py = y->data;
    const float *restrict px = x->data;
    SL_FOR(i, n, n > 4 * SL_PAR_MIN, py[i] += alpha * px[i];);
    return 0;
}

int sl_where_mask(sl_tensor *out, const sl_tensor *g, const sl_tensor *mask)
{
    int dev = SL_DEVICE_OF("where_mask", out, g, mask);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("where_mask", out, g, mask);
    if (out->numel != g->numel || out->numel != mask->numel)
        return sl_errorf("where_mask: sizes differ");
    SL_DISPATCH(sl_where_mask, dev, out, g, mask);
    int64_t n = out->numel;
    SL_FOR(i, n, n > 4 * SL_PAR_MIN, out->data[i] = mask->data[i] != 0.0f ? g->data[i] : 0.0f;);
    return 0;
}
