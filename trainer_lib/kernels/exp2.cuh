// Softmax in base 2, as FlashAttention computes it (Dao, 2023): scores scaled by log2(e), so that
// each exponential is one instruction of the SFU. Device code only; included by the .cu files of
// this folder.
#ifndef ABLATE_TRAINER_LIB_KERNELS_EXP2_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_EXP2_CUH_

namespace ablate::kernels {

// exp(x) = 2^(x log2(e)); log(x) = log2(x) ln(2).
inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

// 2^x by PTX's ex2.approx.ftz.f32: +0 for x = -inf and for results below 2^-126 (fp32's smallest
// normal), NaN for NaN. CUDA's exp2f is the same instruction wrapped in a rescale that keeps
// results in fp32's subnormal range: on sm_90 a compare, a predicate and two multiplies more per
// call, which were most of the selection kernel's work per score (its SASS under Nsight Compute
// on an H200). Our softmaxes exponentiate against a row's running maximum, its log-sum-exp or a
// shift within 2^64 of its maximum (nsa_selected.h's kNsaMaxShiftGap), so a term flushed to 0
// is below 2^-62 of the row's largest: beneath fp32's rounding of their sum.
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_EXP2_CUH_
