/*
 * reduce.c -- sums and maxima.
 *
 * A reduction along dim d views the contiguous input as [outer, n, inner]
 * and writes [outer, 1, inner]:
 *     out[o, i] = sum_k a[o, k, i]        (max: value and first index k)
 * Work is split over (o, i), never over k, so the summation order, and so
 * the result, does not depend on the thread count.
 * sl_sum_to reduces a broadcast gradient back to an operand's shape.
 */
#include "../hostdev.h"
#include "../internal.h"
#include "../shapes.h"

#include <math.h>
#include <string.h>

static int check_dim_out(const char *op, const sl_tensor *out, const sl_tensor *a, int dim)
{
    char b1[128], b2[128];
    if (dim < 0 || dim >= a->ndim)
        return sl_errorf("%s: dimension %d out of range for %s", op, dim + 1, sl_shape_str(a, b1, sizeof b1));
    int64_t rest = 1;
    for (int d = 0; d < a->ndim; d++)
        if (d != dim) rest *= a->shape[d];
    if (out->numel != rest)
        return sl_errorf("%s: result %s does not match input %s reduced over dimension %d", op,
                         sl_shape_str(out, b1, sizeof b1), sl_shape_str(a, b2, sizeof b2), dim + 1);
    return 0;
}

int sl_sum_dim(sl_tensor *out, const sl_tensor *a, int dim)
{
    int dev = SL_DEVICE_OF("sum", out, a);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("sum", out, a);
    int rc = check_dim_out("sum", out, a, dim);
    if (rc) return rc;
    SL_DISPATCH(sl_sum_dim, dev, out, a, dim);
    if (out->numel == 0) return 0; /* nothing to write (and no data pointer) */
    int64_t outer, n, inner;
    sl_split_dims(a, dim, &outer, &n, &inner);
    const float *pa = a->data;
    float *po = out->data;
    if (inner == 1) {
        SL_FOR(o, outer, a->numel > 4 * SL_PAR_MIN && outer > 1, {
            double s = 0;
            const float *row = pa + o * n;
            for (int64_t k = 0; k < n; k++) s += row[k];
            po[o] = (float)s;
        });
        return 0;
    }
    SL_FOR(o, outer, a->numel > 4 * SL_PAR_MIN && outer > 1, {
        float *dst = po + o * inner;
        const float *src = pa + o * n * inner;
        memset(dst, 0, (size_t)inner * sizeof(float));
        for (int64_t k = 0; k < n; k++)
            for (int64_t i = 0; i < inner; i++) dst[i] += src[k * inner + i];
    });
    return 0;
}

int sl_max_dim(sl_tensor *values, sl_tensor *indices, const sl_tensor *a, int dim)
{
    int dev = SL_DEVICE_OF("max", values, indices, a);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("max", values, indices, a);
    int rc = check_dim_out("max", values, a, dim);
    if (rc) return rc;
    if (indices->numel != values->numel) return sl_errorf("max: values and indices sizes differ");
    int64_t outer, n, inner;
    sl_split_dims(a, dim, &outer, &n, &inner);
    if (n == 0) return sl_errorf("max: cannot reduce an empty dimension");
    if (n > ((int64_t)1 << 24)) /* the indices are float32: exact up to 2^24 */
        return sl_errorf("max: dimension %d has %lld entries; its indices (float32) are exact only up to 2^24 = "
                         "16777216", dim + 1, (long long)n);
    SL_DISPATCH(sl_max_dim, dev, values, indices, a, dim);
    SL_FOR(o, outer, a->numel > 4 * SL_PAR_MIN && outer > 1, {
        for (int64_t i = 0; i < inner; i++) {
            float best;
            int64_t bi = sl_argmax_strided(a->data + o * n * inner + i, n, inner, &best);
            values->data[o * inner + i] = best;
            indices->data[o * inner + i] = (float)bi;
        }
    });
    return 0;
}

/* sum of a[0..n) (of a[i]*a[i], rounded to float, when squares), in double
   over fixed chunks of 65,536 whose partial sums are added in chunk order:
   the same bits for any thread count */
double sl_sum_chunked(const float *a, int64_t n, int squares)
{
    enum { CHUNK = 65536 };
    int64_t chunks = (n + CHUNK - 1) / CHUNK;
    double part[256];
    int64_t per = (chunks + 255) / 256;
    if (per < 1) per = 1;
    int64_t groups = (chunks + per - 1) / per;
    SL_FOR(g, groups, n > 8 * SL_PAR_MIN, {
        double acc = 0;
        int64_t lo = g * per * CHUNK, hi = lo + per * CHUNK < n ? lo + per * CHUNK : n;
        if (squares)
            for (int64_t i = lo; i < hi; i++) {
                float q = a[i] * a[i];
                acc += q;
            }
        else
            for (int64_t i = lo; i < hi; i++) acc += a[i];
        part[g] = acc;
    });
    double s = 0;
    for (int64_t g = 0; g < groups; g++) s += part[g];
    return s;
}

int sl_sum_all(double *result, const sl_tensor *a)
{
    SL_REQUIRE_CONTIGUOUS("sum", a);
    if (a->device == SL_CUDA) {
        int (*fn)(double *, const sl_tensor *) =
            (int (*)(double *, const sl_tensor *))sl_cuda_symbol("sl_sum_all_cuda");
        return fn ? fn(result, a) : SL_EDEVICE;
    }
    *result = sl_sum_chunked(a->data, a->numel, 0);
    return 0;
}

static int extreme_all(float *value, int64_t *index, const sl_tensor *a, int want_max)
{
    SL_REQUIRE_CONTIGUOUS(want_max ? "max" : "min", a);
    if (a->numel == 0) return sl_errorf("%s: empty tensor", want_max ? "max" : "min");
    if (a->device == SL_CUDA) {
        const char *name = want_max ? "sl_max_all_cuda" : "sl_min_all_cuda";
        int (*fn)(float *, int64_t *, const sl_tensor *) =
            (int (*)(float *, int64_t *, const sl_tensor *))sl_cuda_symbol(name);
        return fn ? fn(value, index, a) : SL_EDEVICE;
    }
    float best = a->data[0];
    int64_t bi = 0;
    for (int64_t i = 1; i < a->numel; i++) {
        float v = a->data[i];
        if (want_max ? v > best : v < best) {
            best = v;
            bi = i;
        }
    }
    *value = best;
    if (index) *index = bi;
    return 0;
}

int sl_max_all(float *value, int64_t *index, const sl_tensor *a) { return extreme_all(value, index, a, 1); }
int sl_min_all(float *value, int64_t *index, const sl_tensor *a) { return extreme_all(value, index, a, 0); }

int sl_scatter_dim(sl_tensor *out, const sl_tensor *index, const sl_tensor *g, int dim)
{
    int dev = SL_DEVICE_OF("max backward", out, index, g);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("max backward", out, index, g);
    int rc = check_dim_out("max backward", g, out, dim);
    if (rc) return rc;
    if (index->numel != g->numel) return sl_errorf("max backward: index and gradient sizes differ");
    SL_DISPATCH(sl_scatter_dim, dev, out, index, g, dim);
    int64_t outer, n, inner;
    sl_split_dims(out, dim, &outer, &n, &inner);
    memset(out->data, 0, (size_t)out->numel * sizeof(float));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t k = (int64_t)index->data[o * inner + i];
            if (k < 0 || k >= n) return sl_errorf("max backward: index %lld out of range [0, %lld)", (long long)k, (long long)n);
            out->data[(o * n + k) * inner + i] = g->data[o * inner + i];
        }
    return 0;
}

int sl_sum_to(sl_tensor *out, const sl_tensor *a)
{
    int dev = SL_DEVICE_OF("sum_to", out, a);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("sum_to", out, a);
    int off = a->ndim - out->ndim;
    bool fits = off >= 0;
    for (int d = 0; fits && d < out->ndim; d++) fits = out->shape[d] == 1 || out->shape[d] == a->shape[d + off];
    if (!fits) {
        char b1[128], b2[128];
        return sl_errorf("sum_to: cannot reduce %s to %s", sl_shape_str(a, b1, sizeof b1),
                         sl_shape_str(out, b2, sizeof b2));
    }
    SL_DISPATCH(sl_sum_to, dev, out, a);
    /* out's strides along a's dims, 0 where out has size 1 or no dim */
    int64_t so[SL_MAX_DIMS], step = 1;
    for (int d = out->ndim - 1; d >= 0; d--) {
        so[d + off] = out->shape[d] == 1 ? 0 : step;
        step *= out->shape[d];
    }
    for (int d = 0; d < off; d++) so[d] = 0;
    /* group a's dims into runs and walk rows; inner dim either kept (so = 1)
       or reduced (so = 0) */
    memset(out->data, 0, (size_t)out->numel * sizeof(float));
    if (a->numel == 0) return 0;
    int nd = a->ndim;
    int64_t inner = a->shape[nd - 1], si = so[nd - 1];
    int64_t rows = a->numel / inner;
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, oo = 0;
        for (int d = nd - 2; d >= 0; d--) {
            oo += (rem % a->shape[d]) * so[d];
            rem /= a->shape[d];
        }
        const float *src = a->data + r * inner;
        float *dst = out->data + oo;
        if (si == 0) {
            double s = 0;
            for (int64_t i = 0; i < inner; i++) s += src[i];
            dst[0] += (float)s;
        } else {
            for (int64_t i = 0; i < inner; i++) dst[i] += src[i];
        }
    }
    return 0;
}

int64_t sl_count_nonzero(const sl_tensor *a)
{
    if (!sl_tensor_is_contiguous(a)) return sl_errorf("count_nonzero: tensor must be contiguous");
    if (a->device == SL_CUDA) {
        int64_t (*fn)(const sl_tensor *) = (int64_t (*)(const sl_tensor *))sl_cuda_symbol("sl_count_nonzero_cuda");
        return fn ? fn(a) : SL_EDEVICE;
    }
    int64_t c = 0;
    if (a->numel > 4 * SL_PAR_MIN) {
#pragma omp parallel for reduction(+ : c)
        for (int64_t i = 0; i < a->numel; i++) c += a->data[i] != 0.0f;
    } else {
        for (int64_t i = 0; i < a->numel; i++) c += a->data[i] != 0.0f;
    }
    return c;
}
