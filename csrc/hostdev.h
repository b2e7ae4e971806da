/*
 * hostdev.h -- the element-wise arithmetic a CPU op and its CUDA twin share
 * (not part of the API).
 *
 * Each formula here is written once and compiled for both back ends: by the
 * C11 compiler into the CPU ops (csrc/ops), by nvcc into the kernels
 * (csrc/cuda), and by the host emulator's C++ compiler.  The device code is
 * built with --fmad=false and the CPU code with FP contraction off, so one
 * source rounds alike on both: a step on the GPU gives the CPU's bits.
 * These helpers only compute, on operands the CPU op has already checked.
 *
 * SL_HD marks a function for both sides (__host__ __device__ under nvcc,
 * static inline elsewhere).  No `restrict` here: the callers' pointers carry
 * it where it matters, and C++ does not know the keyword.
 */
#ifndef SLAYER_HOSTDEV_H
#define SLAYER_HOSTDEV_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SL_HD __host__ __device__ __forceinline__
#else
#define SL_HD static inline
#endif

/* exp(x) for x <= 0, vectorisable: x = k ln2 + r with |r| <= ln2/2 (ln2 split
   in two for an exact reduction), exp(r) by its degree-7 Taylor polynomial
   (relative error below 2e-7, about 1.5 ulp), times 2^k built in the
   exponent bits.  Like expf (the reference's torch.exp) it gives subnormal
   results down to 2^-149 and 0 below: far from the threshold the spike
   surrogate is 0, not a constant floor. */
SL_HD float sl_exp_nonpos(float x)
{
    float keep = x < -104.0f ? 0.0f : 1.0f; /* expf is 0 below ln 2^-150 */
    if (x < -104.0f) x = 0.0f; /* a lane of ones, zeroed by keep: no subnormal on the way */
    float k = nearbyintf(x * 1.44269504089f);
    float r = (x - k * 0.693145751953125f) - k * 1.42860682030941723212e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^k (k >= -150) as two normal powers of two: the first product is
       exact, the second rounds once, into the subnormal range if need be */
    int32_t k1 = (int32_t)k / 2, k2 = (int32_t)k - k1;
    union {
        int32_t i;
        float f;
    } b1, b2;
    b1.i = (k1 + 127) << 23;
    b2.i = (k2 + 127) << 23;
    return p * b1.f * b2.f * keep;
}

/* SLAYER's surrogate gradient of one bin: gout * (scale/tau * exp(-|u - theta| / tau)),
   st = scale/tau; -|u - theta| / tau rounded like the reference's division */
SL_HD float sl_spike_surrogate(float gout, float u, float theta, float tau, float st)
{
    float q = -fabsf(u - theta) / tau;
    return gout * (st * sl_exp_nonpos(q));
}

/* one element of SGD (PyTorch semantics), damp = 1 - dampening:
     d = g + wd*p;  buf = d (first step) or momentum*buf + damp*d;
     d = nesterov ? d + momentum*buf : buf (d itself without buf);  p -= lr*d */
SL_HD void sl_sgd_elem(float *p, const float *g, float *buf, float lr, float momentum, float damp,
                       float weight_decay, int nesterov, int first)
{
    float d = *g;
    if (weight_decay != 0.0f) d = d + weight_decay * *p;
    if (buf) {
        float b = first ? d : momentum * *buf + damp * d;
        *buf = b;
        d = nesterov ? d + momentum * b : b;
    }
    *p = *p - lr * d;
}

/* one element of Adam (mode 0) or the reference's Nadam (mode 1, which also
   writes the decayed gradient back); c1 = 1 - b1 and c2 = 1 - b2 formed in
   double, step = -lr*sqrt(bias2)/bias1; vmax NULL without amsgrad:
     g += wd*p;  m = b1*m + c1*g;  v = b2*v + c2*g*g;  vmax = max(vmax, v)
     p += step * (Adam: m, Nadam: b1*m + c1*g) / (sqrt(vmax or v) + eps) */
SL_HD void sl_adam_elem(int mode, float *p, float *g, float *m, float *v, float *vmax, float b1, float b2,
                        float c1, float c2, float eps, float weight_decay, float step)
{
    float gi = *g;
    if (weight_decay != 0.0f) {
        gi = gi + weight_decay * *p;
        if (mode == 1) *g = gi;
    }
    float mi = *m * b1 + c1 * gi;
    float vi = *v * b2 + c2 * gi * gi;
    *m = mi;
    *v = vi;
    float den;
    if (vmax) {
        float x = *vmax > vi ? *vmax : vi;
        *vmax = x;
        den = sqrtf(x) + eps;
    } else {
        den = sqrtf(vi) + eps;
    }
    float num = mode == 1 ? b1 * mi + c1 * gi : mi;
    *p = *p + step * num / den;
}

/* the maximum of src[0], src[inner], ... src[(n-1)*inner] (n >= 1) and its
   index: the first maximum wins, and a NaN beats every number (the first
   NaN), as torch.max */
SL_HD int64_t sl_argmax_strided(const float *src, int64_t n, int64_t inner, float *best)
{
    float b = src[0];
    int64_t bi = 0;
    for (int64_t k = 1; k < n; k++) {
        float v = src[k * inner];
        if (v > b || (isnan(v) && !isnan(b))) {
            b = v;
            bi = k;
        }
    }
    *best = b;
    return bi;
}

/* (host) the size classes of both caching allocators above 512 bytes:
   eight per power of two, in steps of an eighth of it.  Returns bytes
   rounded up to its class; 2^*e <= the result < 2^(*e + 1), and *sub (0-7)
   counts the eighths above 2^*e. */
static inline size_t sl_size_class_eighths(size_t bytes, int *e, int *sub)
{
    int x = 63 - __builtin_clzll((unsigned long long)bytes);
    size_t step = (size_t)1 << (x - 3);
    size_t r = (bytes + step - 1) & ~(step - 1);
    if (r == ((size_t)1 << (x + 1))) {
        x += 1;
        step <<= 1;
    }
    *e = x;
    *sub = (int)((r - ((size_t)1 << x)) / step);
    return r;
}

#endif
