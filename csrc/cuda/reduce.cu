/*
 * reduce.cu -- the GPU twins of csrc/ops/reduce.c.
 *
 * A reduction along dim d views the contiguous input as [outer, n, inner]:
 *     sum:  out[o, i] = sum_k a[o, k, i]
 *     max:  values[o, i] = max_k a[o, k, i], indices[o, i] = first such k
 * sum_all, max_all, min_all, count_nonzero reduce everything; sum_to sums a
 * broadcast gradient back to an operand's shape; scatter_dim is max's
 * backward.
 *
 * Every reduction has a fixed order that depends on the shapes only (never on
 * the GPU's size or on timing), so results are the same from run to run:
 *   - one thread per output walking its inputs in index order where that
 *     leaves enough outputs to fill the GPU -- the CPU's order, so sum_dim
 *     along an inner dim and sum_to give the CPU's bits;
 *   - otherwise a block per output, or fixed chunks per output and then the
 *     chunks in order, accumulating in double and combining with a fixed
 *     tree.
 * max/min ties keep the first index; NaN follows the CPU: max_dim returns the
 * first NaN, max_all/min_all ignore NaNs after the first element.  The CPU
 * ops check the operands (contiguous, the dim and the result's size, a
 * non-empty max) before they dispatch here.
 */
#include "common.cuh"
#include "../hostdev.h"

#include <math.h>

#define GRID_STRIDE(i, n)                                                         \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);     \
         i += (int64_t)gridDim.x * blockDim.x)

static const int RBLOCK = 256; /* threads of a reducing block */

/* the launches' status, read before the scratch block they use is released
   (a release may call the runtime, which must not see a launch error first) */
static int launched_then_free(const char *op, void *scratch, size_t bytes)
{
    cudaError_t e = cudaGetLastError();
    slc::scratch_free(scratch, bytes);
    return e == cudaSuccess ? 0 : slc::cuda_fail(op, e);
}

/* ---- sum along a dim ----------------------------------------------------- */

/* inner == 1, short rows: one thread per row, double accumulator (CPU order) */
__global__ void sum_rows_serial_kernel(float *out, const float *a, int64_t outer, int64_t n)
{
    GRID_STRIDE(o, outer)
    {
        const float *row = a + o * n;
        double s = 0;
        for (int64_t k = 0; k < n; k++) s += row[k];
        out[o] = (float)s;
    }
}

/* inner == 1, long rows: one block per row */
__global__ void sum_rows_block_kernel(float *out, const float *a, int64_t n)
{
    __shared__ double part[32];
    const float *row = a + (int64_t)blockIdx.x * n;
    double s = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += row[k];
    s = slc::block_sum(s, part);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

/* inner == 1, few very long rows: block (c, o) sums chunk c of row o into
   part[o, c]; sum_chunks_kernel then adds each row's chunks in order */
__global__ void sum_rows_chunks_kernel(double *part, const float *a, int64_t n, int64_t chunk)
{
    __shared__ double sh[32];
    const float *row = a + (int64_t)blockIdx.y * n;
    int64_t k0 = (int64_t)blockIdx.x * chunk, k1 = k0 + chunk < n ? k0 + chunk : n;
    double s = 0;
    for (int64_t k = k0 + threadIdx.x; k < k1; k += blockDim.x) s += row[k];
    s = slc::block_sum(s, sh);
    if (threadIdx.x == 0) part[(int64_t)blockIdx.y * gridDim.x + blockIdx.x] = s;
}

/* part is [rows, nchunks] */
__global__ void sum_row_chunks_kernel(float *out, const double *part, int64_t rows, int64_t nchunks)
{
    GRID_STRIDE(o, rows)
    {
        double s = 0;
        for (int64_t c = 0; c < nchunks; c++) s += part[o * nchunks + c];
        out[o] = (float)s;
    }
}

/* inner > 1: one thread per (o, i), float accumulator in k order (CPU's) */
__global__ void sum_inner_serial_kernel(float *out, const float *a, int64_t outer, int64_t n, int64_t inner)
{
    GRID_STRIDE(j, outer * inner)
    {
        int64_t o = j / inner, i = j - o * inner;
        const float *src = a + o * n * inner + i;
        float s = 0;
        for (int64_t k = 0; k < n; k++) s += src[k * inner];
        out[j] = s;
    }
}

/* inner > 1, few outputs, long reduced dim: chunk c of k sums into
   part[c, j] in double, then a second pass adds the chunks in order */
__global__ void sum_inner_chunks_kernel(double *part, const float *a, int64_t outer, int64_t n, int64_t inner,
                                        int64_t chunk, int64_t nchunks)
{
    int64_t m = outer * inner;
    GRID_STRIDE(t, m * nchunks)
    {
        int64_t c = t / m, j = t - c * m;
        int64_t o = j / inner, i = j - o * inner;
        int64_t k0 = c * chunk, k1 = k0 + chunk < n ? k0 + chunk : n;
        const float *src = a + o * n * inner + i;
        double s = 0;
        for (int64_t k = k0; k < k1; k++) s += src[k * inner];
        part[t] = s;
    }
}

__global__ void sum_chunks_kernel(float *out, const double *part, int64_t m, int64_t nchunks)
{
    GRID_STRIDE(j, m)
    {
        double s = 0;
        for (int64_t c = 0; c < nchunks; c++) s += part[c * m + j];
        out[j] = (float)s;
    }
}

SL_CUDA_API int sl_sum_dim_cuda(sl_tensor *out, const sl_tensor *a, int dim)
{
    int64_t outer, n, inner;
    sl_split_dims(a, dim, &outer, &n, &inner);
    if (out->numel == 0) return 0;
    cudaStream_t st = slc::stream();
    if (n == 0) {
        SLC_CHECK("sum", cudaMemsetAsync(out->data, 0, (size_t)out->numel * sizeof(float), st));
        return 0;
    }
    if (inner == 1 && outer <= 64 && n >= 65536) {
        /* a whole tensor's sum (a loss) stays on the device this way */
        int64_t chunk = 16384, nchunks = (n + chunk - 1) / chunk;
        size_t bytes = (size_t)(outer * nchunks) * sizeof(double);
        double *part = (double *)slc::scratch(bytes);
        if (!part) return SL_ENOMEM;
        dim3 grid((unsigned)nchunks, (unsigned)outer);
        sum_rows_chunks_kernel<<<grid, RBLOCK, 0, st>>>(part, a->data, n, chunk);
        sum_row_chunks_kernel<<<slc::grid_for(outer), slc::THREADS, 0, st>>>(out->data, part, outer, nchunks);
        return launched_then_free("sum", part, bytes);
    }
    if (inner == 1) {
        if (n <= 64 || outer >= 65536)
            sum_rows_serial_kernel<<<slc::grid_for(outer), slc::THREADS, 0, st>>>(out->data, a->data, outer, n);
        else
            sum_rows_block_kernel<<<(unsigned)outer, RBLOCK, 0, st>>>(out->data, a->data, n);
        SLC_LAUNCHED("sum");
        return 0;
    }
    int64_t m = outer * inner;
    if (m >= 16384 || n < 4096) {
        sum_inner_serial_kernel<<<slc::grid_for(m), slc::THREADS, 0, st>>>(out->data, a->data, outer, n, inner);
        SLC_LAUNCHED("sum");
        return 0;
    }
    /* enough chunks for about 64k threads, each at least 256 long */
    int64_t nchunks = (65536 + m - 1) / m;
    if (nchunks > n / 256) nchunks = n / 256;
    if (nchunks < 1) nchunks = 1;
    int64_t chunk = (n + nchunks - 1) / nchunks;
    nchunks = (n + chunk - 1) / chunk;
    size_t bytes = (size_t)(m * nchunks) * sizeof(double);
    double *part = (double *)slc::scratch(bytes);
    if (!part) return SL_ENOMEM;
    sum_inner_chunks_kernel<<<slc::grid_for(m * nchunks), slc::THREADS, 0, st>>>(part, a->data, outer, n, inner, chunk,
                                                                                  nchunks);
    sum_chunks_kernel<<<slc::grid_for(m), slc::THREADS, 0, st>>>(out->data, part, m, nchunks);
    return launched_then_free("sum", part, bytes);
}

/* ---- max along a dim ----------------------------------------------------- */

struct ValIdx {
    float v;
    int64_t i;
};

/* the CPU's max_dim rule in a tree: a NaN beats every number (the first NaN
   wins), a larger value wins, ties keep the smaller index */
struct MaxDimPick {
    static __device__ __forceinline__ ValIdx pick(ValIdx a, ValIdx b)
    {
        bool an = isnan(a.v), bn = isnan(b.v);
        if (an != bn) return an ? a : b;
        if (!an && a.v != b.v) return a.v > b.v ? a : b;
        return a.i <= b.i ? a : b;
    }
};

__global__ void max_dim_serial_kernel(float *values, float *indices, const float *a, int64_t outer, int64_t n,
                                      int64_t inner)
{
    GRID_STRIDE(j, outer * inner)
    {
        int64_t o = j / inner, i = j - o * inner;
        float best;
        int64_t bi = sl_argmax_strided(a + o * n * inner + i, n, inner, &best);
        values[j] = best;
        indices[j] = (float)bi;
    }
}

/* combine over the block with P::pick (idempotent, so lanes and warps past
   the end may repeat a value); the result is valid in thread 0 */
template <class P>
__device__ ValIdx block_pick(ValIdx x, ValIdx *shared)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        ValIdx y;
        y.v = __shfl_down_sync(0xffffffffu, x.v, o);
        y.i = __shfl_down_sync(0xffffffffu, x.i, o);
        if (lane + o < 32) x = P::pick(x, y);
    }
    __syncthreads();
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    if (warp == 0) {
        x = shared[lane < nwarps ? lane : 0];
        for (int o = 16; o > 0; o >>= 1) {
            ValIdx y;
            y.v = __shfl_down_sync(0xffffffffu, x.v, o);
            y.i = __shfl_down_sync(0xffffffffu, x.i, o);
            if (lane + o < 32) x = P::pick(x, y);
        }
    }
    return x;
}

/* inner == 1, long rows: one block per row */
__global__ void max_rows_block_kernel(float *values, float *indices, const float *a, int64_t n)
{
    __shared__ ValIdx part[32];
    const float *row = a + (int64_t)blockIdx.x * n;
    ValIdx best = {row[0], 0};
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) best = MaxDimPick::pick(best, ValIdx{row[k], k});
    best = block_pick<MaxDimPick>(best, part);
    if (threadIdx.x == 0) {
        values[blockIdx.x] = best.v;
        indices[blockIdx.x] = (float)best.i;
    }
}

SL_CUDA_API int sl_max_dim_cuda(sl_tensor *values, sl_tensor *indices, const sl_tensor *a, int dim)
{
    int64_t outer, n, inner;
    sl_split_dims(a, dim, &outer, &n, &inner);
    if (values->numel == 0) return 0;
    cudaStream_t st = slc::stream();
    if (inner == 1 && n > 64 && outer < 65536)
        max_rows_block_kernel<<<(unsigned)outer, RBLOCK, 0, st>>>(values->data, indices->data, a->data, n);
    else
        max_dim_serial_kernel<<<slc::grid_for(outer * inner), slc::THREADS, 0, st>>>(values->data, indices->data,
                                                                                   a->data, outer, n, inner);
    SLC_LAUNCHED("max");
    return 0;
}

/* ---- whole-tensor reductions: a fixed grid, then one block --------------- */

/* grid size of the first pass: a function of n only */
static unsigned all_grid(int64_t n)
{
    int64_t b = (n + RBLOCK * 8 - 1) / (RBLOCK * 8);
    return (unsigned)(b < 1 ? 1 : (b > 1024 ? 1024 : b));
}

__global__ void sum_all_kernel(double *part, const float *a, int64_t n)
{
    __shared__ double sh[32];
    double s = 0;
    GRID_STRIDE(i, n) s += a[i];
    s = slc::block_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void sum_parts_kernel(double *result, const double *part, int nparts)
{
    __shared__ double sh[32];
    double s = 0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x) s += part[i];
    s = slc::block_sum(s, sh);
    if (threadIdx.x == 0) *result = s;
}

SL_CUDA_API int sl_sum_all_cuda(double *result, const sl_tensor *a)
{
    int64_t n = a->numel;
    if (n == 0) {
        *result = 0;
        return 0;
    }
    unsigned grid = all_grid(n);
    size_t bytes = (grid + 1) * sizeof(double);
    double *part = (double *)slc::scratch(bytes);
    if (!part) return SL_ENOMEM;
    cudaStream_t st = slc::stream();
    sum_all_kernel<<<grid, RBLOCK, 0, st>>>(part + 1, a->data, n);
    sum_parts_kernel<<<1, RBLOCK, 0, st>>>(part, part + 1, (int)grid);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpyAsync(result, part, sizeof(double), cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = slc::queue_deferred_read();
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    slc::scratch_free(part, bytes);
    if (e != cudaSuccess) return slc::cuda_fail("sum", e);
    return slc::check_deferred();
}

/* the CPU's max_all/min_all rule: a NaN first element stays, later NaNs
   never win; otherwise the extreme value, ties to the smaller index.
   i < 0 marks "no candidate yet" */
template <int WANT_MAX>
struct ExtremePick {
    static __device__ __forceinline__ ValIdx pick(ValIdx a, ValIdx b)
    {
        bool a0 = a.i == 0 && isnan(a.v), b0 = b.i == 0 && isnan(b.v);
        if (a0 || b0) return a0 ? a : b;
        if (a.i < 0 || b.i < 0) return a.i < 0 ? b : a;
        if (a.v != b.v) return (WANT_MAX ? a.v > b.v : a.v < b.v) ? a : b;
        return a.i <= b.i ? a : b;
    }
};

template <int WANT_MAX>
__global__ void extreme_kernel(ValIdx *part, const float *a, int64_t n)
{
    __shared__ ValIdx sh[32];
    ValIdx best = {0.0f, -1};
    GRID_STRIDE(i, n)
    {
        float v = a[i];
        if (!isnan(v) || i == 0) best = ExtremePick<WANT_MAX>::pick(best, ValIdx{v, i});
    }
    best = block_pick<ExtremePick<WANT_MAX>>(best, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = best;
}

template <int WANT_MAX>
__global__ void extreme_parts_kernel(ValIdx *result, const ValIdx *part, int nparts)
{
    __shared__ ValIdx sh[32];
    ValIdx best = {0.0f, -1};
    for (int i = threadIdx.x; i < nparts; i += blockDim.x) best = ExtremePick<WANT_MAX>::pick(best, part[i]);
    best = block_pick<ExtremePick<WANT_MAX>>(best, sh);
    if (threadIdx.x == 0) *result = best;
}

template <int WANT_MAX>
static int extreme_all(float *value, int64_t *index, const sl_tensor *a)
{
    const char *op = WANT_MAX ? "max" : "min";
    int64_t n = a->numel;
    unsigned grid = all_grid(n);
    size_t bytes = (grid + 1) * sizeof(ValIdx);
    ValIdx *part = (ValIdx *)slc::scratch(bytes);
    if (!part) return SL_ENOMEM;
    cudaStream_t st = slc::stream();
    extreme_kernel<WANT_MAX><<<grid, RBLOCK, 0, st>>>(part + 1, a->data, n);
    extreme_parts_kernel<WANT_MAX><<<1, RBLOCK, 0, st>>>(part, part + 1, (int)grid);
    ValIdx r = {0.0f, -1};
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpyAsync(&r, part, sizeof r, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = slc::queue_deferred_read();
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    slc::scratch_free(part, bytes);
    if (e != cudaSuccess) return slc::cuda_fail(op, e);
    *value = r.v;
    if (index) *index = r.i;
    return slc::check_deferred();
}

SL_CUDA_API int sl_max_all_cuda(float *value, int64_t *index, const sl_tensor *a)
{
    return extreme_all<1>(value, index, a);
}

SL_CUDA_API int sl_min_all_cuda(float *value, int64_t *index, const sl_tensor *a)
{
    return extreme_all<0>(value, index, a);
}

__global__ void count_nonzero_kernel(unsigned long long *count, const float *a, int64_t n)
{
    __shared__ unsigned long long sh[32];
    unsigned long long c = 0;
    GRID_STRIDE(i, n) c += a[i] != 0.0f;
    c = slc::block_sum(c, sh);
    if (threadIdx.x == 0) atomicAdd(count, c); /* integers: order does not matter */
}

SL_CUDA_API int64_t sl_count_nonzero_cuda(const sl_tensor *a)
{
    int64_t n = a->numel;
    if (n == 0) return 0;
    unsigned long long *count = (unsigned long long *)slc::scratch(sizeof *count), host = 0;
    if (!count) return SL_ENOMEM;
    cudaStream_t st = slc::stream();
    cudaError_t e = cudaMemsetAsync(count, 0, sizeof *count, st);
    if (e == cudaSuccess) {
        count_nonzero_kernel<<<all_grid(n), RBLOCK, 0, st>>>(count, a->data, n);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpyAsync(&host, count, sizeof host, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = slc::queue_deferred_read();
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    slc::scratch_free(count, sizeof *count);
    if (e != cudaSuccess) return slc::cuda_fail("count_nonzero", e);
    int rc = slc::check_deferred();
    return rc ? rc : (int64_t)host;
}

/* ---- max's backward ------------------------------------------------------ */

__global__ void scatter_dim_kernel(float *out, const float *index, const float *g, int64_t outer, int64_t n,
                                   int64_t inner, int *flag, int code)
{
    GRID_STRIDE(j, outer * inner)
    {
        int64_t o = j / inner, i = j - o * inner;
        float fk = index[j];
        int64_t k = (int64_t)fk; /* truncation, as the CPU's cast */
        if (isnan(fk) || k < 0 || k >= n) {
            slc::record_deferred(flag, code);
            continue;
        }
        out[(o * n + k) * inner + i] = g[j];
    }
}

SL_CUDA_API int sl_scatter_dim_cuda(sl_tensor *out, const sl_tensor *index, const sl_tensor *g, int dim)
{
    int64_t outer, n, inner;
    sl_split_dims(out, dim, &outer, &n, &inner);
    if (out->numel == 0) return 0;
    cudaStream_t st = slc::stream();
    SLC_CHECK("max backward", cudaMemsetAsync(out->data, 0, (size_t)out->numel * sizeof(float), st));
    if (g->numel == 0) return 0;
    static int code = slc::deferred_code("max backward: an index is out of range");
    scatter_dim_kernel<<<slc::grid_for(outer * inner), slc::THREADS, 0, st>>>(out->data, index->data, g->data, outer,
                                                                              n, inner, slc::deferred_flag(), code);
    SLC_LAUNCHED("max backward");
    return 0;
}

/* ---- sum_to: undo broadcasting ------------------------------------------- */

/* a's dims split into kept ones (walked by the output index) and reduced
   ones; `last` is the length of a's last dim when that dim is reduced (the
   CPU then sums each row of it in double before adding), else 0 */
struct SumTo {
    slc::Strided kept;    /* st[0]: a's strides of the kept dims */
    slc::Strided reduced; /* st[0]: a's strides of the reduced dims, last excluded when `last` */
    int64_t last;
    int64_t nred; /* elements of `reduced` */
};

__device__ __forceinline__ int64_t sum_to_base(const SumTo &p, int64_t j)
{
    int64_t off[1];
    slc::strided_offsets<int64_t, 1>(p.kept, j, off);
    return off[0];
}

/* one thread per output: the CPU's order and rounding */
__global__ void sum_to_serial_kernel(float *out, const float *a, SumTo p, int64_t m)
{
    GRID_STRIDE(j, m)
    {
        int64_t base = sum_to_base(p, j);
        float acc = 0;
        for (int64_t r = 0; r < p.nred; r++) {
            int64_t off[1];
            slc::strided_offsets<int64_t, 1>(p.reduced, r, off);
            const float *src = a + base + off[0];
            if (p.last) {
                double s = 0;
                for (int64_t i = 0; i < p.last; i++) s += src[i];
                acc += (float)s;
            } else {
                acc += src[0];
            }
        }
        out[j] = acc;
    }
}

/* few outputs, many inputs each: one block per output, double tree */
__global__ void sum_to_block_kernel(float *out, const float *a, SumTo p)
{
    __shared__ double sh[32];
    int64_t base = sum_to_base(p, blockIdx.x);
    int64_t len = p.last ? p.last : 1;
    int64_t total = p.nred * len;
    double s = 0;
    for (int64_t t = threadIdx.x; t < total; t += blockDim.x) {
        int64_t r = t / len, i = t - r * len;
        int64_t off[1];
        slc::strided_offsets<int64_t, 1>(p.reduced, r, off);
        s += a[base + off[0] + i];
    }
    s = slc::block_sum(s, sh);
    if (threadIdx.x == 0) out[blockIdx.x] = (float)s;
}

SL_CUDA_API int sl_sum_to_cuda(sl_tensor *out, const sl_tensor *a)
{
    int nd = a->ndim, off = a->ndim - out->ndim;
    if (out->numel == 0) return 0;
    cudaStream_t st = slc::stream();
    if (a->numel == 0) {
        SLC_CHECK("sum_to", cudaMemsetAsync(out->data, 0, (size_t)out->numel * sizeof(float), st));
        return 0;
    }
    SumTo p;
    p.kept.nd = 0;
    p.reduced.nd = 0;
    int64_t stride[SL_MAX_DIMS], s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        stride[d] = s;
        s *= a->shape[d];
    }
    /* kept: dims where out has a's size (> 1); reduced: the others */
    bool last_reduced = nd > 0 && (nd - 1 < off || out->shape[nd - 1 - off] == 1);
    p.last = last_reduced ? a->shape[nd - 1] : 0;
    for (int d = 0; d < nd; d++) {
        bool kept = d >= off && out->shape[d - off] != 1;
        if (kept) {
            p.kept.size[p.kept.nd] = a->shape[d];
            p.kept.st[0][p.kept.nd++] = stride[d];
        } else if (!(last_reduced && d == nd - 1)) {
            p.reduced.size[p.reduced.nd] = a->shape[d];
            p.reduced.st[0][p.reduced.nd++] = stride[d];
        }
    }
    if (p.kept.nd == 0) {
        p.kept.nd = 1;
        p.kept.size[0] = 1;
        p.kept.st[0][0] = 0;
    }
    if (p.reduced.nd == 0) {
        p.reduced.nd = 1;
        p.reduced.size[0] = 1;
        p.reduced.st[0][0] = 0;
    }
    p.nred = 1;
    for (int d = 0; d < p.reduced.nd; d++) p.nred *= p.reduced.size[d];
    int64_t m = out->numel;
    int64_t per = p.nred * (p.last ? p.last : 1);
    if (m < 2048 && per >= 2048)
        sum_to_block_kernel<<<(unsigned)m, RBLOCK, 0, st>>>(out->data, a->data, p);
    else
        sum_to_serial_kernel<<<slc::grid_for(m), slc::THREADS, 0, st>>>(out->data, a->data, p, m);
    SLC_LAUNCHED("sum_to");
    return 0;
}
