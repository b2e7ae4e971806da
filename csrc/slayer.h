/*
 * slayer.h -- the whole C API of libslayer.
 *
 * Conventions
 *   - Tensors are float32, up to SL_MAX_DIMS dimensions, row-major.  Views
 *     (narrow, select, transpose) carry strides; every compute op requires
 *     contiguous operands (the Lua layer calls :contiguous() first), only
 *     copy and fill accept strided tensors.
 *   - Ops write into an output tensor the caller has allocated with the right
 *     shape.  Every op returns 0 on success or a negative SL_E* code; the
 *     message is then available from sl_last_error() (thread-local).  No
 *     function aborts or exits on user error.
 *   - Each op checks the device of its operands in one place (sl_dispatch in
 *     csrc/internal.h): CUDA tensors go to the function of the same name with
 *     a _cuda suffix in libslayer_cuda.so, loaded at run time.
 *
 * The block between SL_CDEF_BEGIN and SL_CDEF_END is handed verbatim to
 * LuaJIT's ffi.cdef (the build embeds it in the library, see sl_cdef), so it
 * holds plain declarations only: no macros, no #if, no function bodies.
 */
#ifndef SLAYER_H
#define SLAYER_H

#include <stddef.h>
#include <stdint.h>

#define SL_MAX_DIMS 8

#ifdef __cplusplus
extern "C" {
#endif

/* SL_CDEF_BEGIN */
enum { SL_OK = 0, SL_EINVAL = -1, SL_ENOMEM = -2, SL_EIO = -3, SL_EDEVICE = -4, SL_EFORMAT = -5 };
enum { SL_CPU = 0, SL_CUDA = 1 };

typedef struct sl_storage sl_storage;

typedef struct sl_tensor {
    float *data;            /* first element (storage base + offset) */
    int32_t ndim;
    int32_t device;         /* SL_CPU or SL_CUDA */
    int32_t shape[8];
    int64_t stride[8];      /* in elements */
    int64_t numel;
    int64_t offset;         /* in elements, from the storage base */
    sl_storage *storage;    /* reference-counted, shared by views */
} sl_tensor;

/* ---- core: errors, threads, version ------------------------------------ */
const char *sl_last_error(void);
int sl_last_error_code(void); /* the code that came with that message (SL_ENOMEM: out of memory) */
int sl_set_error(const char *msg);
const char *sl_version(void);
const char *sl_cdef(void);
void sl_set_num_threads(int n);
int sl_get_num_threads(void);
/* the CUDA back end (libslayer_cuda.so, opened on first use): 1 when it
   loaded and found a usable GPU, else 0 with the reason in sl_last_error();
   sl_cuda_symbol resolves one of its functions (NULL, error set, if absent) */
int sl_cuda_available(void);
void *sl_cuda_symbol(const char *name);

/* ---- tensors and storage (tensor.c) -------------------------------------- */
sl_tensor *sl_tensor_new(int ndim, const int32_t *shape, int device);
sl_tensor *sl_tensor_view(const sl_tensor *src, int ndim, const int32_t *shape,
                          const int64_t *stride, int64_t offset);
void sl_tensor_free(sl_tensor *t);
int sl_tensor_is_contiguous(const sl_tensor *t);
/* in-place writes to t's storage so far, shared by its views: the Lua
   in-place methods and optimizer steps bump it, and autograd refuses to
   back-propagate through an op whose input changed since the forward */
uint64_t sl_tensor_version(const sl_tensor *t);
void sl_tensor_bump_version(sl_tensor *t);
int sl_copy(sl_tensor *dst, const sl_tensor *src);
int sl_fill(sl_tensor *t, float value);
int sl_copy_from_host(sl_tensor *dst, const float *src, int64_t n);
int sl_copy_to_host(float *dst, const sl_tensor *src, int64_t n);

/* allocator statistics and control (bytes) */
typedef struct sl_mem_stats {
    int64_t live_bytes;      /* held by storages in use */
    int64_t cached_bytes;    /* freed blocks kept for reuse */
    int64_t peak_live_bytes;
    int64_t alloc_calls;     /* requests served */
    int64_t system_allocs;   /* requests that reached the system allocator */
    int64_t cache_limit;
} sl_mem_stats;
void sl_mem_get_stats(int device, sl_mem_stats *out);
void sl_mem_set_cache_limit(int device, int64_t bytes);
void sl_mem_empty_cache(int device);
int sl_mem_pressure(void);   /* 1 when live memory grew past the collect threshold */
int sl_mem_pressure_for(int64_t bytes); /* also 2 before a large allocation the cache cannot serve, once
                                          16 MB were allocated since the last collection */
int sl_mem_pressure_dev(int64_t bytes, int device); /* the same, for a block of `bytes` on `device`
                                                      (the GPU's cache and allocations for SL_CUDA) */
int64_t sl_mem_live_bytes(void); /* CPU and GPU bytes held by storages */
int64_t sl_mem_since_bytes(void); /* CPU and GPU bytes allocated since the last collection */
void sl_mem_set_reuse_gap(int64_t bytes); /* pressure asks for a reuse collection (2) only after this many */
void sl_mem_collected(void); /* called after a Lua GC cycle: resets the threshold */

/* ---- random numbers (ops/random.c): Philox4x32-10, counter based -------- */
void sl_manual_seed(int device, uint64_t seed);
uint64_t sl_rng_seed(int device);
uint64_t sl_rng_offset(int device);
void sl_rng_set_state(int device, uint64_t seed, uint64_t offset);
/* reserve the Philox blocks for n numbers; returns the first block index */
uint64_t sl_rng_reserve(int device, int64_t n);
int sl_rand_uniform(sl_tensor *out, float lo, float hi);
int sl_rand_normal(sl_tensor *out, float mean, float std);
int sl_rand_bernoulli(sl_tensor *out, float p);

/* ---- element-wise (ops/elementwise.c) ------------------------------------ */
/* binary ops broadcast a and b (numpy rules, aligned at the last dim) to out */
enum {
    SL_ADD = 0, SL_SUB, SL_MUL, SL_DIV, SL_POW, SL_MAX, SL_MIN,
    SL_GT, SL_GE, SL_LT, SL_LE, SL_EQ, SL_NE
};
int sl_binary(int op, sl_tensor *out, const sl_tensor *a, const sl_tensor *b);
/* out = a (op) s, or s (op) a when reversed != 0 */
int sl_binary_scalar(int op, sl_tensor *out, const sl_tensor *a, float s, int reversed);
enum {
    SL_NEG = 0, SL_ABS, SL_EXP, SL_LOG, SL_SQRT, SL_SIGN, SL_TANH, SL_SIGMOID,
    SL_RELU, SL_FLOOR, SL_CEIL, SL_ROUND, SL_RSQRT, SL_SQUARE
};
int sl_unary(int op, sl_tensor *out, const sl_tensor *a);
int sl_clamp(sl_tensor *out, const sl_tensor *a, float lo, float hi);
/* y = alpha * x + y (same shapes) */
int sl_axpy(sl_tensor *y, float alpha, const sl_tensor *x);
/* gradient helpers: out = g * (a <op> b)'s partial derivative, broadcast-free */
int sl_where_mask(sl_tensor *out, const sl_tensor *g, const sl_tensor *mask);

/* ---- reductions (ops/reduce.c) ------------------------------------------- */
/* along dim (0-based) of a contiguous tensor; out has that dim of size 1 */
int sl_sum_dim(sl_tensor *out, const sl_tensor *a, int dim);
int sl_max_dim(sl_tensor *values, sl_tensor *indices, const sl_tensor *a, int dim);
int sl_sum_all(double *out, const sl_tensor *a);
int sl_max_all(float *value, int64_t *index, const sl_tensor *a);
/* gradient of sl_max_dim: out is zeroed, then out[o, index[o, i], i] = g[o, i]
   (index holds 0-based positions as floats) */
int sl_scatter_dim(sl_tensor *out, const sl_tensor *index, const sl_tensor *g, int dim);
int sl_min_all(float *value, int64_t *index, const sl_tensor *a);
/* reduce a broadcast gradient back to the shape of out (sum over the
   dimensions where out has size 1 or is missing) */
int sl_sum_to(sl_tensor *out, const sl_tensor *a);
/* out[i] = (a[i] != 0) count */
int64_t sl_count_nonzero(const sl_tensor *a);

/* ---- linear algebra (ops/blas.c) ----------------------------------------- */
/* c = alpha * op(a) @ op(b) + beta * c for 2-D tensors, op = transpose if t* */
int sl_gemm(sl_tensor *c, const sl_tensor *a, int ta, const sl_tensor *b, int tb,
            float alpha, float beta);
/* batched: a [B, m, k], b [B, k, n] (or broadcast B = 1) -> c [B, m, n] */
int sl_bmm(sl_tensor *c, const sl_tensor *a, int ta, const sl_tensor *b, int tb,
           float alpha, float beta);
/* OpenBLAS called directly with its own threads: the benchmark's yardstick */
void sl_raw_sgemm(int m, int n, int k, const float *a, const float *b, float *c);

/* ---- optimizers (ops/optim.c): one fused pass per parameter ------------- */
int sl_sgd_step(sl_tensor *p, sl_tensor *g, sl_tensor *buf, float lr, float momentum,
                float dampening, float weight_decay, int nesterov, int first);
/* mode 0: Adam (2019 PyTorch form), 1: Nadam (reference optimizer.py) */
int sl_adam_step(int mode, sl_tensor *p, sl_tensor *g, sl_tensor *m, sl_tensor *v,
                 sl_tensor *vmax, double lr, double beta1, double beta2, float eps,
                 float weight_decay, int amsgrad, double bias1, double bias2);

/* ---- serialization (ops/serialize.c) ------------------------------------- */
/* Named-tensor file: magic "SLAYERT1", u32 version, u32 count, entries
   {u32 name length, name, u32 ndim, u32 shape[ndim], f32 data[numel]},
   u32 CRC-32 of everything before it.  Written to path.tmp, then renamed. */
int sl_save_tensors(const char *path, int n, const char **names, const sl_tensor **tensors);
typedef struct sl_tensor_file sl_tensor_file;
sl_tensor_file *sl_load_tensors(const char *path);   /* NULL on error */
int sl_tensor_file_count(const sl_tensor_file *f);
const char *sl_tensor_file_name(const sl_tensor_file *f, int i);
int sl_tensor_file_ndim(const sl_tensor_file *f, int i);
const int32_t *sl_tensor_file_shape(const sl_tensor_file *f, int i);
const float *sl_tensor_file_data(const sl_tensor_file *f, int i);
void sl_tensor_file_close(sl_tensor_file *f);
uint32_t sl_crc32(uint32_t crc, const void *data, size_t n);
/* ---- parameters: YAML through libyaml (ops/yaml.c) --------------------- */
/* the first document as events: type 1 mapping start, 2 mapping end,
   3 sequence start, 4 sequence end, 5 scalar (value, style: 1 plain,
   2 single-quoted, 3 double-quoted, 4 literal, 5 folded), 6 alias (anchor) */
typedef struct sl_yaml_doc sl_yaml_doc;
sl_yaml_doc *sl_yaml_parse_file(const char *path);
sl_yaml_doc *sl_yaml_parse_string(const char *text, size_t n);
int sl_yaml_count(const sl_yaml_doc *d);
int sl_yaml_type(const sl_yaml_doc *d, int i);
int sl_yaml_style(const sl_yaml_doc *d, int i);
int sl_yaml_line(const sl_yaml_doc *d, int i);
const char *sl_yaml_value(const sl_yaml_doc *d, int i);
const char *sl_yaml_anchor(const sl_yaml_doc *d, int i);
const char *sl_yaml_tag(const sl_yaml_doc *d, int i);
void sl_yaml_free(sl_yaml_doc *d);

/* ---- temporal: psp, pspLayer, pspFilter (ops/temporal.c) ---------------- */
/* x [N, ...R..., T], filters [F, K] (psp: F = 1), out [N, F*R, T] (any shape
   of that size); out = Ts * causal convolution of each row with each filter */
int sl_temporal_conv(sl_tensor *out, const sl_tensor *in, const sl_tensor *filters, float Ts);
/* adjoint: out [N, R, T] = Ts * sum_f anti-causal correlation of grad [N, F*R, T] */
int sl_temporal_corr(sl_tensor *out, const sl_tensor *grad, const sl_tensor *filters, float Ts);
/* dfilters [F, K] = Ts * sum over samples, rows, t of grad[t] * in[t - i] */
int sl_temporal_filter_grad(sl_tensor *dfilters, const sl_tensor *grad, const sl_tensor *in, float Ts);
/* out = in reversed along its last dimension (learnable filters are stored
   reversed, as the reference's correlation weights) */
int sl_temporal_flip(sl_tensor *out, const sl_tensor *in);

/* ---- spike function and refractory response (ops/spike.c) -------------- */
/* spikes = 1/Ts where u >= theta; adds the refractory kernel into u in place */
int sl_spike_forward(sl_tensor *spikes, sl_tensor *u, const sl_tensor *ref, float theta, float Ts);
/* gin = gout * (scale / tau) * exp(-|u - theta| / tau) */
int sl_spike_backward(sl_tensor *gin, const sl_tensor *gout, const sl_tensor *u, float theta, float tau,
                      float scale);

/* ---- synapses: dense, conv, pool, convTranspose, unpool, dropout (ops/synapse.c) */
/* per-time-bin 2-D convolution geometry (dense: the kernel covers the input) */
typedef struct sl_conv_params {
    int32_t kh, kw, sh, sw, ph, pw, dh, dw, groups;
    /* the GPU's dense layers (the kernel covers the input; the CPU ignores
       both): sparse 0 lets the input's density choose between the event
       list and cuBLAS, 1 forces the events, -1 cuBLAS; layer names the layer
       whose previous input's density is remembered (0: its shape names it).
       The GPU's other convs: -1 takes the columns and cuBLAS instead of the
       direct loops */
    int32_t sparse, layer;
} sl_conv_params;
/* x [N, C, H, W, T], weight [O, C/groups, kh, kw, 1], out [N, O, OH, OW, T] */
int sl_conv_forward(sl_tensor *out, const sl_tensor *in, const sl_tensor *weight, const sl_conv_params *p);
int sl_conv_backward_input(sl_tensor *gin, const sl_tensor *gout, const sl_tensor *weight, const sl_conv_params *p);
/* gweight is overwritten with sum over the batch */
int sl_conv_backward_weight(sl_tensor *gweight, const sl_tensor *gout, const sl_tensor *in, const sl_conv_params *p);
/* the non-zeros of a spike tensor [N, ..., T], rows (n, i); *out is set to
   NULL (and 0 returned) when more than maxDensity of x is non-zero */
typedef struct sl_sparse_rows sl_sparse_rows;
int sl_sparse_rows_new(sl_sparse_rows **out, const sl_tensor *x, double maxDensity);
int64_t sl_sparse_rows_nnz(const sl_sparse_rows *s);
void sl_sparse_rows_free(sl_sparse_rows *s);
/* out [N, O, T] = W x for sparse x, with wT = W^T [I, O] */
int sl_dense_sparse_forward(sl_tensor *out, const sl_sparse_rows *x, const sl_tensor *wT);
/* gw [O, I] = sum_{n,t} gout[n, :, t] x[n, i, t] */
int sl_dense_sparse_weight_grad(sl_tensor *gw, const sl_sparse_rows *x, const sl_tensor *gout);
/* conv (groups 1) of a sparse x shaped like `in`: wT is the weight as
   [C*kh*kw, O]; the weight gradient gw is [O, C, kh, kw, 1] */
int sl_conv_sparse_forward(sl_tensor *out, const sl_tensor *in, const sl_sparse_rows *x, const sl_tensor *wT,
                           const sl_conv_params *p);
int sl_conv_sparse_weight_grad(sl_tensor *gw, const sl_tensor *in, const sl_sparse_rows *x, const sl_tensor *gout,
                               const sl_conv_params *p);
/* folded sum pooling: adjoint 0 computes y from x, 1 computes x from y;
   odd_pad appends the reference's H mod kh / W mod kw zero rows (pool) */
int sl_fold_pool(sl_tensor *y, sl_tensor *x, const sl_tensor *weight, const sl_conv_params *p, int adjoint,
                 int odd_pad);

/* ---- delays: shift, delay gradient (ops/delay.c) ------------------------ */
/* shift each row by trunc(d / Ts) bins; delay NULL: the scalar for all rows,
   else one value per neuron of a sample */
int sl_shift(sl_tensor *out, const sl_tensor *in, const sl_tensor *delay, float scalar, float Ts);
/* gdelay[r] = Ts * sum_{n,t} grad * (out[t-1] - out[t]) / Ts */
int sl_delay_grad(sl_tensor *gdelay, const sl_tensor *grad, const sl_tensor *out, float Ts);

/* ---- losses (ops/loss.c): the numSpikes error's own steps, fused -------- */
/* Per neuron row r of out (rows x T) and the window [lo, hi) of bins:
     actual = (float)(sum_{lo<=t<hi} out[r, t], in double) * Ts
     d      = desired[r] == 1 ? countTrue : countFalse
     c[r]   = (float)((actual - d) / len * scale, in double)
     x[r,t] = out[r,t] - out[r,t] * m(t)          (m = 1 inside the window, else 0)
   each step rounded to float32 as the loss's element-wise ops round it */
int sl_numspikes_prep(sl_tensor *x, sl_tensor *c, const sl_tensor *out, const sl_tensor *desired, int64_t lo,
                      int64_t hi, float Ts, double countTrue, double countFalse, double len, double scale);
/* e[r,t] = p[r,t] + c[r] * m(t), m as above */
int sl_window_add(sl_tensor *e, const sl_tensor *p, const sl_tensor *c, int64_t lo, int64_t hi);
/* Both losses' E = 1/2 * sum(e^2) * Ts, into the one-element out on e's device:
     out[0] = ((float)(sum_i (float)(e[i] * e[i]), in double) * 0.5f) * scale
   summed in the order sum(e:square()) uses on that device */
int sl_half_sq_sum(sl_tensor *out, const sl_tensor *e, float scale);
/* its gradient for the one-element upstream gradient g:
     ge[i] = (((g[0] * scale) * 0.5f) * e[i]) * 2 */
int sl_half_sq_sum_backward(sl_tensor *ge, const sl_tensor *g, const sl_tensor *e, float scale);

/* ---- Loihi integer neuron (ops/loihi.c) --------------------------------- */
typedef struct sl_loihi_neuron {
    int32_t vThMant, vDecay, iDecay, refDelay, wgtExp;
} sl_loihi_neuron;
/* the reference's integer CUBA dynamics, one neuron per row of in [..., T]
   (weighted spikes, multiplied by Ts and truncated): spikes = 1/Ts, voltage
   (vDecay at spike bins), current; voltage and current may be NULL */
int sl_loihi_forward(sl_tensor *spikes, sl_tensor *voltage, sl_tensor *current, const sl_tensor *in,
                     const sl_loihi_neuron *neuron, float Ts);

/* ---- spike files, events, images, data loading (ops/spikeio.c, ops/image.c, ops/loader.c) */
/* formats: 0 .bs1, 1 .bs2, 2 .bs3, 3 .bsn.  count: number of records, or an
   error for a missing file or a partial record */
int64_t sl_spikefile_count(const char *path, int format);
/* bsn: x = neuron id, y = count, t = tStart, t2 = tEnd (ms); others: t2 unused */
int sl_spikefile_read(const char *path, int format, int64_t n, int32_t *x, int32_t *y, int32_t *p, double *t,
                      double *t2);
int sl_spikefile_write(const char *path, int format, int64_t n, const int32_t *x, const int32_t *y,
                       const int32_t *p, const double *t, const double *t2);
/* bin events into out (P, H, W, T) in place; y NULL for 1-D events (H = 1);
   mode 0 OR, 1 SUM (as the reference: no accumulation), 2 COUNT */
int sl_events_to_tensor(sl_tensor *out, int64_t n, const int32_t *x, const int32_t *y, const int32_t *p,
                        const double *t, double Ts, int64_t tShift, int mode);
/* .npy: a rows x cols array of numbers as doubles (sl_npy_free it) */
int64_t sl_npy_read(const char *path, double **data, int64_t *rows, int64_t *cols);
void sl_npy_free(double *data);
int sl_npy_write(const char *path, const double *data, int64_t rows, int64_t cols);
/* IDX (MNIST) files, gzip'd or plain */
sl_tensor *sl_idx_read(const char *path);
/* images: 8-bit RGB PNG; animated GIF of palette-index frames */
int sl_png_write(const char *path, int width, int height, const unsigned char *rgb);
int sl_gif_write(const char *path, int width, int height, int nframes, const unsigned char *frames,
                 const unsigned char *palette, int ncolors, int delay);
/* static image -> events (ops/saccade.c) */
typedef struct sl_saccade_opts {
    int32_t width, height;      /* sensor */
    double dt;                  /* simulation step, ms */
    double saccade;             /* duration of each of the three saccades, ms */
    double threshold;           /* contrast threshold, log units */
    double mismatch;            /* relative spread of per-pixel thresholds */
    double refractory;          /* ms */
    double bg;                  /* intensity of black, in (0, 1) */
    double noise;               /* background events per pixel per second */
    double amplitude;           /* size of the path, pixels */
    double ax, ay, bx, by, cx, cy; /* triangle vertices in units of amplitude */
} sl_saccade_opts;
typedef struct sl_events sl_events;
sl_events *sl_saccade(const float *image, int ih, int iw, const sl_saccade_opts *o, uint64_t seed);
/* n images in parallel, image i written as a .bs2 file to paths[i] */
int sl_saccade_files(const float *images, int n, int ih, int iw, const sl_saccade_opts *o, const uint64_t *seeds,
                     const char **paths);
int64_t sl_events_count(const sl_events *e);
const int32_t *sl_events_x(const sl_events *e);
const int32_t *sl_events_y(const sl_events *e);
const int32_t *sl_events_p(const sl_events *e);
const double *sl_events_t(const sl_events *e);
void sl_events_free(sl_events *e);
/* one spike file -> (C, H, W, T) block at dst (zeroed by the caller) */
int sl_sample_load(const char *path, int format, int C, int H, int W, int T, double Ts, int mode, float *dst);
/* worker-thread batch loading (ops/loader.c) */
typedef struct sl_loader sl_loader;
sl_loader *sl_loader_new(int workers, int depth, int format, int C, int H, int W, int T, double Ts, int mode,
                         int classes);
int sl_loader_start(sl_loader *L, int nsamples, const char **paths, const int32_t *labels, int batch);
int sl_loader_provide(sl_loader *L, int slot, float *input, float *target);
int sl_loader_next(sl_loader *L, int *slot, int *count);
void sl_loader_stop(sl_loader *L);
void sl_loader_free(sl_loader *L);

/* SL_CDEF_END */

#ifdef __cplusplus
}
#endif
#endif
