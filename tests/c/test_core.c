/* C tests of the tensor core: allocator reuse, views and strided copies,
   error reporting without aborts, the file format's corruption checks, and
   thread-count-independent random numbers. */
#define _POSIX_C_SOURCE 200809L
#include "slayer.h"
#include "ctest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sl_tensor *make(int n0, int n1)
{
    int32_t s[2] = {n0, n1};
    return sl_tensor_new(2, s, SL_CPU);
}

TEST(allocator_reuses_freed_blocks)
{
    sl_mem_stats a, b;
    sl_tensor *t = make(256, 256);
    sl_tensor_free(t);
    sl_mem_get_stats(SL_CPU, &a);
    for (int i = 0; i < 100; i++) sl_tensor_free(make(256, 256));
    sl_mem_get_stats(SL_CPU, &b);
    CHECK(b.alloc_calls - a.alloc_calls == 100);
    CHECK(b.system_allocs == a.system_allocs); /* all 100 served from the cache */
    CHECK(b.live_bytes == a.live_bytes);
}

TEST(cache_limit_trims)
{
    sl_mem_stats s;
    sl_tensor_free(make(1024, 1024));
    sl_mem_set_cache_limit(SL_CPU, 0);
    sl_mem_get_stats(SL_CPU, &s);
    CHECK(s.cached_bytes == 0);
    sl_mem_set_cache_limit(SL_CPU, (int64_t)1 << 30);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* built by tools/sanitize.sh: the caching allocator tells ASan that a block's
   slack past the bytes asked for and a cached block are out of bounds */
TEST(asan_sees_the_slack_and_the_cached_blocks)
{
    sl_tensor *t = make(10, 10); /* 400 bytes in a 448-byte size class */
    char *p = (char *)t->data;
    CHECK(__asan_region_is_poisoned(p, 400) == NULL);
    CHECK(__asan_address_is_poisoned(p + 400) && __asan_address_is_poisoned(p + 447));
    sl_tensor_free(t);
    CHECK(__asan_address_is_poisoned(p + 16) && __asan_address_is_poisoned(p + 399)); /* all but the list link */
    sl_tensor *u = make(10, 10); /* the same block, from the cache */
    CHECK((char *)u->data == p && __asan_region_is_poisoned(p, 400) == NULL && __asan_address_is_poisoned(p + 400));
    sl_tensor_free(u);
    sl_tensor *big = make(1100, 1000); /* 4.4 MB: a block mapped for huge pages */
    char *q = (char *)big->data;
    CHECK(__asan_region_is_poisoned(q, 4400000) == NULL && __asan_address_is_poisoned(q + 4400000));
    sl_tensor_free(big);
    CHECK(__asan_address_is_poisoned(q + 4096));
    sl_mem_set_cache_limit(SL_CPU, 0); /* unmapped: nothing stays poisoned for a later mapping */
    sl_mem_set_cache_limit(SL_CPU, (int64_t)1 << 30);
}
#endif

TEST(a_view_whose_strides_wrap_is_refused)
{
    sl_tensor *t = make(2, 2);
    int32_t shape[2] = {2, 2};
    int64_t huge[2] = {(int64_t)1 << 62, (int64_t)1 << 62}; /* 2^62 + 2^62 wraps to a negative last index */
    CHECK(sl_tensor_view(t, 2, shape, huge, 0) == NULL && strstr(sl_last_error(), "reaches past 2^63"));
    int32_t big[4] = {65536, 65536, 65536, 65536}; /* 2^64 elements: the count wraps to 0 */
    int64_t zero[4] = {0, 0, 0, 0};
    CHECK(sl_tensor_view(t, 4, big, zero, 0) == NULL && strstr(sl_last_error(), "more than 2^40"));
    int64_t ok[2] = {2, 1};
    sl_tensor *v = sl_tensor_view(t, 2, shape, ok, 0);
    CHECK(v != NULL);
    sl_tensor_free(v);
    sl_tensor_free(t);
}

TEST(views_and_strided_copy)
{
    sl_tensor *t = make(3, 4);
    for (int i = 0; i < 12; i++) t->data[i] = (float)i;
    /* transpose view [4, 3] */
    int32_t shape[2] = {4, 3};
    int64_t stride[2] = {1, 4};
    sl_tensor *v = sl_tensor_view(t, 2, shape, stride, 0);
    CHECK(v != NULL);
    CHECK(!sl_tensor_is_contiguous(v));
    sl_tensor *c = make(4, 3);
    CHECK(sl_copy(c, v) == 0);
    CHECK(c->data[1] == 4.0f && c->data[3] == 1.0f && c->data[11] == 11.0f);
    /* a view reaching outside the storage is refused */
    int64_t bad[2] = {1, 5};
    CHECK(sl_tensor_view(t, 2, shape, bad, 0) == NULL);
    CHECK(strstr(sl_last_error(), "outside storage") != NULL);
    sl_tensor_free(v);
    sl_tensor_free(t);
    sl_tensor_free(c);
}

TEST(view_keeps_storage_alive)
{
    sl_tensor *t = make(2, 2);
    for (int i = 0; i < 4; i++) t->data[i] = (float)(i + 1);
    int32_t shape[1] = {2};
    int64_t stride[1] = {1};
    sl_tensor *v = sl_tensor_view(t, 1, shape, stride, 2);
    sl_tensor_free(t);
    CHECK(v->data[0] == 3.0f && v->data[1] == 4.0f);
    sl_tensor_free(v);
}

TEST(errors_name_the_op_and_shapes)
{
    sl_tensor *a = make(4, 3), *b = make(5, 2), *c = make(4, 2);
    int rc = sl_gemm(c, a, 0, b, 0, 1.0f, 0.0f);
    CHECK(rc == SL_EINVAL);
    CHECK(strstr(sl_last_error(), "matmul") != NULL);
    CHECK(strstr(sl_last_error(), "[4, 3] x [5, 2]") != NULL);
    rc = sl_binary(SL_ADD, c, a, b);
    CHECK(rc != 0);
    CHECK(strstr(sl_last_error(), "broadcast") != NULL);
    int32_t bad[1] = {-3};
    CHECK(sl_tensor_new(1, bad, SL_CPU) == NULL);
    sl_tensor_free(a);
    sl_tensor_free(b);
    sl_tensor_free(c);
}

TEST(pool_and_conv_refuse_a_zero_kernel_or_stride)
{
    /* the Lua layer refuses them first; a direct call must not divide by 0 */
    int32_t xs[5] = {1, 2, 4, 4, 3}, ys[5] = {1, 2, 2, 2, 3}, ws[5] = {2, 2, 2, 2, 1}, one[1] = {4};
    sl_tensor *x = sl_tensor_new(5, xs, SL_CPU), *y = sl_tensor_new(5, ys, SL_CPU);
    sl_tensor *wp = sl_tensor_new(1, one, SL_CPU), *wc = sl_tensor_new(5, ws, SL_CPU);
    sl_conv_params ok = {2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0};
    CHECK(sl_fold_pool(y, x, wp, &ok, 0, 0) == 0);
    for (int f = 0; f < 6; f++) {
        sl_conv_params p = ok;
        int32_t *field[6] = {&p.kh, &p.kw, &p.sh, &p.sw, &p.dh, &p.dw};
        *field[f] = 0;
        CHECK(sl_fold_pool(y, x, wp, &p, 0, 1) == SL_EINVAL);
        CHECK(strstr(sl_last_error(), "pool: invalid kernel") != NULL);
        CHECK(sl_conv_forward(y, x, wc, &p) == SL_EINVAL);
        CHECK(strstr(sl_last_error(), "conv: invalid kernel") != NULL);
    }
    sl_tensor_free(x);
    sl_tensor_free(y);
    sl_tensor_free(wp);
    sl_tensor_free(wc);
}

TEST(random_numbers_independent_of_threads)
{
    int32_t s[1] = {100001};
    sl_tensor *a = sl_tensor_new(1, s, SL_CPU), *b = sl_tensor_new(1, s, SL_CPU);
    sl_manual_seed(SL_CPU, 42);
    sl_set_num_threads(1);
    sl_rand_normal(a, 0, 1);
    sl_manual_seed(SL_CPU, 42);
    sl_set_num_threads(2);
    sl_rand_normal(b, 0, 1);
    CHECK(memcmp(a->data, b->data, sizeof(float) * 100001) == 0);
    CHECK(sl_rng_offset(SL_CPU) == (100001 + 3) / 4);
    sl_tensor_free(a);
    sl_tensor_free(b);
}

TEST(file_format_detects_corruption)
{
    char path[] = "/tmp/slayer_ctest_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    sl_tensor *t = make(3, 5);
    for (int i = 0; i < 15; i++) t->data[i] = (float)i * 0.5f;
    const char *names[1] = {"weight"};
    const sl_tensor *ts[1] = {t};
    CHECK(sl_save_tensors(path, 1, names, ts) == 0);
    sl_tensor_file *f = sl_load_tensors(path);
    CHECK(f != NULL);
    if (f) {
        CHECK(sl_tensor_file_count(f) == 1);
        CHECK(strcmp(sl_tensor_file_name(f, 0), "weight") == 0);
        CHECK(sl_tensor_file_shape(f, 0)[1] == 5);
        CHECK(sl_tensor_file_data(f, 0)[14] == 7.0f);
        sl_tensor_file_close(f);
    }
    /* flip one data byte: the checksum must catch it */
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 40, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, 40, SEEK_SET);
    fputc(ch ^ 0x10, fp);
    fclose(fp);
    CHECK(sl_load_tensors(path) == NULL);
    CHECK(strstr(sl_last_error(), "checksum") != NULL);
    /* truncate */
    fp = fopen(path, "wb");
    fwrite("SLAYERT1", 1, 8, fp);
    fclose(fp);
    CHECK(sl_load_tensors(path) == NULL);
    CHECK(strstr(sl_last_error(), "too short") != NULL);
    remove(path);
    sl_tensor_free(t);
}

TEST(sum_is_thread_count_independent)
{
    int32_t s[1] = {1 << 20};
    sl_tensor *a = sl_tensor_new(1, s, SL_CPU);
    sl_manual_seed(SL_CPU, 3);
    sl_rand_uniform(a, -1, 1);
    double r1, r2;
    sl_set_num_threads(1);
    sl_sum_all(&r1, a);
    sl_set_num_threads(2);
    sl_sum_all(&r2, a);
    CHECK(r1 == r2);
    sl_tensor_free(a);
}

int main(void)
{
    RUN(allocator_reuses_freed_blocks);
    RUN(cache_limit_trims);
#if defined(__SANITIZE_ADDRESS__)
    RUN(asan_sees_the_slack_and_the_cached_blocks);
#endif
    RUN(a_view_whose_strides_wrap_is_refused);
    RUN(views_and_strided_copy);
    RUN(view_keeps_storage_alive);
    RUN(errors_name_the_op_and_shapes);
    RUN(pool_and_conv_refuse_a_zero_kernel_or_stride);
    RUN(random_numbers_independent_of_threads);
    RUN(file_format_detects_corruption);
    RUN(sum_is_thread_count_independent);
    return END();
}
