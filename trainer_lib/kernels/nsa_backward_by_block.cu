// The selected branch's dk and dv (and dq, accum set) by key block (nsa_selected.h, "Design"):
// a thread block per (work item of the reverse index, 64-token tile of its key block), each warp
// 16 of the tile's keys against a step's gathered (query, head) rows; at D = 128 on Hopper the
// block's warpgroup on wgmma instead (DkvWgmmaKernel).
#include <cuda_bf16.h>

#include <cmath>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_ds_k.cuh"
#include "trainer_lib/kernels/nsa_query_block.cuh"
#include "trainer_lib/kernels/nsa_selected.h"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;
using mma::CopyRows;
using mma::kStride;
using nsa::ItemTile;
using nsa::kRows;
using nsa::StepRow;
using nsa::ThisItemTile;

template <int D>
struct DkvTiles {
  static constexpr int kCols = D > 128 ? 128 : D;  // dk, dv columns a warp accumulates
  static constexpr int kWarps = 4 * (D / kCols);   // warp w: keys 16 (w % 4), column part w / 4
  static constexpr int kKeys = 64;
  // Rows a step takes: at D = 128 two MMA row tiles, so that a step's barriers and copies serve
  // twice the products (249 registers, still two blocks an SM). One elsewhere: at D = 256 dk and
  // dv leave no registers for the second, and at D = 64 it costs a block an SM, not measured.
  static constexpr int kStepRows = D == 128 ? 2 * kRows : kRows;
  static constexpr int kTileElems = kKeys * kStride<D>;     // K or V
  static constexpr int kRowElems = kStepRows * kStride<D>;  // one buffer of q or do rows
  static constexpr int kDqCols = D / kWarps;                // dq columns a warp adds (accum)
  static constexpr int kDsStride = kStride<kKeys>;          // dS [kStepRows][64 keys] bf16
  // K, V, two buffers of q rows, two of do rows, three slots of the rows' facts and (lse2,
  // delta), dS, the item's queries, three slots of the step's flag (whether every row sees the
  // whole tile).
  static constexpr size_t kBytes = 2 * (2 * kTileElems + 4 * kRowElems) +
                                   3 * kStepRows * (sizeof(StepRow) + 8) +
                                   2 * kStepRows * kDsStride + 4 * kNsaQueriesPerItem + 4 * 3;
};

// dq in the dk/dv kernel: the step's dS [kStepRows][64 keys] into shared `ds` (ds_t: this
// warp's dS^T fragments where `active`, zeros where none of its keys is seen), then warp w adds
// scale dS K[.][its kDqCols columns] into p.accum with atomicAdd, a row tile at a time. All threads
// of the block; `rows`: the step's rows' facts.
template <int D>
__device__ void AddDq(const NsaSelectedParams& p, bf16* ds, const bf16* ks,
                      const float (&ds_t)[DkvTiles<D>::kStepRows / 8][4], bool active,
                      const StepRow* rows) {
  using Tiles = DkvTiles<D>;
  constexpr int kDqCols = Tiles::kDqCols, kDs = Tiles::kDsStride;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (warp < 4) {  // the warps of the first column part hold the keys' dS^T
#pragma unroll
    for (int j = 0; j < Tiles::kStepRows / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = 16 * warp + lane / 4 + 8 * (e / 2), row = 8 * j + 2 * (lane % 4) + e % 2;
        ds[row * kDs + key] = __float2bfloat16(active ? ds_t[j][e] : 0.0f);
      }
    }
  }
  // Uniform: whether a row of the step sees a key of the tile.
  if (!__syncthreads_or(active)) return;
  const int col0 = kDqCols * warp;
#pragma unroll
  for (int tile = 0; tile < Tiles::kStepRows / kRows; ++tile) {
    float acc[kDqCols / 8][4] = {};
    mma::AccumulateSharedProduct<kDqCols, Tiles::kKeys>(acc, ds + kRows * tile * kDs, kDs,
                                                        ks + col0, kStride<D>);
#pragma unroll
    for (int n = 0; n < kDqCols / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[n][e] *= p.scale;
    }
    const int64_t top = rows[kRows * tile + lane / 4].at;
    const int64_t bottom = rows[kRows * tile + lane / 4 + 8].at;
    mma::AtomicAddRows<kDqCols>(top < 0 ? nullptr : p.accum + (top - p.accum_row0) * D + col0,
                                bottom < 0 ? nullptr : p.accum + (bottom - p.accum_row0) * D + col0,
                                acc);
  }
}

// The item's rows are its (query, head) pairs, entry-major; a step takes kStepRows of them: S^T =
// K Q^T and dP^T = V dO^T for the warp's 16 keys, P^T = exp2(S^T - lse), dS^T = P^T (dP^T -
// delta), dv += P^T dO, dk += dS^T Q, the next step's rows loading meanwhile.
template <int D>
__global__ void __launch_bounds__(32 * DkvTiles<D>::kWarps) DkvKernel(NsaSelectedParams p) {
  using Tiles = DkvTiles<D>;
  constexpr int kKeys = Tiles::kKeys, kCols = Tiles::kCols, kS = kStride<D>;
  constexpr int kStep = Tiles::kStepRows;
  ItemTile at = ThisItemTile<kKeys>(p);
  if (at.count <= 0 || at.rows == 0) return;  // uniform; no copy left in flight
  const int count = at.count;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int key0 = 16 * (warp % 4), col0 = kCols * (warp / 4);

  extern __shared__ __align__(16) unsigned char smem[];
  bf16* ks = reinterpret_cast<bf16*>(smem);
  bf16* vs = ks + Tiles::kTileElems;
  bf16* qs = vs + Tiles::kTileElems;                                        // [2][kStep][stride]
  bf16* dos = qs + 2 * Tiles::kRowElems;                                    // [2][kStep][stride]
  StepRow* facts = reinterpret_cast<StepRow*>(dos + 2 * Tiles::kRowElems);  // [3][kStep]
  float2* row_lse2_delta = reinterpret_cast<float2*>(facts + 3 * kStep);    // [3][kStep]
  bf16* ds = reinterpret_cast<bf16*>(row_lse2_delta + 3 * kStep);           // [kStep][kDsStride]

  int32_t* queries = reinterpret_cast<int32_t*>(ds + kStep * Tiles::kDsStride);
  int32_t* step_whole = queries + kNsaQueriesPerItem;  // [3]
  nsa::CopyKeys<D, kKeys>(ks, vs, p, at.kv_row, count, threadIdx.x, blockDim.x);
  nsa::LoadQueries(at, p, queries);
  __syncthreads();  // the item's queries are in

  const bf16* q = static_cast<const bf16*>(p.q);
  const bf16* d_o = static_cast<const bf16*>(p.d_o);
  // Step i's rows' facts, lse2 and delta: this thread's row, if any, found and its lse and delta
  // loads issued now, written into a slot by the callable returned; and the step's flag, from
  // the first warp (whose lanes hold the step's rows): whether every row sees all 64 keys (a
  // full tile wholly before its queries, the usual case), so that no element is masked.
  auto facts_of = [&](int i) {
    const int r = threadIdx.x;
    int64_t t = 0;
    const int64_t x = r < kStep ? at.Row(p, kStep * i + r, &t) : -1;
    const StepRow row = {x, x < 0 ? make_int2(1, 0) : at.SeenKeys(p, t)};
    const float2 lse2_delta =
        x < 0 ? make_float2(0.0f, 0.0f) : make_float2(p.lse[x] * kLog2e, p.delta[x]);
    const bool whole =
        __all_sync(0xffffffffu, r >= kStep || (row.keys.x == 0 && row.keys.y == kKeys - 1));
    return [=](int slot) {
      if (r >= kStep) return;
      facts[slot * kStep + r] = row;
      row_lse2_delta[slot * kStep + r] = lse2_delta;
      if (r == 0) step_whole[slot] = whole;
    };
  };
  // Starts loading step i's rows of q and do into buffer i % 2.
  auto prefetch = [&](int i, int slot) {
    const int buf = i % 2;
    const auto rows_of = [&](const bf16* x) {
      return [&, x](int r) {
        const int64_t row = facts[slot * kStep + r].at;
        return row < 0 ? nullptr : x + row * D;
      };
    };
    CopyRows<D>(qs + buf * Tiles::kRowElems, kStep, q, rows_of(q), threadIdx.x, blockDim.x);
    CopyRows<D>(dos + buf * Tiles::kRowElems, kStep, d_o, rows_of(d_o), threadIdx.x, blockDim.x);
    mma::CommitCopies();
  };

  const float scale2 = p.scale * kLog2e;
  const int steps = static_cast<int>((at.rows + kStep - 1) / kStep);
  float dk[kCols / 8][4] = {}, dv[kCols / 8][4] = {};
  // The K, V tiles travel with step 0's rows.
  nsa::ForEachStep(steps, facts_of, prefetch, [&](int buf, int slot) {
    const StepRow* rows = facts + slot * kStep;
    // Bit 4 j + e: whether this lane's element (key key0 + lane / 4 + 8 (e / 2), row 8 j +
    // 2 (lane % 4) + e % 2) of the warp's [16 keys][kStep rows] is visible, t - w < s <= t
    // (rows past the end see nothing); every bit where the step's rows all see the whole tile.
    const bool whole = step_whole[slot] != 0;  // uniform
    unsigned seen = whole ? ~0u : 0u;
    if (!whole) {
#pragma unroll
      for (int j = 0; j < kStep / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key0 + lane / 4 + 8 * (e / 2);
          const int2 keys = rows[8 * j + 2 * (lane % 4) + e % 2].keys;
          if (key >= keys.x && key <= keys.y) seen |= 1u << (4 * j + e);
        }
      }
    }
    // Uniform per warp: a row of the step sees one of the warp's keys.
    const bool active = whole || __any_sync(0xffffffffu, seen != 0);
    float dp[kStep / 8][4];  // [16 keys][kStep rows]: dP^T, then dS^T
    if (active) {
      const bf16* qb = qs + buf * Tiles::kRowElems;
      const bf16* dob = dos + buf * Tiles::kRowElems;
      float s[kStep / 8][4];  // S^T, then P^T
      mma::ProductWithTranspose<D, kStep>(s, ks + key0 * kS, qb, kS);
      mma::ProductWithTranspose<D, kStep>(dp, vs + key0 * kS, dob, kS);
#pragma unroll
      for (int j = 0; j < kStep / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 ld = row_lse2_delta[slot * kStep + 8 * j + 2 * (lane % 4) + e % 2];
          const bool visible = (seen >> (4 * j + e)) & 1u;
          const float pr = visible ? Exp2(s[j][e] * scale2 - ld.x) : 0.0f;
          s[j][e] = pr;
          dp[j][e] = pr * (dp[j][e] - ld.y);
        }
      }
      mma::AccumulateProduct<kCols, kStep>(dv, s, dob + col0, kS);
      mma::AccumulateProduct<kCols, kStep>(dk, dp, qb + col0, kS);
    }
    if (p.accum != nullptr) AddDq<D>(p, ds, ks, dp, active, rows);
  });
  if (key0 >= count) return;  // uniform per warp
#pragma unroll
  for (int n = 0; n < kCols / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] *= p.scale;
  }
  const int top = key0 + lane / 4, bottom = top + 8;
  const auto key_row = [&](float* x, int key) {
    return key < count ? x + (at.kv_row + key) * D + col0 : nullptr;
  };
  mma::AtomicAddRows<kCols>(key_row(p.dk, top), key_row(p.dk, bottom), dk);
  mma::AtomicAddRows<kCols>(key_row(p.dv, top), key_row(p.dv, bottom), dv);
}

// The dk/dv kernel at D = 128 on Hopper's warpgroup MMAs (wgmma_bf16.cuh): the same items, tiles,
// rows and math as DkvKernel, a step of 64 rows for the block's one warpgroup, warp w holding keys
// [16 w, 16 w + 16) of S^T, dP^T, dk and dv. Per step: S^T = K q^T and dP^T = V do^T (m64n64, both
// operands in shared memory), P^T and dS^T in registers, dv += P^T do and dk += dS^T q (m64n128,
// A from registers, B the rows' tiles read N-major), and with accum dS through shared memory into
// dq = dS K, a 64-column half at a time (m64n64, K read N-major), added into accum by each warp for
// its 16 rows (nsa_ds_k.cuh's AddDsK). 64 rows cost the warpgroup 24 wgmmas (32 with dq) where
// DkvKernel's 4 warps issue 1,024 mma.syncs (1,280), each with its fragment loads: that kernel, two
// warps a scheduler, kept its issue slots 31% busy and its tensor pipe 21.5% (docs/benchmarks.md).
// ptxas inserts a warpgroup arrive before each product with register A, as each packs its fragments
// after the fence: correct, though it serializes those products. kByTma (G = 8 or 16): a step's
// q and do rows come by TMA, a box of G heads a query (nsa_by_block.cuh's ForEachLoadedStep),
// 13.4 to 12.9 ms a launch at fla's 64K on an H100; elsewhere by every thread's cp.async.
struct DkvWgmmaTiles {
  static constexpr int kD = 128, kKeys = 64, kStep = 64, kWarps = 4;  // AddDsK's 64 and 64
  static constexpr int kTileElems = kKeys * kD;                       // K or V, swizzled
  static constexpr int kRowElems = kStep * kD;    // one buffer of q or do rows, swizzled
  static constexpr int kDsElems = kStep * kKeys;  // dS [kStep][64 keys], swizzled
  // K, V, two buffers of q rows and of do rows, dS, all 1024-byte aligned from the first; three
  // slots of the rows' facts and (lse2, delta), the item's queries, three slots of each warp's
  // flags (bit 0: its rows of the step all see the whole tile; bit 1: it has a row at all);
  // 1024 bytes to align the start.
  // Then two mbarriers (ForEachLoadedStep's), 8-byte aligned.
  static constexpr size_t kBytes = 2 * (2 * kTileElems + 4 * kRowElems + kDsElems) +
                                   3 * kStep * (sizeof(StepRow) + 8) + 4 * kNsaQueriesPerItem +
                                   4 * 3 * kWarps + 8 + 16 + 1024;
};

// The maps of q and do for rows loaded by TMA, a box a query's G heads (unused otherwise).
struct RowMaps {
  CUtensorMap q;
  CUtensorMap d_o;
};

template <bool kByTma>
__global__ void __launch_bounds__(128, 2)
    DkvWgmmaKernel(NsaSelectedParams p, const __grid_constant__ RowMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tiles = DkvWgmmaTiles;
  constexpr int kD = Tiles::kD, kKeys = Tiles::kKeys, kStep = Tiles::kStep;
  ItemTile at = ThisItemTile<kKeys>(p);
  if (at.count <= 0 || at.rows == 0) return;  // uniform; no copy left in flight
  const int count = at.count;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int key0 = 16 * warp;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* ks =
      reinterpret_cast<bf16*>(smem_raw + ((1024 - mma::SharedAddress(smem_raw) % 1024) % 1024));
  bf16* vs = ks + Tiles::kTileElems;
  bf16* qs = vs + Tiles::kTileElems;                                      // [2][kRowElems]
  bf16* dos = qs + 2 * Tiles::kRowElems;                                  // [2][kRowElems]
  bf16* ds = dos + 2 * Tiles::kRowElems;                                  // [kDsElems]
  StepRow* facts = reinterpret_cast<StepRow*>(ds + Tiles::kDsElems);      // [3][kStep]
  float2* row_lse2_delta = reinterpret_cast<float2*>(facts + 3 * kStep);  // [3][kStep]
  int32_t* queries = reinterpret_cast<int32_t*>(row_lse2_delta + 3 * kStep);
  int32_t* warp_flags = queries + kNsaQueriesPerItem;  // [3][kWarps]
  auto* bars = reinterpret_cast<uint64_t*>(
      (reinterpret_cast<uintptr_t>(warp_flags + 3 * Tiles::kWarps) + 7) & ~uintptr_t{7});

  nsa::CopyKeyTileSwizzled<kD, kKeys>(ks, p.k, at, threadIdx.x, blockDim.x);
  nsa::CopyKeyTileSwizzled<kD, kKeys>(vs, p.v, at, threadIdx.x, blockDim.x);
  nsa::LoadQueries(at, p, queries);
  __syncthreads();  // the item's queries are in

  const bf16* q = static_cast<const bf16*>(p.q);
  const bf16* d_o = static_cast<const bf16*>(p.d_o);
  // As DkvKernel's: thread r < kStep finds row r's facts, each warp whether its rows all see the
  // whole tile and whether it has one (a step of none, its queries' local blocks left to the
  // window's kernels, is skipped whole).
  auto facts_of = [&](int i) {
    const int r = threadIdx.x;
    int64_t t = 0;
    const int64_t x = r < kStep ? at.Row(p, kStep * i + r, &t) : -1;
    const StepRow row = {x, x < 0 ? make_int2(1, 0) : at.SeenKeys(p, t)};
    const float2 lse2_delta =
        x < 0 ? make_float2(0.0f, 0.0f) : make_float2(p.lse[x] * kLog2e, p.delta[x]);
    const bool whole =
        __all_sync(0xffffffffu, r >= kStep || (row.keys.x == 0 && row.keys.y == kKeys - 1));
    const bool any = __any_sync(0xffffffffu, x >= 0);
    return [=](int slot) {
      if (lane == 0) warp_flags[slot * Tiles::kWarps + warp] = whole | (any << 1);
      if (r >= kStep) return;
      facts[slot * kStep + r] = row;
      row_lse2_delta[slot * kStep + r] = lse2_delta;
    };
  };
  auto prefetch = [&](int i, int slot) {
    const int buf = i % 2;
    const auto rows_of = [&](const bf16* x) {
      return [&, x](int r) {
        const int64_t row = facts[slot * kStep + r].at;
        return row < 0 ? nullptr : x + row * kD;
      };
    };
    wgmma::CopyRowsSwizzled<kD>(qs + buf * Tiles::kRowElems, kStep, q, rows_of(q), threadIdx.x,
                                blockDim.x);
    wgmma::CopyRowsSwizzled<kD>(dos + buf * Tiles::kRowElems, kStep, d_o, rows_of(d_o), threadIdx.x,
                                blockDim.x);
    mma::CommitCopies();
  };

  // With kByTma: step i's q and do rows, a box of G heads a query (nsa_by_block.cuh).
  auto load = [&](int i, uint64_t* bar) {
    const int offset = (i % 2) * Tiles::kRowElems;
    nsa::LoadStepRows(at, p, i, qs + offset, &maps.q, bar);
    nsa::LoadStepRows(at, p, i, dos + offset, &maps.d_o, bar);
  };

  const float scale2 = p.scale * kLog2e;
  const int steps = static_cast<int>((at.rows + kStep - 1) / kStep);
  float dk[kD / 8][4] = {}, dv[kD / 8][4] = {};
  const auto body = [&](int buf, int slot) {
    bool whole = true, any = false;  // uniform: every thread reads the same flags
#pragma unroll
    for (int w = 0; w < Tiles::kWarps; ++w) {
      const int32_t flags = warp_flags[slot * Tiles::kWarps + w];
      whole = whole && (flags & 1);
      any = any || (flags & 2);
    }
    if (!any) return;
    const StepRow* rows = facts + slot * kStep;
    const bf16* qb = qs + buf * Tiles::kRowElems;
    const bf16* dob = dos + buf * Tiles::kRowElems;
    float s[kStep / 8][4], dp[kStep / 8][4];  // [this warp's 16 keys][kStep rows]
    wgmma::Fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      wgmma::MmaShared64<0>(s, wgmma::SwizzledKMajor(ks, kKeys, kk),
                            wgmma::SwizzledKMajor(qb, kStep, kk), kk > 0);
    }
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      wgmma::MmaShared64<0>(dp, wgmma::SwizzledKMajor(vs, kKeys, kk),
                            wgmma::SwizzledKMajor(dob, kStep, kk), kk > 0);
    }
    wgmma::Commit();
    // The masks while the products run: bit 4 j + e for this lane's element (key key0 + lane / 4
    // + 8 (e / 2), row 8 j + 2 (lane % 4) + e % 2), as in DkvKernel.
    unsigned seen = whole ? ~0u : 0u;
    if (!whole) {
#pragma unroll
      for (int j = 0; j < kStep / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key0 + lane / 4 + 8 * (e / 2);
          const int2 keys = rows[8 * j + 2 * (lane % 4) + e % 2].keys;
          if (key >= keys.x && key <= keys.y) seen |= 1u << (4 * j + e);
        }
      }
    }
    wgmma::Wait<0>();
    wgmma::FenceOperands(s);
    wgmma::FenceOperands(dp);
#pragma unroll
    for (int j = 0; j < kStep / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 ld = row_lse2_delta[slot * kStep + 8 * j + 2 * (lane % 4) + e % 2];
        const bool visible = (seen >> (4 * j + e)) & 1u;
        const float pr = visible ? Exp2(s[j][e] * scale2 - ld.x) : 0.0f;
        s[j][e] = pr;
        dp[j][e] = pr * (dp[j][e] - ld.y);
      }
    }
    // dv += P^T do, dk += dS^T q: rows 16 kk .. 16 kk + 15 of the step are the K of product kk.
    wgmma::Fence();
#pragma unroll
    for (int kk = 0; kk < kStep / 16; ++kk) {
      const uint32_t a[4] = {mma::Pack(s[2 * kk][0], s[2 * kk][1]),
                             mma::Pack(s[2 * kk][2], s[2 * kk][3]),
                             mma::Pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             mma::Pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      wgmma::MmaRegisterA128(dv, a, wgmma::SwizzledMnMajor(dob, kStep, kk));
    }
#pragma unroll
    for (int kk = 0; kk < kStep / 16; ++kk) {
      const uint32_t a[4] = {mma::Pack(dp[2 * kk][0], dp[2 * kk][1]),
                             mma::Pack(dp[2 * kk][2], dp[2 * kk][3]),
                             mma::Pack(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                             mma::Pack(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
      wgmma::MmaRegisterA128(dk, a, wgmma::SwizzledMnMajor(qb, kStep, kk));
    }
    wgmma::Commit();
    if (p.accum != nullptr) {
      const int64_t top = rows[16 * warp + lane / 4].at;
      const int64_t bottom = rows[16 * warp + lane / 4 + 8].at;
      const auto accum_row = [&](int64_t row) {
        return row < 0 ? nullptr : p.accum + (row - p.accum_row0) * kD;
      };
      nsa::AddDsK(dp, ds, ks, p.scale, accum_row(top), accum_row(bottom));
    }
    wgmma::Wait<0>();
    wgmma::FenceOperands(dk);
    wgmma::FenceOperands(dv);
  };
  if constexpr (kByTma) {
    nsa::ForEachLoadedStep(steps, bars, 4 * kStep * 128, facts_of, load, body);
  } else {
    nsa::ForEachStep<true>(steps, facts_of, prefetch, body);
  }
  if (key0 >= count) return;  // uniform per warp
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] *= p.scale;
  }
  const int top = key0 + lane / 4, bottom = top + 8;
  const auto key_row = [&](float* x, int key) {
    return key < count ? x + (at.kv_row + key) * kD : nullptr;
  };
  mma::AtomicAddRows<kD>(key_row(p.dk, top), key_row(p.dk, bottom), dk);
  mma::AtomicAddRows<kD>(key_row(p.dv, top), key_row(p.dv, bottom), dv);
#else
  __trap();  // launched only where the sm_90a code is in the build (NsaSelectedBackwardDkv)
#endif
}

}  // namespace

cudaError_t NsaSelectedBackwardDkv(const NsaSelectedParams& p, cudaStream_t stream) {
#if defined(ABLATE_SM90A_KERNELS)
  if (p.head_dim == 128 && NsaSelectedSupported(p)) {
    if (wgmma::DeviceRunsSm90a()) {  // the sm_90a code in this build runs here
      const dim3 grid(static_cast<unsigned>(p.num_items),
                      static_cast<unsigned>((p.block_size + 63) / 64));
      RowMaps maps{};
      if (nsa::RowsByTma(p.heads / p.kv_heads)) {
        cudaError_t error = nsa::EncodeStepRows(&maps.q, p.q, p);
        if (error == cudaSuccess) error = nsa::EncodeStepRows(&maps.d_o, p.d_o, p);
        if (error != cudaSuccess) return error;
        return nsa::LaunchKernel(DkvWgmmaKernel<true>, grid, 128, DkvWgmmaTiles::kBytes, stream, p,
                                 maps);
      }
      return nsa::LaunchKernel(DkvWgmmaKernel<false>, grid, 128, DkvWgmmaTiles::kBytes, stream, p,
                               maps);
    }
  }
#endif
  return nsa::WithHeadDim(p, [&](auto d) {
    using Tiles = DkvTiles<decltype(d)::value>;
    const dim3 grid(static_cast<unsigned>(p.num_items),
                    static_cast<unsigned>((p.block_size + Tiles::kKeys - 1) / Tiles::kKeys));
    return nsa::LaunchKernel(DkvKernel<decltype(d)::value>, grid, 32 * Tiles::kWarps, Tiles::kBytes,
                             stream, p);
  });
}

}  // namespace ablate::kernels
