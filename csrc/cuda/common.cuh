/*
 * common.cuh -- what every file of the CUDA back end shares.
 *
 * The back end is libslayer_cuda.so.  libslayer resolves an op's CUDA twin
 * by name (SL_DISPATCH in csrc/internal.h: sl_<op> -> sl_<op>_cuda) when its
 * operands live on the GPU, after it has checked that they share a device.
 * So a twin is one extern "C" function of the CPU op's signature, declared
 * with SL_CUDA_API; adding the CUDA side of an op family is one more .cu file
 * in this directory (CMake globs them) and nothing else.
 *
 * Rules every twin follows:
 *   - trust the operands: the CPU op checks shapes, contiguity and arguments
 *     once, before it dispatches, so a twin checks only what is CUDA's own
 *     (grid limits, scratch memory, launches); the geometry both sides read
 *     off the shapes is in ../shapes.h;
 *   - launch on slc::stream() only, never on the legacy default stream, and
 *     never synchronise the host (only copies to the host do);
 *   - take scratch memory from slc::scratch (the caching allocator): freeing
 *     it right after the launches that use it is safe, because every later
 *     user of the block is ordered after them on the same stream;
 *   - check the launch with SLC_LAUNCHED(op) and return 0 or an SL_E* code;
 *   - data-dependent errors found inside a kernel (an index out of range) go
 *     through slc::deferred: the kernel records a code, the host reports the
 *     message at the next synchronisation or copy to the host.
 */
#ifndef SLAYER_CUDA_COMMON_CUH
#define SLAYER_CUDA_COMMON_CUH

#include "../shapes.h"
#include "../slayer.h"

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* from libslayer (csrc/internal.h is C-only, so the few we need are here) */
extern "C" {
int sl_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int sl_errorf_code(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sl_shape_str(const sl_tensor *t, char *buf, size_t n);
}

/* an exported entry point of libslayer_cuda.so (everything else is hidden) */
#define SL_CUDA_API extern "C" __attribute__((visibility("default")))

namespace slc {

/* ---- runtime.cu ---------------------------------------------------------- */
cudaStream_t stream();
int num_sms();
/* report a failed CUDA call as "<op>: CUDA error: <text>" (SL_EDEVICE) */
int cuda_fail(const char *op, cudaError_t e);
/* errors found inside kernels: register a message once, pass the flag to the
   kernel, which stores the code with record_deferred().  A wait on the host
   queues queue_deferred_read() before it and calls check_deferred() after:
   0, or the deferred error (message set) recorded since the last check */
int deferred_code(const char *message);
int *deferred_flag();
cudaError_t queue_deferred_read();
int check_deferred();

/* ---- allocator.cu -------------------------------------------------------- */
void *scratch(size_t bytes);            /* NULL and the error set when out of memory */
void scratch_free(void *p, size_t bytes);

/* ---- launch helpers ------------------------------------------------------ */
static const int THREADS = 256;

/* blocks for a grid-stride loop over n items: enough to fill the GPU, no
   more (element-wise results never depend on the grid) */
static inline unsigned grid_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    int64_t cap = (int64_t)num_sms() * 16;
    if (b > cap) b = cap;
    return (unsigned)(b < 1 ? 1 : b);
}

/* a strided index space of up to SL_MAX_DIMS dims and up to three operands;
   row-major over size, operand k at offset sum_d idx_d * st[k][d] */
struct Strided {
    int nd;
    int64_t size[SL_MAX_DIMS];
    int64_t st[3][SL_MAX_DIMS];
};

/* merge adjacent dims that are contiguous in every operand and drop size-1
   dims (the same walk as the CPU's coalesce); at least one dim remains */
static inline void coalesce(Strided *g, int nops)
{
    int k = 0;
    for (int d = 0; d < g->nd; d++) {
        int64_t s = g->size[d];
        if (s == 1) continue;
        bool merge = k > 0;
        for (int o = 0; o < nops && merge; o++)
            if (g->st[o][k - 1] != s * g->st[o][d]) merge = false;
        if (merge) {
            g->size[k - 1] *= s;
            for (int o = 0; o < nops; o++) g->st[o][k - 1] = g->st[o][d];
        } else {
            g->size[k] = s;
            for (int o = 0; o < nops; o++) g->st[o][k] = g->st[o][d];
            k++;
        }
    }
    if (k == 0) {
        g->size[0] = 1;
        for (int o = 0; o < nops; o++) g->st[o][0] = 0;
        k = 1;
    }
    g->nd = k;
}

/* offsets of linear index i in the operands of g (I: the index type used for
   the divisions, 32-bit when the space fits) */
template <typename I, int NOPS>
__device__ __forceinline__ void strided_offsets(const Strided &g, I i, int64_t *off)
{
#pragma unroll
    for (int o = 0; o < NOPS; o++) off[o] = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
        I s = (I)g.size[d];
        I idx = i % s;
        i /= s;
#pragma unroll
        for (int o = 0; o < NOPS; o++) off[o] += (int64_t)idx * g.st[o][d];
    }
}

__device__ __forceinline__ void record_deferred(int *flag, int code)
{
    atomicCAS(flag, 0, code);
}

/* ---- deterministic block reductions (fixed tree for a fixed block size) -- */
template <typename T>
__device__ __forceinline__ T warp_sum(T v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* sum over the block; the result is valid in thread 0.  shared: 32 slots */
template <typename T>
__device__ T block_sum(T v, T *shared)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? shared[lane] : (T)0;
        v = warp_sum(v);
    }
    return v;
}

} /* namespace slc */

/* check a launch (configuration errors, not the kernel's completion) */
#define SLC_LAUNCHED(op)                                                          \
    do {                                                                          \
        cudaError_t e__ = cudaGetLastError();                                     \
        if (e__ != cudaSuccess) return slc::cuda_fail(op, e__);                   \
    } while (0)

#define SLC_CHECK(op, call)                                                       \
    do {                                                                          \
        cudaError_t e__ = (call);                                                 \
        if (e__ != cudaSuccess) return slc::cuda_fail(op, e__);                   \
    } while (0)

#endif
