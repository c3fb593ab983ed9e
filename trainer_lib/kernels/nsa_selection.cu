#include <cuda_bf16.h>

#include <cmath>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_block_rank.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_selection.h"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels {
namespace {

using mma::bf16;
using nsa::GroupMean;
using nsa::Key;
using nsa::KeyBlock;

// The scores on Hopper's warpgroup MMAs where this compilation targets sm_90a (its two warpgroups
// each 64 of the rows, the key tiles 128-byte swizzled, wgmma_bf16.cuh), else on mma.sync.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
constexpr bool kWgmmaScores = true;
#else
constexpr bool kWgmmaScores = false;
#endif

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 16 * kWarps;  // head rows per thread block: an MMA tile a warp
constexpr int kCols = 64;           // compressed blocks per key tile
// Probability rows padded by 8 words. An MMA fragment's store, a column pair a lane as one
// 8-byte store (its half-warps: 4 consecutive rows by 4 column pairs each), meets banks 8 r + c
// for r < 4 and c < 8: all 32 once a half-warp. (Stored a word at a time, 8 rows by 4 columns,
// two lanes met in each bank, and ncu counted a fifth of the kernel's shared-memory wavefronts
// as conflicts.) A warp reading one row's 64 columns as pairs meets each bank once a half-warp.
constexpr int kProbStride = kCols + 8;
__device__ int ProbAt(int r, int c) { return r * kProbStride + c; }

__host__ __device__ int QueriesPerBlock(int64_t group_size) {
  return static_cast<int>(kRows / group_size);
}

__host__ __device__ size_t KeyTileBytes(int64_t head_dim) {
  return static_cast<size_t>(2 * kCols) * (head_dim + 8) * sizeof(bf16);
}
// The second key tile starts kCols (D + 8) bf16 after the first: 1024-byte aligned, as the
// swizzled tiles need, for every D.
static_assert(kCols * (64 + 8) * 2 % 1024 == 0 && kCols * (128 + 8) * 2 % 1024 == 0 &&
              kCols * (256 + 8) * 2 % 1024 == 0);

// Starts copying key tile j (blocks 64 j .. 64 j + 63 of kc, zeros past `compressed`) into
// buffer j % 2.
template <int kD>
__device__ void LoadKeyTile(bf16* keys, const bf16* kc, int64_t compressed, int j) {
  const int64_t first = int64_t{j} * kCols;
  const int count = static_cast<int>(compressed - first < kCols ? compressed - first : kCols);
  bf16* tile = keys + (j % 2) * kCols * mma::kStride<kD>;
  if constexpr (kWgmmaScores) {
    const bf16* base = kc + first * kD;
    wgmma::CopyRowsSwizzled<kD>(
        tile, kCols, base, [&](int r) { return r < count ? base + r * kD : nullptr; }, threadIdx.x,
        kThreads);
  } else {
    nsa::CopyKeyTile<kD, kCols>(tile, kc, first, count, threadIdx.x, kThreads);
  }
  mma::CommitCopies();
}

// body(j, tile) for the key tiles j = 0 .. tiles - 1, each in shared memory while it runs, the
// next one loading meanwhile. Every thread of the block must call it; body may hold barriers.
template <int kD, typename Body>
__device__ void ForEachKeyTile(bf16* keys, const bf16* kc, int64_t compressed, int tiles,
                               Body body) {
  if (tiles > 0) LoadKeyTile<kD>(keys, kc, compressed, 0);
  for (int j = 0; j < tiles; ++j) {
    if (j + 1 < tiles) {
      LoadKeyTile<kD>(keys, kc, compressed, j + 1);
      mma::WaitCopies<1>();
    } else {
      mma::WaitCopies<0>();
    }
    if constexpr (kWgmmaScores) wgmma::FenceSharedForAsync();
    __syncthreads();
    body(j, keys + (j % 2) * kCols * mma::kStride<kD>);
    __syncthreads();  // the buffer is reloaded two tiles on
  }
}

// s = this warp's 16 rows against the tile's 64 keys (C fragments of 8 column tiles).
template <int kD>
__device__ void TileScores(float (&s)[kCols / 8][4], const uint32_t (&qa)[kD / 16][4],
                           const bf16* tile) {
  if constexpr (kWgmmaScores) {
    wgmma::Fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      wgmma::MmaRegisterA64(s, qa[kk], wgmma::SwizzledKMajor(tile, kCols, kk), kk > 0);
    }
    wgmma::Commit();
    wgmma::Wait<0>();
    wgmma::FenceOperands(s);
  } else {
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
#pragma unroll
      for (int j = 0; j < kCols / 8; ++j) {
        uint32_t b[2];
        mma::LoadBTransposed(b, tile, mma::kStride<kD>, 8 * j, 16 * kk);
        mma::Mma(s[j], qa[kk], b[0], b[1]);
      }
    }
  }
}

// One query's running top n, held by a warp in descending order: lane j < n holds the j-th
// largest key kept so far (0 for an empty slot, below every block's key; lanes past n hold 0
// too, and no slot), and every lane the n-th, `floor`. Between tiles the slots and the floor
// wait in shared memory.
struct WarpTop {
  unsigned long long slot = 0, floor = 0;
  int n = 0;

  // Keeps `key` (the same in every lane) when it beats the floor: the slots below it move down
  // a lane.
  __device__ void Offer(unsigned long long key) {
    if (key <= floor) return;
    const int lane = threadIdx.x % 32;
    const int at = __popc(__ballot_sync(0xffffffffu, lane < n && slot > key));
    const unsigned long long above = __shfl_up_sync(0xffffffffu, slot, 1);
    if (lane < n && lane > at) slot = above;
    if (lane == at) slot = key;
    floor = __shfl_sync(0xffffffffu, slot, n - 1);
  }

  // Offers the keys a and b of each lane. Few go one by one. Many are sorted (a bitonic sort of
  // the 64, those not above the floor as 0) and merged with the slots at once: the larger of
  // slot j and the (31 - j)-th candidate is the union's top 32 as a bitonic sequence, which five
  // more stages sort.
  __device__ void OfferAll(unsigned long long a, unsigned long long b) {
    const unsigned from_a = __ballot_sync(0xffffffffu, a > floor);
    const unsigned from_b = __ballot_sync(0xffffffffu, b > floor);
    const int offered = __popc(from_a) + __popc(from_b);
    if (offered == 0) return;
    if (offered <= kOneByOne) {
      for (unsigned lanes = from_a; lanes != 0; lanes &= lanes - 1) {
        Offer(__shfl_sync(0xffffffffu, a, __ffs(lanes) - 1));
      }
      for (unsigned lanes = from_b; lanes != 0; lanes &= lanes - 1) {
        Offer(__shfl_sync(0xffffffffu, b, __ffs(lanes) - 1));
      }
      return;
    }
    const int lane = threadIdx.x % 32;
    // Element x = 32 r + lane of the 64 is a (r = 0) or b (r = 1).
    unsigned long long x[2] = {a > floor ? a : 0, b > floor ? b : 0};
#pragma unroll
    for (int k = 2; k <= 64; k *= 2) {
#pragma unroll
      for (int j = k / 2; j > 0; j /= 2) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int at = 32 * r + lane;
          const bool descending = (at & k) == 0 || k == 64;
          if (j == 32) {
            if (r == 0 && descending == (x[0] < x[1])) {
              const unsigned long long t = x[0];
              x[0] = x[1];
              x[1] = t;
            }
            continue;
          }
          const unsigned long long other = __shfl_xor_sync(0xffffffffu, x[r], j);
          const bool keep_larger = descending == ((at & j) == 0);
          x[r] = keep_larger == (other > x[r]) ? other : x[r];
        }
      }
    }
    // x[0] over the lanes is the candidates' top 32, descending; lanes past n hold no slot (0).
    const unsigned long long reversed = __shfl_sync(0xffffffffu, x[0], 31 - lane);
    unsigned long long y = slot > reversed ? slot : reversed;
#pragma unroll
    for (int j = 16; j > 0; j /= 2) {
      const unsigned long long other = __shfl_xor_sync(0xffffffffu, y, j);
      y = ((lane & j) == 0) == (other > y) ? other : y;
    }
    slot = lane < n ? y : 0;
    floor = __shfl_sync(0xffffffffu, slot, n - 1);
  }

  // out[0 .. n): the kept blocks, then -1 for the empty slots.
  __device__ void Write(int32_t* out) const {
    const int lane = threadIdx.x % 32;
    if (lane < n) out[lane] = slot == 0 ? -1 : KeyBlock(slot);
  }

  // Above this many keys offered in one tile, OfferAll sorts them all at once.
  static constexpr int kOneByOne = 12;
};

template <int kD>
__global__ void __launch_bounds__(kThreads, kD <= 128 ? 2 : 1)
    SelectionKernel(NsaSelectionParams p) {
  constexpr int kStride = mma::kStride<kD>;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  // 1024-byte aligned, as the swizzled key tiles need.
  unsigned char* shared = shared_raw + (1024 - mma::SharedAddress(shared_raw) % 1024) % 1024;
  bf16* keys = reinterpret_cast<bf16*>(shared);  // 2 x [kCols][kStride]; first the rows
  float* prob = reinterpret_cast<float*>(shared + KeyTileBytes(kD));  // [kRows][kProbStride]
  auto* kept = reinterpret_cast<unsigned long long*>(prob + kRows * kProbStride);  // [Q][n]

  const int g_count = static_cast<int>(p.group_size);
  const int queries = QueriesPerBlock(p.group_size);
  const int64_t l = p.block_size, group = blockIdx.y;
  // The longest rows first: thread block x takes the x-th query tile from the end.
  const int64_t t0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * queries;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const bf16* q = static_cast<const bf16*>(p.q);
  const bf16* kc = static_cast<const bf16*>(p.k_cmp) + group * p.compressed * kD;
  // Scores in log2 units: exp2 is one instruction where expf is several.
  const float scale = p.scale * kLog2e;

  // The rows into registers, staged through the key buffers (which hold exactly kRows rows).
  mma::CopyRows<kD>(
      keys, kRows, q,
      [&](int r) -> const bf16* {
        const int g = r / queries, i = r % queries;
        if (g >= g_count || t0 + i >= p.seq_len) return nullptr;
        return q + ((group * g_count + g) * p.seq_len + t0 + i) * kD;
      },
      threadIdx.x, kThreads);
  mma::CommitCopies();
  mma::WaitCopies<0>();
  __syncthreads();
  uint32_t qa[kD / 16][4];
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    mma::LoadA(qa[kk], keys + 16 * warp * kStride, kStride, 16 * kk);
  }
  __syncthreads();

  // This thread's two rows (C fragment rows lane / 4 and lane / 4 + 8) and the blocks each sees.
  int visible[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = 16 * warp + lane / 4 + 8 * h;
    const int64_t t = t0 + r % queries;
    const int64_t seen = (t + 1) / l < p.compressed ? (t + 1) / l : p.compressed;
    visible[h] = r < g_count * queries && t < p.seq_len ? static_cast<int>(seen) : 0;
  }
  const int64_t last = (t0 + queries < p.seq_len ? t0 + queries : p.seq_len) - 1;
  const int cols = static_cast<int>((last + 1) / l < p.compressed ? (last + 1) / l : p.compressed);
  const int tiles = (cols + kCols - 1) / kCols;
  auto column = [&](int j, int jj, int e) { return j * kCols + 8 * jj + 2 * (lane % 4) + (e & 1); };

  // Each row's softmax statistics in log2 units, as pass 2 takes them (P = exp2(scale S - m) inv):
  // from the caller's log-sum-exp (m = lse log2(e), inv = 1) when it gives one, else pass 1. Only
  // a row that sees a block reads its log-sum-exp: rows past T or G have none.
  float m[2] = {-INFINITY, -INFINITY}, inv[2] = {1.0f, 1.0f};
  if (p.lse != nullptr) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = 16 * warp + lane / 4 + 8 * h;
      if (visible[h] > 0) {
        m[h] = p.lse[(group * g_count + r / queries) * p.seq_len + t0 + r % queries] * kLog2e;
      }
    }
  } else {
    // Pass 1: each row's max and sum of exp over its visible blocks, per thread, then per quad.
    float z[2] = {0.0f, 0.0f};
    ForEachKeyTile<kD>(keys, kc, p.compressed, tiles, [&](int j, const bf16* tile) {
      float s[kCols / 8][4];
      TileScores<kD>(s, qa, tile);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float top = -INFINITY;
#pragma unroll
        for (int jj = 0; jj < kCols / 8; ++jj) {
#pragma unroll
          for (int e = 2 * h; e < 2 * h + 2; ++e) {
            s[jj][e] = column(j, jj, e) < visible[h] ? s[jj][e] * scale : -INFINITY;
            top = fmaxf(top, s[jj][e]);
          }
        }
        if (top == -INFINITY) continue;
        if (top > m[h]) {
          z[h] *= Exp2(m[h] - top);
          m[h] = top;
        }
#pragma unroll
        for (int jj = 0; jj < kCols / 8; ++jj) {
          z[h] += Exp2(s[jj][2 * h] - m[h]) + Exp2(s[jj][2 * h + 1] - m[h]);
        }
      }
    });
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      for (int offset = 1; offset < 4; offset *= 2) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m[h], offset);
        const float z2 = __shfl_xor_sync(0xffffffffu, z[h], offset);
        const float top = fmaxf(m[h], m2);
        if (top == -INFINITY) continue;
        z[h] = z[h] * Exp2(m[h] - top) + z2 * Exp2(m2 - top);
        m[h] = top;
      }
      inv[h] = z[h] > 0.0f ? 1.0f / z[h] : 0.0f;
    }
  }

  // Pass 2: the probabilities tile by tile into shared memory; then a warp per query ranks the
  // tile's group means (a lane per block) against the query's running top n.
  const int n = static_cast<int>(p.selected);
  unsigned long long* floors = kept + queries * n;            // [Q]
  int* own_block = reinterpret_cast<int*>(floors + queries);  // [Q]: t / l
  int* seen_blocks = own_block + queries;                     // [Q]: the blocks query t0 + i sees
  const float inv_g = 1.0f / static_cast<float>(g_count);
  const int ranked = t0 + queries < p.seq_len ? queries : static_cast<int>(p.seq_len - t0);
  for (int i = warp; i < ranked; i += kWarps) {
    const int64_t own = (t0 + i) / l, seen = (t0 + i + 1) / l;
    if (lane == 0) {
      own_block[i] = static_cast<int>(own);
      seen_blocks[i] = static_cast<int>(seen < p.compressed ? seen : p.compressed);
    }
    WarpTop top{.n = n};
    top.Offer(Key(1.0f, 0));
    if (own - 1 > 0) top.Offer(Key(1.0f, own - 1));
    if (own > 0) top.Offer(Key(1.0f, own));
    if (lane < n) kept[i * n + lane] = top.slot;
    if (lane == 0) floors[i] = top.floor;
  }
  ForEachKeyTile<kD>(keys, kc, p.compressed, tiles, [&](int j, const bf16* tile) {
    float s[kCols / 8][4];
    TileScores<kD>(s, qa, tile);
#pragma unroll
    for (int jj = 0; jj < kCols / 8; ++jj) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float v[2];
#pragma unroll
        for (int e = 2 * h; e < 2 * h + 2; ++e) {
          v[e % 2] = column(j, jj, e) < visible[h] ? Exp2(s[jj][e] * scale - m[h]) * inv[h] : 0.0f;
        }
        *reinterpret_cast<float2*>(
            &prob[ProbAt(16 * warp + lane / 4 + 8 * h, column(0, jj, 2 * h))]) =
            make_float2(v[0], v[1]);
      }
    }
    __syncthreads();
    const int c0 = j * kCols;
    for (int i = warp; i < ranked; i += kWarps) {
      const int own = own_block[i], seen = seen_blocks[i];
      if (c0 >= seen) continue;
      WarpTop top{.floor = floors[i], .n = n};
      // Most tiles offer nothing: a block's key beats the floor only if its score is at least the
      // floor's (the key's upper word; 0 while slots are empty), a float compare.
      const float floor_score = __uint_as_float(static_cast<unsigned>(top.floor >> 32));
      // Lane j scores blocks c0 + 2 j and c0 + 2 j + 1 (its columns' pair of probabilities).
      float score[2] = {-1.0f, -1.0f};  // no key
      if (c0 + 2 * lane < seen) {
        float2 v = make_float2(0.0f, 0.0f);
        for (int g = 0; g < g_count; ++g) {
          const float2 x =
              *reinterpret_cast<const float2*>(&prob[ProbAt(g * queries + i, 2 * lane)]);
          v.x += x.x;
          v.y += x.y;
        }
        // NaN compares false below, as its key (0) would.
        score[0] = GroupMean(v.x, inv_g);
        if (c0 + 2 * lane + 1 < seen) score[1] = GroupMean(v.y, inv_g);
      }
      if (!__any_sync(0xffffffffu, score[0] >= floor_score || score[1] >= floor_score)) continue;
      unsigned long long key[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int block = c0 + 2 * lane + h;
        // Already kept: blocks 0, own - 1 and own.
        const bool forced = block == 0 || static_cast<unsigned>(own - block) <= 1u;
        key[h] = forced ? 0 : Key(score[h], block);
      }
      if (!__any_sync(0xffffffffu, key[0] > top.floor || key[1] > top.floor)) continue;
      top.slot = lane < n ? kept[i * n + lane] : 0;
      top.OfferAll(key[0], key[1]);
      if (lane < n) kept[i * n + lane] = top.slot;
      if (lane == 0) floors[i] = top.floor;
    }
  });
  for (int i = warp; i < ranked; i += kWarps) {
    const WarpTop top{.slot = lane < n ? kept[i * n + lane] : 0, .n = n};
    top.Write(p.block_idx + (group * p.seq_len + t0 + i) * n);
  }
}

template <int kD>
cudaError_t Launch(const NsaSelectionParams& p, cudaStream_t stream) {
  const size_t bytes = NsaSelectionSharedBytes(p);
  cudaError_t error = cudaFuncSetAttribute(
      SelectionKernel<kD>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (error != cudaSuccess) return error;
  const int queries = QueriesPerBlock(p.group_size);
  const dim3 grid(static_cast<unsigned>((p.seq_len + queries - 1) / queries),
                  static_cast<unsigned>(p.groups));
  SelectionKernel<kD><<<grid, kThreads, bytes, stream>>>(p);
  return cudaGetLastError();
}

bool Aligned(const void* x) { return reinterpret_cast<uintptr_t>(x) % 16 == 0; }

}  // namespace

size_t NsaSelectionSharedBytes(const NsaSelectionParams& p) {
  if (p.group_size <= 0 || p.group_size > kNsaSelectionMaxGroup) return 0;
  return 1024 + KeyTileBytes(p.head_dim) +
         static_cast<size_t>(kRows) * kProbStride * sizeof(float) +
         static_cast<size_t>(p.selected + 2) * QueriesPerBlock(p.group_size) *
             sizeof(unsigned long long);
}

cudaError_t NsaSelection(const NsaSelectionParams& p, cudaStream_t stream) {
  const bool dims_ok = p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256;
  if (!dims_ok || p.groups <= 0 || p.groups > 65535 || p.group_size <= 0 ||
      p.group_size > kNsaSelectionMaxGroup || p.seq_len <= 0 || p.seq_len >= (int64_t{1} << 31) ||
      p.block_size <= 0 || p.compressed != p.seq_len / p.block_size || p.selected <= 0 ||
      p.selected > kNsaSelectionMaxSelected || p.q == nullptr || !Aligned(p.q) ||
      (p.compressed > 0 && (p.k_cmp == nullptr || !Aligned(p.k_cmp))) || p.block_idx == nullptr) {
    return cudaErrorInvalidValue;
  }
  switch (p.head_dim) {
    case 64:
      return Launch<64>(p, stream);
    case 128:
      return Launch<128>(p, stream);
    default:
      return Launch<256>(p, stream);
  }
}

}  // namespace ablate::kernels
