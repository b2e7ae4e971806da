/*
 * allocator.cu -- the caching device allocator.
 *
 * cudaMalloc and cudaFree are slow and cudaFree synchronises the device, so a
 * freed block is kept on a free list keyed by its size class (sizes rounded up
 * to 1/8 of a power of two, at least 512 bytes: the CPU allocator's classes)
 * and handed to the next request of that class.  A training step that
 * allocates the same shapes every time is then served entirely from the cache
 * after its first pass.
 *
 * Reuse is stream-ordered: all work runs on the one compute stream, so a
 * block freed while kernels that read it are still queued can be given out at
 * once -- whatever the next owner enqueues runs after them.
 *
 * The cache is bounded (sl_cuda_set_cache_limit, default: the device's
 * memory); when cudaMalloc fails the cache is emptied and the call retried.
 * sl_cuda_set_memory_limit caps what the process holds (live + cached), as
 * if the device were that small: past it, cached blocks go back to the
 * driver first, then the allocation fails as out of memory (the check is
 * not atomic with the cudaMalloc after it: device memory is allocated from
 * the thread that runs Lua only).  libslayer reads sl_cuda_capacity (the
 * cap, or the device's memory) to have Lua collect garbage before live
 * memory nears it, and the Lua layer collects and retries once when an
 * allocation still fails.
 */
#include "common.cuh"
#include "../hostdev.h"

#include <atomic>
#include <mutex>
#include <vector>

namespace {

const int N_CLASSES = 512;

struct Pool {
    std::mutex lock;
    std::vector<void *> lists[N_CLASSES];
    int64_t live = 0, cached = 0, peak_live = 0, peak_reserved = 0;
    int64_t calls = 0, sys = 0, limit = -1;
    int64_t cap = -1; /* sl_cuda_set_memory_limit: live + cached at most this; -1 none */
    int64_t failures = 0; /* allocations refused as out of memory (sl_cuda_alloc_failures) */
};

Pool &pool()
{
    static Pool *p = new Pool; /* never destroyed: frees may come at exit */
    return *p;
}

size_t size_class(size_t bytes, int *index)
{
    if (bytes <= 512) {
        *index = 0;
        return 512;
    }
    int e, sub;
    size_t r = sl_size_class_eighths(bytes, &e, &sub);
    *index = 1 + (e - 9) * 8 + sub; /* e >= 9 here */
    return r;
}

int64_t default_limit()
{
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        cudaGetLastError();
        return (int64_t)1 << 34;
    }
    return (int64_t)total;
}

/* give a block back to the driver.  Frees come between an op's launches
   and its launch check (scratch blocks): the error state is cleared only
   when cudaFree itself failed, so a pending launch error is still seen. */
void release(void *p)
{
    if (cudaFree(p) != cudaSuccess) cudaGetLastError();
}

/* release cached blocks until at most `keep` bytes stay cached */
void trim(int64_t keep)
{
    std::vector<void *> drop;
    {
        Pool &P = pool();
        std::lock_guard<std::mutex> g(P.lock);
        for (int i = N_CLASSES - 1; i >= 0 && P.cached > keep; i--) {
            while (!P.lists[i].empty() && P.cached > keep) {
                try {
                    drop.push_back(P.lists[i].back());
                } catch (...) { /* no host memory for the list: free it now (cudaFree waits itself) */
                    release(P.lists[i].back());
                }
                P.lists[i].pop_back();
                size_t r = i == 0 ? 512
                                  : ((size_t)1 << (9 + (i - 1) / 8)) +
                                        (size_t)((i - 1) % 8) * ((size_t)1 << (9 + (i - 1) / 8 - 3));
                P.cached -= (int64_t)r;
            }
        }
    }
    if (drop.empty()) return;
    cudaStreamSynchronize(slc::stream());
    for (void *p : drop) release(p);
}

} /* namespace */

SL_CUDA_API void *sl_cuda_malloc(size_t bytes)
{
    Pool &P = pool();
    int idx;
    size_t r = size_class(bytes ? bytes : 1, &idx);
    void *p = NULL;
    {
        std::lock_guard<std::mutex> g(P.lock);
        P.calls++;
        if (idx < N_CLASSES && !P.lists[idx].empty()) {
            p = P.lists[idx].back();
            P.lists[idx].pop_back();
            P.cached -= (int64_t)r;
        }
    }
    if (!p) {
        int64_t live, cached, cap;
        {
            std::lock_guard<std::mutex> g(P.lock);
            live = P.live;
            cached = P.cached;
            cap = P.cap;
        }
        int64_t over = live + cached + (int64_t)r - cap;
        if (cap >= 0 && over > 0) {
            if (live + (int64_t)r > cap) {
                std::lock_guard<std::mutex> g(P.lock);
                P.failures++;
                sl_errorf_code(SL_ENOMEM,
                               "out of GPU memory allocating %zu bytes (a block of %zu; %lld bytes live; the "
                               "process's limit is %lld bytes, set by cuda.setMemoryLimit)",
                               bytes, r, (long long)live, (long long)cap);
                return NULL;
            }
            trim(cached - over); /* cached blocks go back to the driver until the block fits */
        }
        cudaError_t e = cudaMalloc(&p, r);
        if (e != cudaSuccess) {
            cudaGetLastError();
            trim(0);
            e = cudaMalloc(&p, r);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            size_t free_b = 0, total = 0;
            cudaMemGetInfo(&free_b, &total);
            cudaGetLastError();
            sl_errorf_code(SL_ENOMEM, "out of GPU memory allocating %zu bytes (%zu of %zu bytes free on the device)",
                           bytes, free_b, total);
            std::lock_guard<std::mutex> g(P.lock);
            P.failures++;
            return NULL;
        }
        std::lock_guard<std::mutex> g(P.lock);
        P.sys++;
    }
    {
        std::lock_guard<std::mutex> g(P.lock);
        P.live += (int64_t)r;
        if (P.live > P.peak_live) P.peak_live = P.live;
        if (P.live + P.cached > P.peak_reserved) P.peak_reserved = P.live + P.cached;
    }
#ifdef SLAYER_CUDAEMU
    /* the host emulator (tests/cudaemu) fills every block it hands out with
       NaN, in stream order: a kernel that reads what nobody wrote shows; and
       the size class's slack past `bytes` with a canary that each kernel
       given the block must leave as it is */
    emu::redzone(p, bytes ? bytes : 1);
    emu::poison(p, bytes ? bytes : 1);
#endif
    return p;
}

/* 1 when a block for `bytes` is cached (the next sl_cuda_malloc of that size
   makes no cudaMalloc); libslayer asks before it has Lua collect garbage */
SL_CUDA_API int sl_cuda_cache_has(size_t bytes)
{
    Pool &P = pool();
    int idx;
    size_class(bytes ? bytes : 1, &idx);
    std::lock_guard<std::mutex> g(P.lock);
    return idx < N_CLASSES && !P.lists[idx].empty();
}

SL_CUDA_API void sl_cuda_free(void *p, size_t bytes)
{
    if (!p) return;
    Pool &P = pool();
    int idx;
    size_t r = size_class(bytes ? bytes : 1, &idx);
    bool keep = false;
    {
        std::lock_guard<std::mutex> g(P.lock);
        P.live -= (int64_t)r;
        if (P.limit < 0) P.limit = default_limit();
        if (idx < N_CLASSES && P.cached + (int64_t)r <= P.limit) {
            try { /* an exception must not cross the C interface: without host memory, free the block */
                P.lists[idx].push_back(p);
                P.cached += (int64_t)r;
                keep = true;
            } catch (...) {
            }
        }
    }
    if (!keep) release(p); /* synchronises the device: only past the cache limit */
}

SL_CUDA_API void sl_cuda_mem_stats(sl_mem_stats *out)
{
    Pool &P = pool();
    std::lock_guard<std::mutex> g(P.lock);
    out->live_bytes = P.live;
    out->cached_bytes = P.cached;
    out->peak_live_bytes = P.peak_live;
    out->alloc_calls = P.calls;
    out->system_allocs = P.sys;
    out->cache_limit = P.limit < 0 ? default_limit() : P.limit;
}

/* one counter of the pool, read under its lock */
static int64_t counter(int64_t Pool::*field)
{
    Pool &P = pool();
    std::lock_guard<std::mutex> g(P.lock);
    return P.*field;
}

/* highest live + cached bytes: what the process held on the device */
SL_CUDA_API int64_t sl_cuda_peak_reserved(void) { return counter(&Pool::peak_reserved); }

/* restart both peaks from the current values */
SL_CUDA_API void sl_cuda_reset_peak(void)
{
    Pool &P = pool();
    std::lock_guard<std::mutex> g(P.lock);
    P.peak_live = P.live;
    P.peak_reserved = P.live + P.cached;
}

SL_CUDA_API void sl_cuda_set_cache_limit(int64_t bytes)
{
    Pool &P = pool();
    {
        std::lock_guard<std::mutex> g(P.lock);
        P.limit = bytes < 0 ? 0 : bytes;
    }
    trim(bytes < 0 ? 0 : bytes);
}

SL_CUDA_API void sl_cuda_empty_cache(void) { trim(0); }

/* cap live + cached device bytes (negative: no cap); cached blocks past it
   go back to the driver now */
SL_CUDA_API void sl_cuda_set_memory_limit(int64_t bytes)
{
    Pool &P = pool();
    int64_t keep, cached;
    {
        std::lock_guard<std::mutex> g(P.lock);
        P.cap = bytes < 0 ? -1 : bytes;
        cached = P.cached;
        keep = bytes < 0 ? cached : bytes - P.live;
    }
    if (keep < cached) trim(keep < 0 ? 0 : keep);
}

/* allocations refused as out of memory so far (each retry counts again) */
SL_CUDA_API int64_t sl_cuda_alloc_failures(void) { return counter(&Pool::failures); }

/* the cap sl_cuda_set_memory_limit set, or -1 */
SL_CUDA_API int64_t sl_cuda_memory_limit(void) { return counter(&Pool::cap); }

/* what allocations may take in all: the cap, or else the device's memory
   (-1 while the driver cannot say; asked again next time) */
SL_CUDA_API int64_t sl_cuda_capacity(void)
{
    static std::atomic<int64_t> total{-1};
    Pool &P = pool();
    {
        std::lock_guard<std::mutex> g(P.lock);
        if (P.cap >= 0) return P.cap;
    }
    int64_t t = total.load();
    if (t < 0) {
        size_t free_b = 0, all = 0;
        if (cudaMemGetInfo(&free_b, &all) != cudaSuccess) {
            cudaGetLastError();
            return -1;
        }
        t = (int64_t)all;
        total.store(t);
    }
    return t;
}

namespace slc {

void *scratch(size_t bytes) { return sl_cuda_malloc(bytes); }
void scratch_free(void *p, size_t bytes) { sl_cuda_free(p, bytes); }

} /* namespace slc */
