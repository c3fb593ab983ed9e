// The compressed branch's folded rows back in query order, widened to fp32 (nsa_selected.h's
// NsaUnfoldRowsToFloat): one pass reading each bf16 row once and writing each fp32 row once.
#include <cuda_bf16.h>

#include <cstdint>

#include "trainer_lib/kernels/nsa_selected.h"

namespace ablate::kernels {
namespace {

// A thread per 8 elements of a row of head blockIdx.y + head0: 2^lane_bits = X / 8 threads a
// row. Row t of head h is slot i = (t + 1) mod l of folded row p = (t + 1) / l - 1, held by
// folded head h l + i; the first l - 1 rows (p < 0) see no compressed block and get zeros. Only
// 32-bit divisions: this pass is bound by memory where 64-bit ones would bind it.
__global__ void UnfoldRowsKernel(const uint4* folded, float4* rows, int64_t head0, int t, int l,
                                 int lane_bits) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= (int64_t{t} << lane_bits)) return;
  const int64_t lanes = int64_t{1} << lane_bits, h = head0 + blockIdx.y;
  const int q = static_cast<int>(i >> lane_bits), lane = static_cast<int>(i & (lanes - 1));
  float out[8] = {};
  if (q >= l - 1) {
    const int p = (q + 1) / l - 1, slot = (q + 1) - (p + 1) * l, nf = t / l;
    const uint4 packed = folded[((h * l + slot) * nf + p) * lanes + lane];
    const auto* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 x = __bfloat1622float2(pairs[k]);
      out[2 * k] = x.x;
      out[2 * k + 1] = x.y;
    }
  }
  float4* row = rows + 2 * ((h * t + q) * lanes + lane);
  row[0] = make_float4(out[0], out[1], out[2], out[3]);
  row[1] = make_float4(out[4], out[5], out[6], out[7]);
}

}  // namespace

cudaError_t NsaUnfoldRowsToFloat(const void* folded, float* rows, int64_t heads, int64_t t,
                                 int64_t l, int64_t dim, cudaStream_t stream) {
  int lane_bits = 0;
  while (lane_bits < 6 && (int64_t{8} << lane_bits) < dim) ++lane_bits;
  if ((int64_t{8} << lane_bits) != dim || l < 1 || t < l || t >= (int64_t{1} << 31) >> lane_bits ||
      reinterpret_cast<uintptr_t>(folded) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(rows) % 16 != 0) {
    return cudaErrorInvalidValue;
  }
  constexpr int kThreads = 256;
  constexpr int64_t kMaxGridY = 65535;
  const int64_t blocks = ((t << lane_bits) + kThreads - 1) / kThreads;
  for (int64_t head0 = 0; head0 < heads; head0 += kMaxGridY) {
    const dim3 grid(static_cast<unsigned>(blocks),
                    static_cast<unsigned>(heads - head0 < kMaxGridY ? heads - head0 : kMaxGridY));
    UnfoldRowsKernel<<<grid, kThreads, 0, stream>>>(
        static_cast<const uint4*>(folded), reinterpret_cast<float4*>(rows), head0,
        static_cast<int>(t), static_cast<int>(l), lane_bits);
  }
  return cudaGetLastError();
}

}  // namespace ablate::kernels
