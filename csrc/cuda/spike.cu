/*
 * spike.cu -- the GPU twins of csrc/ops/spike.c: the SRM spike function with
 * refractory response, and SLAYER's surrogate gradient.
 *
 * Forward, per neuron row u[0..T-1], strictly in time order:
 *   if u[t] >= theta:  s[t] = 1/Ts;  u[t + j] += nu[j]  for j < K, t + j < T
 *   else               s[t] = 0
 * u is modified in place (it holds the post-refractory potential after).
 *
 * One thread per row (the loop is sequential in time), 32 rows per block.
 * So that the rows are read and written coalesced, time moves through
 * shared memory: each row keeps a circular window of M >= TB + K - 1 bins
 * (M a power of two); the block loads the next TB bins of its 32 rows with
 * consecutive threads on consecutive bins, each thread runs its row over
 * the TB bins, adding the refractory kernel into the window (every bin a
 * spike at t can reach, t + K - 1, is already loaded), and the block writes
 * the finished TB bins of u and s back.  Every u[t] receives the same
 * float32 additions in the same (spike) order as on the CPU, so spikes and
 * potentials are bit-identical to csrc/ops/spike.c.  A refractory kernel too
 * long for shared memory falls back to the same loop on global memory.
 *
 * Backward (surrogate), element-wise on the post-refractory u:
 *   du[t] = ds[t] * rho(u[t]),  rho(u) = (scale / tau) * exp(-|u - theta| / tau)
 * computed by the CPU's own element function (sl_spike_surrogate in
 * ../hostdev.h; tests/c/test_cuda_neuron.c checks it against the CPU op), so
 * the gradient is bit-identical too.
 * The CPU ops check the operands (contiguous, sizes that match, tau > 0)
 * before they dispatch here.
 */
#include "common.cuh"
#include "neuron.cuh"

namespace {

constexpr int ROWS = SLC_SPIKE_ROWS; /* rows (threads) per block */
constexpr int TB = SLC_SPIKE_TB;     /* bins per step */

/* the phases are neuron.cuh's, which tests/c/test_cuda_neuron.c runs on the
   host against the CPU op */
__global__ void __launch_bounds__(ROWS)
spike_window_kernel(float *__restrict__ u, float *__restrict__ s, const float *__restrict__ nu, int64_t rows,
                    int64_t T, int64_t K, int M, float theta, float amp)
{
    extern __shared__ float sm[];
    float *win = sm;                 /* [ROWS][M + 1]: odd stride, no bank conflicts */
    float *st = sm + ROWS * (M + 1); /* [ROWS][TB + 1] */
    const int tid = threadIdx.x;
    const int64_t row0 = (int64_t)blockIdx.x * ROWS;
    const int nr = rows - row0 < ROWS ? (int)(rows - row0) : ROWS;

    int64_t L = slc_spike_loaded(0, T, K); /* bins loaded: [0, L) */
    slc_spike_load(win, M, u, row0, nr, T, 0, L, tid, ROWS);
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
        const int64_t t1 = t0 + TB < T ? t0 + TB : T;
        __syncthreads();
        if (tid < nr) slc_spike_steps(win + tid * (M + 1), M, st + tid * (TB + 1), t0, t1, T, nu, K, theta, amp);
        __syncthreads();
        slc_spike_store(u, s, win, M, st, row0, nr, T, t0, t1, tid, ROWS);
        const int64_t Ln = slc_spike_loaded(t1, T, K);
        if (Ln > L) {
            __syncthreads(); /* the slots being refilled have been written out */
            slc_spike_load(win, M, u, row0, nr, T, L, Ln, tid, ROWS);
            L = Ln;
        }
    }
}

/* the same loop on global memory, for refractory kernels longer than the
   shared-memory window allows */
__global__ void spike_global_kernel(float *__restrict__ u, float *__restrict__ s, const float *__restrict__ nu,
                                    int64_t rows, int64_t T, int64_t K, float theta, float amp)
{
    int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (r >= rows) return;
    float *ur = u + r * T, *sr = s + r * T;
    for (int64_t t = 0; t < T; t++) {
        if (ur[t] >= theta) {
            sr[t] = amp;
            int64_t n = K < T - t ? K : T - t;
            for (int64_t j = 0; j < n; j++) ur[t + j] = __fadd_rn(ur[t + j], __ldg(nu + j));
        } else {
            sr[t] = 0.0f;
        }
    }
}

__global__ void spike_backward_kernel(float *__restrict__ gin, const float *__restrict__ gout,
                                      const float *__restrict__ u, int64_t n, float theta, float tau, float st)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        gin[i] = sl_spike_surrogate(gout[i], u[i], theta, tau, st);
    }
}

/* the most dynamic shared memory one block may use on this device */
int shared_limit()
{
    static int limit = 0;
    if (!limit) {
        int dev = 0, v = 0;
        if (cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess && v > 0)
            limit = v;
        else
            limit = 48 * 1024;
        cudaGetLastError();
    }
    return limit;
}

} /* namespace */

SL_CUDA_API int sl_spike_forward_cuda(sl_tensor *spikes, sl_tensor *u, const sl_tensor *ref, float theta, float Ts)
{
    int64_t T = u->shape[u->ndim - 1];
    if (T == 0 || u->numel == 0) return 0;
    int64_t rows = u->numel / T, K = ref->numel;
    const float amp = 1.0f / Ts;
    int64_t M = slc_spike_window(K);
    size_t bytes = (size_t)(ROWS * (M + 1) + ROWS * (TB + 1)) * sizeof(float);
    int64_t blocks = (rows + ROWS - 1) / ROWS;
    if (blocks > INT32_MAX) return sl_errorf("spike: %lld rows exceed the grid limit", (long long)rows);
    if (bytes <= (size_t)shared_limit()) {
        if (bytes > 48 * 1024)
            SLC_CHECK("spike", cudaFuncSetAttribute(spike_window_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    (int)bytes));
        spike_window_kernel<<<(unsigned)blocks, ROWS, bytes, slc::stream()>>>(u->data, spikes->data, ref->data, rows,
                                                                              T, K, (int)M, theta, amp);
    } else {
        spike_global_kernel<<<(unsigned)((rows + 127) / 128), 128, 0, slc::stream()>>>(u->data, spikes->data,
                                                                                      ref->data, rows, T, K, theta,
                                                                                      amp);
    }
    SLC_LAUNCHED("spike");
    return 0;
}

SL_CUDA_API int sl_spike_backward_cuda(sl_tensor *gin, const sl_tensor *gout, const sl_tensor *u, float theta,
                                       float tau, float scale)
{
    int64_t n = u->numel;
    if (n == 0) return 0;
    float st = scale / tau;
    spike_backward_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(gin->data, gout->data, u->data, n,
                                                                               theta, tau, st);
    SLC_LAUNCHED("spike backward");
    return 0;
}
