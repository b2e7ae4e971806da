/*
 * synapse.cu -- the GPU twins of csrc/ops/synapse.c: dense, conv,
 * convTranspose (the adjoint of conv) and the reference's folded sum
 * pooling, applied at every time bin.
 *
 * conv (dense is the conv whose kernel covers the whole input):
 *   y[n, o, oh, ow, t] = sum_{c in group(o), i, j} W[o, c, i, j] * x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw, t]
 * Convs of one group that do not cover the input, up to 128 outputs, run
 * direct loops without columns (synapse.cuh: the forward, the input
 * gradient of stride 1 as the same loop over the output gradient with the
 * weights flipped, and the weight gradient in chunks of output rows whose
 * partials are added in a fixed order), unless the layer forces its GEMM
 * path.  The rest go through columns, as on the CPU: im2col copies runs of
 * T (time innermost, so consecutive threads copy consecutive bins):
 *   col[(c, i, j), (oh, ow, t)] = x[n, c, ih, iw, t]          (0 outside)
 * and every sample is one GEMM per group, all time bins at once:
 *   y[n] (O x OH*OW*T) = W (O x C*kh*kw) . col
 * through cuBLAS's strided-batched sgemm over a chunk of samples (the
 * weight's batch stride is 0).  The column buffer of a chunk is capped
 * (COL_CAP bytes, at least one sample), so memory stays bounded at any
 * batch size.  When the kernel covers the input exactly (dense), col is x
 * itself and no copy is made.
 * Backward: dcol = W^T . g[n] (batched the same way), gathered back by
 * col2im with one thread per input element adding its (i, j) terms in the
 * CPU's order; dW = sum_n g[n] . col^T, per sample (or, when a sample's
 * OH*OW*T positions are long, per segment of them: synapse.cuh) into
 * partial products that a second kernel adds in a fixed order (when they
 * fit in PART_CAP), else accumulated sample after sample with beta = 1.  cuBLAS runs in
 * float32 (no TF32), so products agree with OpenBLAS's to rounding.
 *
 * Sparse input of dense layers (spike trains; csrc/ops/synapse.c takes the
 * same path on the CPU, chosen in Lua): for the weight gradient, and for
 * the forward only when the layer's sparse setting forces it (the list's
 * forward is slower than cuBLAS on an H200: see sl_conv_forward_cuda),
 * when the kernel covers the input
 * (dense) and the layer is wide (at least SPARSE_MIN_OUT outputs,
 * SPARSE_MIN_IN inputs) or its sparse setting (sl_conv_params) forces it,
 * the non-zeros of x are counted and listed on the
 * device (a CSR over the rows (n, i), in t order) and
 *   y[n, :, t] += v * W^T[i, :]        dW[:, i] += v * g[n, :, t]
 * for every non-zero x[n, i, t] = v, in the CPU's order (i, then t; n,
 * then t), with separately rounded products: bit-identical to the CPU's
 * sparse path, and about nnz / numel of the GEMM's work.  Nothing waits
 * for the device: the path is chosen from the count of the layer's previous
 * input (a hint per layer, or per shape for unnamed ones, copied
 * asynchronously to pinned host memory), cuBLAS when that was above SLC_SP_MAX_DENSITY, and the list gets
 * a capacity from it (synapse.cuh's slc_sp_capacity).  When this input has
 * more non-zeros than that, the list is not written and the kernels read x
 * itself in the same order: the same result, slower, for that call.  The
 * list is rebuilt for the weight gradient rather than kept between calls.
 *
 * Folded pooling (SPEC.md 9.4, 9.5): the input (for pool padded with
 * H mod kh zero rows and W mod kw zero columns) viewed as one channel of
 * height C*H'; one thread per output element sums its window (pool) or per
 * input element gathers the windows that read it (unpool, the adjoint), in
 * the CPU's order of (i, j) and with its separately rounded products, so
 * results are bit-identical to csrc/ops/synapse.c.
 *
 * The element and phase functions, the GEMM plans and the cut of the batch
 * into chunks are in synapse.cuh, which tests/c/test_cuda_synapse.c runs on
 * the host against the CPU ops.  The CPU ops check the operands (contiguous,
 * 5-D, a valid kernel, shapes that fit, products within the int sizes BLAS
 * and cuBLAS take) before they dispatch here.
 */
#include "common.cuh"
#include "synapse.cuh"

#include <cub/device/device_scan.cuh>
#include <cublas_v2.h>

/* runtime.cu: pinned host memory (NULL and the error set on failure) */
extern "C" void *sl_cuda_host_alloc(size_t bytes);

namespace slc {
cublasHandle_t blas();
}

namespace {

/* bytes of im2col columns per chunk: 64 MB (one sample of W2's conv1 at
   T = 300, 61 MB; 256 MB took a quarter of W2's peak at batch 12) */
const size_t COL_CAP = (size_t)64 << 20;
const size_t PART_CAP = (size_t)64 << 20;  /* bytes of partial weight gradients */
const int64_t WG_SEG_MIN = 1024;          /* positions of a weight-gradient segment, at least */

int blas_fail(const char *op, cublasStatus_t s)
{
    return sl_errorf_code(SL_EDEVICE, "%s: cuBLAS error: %s", op, cublasGetStatusString(s));
}

/* a plan of synapse.cuh (checked on the host by tests/c/test_cuda_synapse.c) */
int run_gemm(const char *op, const slc_gemm &q)
{
    const float one = 1.0f;
    cublasStatus_t s = cublasSgemmStridedBatched(slc::blas(), q.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                 q.tb ? CUBLAS_OP_T : CUBLAS_OP_N, q.m, q.n, q.k, &one, q.A, q.lda,
                                                 q.sA, q.B, q.ldb, q.sB, &q.beta, q.C, q.ldc, q.sC, q.batch);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : blas_fail(op, s);
}

typedef slc_conv_dims Dims;

/* ---- im2col / col2im ------------------------------------------------------ */

/* col[s, (c, i, j), (oh, ow, t)] for samples n0 .. n0 + nb - 1: block
   (row, tile of IM_THREADS * IM_PER of its OW * T elements) */
constexpr int IM_THREADS = 256, IM_PER = 4;
__global__ void __launch_bounds__(IM_THREADS)
im2col_kernel(float *__restrict__ col, const float *__restrict__ x, Dims d, int64_t n0, int64_t tiles)
{
    const int64_t row = blockIdx.x / tiles, tile = blockIdx.x % tiles;
    const slc_im2col_row r = slc_im2col_row_of(x, &d, n0, row);
    const uint32_t len = (uint32_t)(d.OW * d.T);
    float *dst = col + row * (int64_t)len;
    for (int k = 0; k < IM_PER; k++) {
        const uint32_t q = (uint32_t)tile * (IM_THREADS * IM_PER) + (uint32_t)(k * IM_THREADS) + threadIdx.x;
        if (q < len) dst[q] = slc_im2col_row_value(&r, &d, q);
    }
}

/* gin[n0 + s, c, ih, iw, t] = sum over the (i, j) that read it, in order */
__global__ void col2im_kernel(float *__restrict__ gin, const float *__restrict__ col, Dims d, int64_t n0,
                              int64_t total)
{
    float *g = gin + n0 * d.C * d.H * d.W * d.T;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x)
        g[e] = slc_col2im_value(col, &d, e);
}

/* w[k] += sum_s part[s, k]: SUM_LANES lanes per weight each add every
   SUM_LANES-th partial (slc_lane_sum), then lane 0 adds the lanes' sums in
   lane order: a fixed order, the same bits at every call */
constexpr int SUM_K = 32, SUM_LANES = 16;
__global__ void __launch_bounds__(SUM_K *SUM_LANES)
sum_partials_kernel(float *__restrict__ w, const float *__restrict__ part, int64_t np, int64_t wn)
{
    __shared__ float acc[SUM_LANES][SUM_K];
    int64_t k = blockIdx.x * (int64_t)SUM_K + threadIdx.x;
    int lane = threadIdx.y;
    acc[lane][threadIdx.x] = k < wn ? slc_lane_sum(part, np, wn, k, lane, SUM_LANES) : 0.0f;
    __syncthreads();
    if (lane == 0 && k < wn) {
        float v = w[k];
        for (int l = 0; l < SUM_LANES; l++) v = v + acc[l][threadIdx.x];
        w[k] = v;
    }
}

int sum_partials(const char *op, float *w, const float *part, int64_t np, int64_t wn)
{
    int64_t blocks = (wn + SUM_K - 1) / SUM_K;
    if (blocks > INT32_MAX) return sl_errorf("%s: %lld blocks exceed the grid limit", op, (long long)blocks);
    sum_partials_kernel<<<(unsigned)blocks, dim3(SUM_K, SUM_LANES), 0, slc::stream()>>>(w, part, np, wn);
    SLC_LAUNCHED(op);
    return 0;
}

int im2col(const char *op, float *col, const float *x, const Dims &d, int64_t n0, int64_t nb)
{
    const int64_t rows = nb * d.C * d.KK * d.OH, tiles = (d.OW * d.T + IM_THREADS * IM_PER - 1) / (IM_THREADS * IM_PER);
    if (rows * tiles == 0) return 0;
    if (rows * tiles > INT32_MAX)
        return sl_errorf("%s: %lld blocks exceed the grid limit", op, (long long)(rows * tiles));
    im2col_kernel<<<(unsigned)(rows * tiles), IM_THREADS, 0, slc::stream()>>>(col, x, d, n0, tiles);
    SLC_LAUNCHED(op);
    return 0;
}

/* ---- direct convolution (synapse.cuh): block (row, group, tile) ---------- */

/* blocks per SM the registers are sized for: six blocks' 32 KB of staged
   weights fit an sm_90 SM's shared memory, and at most 80 registers a
   thread (ptxas: none spilled, where its own choice for 32 outputs spilled
   8 bytes at 80) */
constexpr int DC_MIN_BLOCKS = 6;

template <int OB>
__global__ void __launch_bounds__(SLC_DC_TILE, DC_MIN_BLOCKS)
direct_conv_kernel(float *__restrict__ y, const float *__restrict__ x, const float *__restrict__ w, slc_direct q,
                   int64_t tiles, int64_t groups, int64_t cchunk)
{
    __shared__ __align__(16) float ws[SLC_DC_WS];
    const slc_direct_blk k = slc_direct_block(blockIdx.x, &q, tiles, groups, OB);
    const int tid = threadIdx.x;
    const int64_t p = k.p0 + tid;
    const bool live = p < q.OW * q.T;
    /* a thread past the row's end computes position 0 and stores nothing */
    const uint32_t pp = live ? (uint32_t)p : 0u, T = (uint32_t)q.T, ow = pp / T, t = pp - ow * T;
    float acc[OB];
#pragma unroll
    for (int o = 0; o < OB; o++) acc[o] = 0.0f;
    for (int64_t c0 = 0; c0 < q.C; c0 += cchunk) {
        const int64_t cn = q.C - c0 < cchunk ? q.C - c0 : cchunk;
        __syncthreads(); /* the previous chunk's weights have been read */
        slc_direct_stage(ws, w, &q, k.o0, OB, c0, cn, tid, SLC_DC_TILE);
        __syncthreads();
        slc_direct_accumulate(acc, OB, ws, x, &q, k.n, k.oh, ow, t, c0, cn);
    }
    if (live) slc_direct_store(y, acc, OB, &q, k.n, k.o0, k.oh, p);
}

/* out = the direct loop q over in (a conv, or the adjoint of one) */
int direct_conv(const char *op, float *out, const float *in, const float *w, const slc_direct &q)
{
    const int ob = slc_direct_ob(q.O);
    const int64_t tiles = (q.OW * q.T + SLC_DC_TILE - 1) / SLC_DC_TILE, groups = (q.O + ob - 1) / ob;
    const int64_t blocks = q.N * q.OH * groups * tiles, cchunk = slc_direct_cchunk(&q, ob);
    if (blocks == 0) return 0;
    if (blocks > INT32_MAX) return sl_errorf("%s: %lld blocks exceed the grid limit", op, (long long)blocks);
    const unsigned nb = (unsigned)blocks;
    cudaStream_t st = slc::stream();
    if (ob == 8)
        direct_conv_kernel<8><<<nb, SLC_DC_TILE, 0, st>>>(out, in, w, q, tiles, groups, cchunk);
    else if (ob == 16)
        direct_conv_kernel<16><<<nb, SLC_DC_TILE, 0, st>>>(out, in, w, q, tiles, groups, cchunk);
    else
        direct_conv_kernel<32><<<nb, SLC_DC_TILE, 0, st>>>(out, in, w, q, tiles, groups, cchunk);
    SLC_LAUNCHED(op);
    return 0;
}

/* a scratch buffer of n X released when it goes out of scope (after the
   launches that use it were queued: later users are ordered after them) */
template <typename X>
struct Buf {
    X *p = NULL;
    size_t bytes = 0;
    Buf() {}
    explicit Buf(size_t n) { alloc(n); }
    Buf(const Buf &) = delete;
    Buf &operator=(const Buf &) = delete;
    bool alloc(size_t n)
    {
        bytes = n * sizeof(X);
        p = n ? (X *)slc::scratch(bytes) : NULL;
        return !failed();
    }
    ~Buf() { if (p) slc::scratch_free(p, bytes); }
    bool failed() const { return bytes && !p; }
};
typedef Buf<float> Scratch;

/* ---- direct weight gradient (synapse.cuh): block (chunk, tile) ---------- */

template <int WO>
__global__ void __launch_bounds__(WO / 2 * 16)
wgrad_direct_kernel(float *__restrict__ part, const float *__restrict__ g, const float *__restrict__ x, Dims d,
                    int64_t n0, int64_t otiles, int64_t ctiles)
{
    __shared__ __align__(16) float gs[WO * SLC_WG_LD];
    __shared__ __align__(16) float cs[SLC_WG_WCK * SLC_WG_LD];
    __shared__ __align__(16) slc_wg_col tab[SLC_WG_WCK];
    constexpr int NT = WO / 2 * 16;
    const int tid = threadIdx.x, to = tid / 16, col = tid % 16;
    const slc_wg_blk k = slc_wg_block(blockIdx.x, &d, otiles, ctiles);
    const int64_t o0 = k.og * WO, ck0 = k.cg * SLC_WG_WCK;
    slc_wg_table(tab, &d, ck0, tid, NT);
    float acc[8];
#pragma unroll
    for (int k = 0; k < 8; k++) acc[k] = 0.0f;
    for (int64_t p0 = k.pstart; p0 < k.pend; p0 += SLC_WG_PCH) {
        __syncthreads(); /* the table is written; the previous step's values have been read */
        slc_wg_stage(gs, cs, tab, g, x, &d, WO, o0, n0 + k.s, k.oh, p0, k.pend, tid, NT);
        __syncthreads();
        slc_wg_accumulate(acc, gs, cs, WO, to, col);
    }
    slc_wg_store(part, acc, &d, k.chunk, o0, ck0, WO, to, col);
}

/* gw = the weight gradient of conv d, through partials of as many samples
   at a time as fit in PART_CAP (at least one), added in order */
int wgrad_direct(const char *op, float *gw, const float *g, const float *x, const Dims &d)
{
    const int wo = slc_wg_wo(d.O);
    const int64_t CK = d.C * d.KK, wn = d.O * CK, otiles = (d.O + wo - 1) / wo;
    const int64_t ctiles = (CK + SLC_WG_WCK - 1) / SLC_WG_WCK, per = d.OH * slc_wg_segs(&d);
    const int64_t ms = slc_wg_samples(&d, PART_CAP);
    SLC_CHECK(op, cudaMemsetAsync(gw, 0, (size_t)wn * sizeof(float), slc::stream()));
    Scratch part((size_t)(ms * per * wn));
    if (part.failed()) return SL_ENOMEM;
    for (int64_t n0 = 0; n0 < d.N; n0 += ms) {
        const int64_t m = d.N - n0 < ms ? d.N - n0 : ms, blocks = m * per * otiles * ctiles;
        if (blocks > INT32_MAX) return sl_errorf("%s: %lld blocks exceed the grid limit", op, (long long)blocks);
        if (wo == 16)
            wgrad_direct_kernel<16><<<(unsigned)blocks, slc_wg_threads(16), 0, slc::stream()>>>(part.p, g, x, d, n0,
                                                                                            otiles, ctiles);
        else
            wgrad_direct_kernel<32><<<(unsigned)blocks, slc_wg_threads(32), 0, slc::stream()>>>(part.p, g, x, d, n0,
                                                                                            otiles, ctiles);
        SLC_LAUNCHED(op);
        int rc = sum_partials(op, gw, part.p, m * per, wn);
        if (rc) return rc;
    }
    return 0;
}

/* ---- sparse input of dense layers ------------------------------------------ */

const int64_t SPARSE_MIN_OUT = 32, SPARSE_MIN_IN = 512;
constexpr int SP_OB = SLC_SP_OB;     /* outputs per block (one per thread) */
constexpr int SP_TT = SLC_SP_TT;     /* time bins per forward block */
constexpr int SP_ROWS = SLC_SP_ROWS; /* row starts staged in shared memory at a time */

bool sparse_eligible(const Dims &d, bool full, const sl_conv_params *p)
{
    if (!full || d.G != 1 || p->sparse < 0) return false;
    return p->sparse > 0 || (d.O >= SPARSE_MIN_OUT && d.C * d.KK >= SPARSE_MIN_IN);
}

/* the non-zeros of x [rows, T]: row r holds t[k], v[k] for start[r] <= k <
   start[r + 1], written only when their number start[rows] fits cap */
struct Sparse {
    int64_t rows = 0, cap = 0;
    Buf<int64_t> start;
    Buf<int32_t> t;
    Buf<float> v;
};

/* warp per row: the number of non-zeros (neither +0 nor -0; NaN counts) */
__global__ void count_rows_kernel(int64_t *__restrict__ cnt, const float *__restrict__ x, int64_t rows, int64_t T)
{
    const int lane = threadIdx.x & 31;
    const int64_t nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t r = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5; r < rows; r += nw) {
        const float *row = x + r * T;
        int64_t c = 0;
        for (int64_t t0 = 0; t0 < T; t0 += 32) {
            int64_t t = t0 + lane;
            c += __popc(__ballot_sync(0xffffffffu, t < T && row[t] != 0.0f));
        }
        if (lane == 0) cnt[r] = c;
    }
}

/* warp per row: the non-zeros in t order at start[r], unless they overflow cap */
__global__ void fill_rows_kernel(int32_t *__restrict__ tt, float *__restrict__ vv, const int64_t *__restrict__ start,
                                 const float *__restrict__ x, int64_t rows, int64_t T, int64_t cap)
{
    if (start[rows] > cap) return; /* the kernels read x instead */
    const int lane = threadIdx.x & 31;
    const int64_t nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t r = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5; r < rows; r += nw) {
        const float *row = x + r * T;
        int64_t base = start[r];
        for (int64_t t0 = 0; t0 < T; t0 += 32) {
            int64_t t = t0 + lane;
            float v = t < T ? row[t] : 0.0f;
            bool nz = t < T && v != 0.0f;
            unsigned m = __ballot_sync(0xffffffffu, nz);
            if (nz) {
                int64_t k = base + __popc(m & ((1u << lane) - 1u));
                tt[k] = (int32_t)t;
                vv[k] = v;
            }
            base += __popc(m);
        }
    }
}

/* out[b] = in[b]^T for B matrices [R, Cc], through 32 x 32 shared tiles;
   blocks stride over batches (z) and row tiles (y) past the grid's limits */
__global__ void transpose_kernel(float *__restrict__ out, const float *__restrict__ in, int64_t B, int64_t R,
                                 int64_t Cc)
{
    __shared__ float tile[32][33];
    const int64_t c0 = (int64_t)blockIdx.x * 32;
    for (int64_t b = blockIdx.z; b < B; b += gridDim.z) {
        const float *src = in + b * R * Cc;
        float *dst = out + b * R * Cc;
        for (int64_t r0 = (int64_t)blockIdx.y * 32; r0 < R; r0 += (int64_t)gridDim.y * 32) {
            __syncthreads(); /* the previous tile has been read */
            for (int k = threadIdx.y; k < 32; k += blockDim.y) {
                int64_t r = r0 + k, c = c0 + threadIdx.x;
                if (r < R && c < Cc) tile[k][threadIdx.x] = src[r * Cc + c];
            }
            __syncthreads();
            for (int k = threadIdx.y; k < 32; k += blockDim.y) {
                int64_t c = c0 + k, r = r0 + threadIdx.x;
                if (r < R && c < Cc) dst[c * R + r] = tile[threadIdx.x][k];
            }
        }
    }
}

int transpose(const char *op, float *out, const float *in, int64_t B, int64_t R, int64_t Cc)
{
    if (B == 0 || R == 0 || Cc == 0) return 0;
    /* Cc is T or a layer's input count, both below 2^31: its tiles fit grid.x */
    int64_t ctiles = (Cc + 31) / 32, rtiles = (R + 31) / 32;
    dim3 grid((unsigned)ctiles, (unsigned)(rtiles < 65535 ? rtiles : 65535), (unsigned)(B < 65535 ? B : 65535));
    transpose_kernel<<<grid, dim3(32, 8), 0, slc::stream()>>>(out, in, B, R, Cc);
    SLC_LAUNCHED(op);
    return 0;
}

/* ---- density hints: each layer shape's last non-zero count ---------------- */

const int HINT_SLOTS = 64;
volatile int64_t *hint_count = NULL; /* pinned; -1: not known (yet) */
uint64_t hint_key[HINT_SLOTS];       /* the shape owning each slot, 0: none */

/* the slot of the layer (by its name, else its shape; a colliding one takes
   the slot over) */
int hint_slot(const Dims &d, int32_t layer, int *slot)
{
    if (!hint_count) {
        void *p = sl_cuda_host_alloc(HINT_SLOTS * sizeof(int64_t));
        if (!p) return SL_ENOMEM;
        hint_count = (volatile int64_t *)p;
        for (int k = 0; k < HINT_SLOTS; k++) hint_count[k] = -1;
    }
    uint64_t key = 14695981039346656037ull; /* FNV-1a over the name and the four sizes */
    const int64_t parts[5] = {layer, d.N, d.C * d.KK, d.O, d.T};
    for (int64_t v : parts) key = (key ^ (uint64_t)v) * 1099511628211ull;
    key = key ? key : 1;
    *slot = (int)(key % HINT_SLOTS);
    if (hint_key[*slot] != key) {
        hint_key[*slot] = key;
        hint_count[*slot] = -1;
    }
    return 0;
}

/* Count the non-zeros of the dense layer d's input x [rows, T] and list
   them, or leave *use false for the GEMM path (chosen from the hint; the
   count is copied to it for the next call without waiting). */
int sparse_build(const char *op, Sparse *s, const float *x, const Dims &d, const sl_conv_params *p, bool *use)
{
    *use = false;
    const int64_t rows = d.N * d.C * d.KK, T = d.T;
    if (rows + 1 > INT32_MAX || T > INT32_MAX) return 0;
    int slot;
    int rc = hint_slot(d, p->layer, &slot);
    if (rc) return rc;
    s->rows = rows;
    s->cap = slc_sp_capacity(rows * T, hint_count[slot], p->sparse);
    Buf<int64_t> cnt(rows + 1);
    if (cnt.failed() || !s->start.alloc(rows + 1)) return SL_ENOMEM;
    SLC_CHECK(op, cudaMemsetAsync(cnt.p + rows, 0, sizeof(int64_t), slc::stream()));
    count_rows_kernel<<<slc::grid_for(rows * 32), slc::THREADS, 0, slc::stream()>>>(cnt.p, x, rows, T);
    SLC_LAUNCHED(op);
    size_t tb = 0;
    SLC_CHECK(op, cub::DeviceScan::ExclusiveSum(NULL, tb, cnt.p, s->start.p, (int)(rows + 1), slc::stream()));
    Buf<char> tmp(tb);
    if (tmp.failed()) return SL_ENOMEM;
    SLC_CHECK(op, cub::DeviceScan::ExclusiveSum(tmp.p, tb, cnt.p, s->start.p, (int)(rows + 1), slc::stream()));
    SLC_CHECK(op, cudaMemcpyAsync((void *)(hint_count + slot), s->start.p + rows, sizeof(int64_t),
                                  cudaMemcpyDeviceToHost, slc::stream()));
    if (s->cap == 0) return 0;
    if (!s->t.alloc((size_t)s->cap) || !s->v.alloc((size_t)s->cap)) return SL_ENOMEM;
    fill_rows_kernel<<<slc::grid_for(rows * 32), slc::THREADS, 0, slc::stream()>>>(s->t.p, s->v.p, s->start.p, x,
                                                                                   rows, T, s->cap);
    SLC_LAUNCHED(op);
    *use = true;
    return 0;
}

/* block (n, block of SP_OB outputs, tile of SP_TT bins), thread per output:
   acc[t][o] += v * wT[i, o] over the non-zeros (i, t) of sample n in the
   tile, i increasing and t increasing within i (the CPU's order), from the
   list or, when it overflowed, from x; the phases are synapse.cuh's, which
   tests/c/test_cuda_synapse.c runs on the host */
__global__ void __launch_bounds__(SP_OB)
sparse_forward_kernel(float *__restrict__ y, const int64_t *__restrict__ start, const int32_t *__restrict__ tt,
                      const float *__restrict__ vv, int64_t cap, const float *__restrict__ x,
                      const float *__restrict__ wT, int64_t N, int64_t I, int64_t O, int64_t T, int64_t oblocks)
{
    __shared__ float acc[SP_TT * (SP_OB + 1)]; /* [t][o], odd stride */
    __shared__ int64_t st[SP_ROWS + 1];
    const int tid = threadIdx.x;
    const slc_sp_block k = slc_sp_forward_block(blockIdx.x, T, oblocks);
    const bool listed = start[N * I] <= cap; /* the same in every block */
    for (int j = 0; j < SP_TT; j++) acc[j * (SP_OB + 1) + tid] = 0.0f; /* each thread its own column */
    for (int64_t i0 = 0; i0 < I; i0 += SP_ROWS) {
        const int ni = (int)(I - i0 < SP_ROWS ? I - i0 : SP_ROWS);
        if (!listed) {
            slc_sp_forward_scan(acc + tid, SP_OB + 1, x, wT, &k, O, I, T, i0, ni, tid);
            continue;
        }
        __syncthreads(); /* the previous rows' starts have been read */
        slc_sp_stage(st, start, &k, I, i0, ni, tid, SP_OB);
        __syncthreads();
        slc_sp_forward_rows(acc + tid, SP_OB + 1, st, tt, vv, wT, &k, O, i0, ni, tid);
    }
    __syncthreads();
    slc_sp_forward_store(y, acc, SP_OB + 1, &k, O, T, tid, SP_OB);
}

/* block (input i, block of SP_OB outputs), thread per output o:
   gw[o, i] = sum over n, then the non-zeros (t, v) of row (n, i), of v * gT[n, t, o]
   (from the list, or from x when the list overflowed) */
__global__ void __launch_bounds__(SP_OB)
sparse_wgrad_kernel(float *__restrict__ gw, const int64_t *__restrict__ start, const int32_t *__restrict__ tt,
                    const float *__restrict__ vv, int64_t cap, const float *__restrict__ x,
                    const float *__restrict__ gT, int64_t N, int64_t I, int64_t O, int64_t T, int64_t oblocks)
{
    const int64_t ob = blockIdx.x % oblocks, i = blockIdx.x / oblocks;
    const int64_t o = ob * SP_OB + threadIdx.x;
    if (o >= O) return;
    gw[o * I + i] = start[N * I] <= cap ? slc_sp_wgrad_value(start, tt, vv, gT, N, I, O, T, i, o)
                                        : slc_sp_wgrad_scan(x, gT, N, I, O, T, i, o);
}

/* y [N, O, T] = W [O, I] x for the listed x [N, I, T] */
int sparse_forward(const char *op, float *y, const float *weight, const float *x, const Dims &d, const Sparse &s)
{
    int64_t I = d.C * d.KK, O = d.O, T = d.T;
    Scratch wT((size_t)(I * O));
    if (wT.failed()) return SL_ENOMEM;
    int rc = transpose(op, wT.p, weight, 1, O, I);
    if (rc) return rc;
    int64_t tiles = (T + SP_TT - 1) / SP_TT, oblocks = (O + SP_OB - 1) / SP_OB, blocks = d.N * oblocks * tiles;
    if (blocks > INT32_MAX) return sl_errorf("%s: %lld blocks exceed the grid limit", op, (long long)blocks);
    sparse_forward_kernel<<<(unsigned)blocks, SP_OB, 0, slc::stream()>>>(y, s.start.p, s.t.p, s.v.p, s.cap, x, wT.p,
                                                                         d.N, I, O, T, oblocks);
    SLC_LAUNCHED(op);
    return 0;
}

/* gw [O, I] = sum_{n,t} g[n, :, t] x[n, i, t] for the listed x */
int sparse_wgrad(const char *op, float *gw, const float *g, const float *x, const Dims &d, const Sparse &s)
{
    int64_t I = d.C * d.KK, O = d.O, T = d.T;
    Scratch gT((size_t)(d.N * T * O));
    if (gT.failed()) return SL_ENOMEM;
    int rc = transpose(op, gT.p, g, d.N, O, T);
    if (rc) return rc;
    int64_t oblocks = (O + SP_OB - 1) / SP_OB, blocks = I * oblocks;
    if (blocks > INT32_MAX) return sl_errorf("%s: %lld blocks exceed the grid limit", op, (long long)blocks);
    sparse_wgrad_kernel<<<(unsigned)blocks, SP_OB, 0, slc::stream()>>>(gw, s.start.p, s.t.p, s.v.p, s.cap, x, gT.p,
                                                                       d.N, I, O, T, oblocks);
    SLC_LAUNCHED(op);
    return 0;
}

/* ---- the batch loop the three conv entry points share ------------------ */

typedef slc_conv_job ConvJob;

/* the call's geometry and how its batch is cut (synapse.cuh) */
ConvJob conv_job(const sl_tensor *x, const sl_tensor *w, const sl_tensor *y, const sl_conv_params *p)
{
    Dims d;
    sl_conv_dims_of(&d, x, w, y, p);
    return slc_conv_job_of(&d, COL_CAP);
}

/* the columns of samples n0 .. n0 + m - 1 and their sample stride: x
   itself when the kernel covers it, else im2col into col */
int columns(const char *op, const ConvJob &j, const float *x, float *col, int64_t n0, int64_t m, const float **src,
            long long *stride)
{
    if (j.full) {
        *src = x + n0 * j.xs;
        *stride = j.xs;
        return 0;
    }
    *src = col;
    *stride = j.cs;
    return im2col(op, col, x, j.d, n0, m);
}

} /* namespace */

SL_CUDA_API int sl_conv_forward_cuda(sl_tensor *out, const sl_tensor *in, const sl_tensor *weight,
                                     const sl_conv_params *p)
{
    const char *op = "conv";
    if (out->numel == 0) return 0;
    ConvJob j = conv_job(in, weight, out, p);
    int rc;
    const Dims &d = j.d;
    /* the event list's forward only when the layer forces it: each of its
       blocks walks every input row in turn, which bounds it (on an H200,
       W1's first layer at batch 128 on 1.5% spikes: 5.7 ms against 2.3 ms
       for cuBLAS; W1's whole forward at batch 12 took 1.9 ms); its weight
       gradient pays (1.3 against 2.9 ms) and keeps the hint's choice */
    if (p->sparse > 0 && sparse_eligible(d, j.full, p)) {
        Sparse s;
        bool use = false;
        if ((rc = sparse_build(op, &s, in->data, d, p, &use))) return rc;
        if (use) return sparse_forward(op, out->data, weight->data, in->data, d, s);
    }
    if (p->sparse >= 0 && slc_direct_takes(&d, j.full, 0))
        return direct_conv(op, out->data, in->data, weight->data, slc_direct_of(&d, 0));
    Scratch col(slc_conv_col_elems(&j));
    if (col.failed()) return SL_ENOMEM;
    for (int64_t n0 = 0; n0 < d.N; n0 += j.nb) {
        int64_t m = slc_conv_chunk(&j, n0);
        const float *src;
        long long sb;
        if ((rc = columns(op, j, in->data, col.p, n0, m, &src, &sb))) return rc;
        for (int64_t g = 0; g < d.G; g++)
            if ((rc = run_gemm(op, slc_gemm_forward(&d, g, src, sb, weight->data, out->data + n0 * j.ys, (int)m))))
                return rc;
    }
    return 0;
}

SL_CUDA_API int sl_conv_backward_input_cuda(sl_tensor *gin, const sl_tensor *gout, const sl_tensor *weight,
                                            const sl_conv_params *p)
{
    const char *op = "conv backward";
    if (gin->numel == 0) return 0;
    ConvJob j = conv_job(gin, weight, gout, p);
    int rc;
    const Dims &d = j.d;
    if (p->sparse >= 0 && slc_direct_takes(&d, j.full, 1))
        return direct_conv(op, gin->data, gout->data, weight->data, slc_direct_of(&d, 1));
    Scratch col(slc_conv_col_elems(&j));
    if (col.failed()) return SL_ENOMEM;
    for (int64_t n0 = 0; n0 < d.N; n0 += j.nb) {
        int64_t m = slc_conv_chunk(&j, n0);
        float *dst = j.full ? gin->data + n0 * j.xs : col.p;
        long long sd = j.full ? j.xs : j.cs;
        for (int64_t g = 0; g < d.G; g++)
            if ((rc = run_gemm(op, slc_gemm_dgrad(&d, g, gout->data + n0 * j.ys, weight->data, dst, sd, (int)m))))
                return rc;
        if (!j.full) {
            int64_t total = m * j.xs;
            col2im_kernel<<<slc::grid_for(total), slc::THREADS, 0, slc::stream()>>>(gin->data, col.p, d, n0, total);
            SLC_LAUNCHED(op);
        }
    }
    return 0;
}

SL_CUDA_API int sl_conv_backward_weight_cuda(sl_tensor *gweight, const sl_tensor *gout, const sl_tensor *in,
                                             const sl_conv_params *p)
{
    const char *op = "conv weight gradient";
    int64_t wn = gweight->numel;
    if (wn == 0) return 0;
    ConvJob j = conv_job(in, gweight, gout, p);
    int rc;
    const Dims &d = j.d;
    if (gout->numel > 0 && sparse_eligible(d, j.full, p)) {
        Sparse s;
        bool use = false;
        if ((rc = sparse_build(op, &s, in->data, d, p, &use))) return rc;
        if (use) return sparse_wgrad(op, gweight->data, gout->data, in->data, d, s);
    }
    if (gout->numel > 0 && p->sparse >= 0 && slc_wg_takes(&d, j.full))
        return wgrad_direct(op, gweight->data, gout->data, in->data, d);
    SLC_CHECK(op, cudaMemsetAsync(gweight->data, 0, (size_t)wn * sizeof(float), slc::stream()));
    if (gout->numel == 0) return 0;
    /* partial products (per sample, or per segment of a sample's
       positions: synapse.cuh), as many samples at a time as fit in
       PART_CAP; otherwise (large dense weights) one GEMM per sample */
    int64_t seg = slc_wgrad_seg(d.P, WG_SEG_MIN), nseg = slc_wgrad_nseg(d.P, seg);
    bool partials = slc_conv_wgrad_partials(&j, wn, nseg, PART_CAP);
    Scratch col(slc_conv_col_elems(&j));
    Scratch part(partials ? (size_t)(j.nb * nseg * wn) : 0);
    if (col.failed() || part.failed()) return SL_ENOMEM;
    for (int64_t n0 = 0; n0 < d.N; n0 += j.nb) {
        int64_t m = slc_conv_chunk(&j, n0);
        const float *src;
        long long sb;
        if ((rc = columns(op, j, in->data, col.p, n0, m, &src, &sb))) return rc;
        const float *g0 = gout->data + n0 * j.ys;
        if (partials && nseg == 1) {
            /* part[s] = g[n0 + s] . col[s]^T, all samples in one product */
            for (int64_t g = 0; g < d.G; g++)
                if ((rc = run_gemm(op, slc_gemm_wgrad(&d, g, src, sb, g0, part.p, wn, (int)m, 0.0f)))) return rc;
        } else if (partials) {
            /* part[s * nseg + q]: sample s's segment q */
            for (int64_t k = 0; k < m; k++)
                for (int64_t g = 0; g < d.G; g++) {
                    slc_gemm full, tail;
                    slc_gemm_wgrad_segments(&d, g, src + k * sb, g0 + k * j.ys, part.p + k * nseg * wn, wn, seg,
                                            &full, &tail);
                    if (full.batch > 0 && (rc = run_gemm(op, full))) return rc;
                    if (tail.batch > 0 && (rc = run_gemm(op, tail))) return rc;
                }
        } else {
            for (int64_t k = 0; k < m; k++)
                for (int64_t g = 0; g < d.G; g++)
                    if ((rc = run_gemm(op, slc_gemm_wgrad(&d, g, src + k * sb, 0, g0 + k * j.ys, gweight->data, 0, 1,
                                                          1.0f))))
                        return rc;
        }
        if (partials && (rc = sum_partials(op, gweight->data, part.p, m * nseg, wn))) return rc;
    }
    return 0;
}

/* ---- folded sum pooling -------------------------------------------------- */

namespace {

typedef slc_fold Fold;

/* block (row a, tile of POOL_THREADS * SLC_POOL_EPT of its elements) */
constexpr int POOL_THREADS = 256;
__global__ void __launch_bounds__(POOL_THREADS)
pool_kernel(float *__restrict__ y, const float *__restrict__ x, const float *__restrict__ w, Fold f, int64_t tiles)
{
    const int64_t a = blockIdx.x / tiles, tile = blockIdx.x % tiles;
    const uint32_t e0 = (uint32_t)tile * (POOL_THREADS * SLC_POOL_EPT) + threadIdx.x;
    slc_pool_row(y, x, w, &f, a, e0, POOL_THREADS);
}

__global__ void __launch_bounds__(POOL_THREADS)
unpool_kernel(float *__restrict__ x, const float *__restrict__ y, const float *__restrict__ w, Fold f, int64_t tiles)
{
    const int64_t a = blockIdx.x / tiles, tile = blockIdx.x % tiles;
    const uint32_t e0 = (uint32_t)tile * (POOL_THREADS * SLC_POOL_EPT) + threadIdx.x;
    slc_unpool_row(x, y, w, &f, a, e0, POOL_THREADS);
}

} /* namespace */

SL_CUDA_API int sl_fold_pool_cuda(sl_tensor *y, sl_tensor *x, const sl_tensor *weight, const sl_conv_params *p,
                                  int adjoint, int odd_pad)
{
    Fold f;
    sl_fold_of(&f, x->shape, p, odd_pad);
    const int64_t rows = adjoint ? f.N * f.C * f.H : f.N * f.Rf, len = (adjoint ? f.W : f.Q) * f.T;
    const int64_t tiles = (len + POOL_THREADS * SLC_POOL_EPT - 1) / (POOL_THREADS * SLC_POOL_EPT);
    if ((adjoint ? x->numel : y->numel) == 0 || rows * tiles == 0) return 0;
    if (rows * tiles > INT32_MAX || len > INT32_MAX)
        return sl_errorf("pool: %lld blocks exceed the grid limit", (long long)(rows * tiles));
    if (!adjoint)
        pool_kernel<<<(unsigned)(rows * tiles), POOL_THREADS, 0, slc::stream()>>>(y->data, x->data, weight->data, f,
                                                                                  tiles);
    else
        unpool_kernel<<<(unsigned)(rows * tiles), POOL_THREADS, 0, slc::stream()>>>(x->data, y->data, weight->data,
                                                                                    f, tiles);
    SLC_LAUNCHED("pool");
    return 0;
}
