// The sliding-window branch's kernels on wgmma (nsa_window.h: the math, the design, the layout).
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "trainer_lib/kernels/launch.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_window.h"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kD = 128;                 // head dim
constexpr int kTile = 64;               // queries or keys a tile, the warpgroup's M
constexpr int kTileElems = kTile * kD;  // one swizzled [64][128] tile
constexpr int kTileBytes = 2 * kTileElems;

// Dynamic shared memory: `tiles` swizzled tiles, 1024-byte aligned (wgmma_bf16.cuh), then `extra`
// bytes; 1024 bytes of slack to align the start.
constexpr size_t SharedBytes(int tiles, size_t extra = 0) {
  return static_cast<size_t>(tiles) * kTileBytes + extra + 1024;
}

// Each kernel's shared memory: the forward's q tile per head, K and V double-buffered; dq's q and
// do tiles, K and V double-buffered; dk/dv's K and V, q and do double-buffered, and the rows'
// (lse, delta) double-buffered.
template <int kHeads>
constexpr size_t kForwardBytes = SharedBytes(kHeads + 4);
constexpr size_t kDqBytes = SharedBytes(6);
constexpr size_t kDkvBytes = SharedBytes(6, 2 * kTile * sizeof(float2));

// The kernels' code, only in the sm_90a image (elsewhere their bodies trap, unreachable).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// The row and column, in the warpgroup's 64 x N accumulator, of this thread's element e of column
// tile n (wgmma_bf16.cuh, "Fragments").
__device__ int FragmentRow(int e) {
  return 16 * static_cast<int>(threadIdx.x / 32) + static_cast<int>(threadIdx.x % 32) / 4 +
         8 * (e / 2);
}
__device__ int FragmentCol(int n, int e) {
  return 8 * n + 2 * static_cast<int>(threadIdx.x % 4) + e % 2;
}

// Sets the elements of x (a warpgroup's 64 x 64 scores) whose key lies outside its query's
// window to -inf, diff(row, col) giving t - s: the key is in the window where 0 <= t - s < w.
template <typename Diff>
__device__ void MaskOutsideWindow(float (&x)[8][4], int w, const Diff& diff) {
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int d = diff(FragmentRow(e), FragmentCol(n, e));
      if (d < 0 || d >= w) x[n][e] = -INFINITY;
    }
  }
}

// Whether every query of the tile at q0 sees every key of the tile at k0 (no element masked).
__device__ bool WholeTile(int q0, int k0, int w) {
  return k0 + kTile - 1 <= q0 && q0 + kTile - 1 - k0 < w;
}

// Starts copying rows row0 .. row0 + count - 1 of x ([rows, 128] bf16) into a swizzled tile, zeros
// after them. All threads of the block.
__device__ void CopyTile(bf16* dst, const void* x, int64_t row0, int count) {
  const bf16* base = static_cast<const bf16*>(x) + row0 * kD;
  wgmma::CopyRowsSwizzled<kD>(
      dst, kTile, base, [base, count](int r) { return r < count ? base + r * kD : nullptr; },
      threadIdx.x, blockDim.x);
}

// The first 1024-byte-aligned address of the block's dynamic shared memory.
__device__ bf16* AlignedTiles(unsigned char* smem) {
  return reinterpret_cast<bf16*>(smem + ((1024 - mma::SharedAddress(smem) % 1024) % 1024));
}

// Packs the warpgroup's 64 x 64 accumulator x, rounded to bf16, as the register A of four
// m64nNk16 products (chunk kk: columns 16 kk .. 16 kk + 15).
__device__ void PackA(uint32_t (&a)[4][4], const float (&x)[8][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    a[kk][0] = mma::Pack(x[2 * kk][0], x[2 * kk][1]);
    a[kk][1] = mma::Pack(x[2 * kk][2], x[2 * kk][3]);
    a[kk][2] = mma::Pack(x[2 * kk + 1][0], x[2 * kk + 1][1]);
    a[kk][3] = mma::Pack(x[2 * kk + 1][2], x[2 * kk + 1][3]);
  }
}

// d = A B^T over D = 128 for two 64-row swizzled tiles (A and B both K-major): S = Q K^T and its
// kin. Issued, not waited for.
__device__ void ProductOverHeadDim(float (&d)[8][4], const bf16* a, const bf16* b) {
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    wgmma::MmaShared64<0>(d, wgmma::SwizzledKMajor(a, kTile, kk),
                          wgmma::SwizzledKMajor(b, kTile, kk), kk > 0);
  }
}

// s = A_s B_s^T and dp = A_dp B_dp^T over D (ProductOverHeadDim) as two groups, waiting for s
// alone: the caller forms P while dp's products run, then waits for them.
__device__ void ScoresThenDp(float (&s)[8][4], const bf16* a_s, const bf16* b_s, float (&dp)[8][4],
                             const bf16* a_dp, const bf16* b_dp) {
  wgmma::Fence();
  ProductOverHeadDim(s, a_s, b_s);
  wgmma::Commit();
  ProductOverHeadDim(dp, a_dp, b_dp);
  wgmma::Commit();
  wgmma::Wait<1>();
  wgmma::FenceOperands(s);
}

// d += A B for register A (PackA's, K = 64) and B a swizzled [64][128] tile read N-major, after
// the fence that orders this thread's writes of d and a before the products. Issued, not waited
// for.
__device__ void AccumulateRows(float (&d)[16][4], uint32_t (&a)[4][4], const bf16* b) {
  wgmma::FenceOperands(d);
  wgmma::FenceOperands(a);
  wgmma::Fence();
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
    wgmma::MmaRegisterA128(d, a[kk], wgmma::SwizzledMnMajor(b, kTile, kk));
}

// Writes the warpgroup's 64 x 128 accumulator times `scale[row half]` as bf16 rows row0 ..
// row0 + rows - 1 of y ([*, 128]).
__device__ void StoreRows(void* y, int64_t row0, int rows, const float (&x)[16][4],
                          const float (&scale)[2]) {
  bf16* out = static_cast<bf16*>(y);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = FragmentRow(2 * half);
    if (r >= rows) continue;
    bf16* row = out + (row0 + r) * kD;
#pragma unroll
    for (int n = 0; n < 16; ++n) {
      *reinterpret_cast<uint32_t*>(row + FragmentCol(n, 0)) =
          mma::Pack(x[n][2 * half] * scale[half], x[n][2 * half + 1] * scale[half]);
    }
  }
}

// The block of a query-tile kernel (the forward, dq): 64 queries from q0 of heads h0 .. h0 +
// kHeads - 1 (one group) of sequence b, grid (ceil(T / 64), H / kHeads, B).
struct QueryTile {
  int q0;           // the first query
  int rows;         // the queries in the tile, T - q0 in the last
  int w;            // the window, clamped to T so that every difference fits an int
  int64_t q_row0;   // the first query's row in q's layout [B H T, D], head h0 (h0 + hd: + hd T)
  int64_t kv_row0;  // row of (b, h0 / G, 0) in k's and v's layout [B H_kv T, D]

  // Sets the scores s (64 queries x the 64 keys from k0) outside their queries' windows to -inf.
  __device__ void Mask(float (&s)[8][4], int k0) const {
    if (WholeTile(q0, k0, w)) return;
    const int diff0 = q0 - k0;
    MaskOutsideWindow(s, w, [diff0](int r, int c) { return diff0 + r - c; });
  }
};

template <int kHeads>
__device__ QueryTile ThisQueryTile(const NsaWindowParams& p) {
  QueryTile at;
  at.q0 = static_cast<int>(blockIdx.x) * kTile;
  const int64_t h0 = int64_t{blockIdx.y} * kHeads, b = blockIdx.z;
  at.rows = static_cast<int>(min(int64_t{kTile}, p.seq_len - at.q0));
  at.w = static_cast<int>(min(p.window, p.seq_len));
  at.q_row0 = (b * p.heads + h0) * p.seq_len + at.q0;
  at.kv_row0 = (b * p.kv_heads + h0 / (p.heads / p.kv_heads)) * p.seq_len;
  return at;
}

// The double-buffered loop of every kernel here: prefetch(i) starts step i's copies into buffer
// i % 2 and commits them; body(i) runs once they are in and visible to wgmma, and buffer i % 2 is
// refilled (step i + 2) only after every thread has left body(i). Copies the caller issued before
// the loop join step 0's. All threads of the block.
template <typename Prefetch, typename Body>
__device__ void ForEachBufferedStep(int steps, const Prefetch& prefetch, const Body& body) {
  prefetch(0);
  for (int i = 0; i < steps; ++i) {
    if (i + 1 < steps) {
      prefetch(i + 1);
      mma::WaitCopies<1>();
    } else {
      mma::WaitCopies<0>();
    }
    wgmma::FenceSharedForAsync();
    __syncthreads();  // step i's copies are in
    body(i);
    __syncthreads();  // buffer i % 2 is consumed before step i + 2's copies
  }
}

// The walk of a query tile's key tiles, from the diagonal back: tiles max(0, q0 - w + 1) / 64 ..
// (q0 + rows - 1) / 64, K and V double-buffered (ks, vs: two tiles each), body(k0, k, v) once per
// tile with its first key and its tiles in shared memory, ready for wgmma. The caller's copies
// issued before the walk (the query tile's) join the first tile's. All threads of the block.
template <typename Body>
__device__ void ForEachKeyTile(const NsaWindowParams& p, const QueryTile& at, bf16* ks, bf16* vs,
                               const Body& body) {
  const int last = (at.q0 + at.rows - 1) / kTile;
  const int steps = last - max(0, at.q0 - at.w + 1) / kTile + 1;
  const auto prefetch = [&](int i) {
    const int k0 = (last - i) * kTile;
    const int count = static_cast<int>(min(int64_t{kTile}, p.seq_len - k0));
    CopyTile(ks + (i % 2) * kTileElems, p.k, at.kv_row0 + k0, count);
    CopyTile(vs + (i % 2) * kTileElems, p.v, at.kv_row0 + k0, count);
    mma::CommitCopies();
  };
  ForEachBufferedStep(steps, prefetch, [&](int i) {
    body((last - i) * kTile, ks + (i % 2) * kTileElems, vs + (i % 2) * kTileElems);
  });
}

// One key tile of the forward's online softmax (base 2) for one head: s, the tile's scores
// (masked), becomes P; m and l, the running max and this thread's share of the sum for its two
// rows, move on; o is rescaled to the new max. P's fragments are packed into a.
__device__ void SoftmaxStep(float (&s)[8][4], float (&m)[2], float (&l)[2], float (&o)[16][4],
                            uint32_t (&a)[4][4], float scale2) {
  float mx[2] = {m[0], m[1]};
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] *= scale2;
      mx[e / 2] = fmaxf(mx[e / 2], s[n][e]);
    }
  }
  float base[2], alpha[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    mx[half] = mma::QuadMax(mx[half]);
    // A row that has seen no key yet keeps a finite base, so that exp2 gives 0, not NaN.
    base[half] = mx[half] == -INFINITY ? 0.0f : mx[half];
    alpha[half] = exp2f(m[half] - base[half]);
    m[half] = mx[half];
    l[half] *= alpha[half];
  }
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = exp2f(s[n][e] - base[e / 2]);
      l[e / 2] += s[n][e];
    }
  }
  PackA(a, s);
#pragma unroll
  for (int n = 0; n < 16; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] *= alpha[e / 2];
  }
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// The forward: a thread block per (64 queries, kHeads heads of one group, batch b), grid
// (ceil(T / 64), H / kHeads, B). The heads share each K and V tile, and their chains overlap:
// head 1's S = Q K^T runs while head 0's softmax does, head 0's O += P V while head 1's softmax
// does. kHeads = 2 where G is even (K and V then cross L2 half as often), else 1.
template <int kHeads>
__global__ void __launch_bounds__(128, 2) ForwardKernel(NsaWindowParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const QueryTile at = ThisQueryTile<kHeads>(p);
  const int64_t t_len = p.seq_len;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* qs = AlignedTiles(smem_raw);    // [kHeads][kTileElems]
  bf16* ks = qs + kHeads * kTileElems;  // [2][kTileElems]
  bf16* vs = ks + 2 * kTileElems;       // [2][kTileElems]
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) {
    CopyTile(qs + hd * kTileElems, p.q, at.q_row0 + hd * t_len, at.rows);
  }
  const float scale2 = p.scale * kLog2e;
  float o[kHeads][16][4] = {};
  // Per head and row half (rows FragmentRow(0) and FragmentRow(2)): the running max and this
  // thread's share of the sum (base 2).
  float m[kHeads][2], l[kHeads][2] = {};
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) m[hd][0] = m[hd][1] = -INFINITY;
  ForEachKeyTile(p, at, ks, vs, [&](int k0, const bf16* kb, const bf16* vb) {
    float s[kHeads][8][4];
    wgmma::Fence();
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) {
      ProductOverHeadDim(s[hd], qs + hd * kTileElems, kb);
      wgmma::Commit();
    }
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) {
      // Head hd's S is in once at most kHeads - 1 later groups are pending: the other heads' S,
      // the earlier heads' O += P V.
      wgmma::Wait<kHeads - 1>();
      wgmma::FenceOperands(s[hd]);
      at.Mask(s[hd], k0);
      uint32_t a[4][4];
      SoftmaxStep(s[hd], m[hd], l[hd], o[hd], a, scale2);
      AccumulateRows(o[hd], a, vb);
      wgmma::Commit();
    }
    wgmma::Wait<0>();
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) wgmma::FenceOperands(o[hd]);
  });
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) {
    float inv[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float sum = mma::QuadSum(l[hd][half]);
      inv[half] = 1.0f / sum;
      const int r = FragmentRow(2 * half);
      if (threadIdx.x % 4 == 0 && r < at.rows) {
        p.lse[at.q_row0 + hd * t_len + r] = (m[hd][half] + log2f(sum)) * kLn2;
      }
    }
    StoreRows(p.o, at.q_row0 + hd * t_len, at.rows, o[hd], inv);
  }
#else
  __trap();  // launched only where the sm_90a code is in the build (NsaWindowKernelsRun)
#endif
}

// dq: a thread block per (64 queries, head h, batch b), grid (ceil(T / 64), H, B), the forward's
// walk with S = Q K^T and dP = dO V^T, P = exp2(S - lse), dS = P (dP - delta), dq += dS K.
__global__ void __launch_bounds__(128, 2) DqKernel(NsaWindowParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const QueryTile at = ThisQueryTile<1>(p);

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* qs = AlignedTiles(smem_raw);
  bf16* dos = qs + kTileElems;
  bf16* ks = dos + kTileElems;     // [2][kTileElems]
  bf16* vs = ks + 2 * kTileElems;  // [2][kTileElems]
  CopyTile(qs, p.q, at.q_row0, at.rows);
  CopyTile(dos, p.d_o, at.q_row0, at.rows);
  const float scale2 = p.scale * kLog2e;
  // Per row half: lse (base 2) and delta; a row past T sees nothing, P = exp2(S - inf) = 0.
  float lse2[2], delta[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = FragmentRow(2 * half);
    lse2[half] = r < at.rows ? p.lse[at.q_row0 + r] * kLog2e : INFINITY;
    delta[half] = r < at.rows ? p.delta[at.q_row0 + r] : 0.0f;
  }
  float dq[16][4] = {};
  ForEachKeyTile(p, at, ks, vs, [&](int k0, const bf16* kb, const bf16* vb) {
    float s[8][4], dp[8][4];
    ScoresThenDp(s, qs, kb, dp, dos, vb);
    at.Mask(s, k0);
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = exp2f(s[n][e] * scale2 - lse2[e / 2]);  // P
    }
    wgmma::Wait<0>();
    wgmma::FenceOperands(dp);
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) dp[n][e] = s[n][e] * (dp[n][e] - delta[e / 2]);  // dS
    }
    uint32_t a[4][4];
    PackA(a, dp);
    AccumulateRows(dq, a, kb);
    wgmma::Commit();
    wgmma::Wait<0>();
    wgmma::FenceOperands(dq);
  });
  const float scale[2] = {p.scale, p.scale};
  StoreRows(p.dq, at.q_row0, at.rows, dq, scale);
#else
  __trap();  // launched only where the sm_90a code is in the build (NsaWindowKernelsRun)
#endif
}

// dk and dv: a thread block per (64 keys, KV head, batch), grid (ceil(T / 64), H_kv, B), keeping
// the keys' K and V tiles and walking the query tiles that reach them, head by head within a tile,
// q and do double-buffered; each row's (lse in base 2, delta) loaded a step ahead.
__global__ void __launch_bounds__(128, 2) DkvKernel(NsaWindowParams p) {
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
  bf16* qs = vs + kTileElems;                                       // [2][kTileElems]
  bf16* dos = qs + 2 * kTileElems;                                  // [2][kTileElems]
  float2* stats = reinterpret_cast<float2*>(dos + 2 * kTileElems);  // [2][kTile]: lse2, delta
  CopyTile(ks, p.k, kv_row, count);
  CopyTile(vs, p.v, kv_row, count);

  // Query tiles first .. last hold the queries t in [k0, k0 + count - 1 + w - 1] whose windows
  // reach these keys; step i takes tile first + i / G for head hk G + i % G.
  const int first = k0 / kTile;
  const int last = static_cast<int>(min(t_len - 1, int64_t{k0} + count - 1 + w - 1) / kTile);
  // An int: at most 2^25 tiles times G, past 2^31 only for a q of over 2^37 elements.
  const int steps = (last - first + 1) * groups;
  const auto step_rows = [&](int i, int64_t* row0) {
    const int t0 = (first + i / groups) * kTile;
    *row0 = (b * p.heads + hk * groups + i % groups) * t_len + t0;
    return static_cast<int>(min(int64_t{kTile}, t_len - t0));
  };
  const auto prefetch = [&](int i) {
    int64_t row0 = 0;
    const int rows = step_rows(i, &row0);
    CopyTile(qs + (i % 2) * kTileElems, p.q, row0, rows);
    CopyTile(dos + (i % 2) * kTileElems, p.d_o, row0, rows);
    mma::CommitCopies();
  };
  // Thread r < 64's row of step i: (lse in base 2, delta), or (inf, 0) past T, which zeroes P.
  const auto load_stats = [&](int i) {
    int64_t row0 = 0;
    const int rows = step_rows(i, &row0);
    const int r = static_cast<int>(threadIdx.x);
    return r < rows ? make_float2(p.lse[row0 + r] * kLog2e, p.delta[row0 + r])
                    : make_float2(INFINITY, 0.0f);
  };
  if (threadIdx.x < kTile) stats[threadIdx.x] = load_stats(0);

  const float scale2 = p.scale * kLog2e;
  float dk[16][4] = {}, dv[16][4] = {};
  // K's and V's copies join step 0's; a step's stats are written a step ahead, into the slot
  // the step before last read.
  ForEachBufferedStep(steps, prefetch, [&](int i) {
    const float2 next = threadIdx.x < kTile && i + 1 < steps ? load_stats(i + 1) : float2{};
    const bf16* qb = qs + (i % 2) * kTileElems;
    const bf16* dob = dos + (i % 2) * kTileElems;
    const float2* st = stats + (i % 2) * kTile;
    const int t0 = (first + i / groups) * kTile;
    const bool whole = WholeTile(t0, k0, w);
    float s[8][4], dp[8][4];               // [64 keys][64 queries]: S^T, dP^T
    ScoresThenDp(s, ks, qb, dp, vs, dob);  // dS^T is then formed while dv's products run
    if (!whole) MaskOutsideWindow(s, w, [&](int r, int c) { return t0 - k0 + c - r; });
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = exp2f(s[n][e] * scale2 - st[FragmentCol(n, e)].x);
    }
    uint32_t pa[4][4], da[4][4];
    PackA(pa, s);
    AccumulateRows(dv, pa, dob);  // dv += P^T dO
    wgmma::Commit();
    wgmma::Wait<1>();  // dP^T is in
    wgmma::FenceOperands(dp);
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) dp[n][e] = s[n][e] * (dp[n][e] - st[FragmentCol(n, e)].y);
    }
    PackA(da, dp);
    AccumulateRows(dk, da, qb);  // dk += dS^T Q
    wgmma::Commit();
    if (threadIdx.x < kTile && i + 1 < steps) stats[((i + 1) % 2) * kTile + threadIdx.x] = next;
    wgmma::Wait<0>();
    wgmma::FenceOperands(dk);
    wgmma::FenceOperands(dv);
  });
  const float scale[2] = {p.scale, p.scale}, one[2] = {1.0f, 1.0f};
  StoreRows(p.dk, kv_row, count, dk, scale);
  StoreRows(p.dv, kv_row, count, dv, one);
#else
  __trap();  // launched only where the sm_90a code is in the build (NsaWindowKernelsRun)
#endif
}

cudaError_t Refusal(const NsaWindowParams& p) {
  if (!NsaWindowSupported(p)) return cudaErrorInvalidValue;
  if (!NsaWindowKernelsRun()) return cudaErrorNotSupported;
  return cudaSuccess;
}

unsigned Tiles(const NsaWindowParams& p) {
  return static_cast<unsigned>((p.seq_len + kTile - 1) / kTile);
}

}  // namespace

bool NsaWindowKernelsRun() {
#if defined(ABLATE_SM90A_KERNELS)
  return wgmma::DeviceRunsSm90a();
#else
  return false;
#endif
}

bool NsaWindowSupported(const NsaWindowParams& p) {
  return p.head_dim == kD && p.batch >= 1 && p.batch <= 65535 && p.kv_heads >= 1 &&
         p.heads >= p.kv_heads && p.heads <= 65535 && p.heads % p.kv_heads == 0 && p.seq_len >= 1 &&
         p.seq_len < (int64_t{1} << 31) && p.window >= 1;
}

cudaError_t NsaWindowForward(const NsaWindowParams& p, cudaStream_t stream) {
  if (const cudaError_t refused = Refusal(p); refused != cudaSuccess) return refused;
  if ((p.heads / p.kv_heads) % 2 == 0) {
    const dim3 grid(Tiles(p), static_cast<unsigned>(p.heads / 2), static_cast<unsigned>(p.batch));
    return LaunchKernel(ForwardKernel<2>, grid, 128, kForwardBytes<2>, stream, p);
  }
  const dim3 grid(Tiles(p), static_cast<unsigned>(p.heads), static_cast<unsigned>(p.batch));
  return LaunchKernel(ForwardKernel<1>, grid, 128, kForwardBytes<1>, stream, p);
}

cudaError_t NsaWindowBackward(const NsaWindowParams& p, cudaStream_t stream) {
  if (const cudaError_t refused = Refusal(p); refused != cudaSuccess) return refused;
  const dim3 dq_grid(Tiles(p), static_cast<unsigned>(p.heads), static_cast<unsigned>(p.batch));
  const cudaError_t error = LaunchKernel(DqKernel, dq_grid, 128, kDqBytes, stream, p);
  if (error != cudaSuccess) return error;
  const dim3 dkv_grid(Tiles(p), static_cast<unsigned>(p.kv_heads), static_cast<unsigned>(p.batch));
  return LaunchKernel(DkvKernel, dkv_grid, 128, kDkvBytes, stream, p);
}

}  // namespace ablate::kernels
