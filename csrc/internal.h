/*
 * internal.h -- helpers shared by the C sources (not part of the API).
 *
 * Error reporting: sl_errorf() formats the thread-local message and returns
 * SL_EINVAL (or the code given to sl_errorf_code), so a check reads
 *     if (bad) return sl_errorf("psp: expected ..., got ...");
 *
 * Device dispatch: SL_DISPATCH(fn, device, args...) forwards a call whose
 * operands live on the GPU to fn##_cuda in libslayer_cuda.so, resolved once by
 * name; the CUDA function has the same signature as the CPU one.  It is the
 * only place where the choice between backends is made.  An op takes the
 * device (SL_DEVICE_OF), checks its operands and arguments, and only then
 * dispatches, so the twin trusts them; geometry both sides need is in
 * shapes.h.
 */
#ifndef SLAYER_INTERNAL_H
#define SLAYER_INTERNAL_H

#include "slayer.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__)
#define SL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SL_PRINTF(a, b)
#endif

int sl_errorf(const char *fmt, ...) SL_PRINTF(1, 2);
int sl_errorf_code(int code, const char *fmt, ...) SL_PRINTF(2, 3);

/* "[2, 3, 4]" into buf (at least 96 bytes) */
const char *sl_shape_str(const sl_tensor *t, char *buf, size_t n);

/* All tensors given must be on the same device; returns that device or a
   negative error naming op and both devices.  NULL entries are skipped. */
int sl_common_device(const char *op, int n, const sl_tensor *const *ts);

/* Resolve name in the CUDA library; NULL (with the error set) when the CUDA
   backend is not available. */
void *sl_cuda_symbol(const char *name);

#define SL_DEVICE_OF(op, ...)                                                     \
    sl_common_device(op, (int)(sizeof((const sl_tensor *[]){__VA_ARGS__}) /     \
                               sizeof(const sl_tensor *)),                        \
                     (const sl_tensor *const[]){__VA_ARGS__})

/* Forward to the CUDA twin when dev is SL_CUDA; returns a negative code when
   dev is an error. */
#define SL_DISPATCH(fn, dev, ...)                                                 \
    do {                                                                          \
        int dev__ = (dev);                                                        \
        if (dev__ < 0) return dev__;                                              \
        if (dev__ == SL_CUDA) {                                                   \
            static __typeof__(&fn) impl__;                                        \
            if (!impl__) impl__ = (__typeof__(&fn))sl_cuda_symbol(#fn "_cuda");  \
            if (!impl__) return SL_EDEVICE;                                       \
            return impl__(__VA_ARGS__);                                           \
        }                                                                         \
    } while (0)

/* Checks used inside ops: operands contiguous and of the expected size. */
int sl_check_contiguous(const char *op, int n, const sl_tensor *const *ts);
#define SL_REQUIRE_CONTIGUOUS(op, ...)                                            \
    do {                                                                          \
        int rc__ = sl_check_contiguous(                                           \
            op, (int)(sizeof((const sl_tensor *[]){__VA_ARGS__}) /                \
                      sizeof(const sl_tensor *)),                                 \
            (const sl_tensor *const[]){__VA_ARGS__});                             \
        if (rc__) return rc__;                                                    \
    } while (0)

bool sl_same_shape(const sl_tensor *a, const sl_tensor *b);

/* Allocation used for scratch buffers inside ops (goes through the caching
   allocator, so repeated calls do not hit malloc). */
void *sl_scratch_alloc(size_t bytes);
void sl_scratch_free(void *p, size_t bytes);

/* row-major cblas_sgemm split across the OpenMP threads (ops/blas.c) */
void sl_sgemm_par(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc);

/* the CPU's whole-tensor sum, in double over fixed chunks (ops/reduce.c);
   squares: of each a[i] * a[i] rounded to float (the losses' sum(e^2)) */
double sl_sum_chunked(const float *a, int64_t n, int squares);

/* Parallel-for threshold: loops shorter than this stay serial. */
#define SL_PAR_MIN 32768

/* for (int64_t i = 0; i < n; i++) { body }, split across OpenMP threads only
   when par is true.  (An `if` clause on the pragma still enters the OpenMP
   runtime, which costs about a microsecond: too much for small tensors.) */
#define SL_FOR(i, n, par, ...)                                                    \
    do {                                                                          \
        int64_t n__ = (n);                                                        \
        if (par) {                                                                \
            _Pragma("omp parallel for schedule(static)")                          \
            for (int64_t i = 0; i < n__; i++) { __VA_ARGS__ }                     \
        } else {                                                                  \
            for (int64_t i = 0; i < n__; i++) { __VA_ARGS__ }                     \
        }                                                                         \
    } while (0)

#ifdef _OPENMP
#define SL_OMP_THREADS() omp_get_max_threads()
#else
#define SL_OMP_THREADS() 1
#endif

/* Hot loops are compiled for several instruction sets and picked at load
   time, so the portable build still runs AVX2/AVX-512 code where it can. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SL_NATIVE)
#define SL_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SL_HOT
#endif

#endif
