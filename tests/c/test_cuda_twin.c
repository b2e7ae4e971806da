/* The CUDA back end's host-checkable parts, run on every machine (no GPU
   needed): the CPU generator's calls follow the element layout that the GPU
   kernels also use with the shared Philox code (csrc/philox.h), so that a
   seed draws the same numbers on both devices; and without a usable GPU,
   putting a tensor on the device fails cleanly with a reason. */
#define _POSIX_C_SOURCE 200809L
#include "slayer.h"
#include "ctest.h"

#include <math.h>
#include <string.h>

#include "philox.h"

static sl_tensor *vec(int n)
{
    int32_t s[1] = {n};
    return sl_tensor_new(1, s, SL_CPU);
}

/* element i = word i % 4 of block (offset + i / 4) of stream seed */
TEST(uniform_and_bernoulli_match_the_cpu_generator_bit_for_bit)
{
    const int n = 4099; /* not a multiple of 4: the last block is partial */
    sl_tensor *u = vec(n), *b = vec(n);
    sl_rng_set_state(SL_CPU, 20240917u, 5);
    CHECK(sl_rand_uniform(u, -2.0f, 3.0f) == 0);
    uint64_t after_u = sl_rng_offset(SL_CPU);
    CHECK(sl_rand_bernoulli(b, 0.3f) == 0);
    CHECK(after_u == 5 + (n + 3) / 4);
    int bad_u = 0, bad_b = 0;
    for (int i = 0; i < n; i++) {
        uint32_t w[4];
        sl_philox(20240917u, 5 + (uint64_t)(i / 4), w);
        float eu = -2.0f + (3.0f - -2.0f) * sl_u01(w[i % 4]);
        if (memcmp(&eu, &u->data[i], sizeof eu) != 0) bad_u++;
        sl_philox(20240917u, after_u + (uint64_t)(i / 4), w);
        float eb = sl_u01(w[i % 4]) < 0.3f ? 1.0f : 0.0f;
        if (eb != b->data[i]) bad_b++;
    }
    CHECK(bad_u == 0);
    CHECK(bad_b == 0);
    sl_tensor_free(u);
    sl_tensor_free(b);
}

TEST(normals_match_the_cpu_generator)
{
    const int n = 1001;
    sl_tensor *z = vec(n);
    sl_rng_set_state(SL_CPU, 77u, 0);
    CHECK(sl_rand_normal(z, 1.5f, 2.0f) == 0);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        uint32_t w[4];
        float e[4];
        sl_philox(77u, (uint64_t)(i / 4), w);
        sl_box_muller(w, e);
        float v = 1.5f + 2.0f * e[i % 4];
        if (v != z->data[i]) bad++;
    }
    CHECK(bad == 0);
    sl_tensor_free(z);
}

/* Philox4x32-10 known-answer vectors (Salmon et al., Random123 kat_vectors):
   counter (0,0,0,0), key (0,0) -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8; our
   counter is (ctr lo, ctr hi, 0, 0) and key (seed lo, seed hi) */
TEST(philox_matches_the_published_test_vector)
{
    uint32_t w[4];
    sl_philox(0, 0, w);
    CHECK(w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu && w[3] == 0x9b00dbd8u);
}

TEST(gpu_tensors_fail_cleanly_without_a_usable_gpu)
{
    if (sl_cuda_available()) return; /* the GPU spec covers that machine */
    CHECK(strstr(sl_last_error(), "CUDA") != NULL);
    int32_t s[1] = {4};
    sl_tensor *t = sl_tensor_new(1, s, SL_CUDA);
    CHECK(t == NULL);
    CHECK(strstr(sl_last_error(), "CUDA back end unavailable") != NULL);
    /* the CPU keeps working */
    sl_tensor *c = vec(4);
    CHECK(c && sl_fill(c, 2.0f) == 0 && c->data[3] == 2.0f);
    sl_tensor_free(c);
}

int main(void)
{
    RUN(uniform_and_bernoulli_match_the_cpu_generator_bit_for_bit);
    RUN(normals_match_the_cpu_generator);
    RUN(philox_matches_the_published_test_vector);
    RUN(gpu_tensors_fail_cleanly_without_a_usable_gpu);
    return END();
}
