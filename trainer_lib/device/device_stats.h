// What the trainer asks of its accelerator beyond LibTorch's tensor API: the caching
// allocator's peak (the measured side of common/model_math's memory plan) and the device's
// name (the key of PeakMatmulFlops, MFU's denominator). On a CPU, or in a build whose LibTorch
// has no CUDA, there is nothing to report.
//
// This header does not include LibTorch's full API. Thread-safety: as LibTorch's allocator
// statistics and device properties: callable from any thread.
#ifndef ABLATE_TRAINER_LIB_DEVICE_DEVICE_STATS_H_
#define ABLATE_TRAINER_LIB_DEVICE_DEVICE_STATS_H_

#include <cstdint>
#include <optional>
#include <string>

#include <c10/core/Device.h>

namespace ablate::train {

// The most bytes tensors held at once on `device` since the process started: what
// torch.cuda.max_memory_allocated reports. nullopt on a CPU device or without CUDA support.
std::optional<int64_t> PeakAllocatedBytes(const c10::Device& device);

// The device's memory in bytes (cudaDeviceProp::totalGlobalMem); nullopt on a CPU device or
// without CUDA support.
std::optional<int64_t> TotalMemoryBytes(const c10::Device& device);

// The device's name as CUDA gives it ("NVIDIA H200"); nullopt on a CPU device or without CUDA
// support.
std::optional<std::string> DeviceName(const c10::Device& device);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DEVICE_DEVICE_STATS_H_
