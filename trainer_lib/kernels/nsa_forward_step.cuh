// What the selected branch's two forward-by-block kernels share (nsa_forward_by_block.cu's, on
// mma.sync, and nsa_forward_wgmma.cu's, on Hopper's wgmma): the passes, one warp's softmax over a
// step's [16 rows][64 keys] of scores, and the adding of its P V rows into accum. Both hold S and
// P V in mma.m16n8k16's C fragments, lane rows lane / 4 and lane / 4 + 8 (wgmma's D fragments
// are laid out the same, wgmma_bf16.cuh's "Fragments"). Device code, and the one launcher
// that nsa_forward_by_block.cu hands D = 128 to on Hopper; the contract is nsa_selected.h's.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_FORWARD_STEP_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_FORWARD_STEP_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "trainer_lib/kernels/bulk_add.cuh"
#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_row_shift.cuh"
#include "trainer_lib/kernels/nsa_selected.h"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa {

enum class Pass {
  kStats,    // each row's (m, l) over the tile's keys it sees, merged into row_stats
  kOutput,   // P = exp2(S - lse2) with lse2 = m + log2 l from row_stats, P V added into accum
  kShifted,  // P' = exp2(S - shift2), P' V into accum, P''s row sums into row_sum, max row_max
};

// (m, l) packed as nsa_selected.h's row_stats says, and back.
inline __device__ unsigned long long PackStats(float m, float l) {
  return static_cast<unsigned long long>(__float_as_uint(l)) << 32 | __float_as_uint(m);
}
inline __device__ float StatsMax(unsigned long long x) {
  return __uint_as_float(static_cast<unsigned>(x));
}
inline __device__ float StatsSum(unsigned long long x) {
  return __uint_as_float(static_cast<unsigned>(x >> 32));
}

// Merges a tile's (m, l), l > 0, into a row's: (max, l0 2^(m0 - max) + l 2^(m - max)), the
// online softmax's merge, in whatever order the tiles come.
inline __device__ void MergeStats(unsigned long long* stats, float m, float l) {
  unsigned long long old = *stats, assumed;
  do {
    assumed = old;
    const float m0 = StatsMax(assumed), top = fmaxf(m0, m);
    const float sum = StatsSum(assumed) * Exp2(m0 - top) + l * Exp2(m - top);  // m0 -inf: 0
    old = atomicCAS(stats, assumed, PackStats(top, sum));
  } while (old != assumed);
}

// Step i's facts for a forward kernel's loop (nsa_by_block.cuh's ForEachStep and its facts): thread
// r < kStep finds row r of the step, the tile's keys it sees and, for the output passes, what it
// subtracts from its scores (log2 units) before exp2: lse2 = m + log2 l from row_stats
// (kOutput), shift2 from row_shift (kShifted). Their loads are issued now; the callable returned
// writes them into slot `slot` of facts and row_lse2 ([3][kStep] each) once the step's products
// are under way. *sees, where given: whether the thread's row sees a key of the tile.
template <Pass kPass, int kStep>
__device__ auto StepFacts(const ItemTile& at, const NsaSelectedParams& p, int i, StepRow* facts,
                          float* row_lse2, bool* sees = nullptr) {
  const int r = threadIdx.x;
  int64_t t = 0;
  const int64_t x = r < kStep ? at.Row(p, kStep * i + r, &t) : -1;
  const StepRow row = {x, x < 0 ? make_int2(1, 0) : at.SeenKeys(p, t)};
  if (sees != nullptr) *sees = row.keys.x <= row.keys.y;
  const unsigned long long stats = kPass == Pass::kOutput && x >= 0 ? p.row_stats[x] : 0;
  const float shift = kPass == Pass::kShifted && x >= 0 ? p.row_shift[x] : 0.0f;
  return [=](int slot) {
    if (r >= kStep) return;
    facts[slot * kStep + r] = row;
    if constexpr (kPass == Pass::kOutput) {
      const float l = StatsSum(stats);
      row_lse2[slot * kStep + r] = l > 0.0f ? StatsMax(stats) + log2f(l) : 0.0f;
    } else if constexpr (kPass == Pass::kShifted) {
      row_lse2[slot * kStep + r] = Shift2(shift);
    }
  };
}

// One warp's softmax step over its 16 rows of a step against the tile's kKeys keys, s = S = q K^T
// (unscaled scores, C fragments) in place. The lane's two rows (lane / 4 and lane / 4 + 8) are at
// x[h] (-1: none), see keys seen[h] (ItemTile::SeenKeys) and subtract lse2[h] (StepFacts).
// kMasked = false: every row sees every key. kStats merges each row's (m, l) into row_stats; the
// output passes leave P in s (0 where masked), kShifted also adding each row's sum and max into
// row_sum and row_max. All lanes of the warp.
template <Pass kPass, bool kMasked, int kKeys>
__device__ void SoftmaxStep(const NsaSelectedParams& p, float (&s)[kKeys / 8][4],
                            const int2 (&seen)[2], const int64_t (&x)[2], const float (&lse2)[2],
                            float scale2) {
  const int lane = threadIdx.x % 32;
  // Element (row lane / 4 + 8 (e / 2), key 8 j + 2 (lane % 4) + e % 2): whether its row sees
  // its key, t - w < s <= t.
  const auto visible = [&](int j, int e) {
    const int key = 8 * j + 2 * (lane % 4) + e % 2;
    return !kMasked || (key >= seen[e / 2].x && key <= seen[e / 2].y);
  };
  if constexpr (kPass == Pass::kOutput) {
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = visible(j, e) ? Exp2(s[j][e] * scale2 - lse2[e / 2]) : 0.0f;
      }
    }
    return;
  }
  float top[2] = {-INFINITY, -INFINITY}, sum[2] = {0.0f, 0.0f};
  if constexpr (kPass == Pass::kStats) {
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = visible(j, e) ? s[j][e] * scale2 : -INFINITY;
        top[e / 2] = fmaxf(top[e / 2], s[j][e]);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) top[h] = mma::QuadMax(top[h]);
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (visible(j, e)) sum[e / 2] += Exp2(s[j][e] - top[e / 2]);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sum[h] = mma::QuadSum(sum[h]);
      if (lane % 4 == 0 && sum[h] > 0.0f) MergeStats(p.row_stats + x[h], top[h], sum[h]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float score = visible(j, e) ? s[j][e] * scale2 : -INFINITY;
        top[e / 2] = fmaxf(top[e / 2], score);
        s[j][e] = Exp2(score - lse2[e / 2]);  // 0 where masked
        sum[e / 2] += s[j][e];
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      top[h] = mma::QuadMax(top[h]);
      sum[h] = mma::QuadSum(sum[h]);
      if (lane % 4 == 0 && x[h] >= 0 && top[h] > -INFINITY) {
        atomicMax(p.row_max + x[h], OrderedInt(top[h]));
        atomicAdd(p.row_sum + x[h], sum[h]);
      }
    }
  }
}

// Adds the warp's 16 rows of P V (acc, C fragments over D columns) into p.accum at the rows'
// places (rows[i].at, -1: none), half of the columns at a time through `stage` (16 rows of D / 2
// fp32, 16-byte aligned, the warp's own: a tile of the step's q rows that no product reads any
// more), added by the copy engine (bulk_add.cuh) a row per lane of the first 16. With float4
// atomics, 32 requests a row at D = 128, the kernel ran at 85% of L2's throughput. All lanes of
// the warp. Each issuing lane has waited for the engine's reads when it returns: the stage is
// loaded into again only after the step's closing barrier.
template <int D>
__device__ void AddRows(const NsaSelectedParams& p, const float (&acc)[D / 8][4], float* stage,
                        const StepRow* rows) {
  constexpr int kHalf = D / 2;
  const int lane = threadIdx.x % 32;
  const int64_t row = lane < 16 ? rows[lane].at : -1;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    if (half == 1) {  // the first half's rows read before they are overwritten
      if (lane < 16) bulk::WaitAddsRead();
      __syncwarp();
    }
#pragma unroll
    for (int n = 0; n < kHalf / 8; ++n) {
      const int col = 8 * n + 2 * (lane % 4);
      const float(&c)[4] = acc[half * kHalf / 8 + n];
      *reinterpret_cast<float2*>(stage + (lane / 4) * kHalf + col) = make_float2(c[0], c[1]);
      *reinterpret_cast<float2*>(stage + (lane / 4 + 8) * kHalf + col) = make_float2(c[2], c[3]);
    }
    wgmma::FenceSharedForAsync();
    __syncwarp();
    if (lane < 16) {
      if (row >= 0) {
        bulk::AddRowAsync(p.accum + (row - p.accum_row0) * D + half * kHalf, stage + lane * kHalf,
                          kHalf * sizeof(float));
      }
      bulk::CommitAdds();
    }
  }
  if (lane < 16) bulk::WaitAddsRead();
}

// The forward by key block at D = 128 on Hopper's wgmma (nsa_forward_wgmma.cu), in a build that
// holds sm_90a code (ABLATE_SM90A_KERNELS), for a device that runs it (wgmma::DeviceRunsSm90a,
// the caller's to ask); cudaErrorInvalidValue where the build has none, D is not 128 or
// NsaSelectedSupported(p) fails. Host code.
cudaError_t ForwardByBlockWgmma(Pass pass, const NsaSelectedParams& p, cudaStream_t stream);

}  // namespace ablate::kernels::nsa

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_FORWARD_STEP_CUH_
