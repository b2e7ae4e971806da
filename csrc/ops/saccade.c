/*
 * saccade.c -- static images to event streams, the way N-MNIST was recorded
 * (Orchard et al. 2015: an ATIS sensor on a pan-tilt unit makes three
 * saccades in front of a monitor showing the image).
 *
 * Model, per time step dt along the sensor's path:
 *   the image (intensity v in [0, 1]) is seen at a sub-pixel offset o(t)
 *   that moves linearly through the triangle A -> B -> C -> A, one saccade
 *   per side;  I(x, y, t) = bg + (1 - bg) * bilinear(v, x - o_x, y - o_y);
 *   L = log(I).  Each pixel keeps a reference level Lref (initialised to
 *   the first view) and a contrast threshold c_xy = c * (1 + mismatch * g),
 *   g ~ N(0, 1) fixed per pixel.  While L - Lref >= c_xy an ON event (p = 1)
 *   is emitted and Lref += c_xy; while Lref - L >= c_xy an OFF event (p = 0)
 *   and Lref -= c_xy.  A pixel that fired stays silent for `refractory` ms
 *   (its Lref does not move meanwhile, so the change is reported later).
 *   Timestamps are jittered uniformly within the step.  Optional background
 *   noise: each pixel emits an event of random polarity at `noise` Hz.
 * Everything random comes from one xorshift64* stream seeded by `seed`, so
 * the output is a pure function of (image, options, seed).
 */
#include "../internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double urand(rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (double)((r->s * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(rng_t *r)
{
    double u1 = urand(r), u2 = urand(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

struct sl_events {
    int64_t n, cap;
    int32_t *x, *y, *p;
    double *t;
};

void sl_events_free(sl_events *e)
{
    if (!e) return;
    free(e->x);
    free(e->y);
    free(e->p);
    free(e->t);
    free(e);
}

/* the message of the calling thread's last error without its "op: " prefix */
static const char *error_body(void)
{
    const char *m = sl_last_error(), *c = strstr(m, ": ");
    return c && c - m < 32 ? c + 2 : m;
}

/* Convert n images (contiguous, ih x iw each) and write image i as a .bs2
   file to paths[i], in parallel; seeds[i] seeds image i.  Every file is
   written under a temporary name (path.part) and renamed once all of them
   are complete, so a failure leaves none of the set behind. */
int sl_saccade_files(const float *images, int n, int ih, int iw, const sl_saccade_opts *o, const uint64_t *seeds,
                     const char **paths)
{
    char **part = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    if (!part) return sl_errorf_code(SL_ENOMEM, "saccadeToFiles: out of memory");
    int failed = 0, renamed = 0;
    char err[768] = {0};
    for (int i = 0; i < n && !failed; i++) {
        size_t len = strlen(paths[i]) + 6;
        part[i] = malloc(len);
        if (!part[i]) {
            failed = 1;
            snprintf(err, sizeof err, "saccadeToFiles: out of memory");
        } else {
            snprintf(part[i], len, "%s.part", paths[i]);
        }
    }
    SL_FOR(i, failed ? 0 : n, n > 1, {
        if (!failed) {
            sl_events *e = sl_saccade(images + (int64_t)i * ih * iw, ih, iw, o, seeds[i]);
            int rc = e ? sl_spikefile_write(part[i], 1, e->n, e->x, e->y, e->p, e->t, NULL) : SL_EINVAL;
            if (rc) {
#pragma omp critical(saccade_error)
                if (!failed) {
                    failed = 1;
                    snprintf(err, sizeof err, "saccadeToFiles: image %d ('%s'): %s", (int)i + 1, paths[i],
                             error_body());
                }
            }
            sl_events_free(e);
        }
    });
    for (; !failed && renamed < n; renamed++)
        if (rename(part[renamed], paths[renamed]) != 0) {
            failed = 1;
            snprintf(err, sizeof err, "saccadeToFiles: cannot rename '%s' to '%s': %s", part[renamed],
                     paths[renamed], strerror(errno));
            break;
        }
    for (int i = 0; i < n; i++) {
        if (failed && part[i]) remove(i < renamed ? paths[i] : part[i]);
        free(part[i]);
    }
    free(part);
    return failed ? sl_set_error(err) : 0;
}

int64_t sl_events_count(const sl_events *e) { return e->n; }
const int32_t *sl_events_x(const sl_events *e) { return e->x; }
const int32_t *sl_events_y(const sl_events *e) { return e->y; }
const int32_t *sl_events_p(const sl_events *e) { return e->p; }
const double *sl_events_t(const sl_events *e) { return e->t; }

/* bounds on the work and the output of one image (snn.io.saccade estimates
   the noise events against the second before any work) */
#define SACCADE_MAX_UPDATES 2.5e8      /* time steps x sensor pixels (about 8 s) */
#define SACCADE_MAX_EVENTS (1 << 26)   /* 1.3 GB of events */

/* 0, or -1 out of memory, or 1 at SACCADE_MAX_EVENTS */
static int push(sl_events *e, int x, int y, int p, double t)
{
    if (e->n >= SACCADE_MAX_EVENTS) return 1;
    if (e->n == e->cap) {
        int64_t cap = e->cap ? e->cap * 2 : 4096;
        int32_t *nx = realloc(e->x, sizeof(int32_t) * (size_t)cap);
        if (nx) e->x = nx;
        int32_t *ny = realloc(e->y, sizeof(int32_t) * (size_t)cap);
        if (ny) e->y = ny;
        int32_t *np = realloc(e->p, sizeof(int32_t) * (size_t)cap);
        if (np) e->p = np;
        double *nt = realloc(e->t, sizeof(double) * (size_t)cap);
        if (nt) e->t = nt;
        if (!nx || !ny || !np || !nt) return -1;
        e->cap = cap;
    }
    e->x[e->n] = x;
    e->y[e->n] = y;
    e->p[e->n] = p;
    e->t[e->n] = t;
    e->n++;
    return 0;
}

static double sample(const float *img, int ih, int iw, double fx, double fy)
{
    int x0 = (int)floor(fx), y0 = (int)floor(fy);
    double ax = fx - x0, ay = fy - y0, v = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int xx = x0 + dx, yy = y0 + dy;
            if (xx < 0 || yy < 0 || xx >= iw || yy >= ih) continue;
            double w = (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
            v += w * img[yy * iw + xx];
        }
    return v;
}

static int cmp_time(const void *a, const void *b)
{
    const double *x = a, *y = b;
    return x[0] < y[0] ? -1 : (x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]));
}

sl_events *sl_saccade(const float *image, int ih, int iw, const sl_saccade_opts *o, uint64_t seed)
{
    if (ih < 1 || iw < 1 || o->width < 1 || o->height < 1 || !(o->dt > 0) || !(o->saccade > 0) ||
        !(o->threshold > 0) || !(o->bg > 0 && o->bg < 1)) {
        sl_errorf("saccade: invalid image size or options");
        return NULL;
    }
    double nsteps = ceil(3 * o->saccade / o->dt);
    if (!(nsteps * o->width * o->height <= SACCADE_MAX_UPDATES)) {
        sl_errorf("saccade: 3 * saccade / dt = %g time steps of %dx%d pixels exceed the limit of %g pixel updates "
                  "(use a larger dt, a shorter saccade or a smaller sensor)", nsteps, o->width, o->height,
                  SACCADE_MAX_UPDATES);
        return NULL;
    }
    sl_events *e = calloc(1, sizeof *e);
    if (!e) {
        sl_errorf_code(SL_ENOMEM, "saccade: out of memory");
        return NULL;
    }
    int W = o->width, H = o->height;
    int64_t npx = (int64_t)W * H;
    double *lref = malloc(sizeof(double) * (size_t)npx);
    double *thr = malloc(sizeof(double) * (size_t)npx);
    double *quiet = malloc(sizeof(double) * (size_t)npx);
    if (!lref || !thr || !quiet) {
        free(lref);
        free(thr);
        free(quiet);
        sl_events_free(e);
        sl_errorf_code(SL_ENOMEM, "saccade: out of memory");
        return NULL;
    }
    uint64_t sm = seed;
    rng_t rng = {splitmix(&sm) | 1};
    for (int64_t i = 0; i < npx; i++) {
        double c = o->threshold * (1.0 + o->mismatch * nrand(&rng));
        thr[i] = c > 0.2 * o->threshold ? c : 0.2 * o->threshold;
        quiet[i] = -1e30;
    }
    /* the path: triangle vertices in pixels, relative to the centred image */
    const double A[3][2] = {{o->ax, o->ay}, {o->bx, o->by}, {o->cx, o->cy}};
    double offx = (W - iw) / 2.0 - o->amplitude / 2.0, offy = (H - ih) / 2.0 - o->amplitude / 2.0;
    double total = 3 * o->saccade;
    int64_t steps = (int64_t)nsteps;
    int failed = 0;
    for (int64_t s = 0; s <= steps && !failed; s++) {
        double t = s * o->dt;
        if (t > total) t = total;
        int leg = (int)(t / o->saccade);
        if (leg > 2) leg = 2;
        double f = (t - leg * o->saccade) / o->saccade;
        const double *P0 = A[leg], *P1 = A[(leg + 1) % 3];
        double px = offx + o->amplitude * (P0[0] + f * (P1[0] - P0[0]));
        double py = offy + o->amplitude * (P0[1] + f * (P1[1] - P0[1]));
        for (int y = 0; y < H && !failed; y++)
            for (int x = 0; x < W && !failed; x++) {
                int64_t k = (int64_t)y * W + x;
                float v = (float)sample(image, ih, iw, x - px, y - py);
                float L = logf((float)o->bg + (1.0f - (float)o->bg) * v);
                if (s == 0) {
                    lref[k] = L;
                    continue;
                }
                /* a pixel still refractory at the end of this step stays silent */
                if (t < quiet[k] + o->refractory) continue;
                double d = L - lref[k];
                int p = -1;
                if (d >= thr[k]) {
                    p = 1;
                    lref[k] += thr[k] * floor(d / thr[k]);
                } else if (-d >= thr[k]) {
                    p = 0;
                    lref[k] -= thr[k] * floor(-d / thr[k]);
                }
                if (p >= 0) {
                    double te = t - o->dt * urand(&rng);
                    if (te < quiet[k] + o->refractory) te = quiet[k] + o->refractory;
                    failed = push(e, x, y, p, te);
                    quiet[k] = te;
                }
            }
        if (o->noise > 0 && s > 0) {
            double pr = o->noise * o->dt * 1e-3;
            for (int64_t k = 0; k < npx && !failed; k++)
                if (urand(&rng) < pr) {
                    double te = t - o->dt * urand(&rng);
                    failed = push(e, (int)(k % W), (int)(k / W), urand(&rng) < 0.5, te);
                }
        }
    }
    free(lref);
    free(thr);
    free(quiet);
    if (failed) {
        sl_events_free(e);
        if (failed > 0) sl_errorf("saccade: more than %d events (lower the noise)", SACCADE_MAX_EVENTS);
        else sl_errorf_code(SL_ENOMEM, "saccade: out of memory");
        return NULL;
    }
    /* time order (ties by emission order) */
    double *key = malloc(sizeof(double) * 2 * (size_t)(e->n + 1));
    int32_t *tmp = malloc(sizeof(int32_t) * 3 * (size_t)(e->n + 1));
    if (!key || !tmp) {
        free(key);
        free(tmp);
        sl_events_free(e);
        sl_errorf_code(SL_ENOMEM, "saccade: out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < e->n; i++) {
        key[2 * i] = e->t[i];
        key[2 * i + 1] = (double)i;
    }
    qsort(key, (size_t)e->n, 2 * sizeof(double), cmp_time);
    for (int64_t i = 0; i < e->n; i++) {
        int64_t j = (int64_t)key[2 * i + 1];
        tmp[3 * i] = e->x[j];
        tmp[3 * i + 1] = e->y[j];
        tmp[3 * i + 2] = e->p[j];
    }
    for (int64_t i = 0; i < e->n; i++) {
        e->x[i] = tmp[3 * i];
        e->y[i] = tmp[3 * i + 1];
        e->p[i] = tmp[3 * i + 2];
        /* microsecond timestamps, as the spike files store */
        e->t[i] = floor(key[2 * i] * 1000.0 + 0.5) / 1000.0;
    }
    free(key);
    free(tmp);
    return e;
}
