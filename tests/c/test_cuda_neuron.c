/* The per-neuron arithmetic of the GPU kernels (csrc/cuda/neuron.cuh), run on
   the host against the CPU ops, so it is checked on every machine (no GPU
   needed): spike.cu's windowed schedule, run thread after thread, gives
   sl_spike_forward's spikes and potentials for any kernel length; the Loihi
   step, whose refractory state is the time of the last spike where
   csrc/ops/loihi.c counts recent spikes, reproduces sl_loihi_forward bit for
   bit (wrap-around included); and the surrogate gradient of csrc/hostdev.h,
   which spike.cu's backward kernel computes per element, gives
   sl_spike_backward's (its vectorised clones included) exactly. */
#define _POSIX_C_SOURCE 200809L
#include "slayer.h"
#include "ctest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/neuron.cuh"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* uniform on [0, 1) */
static double uniform(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

static sl_tensor *tensor2(int rows, int T)
{
    int32_t s[2] = {rows, T};
    return sl_tensor_new(2, s, SL_CPU);
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* rows of weighted spikes: even integers, fractions (truncated), a row of
   huge values (32-bit wrap-around) and a few NaN and infinities */
static void loihi_input(sl_tensor *x, int rows, int T)
{
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < T; t++) {
            double u = uniform();
            float v = (float)(2.0 * floor(uniform() * 80.0 - 30.0));
            if (u < 0.3) v = 0.0f;
            else if (u < 0.4) v += (float)uniform() * 1.9f - 0.95f;
            if (r == rows - 1) v *= 3e4f;
            if (r == rows - 2 && t % 37 == 5) v = t % 3 == 0 ? NAN : (t % 3 == 1 ? INFINITY : -INFINITY);
            x->data[(int64_t)r * T + t] = v;
        }
}

/* spike.cu's block schedule, each phase run for thread after thread (the
   barriers between phases make that the kernel's result); the windows start
   as NaN, so reading a bin that was never loaded shows */
static void spike_blocks(float *u, float *s, const float *nu, int64_t rows, int64_t T, int64_t K, float theta,
                         float amp)
{
    const int R = SLC_SPIKE_ROWS, M = (int)slc_spike_window(K);
    float *win = malloc(sizeof(float) * (size_t)(R * (M + 1)));
    float st[SLC_SPIKE_ROWS * (SLC_SPIKE_TB + 1)];
    for (int64_t row0 = 0; row0 < rows; row0 += R) {
        const int nr = rows - row0 < R ? (int)(rows - row0) : R;
        for (int i = 0; i < R * (M + 1); i++) win[i] = NAN;
        int64_t L = slc_spike_loaded(0, T, K);
        for (int tid = 0; tid < R; tid++) slc_spike_load(win, M, u, row0, nr, T, 0, L, tid, R);
        for (int64_t t0 = 0; t0 < T; t0 += SLC_SPIKE_TB) {
            const int64_t t1 = t0 + SLC_SPIKE_TB < T ? t0 + SLC_SPIKE_TB : T;
            for (int tid = 0; tid < nr; tid++)
                slc_spike_steps(win + tid * (M + 1), M, st + tid * (SLC_SPIKE_TB + 1), t0, t1, T, nu, K, theta, amp);
            for (int tid = 0; tid < R; tid++) slc_spike_store(u, s, win, M, st, row0, nr, T, t0, t1, tid, R);
            const int64_t Ln = slc_spike_loaded(t1, T, K);
            if (Ln > L) {
                for (int tid = 0; tid < R; tid++) slc_spike_load(win, M, u, row0, nr, T, L, Ln, tid, R);
                L = Ln;
            }
        }
    }
    free(win);
}

TEST(spike_window_schedule_matches_the_cpu_spike_function)
{
    /* kernel lengths 0 .. 700 (windows of 32 .. 1024 bins), rows a multiple
       of 32 and not, rows shorter and longer than a step */
    const int64_t Ks[] = {0, 1, 2, 11, 33, 98, 200, 700};
    const int64_t Ts[] = {5, 32, 33, 300, 1000};
    const float theta = 10.0f, amp = 2.0f;
    for (size_t a = 0; a < sizeof Ks / sizeof Ks[0]; a++)
        for (size_t b = 0; b < sizeof Ts / sizeof Ts[0]; b++) {
            const int64_t K = Ks[a], T = Ts[b], rows = 37;
            sl_tensor *ref = tensor2(1, (int)K);
            for (int64_t j = 0; j < K; j++) ref->data[j] = j == 0 ? -0.0f : (float)(-20.0 * exp(-2.5 * j / K) / K * 10);
            sl_tensor *u = tensor2((int)rows, (int)T), *s = tensor2((int)rows, (int)T);
            float *u2 = malloc(sizeof(float) * (size_t)(rows * T)), *s2 = malloc(sizeof(float) * (size_t)(rows * T));
            for (int64_t i = 0; i < rows * T; i++) u2[i] = u->data[i] = (float)(uniform() * 12.0 + 1.0);
            CHECK(sl_spike_forward(s, u, ref, theta, 1.0f / amp) == 0);
            spike_blocks(u2, s2, ref->data, rows, T, K, theta, amp);
            int bad = 0, spikes = 0;
            for (int64_t i = 0; i < rows * T; i++) {
                bad += !same_bits(s2[i], s->data[i]) || !(u2[i] == u->data[i]);
                spikes += s->data[i] != 0.0f;
            }
            if (bad) fprintf(stderr, "  K %lld, T %lld: %d mismatches\n", (long long)K, (long long)T, bad);
            CHECK(bad == 0);
            CHECK(spikes > 0);
            free(u2);
            free(s2);
            sl_tensor_free(u);
            sl_tensor_free(s);
            sl_tensor_free(ref);
        }
}

TEST(loihi_step_matches_the_cpu_neuron_bit_for_bit)
{
    const int rows = 24, T = 400;
    const sl_loihi_neuron cases[] = {
        {80, 128, 1024, 1, 0}, {80, 128, 1024, 2, 0}, {40, 300, 700, 5, 1}, {20, 4096, 0, 17, 0},
        {80, 0, 4096, 3, 2}, {5, 128, 1024, 1, -2},
    };
    const float Ts[] = {1.0f, 0.5f};
    sl_tensor *x = tensor2(rows, T), *s = tensor2(rows, T), *V = tensor2(rows, T), *U = tensor2(rows, T);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int ts = 0; ts < 2; ts++) {
            const sl_loihi_neuron *n = &cases[k];
            loihi_input(x, rows, T);
            CHECK(sl_loihi_forward(s, V, U, x, n, Ts[ts]) == 0);
            slc_loihi_consts c = slc_loihi_consts_of(n, Ts[ts]);
            int bad = 0, spikes = 0, refractoryGaps = 0;
            for (int r = 0; r < rows; r++) {
                slc_loihi_state st;
                slc_loihi_init(&st, &c);
                const float *xr = x->data + (int64_t)r * T;
                const float *sr = s->data + (int64_t)r * T, *Vr = V->data + (int64_t)r * T, *Ur = U->data + (int64_t)r * T;
                bad += sr[0] != 0.0f || Vr[0] != 0.0f || Ur[0] != 0.0f;
                int64_t last = -1000;
                for (int t = 1; t < T; t++) {
                    float u, v, sp = slc_loihi_step(&st, &c, t, xr[t], &u, &v);
                    bad += !same_bits(sp, sr[t]) || !same_bits(u, Ur[t]) || !same_bits(v, Vr[t]);
                    if (sp != 0.0f) {
                        spikes++;
                        if (t - last < 2 * n->refDelay) refractoryGaps++;
                        last = t;
                    }
                }
            }
            if (bad) fprintf(stderr, "  loihi case %zu, Ts %g: %d mismatches\n", k, (double)Ts[ts], bad);
            CHECK(bad == 0);
            CHECK(spikes > 0);
            /* the refractory rule was exercised: spikes close to each other */
            CHECK(refractoryGaps > 0);
        }
    sl_tensor_free(x);
    sl_tensor_free(s);
    sl_tensor_free(V);
    sl_tensor_free(U);
}

TEST(surrogate_element_gives_the_cpu_spike_backward_exactly)
{
    const int n = 20000;
    sl_tensor *u = tensor2(1, n), *g = tensor2(1, n), *gin = tensor2(1, n);
    for (int i = 0; i < n; i++) {
        u->data[i] = (float)(uniform() * 2000.0 - 1000.0) * (i % 2 ? 1.0f : 0.01f);
        g->data[i] = (float)(uniform() * 2.0 - 1.0);
    }
    const float theta = 10.0f, tau = 10.0f * 0.7f, scale = 1.3f;
    CHECK(sl_spike_backward(gin, g, u, theta, tau, scale) == 0);
    const float st = scale / tau;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        bad += !same_bits(sl_spike_surrogate(g->data[i], u->data[i], theta, tau, st), gin->data[i]);
    }
    if (bad) fprintf(stderr, "  %d of %d surrogate values differ\n", bad, n);
    CHECK(bad == 0);
    /* and it is exp to within a few ulp */
    float worst = 0.0f;
    for (float x = -80.0f; x <= 0.0f; x += 0.01f) {
        float e = expf(x), d = fabsf(sl_exp_nonpos(x) - e) / e;
        if (d > worst) worst = d;
    }
    CHECK(worst < 1e-6f);
    /* below 2^-126 subnormal, as expf, and 0 where expf is */
    int off = 0;
    for (float x = -110.0f; x <= -80.0f; x += 0.01f) {
        float e = expf(x), v = sl_exp_nonpos(x);
        off += !(fabsf(v - e) <= 1e-6f * e + 0x1p-149f) || (e == 0.0f && v != 0.0f);
    }
    CHECK(off == 0);
    CHECK(sl_exp_nonpos(-INFINITY) == 0.0f);
    sl_tensor_free(u);
    sl_tensor_free(g);
    sl_tensor_free(gin);
}

int main(void)
{
    RUN(spike_window_schedule_matches_the_cpu_spike_function);
    RUN(loihi_step_matches_the_cpu_neuron_bit_for_bit);
    RUN(surrogate_element_gives_the_cpu_spike_backward_exactly);
    return END();
}
