/*
 * cuda_runtime.h -- the host emulator's stand-in for the CUDA runtime.
 *
 * The CUDA back end's sources (the .cu files of csrc/cuda) are compiled with the host
 * C++ compiler against this header (after translate.pl has rewritten each
 * kernel launch `k<<<grid, block, shared, stream>>>(args)` into a call of
 * emu::launch), giving libslayer_cuda_emu.so: the real back end, every
 * kernel and every host-side decision of it, run on the CPU.  It is a test
 * tool, not a back end: see tests/cudaemu/emu.cpp for what it checks (the
 * launch limits, barriers every thread of a block reaches, warp exchanges
 * every live lane joins, pointers handed to kernels, copies in the right
 * direction, host code that touches device memory, work that is read before
 * the stream has run it) and what it cannot (races between threads, timing).
 *
 * Only what csrc/cuda uses is declared.
 */
#ifndef SLAYER_CUDAEMU_RUNTIME_H
#define SLAYER_CUDAEMU_RUNTIME_H

/* what the back end's sources may test for (the allocator's poisoning) */
#define SLAYER_CUDAEMU 1

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

/* ---- qualifiers ------------------------------------------------------------ */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
/* translate.pl turns __shared__ arrays of the .cu files into per-block
   storage (emu::block_shared); one left in a header falls back to a static
   copy, which blocks share since they run one after another */
#define __shared__ static

/* ---- types ----------------------------------------------------------------- */
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

typedef struct emu_stream *cudaStream_t;
typedef struct emu_event *cudaEvent_t;

#define cudaStreamNonBlocking 0x01u
#define cudaEventDisableTiming 0x02u
#define cudaHostAllocDefault 0x00u

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    size_t sharedMemPerBlockOptin;
    int multiProcessorCount;
    int maxThreadsPerBlock;
    int warpSize;
    int major, minor;
};

/* ---- host API ---------------------------------------------------------------- */
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaMalloc(void **p, size_t bytes);
template <typename T> cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
cudaError_t cudaFree(void *p);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
template <typename T> cudaError_t cudaHostAlloc(T **p, size_t bytes, unsigned flags)
{
    return cudaHostAlloc((void **)p, bytes, flags);
}
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s = 0);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventDestroy(cudaEvent_t e);

namespace emu {
cudaError_t func_set_shared(const void *kernel, int bytes);
}
template <typename F> cudaError_t cudaFuncSetAttribute(F *kernel, cudaFuncAttribute a, int value)
{
    if (a != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
    return emu::func_set_shared((const void *)kernel, value);
}

/* ---- the emulated device: grids, threads, barriers --------------------------- */
namespace emu {

struct Config {
    dim3 grid, block;
    size_t shared;
    cudaStream_t stream;
};
inline Config config(dim3 g, dim3 b, size_t shared = 0, cudaStream_t s = 0) { return Config{g, b, shared, s}; }

extern uint3 block_idx;
extern dim3 block_dim, grid_dim;
const uint3 &thread_idx();
void sync_block();
/* every live lane of the calling warp deposits `size` bytes; afterwards
   table[l] holds lane l's bytes, and bit l of the result says lane l took part */
unsigned warp_exchange(const void *mine, size_t size, unsigned char (*table)[8]);
unsigned lane();
void *dynamic_shared();
void *block_shared(const void *key, size_t bytes);
/* queue a fill of device memory with all bits set (NaN): csrc/cuda's
   caching allocator calls it on every block it hands out when built here */
void poison(void *p, size_t bytes);
/* the caching allocator hands out block p (cudaMalloc's) for its first
   `valid` bytes: the rest of the block (its size class's slack) is filled
   with a canary in stream order, and a kernel given a pointer into the
   block that changes the canary is a fault (written past the end of what
   was asked for); copies and memsets must stay within `valid` bytes */
void redzone(void *p, size_t valid);
/* the scheduling order (0 forward, 1 reverse, 2 shuffle; emu.cpp), for
   the emulator's own test; $SLAYER_CUDAEMU_ORDER sets it otherwise */
void set_order(int mode);

/* a launched grid: thread() runs the kernel once, for the current thread;
   launch() checks the configuration and the pointer arguments, then queues it */
struct Grid {
    std::vector<const void *> device_args; /* pointer arguments into device memory */
    virtual ~Grid() {}
    virtual void thread() = 0;
};
bool check_launch(const Config &c, const char *name, const void *kernel);
bool check_pointer(const char *name, int arg, const void *p, Grid *g);
void enqueue_grid(const Config &c, const char *name, Grid *g);

template <typename T> inline bool pointer_ok(const char *, int, const T &, Grid *) { return true; }
template <typename T> inline bool pointer_ok(const char *name, int arg, T *const &p, Grid *g)
{
    return check_pointer(name, arg, p, g);
}

template <typename Tuple, size_t... I> bool pointers_ok(const char *name, const Tuple &t, Grid *g, std::index_sequence<I...>)
{
    bool ok = true;
    (void)std::initializer_list<int>{(ok = ok && pointer_ok(name, (int)I + 1, std::get<I>(t), g), 0)...};
    return ok;
}

template <typename... P> struct KernelGrid : Grid {
    void (*k)(P...);
    std::tuple<typename std::decay<P>::type...> args;
    template <typename... A> KernelGrid(void (*k_)(P...), A &&...a) : k(k_), args(std::forward<A>(a)...) {}
    void thread() override { std::apply(k, args); } /* each thread gets its own copies */
};

template <typename... P, typename... A> void launch(const Config &c, const char *name, void (*k)(P...), A &&...a)
{
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    if (!check_launch(c, name, (const void *)k)) return;
    KernelGrid<P...> *g = new KernelGrid<P...>(k, std::forward<A>(a)...);
    if (!pointers_ok(name, g->args, g, std::index_sequence_for<P...>{})) {
        delete g;
        return;
    }
    enqueue_grid(c, name, g);
}

} /* namespace emu */

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

inline void __syncthreads() { emu::sync_block(); }

template <typename T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta)
{
    static_assert(sizeof(T) <= 8, "__shfl_down_sync: at most 8 bytes");
    (void)mask;
    unsigned char table[32][8];
    unsigned present = emu::warp_exchange(&v, sizeof v, table);
    unsigned src = emu::lane() + delta;
    if (src >= 32) return v;
    T r;
    if (present >> src & 1u)
        memcpy(&r, table[src], sizeof r);
    else
        memset(&r, 0xff, sizeof r); /* an exited lane's value is undefined: poison */
    return r;
}

inline unsigned __ballot_sync(unsigned mask, int pred)
{
    (void)mask;
    unsigned char table[32][8];
    unsigned char mine = pred != 0;
    unsigned present = emu::warp_exchange(&mine, 1, table), bits = 0;
    for (unsigned l = 0; l < 32; l++)
        if ((present >> l & 1u) && table[l][0]) bits |= 1u << l;
    return bits;
}

inline int __popc(unsigned v) { return __builtin_popcount(v); }
template <typename T> inline T __ldg(const T *p) { return *p; }
/* one OS thread runs every emulated thread, so atomics are plain updates */
template <typename T> inline T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
inline int atomicCAS(int *p, int cmp, int v)
{
    int old = *p;
    if (old == cmp) *p = v;
    return old;
}
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{
    unsigned long long old = *p;
    *p = old + v;
    return old;
}
/* rounded float arithmetic: the build has FP contraction off */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }

#endif
