// How NSA's block selection ranks blocks, shared by the kernels that select
// (nsa_top_blocks.cu from a chunk's scores, nsa_selection.cu from q and k_cmp): the rule is
// nsa_top_blocks.h's (fla's top n with the forced blocks), the ordering a 64-bit key per block.
// Device code only.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_BLOCK_RANK_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_BLOCK_RANK_CUH_

#include <cstdint>

namespace ablate::kernels::nsa {

// (m, z) := the pair for the union of two sets, each given as (max, sum of exp(x - max));
// (-inf, 0) is the empty set.
inline __device__ void MergeMaxSum(float& m, float& z, float m2, float z2) {
  const float top = fmaxf(m, m2);
  if (top == -INFINITY) return;
  z = z * expf(m - top) + z2 * expf(m2 - top);
  m = top;
}

// A block's score, the mean of its G head probabilities (their sum times 1 / G), at most 1: the
// rounding of an exp (a product the compiler fuses into the next subtraction) or of 1 / G can
// carry it a last bit past 1, where it would outrank the forced blocks' 1. NaN stays NaN.
inline __device__ float GroupMean(float sum, float inv_g) {
  const float v = sum * inv_g;
  return v > 1.0f ? 1.0f : v;
}

// A block's rank as one 64-bit key: its score's bits above the complement of its number, so
// that a larger key is a higher score, then the lower block (non-negative floats order as their
// bits). 0, which no block's key is, for a NaN score, which never ranks.
inline __device__ unsigned long long Key(float v, int64_t c) {
  if (!(v >= 0.0f)) return 0;
  const unsigned bits = v == 0.0f ? 0u : __float_as_uint(v);  // -0 as +0
  return (static_cast<unsigned long long>(bits) << 32) | (0xffffffffu - static_cast<unsigned>(c));
}

inline __device__ int KeyBlock(unsigned long long key) {
  return static_cast<int>(0xffffffffu - static_cast<unsigned>(key & 0xffffffffu));
}

}  // namespace ablate::kernels::nsa

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_BLOCK_RANK_CUH_
