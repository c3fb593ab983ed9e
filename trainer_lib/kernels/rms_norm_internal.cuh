// What the RMSNorm kernels of rms_norm.cu (any shape, one element at a time) and
// rms_norm_vector.cu (rows that fit in registers, 16-byte accesses) share: the rounding
// helpers, the rope layout and the launch geometry. Device code and launchers only; the
// contract is rms_norm.h's.
#ifndef ABLATE_TRAINER_LIB_KERNELS_RMS_NORM_INTERNAL_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_RMS_NORM_INTERNAL_CUH_

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include "trainer_lib/kernels/rms_norm.h"

namespace ablate::kernels::rms_norm_internal {

inline constexpr int kWarpsPerBlock = 8;
inline constexpr int kThreadsPerBlock = 32 * kWarpsPerBlock;

// The backward's thread blocks, each of which sums its rows' dweight terms into its own
// partial row, are as many as an H200's SMs (132) hold at once, up to kMaxPartials: one wave
// there, each block with an equal share of the rows, and few enough partial rows that they
// stay in L2. Counted for that GPU, not queried from the device, so that dweight's summation
// order, and so its bits, depend on the shape alone and are the same on every GPU.
inline constexpr int64_t kSmCount = 132;
inline constexpr int64_t kMaxPartials = 4 * kSmCount;

// Rounds to the input's dtype and back, as eager's .to(input dtype) does.
template <typename T>
__device__ float RoundIn(float v);
template <>
inline __device__ float RoundIn<float>(float v) {
  return v;
}
template <>
inline __device__ float RoundIn<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// The kernels that may add a residual first, or dsum and dx_bf16 in backward: plain, fp32 x.
// Elsewhere those branches are not compiled at all.
template <typename T, bool kRope>
inline constexpr bool kAddable = std::is_same_v<T, float> && !kRope;

// Sum over aligned groups of kLanes lanes of a warp (all 32 lanes take part): each lane gets
// its group's sum, in the same order in every group.
template <int kLanes = 32>
__device__ float GroupSum(float v) {
  for (int offset = kLanes / 2; offset > 0; offset >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

// r = 1 / sqrt(mean(x^2) + eps) from the row's sum of squares, as ATen computes it: mean as
// sum * (1 / C), then rsqrtf.
__device__ inline float RstdOf(float sum_of_squares, int64_t cols, float eps) {
  return rsqrtf(__fadd_rn(__fmul_rn(sum_of_squares, 1.f / static_cast<float>(cols)), eps));
}

// Where row `row` of x [B, T, H, D] goes in y ([B, H, T, D], or x's own layout with
// p.token_major), and its position t.
struct RopeRow {
  int64_t out_row;
  int64_t t;
};
__device__ inline RopeRow LocateRopeRow(int64_t row, const RmsNormParams& p) {
  const int64_t h = row % p.heads;
  const int64_t bt = row / p.heads;
  const int64_t t = bt % p.seq_len;
  if (p.token_major) return {row, t};
  const int64_t b = bt / p.seq_len;
  return {(b * p.heads + h) * p.seq_len + t, t};
}

// The 16-byte kernels of rms_norm_vector.cu, launched when they take p's shape and alignment;
// false or 0 (and nothing launched) otherwise. Backward returns its blocks' count, at most
// min(rows, kMaxPartials), block i having written row i of p.workspace [count, C].
bool TryVectorForward(const RmsNormParams& p, cudaStream_t stream);
int64_t TryVectorBackward(const RmsNormParams& p, cudaStream_t stream);

}  // namespace ablate::kernels::rms_norm_internal

#endif  // ABLATE_TRAINER_LIB_KERNELS_RMS_NORM_INTERNAL_CUH_
