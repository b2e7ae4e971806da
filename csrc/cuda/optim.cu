/*
 * optim.cu -- the GPU twins of csrc/ops/optim.c: one fused pass per
 * parameter, the same float32 operations in the same order (built with
 * --fmad=false, IEEE division and square root), so a step on the GPU gives
 * the CPU's bits: the per-element updates are ../hostdev.h's, the CPU's own.
 *
 * SGD:   g <- g + wd*p;  buf <- g (first step) or momentum*buf + (1-dampening)*g
 *        d <- nesterov ? g + momentum*buf : buf  (d = g without momentum);  p <- p - lr*d
 * Adam:  g <- g + wd*p (Nadam writes it back);  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g*g
 *        vmax <- max(vmax, v) when amsgrad;  denom = sqrt(vmax or v) + eps
 *        step = lr*sqrt(bias2)/bias1;  Adam: p <- p - step*m/denom
 *        Nadam: p <- p - step*(b1*m + (1-b1)*g)/denom
 * The CPU ops check the operands (contiguous, parameter, gradient and state
 * of one size) before they dispatch here.
 */
#include "common.cuh"
#include "../hostdev.h"

#include <math.h>

__global__ void sgd_kernel(float *p, const float *g, float *buf, int64_t n, float lr, float momentum, float damp,
                           float weight_decay, int nesterov, int first)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        sl_sgd_elem(p + i, g + i, buf ? buf + i : NULL, lr, momentum, damp, weight_decay, nesterov, first);
}

SL_CUDA_API int sl_sgd_step_cuda(sl_tensor *p, sl_tensor *g, sl_tensor *buf, float lr, float momentum, float dampening,
                                 float weight_decay, int nesterov, int first)
{
    int64_t n = p->numel;
    if (n == 0) return 0;
    sgd_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(p->data, g->data, buf ? buf->data : NULL, n, lr,
                                                                     momentum, 1.0f - dampening, weight_decay,
                                                                     nesterov, first);
    SLC_LAUNCHED("sgd");
    return 0;
}

__global__ void adam_kernel(int mode, float *p, float *g, float *m, float *v, float *vmax, int64_t n, float beta1,
                            float beta2, float c1, float c2, float eps, float weight_decay, float step)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        sl_adam_elem(mode, p + i, g + i, m + i, v + i, vmax ? vmax + i : NULL, beta1, beta2, c1, c2, eps, weight_decay,
                     step);
}

SL_CUDA_API int sl_adam_step_cuda(int mode, sl_tensor *p, sl_tensor *g, sl_tensor *m, sl_tensor *v, sl_tensor *vmax,
                                  double lr, double beta1, double beta2, float eps, float weight_decay,
                                  int amsgrad, double bias1, double bias2)
{
    int64_t n = p->numel;
    if (n == 0) return 0;
    /* 1 - beta in double, as the reference's Python scalars (see optim.c) */
    float c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);
    float step = (float)(-(lr * sqrt(bias2) / bias1));
    adam_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(mode, p->data, g->data, m->data, v->data,
                                                                      amsgrad ? vmax->data : NULL, n, (float)beta1,
                                                                      (float)beta2, c1, c2, eps, weight_decay, step);
    SLC_LAUNCHED("adam");
    return 0;
}
