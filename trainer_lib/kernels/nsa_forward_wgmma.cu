// The selected branch's forward by key block at D = 128 on Hopper's warpgroup MMAs
// (wgmma_bf16.cuh): the items, tiles, rows, passes and math of nsa_forward_by_block.cu's
// ForwardByBlockKernel, a step of 64 rows for the block's one warpgroup, warp w holding rows
// [16 w, 16 w + 16) of S and of P V. Per step: S = q K^T (m64n64, both operands in shared memory),
// the softmax in registers (nsa_forward_step.cuh's SoftmaxStep), and in the output passes P V
// (m64n128, P from registers, V read N-major) added into accum through the step's q tile, which no
// product reads once S is formed. 64 rows cost the warpgroup 12 wgmmas where the mma.sync
// kernel's 4 warps issue 256 mma.syncs, each with its fragment loads from a padded tile. kByTma
// (G = 8 or 16): a step's rows come by TMA, a box of G heads a query (nsa_by_block.cuh's
// ForEachLoadedStep); elsewhere by every thread's cp.async.
#include <cuda.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_forward_step.cuh"
#include "trainer_lib/kernels/nsa_selected.h"
#include "trainer_lib/kernels/tma.cuh"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa {
namespace {

using bf16 = __nv_bfloat16;

struct ForwardWgmmaTiles {
  static constexpr int kD = 128, kKeys = 64, kStep = 64, kWarps = 4;
  static constexpr int kTileElems = kKeys * kD;  // K or V, swizzled
  static constexpr int kRowElems = kStep * kD;   // one buffer of q rows, swizzled
  // K, V (the output passes), two buffers of q rows, all 1024-byte aligned from the first; three
  // slots of the rows' facts and lse2, the item's queries, three slots of each warp's flag (a row
  // it found sees a key of the tile); two mbarriers (ForEachLoadedStep's), 8-byte aligned; 1024
  // bytes to align the start.
  static constexpr size_t Bytes(bool output) {
    return 2 * ((output ? 2 : 1) * kTileElems + 2 * kRowElems) + 3 * kStep * (sizeof(StepRow) + 4) +
           4 * kNsaQueriesPerItem + 4 * 3 * kWarps + 8 + 16 + 1024;
  }
};

// q_map: q's rows a box of a query's G heads, for kByTma (unused otherwise).
template <Pass kPass, bool kByTma>
__global__ void __launch_bounds__(128, 3)
    ForwardWgmmaKernel(NsaSelectedParams p, const __grid_constant__ CUtensorMap q_map) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr bool kOutput = kPass != Pass::kStats;
  using Tiles = ForwardWgmmaTiles;
  constexpr int kD = Tiles::kD, kKeys = Tiles::kKeys, kStep = Tiles::kStep;
  ItemTile at = ThisItemTile<kKeys>(p);
  // Uniform; no copy left in flight.
  if (at.count <= 0 || at.rows == 0 || (p.skip_first_block && at.block0 == 0)) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* ks =
      reinterpret_cast<bf16*>(smem_raw + ((1024 - mma::SharedAddress(smem_raw) % 1024) % 1024));
  bf16* vs = ks + Tiles::kTileElems;                                       // the output passes
  bf16* qs = vs + (kOutput ? Tiles::kTileElems : 0);                       // [2][kRowElems]
  StepRow* facts = reinterpret_cast<StepRow*>(qs + 2 * Tiles::kRowElems);  // [3][kStep]
  float* row_lse2 = reinterpret_cast<float*>(facts + 3 * kStep);           // [3][kStep]
  int32_t* queries = reinterpret_cast<int32_t*>(row_lse2 + 3 * kStep);
  int32_t* warp_sees = queries + kNsaQueriesPerItem;  // [3][kWarps]
  auto* bars = reinterpret_cast<uint64_t*>(
      (reinterpret_cast<uintptr_t>(warp_sees + 3 * Tiles::kWarps) + 7) & ~uintptr_t{7});

  CopyKeyTileSwizzled<kD, kKeys>(ks, p.k, at, threadIdx.x, blockDim.x);
  if constexpr (kOutput) CopyKeyTileSwizzled<kD, kKeys>(vs, p.v, at, threadIdx.x, blockDim.x);
  LoadQueries(at, p, queries);
  __syncthreads();  // the item's queries are in

  const bf16* q = static_cast<const bf16*>(p.q);
  // StepFacts, and each warp's flag: whether a row it found sees a key of the tile (a step whose
  // rows see none, its queries' local blocks left to the window's kernels, is skipped whole).
  auto facts_of = [&](int i) {
    bool sees = false;
    const auto write = StepFacts<kPass, kStep>(at, p, i, facts, row_lse2, &sees);
    const bool any = __any_sync(0xffffffffu, sees);
    return [=](int slot) {
      if (lane == 0) warp_sees[slot * Tiles::kWarps + warp] = any;
      write(slot);
    };
  };
  auto prefetch = [&](int i, int slot) {
    wgmma::CopyRowsSwizzled<kD>(
        qs + (i % 2) * Tiles::kRowElems, kStep, q,
        [&](int r) {
          const int64_t x = facts[slot * kStep + r].at;
          return x < 0 ? nullptr : q + x * kD;
        },
        threadIdx.x, blockDim.x);
    mma::CommitCopies();
  };
  auto load = [&](int i, uint64_t* bar) {
    LoadStepRows(at, p, i, qs + (i % 2) * Tiles::kRowElems, &q_map, bar);
  };

  const float scale2 = p.scale * kLog2e;
  const int steps = static_cast<int>((at.rows + kStep - 1) / kStep);
  const auto body = [&](int buf, int slot) {
    bool any = false;  // uniform: every thread reads the same flags
#pragma unroll
    for (int w = 0; w < Tiles::kWarps; ++w) any = any || warp_sees[slot * Tiles::kWarps + w] != 0;
    if (!any) return;
    bf16* qb = qs + buf * Tiles::kRowElems;
    float s[kKeys / 8][4];  // [this warp's 16 rows][64 keys]
    wgmma::Fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      wgmma::MmaShared64<0>(s, wgmma::SwizzledKMajor(qb, kStep, kk),
                            wgmma::SwizzledKMajor(ks, kKeys, kk), kk > 0);
    }
    wgmma::Commit();
    // The lane's rows' facts while the product runs: rows lane / 4 and lane / 4 + 8 of the warp's.
    const int r = slot * kStep + 16 * warp + lane / 4;
    const int2 seen[2] = {facts[r].keys, facts[r + 8].keys};
    const int64_t x[2] = {facts[r].at, facts[r + 8].at};
    const float lse2[2] = {row_lse2[r], row_lse2[r + 8]};
    // Uniform per warp: whether a row sees a key of the tile, and whether all see all of them
    // (the usual case, a block wholly before its queries): then no element is masked. Every warp
    // takes part in the products either way; a warp whose rows see nothing has P = 0.
    const bool active = __any_sync(0xffffffffu, seen[0].x <= seen[0].y || seen[1].x <= seen[1].y);
    const bool full = __all_sync(0xffffffffu, seen[0].x == 0 && seen[0].y == kKeys - 1 &&
                                                  seen[1].x == 0 && seen[1].y == kKeys - 1);
    wgmma::Wait<0>();
    wgmma::FenceOperands(s);
    if (full) {
      SoftmaxStep<kPass, false, kKeys>(p, s, seen, x, lse2, scale2);
    } else {
      SoftmaxStep<kPass, true, kKeys>(p, s, seen, x, lse2, scale2);
    }
    if constexpr (kOutput) {
      float acc[kD / 8][4] = {};
      wgmma::Fence();
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        const uint32_t a[4] = {mma::Pack(s[2 * kk][0], s[2 * kk][1]),
                               mma::Pack(s[2 * kk][2], s[2 * kk][3]),
                               mma::Pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               mma::Pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
        wgmma::MmaRegisterA128(acc, a, wgmma::SwizzledMnMajor(vs, kKeys, kk));
      }
      wgmma::Commit();
      wgmma::Wait<0>();
      wgmma::FenceOperands(acc);
      __syncthreads();  // every warp's S is formed: the step's q tile is free to stage rows in
      if (active) {
        AddRows<kD>(p, acc, reinterpret_cast<float*>(qb) + warp * 16 * (kD / 2),
                    facts + slot * kStep + 16 * warp);
      }
    }
  };
  if constexpr (kByTma) {
    ForEachLoadedStep(steps, bars, 2 * kStep * kD, facts_of, load, body);
  } else {
    ForEachStep<true>(steps, facts_of, prefetch, body);
  }
#else
  __trap();  // launched only where the sm_90a code is in the build (ForwardByBlockWgmma)
#endif
}

template <Pass kPass>
cudaError_t Launch(const NsaSelectedParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(p.num_items),
                  static_cast<unsigned>((p.block_size + ForwardWgmmaTiles::kKeys - 1) /
                                        ForwardWgmmaTiles::kKeys));
  const size_t bytes = ForwardWgmmaTiles::Bytes(kPass != Pass::kStats);
  CUtensorMap q_map{};
  if (RowsByTma(p.heads / p.kv_heads)) {
    const cudaError_t error = EncodeStepRows(&q_map, p.q, p);
    if (error != cudaSuccess) return error;
    return LaunchKernel(ForwardWgmmaKernel<kPass, true>, grid, 128, bytes, stream, p, q_map);
  }
  return LaunchKernel(ForwardWgmmaKernel<kPass, false>, grid, 128, bytes, stream, p, q_map);
}

}  // namespace

cudaError_t ForwardByBlockWgmma(Pass pass, const NsaSelectedParams& p, cudaStream_t stream) {
#if defined(ABLATE_SM90A_KERNELS)
  if (p.head_dim == 128 && NsaSelectedSupported(p)) {
    switch (pass) {
      case Pass::kStats:
        return Launch<Pass::kStats>(p, stream);
      case Pass::kOutput:
        return Launch<Pass::kOutput>(p, stream);
      case Pass::kShifted:
        return Launch<Pass::kShifted>(p, stream);
    }
  }
#endif
  return cudaErrorInvalidValue;
}

}  // namespace ablate::kernels::nsa
