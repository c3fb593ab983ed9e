// Launching a kernel of this folder with opt-in dynamic shared memory, past the default 48 KiB
// (every NSA kernel's tiles need more). Host code, included by the .cu files of this folder.
#ifndef ABLATE_TRAINER_LIB_KERNELS_LAUNCH_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_LAUNCH_CUH_

#include <cuda_runtime.h>

#include <cstddef>

namespace ablate::kernels {

// Launches kernel<<<grid, threads, smem, stream>>>(args...) after raising its shared-memory limit
// to smem bytes; nothing for an empty grid. Returns the first CUDA error.
template <typename Kernel, typename... Args>
cudaError_t LaunchKernel(Kernel kernel, dim3 grid, int threads, size_t smem, cudaStream_t stream,
                         const Args&... args) {
  if (grid.x == 0) return cudaSuccess;
  const cudaError_t error = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (error != cudaSuccess) return error;
  kernel<<<grid, threads, smem, stream>>>(args...);
  return cudaGetLastError();
}

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_LAUNCH_CUH_
