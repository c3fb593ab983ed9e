#include "trainer_lib/device/device_stats.h"

#ifdef ABLATE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace ablate::train {

std::optional<int64_t> PeakAllocatedBytes(const c10::Device& device) {
#ifdef ABLATE_WITH_CUDA
  if (device.is_cuda()) {
    using c10::CachingAllocator::StatType;
    const c10::CachingDeviceAllocator::DeviceStats stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<size_t>(StatType::AGGREGATE)].peak;
  }
#endif
  (void)device;
  return std::nullopt;
}

std::optional<int64_t> TotalMemoryBytes(const c10::Device& device) {
#ifdef ABLATE_WITH_CUDA
  if (device.is_cuda()) {
    return static_cast<int64_t>(at::cuda::getDeviceProperties(device.index())->totalGlobalMem);
  }
#endif
  (void)device;
  return std::nullopt;
}

std::optional<std::string> DeviceName(const c10::Device& device) {
#ifdef ABLATE_WITH_CUDA
  if (device.is_cuda()) return std::string(at::cuda::getDeviceProperties(device.index())->name);
#endif
  (void)device;
  return std::nullopt;
}

}  // namespace ablate::train
