/*
 * philox.h -- Philox4x32-10 and its float mappings, one copy for the CPU
 * (ops/random.c) and the GPU (cuda/random.cu), so both back ends draw the
 * same words, uniforms and Bernoulli draws by construction (the normals go
 * through each device's logf, sinf and cosf; tests/cuda_spec.lua compares;
 * tests/c/test_cuda_twin.c checks the element layout and the published test
 * vector without a GPU).
 *
 *   block j of stream `seed` = philox(seed, j), four 32-bit words;
 *   element i of a call that reserved blocks from `base` = word i % 4 of
 *   block base + i / 4.
 *   uniform:  (w >> 8) * 2^-24 in [0, 1)
 *   normal:   Box-Muller on the word pairs (0, 1) and (2, 3)
 * The device code is built with --fmad=false, so the float arithmetic rounds
 * exactly as the CPU build's (FP contraction off).
 */
#ifndef SLAYER_PHILOX_H
#define SLAYER_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SL_HD __host__ __device__ __forceinline__
#else
#define SL_HD static inline
#endif

SL_HD void sl_philox(uint64_t key, uint64_t ctr, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

SL_HD float sl_u01(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* the four normals of one block */
SL_HD void sl_box_muller(const uint32_t w[4], float z[4])
{
    for (int h = 0; h < 2; h++) {
        float u1 = ((float)(w[2 * h] >> 8) + 1.0f) * (1.0f / 16777216.0f); /* (0, 1] */
        float u2 = sl_u01(w[2 * h + 1]);
        float r = sqrtf(-2.0f * logf(u1));
        z[2 * h] = r * cosf(6.28318530718f * u2);
        z[2 * h + 1] = r * sinf(6.28318530718f * u2);
    }
}

#endif
