/*
 * tensor.c -- storage, the caching allocator, views, copy and fill.
 *
 * Storage is reference counted and shared by views.  Memory comes from a
 * per-device caching allocator: a freed block goes to a free list keyed by its
 * size class (sizes rounded up to 1/8 of a power of two), so a training loop
 * that allocates the same shapes every step is served from the cache instead
 * of malloc.  The cache is bounded (sl_mem_set_cache_limit); past the limit
 * blocks go back to the system.
 *
 * LuaJIT's collector does not see these bytes.  The allocator therefore keeps
 * a threshold on live bytes; sl_mem_pressure() tells the Lua layer when to run
 * a collection cycle, after which sl_mem_collected() moves the threshold to
 * twice the surviving live memory (at least 256 MB more), or to 1.5 times the
 * most that survived a recent collection when that is higher.  That keeps a
 * training loop's footprint bounded without the user calling
 * collectgarbage(), and without collecting while a step builds activations
 * that are all live.
 *
 * sl_mem_pressure_for(bytes) also asks for one (2, where the threshold
 * gives 1) before a large allocation (256 KB or more) that the cache cannot
 * serve, once 16 MB, and the gap the Lua layer set from its heap
 * (sl_mem_set_reuse_gap: a collection's cost grows with the heap), have
 * been allocated since the last one (sl_mem_pressure_dev: the same for the
 * GPU's cache, where it also spares a cudaMalloc and keeps the device
 * footprint near one training step's, and on the GPU also every 128 MB
 * whether the cache could serve the block or not): the garbage it returns to the cache is
 * memory already mapped, while a fresh block costs a page fault per page on
 * first touch (a loop of 1024^3 products took 60% longer with fresh results
 * than with reused ones).
 */
#define _GNU_SOURCE
#include "hostdev.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Under AddressSanitizer (tools/sanitize.sh) the caching allocator tells it
   which bytes are in use: the slack of a size class past the bytes asked
   for, and a cached block but for its list link, are poisoned, so a kernel
   that runs past its tensor or reads a freed one is reported as in a
   malloc'd block.  Without ASan these are no-ops. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SL_ASAN_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SL_ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SL_ASAN_POISON(p, n) ((void)(p), (void)(n))
#define SL_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct sl_storage {
    void *ptr;
    size_t bytes;       /* size class actually allocated */
    size_t size;        /* bytes requested: the bound for views */
    int device;
    atomic_int refs;
    uint64_t version; /* in-place writes so far (autograd checks saved inputs) */
};

/* ---- CUDA memory hooks (resolved lazily from libslayer_cuda.so) ---------- */
typedef void *(*cuda_alloc_fn)(size_t);
typedef void (*cuda_free_fn)(void *, size_t);
typedef int (*cuda_copy_fn)(void *, const void *, size_t, int);

static cuda_alloc_fn cuda_alloc;
static cuda_free_fn cuda_free;
static cuda_copy_fn cuda_copy;

static int cuda_hooks(void)
{
    if (cuda_alloc) return 0;
    cuda_alloc_fn a = (cuda_alloc_fn)sl_cuda_symbol("sl_cuda_malloc");
    cuda_free_fn f = (cuda_free_fn)sl_cuda_symbol("sl_cuda_free");
    cuda_copy_fn c = (cuda_copy_fn)sl_cuda_symbol("sl_cuda_memcpy");
    if (!a || !f || !c) return SL_EDEVICE;
    cuda_free = f;
    cuda_copy = c;
    cuda_alloc = a;
    return 0;
}

/* ---- CPU caching allocator ----------------------------------------------- */

#define N_CLASSES 512
#define MIN_PRESSURE_BYTES ((int64_t)256 << 20)
#define REUSE_MIN_BYTES ((int64_t)256 << 10)
#define REUSE_AFTER_BYTES ((int64_t)16 << 20)
/* sooner on the GPU: its memory is scarcer, and a cudaMalloc dearer than a
   collection (W1 on the host emulator: 1.1x the footprint of a collection
   every step, against 1.4x with the CPU's 16 MB and 1.9x without) */
#define GPU_REUSE_AFTER_BYTES ((int64_t)4 << 20)
/* and on the GPU, once this much was allocated since the last collection,
   even when the cache could serve the block: in a steady training loop the
   cache always can, and the replaced activations a script's variables
   dropped would stay live until the step's end (W2 at batch 12, on the host
   emulator: a peak of 1,129 MB live, 965 MB with this; PyTorch frees them at
   once).  A collection costs the host ~0.1-0.2 ms with a small Lua heap
   (the reuse gap spaces them out with a large one), less than the device
   spends writing and reading 128 MB, so the host stays ahead of the GPU. */
#define GPU_EAGER_BYTES ((int64_t)128 << 20)

typedef struct free_block {
    struct free_block *next;
    size_t bytes; /* set when the block is dropped from the cache */
} free_block;

static struct {
    pthread_mutex_t lock;
    free_block *lists[N_CLASSES];
    int64_t cached, live, peak, calls, sys, limit;
    int64_t threshold, since; /* since: bytes allocated since the last collection */
} cpu = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0, 0, 0, 0, -1, MIN_PRESSURE_BYTES, 0};

/* Blocks of HUGE_MIN_BYTES or more are mapped directly, aligned to 2 MB and
   marked for transparent huge pages: their first touch then costs one fault
   per 2 MB instead of one per 4 KB (W2's first training step faults in
   2.4 GB: 630,000 faults, 4 of its 5.4 s, on a virtual machine).  Where the
   kernel gives no huge pages the advice is ignored and nothing changes. */
#define HUGE_ALIGN ((size_t)2 << 20)
#define HUGE_MIN_BYTES ((size_t)4 << 20)

static void *sys_alloc(size_t r)
{
    if (r < HUGE_MIN_BYTES) return aligned_alloc(64, r);
    size_t len = r + HUGE_ALIGN;
    char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    char *p = (char *)(((uintptr_t)base + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    /* keep exactly [p, p + r): r is a multiple of the page size here */
    if (p > base) munmap(base, (size_t)(p - base));
    if (base + len > p + r) munmap(p + r, (size_t)(base + len - (p + r)));
#ifdef MADV_HUGEPAGE
    madvise(p, r, MADV_HUGEPAGE);
#endif
    return p;
}

static void sys_free(void *p, size_t r)
{
    if (r < HUGE_MIN_BYTES) free(p);
    else munmap(p, r);
}

/* default cache bound: a quarter of physical memory, at least 1 GiB */
static int64_t default_cache_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    int64_t quarter = pages > 0 && size > 0 ? (int64_t)pages * size / 4 : 0;
    return quarter > ((int64_t)1 << 30) ? quarter : ((int64_t)1 << 30);
}

static size_t size_class(size_t bytes, int *index)
{
    if (bytes <= 512) {
        size_t r = (bytes + 63) & ~(size_t)63;
        if (r == 0) r = 64;
        *index = (int)(r / 64);
        return r;
    }
    int e, sub;
    size_t r = sl_size_class_eighths(bytes, &e, &sub);
    *index = 16 + e * 8 + sub;
    return r;
}

static void cpu_trim(int64_t limit);

static void *cpu_alloc(size_t bytes, size_t *actual)
{
    int idx;
    size_t r = size_class(bytes, &idx);
    void *p = NULL;
    pthread_mutex_lock(&cpu.lock);
    cpu.calls++;
    if (idx < N_CLASSES && cpu.lists[idx]) {
        free_block *b = cpu.lists[idx];
        cpu.lists[idx] = b->next;
        SL_ASAN_UNPOISON(b, r);
        cpu.cached -= (int64_t)r;
        p = b;
    }
    pthread_mutex_unlock(&cpu.lock);
    if (!p) {
        p = sys_alloc(r);
        if (!p) { /* the cache's blocks may be what is missing: give them back and try again */
            cpu_trim(0);
            p = sys_alloc(r);
        }
        if (!p) return NULL;
        pthread_mutex_lock(&cpu.lock);
        cpu.sys++;
        pthread_mutex_unlock(&cpu.lock);
    }
    pthread_mutex_lock(&cpu.lock);
    cpu.live += (int64_t)r;
    cpu.since += (int64_t)r;
    if (cpu.live > cpu.peak) cpu.peak = cpu.live;
    pthread_mutex_unlock(&cpu.lock);
    SL_ASAN_POISON((char *)p + bytes, r - bytes);
    *actual = r;
    return p;
}

static void cpu_release(void *p, size_t r)
{
    int idx;
    size_class(r, &idx);
    bool keep = false;
    pthread_mutex_lock(&cpu.lock);
    cpu.live -= (int64_t)r;
    if (cpu.limit < 0) cpu.limit = default_cache_limit();
    if (idx < N_CLASSES && cpu.cached + (int64_t)r <= cpu.limit) {
        free_block *b = (free_block *)p;
        SL_ASAN_UNPOISON(b, sizeof *b);
        b->next = cpu.lists[idx];
        cpu.lists[idx] = b;
        SL_ASAN_POISON((char *)p + sizeof *b, r - sizeof *b);
        cpu.cached += (int64_t)r;
        keep = true;
    }
    pthread_mutex_unlock(&cpu.lock);
    if (!keep) {
        SL_ASAN_UNPOISON(p, r); /* free() and munmap() see the whole block */
        sys_free(p, r);
    }
}

void *sl_scratch_alloc(size_t bytes)
{
    size_t r;
    return cpu_alloc(bytes ? bytes : 1, &r);
}

void sl_scratch_free(void *p, size_t bytes)
{
    if (!p) return;
    int idx;
    cpu_release(p, size_class(bytes ? bytes : 1, &idx));
}

void sl_mem_get_stats(int device, sl_mem_stats *out)
{
    memset(out, 0, sizeof *out);
    if (device == SL_CUDA) {
        void (*fn)(sl_mem_stats *) = (void (*)(sl_mem_stats *))sl_cuda_symbol("sl_cuda_mem_stats");
        if (fn) fn(out);
        return;
    }
    pthread_mutex_lock(&cpu.lock);
    out->live_bytes = cpu.live;
    out->cached_bytes = cpu.cached;
    out->peak_live_bytes = cpu.peak;
    out->alloc_calls = cpu.calls;
    out->system_allocs = cpu.sys;
    out->cache_limit = cpu.limit < 0 ? default_cache_limit() : cpu.limit;
    pthread_mutex_unlock(&cpu.lock);
}

static void cpu_trim(int64_t limit)
{
    free_block *drop = NULL;
    pthread_mutex_lock(&cpu.lock);
    for (int i = N_CLASSES - 1; i >= 0 && cpu.cached > limit; i--) {
        while (cpu.lists[i] && cpu.cached > limit) {
            free_block *b = cpu.lists[i];
            cpu.lists[i] = b->next;
            size_t r = i < 16 ? (size_t)i * 64
                              : ((size_t)1 << ((i - 16) / 8)) +
                                    (size_t)((i - 16) % 8) * ((size_t)1 << ((i - 16) / 8 - 3));
            cpu.cached -= (int64_t)r;
            b->bytes = r;
            b->next = drop;
            drop = b;
        }
    }
    pthread_mutex_unlock(&cpu.lock);
    while (drop) {
        free_block *n = drop->next;
        size_t r = drop->bytes;
        SL_ASAN_UNPOISON(drop, r);
        sys_free(drop, r);
        drop = n;
    }
}

void sl_mem_set_cache_limit(int device, int64_t bytes)
{
    if (device == SL_CUDA) {
        void (*fn)(int64_t) = (void (*)(int64_t))sl_cuda_symbol("sl_cuda_set_cache_limit");
        if (fn) fn(bytes);
        return;
    }
    pthread_mutex_lock(&cpu.lock);
    cpu.limit = bytes < 0 ? 0 : bytes;
    pthread_mutex_unlock(&cpu.lock);
    cpu_trim(cpu.limit);
}

void sl_mem_empty_cache(int device)
{
    if (device == SL_CUDA) {
        void (*fn)(void) = (void (*)(void))sl_cuda_symbol("sl_cuda_empty_cache");
        if (fn) fn();
        return;
    }
    cpu_trim(0);
}

static atomic_llong gpu_live;
static atomic_llong gpu_since; /* GPU bytes allocated since the last collection */
static atomic_llong reuse_gap; /* sl_mem_set_reuse_gap: CPU + GPU bytes between reuse collections */

void sl_mem_set_reuse_gap(int64_t bytes)
{
    atomic_store(&reuse_gap, bytes < 0 ? 0 : bytes);
}

static atomic_llong gpu_survived; /* GPU bytes live after the last collection */

/* Device memory is bounded, unlike the host's: collect before tensors, live
   or garbage, would take more than 3/4 of what the device (or the process's
   limit) allows (the allocator rounds blocks up by up to 1/8), once a quarter
   of the room the last collection left was allocated since (at least 1 MB,
   at most 1/16 of the device): a working set near the top collects as
   often as its garbage can fill that room, not at every allocation.  An
   allocation that fails all the same is collected for and retried by the
   Lua layer. */
static int gpu_nearly_full(int64_t bytes)
{
    static int64_t (*capacity)(void);
    static int resolved;
    if (!resolved) {
        capacity = (int64_t (*)(void))sl_cuda_symbol("sl_cuda_capacity");
        resolved = 1;
    }
    int64_t cap = capacity ? capacity() : -1;
    if (cap <= 0 || atomic_load(&gpu_live) + bytes <= cap - cap / 4) return 0;
    int64_t every = (cap - atomic_load(&gpu_survived)) / 4;
    if (every > cap / 16) every = cap / 16;
    if (every < ((int64_t)1 << 20)) every = (int64_t)1 << 20;
    return atomic_load(&gpu_since) >= every;
}

int sl_mem_pressure_dev(int64_t bytes, int device)
{
    int64_t live = __atomic_load_n(&cpu.live, __ATOMIC_RELAXED) + atomic_load(&gpu_live);
    if (live > __atomic_load_n(&cpu.threshold, __ATOMIC_RELAXED)) return 1;
    if (device == SL_CUDA && gpu_nearly_full(bytes)) return 1;
    if (bytes < REUSE_MIN_BYTES) return 0;
    if (sl_mem_since_bytes() < atomic_load(&reuse_gap)) return 0;
    if (device == SL_CUDA) {
        /* the GPU's garbage, collected, is cached device memory: reusing it
           spares a cudaMalloc and keeps the footprint near one step's */
        if (atomic_load(&gpu_since) < GPU_REUSE_AFTER_BYTES) return 0;
        if (atomic_load(&gpu_since) >= GPU_EAGER_BYTES) return 2;
        static int (*cache_has)(size_t);
        if (!cache_has) cache_has = (int (*)(size_t))sl_cuda_symbol("sl_cuda_cache_has");
        return cache_has && !cache_has((size_t)bytes) ? 2 : 0;
    }
    if (__atomic_load_n(&cpu.since, __ATOMIC_RELAXED) < REUSE_AFTER_BYTES) return 0;
    int idx;
    size_class((size_t)bytes, &idx);
    pthread_mutex_lock(&cpu.lock);
    int empty = idx >= N_CLASSES || cpu.lists[idx] == NULL;
    pthread_mutex_unlock(&cpu.lock);
    return empty ? 2 : 0;
}

int sl_mem_pressure_for(int64_t bytes)
{
    return sl_mem_pressure_dev(bytes, SL_CPU);
}

int sl_mem_pressure(void)
{
    return sl_mem_pressure_for(0);
}

int64_t sl_mem_since_bytes(void)
{
    return __atomic_load_n(&cpu.since, __ATOMIC_RELAXED) + atomic_load(&gpu_since);
}

int64_t sl_mem_live_bytes(void)
{
    return __atomic_load_n(&cpu.live, __ATOMIC_RELAXED) + atomic_load(&gpu_live);
}

/* The most that survived a recent collection.  A training step's live
   memory swings from its parameters (after backward) to all its
   activations: from the small end, doubling alone would collect again and
   again while the forward pass builds activations that are all still live,
   freeing nothing (W2 at batch 12 on the CPU: two such collections per step,
   at 515 and 1055 MB live, after 34 MB survived the last backward).  Memory
   that a recent collection found live is expected back, so the threshold
   stays at 1.5 times the mark.  The mark decays faster the longer no
   collection has reached it (1/128 after the first that does not, then
   1/64, ... up to 1/2 per collection): a step's cycle reaches it again
   within about six collections, while a one-off peak (a large evaluation
   batch, a dataset load) is forgotten within about eight. */
static int64_t live_mark;
static int mark_streak; /* collections since one reached the mark */

void sl_mem_collected(void)
{
    pthread_mutex_lock(&cpu.lock);
    int64_t live = cpu.live + atomic_load(&gpu_live);
    if (live >= live_mark) {
        live_mark = live;
        mark_streak = 0;
    } else {
        if (mark_streak < 7) mark_streak++;
        live_mark -= live_mark >> (8 - mark_streak);
        if (live > live_mark) live_mark = live;
    }
    atomic_store(&gpu_survived, atomic_load(&gpu_live));
    int64_t t = live * 2 > live + MIN_PRESSURE_BYTES ? live * 2 : live + MIN_PRESSURE_BYTES;
    cpu.threshold = t > live_mark + live_mark / 2 ? t : live_mark + live_mark / 2;
    cpu.since = 0;
    atomic_store(&gpu_since, 0);
    pthread_mutex_unlock(&cpu.lock);
}

/* ---- storage ------------------------------------------------------------- */

static sl_storage *storage_new(size_t bytes, int device)
{
    sl_storage *s = malloc(sizeof *s);
    if (!s) return NULL;
    s->device = device;
    s->version = 0;
    atomic_init(&s->refs, 1);
    s->ptr = NULL;
    s->bytes = 0;
    s->size = bytes;
    if (bytes == 0) return s;
    if (device == SL_CUDA) {
        if (cuda_hooks()) {
            free(s);
            return NULL;
        }
        s->ptr = cuda_alloc(bytes);
        if (!s->ptr) { /* the allocator said why (the device's free memory, or the process's limit) */
            free(s);
            return NULL;
        }
        s->bytes = bytes;
        atomic_fetch_add(&gpu_live, (long long)bytes);
        atomic_fetch_add(&gpu_since, (long long)bytes);
        return s;
    }
    s->ptr = cpu_alloc(bytes, &s->bytes);
    if (!s->ptr) {
        sl_errorf_code(SL_ENOMEM, "out of memory allocating %zu bytes", bytes);
        free(s);
        return NULL;
    }
    return s;
}

static void storage_release(sl_storage *s)
{
    if (!s) return;
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    if (s->ptr) {
        if (s->device == SL_CUDA) {
            cuda_free(s->ptr, s->bytes);
            atomic_fetch_sub(&gpu_live, (long long)s->bytes);
        } else {
            cpu_release(s->ptr, s->bytes);
        }
    }
    free(s);
}

/* ---- tensors ------------------------------------------------------------- */

static void set_contiguous_strides(sl_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d];
    }
}

sl_tensor *sl_tensor_new(int ndim, const int32_t *shape, int device)
{
    if (ndim < 0 || ndim > SL_MAX_DIMS) {
        sl_errorf("tensor: expected 0 to %d dimensions, got %d", SL_MAX_DIMS, ndim);
        return NULL;
    }
    if (device != SL_CPU && device != SL_CUDA) {
        sl_errorf_code(SL_EDEVICE, "tensor: unknown device %d", device);
        return NULL;
    }
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            sl_errorf("tensor: negative size %d in dimension %d", shape[d], d + 1);
            return NULL;
        }
        n *= shape[d];
        if (n > ((int64_t)1 << 40)) {
            sl_errorf("tensor: %lld elements is too large", (long long)n);
            return NULL;
        }
    }
    sl_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        sl_errorf_code(SL_ENOMEM, "tensor: out of memory");
        return NULL;
    }
    t->ndim = ndim;
    t->device = device;
    memcpy(t->shape, shape, sizeof(int32_t) * (size_t)ndim);
    set_contiguous_strides(t);
    t->numel = n;
    t->storage = storage_new((size_t)n * sizeof(float), device);
    if (!t->storage) {
        free(t);
        return NULL;
    }
    t->data = t->storage->ptr;
    return t;
}

sl_tensor *sl_tensor_view(const sl_tensor *src, int ndim, const int32_t *shape,
                          const int64_t *stride, int64_t offset)
{
    if (ndim < 0 || ndim > SL_MAX_DIMS) {
        sl_errorf("view: expected 0 to %d dimensions, got %d", SL_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t n = 1, lo = offset, hi = offset;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || stride[d] < 0) {
            sl_errorf("view: negative size or stride in dimension %d", d + 1);
            return NULL;
        }
        if (__builtin_mul_overflow(n, (int64_t)shape[d], &n) || n > ((int64_t)1 << 40)) {
            sl_errorf("view: more than 2^40 elements");
            return NULL;
        }
        int64_t span; /* the last index along d: checked, so no wrap can pass the bound below */
        if (shape[d] > 0 && (__builtin_mul_overflow((int64_t)(shape[d] - 1), stride[d], &span) ||
                             __builtin_add_overflow(hi, span, &hi))) {
            sl_errorf("view: stride %lld in dimension %d reaches past 2^63 elements", (long long)stride[d], d + 1);
            return NULL;
        }
    }
    int64_t cap = (int64_t)(src->storage->size / sizeof(float));
    if (n > 0 && (lo < 0 || hi >= cap)) {
        sl_errorf("view: elements %lld..%lld outside storage of %lld elements", (long long)lo,
                  (long long)hi, (long long)cap);
        return NULL;
    }
    sl_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        sl_errorf_code(SL_ENOMEM, "view: out of memory");
        return NULL;
    }
    t->ndim = ndim;
    t->device = src->device;
    memcpy(t->shape, shape, sizeof(int32_t) * (size_t)ndim);
    memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
    t->numel = n;
    t->offset = offset;
    t->storage = src->storage;
    atomic_fetch_add(&t->storage->refs, 1);
    t->data = (float *)t->storage->ptr + offset;
    return t;
}

void sl_tensor_free(sl_tensor *t)
{
    if (!t) return;
    storage_release(t->storage);
    free(t);
}

int sl_tensor_is_contiguous(const sl_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return 0;
        s *= t->shape[d];
    }
    return 1;
}

/* ---- copy and fill ------------------------------------------------------- */

/* Merge adjacent dimensions that are contiguous in both a and b (same
   shapes), leaving at most ndim dims in shape/sa/sb; returns the count. */
static int coalesce(int ndim, const int32_t *shape, const int64_t *sa, const int64_t *sb,
                    int64_t *oshape, int64_t *osa, int64_t *osb)
{
    int k = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        if (k > 0 && osa[k - 1] == shape[d] * sa[d] && osb[k - 1] == shape[d] * sb[d]) {
            oshape[k - 1] *= shape[d];
            osa[k - 1] = sa[d];
            osb[k - 1] = sb[d];
        } else {
            oshape[k] = shape[d];
            osa[k] = sa[d];
            osb[k] = sb[d];
            k++;
        }
    }
    if (k == 0) {
        oshape[0] = 1;
        osa[0] = osb[0] = 1;
        k = 1;
    }
    return k;
}

/* Visit the outer index space of a coalesced pair; for each row call the
   inner loop over the last dim. */
static void strided_copy(float *dst, const float *src, int k, const int64_t *shape,
                         const int64_t *sd, const int64_t *ss)
{
    int64_t rows = 1;
    for (int d = 0; d < k - 1; d++) rows *= shape[d];
    int64_t len = shape[k - 1], isd = sd[k - 1], iss = ss[k - 1];
    SL_FOR(r, rows, rows * len > 4 * SL_PAR_MIN && rows > 1, {
        int64_t od = 0, os = 0, rem = r;
        for (int d = k - 2; d >= 0; d--) {
            int64_t i = rem % shape[d];
            rem /= shape[d];
            od += i * sd[d];
            os += i * ss[d];
        }
        float *o = dst + od;
        const float *s = src + os;
        if (isd == 1 && iss == 1) {
            memcpy(o, s, (size_t)len * sizeof(float));
        } else {
            for (int64_t i = 0; i < len; i++) o[i * isd] = s[i * iss];
        }
    });
}

int sl_copy(sl_tensor *dst, const sl_tensor *src)
{
    char b1[128], b2[128];
    if (dst->numel != src->numel)
        return sl_errorf("copy: sizes differ (destination %s, source %s)",
                         sl_shape_str(dst, b1, sizeof b1), sl_shape_str(src, b2, sizeof b2));
    if (dst->numel == 0) return 0;
    if (dst->device == SL_CUDA && src->device == SL_CUDA) {
        /* on the GPU: any strides (views, expand, cat into narrowed views) */
        int (*fn)(sl_tensor *, const sl_tensor *) =
            (int (*)(sl_tensor *, const sl_tensor *))sl_cuda_symbol("sl_copy_cuda");
        return fn ? fn(dst, src) : SL_EDEVICE;
    }
    if (dst->device != src->device) {
        if (!sl_tensor_is_contiguous(dst) || !sl_tensor_is_contiguous(src))
            return sl_errorf("copy: copies involving the GPU need contiguous tensors");
        if (cuda_hooks()) return SL_EDEVICE;
        int kind = (src->device == SL_CUDA ? 1 : 0) | (dst->device == SL_CUDA ? 2 : 0);
        return cuda_copy(dst->data, src->data, (size_t)dst->numel * sizeof(float), kind);
    }
    int dc = sl_tensor_is_contiguous(dst), sc = sl_tensor_is_contiguous(src);
    if (dc && sc) {
        if (dst->data != src->data) {
            int64_t n = dst->numel;
            if (n > 8 * SL_PAR_MIN) {
#pragma omp parallel
                {
#ifdef _OPENMP
                    int nt = omp_get_num_threads(), id = omp_get_thread_num();
#else
                    int nt = 1, id = 0;
#endif
                    int64_t chunk = (n + nt - 1) / nt, lo = id * chunk;
                    int64_t hi = lo + chunk > n ? n : lo + chunk;
                    if (hi > lo) memmove(dst->data + lo, src->data + lo, (size_t)(hi - lo) * sizeof(float));
                }
            } else {
                memmove(dst->data, src->data, (size_t)n * sizeof(float));
            }
        }
        return 0;
    }
    /* bring both to the same logical shape */
    const int32_t *shape = dst->shape;
    int ndim = dst->ndim;
    int64_t sstride[SL_MAX_DIMS], dstride[SL_MAX_DIMS];
    memcpy(dstride, dst->stride, sizeof dstride);
    if (sl_same_shape(dst, src)) {
        memcpy(sstride, src->stride, sizeof sstride);
    } else if (sc) {
        int64_t s = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            sstride[d] = s;
            s *= shape[d];
        }
    } else if (dc) {
        shape = src->shape;
        ndim = src->ndim;
        memcpy(sstride, src->stride, sizeof sstride);
        int64_t s = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            dstride[d] = s;
            s *= shape[d];
        }
    } else {
        sl_tensor *tmp = sl_tensor_new(src->ndim, src->shape, SL_CPU);
        if (!tmp) return SL_ENOMEM;
        int rc = sl_copy(tmp, src);
        if (!rc) rc = sl_copy(dst, tmp);
        sl_tensor_free(tmp);
        return rc;
    }
    int64_t cs[SL_MAX_DIMS], cd[SL_MAX_DIMS], css[SL_MAX_DIMS];
    int k = coalesce(ndim, shape, dstride, sstride, cs, cd, css);
    strided_copy(dst->data, src->data, k, cs, cd, css);
    return 0;
}

int sl_fill(sl_tensor *t, float value)
{
    if (t->numel == 0) return 0;
    if (t->device == SL_CUDA) {
        int (*fn)(sl_tensor *, float) = (int (*)(sl_tensor *, float))sl_cuda_symbol("sl_fill_cuda");
        return fn ? fn(t, value) : SL_EDEVICE;
    }
    if (sl_tensor_is_contiguous(t)) {
        float *p = t->data;
        int64_t n = t->numel;
        if (value == 0.0f && !__builtin_signbit(value)) {
            SL_FOR(c, (n + 65535) / 65536, n > 8 * SL_PAR_MIN, {
                int64_t lo = c * 65536, hi = lo + 65536 > n ? n : lo + 65536;
                memset(p + lo, 0, (size_t)(hi - lo) * sizeof(float));
            });
        } else {
            SL_FOR(i, n, n > 8 * SL_PAR_MIN, p[i] = value;);
        }
        return 0;
    }
    int64_t cs[SL_MAX_DIMS], cd[SL_MAX_DIMS], dummy[SL_MAX_DIMS];
    int k = coalesce(t->ndim, t->shape, t->stride, t->stride, cs, cd, dummy);
    int64_t rows = 1;
    for (int d = 0; d < k - 1; d++) rows *= cs[d];
    int64_t len = cs[k - 1], is = cd[k - 1];
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0, rem = r;
        for (int d = k - 2; d >= 0; d--) {
            off += (rem % cs[d]) * cd[d];
            rem /= cs[d];
        }
        float *o = t->data + off;
        for (int64_t i = 0; i < len; i++) o[i * is] = value;
    }
    return 0;
}

int sl_copy_from_host(sl_tensor *dst, const float *src, int64_t n)
{
    if (n != dst->numel) return sl_errorf("copy: expected %lld values, got %lld", (long long)dst->numel, (long long)n);
    if (!sl_tensor_is_contiguous(dst)) return sl_errorf("copy: destination must be contiguous");
    if (n == 0) return 0;
    if (dst->device == SL_CUDA) {
        if (cuda_hooks()) return SL_EDEVICE;
        return cuda_copy(dst->data, src, (size_t)n * sizeof(float), 2);
    }
    memcpy(dst->data, src, (size_t)n * sizeof(float));
    return 0;
}

int sl_copy_to_host(float *dst, const sl_tensor *src, int64_t n)
{
    if (n != src->numel) return sl_errorf("copy: expected %lld values, got %lld", (long long)src->numel, (long long)n);
    if (!sl_tensor_is_contiguous(src)) return sl_errorf("copy: source must be contiguous");
    if (n == 0) return 0;
    if (src->device == SL_CUDA) {
        if (cuda_hooks()) return SL_EDEVICE;
        return cuda_copy(dst, src->data, (size_t)n * sizeof(float), 1);
    }
    memcpy(dst, src->data, (size_t)n * sizeof(float));
    return 0;
}

/* the storage's count of in-place writes, shared by all its views */
uint64_t sl_tensor_version(const sl_tensor *t) { return t->storage ? t->storage->version : 0; }

void sl_tensor_bump_version(sl_tensor *t)
{
    if (t->storage) t->storage->version++;
}
