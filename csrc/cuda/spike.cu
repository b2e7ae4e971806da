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
 * with the CPU's own exp (slc_exp_nonpos in neuron.cuh, checked against the
 * CPU by tests/c/test_cuda_neuron.c), so the gradient is bit-identical too.
 */
#include "common.cuh"
#include "neuron.cuh"

namespace {

constexpr int ROWS = 32; /* rows (threads) per block */
constexpr int TB = 32;   /* bins per step */

__global__ void __launch_bounds__(ROWS)
spike_window_kernel(float *__restrict__ u, float *__restrict__ s, const float *__restrict__ nu, int64_t rows,
                    int64_t T, int64_t K, int M, float theta, float amp)
{
    extern __shared__ float sm[];
    const int SW = M + 1; /* odd stride: the rows' windows start in different banks */
    float *win = sm;                 /* [ROWS][SW] */
    float *st = sm + ROWS * SW;      /* [ROWS][TB + 1] */
    const int tid = threadIdx.x, mask = M - 1;
    const int64_t row0 = (int64_t)blockIdx.x * ROWS;
    const int nr = rows - row0 < ROWS ? (int)(rows - row0) : ROWS;
    float *wr = win + tid * SW;

    /* bins [b0, b1) of every row of the block into their window slots */
    auto load = [&](int64_t b0, int64_t b1) {
        int64_t w = b1 - b0;
        for (int64_t idx = tid; idx < nr * w; idx += ROWS) {
            int r = (int)(idx / w);
            int64_t t = b0 + idx % w;
            win[r * SW + (int)(t & mask)] = u[(row0 + r) * T + t];
        }
    };

    const int64_t KW = K > 0 ? K : 1;             /* bins a spike reaches */
    int64_t L = T < TB + KW - 1 ? T : TB + KW - 1; /* bins loaded: [0, L) */
    load(0, L);
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
        const int64_t t1 = t0 + TB < T ? t0 + TB : T;
        __syncthreads();
        if (tid < nr) {
            for (int64_t t = t0; t < t1; t++) {
                float o = 0.0f;
                if (wr[t & mask] >= theta) {
                    o = amp;
                    int64_t n = K < T - t ? K : T - t;
                    for (int64_t j = 0; j < n; j++) {
                        int q = (int)((t + j) & mask);
                        wr[q] = __fadd_rn(wr[q], __ldg(nu + j));
                    }
                }
                st[tid * (TB + 1) + (int)(t - t0)] = o;
            }
        }
        __syncthreads();
        const int64_t w = t1 - t0;
        for (int64_t idx = tid; idx < nr * w; idx += ROWS) {
            int r = (int)(idx / w);
            int64_t t = t0 + idx % w;
            u[(row0 + r) * T + t] = win[r * SW + (int)(t & mask)];
            s[(row0 + r) * T + t] = st[r * (TB + 1) + (int)(t - t0)];
        }
        const int64_t Ln = t1 + TB + KW - 1 < T ? t1 + TB + KW - 1 : T;
        if (Ln > L) {
            __syncthreads(); /* the slots being refilled have been written out */
            load(L, Ln);
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
        float q = __fdiv_rn(-fabsf(__fsub_rn(u[i], theta)), tau);
        gin[i] = __fmul_rn(gout[i], __fmul_rn(st, slc_exp_nonpos(q)));
    }
}

bool same_shape(const sl_tensor *a, const sl_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
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
    SLC_REQUIRE_CONTIGUOUS("spike", spikes, u, ref);
    char b1[128], b2[128];
    if (!same_shape(spikes, u) || u->ndim < 1)
        return sl_errorf("spike: output %s and membrane potential %s differ", sl_shape_str(spikes, b1, sizeof b1),
                         sl_shape_str(u, b2, sizeof b2));
    int64_t T = u->shape[u->ndim - 1];
    if (T == 0 || u->numel == 0) return 0;
    int64_t rows = u->numel / T, K = ref->numel;
    const float amp = 1.0f / Ts;
    int64_t need = TB + (K > 0 ? K : 1) - 1, M = 32;
    while (M < need) M *= 2;
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
    SLC_REQUIRE_CONTIGUOUS("spike backward", gin, gout, u);
    if (gin->numel != u->numel || gout->numel != u->numel)
        return sl_errorf("spike backward: gradient and potential sizes differ");
    if (!(tau > 0)) return sl_errorf("spike backward: tauRho * theta must be positive, got %g", tau);
    int64_t n = u->numel;
    if (n == 0) return 0;
    float st = scale / tau;
    spike_backward_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(gin->data, gout->data, u->data, n,
                                                                               theta, tau, st);
    SLC_LAUNCHED("spike backward");
    return 0;
}
