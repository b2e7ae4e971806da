/*
 * optim.c -- fused optimizer updates, one pass over each parameter.
 *
 * SGD (PyTorch semantics):
 *   g <- g + wd*p;  buf <- g (first step) or momentum*buf + (1-dampening)*g
 *   d <- nesterov ? g + momentum*buf : buf  (d = g without momentum)
 *   p <- p - lr*d
 * Adam, in the 2019 PyTorch form the reference's examples ran with, and the
 * reference's Nadam (src/optimizer.py), which differs only in the numerator:
 *   g <- g + wd*p            (Nadam writes this back into the gradient)
 *   m <- b1*m + (1-b1)*g;    v <- b2*v + (1-b2)*g*g
 *   vmax <- max(vmax, v) when amsgrad;  denom = sqrt(vmax or v) + eps
 *   step = lr*sqrt(bias2)/bias1       (bias_i = 1 - b_i^k, in double)
 *   Adam:  p <- p - step*m/denom
 *   Nadam: p <- p - step*(b1*m + (1-b1)*g)/denom
 * Each float32 operation is rounded in the order the reference performs it;
 * the per-element updates are ../hostdev.h's, which the GPU kernels share.
 */
#include "../hostdev.h"
#include "../internal.h"

#include <math.h>

/* the updates over [lo, hi) of elements, one clone per instruction set, and
   one loop per variant (momentum buffer or not; Adam or Nadam, amsgrad or
   not), so that each body is free of branches and vectorises: IEEE
   division and square root give the same bits as one element at a time */
SL_HOT
static void sgd_range(float *restrict p, const float *restrict g, float *restrict buf, int64_t lo, int64_t hi,
                      float lr, float momentum, float damp, float weight_decay, int nesterov, int first)
{
    if (buf)
        for (int64_t i = lo; i < hi; i++)
            sl_sgd_elem(p + i, g + i, buf + i, lr, momentum, damp, weight_decay, nesterov, first);
    else
        for (int64_t i = lo; i < hi; i++)
            sl_sgd_elem(p + i, g + i, NULL, lr, momentum, damp, weight_decay, nesterov, first);
}

#define ADAM_LOOP(MODE, VMAX)                                                                                 \
    for (int64_t i = lo; i < hi; i++)                                                                         \
        sl_adam_elem(MODE, p + i, g + i, m + i, v + i, VMAX, b1, b2, c1, c2, eps, weight_decay, step)
SL_HOT
static void adam_range(int mode, float *restrict p, float *restrict g, float *restrict m, float *restrict v,
                       float *restrict vmax, int64_t lo, int64_t hi, float b1, float b2, float c1, float c2,
                       float eps, float weight_decay, float step)
{
    if (mode == 0 && vmax) ADAM_LOOP(0, vmax + i);
    else if (mode == 0) ADAM_LOOP(0, NULL);
    else if (vmax) ADAM_LOOP(1, vmax + i);
    else ADAM_LOOP(1, NULL);
}
#undef ADAM_LOOP

/* [lo, hi) of chunk k of n elements */
#define CHUNK 8192
#define CHUNK_BOUNDS(k, n, lo, hi)                                                                            \
    int64_t lo = (k) * CHUNK, hi = lo + CHUNK < (n) ? lo + CHUNK : (n)

int sl_sgd_step(sl_tensor *p, sl_tensor *g, sl_tensor *buf, float lr, float momentum,
                float dampening, float weight_decay, int nesterov, int first)
{
    int dev = SL_DEVICE_OF("sgd", p, g, buf);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("sgd", p, g, buf);
    if (g->numel != p->numel || (buf && buf->numel != p->numel))
        return sl_errorf("sgd: parameter, gradient and state sizes differ");
    SL_DISPATCH(sl_sgd_step, dev, p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first);
    int64_t n = p->numel;
    float *restrict pp = p->data;
    const float *restrict pg = g->data;
    float *restrict pb = buf ? buf->data : NULL;
    float damp = 1.0f - dampening;
    SL_FOR(k, (n + CHUNK - 1) / CHUNK, n > 4 * SL_PAR_MIN, {
        CHUNK_BOUNDS(k, n, lo, hi);
        sgd_range(pp, pg, pb, lo, hi, lr, momentum, damp, weight_decay, nesterov, first);
    });
    return 0;
}

int sl_adam_step(int mode, sl_tensor *p, sl_tensor *g, sl_tensor *m, sl_tensor *v, sl_tensor *vmax,
                 double lr, double beta1, double beta2, float eps, float weight_decay, int amsgrad,
                 double bias1, double bias2)
{
    int dev = SL_DEVICE_OF("adam", p, g, m, v, vmax);
    if (dev < 0) return dev;
    SL_REQUIRE_CONTIGUOUS("adam", p, g, m, v, vmax);
    if (g->numel != p->numel || m->numel != p->numel || v->numel != p->numel ||
        (amsgrad && (!vmax || vmax->numel != p->numel)))
        return sl_errorf("adam: parameter, gradient and state sizes differ");
    SL_DISPATCH(sl_adam_step, dev, mode, p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay, amsgrad, bias1,
                bias2);
    int64_t n = p->numel;
    float *restrict pp = p->data, *restrict pg = g->data, *restrict pm = m->data, *restrict pv = v->data;
    float *restrict px = amsgrad ? vmax->data : NULL;
    /* the reference's scalars are Python doubles rounded to float32 once:
       1 - beta is formed in double (1 - 0.999 = 0.001, while the float
       0.999's complement is 1.3e-5 smaller) */
    float b1 = (float)beta1, b2 = (float)beta2;
    float c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);
    float step = (float)(-(lr * sqrt(bias2) / bias1));
    SL_FOR(k, (n + CHUNK - 1) / CHUNK, n > 4 * SL_PAR_MIN, {
        CHUNK_BOUNDS(k, n, lo, hi);
        adam_range(mode, pp, pg, pm, pv, px, lo, hi, b1, b2, c1, c2, eps, weight_decay, step);
    });
    return 0;
}
