/*
 * loader.c -- loading spike-file samples into batches, ahead of training,
 * in worker threads.
 *
 * One sample = one spike file read, polarities shifted by their minimum (as
 * the reference's event()), binned into a (C, H, W, T) block (1/Ts per
 * spike, sl_events_to_tensor semantics).  sl_sample_load does that for one
 * file into caller memory; the training loop's single-threaded path and the
 * workers both use it, so they produce identical batches.
 *
 * The worker pipeline: an epoch is a list of files in batch order.  Batch b
 * goes to slot b % depth.  A slot cycles EMPTY (no buffer) -> FREE (the
 * consumer provided input/target buffers) -> FILLING (a worker claimed
 * batch b) -> READY -> EMPTY (the consumer took it).  Workers claim batches
 * in order, at most `depth` ahead of the consumer (the bounded queue);
 * several batches fill concurrently.  A failed file puts its error into the
 * slot, and sl_loader_next reports it in the consumer's thread.
 */
#define _GNU_SOURCE
#include "../internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int sl_sample_load(const char *path, int format, int C, int H, int W, int T, double Ts, int mode, float *dst)
{
    int64_t n = sl_spikefile_count(path, format);
    if (n < 0) return (int)n;
    int32_t *x = malloc(sizeof(int32_t) * (size_t)(n + 1)), *y = malloc(sizeof(int32_t) * (size_t)(n + 1));
    int32_t *p = malloc(sizeof(int32_t) * (size_t)(n + 1));
    double *t = malloc(sizeof(double) * (size_t)(n + 1));
    int rc = 0;
    if (!x || !y || !p || !t) rc = sl_errorf_code(SL_ENOMEM, "loader: out of memory reading '%s'", path);
    if (!rc) rc = sl_spikefile_read(path, format, n, x, y, p, t, NULL);
    if (!rc && n > 0) {
        int32_t pmin = p[0];
        for (int64_t i = 1; i < n; i++)
            if (p[i] < pmin) pmin = p[i];
        for (int64_t i = 0; i < n; i++) p[i] -= pmin;
        int32_t shape[4] = {C, H, W, T};
        sl_tensor view;
        memset(&view, 0, sizeof view);
        view.data = dst;
        view.ndim = 4;
        memcpy(view.shape, shape, sizeof shape);
        view.stride[3] = 1;
        view.stride[2] = T;
        view.stride[1] = (int64_t)W * T;
        view.stride[0] = (int64_t)H * W * T;
        view.numel = (int64_t)C * H * W * T;
        view.device = SL_CPU;
        /* 1-D files bin into (P, 1, X, T): no y */
        rc = sl_events_to_tensor(&view, n, x, format == 0 ? NULL : y, p, t, Ts, 0, mode);
    }
    free(x);
    free(y);
    free(p);
    free(t);
    return rc;
}

enum { S_EMPTY, S_FREE, S_FILLING, S_READY };

typedef struct {
    int state, batch, count, failed;
    float *input, *target;
    char err[512];
} slot_t;

struct sl_loader {
    int workers, depth, format, C, H, W, T, mode, classes;
    double Ts;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    slot_t *slots;
    /* the epoch */
    char **paths;
    int32_t *labels;
    int nsamples, batch, nbatches, next_claim, next_take, running, quit;
};

static void fill(sl_loader *L, slot_t *s, int b)
{
    int64_t per = (int64_t)L->C * L->H * L->W * L->T;
    int lo = b * L->batch, hi = lo + L->batch < L->nsamples ? lo + L->batch : L->nsamples;
    memset(s->input, 0, sizeof(float) * (size_t)(per * (hi - lo)));
    memset(s->target, 0, sizeof(float) * (size_t)(L->classes * (hi - lo)));
    s->count = hi - lo;
    s->failed = 0;
    for (int i = lo; i < hi; i++) {
        int rc = sl_sample_load(L->paths[i], L->format, L->C, L->H, L->W, L->T, L->Ts, L->mode,
                                s->input + per * (i - lo));
        if (rc) {
            s->failed = 1;
            snprintf(s->err, sizeof s->err, "%s", sl_last_error());
            return;
        }
        int32_t lab = L->labels[i];
        if (lab >= 0 && lab < L->classes) s->target[(int64_t)(i - lo) * L->classes + lab] = 1.0f;
    }
}

static void *worker(void *arg)
{
    sl_loader *L = arg;
    pthread_mutex_lock(&L->lock);
    for (;;) {
        while (!L->quit && !(L->running && L->next_claim < L->nbatches &&
                             L->slots[L->next_claim % L->depth].state == S_FREE))
            pthread_cond_wait(&L->cond, &L->lock);
        if (L->quit) break;
        int b = L->next_claim++;
        slot_t *s = &L->slots[b % L->depth];
        s->state = S_FILLING;
        s->batch = b;
        pthread_mutex_unlock(&L->lock);
        fill(L, s, b);
        pthread_mutex_lock(&L->lock);
        s->state = S_READY;
        pthread_cond_broadcast(&L->cond);
    }
    pthread_mutex_unlock(&L->lock);
    return NULL;
}

sl_loader *sl_loader_new(int workers, int depth, int format, int C, int H, int W, int T, double Ts, int mode,
                         int classes)
{
    if (workers < 1 || depth < 1 || C < 1 || H < 1 || W < 1 || T < 1 || !(Ts > 0) || classes < 1) {
        sl_errorf("Loader: invalid worker count, queue depth, sample shape or class count");
        return NULL;
    }
    sl_loader *L = calloc(1, sizeof *L);
    if (!L) return NULL;
    L->workers = workers;
    L->depth = depth;
    L->format = format;
    L->C = C;
    L->H = H;
    L->W = W;
    L->T = T;
    L->Ts = Ts;
    L->mode = mode;
    L->classes = classes;
    L->slots = calloc((size_t)depth, sizeof(slot_t));
    L->threads = calloc((size_t)workers, sizeof(pthread_t));
    if (!L->slots || !L->threads) {
        free(L->slots);
        free(L->threads);
        free(L);
        sl_errorf_code(SL_ENOMEM, "Loader: out of memory");
        return NULL;
    }
    pthread_mutex_init(&L->lock, NULL);
    pthread_cond_init(&L->cond, NULL);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&L->threads[i], NULL, worker, L) != 0) {
            L->workers = i;
            sl_loader_free(L);
            sl_errorf("Loader: cannot start worker threads");
            return NULL;
        }
    }
    return L;
}

static void clear_epoch(sl_loader *L)
{
    if (L->paths)
        for (int i = 0; i < L->nsamples; i++) free(L->paths[i]);
    free(L->paths);
    free(L->labels);
    L->paths = NULL;
    L->labels = NULL;
    L->nsamples = 0;
}

/* wait until no worker is filling, then stop handing out batches */
void sl_loader_stop(sl_loader *L)
{
    pthread_mutex_lock(&L->lock);
    L->running = 0;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < L->depth; i++) busy |= L->slots[i].state == S_FILLING;
        if (!busy) break;
        pthread_cond_wait(&L->cond, &L->lock);
    }
    for (int i = 0; i < L->depth; i++)
        if (L->slots[i].state == S_READY) L->slots[i].state = S_FREE;
    clear_epoch(L);
    pthread_mutex_unlock(&L->lock);
}

int sl_loader_start(sl_loader *L, int nsamples, const char **paths, const int32_t *labels, int batch)
{
    if (nsamples < 0 || batch < 1) return sl_errorf("Loader: invalid sample count or batch size");
    for (int i = 0; i < nsamples; i++)
        if (!paths[i]) return sl_errorf("Loader: sample %d of the epoch has no file path (NULL)", i + 1);
    sl_loader_stop(L);
    pthread_mutex_lock(&L->lock);
    L->paths = calloc((size_t)(nsamples + 1), sizeof(char *));
    L->labels = malloc(sizeof(int32_t) * (size_t)(nsamples + 1));
    if (!L->paths || !L->labels) {
        clear_epoch(L);
        pthread_mutex_unlock(&L->lock);
        return sl_errorf_code(SL_ENOMEM, "Loader: out of memory");
    }
    for (int i = 0; i < nsamples; i++) {
        L->paths[i] = strdup(paths[i]);
        L->labels[i] = labels[i];
        if (!L->paths[i]) {
            L->nsamples = i;
            clear_epoch(L);
            pthread_mutex_unlock(&L->lock);
            return sl_errorf_code(SL_ENOMEM, "Loader: out of memory");
        }
    }
    L->nsamples = nsamples;
    L->batch = batch;
    L->nbatches = (nsamples + batch - 1) / batch;
    L->next_claim = 0;
    L->next_take = 0;
    L->running = 1;
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->lock);
    return 0;
}

int sl_loader_provide(sl_loader *L, int slot, float *input, float *target)
{
    if (slot < 0 || slot >= L->depth) return sl_errorf("Loader: slot %d out of range", slot);
    pthread_mutex_lock(&L->lock);
    slot_t *s = &L->slots[slot];
    if (s->state == S_FILLING || s->state == S_READY) {
        pthread_mutex_unlock(&L->lock);
        return sl_errorf("Loader: slot %d is in use", slot);
    }
    s->input = input;
    s->target = target;
    s->state = S_FREE;
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->lock);
    return 0;
}

/* wait for the next batch in order: *slot is its slot, or -1 at the end of
   the epoch; returns 0, or an error code (a file that failed to load) */
int sl_loader_next(sl_loader *L, int *slot, int *count)
{
    *slot = -1;
    *count = 0;
    pthread_mutex_lock(&L->lock);
    if (!L->running || L->next_take >= L->nbatches) {
        pthread_mutex_unlock(&L->lock);
        return 0;
    }
    int b = L->next_take, si = b % L->depth;
    slot_t *s = &L->slots[si];
    while (!(s->state == S_READY && s->batch == b)) {
        if (s->state == S_EMPTY) {
            pthread_mutex_unlock(&L->lock);
            return sl_errorf("Loader: slot %d has no buffer (provide one before asking for batch %d)", si, b + 1);
        }
        pthread_cond_wait(&L->cond, &L->lock);
    }
    s->state = S_EMPTY;
    L->next_take++;
    int failed = s->failed;
    char err[512];
    memcpy(err, s->err, sizeof err);
    pthread_mutex_unlock(&L->lock);
    if (failed) {
        sl_set_error(err);
        return SL_EIO;
    }
    *slot = si;
    *count = s->count;
    return 0;
}

void sl_loader_free(sl_loader *L)
{
    if (!L) return;
    pthread_mutex_lock(&L->lock);
    L->quit = 1;
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->lock);
    for (int i = 0; i < L->workers; i++) pthread_join(L->threads[i], NULL);
    clear_epoch(L);
    pthread_mutex_destroy(&L->lock);
    pthread_cond_destroy(&L->cond);
    free(L->slots);
    free(L->threads);
    free(L);
}
