/*
 * shapes.h -- the geometry a CPU op and its CUDA twin both read off their
 * operands' shapes (not part of the API).
 *
 * Plain static inline C, so that the ops in csrc/ops (C11) and their twins
 * in csrc/cuda (nvcc, and the host emulator's C++) include the same code.
 * These helpers only compute: the CPU op checks its operands (shapes,
 * contiguity, arguments) once, before it dispatches (SL_DISPATCH in
 * internal.h), and the twin uses them on operands already checked.
 */
#ifndef SLAYER_SHAPES_H
#define SLAYER_SHAPES_H

#include "slayer.h"

#include <stdint.h>

/* a contiguous tensor viewed as [outer, n, inner] around dim (reductions) */
static inline void sl_split_dims(const sl_tensor *a, int dim, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= a->shape[d];
    for (int d = dim + 1; d < a->ndim; d++) *inner *= a->shape[d];
    *n = a->shape[dim];
}

/* x (N, ..., T) as rows of T bins, R rows per sample (delays) */
static inline void sl_time_rows(const sl_tensor *x, int64_t *T, int64_t *rows, int64_t *R)
{
    *T = x->shape[x->ndim - 1];
    *rows = *T ? x->numel / *T : 0;
    *R = x->shape[0] ? *rows / x->shape[0] : 0;
}

/* a bank of F filters of K taps h applied to x [N, R, T] (temporal
   filtering): y is [N, F*R, T] */
static inline void sl_bank_dims(const sl_tensor *x, const sl_tensor *h, int64_t *N, int64_t *F, int64_t *R,
                                int64_t *T, int64_t *K)
{
    *T = x->shape[x->ndim - 1];
    *N = x->shape[0];
    *K = h->shape[h->ndim - 1];
    *F = h->numel / *K;
    *R = *N && *T ? x->numel / (*N * *T) : 0;
}

/* the strides of t broadcast to out's dims (0 along repeated dims);
   SL_BCAST_DIMS when t has more dims than out, SL_BCAST_SHAPES when a size
   differs and is not 1 */
enum { SL_BCAST_OK, SL_BCAST_DIMS, SL_BCAST_SHAPES };
static inline int sl_bcast_strides(const sl_tensor *t, const sl_tensor *out, int64_t *st)
{
    int off = out->ndim - t->ndim;
    if (off < 0) return SL_BCAST_DIMS;
    for (int d = 0; d < out->ndim; d++) {
        if (d < off) {
            st[d] = 0;
        } else {
            int32_t s = t->shape[d - off];
            if (s == out->shape[d]) st[d] = s == 1 ? 0 : t->stride[d - off];
            else if (s == 1) st[d] = 0;
            else return SL_BCAST_SHAPES;
        }
    }
    return SL_BCAST_OK;
}

/* the geometry of a per-time-bin convolution: x [N, C, H, W, T], weight
   [O, C/G, kh, kw, 1], y [N, O, OH, OW, T] */
typedef struct {
    int64_t N, C, H, W, T, O, OH, OW, G, KK, P; /* P = OH * OW * T */
    int32_t kh, kw, sh, sw, ph, pw, dh, dw;
} sl_conv_dims;

static inline void sl_conv_dims_of(sl_conv_dims *d, const sl_tensor *x, const sl_tensor *w, const sl_tensor *y,
                                   const sl_conv_params *p)
{
    d->N = x->shape[0];
    d->C = x->shape[1];
    d->H = x->shape[2];
    d->W = x->shape[3];
    d->T = x->shape[4];
    d->O = w->shape[0];
    d->G = p->groups;
    d->OH = y->shape[2];
    d->OW = y->shape[3];
    d->KK = (int64_t)p->kh * p->kw;
    d->P = d->OH * d->OW * d->T;
    d->kh = p->kh;
    d->kw = p->kw;
    d->sh = p->sh;
    d->sw = p->sw;
    d->ph = p->ph;
    d->pw = p->pw;
    d->dh = p->dh;
    d->dw = p->dw;
}

/* the folded pooling geometry: x [N, C, H, W, T] seen as [N, C*Hp, Wp, T]
   (Hp = H + H mod kh with the reference's odd padding), y [N, Rf, Q, T] */
typedef struct {
    int64_t N, C, H, W, T, Hp, Hf, Rf, Q;
    int32_t kh, kw, sh, sw, ph, pw, dh, dw;
} sl_fold;

/* the geometry of x [N, C, H, W, T] with kernel p; 0 when it is valid for
   an output [N, C, Rf / C, Q, T] (windows never cross channels in Rf % C) */
static inline int sl_fold_of(sl_fold *f, const int32_t *xshape, const sl_conv_params *p, int odd_pad)
{
    f->N = xshape[0];
    f->C = xshape[1];
    f->H = xshape[2];
    f->W = xshape[3];
    f->T = xshape[4];
    f->kh = p->kh;
    f->kw = p->kw;
    f->sh = p->sh;
    f->sw = p->sw;
    f->ph = p->ph;
    f->pw = p->pw;
    f->dh = p->dh;
    f->dw = p->dw;
    f->Hp = odd_pad && f->H % p->kh ? f->H + f->H % p->kh : f->H;
    int64_t Wp = odd_pad && f->W % p->kw ? f->W + f->W % p->kw : f->W;
    f->Hf = f->C * f->Hp;
    f->Rf = (f->Hf + 2 * (int64_t)p->ph - (int64_t)p->dh * (p->kh - 1) - 1) / p->sh + 1;
    f->Q = (Wp + 2 * (int64_t)p->pw - (int64_t)p->dw * (p->kw - 1) - 1) / p->sw + 1;
    return f->C >= 1 && f->Rf >= 1 && f->Q >= 1 && f->Rf % f->C == 0 ? 0 : -1;
}

#endif
