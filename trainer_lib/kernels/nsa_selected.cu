// The selected branch's forward and dq by query blocks (nsa_selected.h, "Design"), and the
// limits every kernel of the branch shares (NsaSelectedSupported). The by-block kernels are in
// nsa_forward_by_block.cu and nsa_backward_by_block.cu.
#include <cuda_bf16.h>

#include <cmath>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_by_block.cuh"
#include "trainer_lib/kernels/nsa_query_block.cuh"
#include "trainer_lib/kernels/nsa_selected.h"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;
using mma::kStride;
using mma::QuadMax;
using mma::QuadSum;
using nsa::kQueryWarps;
using nsa::kRows;
using nsa::LaunchKernel;

constexpr int kMaxGroup = 16;  // G

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

// Loads a warp's tiles: keys [row, row + count) of k and v, zeros after them.
template <int D, int kKeys>
__device__ void LoadWarpTile(bf16* ks, bf16* vs, const NsaSelectedParams& p, int64_t row,
                             int count) {
  __syncwarp();  // the warp's previous tile is consumed
  nsa::CopyKeys<D, kKeys>(ks, vs, p, row, count, threadIdx.x % 32, 32);
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
      const float corr = Exp2(m[h] - base[h]);  // 0 while m = -inf, where l and acc are 0
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
        s[j][e] = Exp2(s[j][e] - base[e / 2]);
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
      f[w] = mw == -INFINITY ? 0.0f : Exp2(mw - top);
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
        const float pr = visible ? Exp2(s[j][e] * scale2 - lse2[e / 2]) : 0.0f;
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

template <int D>
cudaError_t Dispatch(const NsaSelectedParams& p, bool dq, cudaStream_t stream) {
  static_assert((QueryTiles<D>::Bytes(1) + 1024) * QueryTiles<D>::kForwardBlocks <= 228 * 1024);
  const int64_t queries = kRows / (p.heads / p.kv_heads);  // nsa::ThisQueryBlock's Q
  const dim3 per_query(static_cast<unsigned>((p.seq_len + queries - 1) / queries),
                       static_cast<unsigned>(p.kv_heads), static_cast<unsigned>(p.batch));
  return dq ? LaunchKernel(DqKernel<D>, per_query, 32 * kQueryWarps, QueryTiles<D>::Bytes(2),
                           stream, p)
            : LaunchKernel(ForwardKernel<D>, per_query, 32 * kQueryWarps, QueryTiles<D>::Bytes(1),
                           stream, p);
}

cudaError_t Run(const NsaSelectedParams& p, bool dq, cudaStream_t stream) {
  return nsa::WithHeadDim(p, [&](auto d) { return Dispatch<decltype(d)::value>(p, dq, stream); });
}

// A thread per 8 elements: dst (bf16) = dst + src (fp32), summed in fp32.
__global__ void AddIntoKernel(uint4* dst, const float4* src, int64_t chunks) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= chunks) return;
  uint4 packed = dst[i];
  auto* pairs = reinterpret_cast<__nv_bfloat162*>(&packed);
  const float4 lo = src[2 * i], hi = src[2 * i + 1];
  const float add[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 x = __bfloat1622float2(pairs[k]);
    pairs[k] = __floats2bfloat162_rn(x.x + add[2 * k], x.y + add[2 * k + 1]);
  }
  dst[i] = packed;
}

}  // namespace

cudaError_t NsaAddInto(void* dst, const float* src, int64_t count, cudaStream_t stream) {
  if (count % 8 != 0 || reinterpret_cast<uintptr_t>(dst) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(src) % 16 != 0) {
    return cudaErrorInvalidValue;
  }
  if (count <= 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t chunks = count / 8;
  AddIntoKernel<<<static_cast<unsigned>((chunks + kThreads - 1) / kThreads), kThreads, 0,
                  stream>>>(static_cast<uint4*>(dst), reinterpret_cast<const float4*>(src), chunks);
  return cudaGetLastError();
}

bool NsaSelectedSupported(const NsaSelectedParams& p) {
  const bool dim = p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256;
  return dim && p.batch > 0 && p.batch <= 65535 && p.kv_heads > 0 && p.kv_heads <= 65535 &&
         p.heads % p.kv_heads == 0 && p.heads / p.kv_heads <= kMaxGroup && p.seq_len > 0 &&
         p.seq_len < (int64_t{1} << 31) && p.block_size > 0 && p.selected > 0 &&
         p.selected < (int64_t{1} << 31) && p.window >= 0 && p.num_items < (int64_t{1} << 31);
}

cudaError_t NsaSelectedForward(const NsaSelectedParams& p, cudaStream_t stream) {
  return Run(p, false, stream);
}

cudaError_t NsaSelectedBackwardDq(const NsaSelectedParams& p, cudaStream_t stream) {
  return Run(p, true, stream);
}

}  // namespace ablate::kernels
