/*
 * random.c -- seeded random numbers, the same on every run and thread count.
 *
 * Philox4x32-10 (Salmon et al., SC'11) is a counter-based generator: block
 * number j of stream `seed` is a pure function philox(seed, j) giving four
 * 32-bit words.  A call that needs n numbers uses blocks offset ..
 * offset + ceil(n/4) - 1, element i taking word i % 4 of block offset + i/4,
 * and then advances offset.  Any thread can compute any element, so the
 * result does not depend on how the loop is split; the CUDA back end uses the
 * same functions (../philox.h) and therefore draws the same numbers (the
 * normals up to the rounding of each device's logf, sinf and cosf).
 *   uniform: (w >> 8) * 2^-24 in [0, 1), scaled to [lo, hi)
 *   normal:  Box-Muller on the word pairs (0, 1) and (2, 3) of a block
 *   bernoulli(p): 1 if uniform < p
 */
#include "../internal.h"
#include "../philox.h"

#include <math.h>

static struct {
    uint64_t seed, offset;
} gen[2] = {{5489u, 0}, {5489u, 0}};

void sl_manual_seed(int device, uint64_t seed)
{
    int d = device == SL_CUDA;
    gen[d].seed = seed;
    gen[d].offset = 0;
}

uint64_t sl_rng_seed(int device) { return gen[device == SL_CUDA].seed; }
uint64_t sl_rng_offset(int device) { return gen[device == SL_CUDA].offset; }

void sl_rng_set_state(int device, uint64_t seed, uint64_t offset)
{
    int d = device == SL_CUDA;
    gen[d].seed = seed;
    gen[d].offset = offset;
}

/* reserve ceil(n/4) blocks, returning the first block number */
uint64_t sl_rng_reserve(int device, int64_t n)
{
    int d = device == SL_CUDA;
    uint64_t first = gen[d].offset;
    gen[d].offset += (uint64_t)((n + 3) / 4);
    return first;
}

int sl_rand_uniform(sl_tensor *out, float lo, float hi)
{
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return sl_errorf("uniform: expected finite bounds lo <= hi, got %g, %g", lo, hi);
    SL_REQUIRE_CONTIGUOUS("rand", out);
    SL_DISPATCH(sl_rand_uniform, out->device, out, lo, hi);
    int64_t n = out->numel;
    uint64_t key = gen[0].seed, base = sl_rng_reserve(SL_CPU, n);
    float *o = out->data;
    SL_FOR(j, (n + 3) / 4, n > SL_PAR_MIN, {
        uint32_t w[4];
        sl_philox(key, base + (uint64_t)j, w);
        for (int l = 0; l < 4 && 4 * j + l < n; l++) o[4 * j + l] = lo + (hi - lo) * sl_u01(w[l]);
    });
    return 0;
}

int sl_rand_normal(sl_tensor *out, float mean, float std)
{
    if (!(std >= 0.0f) || !isfinite(mean) || !isfinite(std))
        return sl_errorf("normal: expected a finite mean and a finite std >= 0, got %g, %g", mean, std);
    SL_REQUIRE_CONTIGUOUS("randn", out);
    SL_DISPATCH(sl_rand_normal, out->device, out, mean, std);
    int64_t n = out->numel;
    uint64_t key = gen[0].seed, base = sl_rng_reserve(SL_CPU, n);
    float *o = out->data;
    SL_FOR(j, (n + 3) / 4, n > SL_PAR_MIN, {
        uint32_t w[4];
        sl_philox(key, base + (uint64_t)j, w);
        float z[4];
        sl_box_muller(w, z);
        for (int l = 0; l < 4 && 4 * j + l < n; l++) o[4 * j + l] = mean + std * z[l];
    });
    return 0;
}

int sl_rand_bernoulli(sl_tensor *out, float p)
{
    if (!(p >= 0.0f && p <= 1.0f)) return sl_errorf("bernoulli: probability must be in [0, 1], got %g", p);
    SL_REQUIRE_CONTIGUOUS("bernoulli", out);
    SL_DISPATCH(sl_rand_bernoulli, out->device, out, p);
    int64_t n = out->numel;
    uint64_t key = gen[0].seed, base = sl_rng_reserve(SL_CPU, n);
    float *o = out->data;
    SL_FOR(j, (n + 3) / 4, n > SL_PAR_MIN, {
        uint32_t w[4];
        sl_philox(key, base + (uint64_t)j, w);
        for (int l = 0; l < 4 && 4 * j + l < n; l++) o[4 * j + l] = sl_u01(w[l]) < p ? 1.0f : 0.0f;
    });
    return 0;
}
