#include <cuda_bf16.h>

#include <cmath>

#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_query_block.cuh"
#include "trainer_lib/kernels/nsa_selected.h"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;
using mma::CopyRows;
using mma::kStride;
using mma::QuadMax;
using mma::QuadSum;
using nsa::CopyKeyTile;
using nsa::ItemTile;
using nsa::kLog2e;
using nsa::kQueryWarps;
using nsa::kRows;
using nsa::LaunchKernel;
using nsa::StepRow;
using nsa::ThisItemTile;

constexpr int kMaxGroup = 16;  // G
constexpr float kLn2 = 0.6931471805599453f;

// ---- Forward and dq: a thread block per (b, h_kv, Q = 16 / G queries), rows r = qi G + g. ----
// Q queries fill the MMA's rows that one query's G heads left as padding at small G, and load a
// block they share once (the union of their selections, nsa_query_block.cuh); each row is masked
// to its own query's keys. Q = 1 for G > 8 is the same code.

template <int D>
struct QueryTiles {
  static constexpr int kKeys = D > 128 ? 16 : 32;  // keys per warp tile
  static constexpr int kTileElems = kKeys * kStride<D>;
  static constexpr int kMatrixBytes = kRows * kStride<D> * 2;  // the rows of q (or do)
  static constexpr int kPartialBytes = kRows * D * 4;          // a warp's fp32 [16][D] result
  // A warp's region: its K and V tiles, then its partial result and the forward's running max
  // and sum per row (in the 512 bytes the tiles leave at D = 256, so that the forward keeps 3
  // blocks per SM there).
  static constexpr int kWarpBytes = 4 * kTileElems > kPartialBytes + 2 * kRows * 4
                                        ? 4 * kTileElems
                                        : kPartialBytes + 2 * kRows * 4;
  // Forward blocks per SM that registers and shared memory allow together (228 KB per SM, 1 KB
  // of each block's reserved): the registers are held to it.
  static constexpr int kForwardBlocks = D > 64 ? 3 : 4;
  // `matrices` row matrices, the warps' regions and the union of the queries' blocks.
  static constexpr size_t Bytes(int matrices) {
    return matrices * kMatrixBytes + kQueryWarps * kWarpBytes + sizeof(nsa::QueryUnion);
  }
};

// The same for k and v.
template <int D, int kKeys>
__device__ void CopyKeys(bf16* ks, bf16* vs, const NsaSelectedParams& p, int64_t row, int count,
                         int thread, int threads) {
  CopyKeyTile<D, kKeys>(ks, p.k, row, count, thread, threads);
  CopyKeyTile<D, kKeys>(vs, p.v, row, count, thread, threads);
}

// Loads a warp's tiles: keys [row, row + count) of k and v, zeros after them.
template <int D, int kKeys>
__device__ void LoadWarpTile(bf16* ks, bf16* vs, const NsaSelectedParams& p, int64_t row,
                             int count) {
  __syncwarp();  // the warp's previous tile is consumed
  CopyKeys<D, kKeys>(ks, vs, p, row, count, threadIdx.x % 32, 32);
  mma::CommitCopies();
  mma::WaitCopies<0>();
  __syncwarp();
}

// Writes a warp's [16][D] accumulator fragments to fp32 shared memory (its region, whose tiles
// it has consumed).
template <int D>
__device__ void StorePartial(float* part, const float (&acc)[D / 8][4]) {
  const int lane = threadIdx.x % 32;
  __syncwarp();
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float* x = part + (lane / 4 + 8 * h) * D + 8 * n + 2 * (lane % 4);
      x[0] = acc[n][2 * h];
      x[1] = acc[n][2 * h + 1];
    }
  }
}

// sum_w f[w] partial_w[r][c, c + 1] over the warps' partial results.
template <int D>
__device__ float2 SumPartials(const unsigned char* regions, int r, int c,
                              const float (&f)[kQueryWarps]) {
  float2 sum = make_float2(0.0f, 0.0f);
#pragma unroll
  for (int w = 0; w < kQueryWarps; ++w) {
    const float* x =
        reinterpret_cast<const float*>(regions + w * QueryTiles<D>::kWarpBytes) + r * D + c;
    sum.x += f[w] * x[0];
    sum.y += f[w] * x[1];
  }
  return sum;
}

// Warp w's running max and sum per row, [2][16] after its partial result.
template <int D>
__device__ float* RowStats(unsigned char* regions, int w) {
  return reinterpret_cast<float*>(regions + w * QueryTiles<D>::kWarpBytes +
                                  QueryTiles<D>::kPartialBytes);
}

// Each warp runs an online softmax (base 2) over its tiles: S = Q K^T for the 16 rows, each
// masked to the keys its query sees, P = exp2(S - m), O += P V; the warps' (m, l, O) are then
// merged.
template <int D>
__global__ void __launch_bounds__(32 * kQueryWarps, QueryTiles<D>::kForwardBlocks)
    ForwardKernel(NsaSelectedParams p) {
  using Tiles = QueryTiles<D>;
  constexpr int kKeys = Tiles::kKeys;
  const nsa::QueryBlock at = nsa::ThisQueryBlock(p);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  unsigned char* regions = smem + Tiles::kMatrixBytes;
  bf16* ks = reinterpret_cast<bf16*>(regions + warp * Tiles::kWarpBytes);
  bf16* vs = ks + Tiles::kTileElems;
  auto& u = *reinterpret_cast<nsa::QueryUnion*>(regions + kQueryWarps * Tiles::kWarpBytes);
  nsa::CopyQueryRows<D>(qs, p.q, p, at);
  mma::CommitCopies();  // ForEachTile's first pass waits for it

  const float scale2 = p.scale * kLog2e;
  const int row_q[2] = {nsa::RowQuery(at, lane / 4, p.seq_len),
                        nsa::RowQuery(at, lane / 4 + 8, p.seq_len)};
  // Rows lane / 4 and lane / 4 + 8: running max m (-inf until the row sees a key), this lane's
  // share of the sum l.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, acc[D / 8][4] = {};
  nsa::ForEachTile<kKeys>(u, p, at, [&](int r0, int count, uint32_t takers) {
    LoadWarpTile<D, kKeys>(ks, vs, p, at.KvRow(p) + r0, count);
    const uint32_t seen = nsa::SeenElements<kKeys>(row_q, takers, at, r0, count, p.window);
    float s[kKeys / 8][4];
    mma::ProductWithTranspose<D, kKeys>(s, qs, ks, kStride<D>);
    float top[2] = {m[0], m[1]};
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = (seen >> (4 * j + e)) & 1u ? s[j][e] * scale2 : -INFINITY;
        top[e / 2] = fmaxf(top[e / 2], s[j][e]);
      }
    }
    float base[2];  // exp2's offset: the new max, 0 for a row that has seen no key (all -inf)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      top[h] = QuadMax(top[h]);
      base[h] = top[h] == -INFINITY ? 0.0f : top[h];
      const float corr = exp2f(m[h] - base[h]);  // 0 while m = -inf, where l and acc are 0
      m[h] = top[h];
      l[h] *= corr;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        acc[n][2 * h] *= corr;
        acc[n][2 * h + 1] *= corr;
      }
    }
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = exp2f(s[j][e] - base[e / 2]);
        l[e / 2] += s[j][e];
      }
    }
    mma::AccumulateProduct<D, kKeys>(acc, s, vs, kStride<D>);
  });

  StorePartial<D>(reinterpret_cast<float*>(ks), acc);
  float* stats = RowStats<D>(regions, warp);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float sum = QuadSum(l[h]);
    if (lane % 4 == 0) {
      stats[lane / 4 + 8 * h] = m[h];
      stats[kRows + lane / 4 + 8 * h] = sum;
    }
  }
  __syncthreads();
  // A row whose query sees no key (every warp's m = -inf) gets o = 0 and lse = -inf.
  for (int i = threadIdx.x; i < at.queries * at.groups * (D / 2); i += blockDim.x) {
    const int r = i / (D / 2), c = 2 * (i % (D / 2));
    if (nsa::RowQuery(at, r, p.seq_len) < 0) continue;
    float top = -INFINITY, sum = 0.0f, f[kQueryWarps];
#pragma unroll
    for (int w = 0; w < kQueryWarps; ++w) top = fmaxf(top, RowStats<D>(regions, w)[r]);
#pragma unroll
    for (int w = 0; w < kQueryWarps; ++w) {
      const float* stats_w = RowStats<D>(regions, w);
      const float mw = stats_w[r];  // -inf for a warp whose tiles this row saw nothing of
      f[w] = mw == -INFINITY ? 0.0f : exp2f(mw - top);
      sum += f[w] * stats_w[kRows + r];
    }
    const float2 o = SumPartials<D>(regions, r, c, f);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int64_t row = nsa::HeadRow(p, at, r);
    reinterpret_cast<__nv_bfloat162*>(static_cast<bf16*>(p.o) + row * D)[c / 2] =
        __floats2bfloat162_rn(o.x * inv, o.y * inv);
    if (c == 0) p.lse[row] = sum > 0.0f ? top * kLn2 + logf(sum) : -INFINITY;
  }
}

// Each warp, over its tiles: P = exp2(S - lse), masked as the forward's, dP = dO V^T,
// dS = P (dP - delta), dq += dS K; the warps' sums are then added.
template <int D>
__global__ void __launch_bounds__(32 * kQueryWarps, 1) DqKernel(NsaSelectedParams p) {
  using Tiles = QueryTiles<D>;
  constexpr int kKeys = Tiles::kKeys;
  const nsa::QueryBlock at = nsa::ThisQueryBlock(p);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* dos = reinterpret_cast<bf16*>(smem + Tiles::kMatrixBytes);
  unsigned char* regions = smem + 2 * Tiles::kMatrixBytes;
  bf16* ks = reinterpret_cast<bf16*>(regions + warp * Tiles::kWarpBytes);
  bf16* vs = ks + Tiles::kTileElems;
  auto& u = *reinterpret_cast<nsa::QueryUnion*>(regions + kQueryWarps * Tiles::kWarpBytes);
  nsa::CopyQueryRows<D>(qs, p.q, p, at);
  nsa::CopyQueryRows<D>(dos, p.d_o, p, at);
  mma::CommitCopies();  // ForEachTile's first pass waits for them

  const float scale2 = p.scale * kLog2e;
  // Rows lane / 4 and lane / 4 + 8; a row without a query sees no key (P = 0), whatever its
  // lse2 and delta (0). Nor does a row whose lse is -inf (it saw none in the forward), so
  // exp2 never meets that lse unmasked.
  int row_q[2];
  float lse2[2], delta[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = lane / 4 + 8 * h;
    row_q[h] = nsa::RowQuery(at, r, p.seq_len);
    const int64_t row = row_q[h] >= 0 ? nsa::HeadRow(p, at, r) : 0;
    lse2[h] = row_q[h] >= 0 ? p.lse[row] * kLog2e : 0.0f;
    delta[h] = row_q[h] >= 0 ? p.delta[row] : 0.0f;
  }

  float acc[D / 8][4] = {};
  nsa::ForEachTile<kKeys>(u, p, at, [&](int r0, int count, uint32_t takers) {
    LoadWarpTile<D, kKeys>(ks, vs, p, at.KvRow(p) + r0, count);
    const uint32_t seen = nsa::SeenElements<kKeys>(row_q, takers, at, r0, count, p.window);
    float s[kKeys / 8][4], dp[kKeys / 8][4];
    mma::ProductWithTranspose<D, kKeys>(s, qs, ks, kStride<D>);
    mma::ProductWithTranspose<D, kKeys>(dp, dos, vs, kStride<D>);
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool visible = (seen >> (4 * j + e)) & 1u;
        const float pr = visible ? exp2f(s[j][e] * scale2 - lse2[e / 2]) : 0.0f;
        s[j][e] = pr * (dp[j][e] - delta[e / 2]);
      }
    }
    mma::AccumulateProduct<D, kKeys>(acc, s, ks, kStride<D>);
  });

  StorePartial<D>(reinterpret_cast<float*>(ks), acc);
  __syncthreads();
  static_assert(kQueryWarps == 4);
  const float ones[kQueryWarps] = {1.0f, 1.0f, 1.0f, 1.0f};
  for (int i = threadIdx.x; i < at.queries * at.groups * (D / 2); i += blockDim.x) {
    const int r = i / (D / 2), c = 2 * (i % (D / 2));
    if (nsa::RowQuery(at, r, p.seq_len) < 0) continue;
    const float2 dq = SumPartials<D>(regions, r, c, ones);
    const int64_t row = nsa::HeadRow(p, at, r);
    reinterpret_cast<__nv_bfloat162*>(static_cast<bf16*>(p.dq) + row * D)[c / 2] =
        __floats2bfloat162_rn(dq.x * p.scale, dq.y * p.scale);
  }
}

// ---- dk, dv ----

template <int D>
struct DkvTiles {
  static constexpr int kCols = D > 128 ? 128 : D;  // dk, dv columns a warp accumulates
  static constexpr int kWarps = 4 * (D / kCols);   // warp w: keys 16 (w % 4), column part w / 4
  static constexpr int kKeys = 64;
  // Rows a step takes: at D = 128 two MMA row tiles, so that a step's barriers and copies serve
  // twice the products (243 registers, still two blocks an SM). One elsewhere: at D = 256 dk and
  // dv leave no registers for the second, and at D = 64 it costs a block an SM, not measured.
  static constexpr int kStepRows = D == 128 ? 2 * kRows : kRows;
  static constexpr int kTileElems = kKeys * kStride<D>;     // K or V
  static constexpr int kRowElems = kStepRows * kStride<D>;  // one buffer of q or do rows
  static constexpr int kDqCols = D / kWarps;                // dq columns a warp adds (accum)
  static constexpr int kDsStride = kStride<kKeys>;          // dS [kStepRows][64 keys] bf16
  // K, V, two buffers of q rows, two of do rows, three slots of the rows' facts and (lse2,
  // delta), dS, the item's queries.
  static constexpr size_t kBytes = 2 * (2 * kTileElems + 4 * kRowElems) +
                                   3 * kStepRows * (sizeof(StepRow) + 8) +
                                   2 * kStepRows * kDsStride + 4 * kNsaQueriesPerItem;
};

// dq in the dk/dv kernel: the step's dS [kStepRows][64 keys] into shared `ds` (ds_t: this
// warp's dS^T fragments where `active`, zeros where none of its keys is seen), then warp w adds
// dS K[.][its kDqCols columns] into p.accum with atomicAdd, a row tile at a time. All threads of
// the block; `rows`: the step's rows' facts.
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

  CopyKeys<D, kKeys>(ks, vs, p, at.kv_row, count, threadIdx.x, blockDim.x);
  nsa::LoadQueries(at, p, reinterpret_cast<int32_t*>(ds + kStep * Tiles::kDsStride));
  __syncthreads();  // the item's queries are in

  const bf16* q = static_cast<const bf16*>(p.q);
  const bf16* d_o = static_cast<const bf16*>(p.d_o);
  // Step i's rows' facts, lse2 and delta: this thread's row, if any, found and its lse and delta
  // loads issued now, written into a slot by the callable returned.
  auto facts_of = [&](int i) {
    const int r = threadIdx.x;
    int64_t t = 0;
    const int64_t x = r < kStep ? at.Row(p, kStep * i + r, &t) : -1;
    const StepRow row = {x, x < 0 ? make_int2(1, 0) : at.SeenKeys(p, t)};
    const float2 lse2_delta =
        x < 0 ? make_float2(0.0f, 0.0f) : make_float2(p.lse[x] * kLog2e, p.delta[x]);
    return [=](int slot) {
      if (r >= kStep) return;
      facts[slot * kStep + r] = row;
      row_lse2_delta[slot * kStep + r] = lse2_delta;
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
    // (rows past the end see nothing).
    unsigned seen = 0;
#pragma unroll
    for (int j = 0; j < kStep / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + lane / 4 + 8 * (e / 2);
        const int2 keys = rows[8 * j + 2 * (lane % 4) + e % 2].keys;
        if (key >= keys.x && key <= keys.y) seen |= 1u << (4 * j + e);
      }
    }
    // Uniform per warp: a row of the step sees one of the warp's keys.
    const bool active = __any_sync(0xffffffffu, seen != 0);
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
          const float pr = visible ? exp2f(s[j][e] * scale2 - ld.x) : 0.0f;
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

template <int D>
cudaError_t Dispatch(const NsaSelectedParams& p, int which, cudaStream_t stream) {
  static_assert((QueryTiles<D>::Bytes(1) + 1024) * QueryTiles<D>::kForwardBlocks <= 228 * 1024);
  const int64_t queries = kRows / (p.heads / p.kv_heads);  // nsa::ThisQueryBlock's Q
  const dim3 per_query(static_cast<unsigned>((p.seq_len + queries - 1) / queries),
                       static_cast<unsigned>(p.kv_heads), static_cast<unsigned>(p.batch));
  switch (which) {
    case 0:
      return LaunchKernel(ForwardKernel<D>, per_query, 32 * kQueryWarps, QueryTiles<D>::Bytes(1),
                          stream, p);
    case 1:
      return LaunchKernel(DqKernel<D>, per_query, 32 * kQueryWarps, QueryTiles<D>::Bytes(2), stream,
                          p);
    default: {
      using Tiles = DkvTiles<D>;
      const dim3 grid(static_cast<unsigned>(p.num_items),
                      static_cast<unsigned>((p.block_size + Tiles::kKeys - 1) / Tiles::kKeys));
      return LaunchKernel(DkvKernel<D>, grid, 32 * Tiles::kWarps, Tiles::kBytes, stream, p);
    }
  }
}

cudaError_t Run(const NsaSelectedParams& p, int which, cudaStream_t stream) {
  if (!NsaSelectedSupported(p)) return cudaErrorInvalidValue;
  if (p.head_dim == 64) return Dispatch<64>(p, which, stream);
  if (p.head_dim == 128) return Dispatch<128>(p, which, stream);
  return Dispatch<256>(p, which, stream);
}

}  // namespace

bool NsaSelectedSupported(const NsaSelectedParams& p) {
  const bool dim = p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256;
  return dim && p.batch > 0 && p.batch <= 65535 && p.kv_heads > 0 && p.kv_heads <= 65535 &&
         p.heads % p.kv_heads == 0 && p.heads / p.kv_heads <= kMaxGroup && p.seq_len > 0 &&
         p.seq_len < (int64_t{1} << 31) && p.block_size > 0 && p.selected > 0 &&
         p.selected < (int64_t{1} << 31) && p.window >= 0 && p.num_items < (int64_t{1} << 31);
}

cudaError_t NsaSelectedForward(const NsaSelectedParams& p, cudaStream_t stream) {
  return Run(p, 0, stream);
}

cudaError_t NsaSelectedBackwardDq(const NsaSelectedParams& p, cudaStream_t stream) {
  return Run(p, 1, stream);
}

cudaError_t NsaSelectedBackwardDkv(const NsaSelectedParams& p, cudaStream_t stream) {
  return Run(p, 2, stream);
}

}  // namespace ablate::kernels
