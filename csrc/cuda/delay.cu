/*
 * delay.cu -- the GPU twins of csrc/ops/delay.c: whole-bin shifts in time
 * and the delay gradient.
 *
 * shift: per neuron row r (one delay per neuron of a sample, R values, or
 * one scalar),
 *   k = (int)(d_r / Ts)      float32 division, truncated toward zero
 *   y[t] = x[t - k]  if 0 <= t - k < T, else 0
 * one thread per output element, consecutive threads on consecutive bins.
 *
 * Delay gradient:
 *   D[t] = (y[t-1] - y[t]) / Ts   (y[-1] = 0; as the CPU, the two fused
 *          products of the filter [-1/Ts, 1/Ts])
 *   dd_r = Ts * sum_{n, t} g[n, r, t] * D[n, r, t]
 * one block per neuron r; each term is rounded to float32 as on the CPU and
 * summed in double (a fixed tree, so the result does not depend on the
 * schedule; it differs from the CPU's sequential double sum only far below
 * float32 resolution).  The CPU ops check the operands (contiguous, an
 * (N, ..., T) input, one delay per neuron, Ts > 0) before they dispatch here.
 */
#include "common.cuh"

namespace {

__global__ void shift_kernel(float *__restrict__ out, const float *__restrict__ in, const float *__restrict__ delay,
                             float scalar, float Ts, int64_t R, int64_t T, int64_t n)
{
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / T, t = e % T;
        float d = delay ? __ldg(delay + r % R) : scalar;
        float q = __fdiv_rn(d, Ts);
        /* clamp before converting: a shift beyond the row only zeroes it */
        int64_t k = q != q ? 0 : (q >= (float)T ? T : (q <= -(float)T ? -T : (int64_t)q));
        int64_t s = t - k;
        out[e] = s >= 0 && s < T ? in[r * T + s] : 0.0f;
    }
}

constexpr int DG_THREADS = 256;

__global__ void __launch_bounds__(DG_THREADS)
delay_grad_kernel(float *__restrict__ gdelay, const float *__restrict__ grad, const float *__restrict__ out,
                  int64_t N, int64_t R, int64_t T, float Ts)
{
    __shared__ double shared[32];
    const int64_t r = blockIdx.x;
    const float m = -1.0f / Ts, p = 1.0f / Ts;
    double s = 0;
    for (int64_t idx = threadIdx.x; idx < N * T; idx += DG_THREADS) {
        int64_t n = idx / T, t = idx % T;
        const float *y = out + (n * R + r) * T, *g = grad + (n * R + r) * T;
        float prev = t > 0 ? y[t - 1] : 0.0f;
        float dt = __fmaf_rn(prev, p, __fmaf_rn(y[t], m, 0.0f));
        s += (double)__fmul_rn(g[t], dt);
    }
    s = slc::block_sum(s, shared);
    if (threadIdx.x == 0) gdelay[r] = __fmul_rn((float)s, Ts);
}

} /* namespace */

SL_CUDA_API int sl_shift_cuda(sl_tensor *out, const sl_tensor *in, const sl_tensor *delay, float scalar, float Ts)
{
    int64_t T = 0, rows = 0, R = 0;
    sl_time_rows(in, &T, &rows, &R);
    int64_t n = in->numel;
    if (n == 0) return 0;
    shift_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(out->data, in->data,
                                                                       delay ? delay->data : NULL, scalar, Ts, R, T, n);
    SLC_LAUNCHED("delayShift");
    return 0;
}

SL_CUDA_API int sl_delay_grad_cuda(sl_tensor *gdelay, const sl_tensor *grad, const sl_tensor *out, float Ts)
{
    int64_t T = 0, rows = 0, R = 0;
    sl_time_rows(out, &T, &rows, &R);
    if (R == 0) return 0;
    if (R > INT32_MAX) return sl_errorf("delay backward: %lld delays exceed the grid limit", (long long)R);
    int64_t N = rows / R;
    delay_grad_kernel<<<(unsigned)R, DG_THREADS, 0, slc::stream()>>>(gdelay->data, grad->data, out->data, N, R, T, Ts);
    SLC_LAUNCHED("delay backward");
    return 0;
}
