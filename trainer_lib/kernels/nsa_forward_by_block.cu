// The selected branch's forward by key block (nsa_selected.h, "Design"): each warp takes 16 of a
// step's 64 gathered rows against the tile's 64 keys on mma.sync; at D = 128 on Hopper the
// block's warpgroup on wgmma instead (nsa_forward_wgmma.cu).
#include <cuda_bf16.h>

#include <cmath>
#include <type_traits>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_forward_step.cuh"
#include "trainer_lib/kernels/nsa_query_block.cuh"
#include "trainer_lib/kernels/nsa_row_shift.cuh"
#include "trainer_lib/kernels/nsa_selected.h"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;
using mma::CopyRows;
using mma::kStride;
using nsa::AddRows;
using nsa::CopyKeyTile;
using nsa::ForEachStep;
using nsa::ItemTile;
using nsa::kRows;
using nsa::OrderedFloat;
using nsa::Pass;
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
  auto facts_of = [&](int i) { return nsa::StepFacts<kPass, kStep>(at, p, i, facts, row_lse2); };
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
    const int64_t x[2] = {facts[r].at, facts[r + 8].at};
    const float lse2[2] = {row_lse2[r], row_lse2[r + 8]};
    const auto finish = [&](auto masked) {
      nsa::SoftmaxStep<kPass, decltype(masked)::value, kKeys>(p, s, seen, x, lse2, scale2);
      if constexpr (kOutput) {
        float acc[D / 8][4] = {};
        mma::AccumulateProduct<D, kKeys>(acc, s, vs, kS);
        AddRows<D>(p, acc, reinterpret_cast<float*>(qs + (buf * kStep + kRows * warp) * kS),
                   facts + r - lane / 4);
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
#if defined(ABLATE_SM90A_KERNELS)
  if (p.head_dim == 128 && wgmma::DeviceRunsSm90a())
    return nsa::ForwardByBlockWgmma(kPass, p, stream);
#endif
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
