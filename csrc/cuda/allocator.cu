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
 * memory).  When the device is full (cudaMalloc fails), a cached block of up
 * to twice the size serves the request (take_larger), else the least cache
 * that makes room goes back (evict) and the call is retried, and last the
 * whole cache.  sl_cuda_set_memory_limit caps what the process holds (live +
 * cached), as if the device were that small: past it, the same larger block
 * or the least cache that fits, then the allocation fails as out of memory
 * (the check is not atomic with the cudaMalloc after it: device memory is
 * allocated from the thread that runs Lua only).  libslayer reads
 * sl_cuda_capacity (the cap, or the device's memory) to have Lua collect
 * garbage before live memory nears it, and the Lua layer collects and
 * retries once when an allocation still fails.
 */
#include "common.cuh"
#include "../hostdev.h"

#include <atomic>
#include <mutex>
#include <unordered_map>
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
    /* blocks handed out for a smaller class than their own (take_larger) ->
       their class; empty unless memory ran short */
    std::unordered_map<void *, int> larger;
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

/* the bytes of size class i (size_class's inverse) */
size_t class_bytes(int i)
{
    if (i == 0) return 512;
    int e = 9 + (i - 1) / 8;
    return ((size_t)1 << e) + (size_t)((i - 1) % 8) * ((size_t)1 << (e - 3));
}

/* take one cached block of class i off its list (under the pool's lock) */
void take_cached(Pool &P, int i, std::vector<void *> &drop)
{
    try {
        drop.push_back(P.lists[i].back());
    } catch (...) { /* no host memory for the list: free it now (cudaFree waits itself) */
        release(P.lists[i].back());
    }
    P.lists[i].pop_back();
    P.cached -= (int64_t)class_bytes(i);
}

/* give the taken blocks back to the driver, once the stream is done with them */
void release_all(const std::vector<void *> &drop)
{
    if (drop.empty()) return;
    cudaStreamSynchronize(slc::stream());
    for (void *p : drop) release(p);
}

/* take cached blocks, the largest first, until at most `keep` bytes stay
   cached (under the pool's lock) */
void take_down_to(Pool &P, int64_t keep, std::vector<void *> &drop)
{
    for (int i = N_CLASSES - 1; i >= 0 && P.cached > keep; i--)
        while (!P.lists[i].empty() && P.cached > keep) take_cached(P, i, drop);
}

/* release cached blocks, the largest first, until at most `keep` bytes stay cached */
void trim(int64_t keep)
{
    std::vector<void *> drop;
    {
        Pool &P = pool();
        std::lock_guard<std::mutex> g(P.lock);
        take_down_to(P, keep, drop);
    }
    release_all(drop);
}

/* make room for `need` more bytes by releasing as little of the cache as
   serves: one block of the smallest class that covers `need` alone, else
   the largest blocks first: the rest of the cache stays for the blocks the
   step asks for next. */
void evict(int64_t need)
{
    std::vector<void *> drop;
    {
        Pool &P = pool();
        std::lock_guard<std::mutex> g(P.lock);
        int first;
        size_class(need > 0 ? (size_t)need : 1, &first);
        for (int i = first; i < N_CLASSES && drop.empty(); i++)
            if (!P.lists[i].empty()) take_cached(P, i, drop);
        if (drop.empty()) take_down_to(P, P.cached - need, drop);
    }
    release_all(drop);
}

/* Under memory pressure, a cached block of up to twice the size asked for
   (the next 8 classes) rather than releasing cache and allocating: a step
   whose blocks by size class add up to more than the device holds then runs
   on the blocks it already has.  W2 at batch 64 (5.2 GB live at its peak,
   8.9 GB cached by exact class on a large device) on an emulated 8 GiB one:
   41 cudaMalloc calls and 2.4 whole-cache releases a step when a full device
   emptied the cache, 4.6 calls releasing only what fits (evict), 0.1 with
   this.  Not without pressure: the whole larger block counts as live (W2's
   peak live would rise by 15%).  Null when there is none; *got is the
   block's bytes. */
void *take_larger(int idx, size_t *got)
{
    Pool &P = pool();
    std::lock_guard<std::mutex> g(P.lock);
    for (int j = idx + 1; j <= idx + 8 && j < N_CLASSES; j++) {
        if (P.lists[j].empty()) continue;
        void *p = P.lists[j].back();
        try {
            P.larger[p] = j;
        } catch (...) { /* no host memory to remember it: leave it cached */
            return NULL;
        }
        P.lists[j].pop_back();
        P.cached -= (int64_t)class_bytes(j);
        *got = class_bytes(j);
        return p;
    }
    return NULL;
}

/* a new block from the driver (counted), or NULL with the error cleared */
void *device_malloc(size_t r)
{
    void *p = NULL;
    if (cudaMalloc(&p, r) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    Pool &P = pool();
    std::lock_guard<std::mutex> g(P.lock);
    P.sys++;
    return p;
}

} /* namespace */

SL_CUDA_API void *sl_cuda_malloc(size_t bytes)
{
    Pool &P = pool();
    int idx;
    size_t r = size_class(bytes ? bytes : 1, &idx);
    size_t got = r; /* the bytes of the block handed out */
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
            p = take_larger(idx, &got);
            if (!p) evict(over); /* cached blocks go back to the driver until the block fits */
        }
        /* when the device is full: a larger cached block, room for this one, then the whole cache */
        if (!p) p = device_malloc(r);
        if (!p) p = take_larger(idx, &got);
        if (!p) {
            evict((int64_t)r);
            p = device_malloc(r);
        }
        if (!p) {
            trim(0);
            p = device_malloc(r);
        }
        if (!p) {
            size_t free_b = 0, total = 0;
            cudaMemGetInfo(&free_b, &total);
            cudaGetLastError();
            sl_errorf_code(SL_ENOMEM, "out of GPU memory allocating %zu bytes (%zu of %zu bytes free on the device)",
                           bytes, free_b, total);
            std::lock_guard<std::mutex> g(P.lock);
            P.failures++;
            return NULL;
        }
    }
    {
        std::lock_guard<std::mutex> g(P.lock);
        P.live += (int64_t)got;
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
        if (!P.larger.empty()) { /* a block of a larger class, handed out under pressure */
            auto it = P.larger.find(p);
            if (it != P.larger.end()) {
                idx = it->second;
                r = class_bytes(idx);
                P.larger.erase(it);
            }
        }
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
