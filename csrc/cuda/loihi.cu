/*
 * loihi.cu -- the GPU twin of csrc/ops/loihi.c: the integer current-based
 * (CUBA) neuron of Intel's Loihi chip, exactly as the reference computes it
 * (SPEC.md 15.5).  Per row, x = in * Ts (float32), state u = v = 0:
 *
 *   t = 0:  s = U = V = 0 (the input at t = 0 is ignored)
 *   t >= 1: a  = trunc(x[t])                         (toward zero, saturating)
 *           u  = sgn(u) * ((|u| * keep_i) >> 12) + wScale * a
 *           v' = sgn(v) * ((|v| * keep_v) >> 12) + u
 *           refractory = a spike at t - refDelay < t' < t
 *           spike = v' > theta  and not refractory
 *           v  = (spike or refractory) ? 0 : v'
 *           s[t] = spike / Ts,  U[t] = u,  V[t] = spike ? vDecay : v
 *
 * in 32-bit two's complement with wrap-around (the products in unsigned
 * 32-bit), as the CPU.  The step is slc_loihi_step in neuron.cuh, which
 * tests/c/test_cuda_neuron.c checks against the CPU op without a GPU
 * (including its refractory state: the time of the last spike, where the
 * CPU keeps a counter of recent spikes).
 *
 * One thread per row, 32 rows per block; time moves through shared memory
 * in tiles of 32 bins so that rows are read and written coalesced.  The CPU
 * op checks the operands (contiguous, the outputs of the input's shape, the
 * neuron's constants in range, Ts) before it dispatches here.
 */
#include "common.cuh"
#include "neuron.cuh"

namespace {

constexpr int ROWS = 32; /* rows (threads) per block */
constexpr int TB = 32;   /* bins per tile */

__global__ void __launch_bounds__(ROWS)
loihi_kernel(float *__restrict__ s, float *__restrict__ V, float *__restrict__ U, const float *__restrict__ in,
             int64_t rows, int64_t T, slc_loihi_consts c)
{
    __shared__ float xt[ROWS][TB + 1], st[ROWS][TB + 1], vt[ROWS][TB + 1], ut[ROWS][TB + 1];
    const int tid = threadIdx.x;
    const int64_t row0 = (int64_t)blockIdx.x * ROWS;
    const int nr = rows - row0 < ROWS ? (int)(rows - row0) : ROWS;
    slc_loihi_state state;
    slc_loihi_init(&state, &c);
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
        const int w = (int)(T - t0 < TB ? T - t0 : TB);
        for (int idx = tid; idx < nr * w; idx += ROWS) {
            int r = idx / w, k = idx % w;
            xt[r][k] = in[(row0 + r) * T + t0 + k];
        }
        __syncthreads(); /* also: the previous tile's outputs are written out */
        if (tid < nr) {
            for (int k = 0; k < w; k++) {
                int64_t t = t0 + k;
                if (t == 0) {
                    st[tid][k] = vt[tid][k] = ut[tid][k] = 0.0f;
                    continue;
                }
                st[tid][k] = slc_loihi_step(&state, &c, t, xt[tid][k], &ut[tid][k], &vt[tid][k]);
            }
        }
        __syncthreads();
        for (int idx = tid; idx < nr * w; idx += ROWS) {
            int r = idx / w, k = idx % w;
            int64_t o = (row0 + r) * T + t0 + k;
            s[o] = st[r][k];
            if (V) V[o] = vt[r][k];
            if (U) U[o] = ut[r][k];
        }
    }
}

} /* namespace */

SL_CUDA_API int sl_loihi_forward_cuda(sl_tensor *spikes, sl_tensor *voltage, sl_tensor *current, const sl_tensor *in,
                                      const sl_loihi_neuron *n, float Ts)
{
    int64_t T = in->shape[in->ndim - 1];
    if (T == 0 || in->numel == 0) return 0;
    int64_t rows = in->numel / T, blocks = (rows + ROWS - 1) / ROWS;
    if (blocks > INT32_MAX) return sl_errorf("spikeLoihi: %lld rows exceed the grid limit", (long long)rows);
    slc_loihi_consts c = slc_loihi_consts_of(n, Ts);
    loihi_kernel<<<(unsigned)blocks, ROWS, 0, slc::stream()>>>(spikes->data, voltage ? voltage->data : NULL,
                                                              current ? current->data : NULL, in->data, rows, T, c);
    SLC_LAUNCHED("spikeLoihi");
    return 0;
}
