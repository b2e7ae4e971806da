/*
 * runtime.cu -- the CUDA back end's state and its data movement.
 *
 * sl_cuda_init (called once by libslayer when it opens this library) picks
 * the device ($SLAYER_CUDA_DEVICE, default 0), creates the one compute stream
 * every op runs on, the cuBLAS handle bound to it, and a device word where
 * kernels leave deferred errors (copied back with every wait on the host).
 * It returns non-zero, with a reason for sl_cuda_init_error, when no usable
 * GPU and driver are present.
 *
 * Copies between host and device go through that stream: to the device
 * without waiting (pageable sources are staged by the driver before the call
 * returns), to the host followed by a wait on the stream, which is also where
 * deferred kernel errors surface.
 *
 * No CUDA graphs (for now): a training step is recorded afresh by the Lua
 * autograd every time, its tensors come from the caching allocator at
 * whatever addresses are free, and a training loop waits on the host
 * between steps (loss:item(), the loaders' events; the step itself does
 * not wait, which tests/cuda_spec.lua checks on the host emulator); a
 * captured graph needs fixed addresses and no waits.
 * What a graph would save is the launch cost, a few microseconds per
 * kernel (bench/gpu.lua measures it): worth a dedicated memory pool and a
 * capture API only if the small-batch steps turn out launch-bound.
 *
 * Copies and fills on the device handle any strides:
 *     dst[idx] = src[idx]   over the coalesced index space of both views
 */
#include "common.cuh"

#include <cublas_v2.h>
#include <cuda_profiler_api.h>

#include <math.h>
#include <mutex>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace {

struct State {
    int device = -1;
    cudaStream_t stream = NULL;
    cublasHandle_t blas = NULL;
    int sms = 1;
    char name[256] = "";
    int *flag_dev = NULL;  /* kernels record deferred errors here ... */
    int *flag_host = NULL; /* ... and each wait copies it here (pinned) */
    char init_error[512] = "";
    std::mutex msg_lock;
    const char *messages[64] = {NULL};
    int n_messages = 0;
};

State S;

__global__ void probe_kernel(int *p) { *p = 42; }

int init_fail(const char *what, cudaError_t e)
{
    snprintf(S.init_error, sizeof S.init_error, "%s%s%s", what, e != cudaSuccess ? ": " : "",
             e != cudaSuccess ? cudaGetErrorString(e) : "");
    cudaGetLastError();
    return -1;
}

} /* namespace */

namespace slc {

cudaStream_t stream() { return S.stream; }
int num_sms() { return S.sms; }

int cuda_fail(const char *op, cudaError_t e)
{
    return sl_errorf_code(SL_EDEVICE, "%s: CUDA error: %s", op, cudaGetErrorString(e));
}

int deferred_code(const char *message)
{
    std::lock_guard<std::mutex> g(S.msg_lock);
    for (int i = 0; i < S.n_messages; i++)
        if (strcmp(S.messages[i], message) == 0) return i + 1;
    if (S.n_messages == 64) return 64;
    S.messages[S.n_messages++] = message;
    return S.n_messages;
}

int *deferred_flag() { return S.flag_dev; }

cudaError_t queue_deferred_read()
{
    return cudaMemcpyAsync(S.flag_host, S.flag_dev, sizeof(int), cudaMemcpyDeviceToHost, S.stream);
}

int check_deferred()
{
    int code = *(volatile int *)S.flag_host;
    if (code == 0) return 0;
    *(volatile int *)S.flag_host = 0;
    cudaMemsetAsync(S.flag_dev, 0, sizeof(int), S.stream);
    const char *msg = code >= 1 && code <= S.n_messages ? S.messages[code - 1] : "unknown kernel error";
    return sl_errorf("%s (found on the GPU, reported at the next synchronisation)", msg);
}

cublasHandle_t blas() { return S.blas; }

} /* namespace slc */

/* ---- initialisation and device queries ----------------------------------- */

SL_CUDA_API int sl_cuda_init(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return init_fail("cudaGetDeviceCount failed", e);
    if (n == 0) return init_fail("no CUDA device found", cudaSuccess);
    int dev = 0;
    const char *env = getenv("SLAYER_CUDA_DEVICE");
    if (env && *env) {
        dev = atoi(env);
        if (dev < 0 || dev >= n) {
            snprintf(S.init_error, sizeof S.init_error, "SLAYER_CUDA_DEVICE=%s, but there are %d devices", env, n);
            return -1;
        }
    }
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess) return init_fail("cannot query the device", e);
    if (prop.major < 8) {
        snprintf(S.init_error, sizeof S.init_error,
                 "%s has compute capability %d.%d; this build needs 8.0 or newer (sm_80, sm_90, PTX 9.0)",
                 prop.name, prop.major, prop.minor);
        return -1;
    }
    if ((e = cudaSetDevice(dev)) != cudaSuccess) return init_fail("cannot select the device", e);
    if ((e = cudaStreamCreateWithFlags(&S.stream, cudaStreamNonBlocking)) != cudaSuccess)
        return init_fail("cannot create a stream", e);
    /* a kernel that runs proves the binary has code this device can load */
    int *probe = NULL, got = 0;
    if ((e = cudaMalloc(&probe, sizeof(int))) != cudaSuccess) return init_fail("cannot allocate device memory", e);
    probe_kernel<<<1, 1, 0, S.stream>>>(probe);
    if ((e = cudaGetLastError()) != cudaSuccess) return init_fail("cannot run kernels on this device", e);
    e = cudaMemcpyAsync(&got, probe, sizeof(int), cudaMemcpyDeviceToHost, S.stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(S.stream);
    cudaFree(probe);
    if (e != cudaSuccess || got != 42) return init_fail("a test kernel failed on this device", e);
    if ((e = cudaHostAlloc((void **)&S.flag_host, sizeof(int), cudaHostAllocDefault)) != cudaSuccess)
        return init_fail("cannot allocate pinned host memory", e);
    *S.flag_host = 0;
    if ((e = cudaMalloc((void **)&S.flag_dev, sizeof(int))) != cudaSuccess)
        return init_fail("cannot allocate device memory", e);
    if ((e = cudaMemsetAsync(S.flag_dev, 0, sizeof(int), S.stream)) != cudaSuccess)
        return init_fail("cannot clear device memory", e);
    cublasStatus_t bs = cublasCreate(&S.blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        snprintf(S.init_error, sizeof S.init_error, "cuBLAS initialisation failed: %s", cublasGetStatusString(bs));
        return -1;
    }
    /* the compute stream (a handle left on the legacy default stream would
       run the GEMMs out of order with the kernels), and plain float32
       arithmetic: no TF32, results within rounding of the CPU */
    if ((bs = cublasSetStream(S.blas, S.stream)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetMathMode(S.blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(S.init_error, sizeof S.init_error, "cuBLAS set-up failed: %s", cublasGetStatusString(bs));
        cublasDestroy(S.blas);
        S.blas = NULL;
        return -1;
    }
    S.device = dev;
    S.sms = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    snprintf(S.name, sizeof S.name, "%s", prop.name);
    return 0;
}

SL_CUDA_API const char *sl_cuda_init_error(void) { return S.init_error; }

SL_CUDA_API const char *sl_cuda_device_name(void) { return S.name; }

SL_CUDA_API int sl_cuda_device_index(void) { return S.device; }

SL_CUDA_API int sl_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

/* free and total bytes of device memory, as the driver reports them */
SL_CUDA_API int sl_cuda_mem_info(int64_t *free_bytes, int64_t *total_bytes)
{
    size_t f = 0, t = 0;
    SLC_CHECK("memoryStats", cudaMemGetInfo(&f, &t));
    *free_bytes = (int64_t)f;
    *total_bytes = (int64_t)t;
    return 0;
}

/* wait for all queued work; reports kernel faults and deferred errors */
SL_CUDA_API int sl_cuda_synchronize(void)
{
    SLC_CHECK("synchronize", slc::queue_deferred_read());
    SLC_CHECK("synchronize", cudaStreamSynchronize(S.stream));
    SLC_CHECK("synchronize", cudaGetLastError());
    return slc::check_deferred();
}

/* open (on != 0) or close the region an attached profiler records (Nsight
   Compute or Systems run with --profile-from-start off); nothing without one */
SL_CUDA_API int sl_cuda_profiler(int on)
{
    SLC_CHECK(on ? "profilerStart" : "profilerStop", on ? cudaProfilerStart() : cudaProfilerStop());
    return 0;
}

/* ---- host <-> device copies (tensor.c's hook) ---------------------------- */

/* kind bit 0: source on the GPU, bit 1: destination on the GPU */
SL_CUDA_API int sl_cuda_memcpy(void *dst, const void *src, size_t bytes, int kind)
{
    if (bytes == 0) return 0;
    switch (kind) {
    case 0:
        memcpy(dst, src, bytes);
        return 0;
    case 1:
        /* the error flag first: the copy to pageable memory then waits for
           both, and the synchronisation after it has nothing left to wait for */
        SLC_CHECK("copy to host", slc::queue_deferred_read());
        SLC_CHECK("copy to host", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, S.stream));
        SLC_CHECK("copy to host", cudaStreamSynchronize(S.stream));
        return slc::check_deferred();
    case 2:
        SLC_CHECK("copy to GPU", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, S.stream));
        return 0;
    case 3:
        SLC_CHECK("copy", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, S.stream));
        return 0;
    default:
        return sl_errorf("copy: unknown copy kind %d", kind);
    }
}

/* ---- pinned host memory and events (the data loaders' asynchronous copies) */

/* page-locked host memory: copies from it to the device do not wait for
   the queued work (the driver reads it while the GPU computes) */
SL_CUDA_API void *sl_cuda_host_alloc(size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        sl_errorf_code(SL_ENOMEM, "pinned host memory: cannot allocate %zu bytes: %s", bytes, cudaGetErrorString(e));
        cudaGetLastError();
        return NULL;
    }
    return p;
}

SL_CUDA_API void sl_cuda_host_free(void *p)
{
    if (p) cudaFreeHost(p);
}

/* an event recorded after the work queued so far; NULL (error set) on failure */
SL_CUDA_API void *sl_cuda_event_record(void)
{
    cudaEvent_t ev = NULL;
    cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventRecord(ev, S.stream);
    if (e != cudaSuccess) {
        if (ev) cudaEventDestroy(ev);
        slc::cuda_fail("event", e);
        return NULL;
    }
    return (void *)ev;
}

/* wait on the host until the work before the event has finished */
SL_CUDA_API int sl_cuda_event_wait(void *ev)
{
    SLC_CHECK("event", cudaEventSynchronize((cudaEvent_t)ev));
    return 0;
}

SL_CUDA_API void sl_cuda_event_free(void *ev)
{
    if (ev) cudaEventDestroy((cudaEvent_t)ev);
}

/* ---- device copies and fills of any strides ------------------------------ */

template <typename I>
__global__ void copy_strided_kernel(float *dst, const float *src, slc::Strided g, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[2];
        slc::strided_offsets<I, 2>(g, (I)i, off);
        dst[off[0]] = src[off[1]];
    }
}

template <typename I>
__global__ void fill_strided_kernel(float *dst, float v, slc::Strided g, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off[1];
        slc::strided_offsets<I, 1>(g, (I)i, off);
        dst[off[0]] = v;
    }
}

__global__ void fill_kernel(float *dst, float v, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = v;
}

SL_CUDA_API int sl_fill_cuda(sl_tensor *t, float value)
{
    int64_t n = t->numel;
    if (n == 0) return 0;
    if (sl_tensor_is_contiguous(t)) {
        if (value == 0.0f && !signbit(value)) {
            SLC_CHECK("fill", cudaMemsetAsync(t->data, 0, (size_t)n * sizeof(float), S.stream));
            return 0;
        }
        fill_kernel<<<slc::grid_for(n), slc::THREADS, 0, S.stream>>>(t->data, value, n);
        SLC_LAUNCHED("fill");
        return 0;
    }
    slc::Strided g;
    g.nd = t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        g.size[d] = t->shape[d];
        g.st[0][d] = t->stride[d];
    }
    slc::coalesce(&g, 1);
    if (n <= INT32_MAX)
        fill_strided_kernel<uint32_t><<<slc::grid_for(n), slc::THREADS, 0, S.stream>>>(t->data, value, g, n);
    else
        fill_strided_kernel<int64_t><<<slc::grid_for(n), slc::THREADS, 0, S.stream>>>(t->data, value, g, n);
    SLC_LAUNCHED("fill");
    return 0;
}

static bool same_shape(const sl_tensor *a, const sl_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

/* both tensors on the GPU (tensor.c routes here); the CPU sl_copy's rules:
   equal element counts; when the shapes differ, a contiguous side takes the
   other side's shape */
/* sl_copy (tensor.c) checked the sizes before handing over */
SL_CUDA_API int sl_copy_cuda(sl_tensor *dst, const sl_tensor *src)
{
    int64_t n = dst->numel;
    if (n == 0 || dst->data == src->data) {
        if (n == 0 || (same_shape(dst, src) && memcmp(dst->stride, src->stride, sizeof(int64_t) * dst->ndim) == 0))
            return 0;
    }
    bool dc = sl_tensor_is_contiguous(dst), sc = sl_tensor_is_contiguous(src);
    if (dc && sc) {
        const float *s0 = src->data, *s1 = src->data + n;
        const float *d0 = dst->data, *d1 = dst->data + n;
        if (d0 < s1 && s0 < d1) {
            /* overlapping ranges of one storage: go through a scratch block */
            float *tmp = (float *)slc::scratch((size_t)n * sizeof(float));
            if (!tmp) return SL_ENOMEM;
            cudaError_t e = cudaMemcpyAsync(tmp, src->data, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice, S.stream);
            if (e == cudaSuccess)
                e = cudaMemcpyAsync(dst->data, tmp, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice, S.stream);
            slc::scratch_free(tmp, (size_t)n * sizeof(float));
            if (e != cudaSuccess) return slc::cuda_fail("copy", e);
            return 0;
        }
        SLC_CHECK("copy", cudaMemcpyAsync(dst->data, src->data, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice,
                                          S.stream));
        return 0;
    }
    bool same = same_shape(dst, src);
    if (!same && !sc && !dc) {
        /* two differently shaped strided views: through a contiguous copy */
        float *tmp = (float *)slc::scratch((size_t)n * sizeof(float));
        if (!tmp) return SL_ENOMEM;
        sl_tensor t = *src;
        t.data = tmp;
        t.offset = 0;
        t.storage = NULL;
        int64_t s = 1;
        for (int d = t.ndim - 1; d >= 0; d--) {
            t.stride[d] = s;
            s *= t.shape[d];
        }
        int rc = sl_copy_cuda(&t, src);
        if (!rc) rc = sl_copy_cuda(dst, &t);
        slc::scratch_free(tmp, (size_t)n * sizeof(float));
        return rc;
    }
    /* walk the shape of the strided side; a side of another shape is
       contiguous, so row-major strides over that shape address it */
    const sl_tensor *shaped = same || sc ? dst : src;
    slc::Strided g;
    g.nd = shaped->ndim;
    int64_t rm = 1;
    for (int d = shaped->ndim - 1; d >= 0; d--) {
        g.size[d] = shaped->shape[d];
        g.st[0][d] = same || shaped == dst ? dst->stride[d] : rm;
        g.st[1][d] = same || shaped == src ? src->stride[d] : rm;
        rm *= shaped->shape[d];
    }
    slc::coalesce(&g, 2);
    if (n <= INT32_MAX)
        copy_strided_kernel<uint32_t><<<slc::grid_for(n), slc::THREADS, 0, S.stream>>>(dst->data, src->data, g, n);
    else
        copy_strided_kernel<int64_t><<<slc::grid_for(n), slc::THREADS, 0, S.stream>>>(dst->data, src->data, g, n);
    SLC_LAUNCHED("copy");
    return 0;
}
