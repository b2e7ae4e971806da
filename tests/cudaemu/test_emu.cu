/* The host emulator's own checks (tests/cudaemu/emu.cpp): that it runs CUDA
   code as a GPU would where the back end relies on it (barriers, warp
   exchanges, stream order, staging of pageable copies), and that it reports
   what a GPU would reject or crash on, and that a race shows (launch limits, the legacy stream,
   host pointers handed to kernels, host code touching device memory,
   kernels running past the end of a block, divergent barriers).  Written as CUDA: translate.pl turns it into C++ like
   the back end's sources.  Faults are sticky, so those run in a child. */
#include <cuda_runtime.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern "C" {
#include "ctest.h" /* tests/c */
}

static cudaStream_t st;

__global__ void block_sum_kernel(float *out, const float *in, int n)
{
    __shared__ float part[32];
    float v = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += in[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x + 31) / 32 ? part[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) out[blockIdx.x] = v;
    }
}

__global__ void ballot_kernel(unsigned *out)
{
    unsigned m = __ballot_sync(0xffffffffu, threadIdx.x % 3 == 0);
    if ((threadIdx.x & 31) == 0) out[threadIdx.x >> 5] = m;
}

__global__ void shfl_partial_kernel(float *out)
{
    float v = (float)threadIdx.x;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 8);
}

__global__ void set_kernel(int *p, int v) { *p = v; }

/* each thread reads its neighbour's shared slot: with the barrier, or
   (racy) without it */
__global__ void neighbour_kernel(float *out, int barrier)
{
    __shared__ float sh[64];
    sh[threadIdx.x] = (float)threadIdx.x;
    if (barrier) __syncthreads();
    out[threadIdx.x] = sh[(threadIdx.x + 1) % 64];
}

__global__ void store_kernel(float *p, int i) { p[i] = 1.0f; }

__global__ void divergent_kernel(float *out)
{
    float v = 1.0f;
    if (threadIdx.x < 16)
        __syncthreads();
    else
        v = __shfl_down_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

__global__ void dyn_shared_kernel(float *out, int n)
{
    extern __shared__ float sm[];
    for (int i = threadIdx.x; i < n; i += blockDim.x) sm[i] = (float)(i & 7);
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int i = 0; i < n; i++) s += sm[i];
        out[0] = s;
    }
}

/* runs f in a child process; returns its wait status */
static int in_child(void (*f)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* the child's stderr would look like a failure in the test log */
        if (!freopen("/dev/null", "w", stderr)) _exit(99);
        f();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

TEST(barriers_and_warp_exchanges_give_the_block_sum)
{
    const int n = 1000;
    float h[n], *d_in = NULL, *d_out = NULL, got[2] = {0, 0};
    double want = 0;
    for (int i = 0; i < n; i++) {
        h[i] = (float)(i % 17);
        want += h[i];
    }
    CHECK(cudaMalloc(&d_in, sizeof h) == cudaSuccess);
    CHECK(cudaMalloc(&d_out, sizeof got) == cudaSuccess);
    CHECK(cudaMemcpyAsync(d_in, h, sizeof h, cudaMemcpyHostToDevice, st) == cudaSuccess);
    block_sum_kernel<<<2, 256, 0, st>>>(d_out, d_in, n);
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(cudaMemcpyAsync(got, d_out, sizeof got, cudaMemcpyDeviceToHost, st) == cudaSuccess);
    CHECK(cudaStreamSynchronize(st) == cudaSuccess);
    CHECK(got[0] == (float)want && got[1] == (float)want);
    cudaFree(d_in);
    cudaFree(d_out);
}

TEST(ballot_collects_the_predicate_of_every_lane)
{
    unsigned *d = NULL, got[2] = {0, 0}, want[2] = {0, 0};
    for (unsigned t = 0; t < 64; t++)
        if (t % 3 == 0) want[t >> 5] |= 1u << (t & 31);
    CHECK(cudaMalloc(&d, sizeof got) == cudaSuccess);
    ballot_kernel<<<1, 64, 0, st>>>(d);
    CHECK(cudaMemcpyAsync(got, d, sizeof got, cudaMemcpyDeviceToHost, st) == cudaSuccess);
    CHECK(got[0] == want[0] && got[1] == want[1]);
    cudaFree(d);
}

TEST(a_lane_reading_a_lane_that_does_not_exist_gets_poison)
{
    float *d = NULL, got[40];
    CHECK(cudaMalloc(&d, sizeof got) == cudaSuccess);
    shfl_partial_kernel<<<1, 40, 0, st>>>(d); /* the second warp has lanes 0..7 only */
    CHECK(cudaMemcpyAsync(got, d, sizeof got, cudaMemcpyDeviceToHost, st) == cudaSuccess);
    CHECK(got[0] == 8.0f && got[23] == 31.0f && got[24] == 24.0f); /* lanes past 31 keep their own */
    CHECK(isnan(got[32]));                                        /* lane 8 of warp 1 does not exist */
    cudaFree(d);
}

TEST(work_runs_in_stream_order_when_the_host_waits)
{
    int *d = NULL, *pinned = NULL;
    CHECK(cudaMalloc(&d, sizeof(int)) == cudaSuccess);
    CHECK(cudaHostAlloc(&pinned, sizeof(int), cudaHostAllocDefault) == cudaSuccess);
    *pinned = 0;
    set_kernel<<<1, 1, 0, st>>>(d, 7);
    CHECK(cudaMemcpyAsync(pinned, d, sizeof(int), cudaMemcpyDeviceToHost, st) == cudaSuccess);
    CHECK(*pinned == 0); /* to pinned memory: not yet run */
    CHECK(cudaStreamSynchronize(st) == cudaSuccess);
    CHECK(*pinned == 7);
    /* a pageable source is read when the call is made, a pinned one when the copy runs */
    int pageable = 11, back = 0;
    CHECK(cudaMemcpyAsync(d, &pageable, sizeof(int), cudaMemcpyHostToDevice, st) == cudaSuccess);
    pageable = 12;
    CHECK(cudaMemcpyAsync(&back, d, sizeof(int), cudaMemcpyDeviceToHost, st) == cudaSuccess);
    CHECK(back == 11);
    *pinned = 21;
    CHECK(cudaMemcpyAsync(d, pinned, sizeof(int), cudaMemcpyHostToDevice, st) == cudaSuccess);
    *pinned = 22;
    CHECK(cudaMemcpyAsync(&back, d, sizeof(int), cudaMemcpyDeviceToHost, st) == cudaSuccess);
    CHECK(back == 22);
    cudaFreeHost(pinned);
    cudaFree(d);
}

/* the results of a missing barrier change with the scheduling order */
static void neighbours(int barrier, int order, float *got)
{
    float *d = NULL;
    emu::set_order(order);
    cudaMalloc(&d, 64 * sizeof(float));
    cudaMemsetAsync(d, 0, 64 * sizeof(float), st);
    neighbour_kernel<<<1, 64, 0, st>>>(d, barrier);
    cudaMemcpyAsync(got, d, 64 * sizeof(float), cudaMemcpyDeviceToHost, st);
    cudaFree(d);
    emu::set_order(-1);
}

TEST(a_race_shows_as_results_that_change_with_the_scheduling_order)
{
    float fwd[64], rev[64], shuf[64];
    neighbours(1, 0, fwd);
    neighbours(1, 1, rev);
    neighbours(1, 2, shuf);
    CHECK(memcmp(fwd, rev, sizeof fwd) == 0 && memcmp(fwd, shuf, sizeof fwd) == 0);
    CHECK(fwd[0] == 1.0f && fwd[63] == 0.0f);
    neighbours(0, 0, fwd);
    neighbours(0, 1, rev);
    CHECK(memcmp(fwd, rev, sizeof fwd) != 0);
}

TEST(bad_launches_and_copies_are_refused_with_a_reason)
{
    float *d = NULL, host[4];
    CHECK(cudaMalloc(&d, 64 * sizeof(float)) == cudaSuccess);
    set_kernel<<<1, 2048, 0, st>>>((int *)d, 1);
    cudaError_t e = cudaGetLastError();
    CHECK(e == cudaErrorInvalidConfiguration);
    CHECK(strstr(cudaGetErrorString(e), "2048") != NULL);
    CHECK(cudaGetLastError() == cudaSuccess); /* not sticky */
    set_kernel<<<dim3(1, 70000), 1, 0, st>>>((int *)d, 1);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    set_kernel<<<1, 1, 0, 0>>>((int *)d, 1);
    e = cudaGetLastError();
    CHECK(e == cudaErrorInvalidResourceHandle);
    CHECK(strstr(cudaGetErrorString(e), "legacy default stream") != NULL);
    set_kernel<<<1, 1, 0, st>>>((int *)host, 1);
    e = cudaGetLastError();
    CHECK(e == cudaErrorInvalidValue);
    CHECK(strstr(cudaGetErrorString(e), "argument 1") != NULL);
    CHECK(cudaMemcpyAsync(host, d, sizeof host, cudaMemcpyHostToDevice, st) == cudaErrorInvalidValue);
    CHECK(cudaMemcpyAsync(d + 62, host, sizeof host, cudaMemcpyHostToDevice, st) == cudaErrorInvalidValue);
    CHECK(cudaMemsetAsync(host, 0, sizeof host, st) == cudaErrorInvalidValue);
    /* dynamic shared memory past 48 KiB needs the kernel's attribute */
    const int n = 16384; /* 64 KiB */
    dyn_shared_kernel<<<1, 256, n * sizeof(float), st>>>(d, n);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    CHECK(cudaFuncSetAttribute(dyn_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, n * 4) == cudaSuccess);
    dyn_shared_kernel<<<1, 256, n * sizeof(float), st>>>(d, n);
    CHECK(cudaGetLastError() == cudaSuccess);
    float s = 0;
    CHECK(cudaMemcpyAsync(&s, d, sizeof s, cudaMemcpyDeviceToHost, st) == cudaSuccess);
    CHECK(s == (float)(n / 8 * 28));
    cudaFree(d);
}

static void touch_device_memory(void)
{
    float *d = NULL;
    if (cudaMalloc(&d, 16) != cudaSuccess) _exit(3);
    d[0] = 1.0f; /* host code writing a GPU pointer */
    _exit(0);
}

static void write_past_the_end(void)
{
    float *d = NULL;
    if (cudaMalloc(&d, 64 * sizeof(float)) != cudaSuccess) _exit(3);
    store_kernel<<<1, 1, 0, st>>>(d, 63); /* the last element: fine */
    if (cudaStreamSynchronize(st) != cudaSuccess) _exit(4);
    store_kernel<<<1, 1, 0, st>>>(d, 64); /* one past the end */
    cudaStreamSynchronize(st);
    _exit(0);
}

/* a block the caching allocator hands out for 60 of its 64 floats */
static void write_past_the_request(void)
{
    float *d = NULL;
    if (cudaMalloc(&d, 64 * sizeof(float)) != cudaSuccess) _exit(3);
    emu::redzone(d, 60 * sizeof(float));
    static float host[64];
    if (cudaMemcpyAsync(d, host, 61 * sizeof(float), cudaMemcpyHostToDevice, st) != cudaErrorInvalidValue) _exit(4);
    cudaGetLastError();
    if (cudaMemcpyAsync(d, host, 60 * sizeof(float), cudaMemcpyHostToDevice, st) != cudaSuccess) _exit(5);
    store_kernel<<<1, 1, 0, st>>>(d, 59); /* the last element asked for: fine */
    if (cudaStreamSynchronize(st) != cudaSuccess) _exit(6);
    store_kernel<<<1, 1, 0, st>>>(d + 8, 52); /* element 60, through a pointer inside the block */
    cudaError_t e = cudaStreamSynchronize(st);
    if (e != cudaErrorLaunchFailure || !strstr(cudaGetErrorString(e), "store_kernel wrote past the end")) _exit(7);
    _exit(0);
}

static void divergent_barrier(void)
{
    float *d = NULL;
    if (cudaMalloc(&d, 64 * sizeof(float)) != cudaSuccess) _exit(3);
    divergent_kernel<<<1, 32, 0, st>>>(d);
    if (cudaGetLastError() != cudaSuccess) _exit(4); /* a launch error: not what is tested */
    cudaError_t e = cudaStreamSynchronize(st);
    if (e != cudaErrorLaunchFailure || !strstr(cudaGetErrorString(e), "divergent barrier")) _exit(5);
    if (cudaMalloc(&d, 16) != cudaErrorLaunchFailure) _exit(6); /* sticky, as on a GPU */
    _exit(0);
}

TEST(host_access_to_device_memory_crashes)
{
    int status = in_child(touch_device_memory);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
}

TEST(a_kernel_writing_past_the_end_of_a_block_crashes)
{
    int status = in_child(write_past_the_end);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
}

TEST(a_kernel_writing_into_the_slack_of_a_cached_block_is_a_fault)
{
    int status = in_child(write_past_the_request);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(threads_waiting_at_different_barriers_are_a_fault)
{
    int status = in_child(divergent_barrier);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    if (cudaSetDevice(0) != cudaSuccess || cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess) {
        printf("c-tests: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(barriers_and_warp_exchanges_give_the_block_sum);
    RUN(ballot_collects_the_predicate_of_every_lane);
    RUN(a_lane_reading_a_lane_that_does_not_exist_gets_poison);
    RUN(work_runs_in_stream_order_when_the_host_waits);
    RUN(a_race_shows_as_results_that_change_with_the_scheduling_order);
    RUN(bad_launches_and_copies_are_refused_with_a_reason);
    RUN(host_access_to_device_memory_crashes);
    RUN(a_kernel_writing_past_the_end_of_a_block_crashes);
    RUN(a_kernel_writing_into_the_slack_of_a_cached_block_is_a_fault);
    RUN(threads_waiting_at_different_barriers_are_a_fault);
    return END();
}
