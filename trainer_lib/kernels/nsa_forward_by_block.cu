// The selected branch's forward by key block (nsa_selected.h, "Design"): each warp takes 16 of a
// step's 64 gathered rows against the tile's 64 keys, in two passes.
#include <cuda_bf16.h>

#include <cmath>
#include <type_traits>

#include "trainer_lib/kernels/bulk_add.cuh"
#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_query_block.cuh"
#include "trainer_lib/kernels/nsa_row_shift.cuh"
#include "trainer_lib/kernels/nsa_selected.h"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;
using mma::CopyRows;
using mma::kStride;
using mma::QuadMax;
using mma::QuadSum;
using nsa::CopyKeyTile;
using nsa::ForEachStep;
using nsa::ItemTile;
using nsa::kRows;
using nsa::OrderedFloat;
using nsa::OrderedInt;
using nsa::Shift2;
using nsa::StepRow;
using nsa::ThisItemTile;

template <int D>
struct ByBlockTiles {
  static constexpr int kKeys = 64;
  static constexpr int kWarps = 4;
  static constexpr int kStepRows = kRows * kWarps;          // a row's facts per thread
  static constexpr int kTileElems = kKeys * kStride<D>;     // K or V
  static constexpr int kRowElems = kStepRows * kStride<D>;  // one buffer of q rows
  // K, V (the output pass), two buffers of q rows, three slots of the rows' facts and lse2, the
  // item's queries.
  static constexpr size_t Bytes(bool output) {
    return 2 * ((output ? 2 : 1) * kTileElems + 2 * kRowElems) +
           3 * kStepRows * (sizeof(StepRow) + 4) + 4 * kNsaQueriesPerItem;
  }
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

// Adds the warp's 16 rows of P V (acc, the MMA's C fragments over D columns) into p.accum at
// the rows' places (rows[i].at, -1: none), half of the columns at a time through `stage`, the
// warp's own q rows of the step (16 kStride<D> bf16, free once S is formed; 16 rows of D / 2
// fp32 fit), added by the copy engine (bulk_add.cuh) a row per lane of the first 16. With
// float4 atomics, 32 requests a row at D = 128, the kernel ran at 85% of L2's throughput.
// All lanes of the warp. Each issuing lane has waited for the engine's reads when it returns:
// the stage is loaded into again only after the step's closing barrier.
template <int D>
__device__ void AddRows(const NsaSelectedParams& p, const float (&acc)[D / 8][4], bf16* stage_q,
                        const StepRow* rows) {
  constexpr int kHalf = D / 2;
  const int lane = threadIdx.x % 32;
  float* stage = reinterpret_cast<float*>(stage_q);
  const int64_t row = lane < kRows ? rows[lane].at : -1;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    if (half == 1) {  // the first half's rows read before they are overwritten
      if (lane < kRows) bulk::WaitAddsRead();
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
    if (lane < kRows) {
      if (row >= 0) {
        bulk::AddRowAsync(p.accum + (row - p.accum_row0) * D + half * kHalf, stage + lane * kHalf,
                          kHalf * sizeof(float));
      }
      bulk::CommitAdds();
    }
  }
  if (lane < kRows) bulk::WaitAddsRead();
}

enum class Pass {
  kStats,    // each row's (m, l) over the tile's keys it sees, merged into row_stats
  kOutput,   // P = exp2(S - lse2) with lse2 = m + log2 l from row_stats, P V added into accum
  kShifted,  // P' = exp2(S - shift2), P' V into accum, P''s row sums into row_sum, max row_max
};

template <int D, Pass kPass>
__global__ void __launch_bounds__(32 * ByBlockTiles<D>::kWarps)
    ForwardByBlockKernel(NsaSelectedParams p) {
  constexpr bool kOutput = kPass != Pass::kStats;
  using Tiles = ByBlockTiles<D>;
  constexpr int kKeys = Tiles::kKeys, kStep = Tiles::kStepRows, kS = kStride<D>;
  ItemTile at = ThisItemTile<kKeys>(p);
  // Uniform; no copy left in flight.
  if (at.count <= 0 || at.rows == 0 || (p.skip_first_block && at.block0 == 0)) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* ks = reinterpret_cast<bf16*>(smem);
  bf16* vs = ks + Tiles::kTileElems;                                       // the output pass only
  bf16* qs = vs + (kOutput ? Tiles::kTileElems : 0);                       // [2][64][stride]
  StepRow* facts = reinterpret_cast<StepRow*>(qs + 2 * Tiles::kRowElems);  // [3][64]
  float* row_lse2 = reinterpret_cast<float*>(facts + 3 * kStep);           // [3][64]

  CopyKeyTile<D, kKeys>(ks, p.k, at.kv_row, at.count, threadIdx.x, blockDim.x);
  if constexpr (kOutput)
    CopyKeyTile<D, kKeys>(vs, p.v, at.kv_row, at.count, threadIdx.x, blockDim.x);
  nsa::LoadQueries(at, p, reinterpret_cast<int32_t*>(row_lse2 + 3 * kStep));
  __syncthreads();  // the item's queries are in
  const bf16* q = static_cast<const bf16*>(p.q);
  // Step i's rows' facts (and, for the output passes, what they subtract before exp2: lse2 or
  // shift2): this thread's row, if any, found now, written into a slot by the callable returned.
  auto facts_of = [&](int i) {
    const int r = threadIdx.x;  // kStep rows, one per thread of the first kStep
    int64_t t = 0;
    const int64_t x = r < kStep ? at.Row(p, kStep * i + r, &t) : -1;
    const StepRow row = {x, x < 0 ? make_int2(1, 0) : at.SeenKeys(p, t)};
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
  };
  // Starts loading step i's rows into buffer i % 2.
  auto prefetch = [&](int i, int slot) {
    CopyRows<D>(
        qs + (i % 2) * Tiles::kRowElems, kStep, q,
        [&](int r) {
          const int64_t x = facts[slot * kStep + r].at;
          return x < 0 ? nullptr : q + x * D;
        },
        threadIdx.x, blockDim.x);
    mma::CommitCopies();
  };

  const float scale2 = p.scale * kLog2e;
  const int steps = static_cast<int>((at.rows + kStep - 1) / kStep);
  // The K (and V) tile travels with step 0's rows.
  ForEachStep(steps, facts_of, prefetch, [&](int buf, int slot) {
    // This lane's rows of the warp's 16: lane / 4 and lane / 4 + 8 of the step.
    const int r = slot * kStep + kRows * warp + lane / 4;
    const int2 seen[2] = {facts[r].keys, facts[r + 8].keys};
    // Uniform per warp: whether a row sees a key of the tile, and whether all see all of them
    // (the usual case, a block wholly before its queries): then no element is masked.
    if (!__any_sync(0xffffffffu, seen[0].x <= seen[0].y || seen[1].x <= seen[1].y)) return;
    const bool full = __all_sync(0xffffffffu, seen[0].x == 0 && seen[0].y == kKeys - 1 &&
                                                  seen[1].x == 0 && seen[1].y == kKeys - 1);
    float s[kKeys / 8][4];
    mma::ProductWithTranspose<D, kKeys>(s, qs + (buf * kStep + kRows * warp) * kS, ks, kS);
    // Element (row lane / 4 + 8 (e / 2), key 8 j + 2 (lane % 4) + e % 2) of the warp's [16 rows]
    // [64 keys]: whether its row sees its key, t - w < s <= t.
    const auto finish = [&](auto masked) {
      const auto visible = [&](int j, int e) {
        const int key = 8 * j + 2 * (lane % 4) + e % 2;
        return !decltype(masked)::value || (key >= seen[e / 2].x && key <= seen[e / 2].y);
      };
      if constexpr (!kOutput) {
        float top[2] = {-INFINITY, -INFINITY}, sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[j][e] = visible(j, e) ? s[j][e] * scale2 : -INFINITY;
            top[e / 2] = fmaxf(top[e / 2], s[j][e]);
          }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) top[h] = QuadMax(top[h]);
#pragma unroll
        for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if (visible(j, e)) sum[e / 2] += Exp2(s[j][e] - top[e / 2]);
          }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          sum[h] = QuadSum(sum[h]);
          if (lane % 4 == 0 && sum[h] > 0.0f)
            MergeStats(p.row_stats + facts[r + 8 * h].at, top[h], sum[h]);
        }
      } else {
        const float lse2[2] = {row_lse2[r], row_lse2[r + 8]};
        if constexpr (kPass == Pass::kShifted) {
          float top[2] = {-INFINITY, -INFINITY}, sum[2] = {0.0f, 0.0f};
#pragma unroll
          for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const float x = visible(j, e) ? s[j][e] * scale2 : -INFINITY;
              top[e / 2] = fmaxf(top[e / 2], x);
              s[j][e] = Exp2(x - lse2[e / 2]);  // 0 where masked
              sum[e / 2] += s[j][e];
            }
          }
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            top[h] = QuadMax(top[h]);
            sum[h] = QuadSum(sum[h]);
            const int64_t x = facts[r + 8 * h].at;
            if (lane % 4 == 0 && x >= 0 && top[h] > -INFINITY) {
              atomicMax(p.row_max + x, OrderedInt(top[h]));
              atomicAdd(p.row_sum + x, sum[h]);
            }
          }
        } else {
#pragma unroll
          for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              s[j][e] = visible(j, e) ? Exp2(s[j][e] * scale2 - lse2[e / 2]) : 0.0f;
            }
          }
        }
        float acc[D / 8][4] = {};
        mma::AccumulateProduct<D, kKeys>(acc, s, vs, kS);
        AddRows<D>(p, acc, qs + (buf * kStep + kRows * warp) * kS, facts + r - lane / 4);
      }
    };
    if (full) {
      finish(std::false_type{});
    } else {
      finish(std::true_type{});
    }
  });
}

template <int D, Pass kPass>
cudaError_t Dispatch(const NsaSelectedParams& p, cudaStream_t stream) {
  using Tiles = ByBlockTiles<D>;
  const dim3 grid(static_cast<unsigned>(p.num_items),
                  static_cast<unsigned>((p.block_size + Tiles::kKeys - 1) / Tiles::kKeys));
  return nsa::LaunchKernel(ForwardByBlockKernel<D, kPass>, grid, 32 * Tiles::kWarps,
                           Tiles::Bytes(kPass != Pass::kStats), stream, p);
}

template <Pass kPass>
cudaError_t Run(const NsaSelectedParams& p, cudaStream_t stream) {
  return nsa::WithHeadDim(p,
                          [&](auto d) { return Dispatch<decltype(d)::value, kPass>(p, stream); });
}

// A thread per 4 columns of a row: o = accum / row_sum in bf16, lse from the row's shift and sum.
__global__ void FinishKernel(NsaSelectedParams p, int64_t rows, int* inexact) {
  const int per_row = static_cast<int>(p.head_dim / 4);
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= rows * per_row) return;
  const int64_t r = i / per_row, row = p.accum_row0 + r;
  const int c = static_cast<int>(i % per_row);
  const float top = OrderedFloat(p.row_max[row]), shift2 = Shift2(p.row_shift[row]);
  float4 x = reinterpret_cast<const float4*>(p.accum + r * p.head_dim)[c];
  float lse = -INFINITY;
  bool exact = true;
  if (top == -INFINITY) {
    // No key seen (accum's row is 0), or only NaN scores, which the max passes over but which
    // left NaN in accum's row: the two passes give NaN there.
    exact = isfinite(x.x) && isfinite(x.y) && isfinite(x.z) && isfinite(x.w);
    x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  } else {
    const float l = p.row_sum[row], inv = 1.0f / l;
    x = make_float4(x.x * inv, x.y * inv, x.z * inv, x.w * inv);
    lse = (shift2 + log2f(l)) * kLn2;
    exact = fabsf(top - shift2) <= kNsaMaxShiftGap &&  // false for NaN
            isfinite(x.x) && isfinite(x.y) && isfinite(x.z) && isfinite(x.w);
  }
  if (!exact) *inexact = 1;
  auto* o = reinterpret_cast<__nv_bfloat162*>(static_cast<bf16*>(p.o) + row * p.head_dim) + 2 * c;
  o[0] = __floats2bfloat162_rn(x.x, x.y);
  o[1] = __floats2bfloat162_rn(x.z, x.w);
  if (c == 0) p.lse[row] = lse;
}

}  // namespace

cudaError_t NsaSelectedForwardByBlockStats(const NsaSelectedParams& p, cudaStream_t stream) {
  return Run<Pass::kStats>(p, stream);
}

cudaError_t NsaSelectedForwardByBlockOutput(const NsaSelectedParams& p, cudaStream_t stream) {
  return p.row_shift != nullptr ? Run<Pass::kShifted>(p, stream) : Run<Pass::kOutput>(p, stream);
}

cudaError_t NsaSelectedForwardByBlockFinish(const NsaSelectedParams& p, int64_t rows, int* inexact,
                                            cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = (rows * (p.head_dim / 4) + kThreads - 1) / kThreads;
  FinishKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, rows, inexact);
  return cudaGetLastError();
}

}  // namespace ablate::kernels
