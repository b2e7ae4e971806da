/*
 * core.c -- error messages, thread count, the CUDA back-end loader.
 *
 * Errors: each thread owns one message buffer; an op that fails formats its
 * message there and returns a negative code; the Lua layer turns that into a
 * Lua error.  The CUDA back end is a separate library (libslayer_cuda.so)
 * opened on first use, so the CPU build never needs the CUDA runtime.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Thread_local char err_buf[2048];
static _Thread_local int err_code;

const char *sl_last_error(void) { return err_buf; }

int sl_last_error_code(void) { return err_code; }

int sl_set_error(const char *msg)
{
    snprintf(err_buf, sizeof err_buf, "%s", msg ? msg : "");
    err_code = SL_EINVAL;
    return SL_EINVAL;
}

static int verrorf(int code, const char *fmt, va_list ap)
{
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    err_code = code;
    return code;
}

int sl_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verrorf(SL_EINVAL, fmt, ap);
    va_end(ap);
    return rc;
}

int sl_errorf_code(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verrorf(code, fmt, ap);
    va_end(ap);
    return rc;
}

const char *sl_version(void) { return "0.1.0"; }

/* ---- threads ------------------------------------------------------------- */

/* OpenBLAS exports this; declared here to avoid depending on its header. */
extern void openblas_set_num_threads(int n);

static int num_threads = 0;

/* One thread pool: OpenMP.  OpenBLAS runs single-threaded inside our
   parallel loops (two pools spinning against each other on few cores cost
   a third of a training step). */
__attribute__((constructor)) static void single_threaded_blas(void) { openblas_set_num_threads(1); }

/* At most four threads per online CPU (and 1024 in all): beyond that they
   only contend, and OpenMP fails to start very many (it then exits). */
static int max_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    return cpus > 256 ? 1024 : (int)(4 * cpus);
}

void sl_set_num_threads(int n)
{
    if (n < 1) n = 1;
    int cap = max_threads();
    if (n > cap) n = cap;
    num_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(1);
}

int sl_get_num_threads(void)
{
    if (num_threads > 0) return num_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- shapes and checks --------------------------------------------------- */

const char *sl_shape_str(const sl_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; t && d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %d" : "%d", t->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static const char *device_name(int d) { return d == SL_CUDA ? "cuda" : "cpu"; }

int sl_common_device(const char *op, int n, const sl_tensor *const *ts)
{
    int dev = -1, first = -1;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (dev < 0) {
            dev = ts[i]->device;
            first = i;
        } else if (ts[i]->device != dev) {
            return sl_errorf_code(SL_EDEVICE,
                                  "%s: operands on different devices (argument %d on %s, argument %d on %s)",
                                  op, first + 1, device_name(dev), i + 1, device_name(ts[i]->device));
        }
    }
    return dev < 0 ? SL_CPU : dev;
}

int sl_check_contiguous(const char *op, int n, const sl_tensor *const *ts)
{
    for (int i = 0; i < n; i++) {
        if (ts[i] && !sl_tensor_is_contiguous(ts[i]))
            return sl_errorf("%s: argument %d must be contiguous", op, i + 1);
    }
    return 0;
}

bool sl_same_shape(const sl_tensor *a, const sl_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

/* ---- CUDA back end ------------------------------------------------------- */

static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;
static void *cuda_lib;
static char cuda_err[1024];

static void cuda_open(void)
{
    const char *env = getenv("SLAYER_CUDA_LIB");
    Dl_info info;
    char path[4096];
    if (env && *env) {
        cuda_lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    } else if (dladdr((void *)&sl_cuda_symbol, &info) && info.dli_fname) {
        /* next to libslayer.so first, then the loader's search path */
        const char *slash = strrchr(info.dli_fname, '/');
        size_t dir = slash ? (size_t)(slash - info.dli_fname) + 1 : 0;
        if (dir + 20 < sizeof path) {
            memcpy(path, info.dli_fname, dir);
            strcpy(path + dir, "libslayer_cuda.so");
            cuda_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        }
    }
    if (!cuda_lib) cuda_lib = dlopen("libslayer_cuda.so", RTLD_NOW | RTLD_LOCAL);
    if (!cuda_lib) {
        const char *e = dlerror();
        snprintf(cuda_err, sizeof cuda_err, "%s", e ? e : "libslayer_cuda.so not found");
        return;
    }
    int (*init)(void) = (int (*)(void))dlsym(cuda_lib, "sl_cuda_init");
    if (!init || init() != 0) {
        const char *(*why)(void) = (const char *(*)(void))dlsym(cuda_lib, "sl_cuda_init_error");
        const char *reason = why ? why() : NULL;
        snprintf(cuda_err, sizeof cuda_err, "CUDA back end present but no usable GPU or driver%s%s",
                 reason && *reason ? ": " : "", reason && *reason ? reason : "");
        dlclose(cuda_lib);
        cuda_lib = NULL;
    }
}

void *sl_cuda_symbol(const char *name)
{
    pthread_once(&cuda_once, cuda_open);
    if (!cuda_lib) {
        sl_errorf_code(SL_EDEVICE, "CUDA back end unavailable: %s", cuda_err);
        return NULL;
    }
    void *p = dlsym(cuda_lib, name);
    if (!p) sl_errorf_code(SL_EDEVICE, "%s: no CUDA implementation (missing %s)", name, name);
    return p;
}

/* 1 when libslayer_cuda.so loaded and found a usable GPU; otherwise 0, with
   the reason in sl_last_error().  Never raises. */
int sl_cuda_available(void) { return sl_cuda_symbol("sl_cuda_init") != NULL; }
