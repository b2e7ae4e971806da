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
 * Each float32 operation is rounded in the order the reference performs it.
 */
#include "../internal.h"

#include <math.h>

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
    SL_FOR(i, n, n > 4 * SL_PAR_MIN, {
        float d = pg[i];
        if (weight_decay != 0.0f) d = d + weight_decay * pp[i];
        if (pb) {
            float b = first ? d : momentum * pb[i] + damp * d;
            pb[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        pp[i] = pp[i] - lr * d;
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
    SL_FOR(i, n, n > 4 * SL_PAR_MIN, {
        float gi = pg[i];
        if (weight_decay != 0.0f) {
            gi = gi + weight_decay * pp[i];
            if (mode == 1) pg[i] = gi;
        }
        float mi = pm[i] * b1 + c1 * gi;
        float vi = pv[i] * b2 + c2 * gi * gi;
        pm[i] = mi;
        pv[i] = vi;
        float den;
        if (px) {
            float x = px[i] > vi ? px[i] : vi;
            px[i] = x;
            den = sqrtf(x) + eps;
        } else {
            den = sqrtf(vi) + eps;
        }
        float num = mode == 1 ? b1 * mi + c1 * gi : mi;
        pp[i] = pp[i] + step * num / den;
    });
    return 0;
}
