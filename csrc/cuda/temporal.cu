/*
 * temporal.cu -- the GPU twins of csrc/ops/temporal.c: causal filtering of
 * every neuron row in time (psp, pspLayer, pspFilter) and its adjoints.
 *
 *   conv: y[n, f, r, t] = Ts * sum_{i=0}^{min(K-1, t)}     h_f[i] * x[n, r, t - i]
 *   corr: x'[n, r, t]   = Ts * sum_f sum_{i=0}^{min(K-1, T-1-t)} h_f[i] * g[n, f, r, t + i]
 *   filter gradient:  dh_f[i] = Ts * sum_{n, r, t} g[n, f, r, t] * x[n, r, t - i]
 *
 * Rows are T bins, time innermost.  conv and corr: one block per (row,
 * filter, tile of up to 1024 bins: the whole row when it fits, in whole
 * warps); the block stages the tile's samples and up to
 * KC filter taps in shared memory, the taps in chunks of KC, and each thread
 * computes TV = 4 consecutive outputs, sliding a window of 4 samples through
 * registers (one shared load per 4 fused multiply-adds), taps four at a
 * time, the samples staged in four phases so that a warp's loads are
 * consecutive words at addresses fixed per group of taps (temporal.cuh; the
 * loop had taken about 19 instructions per tap: a branch, the padded
 * index's arithmetic and register moves per load).  Each output is
 * accumulated in float32 over increasing i with __fmaf_rn (the build uses
 * --fmad=false, so nothing else is contracted) and multiplied by Ts once,
 * exactly as the CPU: the results are bit-identical to csrc/ops/temporal.c.
 * (Terms outside the row read staged zeros: h * 0 added to a sum that is
 * never -0 leaves it unchanged, so they cost time, not exactness.)  corr
 * adds the filters' results in filter order, as the CPU.
 *
 * The filter gradient sums over all rows: rows are cut into a number of
 * chunks that depends on the sizes only, each chunk's partial sums are
 * accumulated in double by one thread per tap, and a second kernel adds the
 * chunks in order, so the result does not depend on scheduling.
 *
 * The CPU ops check the operands (contiguous, an input with a time
 * dimension, a filter, an output that fits) before they dispatch here;
 * the twins check only the grid's limits.
 */
#include "common.cuh"
#include "temporal.cuh"

namespace {

constexpr int TV = SLC_TV;
constexpr int KC = SLC_KC;
constexpr int MAX_THREADS = SLC_MAX_THREADS;

/* conv (CORR false): block b -> output row (n, f, r) and tile; corr (CORR
   true): block b -> output row (n, r) and tile, looping over the filters.
   The phases are temporal.cuh's, which tests/c/test_cuda_temporal.c runs on
   the host against the CPU op. */
template <bool CORR>
__global__ void __launch_bounds__(MAX_THREADS)
temporal_kernel(float *__restrict__ out, const float *__restrict__ in, const float *__restrict__ h, int64_t R,
                int64_t F, int64_t T, int64_t K, int64_t tiles, float Ts)
{
    __shared__ float xs[SLC_XS_WORDS];
    __shared__ __align__(16) float hs[KC];
    const int tid = threadIdx.x, nthreads = blockDim.x, TILE = nthreads * TV;
    const int64_t tile = blockIdx.x % tiles, orow = blockIdx.x / tiles;
    const int64_t t0 = tile * TILE;
    const int64_t kmax = K < T ? K : T; /* taps i >= T never meet the row */
    float res[TV];
#pragma unroll
    for (int v = 0; v < TV; v++) res[v] = 0.0f;
    for (int64_t fi = 0; fi < (CORR ? F : 1); fi++) {
        int64_t f, irow;
        slc_temporal_rows(CORR, orow, fi, R, F, &f, &irow);
        float acc[TV];
#pragma unroll
        for (int v = 0; v < TV; v++) acc[v] = 0.0f;
        for (int64_t i0 = 0; i0 < kmax && slc_temporal_chunk_live(CORR, t0, i0, T, TILE); i0 += KC) {
            const int kn = (int)(kmax - i0 < KC ? kmax - i0 : KC);
            __syncthreads(); /* the previous chunk's reads are done */
            slc_temporal_stage(CORR, xs, hs, in + irow * T, h + f * K, t0, i0, T, kn, tid, nthreads);
            __syncthreads();
            slc_temporal_taps(CORR, acc, xs, hs, tid, kn, slc_temporal_q(slc_temporal_xs(nthreads, kn)));
        }
        slc_temporal_finish(CORR, res, acc, Ts);
    }
    float *y = out + orow * T;
#pragma unroll
    for (int v = 0; v < TV; v++) {
        int64_t t = t0 + TV * tid + v;
        if (t < T) y[t] = res[v];
    }
}

/* partial sums of the filter gradient: block (chunk, f), thread per tap i */
__global__ void filter_grad_partial(double *__restrict__ part, const float *__restrict__ g,
                                    const float *__restrict__ x, int64_t R, int64_t F, int64_t T, int64_t K,
                                    int64_t rows, int64_t per)
{
    const int64_t chunk = blockIdx.x, f = blockIdx.y;
    const int64_t lo = chunk * per, hi = lo + per < rows ? lo + per : rows;
    for (int64_t i = threadIdx.x; i < K; i += blockDim.x) {
        double s = 0;
        for (int64_t j = lo; j < hi; j++) {
            int64_t n = j / R, r = j % R;
            const float *xr = x + j * T, *gr = g + ((n * F + f) * R + r) * T;
            /* lanes read consecutive g, one broadcast x */
            for (int64_t t = i; t < T; t++) s += (double)gr[t] * (double)xr[t - i];
        }
        part[(chunk * F + f) * K + i] = s;
    }
}

__global__ void filter_grad_sum(float *__restrict__ dh, const double *__restrict__ part, int64_t chunks,
                                int64_t FK, float Ts)
{
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < FK; k += (int64_t)gridDim.x * blockDim.x) {
        double s = 0;
        for (int64_t c = 0; c < chunks; c++) s += part[c * FK + k];
        dh[k] = (float)(s * Ts);
    }
}

__global__ void flip_kernel(float *__restrict__ out, const float *__restrict__ in, int64_t K, int64_t n)
{
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / K, i = e % K;
        out[e] = in[r * K + K - 1 - i];
    }
}

int too_many_blocks(const char *op, int64_t blocks)
{
    return blocks > INT32_MAX ? sl_errorf("%s: %lld blocks exceed the grid limit", op, (long long)blocks) : 0;
}

} /* namespace */

SL_CUDA_API int sl_temporal_conv_cuda(sl_tensor *out, const sl_tensor *in, const sl_tensor *filters, float Ts)
{
    int64_t N = 0, F = 0, R = 0, T = 0, K = 0;
    sl_bank_dims(in, filters, &N, &F, &R, &T, &K);
    if (out->numel == 0) return 0;
    int threads = slc_temporal_threads(T);
    int64_t tiles = (T + threads * TV - 1) / (threads * TV), blocks = N * F * R * tiles;
    int rc = too_many_blocks("psp", blocks);
    if (rc) return rc;
    temporal_kernel<false><<<(unsigned)blocks, threads, 0, slc::stream()>>>(out->data, in->data, filters->data, R, F,
                                                                            T, K, tiles, Ts);
    SLC_LAUNCHED("psp");
    return 0;
}

SL_CUDA_API int sl_temporal_corr_cuda(sl_tensor *out, const sl_tensor *grad, const sl_tensor *filters, float Ts)
{
    int64_t N = 0, F = 0, R = 0, T = 0, K = 0;
    sl_bank_dims(out, filters, &N, &F, &R, &T, &K);
    if (out->numel == 0) return 0;
    int threads = slc_temporal_threads(T);
    int64_t tiles = (T + threads * TV - 1) / (threads * TV), blocks = N * R * tiles;
    int rc = too_many_blocks("psp backward", blocks);
    if (rc) return rc;
    temporal_kernel<true><<<(unsigned)blocks, threads, 0, slc::stream()>>>(out->data, grad->data, filters->data, R,
                                                                           F, T, K, tiles, Ts);
    SLC_LAUNCHED("psp backward");
    return 0;
}

SL_CUDA_API int sl_temporal_filter_grad_cuda(sl_tensor *dfilters, const sl_tensor *grad, const sl_tensor *in,
                                             float Ts)
{
    const char *op = "psp filter gradient";
    int64_t N = 0, F = 0, R = 0, T = 0, K = 0;
    sl_bank_dims(in, dfilters, &N, &F, &R, &T, &K);
    int64_t rows = N * R;
    /* at most 2048 chunks of at least 16 rows: a function of the sizes only */
    int64_t chunks = (rows + 15) / 16;
    if (chunks > 2048) chunks = 2048;
    if (chunks < 1) chunks = 1;
    int64_t per = (rows + chunks - 1) / chunks;
    if (F > 65535) return sl_errorf("%s: %lld filters exceed the grid limit", op, (long long)F);
    size_t bytes = (size_t)(chunks * F * K) * sizeof(double);
    double *part = (double *)slc::scratch(bytes);
    if (!part) return SL_ENOMEM;
    filter_grad_partial<<<dim3((unsigned)chunks, (unsigned)F), 128, 0, slc::stream()>>>(part, grad->data, in->data, R,
                                                                                       F, T, K, rows, per);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) {
        filter_grad_sum<<<slc::grid_for(F * K), slc::THREADS, 0, slc::stream()>>>(dfilters->data, part, chunks, F * K,
                                                                                  Ts);
        e = cudaGetLastError();
    }
    slc::scratch_free(part, bytes);
    if (e != cudaSuccess) return slc::cuda_fail(op, e);
    return 0;
}

SL_CUDA_API int sl_temporal_flip_cuda(sl_tensor *out, const sl_tensor *in)
{
    int64_t K = in->shape[in->ndim - 1], n = in->numel;
    if (n == 0) return 0;
    flip_kernel<<<slc::grid_for(n), slc::THREADS, 0, slc::stream()>>>(out->data, in->data, K, n);
    SLC_LAUNCHED("flip");
    return 0;
}
