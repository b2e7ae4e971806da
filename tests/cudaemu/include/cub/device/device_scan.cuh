/* cub/device/device_scan.cuh -- the host emulator's DeviceScan::ExclusiveSum
   (the one CUB call csrc/cuda makes), queued on the stream like a kernel.
   See ../../cuda_runtime.h. */
#ifndef SLAYER_CUDAEMU_CUB_SCAN_H
#define SLAYER_CUDAEMU_CUB_SCAN_H

#include "../../cuda_runtime.h"

#include <functional>

namespace emu {
cudaError_t enqueue_host(const char *name, std::function<void()> op, const void *dev1, const void *dev2,
                         cudaStream_t s);
}

namespace cub {
struct DeviceScan {
    template <typename In, typename Out>
    static cudaError_t ExclusiveSum(void *tmp, size_t &bytes, In in, Out out, int n, cudaStream_t s = 0)
    {
        if (tmp == NULL) {
            bytes = 16;
            return cudaSuccess;
        }
        if (bytes < 16 || n < 0) return cudaErrorInvalidValue;
        return emu::enqueue_host("cub::DeviceScan::ExclusiveSum", [=]() {
            typename std::remove_const<typename std::remove_pointer<Out>::type>::type acc = 0;
            for (int i = 0; i < n; i++) {
                auto v = in[i];
                out[i] = acc;
                acc += v;
            }
        }, (const void *)in, (const void *)out, s);
    }
};
} /* namespace cub */

#endif
