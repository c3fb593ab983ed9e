// The sliding-window branch's backward on wgmma, dq and dk/dv (nsa_window.h: the math, the
// design, the layout); what it shares with the forward is nsa_window_tiles.cuh.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/launch.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_ds_k.cuh"
#include "trainer_lib/kernels/nsa_window.h"
#include "trainer_lib/kernels/nsa_window_tiles.cuh"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa_window {
namespace {

// Shared memory: dq's q and do tiles, K and V double-buffered; dk/dv's K and V, q and do
// double-buffered, dS [64 rows][64 keys] for dq_accum, and the rows' (lse, delta, and the
// selected branch's) double-buffered.
constexpr size_t kDqBytes = SharedBytes(6);
constexpr size_t kDsBytes = kTile * kTile * sizeof(bf16);
constexpr size_t kDkvBytes = SharedBytes(6, kDsBytes + 2 * kTile * sizeof(float4));

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

// dk and dv: a thread block per (64 keys, KV head, batch), grid (ceil(T / 64), H_kv, B), keeping
// the keys' K and V tiles and walking the query tiles that reach them, head by head within a tile,
// q and do double-buffered; each row's (lse in base 2, delta) loaded a step ahead. With dq_accum,
// each step's dS also goes through shared memory into dq's rows (nsa_ds_k.cuh's AddDsK).
__global__ void __launch_bounds__(128, 2)
    DkvKernel(NsaWindowParams p, const __grid_constant__ StepMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const int64_t t_len = p.seq_len;
  const int k0 = static_cast<int>(blockIdx.x) * kTile;
  const int64_t hk = blockIdx.y, b = blockIdx.z;
  const int groups = static_cast<int>(p.heads / p.kv_heads);
  const int64_t kv_row = (b * p.kv_heads + hk) * t_len + k0;
  const int count = static_cast<int>(min(int64_t{kTile}, t_len - k0));
  const int w = static_cast<int>(min(p.window, t_len));

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* ks = AlignedTiles(smem_raw);
  bf16* vs = ks + kTileElems;
  bf16* qs = vs + kTileElems;       // [2][kTileElems]
  bf16* dos = qs + 2 * kTileElems;  // [2][kTileElems]
  bf16* ds = dos + 2 * kTileElems;  // 1024-byte aligned, as wgmma reads it
  // [2][kTile]: lse2, delta, and with local terms the selected branch's lse2 for these keys'
  // block (LocalLse2; +inf but in the steps of its own queries and the next block's) and delta.
  float4* stats = reinterpret_cast<float4*>(ds + kTile * kTile);
  auto* bars = reinterpret_cast<uint64_t*>(stats + 2 * kTile);
  CopyTile(ks, p.k, kv_row, count);
  CopyTile(vs, p.v, kv_row, count);

  // Query tiles first .. last hold the queries t in [k0, k0 + count - 1 + w - 1] whose windows
  // reach these keys. The walk is head by head (head hk G + i / tiles at step i), and within a
  // head step i takes the one tile j of them with j = i (mod tiles): the blocks of neighbouring
  // key tiles, which run side by side, then read each (head, query tile) at about the same step,
  // and L2 serves most reads (DRAM 7.5% of its throughput at fla's 128K on an H200). Walked tile
  // by tile with the heads inside, a tile's readers were up to 8 tiles' worth of steps apart (by
  // our count 135 MB of other reads between them at fla's shape, L2 holding 50): DRAM 54.7%.
  const int first = k0 / kTile;
  const int last = static_cast<int>(min(t_len - 1, int64_t{k0} + count - 1 + w - 1) / kTile);
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
  const auto load = [&](int i, uint64_t* bar) {
    const int t0 = step_t0(i), h = step_head(i), bi = static_cast<int>(b);
    LoadTile(qs + (i % 2) * kTileElems, &maps.first, t0, h, bi, bar);
    LoadTile(dos + (i % 2) * kTileElems, &maps.second, t0, h, bi, bar);
  };
  // Thread r < 64's row of step i: (lse in base 2, delta, the selected branch's), or (inf, 0,
  // inf, 0) past T, which zeroes P.
  const auto near_step = [&](int i) {
    return p.local_idx != nullptr && (step_t0(i) == k0 || step_t0(i) == k0 + kTile);
  };
  const auto load_stats = [&](int i) {
    int64_t row0 = 0;
    const int rows = step_rows(i, &row0);
    const int r = static_cast<int>(threadIdx.x);
    float4 x = make_float4(INFINITY, 0.0f, INFINITY, 0.0f);
    if (r >= rows) return x;
    x.x = p.lse[row0 + r] * kLog2e;
    x.y = p.delta[row0 + r];
    if (near_step(i)) {
      const int64_t idx_row = (b * p.kv_heads + hk) * t_len + step_t0(i) + r;
      x.z = LocalLse2(p, row0 + r, p.local_idx + idx_row * p.local_slots, k0 / kTile);
      x.w = p.local_delta[row0 + r];
    }
    return x;
  };
  if (threadIdx.x < kTile) stats[threadIdx.x] = load_stats(0);

  const float scale2 = p.scale * kLog2e;
  float dk[16][4] = {}, dv[16][4] = {};
  // K's and V's copies are in before step 0; a step's stats are written a step ahead, into the
  // slot the step before last read.
  ForEachLoadedStep(steps, bars, load, [&](int i) {
    const float4 next = threadIdx.x < kTile && i + 1 < steps ? load_stats(i + 1) : float4{};
    const bf16* qb = qs + (i % 2) * kTileElems;
    const bf16* dob = dos + (i % 2) * kTileElems;
    const float4* st = stats + (i % 2) * kTile;
    const int t0 = step_t0(i);
    const bool whole = WholeTile(t0, k0, w), near = near_step(i);
    float s[8][4], dp[8][4];               // [64 keys][64 queries]: S^T, dP^T
    ScoresThenDp(s, ks, qb, dp, vs, dob);  // dS^T is then formed while dv's products run
    if (!whole) MaskOutsideWindow(s, w, [&](int r, int c) { return t0 - k0 + c - r; });
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
    if (threadIdx.x < kTile && i + 1 < steps) stats[((i + 1) % 2) * kTile + threadIdx.x] = next;
    if (p.dq_accum != nullptr) {  // dq += scale dS K while dk's and dv's products run
      int64_t row0 = 0;
      const int rows = step_rows(i, &row0);
      const auto dq_row = [&](int r) { return r < rows ? p.dq_accum + (row0 + r) * kD : nullptr; };
      nsa::AddDsK(dp, ds, ks, p.scale, dq_row(FragmentRow(0)), dq_row(FragmentRow(2)));
    }
    wgmma::Wait<0>();
    wgmma::FenceOperands(dk);
    wgmma::FenceOperands(dv);
  });
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
  const dim3 dkv_grid(nsa_window::Tiles(p), static_cast<unsigned>(p.kv_heads),
                      static_cast<unsigned>(p.batch));
  return LaunchKernel(nsa_window::DkvKernel, dkv_grid, 128, nsa_window::kDkvBytes, stream, p, maps);
}

}  // namespace ablate::kernels
