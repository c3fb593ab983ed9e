// What the sliding-window branch's kernels share (nsa_window.cu's forward, nsa_window_backward.cu's
// dq and dk/dv; the contract is nsa_window.h's): the tile geometry, the swizzled tiles and their
// products on wgmma, the masks, a query tile's walk over its key tiles, and the launchers' checks.
// Device code stands under __CUDA_ARCH_FEAT_SM90_ALL: the kernels' bodies exist only in the sm_90a
// image (elsewhere they trap, unreachable).
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_WINDOW_TILES_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_WINDOW_TILES_CUH_

#include <cuda_bf16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_window.h"
#include "trainer_lib/kernels/tma.cuh"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa_window {

using bf16 = __nv_bfloat16;

constexpr int kD = 128;                 // head dim
constexpr int kTile = 64;               // queries or keys a tile, the warpgroup's M
constexpr int kTileElems = kTile * kD;  // one swizzled [64][128] tile
constexpr int kTileBytes = 2 * kTileElems;

static_assert(kD == tma::kRowElems && kTile == tma::kBoxRows &&
              static_cast<uint32_t>(kTileBytes) == tma::kTileBytes);

// Dynamic shared memory: `tiles` swizzled tiles, 1024-byte aligned (wgmma_bf16.cuh), then `extra`
// bytes, then the two mbarriers of ForEachLoadedStep; 1024 bytes of slack to align the start.
constexpr size_t SharedBytes(int tiles, size_t extra = 0) {
  return static_cast<size_t>(tiles) * kTileBytes + extra + 2 * sizeof(uint64_t) + 1024;
}

// The tensor maps of the two tiles a step of a kernel here loads (tma.cuh): K and V for the
// forward's and dq's walks, q and do for dk/dv's. A __grid_constant__ kernel parameter.
struct StepMaps {
  CUtensorMap first;
  CUtensorMap second;
};

// Host: maps of first and second, both [batch, heads, rows, 128] bf16, a box a [64][128] tile.
inline cudaError_t EncodeStepMaps(StepMaps* maps, const void* first, const void* second,
                                  int64_t batch, int64_t heads, int64_t rows) {
  const cudaError_t error = tma::EncodeRows(&maps->first, first, batch, heads, rows, kTile, 1);
  if (error != cudaSuccess) return error;
  return tma::EncodeRows(&maps->second, second, batch, heads, rows, kTile, 1);
}

// Starts loading rows [row, row + 64) of (b, h) into the swizzled [64][128] tile dst, completing
// on bar (tma::LoadBox). One thread.
inline __device__ void LoadTile(bf16* dst, const CUtensorMap* map, int row, int h, int b,
                                uint64_t* bar) {
  tma::LoadBox(dst, kTile * 64, map, row, h, b, bar);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The row and column, in its warpgroup's 64 x N accumulator, of this thread's element e of column
// tile n (wgmma_bf16.cuh, "Fragments"); a block may hold several warpgroups.
inline __device__ int FragmentRow(int e) {
  return 16 * static_cast<int>(threadIdx.x % 128 / 32) + static_cast<int>(threadIdx.x % 32) / 4 +
         8 * (e / 2);
}
inline __device__ int FragmentCol(int n, int e) {
  return 8 * n + 2 * static_cast<int>(threadIdx.x % 4) + e % 2;
}

// Sets the elements of x (a warpgroup's 64 x 64 scores) whose key lies outside its query's
// window to -inf, diff(row, col) giving t - s: the key is in the window where 0 <= t - s < w.
template <typename Diff>
inline __device__ void MaskOutsideWindow(float (&x)[8][4], int w, const Diff& diff) {
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
inline __device__ bool WholeTile(int q0, int k0, int w) {
  return k0 + kTile - 1 <= q0 && q0 + kTile - 1 - k0 < w;
}

// Starts copying rows row0 .. row0 + count - 1 of x ([rows, 128] bf16) into a swizzled tile, zeros
// after them, with threads thread, thread + threads, ... (all threads of the block by default).
inline __device__ void CopyTile(bf16* dst, const void* x, int64_t row0, int count,
                                int thread = static_cast<int>(threadIdx.x),
                                int threads = static_cast<int>(blockDim.x)) {
  const bf16* base = static_cast<const bf16*>(x) + row0 * kD;
  wgmma::CopyRowsSwizzled<kD>(
      dst, kTile, base, [base, count](int r) { return r < count ? base + r * kD : nullptr; },
      thread, threads);
}

// The first 1024-byte-aligned address of the block's dynamic shared memory.
inline __device__ bf16* AlignedTiles(unsigned char* smem) {
  return reinterpret_cast<bf16*>(smem + ((1024 - mma::SharedAddress(smem) % 1024) % 1024));
}

// Packs the warpgroup's 64 x 64 accumulator x, rounded to bf16, as the register A of four
// m64nNk16 products (chunk kk: columns 16 kk .. 16 kk + 15).
inline __device__ void PackA(uint32_t (&a)[4][4], const float (&x)[8][4]) {
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
inline __device__ void ProductOverHeadDim(float (&d)[8][4], const bf16* a, const bf16* b) {
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    wgmma::MmaShared64<0>(d, wgmma::SwizzledKMajor(a, kTile, kk),
                          wgmma::SwizzledKMajor(b, kTile, kk), kk > 0);
  }
}

// s = A_s B_s^T and dp = A_dp B_dp^T over D (ProductOverHeadDim) as two groups, waiting for s
// alone: the caller forms P while dp's products run, then waits for them.
inline __device__ void ScoresThenDp(float (&s)[8][4], const bf16* a_s, const bf16* b_s,
                                    float (&dp)[8][4], const bf16* a_dp, const bf16* b_dp) {
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
inline __device__ void AccumulateRows(float (&d)[16][4], uint32_t (&a)[4][4], const bf16* b) {
  wgmma::FenceOperands(d);
  wgmma::FenceOperands(a);
  wgmma::Fence();
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
    wgmma::MmaRegisterA128(d, a[kk], wgmma::SwizzledMnMajor(b, kTile, kk));
}

// Writes the warpgroup's 64 x 128 accumulator times `scale[row half]` as rows row0 .. row0 +
// rows - 1 of y ([*, 128], bf16 rounded once, or fp32).
template <typename T>
inline __device__ void StoreRows(T* y, int64_t row0, int rows, const float (&x)[16][4],
                                 const float (&scale)[2]) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = FragmentRow(2 * half);
    if (r >= rows) continue;
    T* row = y + (row0 + r) * kD;
#pragma unroll
    for (int n = 0; n < 16; ++n) {
      const float a = x[n][2 * half] * scale[half], b = x[n][2 * half + 1] * scale[half];
      if constexpr (std::is_same_v<T, float>) {
        *reinterpret_cast<float2*>(row + FragmentCol(n, 0)) = make_float2(a, b);
      } else {
        *reinterpret_cast<uint32_t*>(row + FragmentCol(n, 0)) = mma::Pack(a, b);
      }
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
  int h_kv, b;      // the key/value head h0 / G and the sequence

  // Sets the scores s (64 queries x the 64 keys from k0) outside their queries' windows to -inf.
  __device__ void Mask(float (&s)[8][4], int k0) const {
    if (WholeTile(q0, k0, w)) return;
    const int diff0 = q0 - k0;
    MaskOutsideWindow(s, w, [diff0](int r, int c) { return diff0 + r - c; });
  }
};

template <int kHeads>
inline __device__ QueryTile ThisQueryTile(const NsaWindowParams& p) {
  QueryTile at;
  at.q0 = static_cast<int>(blockIdx.x) * kTile;
  const int64_t h0 = int64_t{blockIdx.y} * kHeads, b = blockIdx.z;
  at.rows = static_cast<int>(min(int64_t{kTile}, p.seq_len - at.q0));
  at.w = static_cast<int>(min(p.window, p.seq_len));
  at.q_row0 = (b * p.heads + h0) * p.seq_len + at.q0;
  at.h_kv = static_cast<int>(h0 / (p.heads / p.kv_heads));
  at.b = static_cast<int>(b);
  at.kv_row0 = (b * p.kv_heads + at.h_kv) * p.seq_len;
  return at;
}

// The double-buffered loop of every kernel here, its tiles loaded by the tensor memory
// accelerator: load(i, bar), called by thread 0, starts step i's two [64][128] tiles into buffer
// i % 2 (LoadTile twice, on bar); body(i) runs once they are in, and buffer i % 2 is refilled
// (step i + 2) only after every thread has left body(i). bars: two mbarriers in shared memory.
// Copies the caller started with cp.async before the loop are in before body(0). All threads of
// the block.
template <typename Load, typename Body>
inline __device__ void ForEachLoadedStep(int steps, uint64_t* bars, const Load& load,
                                         const Body& body) {
  if (threadIdx.x == 0) tma::InitBarriers(bars, 2);
  __syncthreads();
  const auto start = [&](int i) {
    uint64_t* bar = bars + i % 2;
    tma::ExpectBytes(bar, 2 * tma::kTileBytes);
    load(i, bar);
  };
  if (threadIdx.x == 0) start(0);
  mma::CommitCopies();  // wait_group waits for committed groups only
  mma::WaitCopies<0>();
  wgmma::FenceSharedForAsync();
  __syncthreads();  // the caller's copies are in
  for (int i = 0; i < steps; ++i) {
    if (threadIdx.x == 0 && i + 1 < steps) start(i + 1);
    tma::Wait(bars + i % 2, static_cast<uint32_t>(i / 2) % 2);
    // Thread 0's loads took it apart from its warp, whose wgmmas (.sync.aligned) need it whole.
    __syncwarp();
    body(i);
    __syncthreads();  // buffer i % 2 is consumed before step i + 2's loads
  }
}

// The walk of a query tile's key tiles max(0, q0 - w + 1) / 64 .. (q0 + rows - 1) / 64, from the
// diagonal back (kToDiagonal false) or up to it, K and V double-buffered (ks, vs: two tiles each;
// maps: K's and V's, bars: ForEachLoadedStep's), body(k0, k, v) once per tile with its first key
// and its tiles in shared memory, ready for wgmma. The caller's copies issued before the walk (the
// query tile's) are in before the first body. Returns the buffer (0 or 1) of the last tile, which
// stays in shared memory after the walk, as does the one before it in the other buffer. All
// threads of the block.
template <bool kToDiagonal = false, typename Body>
inline __device__ int ForEachKeyTile(const QueryTile& at, const StepMaps& maps, bf16* ks, bf16* vs,
                                     uint64_t* bars, const Body& body) {
  const int first = max(0, at.q0 - at.w + 1) / kTile, last = (at.q0 + at.rows - 1) / kTile;
  const int steps = last - first + 1;
  const auto tile = [&](int i) { return kToDiagonal ? first + i : last - i; };
  const auto load = [&](int i, uint64_t* bar) {
    const int k0 = tile(i) * kTile;
    LoadTile(ks + (i % 2) * kTileElems, &maps.first, k0, at.h_kv, at.b, bar);
    LoadTile(vs + (i % 2) * kTileElems, &maps.second, k0, at.h_kv, at.b, bar);
  };
  ForEachLoadedStep(steps, bars, load, [&](int i) {
    body(tile(i) * kTile, ks + (i % 2) * kTileElems, vs + (i % 2) * kTileElems);
  });
  return (steps - 1) % 2;
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// How many of a query's p.local_slots slots, from `slots`, hold `block` (nsa_window.h's c).
inline __device__ int LocalCount(const NsaWindowParams& p, const int32_t* slots, int block) {
  int c = 0;
  for (int64_t j = 0; j < p.local_slots; ++j) c += slots[j] == block;
  return c;
}

// The launchers' refusal of p: cudaErrorInvalidValue where !NsaWindowSupported(p),
// cudaErrorNotSupported where !NsaWindowKernelsRun(), else cudaSuccess.
inline cudaError_t Refusal(const NsaWindowParams& p) {
  if (!NsaWindowSupported(p)) return cudaErrorInvalidValue;
  if (!NsaWindowKernelsRun()) return cudaErrorNotSupported;
  return cudaSuccess;
}

// Query or key tiles of 64 in a sequence: the grids' x.
inline unsigned Tiles(const NsaWindowParams& p) {
  return static_cast<unsigned>((p.seq_len + kTile - 1) / kTile);
}

}  // namespace ablate::kernels::nsa_window

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_WINDOW_TILES_CUH_
