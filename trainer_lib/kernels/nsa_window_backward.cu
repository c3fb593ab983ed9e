// The sliding-window branch's backward on wgmma, dq and dk/dv (nsa_window.h: the math, the
// design, the layout); what it shares with the forward is nsa_window_tiles.cuh.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/launch.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_window.h"
#include "trainer_lib/kernels/nsa_window_tiles.cuh"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa_window {
namespace {

// dk/dv's block: two warpgroups, each 64 of its 128 keys; q and do in three buffers (a step's
// loads start once every thread has left the step before last), dS [64 rows][128 keys] in two.
constexpr int kDkvGroups = 2, kDkvKeys = kDkvGroups * kTile, kDkvBuffers = 3;

// Shared memory: dq's q and do tiles, K and V double-buffered; dk/dv's K and V (a tile of each
// for each warpgroup), q and do tiles, dS (two tiles of [64][128]), each warpgroup's rows' (lse,
// delta, and the selected branch's) in three slots, and a third mbarrier.
constexpr size_t kDqBytes = SharedBytes(6);
constexpr size_t kDkvBytes =
    SharedBytes(2 * kDkvGroups + 2 * kDkvBuffers + 2,
                kDkvBuffers* kDkvGroups* kTile * sizeof(float4) + sizeof(uint64_t));

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The selected branch's log-sum-exp in base 2 for the query of `row` (q's layout) less log2 of
// how many of its slots (`slots`, p.local_slots of them) hold `block`: +inf where none does,
// which zeroes its P_sel.
inline __device__ float LocalLse2(const NsaWindowParams& p, int64_t row, const int32_t* slots,
                                  int block) {
  const int c = LocalCount(p, slots, block);
  return c > 0 ? p.local_lse[row] * kLog2e - log2f(static_cast<float>(c)) : INFINITY;
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// dq: a thread block per (64 queries, head h, batch b), grid (ceil(T / 64), H, B), the forward's
// walk with S = Q K^T and dP = dO V^T, P = exp2(S - lse), dS = P (dP - delta), dq += dS K.
__global__ void __launch_bounds__(128, 2)
    DqKernel(NsaWindowParams p, const __grid_constant__ StepMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const QueryTile at = ThisQueryTile<1>(p);

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* qs = AlignedTiles(smem_raw);
  bf16* dos = qs + kTileElems;
  bf16* ks = dos + kTileElems;     // [2][kTileElems]
  bf16* vs = ks + 2 * kTileElems;  // [2][kTileElems]
  auto* bars = reinterpret_cast<uint64_t*>(vs + 2 * kTileElems);
  CopyTile(qs, p.q, at.q_row0, at.rows);
  CopyTile(dos, p.d_o, at.q_row0, at.rows);
  const float scale2 = p.scale * kLog2e;
  // Per row half: lse (base 2) and delta; a row past T sees nothing, P = exp2(S - inf) = 0.
  // With local terms, per row half the selected branch's lse2 for the own block and the one
  // before (LocalLse2) and its delta.
  const bool local = p.local_idx != nullptr;
  float lse2[2], delta[2];
  float own2[2] = {INFINITY, INFINITY}, prev2[2] = {INFINITY, INFINITY}, delta_sel[2] = {0, 0};
  const int64_t groups = p.heads / p.kv_heads;
  const int64_t idx_row0 =
      (int64_t{blockIdx.z} * p.kv_heads + blockIdx.y / groups) * p.seq_len + at.q0;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = FragmentRow(2 * half);
    lse2[half] = r < at.rows ? p.lse[at.q_row0 + r] * kLog2e : INFINITY;
    delta[half] = r < at.rows ? p.delta[at.q_row0 + r] : 0.0f;
    if (local && r < at.rows) {
      const int32_t* slots = p.local_idx + (idx_row0 + r) * p.local_slots;
      const int own = at.q0 / kTile;
      own2[half] = LocalLse2(p, at.q_row0 + r, slots, own);
      if (own > 0) prev2[half] = LocalLse2(p, at.q_row0 + r, slots, own - 1);
      delta_sel[half] = p.local_delta[at.q_row0 + r];
    }
  }
  float dq[16][4] = {};
  ForEachKeyTile(at, maps, ks, vs, bars, [&](int k0, const bf16* kb, const bf16* vb) {
    float s[8][4], dp[8][4], ps[8][4];
    ScoresThenDp(s, qs, kb, dp, dos, vb);
    at.Mask(s, k0);
    // The queries' own block or the one before: the selected branch's P joins, formed with the
    // window's while dP's products run.
    const bool near = local && (k0 == at.q0 || k0 + kTile == at.q0);
    const float sel2[2] = {k0 == at.q0 ? own2[0] : prev2[0], k0 == at.q0 ? own2[1] : prev2[1]};
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float x = s[n][e] * scale2;
        if (near) ps[n][e] = Exp2(x - sel2[e / 2]);
        s[n][e] = Exp2(x - lse2[e / 2]);  // P
      }
    }
    wgmma::Wait<0>();
    wgmma::FenceOperands(dp);
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float d = dp[n][e];
        dp[n][e] = s[n][e] * (d - delta[e / 2]);  // dS
        if (near) dp[n][e] += ps[n][e] * (d - delta_sel[e / 2]);
      }
    }
    uint32_t a[4][4];
    PackA(a, dp);
    AccumulateRows(dq, a, kb);
    wgmma::Commit();
    wgmma::Wait<0>();
    wgmma::FenceOperands(dq);
  });
  const float scale[2] = {p.scale, p.scale};
  StoreRows(static_cast<bf16*>(p.dq), at.q_row0, at.rows, dq, scale);
#else
  __trap();  // launched only where the sm_90a code is in the build (NsaWindowKernelsRun)
#endif
}

// dk and dv: a thread block per (128 keys, KV head, batch), grid (ceil(T / 128), H_kv, B), two
// warpgroups, warpgroup g keeping keys [k0 + 64 g, + 64)'s K and V tiles, both walking the query
// tiles that reach the block's keys, head by head within a tile, each step's q and do tiles
// loaded by TMA (tma.cuh) for both; each warpgroup's rows' (lse in base 2, delta) loaded a step
// ahead. With dq_accum, each warpgroup writes its dS^T into the step's dS [64 rows][128 keys] and,
// after the step's barrier, adds dS K for its 64 of dq's columns over all 128 keys into dq's
// rows with atomics: FlashAttention-3's split of dq between its warpgroups, half the q and do
// loads and half the atomics a key of a one-warpgroup block of 64 keys. One barrier a step: it
// publishes dS and the next step's rows, and tells thread 0 that the step before's buffer is
// free, so that its loads start a step and a half ahead.
__global__ void __launch_bounds__(kDkvGroups * 128, 1)
    DkvKernel(NsaWindowParams p, const __grid_constant__ StepMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const int64_t t_len = p.seq_len;
  const int k0 = static_cast<int>(blockIdx.x) * kDkvKeys;
  const int wg = static_cast<int>(threadIdx.x / 128), tid = static_cast<int>(threadIdx.x % 128);
  const int kw = k0 + kTile * wg;  // this warpgroup's first key
  const int64_t hk = blockIdx.y, b = blockIdx.z;
  const int groups = static_cast<int>(p.heads / p.kv_heads);
  const int64_t kv_row = (b * p.kv_heads + hk) * t_len + kw;
  const int count = static_cast<int>(min(int64_t{kTile}, t_len - kw));  // <= 0: keys past T
  const int w = static_cast<int>(min(p.window, t_len));

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* ks = AlignedTiles(smem_raw);          // [kDkvGroups][kTileElems]
  bf16* vs = ks + kDkvGroups * kTileElems;    // [kDkvGroups][kTileElems]
  bf16* qs = vs + kDkvGroups * kTileElems;    // [kDkvBuffers][kTileElems]
  bf16* dos = qs + kDkvBuffers * kTileElems;  // [kDkvBuffers][kTileElems]
  bf16* ds = dos + kDkvBuffers * kTileElems;  // [2][64 rows][128 keys], swizzled
  // [kDkvBuffers][kDkvGroups][kTile]: lse2, delta, and with local terms the selected branch's
  // lse2 for the warpgroup's block (LocalLse2; +inf but in the steps of its own queries and the
  // next block's) and delta.
  auto* stats = reinterpret_cast<float4*>(ds + 2 * kTileElems);
  auto* bars = reinterpret_cast<uint64_t*>(stats + kDkvBuffers * kDkvGroups * kTile);
  bf16* my_k = ks + wg * kTileElems;
  bf16* my_v = vs + wg * kTileElems;
  CopyTile(my_k, p.k, kv_row, max(count, 0), tid, 128);  // each warpgroup its own keys
  CopyTile(my_v, p.v, kv_row, max(count, 0), tid, 128);

  // Query tiles first .. last hold the queries t in [k0, k0 + keys - 1 + w - 1] whose windows
  // reach the block's keys. The walk is head by head (head hk G + i / tiles at step i), and within
  // a head step i takes the one tile j of them with j = i (mod tiles): the blocks of neighbouring
  // key tiles, which run side by side, then read each (head, query tile) at about the same step,
  // and L2 serves most reads (DRAM 7.5% of its throughput at fla's 128K on an H200). Walked tile
  // by tile with the heads inside, a tile's readers were up to 8 tiles' worth of steps apart (by
  // our count 135 MB of other reads between them at fla's shape, L2 holding 50): DRAM 54.7%.
  const int keys = static_cast<int>(min(int64_t{kDkvKeys}, t_len - k0));
  const int first = k0 / kTile;
  const int last = static_cast<int>(min(t_len - 1, int64_t{k0} + keys - 1 + w - 1) / kTile);
  const int tiles = last - first + 1;
  // An int: at most 2^25 tiles times G, past 2^31 only for a q of over 2^37 elements.
  const int steps = tiles * groups;
  const auto step_t0 = [&](int i) {
    const unsigned j = static_cast<unsigned>(i) % tiles;
    return (first + static_cast<int>((j + tiles - first % tiles) % tiles)) * kTile;
  };
  const auto step_head = [&](int i) { return static_cast<int>(hk) * groups + i / tiles; };
  const auto step_rows = [&](int i, int64_t* row0) {
    const int t0 = step_t0(i);
    *row0 = (b * p.heads + step_head(i)) * t_len + t0;
    return static_cast<int>(min(int64_t{kTile}, t_len - t0));
  };
  const auto start = [&](int i) {  // thread 0
    uint64_t* bar = bars + i % kDkvBuffers;
    tma::ExpectBytes(bar, 2 * tma::kTileBytes);
    const int t0 = step_t0(i), h = step_head(i), bi = static_cast<int>(b);
    LoadTile(qs + (i % kDkvBuffers) * kTileElems, &maps.first, t0, h, bi, bar);
    LoadTile(dos + (i % kDkvBuffers) * kTileElems, &maps.second, t0, h, bi, bar);
  };
  // Thread r < 64 of a warpgroup's row of step i: (lse in base 2, delta, the selected branch's),
  // or (inf, 0, inf, 0) past T, which zeroes P.
  const auto near_step = [&](int i) {
    return p.local_idx != nullptr && (step_t0(i) == kw || step_t0(i) == kw + kTile);
  };
  const auto load_stats = [&](int i) {
    int64_t row0 = 0;
    const int rows = step_rows(i, &row0);
    float4 x = make_float4(INFINITY, 0.0f, INFINITY, 0.0f);
    if (tid >= rows) return x;
    x.x = p.lse[row0 + tid] * kLog2e;
    x.y = p.delta[row0 + tid];
    if (near_step(i)) {
      const int64_t idx_row = (b * p.kv_heads + hk) * t_len + step_t0(i) + tid;
      x.z = LocalLse2(p, row0 + tid, p.local_idx + idx_row * p.local_slots, kw / kTile);
      x.w = p.local_delta[row0 + tid];
    }
    return x;
  };
  const auto stats_slot = [&](int i) {
    return stats + ((i % kDkvBuffers) * kDkvGroups + wg) * kTile;
  };
  if (tid < kTile) stats_slot(0)[tid] = load_stats(0);
  if (threadIdx.x == 0) {
    tma::InitBarriers(bars, kDkvBuffers);
  }
  mma::CommitCopies();  // wait_group waits for committed groups only
  mma::WaitCopies<0>();
  wgmma::FenceSharedForAsync();
  __syncthreads();  // K, V, step 0's rows and the barriers are in
  if (threadIdx.x == 0) {
    start(0);
    if (steps > 1) start(1);
  }

  const float scale2 = p.scale * kLog2e;
  float dk[16][4] = {}, dv[16][4] = {};
  for (int i = 0; i < steps; ++i) {
    const float4 next = tid < kTile && i + 1 < steps ? load_stats(i + 1) : float4{};
    tma::Wait(bars + i % kDkvBuffers, static_cast<uint32_t>(i / kDkvBuffers) % 2);
    __syncwarp();  // thread 0's loads took it apart from its warp; wgmma needs it whole
    const bf16* qb = qs + (i % kDkvBuffers) * kTileElems;
    const bf16* dob = dos + (i % kDkvBuffers) * kTileElems;
    const float4* st = stats_slot(i);
    const int t0 = step_t0(i);
    const bool whole = WholeTile(t0, kw, w), near = near_step(i);
    float s[8][4], dp[8][4];                   // [64 keys][64 queries]: S^T, dP^T
    ScoresThenDp(s, my_k, qb, dp, my_v, dob);  // dS^T is then formed while dv's products run
    // Slot (i + 1) % 3 was last read in step i - 2, which every thread left before the last
    // barrier; the barrier below publishes it.
    if (tid < kTile && i + 1 < steps) stats_slot(i + 1)[tid] = next;
    if (!whole) MaskOutsideWindow(s, w, [&](int r, int c) { return t0 - kw + c - r; });
    if (near) {
      // These keys are the block of the step's queries or the one before: the selected
      // branch's P joins P and its dS dS, both formed once dP^T is in.
      wgmma::Wait<0>();
      wgmma::FenceOperands(dp);
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float4 r = st[FragmentCol(n, e)];
          const float x = s[n][e] * scale2, pw = Exp2(x - r.x), ps = Exp2(x - r.z);
          s[n][e] = pw + ps;
          dp[n][e] = pw * (dp[n][e] - r.y) + ps * (dp[n][e] - r.w);
        }
      }
    } else {
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] = Exp2(s[n][e] * scale2 - st[FragmentCol(n, e)].x);
      }
    }
    uint32_t pa[4][4], da[4][4];
    PackA(pa, s);
    AccumulateRows(dv, pa, dob);  // dv += P^T dO
    wgmma::Commit();
    wgmma::Wait<1>();  // dP^T is in (near: since before dv's products)
    wgmma::FenceOperands(dp);
    if (!near) {
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) dp[n][e] = s[n][e] * (dp[n][e] - st[FragmentCol(n, e)].y);
      }
    }
    PackA(da, dp);
    AccumulateRows(dk, da, qb);  // dk += dS^T Q
    wgmma::Commit();
    bf16* ds_step = ds + (i % 2) * kTileElems;
    if (p.dq_accum != nullptr) {
      // dS^T's element (key FragmentRow(e), row FragmentCol(n, e)) as dS's (row, 64 wg + key),
      // rounded to bf16 as FlashAttention-2 rounds it.
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          ds_step[wgmma::SwizzledOffset(kTile, FragmentCol(n, e), kTile * wg + FragmentRow(e))] =
              __float2bfloat16(dp[n][e]);
        }
      }
      wgmma::FenceSharedForAsync();
    }
    // dS and step i + 1's rows are in, and every thread has left step i - 1: its buffer takes
    // step i + 2's loads.
    __syncthreads();
    if (threadIdx.x == 0 && i + 2 < steps) start(i + 2);
    __syncwarp();                 // warp 0 whole again for the wgmmas below
    if (p.dq_accum != nullptr) {  // dq[., 64 wg ..] += scale dS K over the block's 128 keys
      float acc[8][4];
      wgmma::Fence();
#pragma unroll
      for (int kk = 0; kk < kDkvKeys / 16; ++kk) {
        const bf16* k_tile = ks + (kk / 4) * kTileElems + wg * kTile * 64;  // panel wg
        wgmma::MmaShared64<1>(acc, wgmma::SwizzledKMajor(ds_step, kTile, kk),
                              wgmma::SwizzledMnMajor(k_tile, kTile, kk % 4), kk > 0);
      }
      wgmma::Commit();
      wgmma::Wait<0>();
      wgmma::FenceOperands(acc);
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[n][e] *= p.scale;
      }
      int64_t row0 = 0;
      const int rows = step_rows(i, &row0);
      const auto dq_row = [&](int r) {
        return r < rows ? p.dq_accum + (row0 + r) * kD + kTile * wg : nullptr;
      };
      mma::AtomicAddRows<64>(dq_row(FragmentRow(0)), dq_row(FragmentRow(2)), acc);
    }
    wgmma::Wait<0>();
    wgmma::FenceOperands(dk);
    wgmma::FenceOperands(dv);
  }
  if (count <= 0) return;
  const float scale[2] = {p.scale, p.scale}, one[2] = {1.0f, 1.0f};
  StoreRows(static_cast<bf16*>(p.dk), kv_row, count, dk, scale);
  StoreRows(static_cast<bf16*>(p.dv), kv_row, count, dv, one);
#else
  __trap();  // launched only where the sm_90a code is in the build (NsaWindowKernelsRun)
#endif
}

}  // namespace
}  // namespace ablate::kernels::nsa_window

namespace ablate::kernels {

cudaError_t NsaWindowBackward(const NsaWindowParams& p, cudaStream_t stream) {
  if (const cudaError_t refused = nsa_window::Refusal(p); refused != cudaSuccess) return refused;
  nsa_window::StepMaps maps;
  if (p.dq != nullptr) {
    const dim3 dq_grid(nsa_window::Tiles(p), static_cast<unsigned>(p.heads),
                       static_cast<unsigned>(p.batch));
    cudaError_t error = nsa_window::EncodeStepMaps(&maps, p.k, p.v, p.batch, p.kv_heads, p.seq_len);
    if (error == cudaSuccess) {
      error =
          LaunchKernel(nsa_window::DqKernel, dq_grid, 128, nsa_window::kDqBytes, stream, p, maps);
    }
    if (error != cudaSuccess) return error;
  }
  if (p.dk == nullptr) return cudaSuccess;
  const cudaError_t error =
      nsa_window::EncodeStepMaps(&maps, p.q, p.d_o, p.batch, p.heads, p.seq_len);
  if (error != cudaSuccess) return error;
  const dim3 dkv_grid(
      static_cast<unsigned>((p.seq_len + nsa_window::kDkvKeys - 1) / nsa_window::kDkvKeys),
      static_cast<unsigned>(p.kv_heads), static_cast<unsigned>(p.batch));
  return LaunchKernel(nsa_window::DkvKernel, dkv_grid, nsa_window::kDkvGroups * 128,
                      nsa_window::kDkvBytes, stream, p, maps);
}

}  // namespace ablate::kernels
