/* the emulator's stand-in for CUDA's profiler control: no profiler attaches
   to the emulator, so the region calls only succeed (tests/cudaemu/emu.cpp) */
#ifndef CUDAEMU_CUDA_PROFILER_API_H
#define CUDAEMU_CUDA_PROFILER_API_H
#include "cuda_runtime.h"

cudaError_t cudaProfilerStart(void);
cudaError_t cudaProfilerStop(void);

#endif
