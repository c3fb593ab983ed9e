// Copies from host memory to the device that leave the host free to queue the step's work.
// A copy from pageable host memory makes the host wait until the device has run everything
// queued before it and the copy itself (the driver stages it through a buffer of its own):
// copying each step's batch that way drains the queue once a step, and the device idles while
// the host launches the step's first kernels.
//
// This header does not include LibTorch's full API. Thread-safety: as LibTorch's tensor
// operations.
#ifndef ABLATE_TRAINER_LIB_DEVICE_HOST_COPY_H_
#define ABLATE_TRAINER_LIB_DEVICE_HOST_COPY_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace ablate::train {

// `host` (a CPU tensor of any shape, strides and dtype) on `device`. On a CUDA device the
// copy is queued on the device's current stream and the call returns without waiting for it:
// `host` is first copied into contiguous page-locked memory from LibTorch's caching host
// allocator, and a non-blocking copy from such memory records an event on the stream, before
// which the allocator hands that block to no one else (at::cuda::CachingHostAllocator's
// contract, kept by at::native::copy_kernel_cuda). So the staging buffer needs no owner here,
// `host` may be freed or overwritten on return, and work queued later on the same stream reads
// the copied values. On a CPU device, `host` itself.
at::Tensor CopyToDevice(const at::Tensor& host, const c10::Device& device);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DEVICE_HOST_COPY_H_
