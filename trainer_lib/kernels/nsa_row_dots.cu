// delta = rowsum(do o) for the selected branch's backward (nsa_selected.h's NsaRowDots): one
// pass reading both bf16 tensors once, 16 bytes a lane.
#include <cuda_bf16.h>

#include <cstdint>

#include "trainer_lib/kernels/nsa_selected.h"

namespace ablate::kernels {
namespace {

// `lanes` = D / 8 threads a row (a power of two up to 32, so a row's lanes are one aligned group
// of a warp), each 8 columns of both rows; their fp32 sums then added across the group.
__global__ void RowDotsKernel(const uint4* d_o, const uint4* o, float* delta, int64_t rows,
                              int lanes) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  const int64_t row = i / lanes;
  float sum = 0.0f;
  if (row < rows) {
    const uint4 a = d_o[i], b = o[i];
    const auto* x = reinterpret_cast<const __nv_bfloat162*>(&a);
    const auto* y = reinterpret_cast<const __nv_bfloat162*>(&b);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 fx = __bfloat1622float2(x[k]), fy = __bfloat1622float2(y[k]);
      sum += fx.x * fy.x + fx.y * fy.y;
    }
  }
  for (int offset = lanes / 2; offset > 0; offset /= 2) {
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  }
  if (row < rows && i % lanes == 0) delta[row] = sum;
}

}  // namespace

cudaError_t NsaRowDots(const void* d_o, const void* o, float* delta, int64_t rows, int64_t dim,
                       cudaStream_t stream) {
  if (dim != 64 && dim != 128 && dim != 256) return cudaErrorInvalidValue;
  if (rows <= 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int lanes = static_cast<int>(dim / 8);
  const int64_t blocks = (rows * lanes + kThreads - 1) / kThreads;
  RowDotsKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const uint4*>(d_o), static_cast<const uint4*>(o), delta, rows, lanes);
  return cudaGetLastError();
}

}  // namespace ablate::kernels
