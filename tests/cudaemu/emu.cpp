/*
 * emu.cpp -- the host emulator of the CUDA runtime, cuBLAS and CUB calls
 * that csrc/cuda makes, for testing the CUDA back end on machines without a
 * GPU (libslayer_cuda_emu.so; tests/run.lua runs the GPU specs against it).
 *
 * The emulated device:
 *   - Memory.  cudaMalloc gives each block pages of its own in one reserved
 *     address range (the arena), ending at an inaccessible guard page, so a
 *     kernel that runs past the end of a block faults.  The blocks are
 *     inaccessible (PROT_NONE) except while queued device work or a copy
 *     runs, so host code that reads or writes device memory faults at once.
 *     The SIGSEGV handler says which of the two happened, the kernel and the
 *     frames, then lets the signal kill the process (as the GPU's fault or
 *     the host's crash would end it).  Blocks are 64-byte aligned, not 256.
 *   - The stream.  Kernels, copies, memsets, GEMMs and scans are queued, as
 *     on a GPU, and run in issue order only when the host waits
 *     (cudaStreamSynchronize, cudaEventSynchronize, a copy to pageable host
 *     memory, cudaFree, cudaFreeHost, cudaDeviceSynchronize) or the queue
 *     is long.  A result read without waiting is therefore stale, as it can
 *     be on a GPU.  A copy from pageable host memory reads its source when
 *     called (the driver stages it), one from pinned memory when it runs, as
 *     the driver does.  $SLAYER_CUDAEMU_SYNC=1 runs everything at once.
 *   - Kernels.  Each block runs alone; each of its threads is a fiber
 *     (ucontext) that runs until it waits at a barrier.  __syncthreads
 *     releases when every live thread of the block has arrived, a warp
 *     exchange (__shfl_down_sync, __ballot_sync) when every live lane of the
 *     warp has: threads waiting at different barriers are reported as a
 *     divergent barrier, a fault.  A lane reading an exited lane's value gets
 *     poison (all bits set).  Shared memory, static and dynamic, starts as
 *     poison in each block.  $SLAYER_CUDAEMU_ORDER picks the order threads
 *     and blocks run in (forward, reverse, shuffle): results that change
 *     with it are races.
 *   - Checks at launch (errors reported by cudaGetLastError, as CUDA's):
 *     grid and block limits, dynamic shared memory against the limit the
 *     kernel was granted, a kernel launched on the legacy default stream,
 *     and pointer arguments that are neither device memory, pinned host
 *     memory nor NULL.  Copies check that each side is where the copy kind
 *     says.
 *   - Poison.  The back end's caching allocator, built here, has every
 *     block it hands out filled with NaN in stream order (emu::poison), so
 *     a kernel that reads memory nobody wrote gives NaN, not a lucky zero.
 *   - Canaries.  The allocator's size classes round a request up, so a
 *     block has slack past the bytes asked for, where the guard page cannot
 *     catch an overrun.  emu::redzone fills that slack with a canary byte;
 *     after each kernel, the blocks its pointer arguments point into are
 *     checked, and a changed canary is a device fault naming the kernel.
 *     Copies, memsets and GEMMs must stay within the bytes asked for.
 * Not emulated: concurrency between threads (no data race shows), timing,
 * several devices or streams running side by side.
 *
 * sl_cudaemu_counters gives the number of launches, host waits (a wait
 * with work queued) and cudaMalloc calls, for specs of "no host wait / no
 * allocation in a training step".  $SLAYER_CUDAEMU_TRACE_WAITS=1 prints the
 * host frames of every wait, $SLAYER_CUDAEMU_TRACE_LAUNCHES=1 every launch.  sl_cudaemu_discard(1) drops queued device
 * work from then on instead of running it: results are garbage, but the
 * time a caller takes is its host side alone (Lua, dispatch, queueing), for
 * estimating the host cost of a training step (tests/cudaemu/hostcost.lua);
 * a real launch adds the driver's few microseconds to each.
 */
#include "cuda_runtime.h"
#include "cublas_v2.h"
#include "cuda_profiler_api.h"
#include "cub/device/device_scan.cuh"

#include <cblas.h>
#include <execinfo.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#define EMU_API extern "C" __attribute__((visibility("default")))

namespace emu {

/* ---- errors ------------------------------------------------------------------- */

static std::recursive_mutex big_lock; /* one host thread at a time in the emulator */
static cudaError_t last_error = cudaSuccess;
static cudaError_t sticky = cudaSuccess; /* a kernel fault: every later call fails */
static std::string detail[1024];

static const char *base_text(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

/* an error with the emulator's explanation (cudaGetErrorString returns it) */
static cudaError_t fail(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cudaError_t fail(cudaError_t e, const char *fmt, ...)
{
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    detail[(int)e & 1023] = std::string(base_text(e)) + " (cudaemu: " + buf + ")";
    if (getenv("SLAYER_CUDAEMU_VERBOSE")) fprintf(stderr, "cudaemu: %s\n", buf);
    return e;
}

static cudaError_t launch_fail(cudaError_t e)
{
    last_error = e;
    return e;
}

static void fault(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fault(const char *fmt, ...)
{
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cudaemu: device fault: %s\n", buf);
    if (sticky == cudaSuccess) sticky = fail(cudaErrorLaunchFailure, "%s", buf);
}

/* ---- counters ------------------------------------------------------------------- */

static int64_t n_launches = 0, n_waits = 0, n_mallocs = 0;

/* ---- memory: the arena, pinned blocks --------------------------------------------- */

static const size_t ARENA = (size_t)1 << 36; /* 64 GiB of addresses, reserved only */
static const size_t PAGE = 4096;
/* what cudaMemGetInfo reports: 8 GiB, or $SLAYER_CUDAEMU_GIB (1 to 60) to
   see what the caching allocator would hold on a large GPU */
static size_t device_total()
{
    static size_t total = 0;
    if (!total) {
        const char *e = getenv("SLAYER_CUDAEMU_GIB");
        long g = e ? strtol(e, NULL, 10) : 8;
        if (g < 1 || g > 60) {
            fprintf(stderr, "cudaemu: SLAYER_CUDAEMU_GIB=%s: expected 1 to 60 (GiB); using 8\n", e);
            g = 8;
        }
        total = (size_t)g << 30;
    }
    return total;
}
#define TOTAL device_total()
static char *arena = NULL;
static size_t arena_pages = 0; /* pages handed out so far (high-water mark) */
/* Each block has pages of its own, followed by a guard page that stays
   inaccessible, and ends where its guard begins (starts are 64-byte
   aligned), so a kernel that runs past the end of a block faults. */
struct Block {
    size_t bytes, page, npages; /* data bytes; its pages [page, page + npages) */
    /* bytes in use (redzone()): the rest holds the canary.  valid_host is
       what the host last asked for, valid the same in stream order */
    size_t valid_host, valid;
};
static const unsigned char CANARY = 0xfd;
static std::map<size_t, Block> live;         /* byte offset of the data -> block */
static std::map<size_t, size_t> free_pages;  /* first page -> count (guards included), coalesced */
static int64_t used = 0;
static std::unordered_map<uintptr_t, size_t> pinned;
static int open_depth = 0;
static const char *cur_kernel(); /* the kernel running, or NULL */

static void segv_handler(int sig, siginfo_t *si, void *)
{
    char *a = (char *)si->si_addr;
    if (arena && a >= arena && a < arena + ARENA) {
        char msg[512];
        const char *k = cur_kernel();
        int n;
        if (open_depth == 0)
            n = snprintf(msg, sizeof msg, "cudaemu: host code touched device memory at %p (a GPU pointer "
                                          "dereferenced on the host); host frames:\n", (void *)a);
        else
            n = snprintf(msg, sizeof msg, "cudaemu: %s%s read or wrote %p, outside every device allocation "
                                          "(past the end of a block?); frames:\n",
                         k ? "kernel " : "device work", k ? k : "", (void *)a);
        if (write(2, msg, (size_t)n) < 0) { /* nothing more to do */
        }
        void *frames[32];
        backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void arena_init()
{
    if (arena) return;
    void *p = mmap(NULL, ARENA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "cudaemu: cannot reserve the device address range\n");
        return;
    }
    arena = (char *)p;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
}

static void protect(const Block &b, int prot) { mprotect(arena + b.page * PAGE, b.npages * PAGE, prot); }

/* device memory is accessible only between open_device() and close_device() */
static void open_device()
{
    if (open_depth++ == 0)
        for (auto &kv : live) protect(kv.second, PROT_READ | PROT_WRITE);
}
static void close_device()
{
    if (--open_depth == 0)
        for (auto &kv : live) protect(kv.second, PROT_NONE);
}

static bool is_device(const void *p, size_t bytes)
{
    if (!arena || (const char *)p < arena || (const char *)p >= arena + ARENA) return false;
    size_t off = (size_t)((const char *)p - arena);
    auto it = live.upper_bound(off);
    if (it == live.begin()) return false;
    --it;
    return off + bytes <= it->first + it->second.valid_host;
}

static bool is_pinned(const void *p, size_t bytes)
{
    for (auto &kv : pinned) /* few blocks: the loaders' staging buffers */
        if ((uintptr_t)p >= kv.first && (uintptr_t)p + bytes <= kv.first + kv.second) return true;
    return false;
}

static void *arena_alloc(size_t bytes)
{
    size_t len = (bytes + 63) / 64 * 64;
    if (len == 0) len = 64;
    if ((int64_t)(used + len) > (int64_t)TOTAL) return NULL;
    size_t npages = (len + PAGE - 1) / PAGE, need = npages + 1, page = (size_t)-1;
    for (auto it = free_pages.begin(); it != free_pages.end(); ++it) {
        if (it->second < need) continue;
        page = it->first;
        size_t rest = it->second - need;
        free_pages.erase(it);
        if (rest) free_pages[page + need] = rest;
        break;
    }
    if (page == (size_t)-1) {
        if ((arena_pages + need) * PAGE > ARENA) return NULL;
        page = arena_pages;
        arena_pages += need;
    }
    Block b = {bytes, page, npages, bytes, bytes};
    if (open_depth > 0) protect(b, PROT_READ | PROT_WRITE);
    size_t off = (page + npages) * PAGE - len;
    live[off] = b;
    used += (int64_t)len;
    return arena + off;
}

static void arena_free(size_t off)
{
    Block b = live[off];
    live.erase(off);
    used -= (int64_t)(b.bytes ? (b.bytes + 63) / 64 * 64 : 64);
    protect(b, PROT_NONE);
    madvise(arena + b.page * PAGE, b.npages * PAGE, MADV_DONTNEED); /* back to the system */
    size_t page = b.page, n = b.npages + 1;
    auto next = free_pages.find(page + n);
    if (next != free_pages.end()) {
        n += next->second;
        free_pages.erase(next);
    }
    auto prev = free_pages.lower_bound(page);
    if (prev != free_pages.begin()) {
        --prev;
        if (prev->first + prev->second == page) {
            page = prev->first;
            n += prev->second;
            free_pages.erase(prev);
        }
    }
    free_pages[page] = n;
}

/* ---- the stream ---------------------------------------------------------------------- */

struct emu_stream_impl {
    int unused;
};
static std::set<const void *> streams;
static std::deque<std::function<void()>> queue;
static bool immediate_mode()
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("SLAYER_CUDAEMU_SYNC");
        v = e && *e && strcmp(e, "0") != 0;
    }
    return v;
}

static bool discarding = false;

static void flush()
{
    if (queue.empty()) return;
    if (discarding) {
        queue.clear();
        return;
    }
    open_device();
    while (!queue.empty()) {
        std::function<void()> op = std::move(queue.front());
        queue.pop_front();
        if (sticky == cudaSuccess) op();
    }
    close_device();
}

/* the host waits for the stream */
static void wait_host()
{
    if (queue.empty()) return; /* nothing queued: the host does not wait */
    n_waits++;
    static int trace = -1;
    if (trace < 0) trace = getenv("SLAYER_CUDAEMU_TRACE_WAITS") != NULL;
    if (trace) {
        fprintf(stderr, "cudaemu: host wait %lld from:\n", (long long)n_waits);
        void *frames[12];
        backtrace_symbols_fd(frames, backtrace(frames, 12), 2);
    }
    flush();
}

static cudaError_t check_stream(const char *what, cudaStream_t s)
{
    if (s == 0)
        return fail(cudaErrorInvalidResourceHandle,
                    "%s on the legacy default stream; the back end must use slc::stream() only", what);
    if (!streams.count((const void *)s)) return fail(cudaErrorInvalidResourceHandle, "%s on an unknown stream", what);
    return cudaSuccess;
}

static void enqueue(std::function<void()> op)
{
    queue.push_back(std::move(op));
    if (immediate_mode() || queue.size() >= 4096) flush();
}

cudaError_t enqueue_host(const char *name, std::function<void()> op, const void *dev1, const void *dev2,
                         cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (sticky) return sticky;
    cudaError_t e = check_stream(name, s);
    if (e) return e;
    if (!is_device(dev1, 1) || !is_device(dev2, 1))
        return fail(cudaErrorInvalidValue, "%s given a pointer that is not device memory", name);
    enqueue(std::move(op));
    return cudaSuccess;
}

void poison(void *p, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (sticky || !is_device(p, bytes)) return;
    enqueue([p, bytes]() { memset(p, 0xff, bytes); });
}

void redzone(void *p, size_t valid)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (sticky || !arena || (char *)p < arena || (char *)p >= arena + ARENA) return;
    size_t off = (size_t)((char *)p - arena);
    auto it = live.find(off);
    if (it == live.end() || valid > it->second.bytes) return;
    it->second.valid_host = valid;
    enqueue([off, valid]() {
        auto b = live.find(off);
        if (b == live.end()) return;
        b->second.valid = valid;
        memset(arena + off + valid, CANARY, b->second.bytes - valid);
    });
}

/* after a kernel: the canary of every block it was given a pointer into */
static void check_canaries(const char *name, const std::vector<const void *> &ptrs)
{
    for (const void *p : ptrs) {
        size_t off = (size_t)((const char *)p - arena);
        auto it = live.upper_bound(off);
        if (it == live.begin()) continue;
        --it;
        const Block &b = it->second;
        const unsigned char *z = (const unsigned char *)arena + it->first;
        for (size_t i = b.valid; i < b.bytes; i++)
            if (z[i] != CANARY) {
                fault("kernel %s wrote past the end of an allocation of %zu bytes (at byte %zu of the "
                      "%zu-byte cached block holding it)",
                      name, b.valid, i, b.bytes);
                return;
            }
    }
}

/* ---- kernels: blocks of fibers ----------------------------------------------------------- */

uint3 block_idx;
dim3 block_dim, grid_dim;

enum { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };
/* A fiber is one emulated thread's stack; it is made once (makecontext)
   and then switched with _setjmp/_longjmp, which unlike swapcontext make no
   system call.  Its loop runs one thread of the current block each time the
   scheduler enters it after DONE. */
struct Fiber {
    jmp_buf jb;
    ucontext_t uc;
    bool made;
    uint3 tid;
    unsigned lane, warp;
    int state;
    unsigned xgen; /* warp exchanges this thread has made */
};
static const size_t STACK = 256 * 1024;
static const int MAX_THREADS = 1024;
static char *stacks = NULL;
static Fiber fibers[MAX_THREADS];
static Fiber *cur = NULL;
static jmp_buf sched_jb;
static ucontext_t maker_uc;
static Fiber *making = NULL;
static Grid *cur_grid = NULL;
static const char *cur_name = "";
static const char *cur_kernel() { return cur_grid ? cur_name : NULL; }
static int n_threads = 0, block_live = 0, block_arrived = 0;
static int warp_live[32], warp_arrived[32];
static unsigned char xch[32][32][8];
static unsigned xch_gen[32][32];
static std::vector<unsigned char> dyn_shared;
static std::unordered_map<const void *, int> granted_shared;

const uint3 &thread_idx()
{
    static uint3 host = {0, 0, 0};
    return cur ? cur->tid : host;
}

unsigned lane() { return cur ? cur->lane : 0; }

void *dynamic_shared() { return dyn_shared.data(); }

/* static shared arrays (translate.pl): one slot per declaration, keyed by a
   static byte beside it, laid out in the grid's first block and poisoned at
   the start of every block, as a GPU's shared memory holds garbage */
static const size_t STATIC_SHARED_MAX = 48 * 1024;
alignas(64) static unsigned char static_shared[STATIC_SHARED_MAX];
static std::unordered_map<const void *, size_t> shared_slots;
static size_t shared_used = 0;

void *block_shared(const void *key, size_t bytes)
{
    auto it = shared_slots.find(key);
    if (it != shared_slots.end()) return static_shared + it->second;
    size_t off = (shared_used + 15) / 16 * 16;
    if (off + bytes > STATIC_SHARED_MAX) {
        fprintf(stderr, "cudaemu: kernel %s declares more than %zu bytes of static shared memory\n", cur_name,
                STATIC_SHARED_MAX);
        abort(); /* nvcc would not have compiled it */
    }
    shared_used = off + bytes;
    memset(static_shared + off, 0xff, bytes);
    shared_slots[key] = off;
    return static_shared + off;
}

static void release_block()
{
    if (block_arrived > 0 && block_arrived == block_live) {
        for (int i = 0; i < n_threads; i++)
            if (fibers[i].state == WAIT_BLOCK) fibers[i].state = RUNNABLE;
        block_arrived = 0;
    }
}

static void release_warp(unsigned w)
{
    if (warp_arrived[w] > 0 && warp_arrived[w] == warp_live[w]) {
        for (int i = (int)w * 32; i < n_threads && i < (int)w * 32 + 32; i++)
            if (fibers[i].state == WAIT_WARP) fibers[i].state = RUNNABLE;
        warp_arrived[w] = 0;
    }
}

static void yield_to_scheduler()
{
    if (!_setjmp(cur->jb)) _longjmp(sched_jb, 1);
}

void sync_block()
{
    if (!cur) return;
    cur->state = WAIT_BLOCK;
    block_arrived++;
    release_block();
    if (cur->state != RUNNABLE) yield_to_scheduler();
}

static void warp_barrier()
{
    Fiber *f = cur;
    f->state = WAIT_WARP;
    warp_arrived[f->warp]++;
    release_warp(f->warp);
    if (f->state != RUNNABLE) yield_to_scheduler();
}

unsigned warp_exchange(const void *mine, size_t size, unsigned char (*table)[8])
{
    if (!cur) return 0;
    Fiber *f = cur;
    unsigned w = f->warp, gen = ++f->xgen;
    memcpy(xch[w][f->lane], mine, size);
    xch_gen[w][f->lane] = gen;
    warp_barrier();
    unsigned present = 0;
    for (unsigned l = 0; l < 32; l++)
        if (xch_gen[w][l] == gen && (int)(w * 32 + l) < n_threads && fibers[w * 32 + l].state != DONE) {
            present |= 1u << l;
            memcpy(table[l], xch[w][l], 8);
        }
    warp_barrier(); /* nobody deposits the next value before all have read this one */
    return present;
}

static void fiber_main()
{
    Fiber *self = making;
    if (!_setjmp(self->jb)) swapcontext(&self->uc, &maker_uc); /* made: back to the maker */
    for (;;) {
        cur_grid->thread();
        Fiber *f = cur;
        f->state = DONE;
        block_live--;
        warp_live[f->warp]--;
        release_block();
        release_warp(f->warp);
        yield_to_scheduler(); /* resumed for the next thread this fiber runs */
    }
}

static void make_fiber(Fiber &f, int i)
{
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = stacks + (size_t)i * STACK + PAGE;
    f.uc.uc_stack.ss_size = STACK - PAGE;
    f.uc.uc_link = NULL;
    makecontext(&f.uc, fiber_main, 0);
    making = &f;
    swapcontext(&maker_uc, &f.uc);
    making = NULL;
    f.made = true;
}

/* The order the scheduler runs the runnable threads of a block in, and the
   blocks of a grid ($SLAYER_CUDAEMU_ORDER): forward (thread and block 0
   first), reverse, or shuffle (a fixed-seed random order, drawn afresh for
   every round and grid).  A GPU promises none of them, so results that
   change with the order are races: a missing __syncthreads, threads of a
   warp assumed to run in step, blocks assumed to run in order. */
enum { ORDER_FORWARD, ORDER_REVERSE, ORDER_SHUFFLE };
static int mode = -1;
void set_order(int m) { mode = m; }
static int order_mode()
{
    if (mode < 0) {
        const char *e = getenv("SLAYER_CUDAEMU_ORDER");
        mode = e && !strcmp(e, "reverse") ? ORDER_REVERSE : e && !strcmp(e, "shuffle") ? ORDER_SHUFFLE : ORDER_FORWARD;
    }
    return mode;
}
static uint64_t order_state = 0x9e3779b97f4a7c15ull;
static void shuffle(int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        order_state = order_state * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((order_state >> 33) % (uint64_t)(i + 1));
        int t = v[i];
        v[i] = v[k];
        v[k] = t;
    }
}
static int perm[MAX_THREADS];

static bool run_block()
{
    for (int i = 0; i < n_threads; i++) {
        Fiber &f = fibers[i];
        if (!f.made) make_fiber(f, i);
        f.tid.x = (unsigned)i % block_dim.x;
        f.tid.y = ((unsigned)i / block_dim.x) % block_dim.y;
        f.tid.z = (unsigned)i / (block_dim.x * block_dim.y);
        f.lane = (unsigned)i & 31u;
        f.warp = (unsigned)i >> 5;
        f.state = RUNNABLE;
        f.xgen = 0;
    }
    for (int j = 0; j < n_threads; j++) perm[j] = order_mode() == ORDER_REVERSE ? n_threads - 1 - j : j;
    block_live = n_threads;
    block_arrived = 0;
    memset(warp_arrived, 0, sizeof warp_arrived);
    memset(warp_live, 0, sizeof warp_live);
    memset(xch_gen, 0, sizeof xch_gen);
    for (int i = 0; i < n_threads; i++) warp_live[i >> 5]++;
    if (!dyn_shared.empty()) memset(dyn_shared.data(), 0xff, dyn_shared.size());
    memset(static_shared, 0xff, shared_used);
    for (;;) {
        bool ran = false;
        if (order_mode() == ORDER_SHUFFLE) shuffle(perm, n_threads);
        for (int j = 0; j < n_threads; j++) {
            int i = perm[j];
            if (fibers[i].state != RUNNABLE) continue;
            ran = true;
            cur = &fibers[i];
            if (!_setjmp(sched_jb)) _longjmp(cur->jb, 1);
            cur = NULL;
        }
        if (block_live == 0) return true;
        if (!ran) {
            int at_block = 0, at_warp = 0;
            for (int i = 0; i < n_threads; i++) {
                at_block += fibers[i].state == WAIT_BLOCK;
                at_warp += fibers[i].state == WAIT_WARP;
                /* stuck inside a kernel: made afresh for the next launch */
                if (fibers[i].state != DONE) fibers[i].made = false;
            }
            fault("kernel %s, block (%u,%u,%u): divergent barrier: %d threads wait at __syncthreads, %d at a warp "
                  "exchange, %d have exited",
                  cur_name, block_idx.x, block_idx.y, block_idx.z, at_block, at_warp, n_threads - block_live);
            return false;
        }
    }
}

static void run_grid(const Config &c, const char *name, Grid *g)
{
    if (!stacks) {
        size_t bytes = STACK * MAX_THREADS;
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            fault("no memory for the emulated threads' stacks");
            return;
        }
        stacks = (char *)p;
        for (int i = 0; i < MAX_THREADS; i++) mprotect(stacks + (size_t)i * STACK, PAGE, PROT_NONE); /* guards */
    }
    cur_grid = g;
    cur_name = name;
    grid_dim = c.grid;
    block_dim = c.block;
    n_threads = (int)(c.block.x * c.block.y * c.block.z);
    dyn_shared.assign(c.shared, 0xff);
    shared_slots.clear();
    shared_used = 0;
    uint64_t nb = (uint64_t)c.grid.x * c.grid.y * c.grid.z;
    std::vector<uint64_t> blocks;
    if (order_mode() == ORDER_SHUFFLE && nb <= ((uint64_t)1 << 24)) {
        blocks.resize(nb);
        for (uint64_t b = 0; b < nb; b++) blocks[b] = b;
        for (uint64_t i = nb - 1; i > 0; i--) {
            order_state = order_state * 6364136223846793005ull + 1442695040888963407ull;
            std::swap(blocks[i], blocks[(order_state >> 33) % (i + 1)]);
        }
    }
    for (uint64_t j = 0; j < nb; j++) {
        uint64_t b = blocks.empty() ? (order_mode() == ORDER_REVERSE ? nb - 1 - j : j) : blocks[j];
        block_idx.x = (unsigned)(b % c.grid.x);
        block_idx.y = (unsigned)(b / c.grid.x % c.grid.y);
        block_idx.z = (unsigned)(b / ((uint64_t)c.grid.x * c.grid.y));
        if (!run_block()) break;
    }
    cur_grid = NULL;
    block_idx = uint3{0, 0, 0};
}

cudaError_t func_set_shared(const void *kernel, int bytes)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (bytes < 0 || bytes > 227 * 1024)
        return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: %d bytes of dynamic shared memory (limit %d)",
                    bytes, 227 * 1024);
    granted_shared[kernel] = bytes;
    return cudaSuccess;
}

bool check_launch(const Config &c, const char *name, const void *kernel)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (sticky) {
        launch_fail(sticky);
        return false;
    }
    const dim3 &b = c.block, &gr = c.grid;
    uint64_t threads = (uint64_t)b.x * b.y * b.z;
    cudaError_t e = cudaSuccess;
    if (b.x == 0 || b.y == 0 || b.z == 0 || gr.x == 0 || gr.y == 0 || gr.z == 0)
        e = fail(cudaErrorInvalidConfiguration, "kernel %s: a zero grid or block dimension (grid %u,%u,%u block %u,%u,%u)",
                 name, gr.x, gr.y, gr.z, b.x, b.y, b.z);
    else if (threads > 1024 || b.x > 1024 || b.y > 1024 || b.z > 64)
        e = fail(cudaErrorInvalidConfiguration, "kernel %s: block %u x %u x %u exceeds 1024 threads (z <= 64)", name,
                 b.x, b.y, b.z);
    else if (gr.x > 2147483647u || gr.y > 65535 || gr.z > 65535)
        e = fail(cudaErrorInvalidConfiguration, "kernel %s: grid %u x %u x %u exceeds (2^31-1, 65535, 65535)", name,
                 gr.x, gr.y, gr.z);
    else if (c.shared > 48 * 1024) {
        auto it = granted_shared.find(kernel);
        int granted = it == granted_shared.end() ? 48 * 1024 : it->second;
        if ((size_t)granted < c.shared)
            e = fail(cudaErrorInvalidValue,
                     "kernel %s: %zu bytes of dynamic shared memory, %d granted (cudaFuncSetAttribute)", name,
                     c.shared, granted);
    }
    if (!e) e = check_stream(name, c.stream);
    if (e) {
        launch_fail(e);
        return false;
    }
    return true;
}

bool check_pointer(const char *name, int arg, const void *p, Grid *grid)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (p != NULL && is_device(p, 1)) {
        grid->device_args.push_back(p);
        return true;
    }
    if (p == NULL || is_pinned(p, 1)) return true;
    launch_fail(fail(cudaErrorInvalidValue, "kernel %s: argument %d (%p) is neither device memory nor pinned host memory",
                     name, arg, p));
    return false;
}

void enqueue_grid(const Config &c, const char *name, Grid *g)
{
    std::lock_guard<std::recursive_mutex> lk(big_lock);
    n_launches++;
    static int trace = -1;
    if (trace < 0) trace = getenv("SLAYER_CUDAEMU_TRACE_LAUNCHES") != NULL;
    if (trace)
        fprintf(stderr, "cudaemu: launch %lld %s grid (%u,%u,%u) block (%u,%u,%u) shared %zu\n", (long long)n_launches,
                name, c.grid.x, c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z, c.shared);
    Config cc = c;
    std::shared_ptr<Grid> grid(g);
    enqueue([cc, name, grid]() {
        run_grid(cc, name, grid.get());
        if (sticky == cudaSuccess) check_canaries(name, grid->device_args);
    });
}

} /* namespace emu */

using namespace emu;

/* ---- runtime API ------------------------------------------------------------------------- */

const char *cudaGetErrorString(cudaError_t e)
{
    const std::string &d = detail[(int)e & 1023];
    return d.empty() ? base_text(e) : d.c_str();
}

cudaError_t cudaGetLastError(void)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e ? e : sticky;
}

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *d)
{
    *d = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int d)
{
    if (d != 0) return fail(cudaErrorInvalidDevice, "device %d of 1", d);
    std::lock_guard<std::recursive_mutex> g(big_lock);
    arena_init();
    return arena ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d)
{
    if (d != 0) return fail(cudaErrorInvalidDevice, "device %d of 1", d);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "cudaemu (CUDA emulated on the host CPU)");
    p->totalGlobalMem = TOTAL;
    p->sharedMemPerBlock = 48 * 1024;
    p->sharedMemPerBlockOptin = 227 * 1024;
    /* few SMs: grid-stride kernels get small grids, each thread loops */
    p->multiProcessorCount = 2;
    p->maxThreadsPerBlock = 1024;
    p->warpSize = 32;
    p->major = 9;
    p->minor = 0;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d)
{
    if (d != 0) return fail(cudaErrorInvalidDevice, "device %d of 1", d);
    if (a != cudaDevAttrMaxSharedMemoryPerBlockOptin) return fail(cudaErrorInvalidValue, "attribute %d", (int)a);
    *v = 227 * 1024;
    return cudaSuccess;
}

cudaError_t cudaProfilerStart(void) { return cudaSuccess; }
cudaError_t cudaProfilerStop(void) { return cudaSuccess; }

cudaError_t cudaDeviceSynchronize(void)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    wait_host();
    return sticky;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    *p = NULL;
    if (sticky) return sticky;
    arena_init();
    n_mallocs++;
    void *q = arena ? arena_alloc(bytes) : NULL;
    if (!q) return fail(cudaErrorMemoryAllocation, "%zu bytes requested, %lld of %zu in use", bytes, (long long)used, TOTAL);
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (!p) return cudaSuccess;
    wait_host(); /* cudaFree synchronises the device */
    size_t off = (size_t)((char *)p - arena);
    if (!arena || (char *)p < arena || !live.count(off))
        return fail(cudaErrorInvalidValue, "cudaFree(%p): not a block cudaMalloc returned", p);
    arena_free(off);
    return sticky;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    (void)flags;
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return fail(cudaErrorMemoryAllocation, "%zu bytes of pinned host memory", bytes);
    pinned[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (!p) return cudaSuccess;
    wait_host();
    auto it = pinned.find((uintptr_t)p);
    if (it == pinned.end()) return fail(cudaErrorInvalidValue, "cudaFreeHost(%p): not a block cudaHostAlloc returned", p);
    pinned.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    *free_bytes = TOTAL - (size_t)used;
    *total_bytes = TOTAL;
    return cudaSuccess;
}

static cudaError_t copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s, bool async)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (sticky) return sticky;
    if (bytes == 0) return cudaSuccess;
    const char *what = async ? "cudaMemcpyAsync" : "cudaMemcpy";
    if (async) {
        cudaError_t e = check_stream(what, s);
        if (e) return e;
    }
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost)
        return fail(cudaErrorInvalidValue, "%s: copy kind %d is not used by the back end", what, (int)kind);
    if (src_dev != is_device(src, bytes))
        return fail(cudaErrorInvalidValue, "%s of %zu bytes: the source %p is %s", what, bytes, src,
                    src_dev ? "not (all) device memory" : "device memory, but the kind says host");
    if (dst_dev != is_device(dst, bytes))
        return fail(cudaErrorInvalidValue, "%s of %zu bytes: the destination %p is %s", what, bytes, dst,
                    dst_dev ? "not (all) device memory" : "device memory, but the kind says host");
    if (!src_dev && !is_pinned(src, bytes)) {
        /* pageable source: staged now, the caller may reuse it at once */
        std::shared_ptr<std::vector<char>> staged = std::make_shared<std::vector<char>>((const char *)src,
                                                                                       (const char *)src + bytes);
        enqueue([dst, staged]() { memcpy(dst, staged->data(), staged->size()); });
    } else {
        enqueue([dst, src, bytes]() { memmove(dst, src, bytes); });
    }
    if (!async || (!dst_dev && !is_pinned(dst, bytes))) wait_host(); /* to pageable memory: returns when done */
    return sticky;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    return copy(dst, src, bytes, kind, NULL, false);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s)
{
    return copy(dst, src, bytes, kind, s, true);
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (sticky) return sticky;
    cudaError_t e = check_stream("cudaMemsetAsync", s);
    if (e) return e;
    if (bytes == 0) return cudaSuccess;
    if (!is_device(dst, bytes))
        return fail(cudaErrorInvalidValue, "cudaMemsetAsync of %zu bytes at %p: not (all) device memory", bytes, dst);
    enqueue([dst, value, bytes]() { memset(dst, value, bytes); });
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    (void)flags;
    emu_stream_impl *impl = new emu_stream_impl();
    *s = (cudaStream_t)impl;
    streams.insert((const void *)impl);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    cudaError_t e = check_stream("cudaStreamSynchronize", s);
    if (e) return e;
    wait_host();
    return sticky;
}

struct emu_event_impl {
    bool recorded;
};

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned flags)
{
    (void)flags;
    *ev = (cudaEvent_t) new emu_event_impl{false};
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    cudaError_t e = check_stream("cudaEventRecord", s);
    if (e) return e;
    ((emu_event_impl *)ev)->recorded = true;
    return sticky;
}

cudaError_t cudaEventSynchronize(cudaEvent_t ev)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (!((emu_event_impl *)ev)->recorded) return cudaSuccess;
    wait_host();
    return sticky;
}

cudaError_t cudaEventDestroy(cudaEvent_t ev)
{
    delete (emu_event_impl *)ev;
    return cudaSuccess;
}

/* ---- cuBLAS -------------------------------------------------------------------------------- */

struct emu_blas_impl {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = (cublasHandle_t) new emu_blas_impl{NULL};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    delete (emu_blas_impl *)h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    ((emu_blas_impl *)h)->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    }
    return "unknown cuBLAS status";
}

/* the extent in elements of a column-major operand rows x cols (ld >= rows) */
static size_t extent(int rows, int cols, int ld) { return rows == 0 || cols == 0 ? 0 : (size_t)ld * (cols - 1) + rows; }

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    cudaStream_t s = ((emu_blas_impl *)h)->stream;
    int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
        ldc < (m > 1 ? m : 1)) {
        fail(cudaErrorInvalidValue, "cublasSgemm: m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    size_t ea = extent(ar, ac, lda), eb = extent(br, bc, ldb), ec = extent(m, n, ldc);
    bool ok = check_stream("cublasSgemm", s) == cudaSuccess && is_device(C, (size_t)(sC * (batch - 1) + ec) * 4) &&
              (k == 0 || (is_device(A, (size_t)(sA * (batch - 1) + ea) * 4) &&
                          is_device(B, (size_t)(sB * (batch - 1) + eb) * 4)));
    if (!ok || sticky) {
        if (!sticky) fail(cudaErrorInvalidValue, "cublasSgemm: an operand is not (all) device memory or the stream is wrong");
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    float al = *alpha, be = *beta; /* host scalars (the default pointer mode) */
    enqueue([=]() {
        for (int i = 0; i < batch; i++)
            cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                        tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al, A + sA * i, lda, B + sB * i, ldb,
                        be, C + sC * i, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc)
{
    return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

/* ---- counters for the specs ------------------------------------------------------------------ */

EMU_API void sl_cudaemu_counters(int64_t *launches, int64_t *waits, int64_t *mallocs)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    *launches = n_launches;
    *waits = n_waits;
    *mallocs = n_mallocs;
}

EMU_API void sl_cudaemu_discard(int on)
{
    std::lock_guard<std::recursive_mutex> g(big_lock);
    flush();
    discarding = on != 0;
}
