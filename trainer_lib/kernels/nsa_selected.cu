#include "trainer_lib/kernels/nsa_selected.h"

#include <cmath>
#include <cstring>

#include <cuda_bf16.h>

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kTile = 32;       // keys per shared-memory tile: one per lane
constexpr int kMaxGroup = 16;   // G
constexpr int kMaxWarps = 4;    // forward and dq: a warp owns heads g, g + 4, ...
constexpr int kHeadsPerWarp = kMaxGroup / kMaxWarps;
constexpr int kDkvThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ float2 Unpack(uint32_t word) {
  __nv_bfloat162 pair;
  memcpy(&pair, &word, sizeof(word));
  return __bfloat1622float2(pair);
}

__device__ __forceinline__ float WarpSum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
  return x;
}

__device__ __forceinline__ float WarpMax(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, o));
  return x;
}

// Row stride of a shared key/value tile in 32-bit words (two bf16 each): the extra word puts
// the rows of consecutive lanes in consecutive banks when each lane reads its own row.
template <int D>
__host__ __device__ constexpr int RowWords() {
  return D / 2 + 1;
}

// Copies rows [0, count) of a [rows, D] bf16 matrix into a padded shared tile.
template <int D>
__device__ void LoadTile(const bf16* src, int count, uint32_t* tile) {
  constexpr int kChunks = D / 8;  // 16-byte loads per row
  for (int i = threadIdx.x; i < count * kChunks; i += blockDim.x) {
    const int r = i / kChunks, c = i % kChunks;
    const uint4 x = reinterpret_cast<const uint4*>(src + static_cast<int64_t>(r) * D)[c];
    uint32_t* dst = tile + r * RowWords<D>() + c * 4;
    dst[0] = x.x;
    dst[1] = x.y;
    dst[2] = x.z;
    dst[3] = x.w;
  }
}

// Copies the G rows of one query position (heads h0 .. h0 + G - 1, row stride T * D) to fp32
// shared memory, times `mul`.
template <int D>
__device__ void LoadHeads(const bf16* src, int64_t head_stride, int groups, float mul,
                          float* dst) {
  constexpr int kChunks = D / 8;
  for (int i = threadIdx.x; i < groups * kChunks; i += blockDim.x) {
    const int g = i / kChunks, c = i % kChunks;
    const uint4 x = reinterpret_cast<const uint4*>(src + g * head_stride)[c];
    const uint32_t words[4] = {x.x, x.y, x.z, x.w};
    for (int w = 0; w < 4; ++w) {
      const float2 f = Unpack(words[w]);
      dst[g * D + c * 8 + 2 * w] = f.x * mul;
      dst[g * D + c * 8 + 2 * w + 1] = f.y * mul;
    }
  }
}

// Dot product of an fp32 shared row with row `r` of a padded bf16 tile.
template <int D>
__device__ __forceinline__ float DotRow(const float* x, const uint32_t* tile, int r) {
  const float2* x2 = reinterpret_cast<const float2*>(x);
  const uint32_t* row = tile + r * RowWords<D>();
  float s = 0.0f;
#pragma unroll 8
  for (int w = 0; w < D / 2; ++w) {
    const float2 k = Unpack(row[w]);
    const float2 a = x2[w];
    s = fmaf(a.x, k.x, fmaf(a.y, k.y, s));
  }
  return s;
}

struct Layout {
  int64_t t, hk, b, groups, h0;
  int64_t kv_row;  // row of (b, hk, 0) in k, v: [B * H_kv * T, D]
  int64_t q_row;   // row of (b, h0, t) in q: [B * H * T, D]
};

__device__ Layout QueryLayout(const NsaSelectedParams& p) {
  Layout l;
  l.t = blockIdx.x;
  l.hk = blockIdx.y;
  l.b = blockIdx.z;
  l.groups = p.heads / p.kv_heads;
  l.h0 = l.hk * l.groups;
  l.kv_row = (l.b * p.kv_heads + l.hk) * p.seq_len;
  l.q_row = (l.b * p.heads + l.h0) * p.seq_len + l.t;
  return l;
}

template <int D>
__global__ void __launch_bounds__(kTile * kMaxWarps) ForwardKernel(NsaSelectedParams p) {
  constexpr int kPairs = D / 64;  // column pairs per lane in the weighted sum
  const Layout at = QueryLayout(p);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const int groups = static_cast<int>(at.groups);
  extern __shared__ float smem[];
  float* qs = smem;  // [G][D], times scale * log2(e): scores come out in base 2
  uint32_t* ks = reinterpret_cast<uint32_t*>(qs + groups * D);
  uint32_t* vs = ks + kTile * RowWords<D>();
  const bf16* q = static_cast<const bf16*>(p.q);
  const bf16* k = static_cast<const bf16*>(p.k);
  const bf16* v = static_cast<const bf16*>(p.v);
  LoadHeads<D>(q + at.q_row * D, p.seq_len * D, groups, p.scale * kLog2e, qs);

  float m[kHeadsPerWarp], l[kHeadsPerWarp], acc[kHeadsPerWarp][kPairs][2];
#pragma unroll
  for (int j = 0; j < kHeadsPerWarp; ++j) {
    m[j] = -INFINITY;
    l[j] = 0.0f;
#pragma unroll
    for (int c = 0; c < kPairs; ++c) acc[j][c][0] = acc[j][c][1] = 0.0f;
  }
  const int32_t* idx = p.block_idx + (at.kv_row + at.t) * p.selected;
  for (int64_t slot = 0; slot < p.selected; ++slot) {
    const int64_t block = idx[slot];
    if (block < 0) continue;
    const int64_t first = block * p.block_size;
    const int64_t end = Min64(first + p.block_size, at.t + 1);  // causal; t < T bounds it too
    for (int64_t r0 = first; r0 < end; r0 += kTile) {
      const int count = static_cast<int>(Min64(kTile, end - r0));
      __syncthreads();  // the previous tile is consumed (and, first time, qs is written)
      LoadTile<D>(k + (at.kv_row + r0) * D, count, ks);
      LoadTile<D>(v + (at.kv_row + r0) * D, count, vs);
      __syncthreads();
#pragma unroll
      for (int j = 0; j < kHeadsPerWarp; ++j) {
        const int g = warp + j * warps;
        if (g >= groups) continue;  // uniform across the warp
        const float s = lane < count ? DotRow<D>(qs + g * D, ks, lane) : -INFINITY;
        const float m_new = fmaxf(m[j], WarpMax(s));
        const float pr = lane < count ? exp2f(s - m_new) : 0.0f;
        const float corr = exp2f(m[j] - m_new);  // m[j] = -inf the first time: 0
        l[j] = l[j] * corr + WarpSum(pr);
        m[j] = m_new;
#pragma unroll
        for (int c = 0; c < kPairs; ++c) {
          acc[j][c][0] *= corr;
          acc[j][c][1] *= corr;
        }
        for (int r = 0; r < count; ++r) {
          const float pj = __shfl_sync(kFull, pr, r);
#pragma unroll
          for (int c = 0; c < kPairs; ++c) {
            const float2 x = Unpack(vs[r * RowWords<D>() + lane + 32 * c]);
            acc[j][c][0] = fmaf(pj, x.x, acc[j][c][0]);
            acc[j][c][1] = fmaf(pj, x.y, acc[j][c][1]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kHeadsPerWarp; ++j) {
    const int g = warp + j * warps;
    if (g >= groups) continue;
    const int64_t row = at.q_row + g * p.seq_len;
    const float inv = l[j] > 0.0f ? 1.0f / l[j] : 0.0f;
    __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(static_cast<bf16*>(p.o) + row * D);
#pragma unroll
    for (int c = 0; c < kPairs; ++c) {
      o[lane + 32 * c] = __floats2bfloat162_rn(acc[j][c][0] * inv, acc[j][c][1] * inv);
    }
    if (lane == 0) p.lse[row] = l[j] > 0.0f ? m[j] * kLn2 + logf(l[j]) : -INFINITY;
  }
}

template <int D>
__global__ void __launch_bounds__(kTile * kMaxWarps) DqKernel(NsaSelectedParams p) {
  constexpr int kPairs = D / 64;
  const Layout at = QueryLayout(p);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const int groups = static_cast<int>(at.groups);
  extern __shared__ float smem[];
  float* qs = smem;              // [G][D], times scale * log2(e)
  float* dos = qs + groups * D;  // [G][D]
  uint32_t* ks = reinterpret_cast<uint32_t*>(dos + groups * D);
  uint32_t* vs = ks + kTile * RowWords<D>();
  const bf16* k = static_cast<const bf16*>(p.k);
  const bf16* v = static_cast<const bf16*>(p.v);
  LoadHeads<D>(static_cast<const bf16*>(p.q) + at.q_row * D, p.seq_len * D, groups,
               p.scale * kLog2e, qs);
  LoadHeads<D>(static_cast<const bf16*>(p.d_o) + at.q_row * D, p.seq_len * D, groups, 1.0f,
               dos);

  float lse2[kHeadsPerWarp], delta[kHeadsPerWarp], acc[kHeadsPerWarp][kPairs][2];
#pragma unroll
  for (int j = 0; j < kHeadsPerWarp; ++j) {
    const int g = warp + j * warps;
    const int64_t row = at.q_row + g * p.seq_len;
    lse2[j] = g < groups ? p.lse[row] * kLog2e : 0.0f;
    delta[j] = g < groups ? p.delta[row] : 0.0f;
#pragma unroll
    for (int c = 0; c < kPairs; ++c) acc[j][c][0] = acc[j][c][1] = 0.0f;
  }
  const int32_t* idx = p.block_idx + (at.kv_row + at.t) * p.selected;
  for (int64_t slot = 0; slot < p.selected; ++slot) {
    const int64_t block = idx[slot];
    if (block < 0) continue;
    const int64_t first = block * p.block_size;
    const int64_t end = Min64(first + p.block_size, at.t + 1);
    for (int64_t r0 = first; r0 < end; r0 += kTile) {
      const int count = static_cast<int>(Min64(kTile, end - r0));
      __syncthreads();
      LoadTile<D>(k + (at.kv_row + r0) * D, count, ks);
      LoadTile<D>(v + (at.kv_row + r0) * D, count, vs);
      __syncthreads();
#pragma unroll
      for (int j = 0; j < kHeadsPerWarp; ++j) {
        const int g = warp + j * warps;
        if (g >= groups) continue;
        float ds = 0.0f;
        if (lane < count) {
          const float pr = exp2f(DotRow<D>(qs + g * D, ks, lane) - lse2[j]);
          ds = pr * (DotRow<D>(dos + g * D, vs, lane) - delta[j]);
        }
        for (int r = 0; r < count; ++r) {
          const float dj = __shfl_sync(kFull, ds, r);
#pragma unroll
          for (int c = 0; c < kPairs; ++c) {
            const float2 x = Unpack(ks[r * RowWords<D>() + lane + 32 * c]);
            acc[j][c][0] = fmaf(dj, x.x, acc[j][c][0]);
            acc[j][c][1] = fmaf(dj, x.y, acc[j][c][1]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kHeadsPerWarp; ++j) {
    const int g = warp + j * warps;
    if (g >= groups) continue;
    const int64_t row = at.q_row + g * p.seq_len;
    __nv_bfloat162* dq = reinterpret_cast<__nv_bfloat162*>(static_cast<bf16*>(p.dq) + row * D);
#pragma unroll
    for (int c = 0; c < kPairs; ++c) {
      dq[lane + 32 * c] =
          __floats2bfloat162_rn(acc[j][c][0] * p.scale, acc[j][c][1] * p.scale);
    }
  }
}

// One work item (a run of queries that chose one block) times one 32-token tile of the block.
template <int D>
__global__ void __launch_bounds__(kDkvThreads) DkvKernel(NsaSelectedParams p) {
  constexpr int kParts = kDkvThreads / kTile;  // a thread owns key tid % 32, columns of a part
  constexpr int kCols = D / kParts;
  const int64_t* item = p.items + 3 * static_cast<int64_t>(blockIdx.x);
  const int64_t list = item[0], e0 = item[1], e1 = item[2];
  const int64_t blocks = (p.seq_len + p.block_size - 1) / p.block_size;
  const int64_t block = list % blocks, bh = list / blocks;
  const int64_t hk = bh % p.kv_heads, b = bh / p.kv_heads;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t r0 = block * p.block_size + tile0;
  const int64_t count64 = Min64(Min64(kTile, p.block_size - tile0), p.seq_len - r0);
  if (count64 <= 0) return;  // uniform: the tile is past the block's or the sequence's end
  const int count = static_cast<int>(count64);
  const int groups = static_cast<int>(p.heads / p.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  constexpr int warps = kDkvThreads / 32;
  const int key = threadIdx.x % kTile, part = threadIdx.x / kTile;

  extern __shared__ float smem[];
  float* qs = smem;                   // [G][D], unscaled
  float* dos = qs + groups * D;       // [G][D]
  float* ps = dos + groups * D;       // [G][32]
  float* dss = ps + groups * kTile;   // [G][32]
  uint32_t* ks = reinterpret_cast<uint32_t*>(dss + groups * kTile);
  uint32_t* vs = ks + kTile * RowWords<D>();
  const int64_t kv_row = (b * p.kv_heads + hk) * p.seq_len + r0;
  LoadTile<D>(static_cast<const bf16*>(p.k) + kv_row * D, count, ks);
  LoadTile<D>(static_cast<const bf16*>(p.v) + kv_row * D, count, vs);

  float dk[kCols], dv[kCols];
#pragma unroll
  for (int i = 0; i < kCols; ++i) dk[i] = dv[i] = 0.0f;
  const float scale2 = p.scale * kLog2e;
  for (int64_t e = e0; e < e1; ++e) {
    const int64_t t = p.rev_query[e];
    const int64_t q_row = (b * p.heads + hk * groups) * p.seq_len + t;
    __syncthreads();  // the previous query's qs, dos, ps, dss are consumed
    LoadHeads<D>(static_cast<const bf16*>(p.q) + q_row * D, p.seq_len * D, groups, 1.0f, qs);
    LoadHeads<D>(static_cast<const bf16*>(p.d_o) + q_row * D, p.seq_len * D, groups, 1.0f,
                 dos);
    __syncthreads();
    const bool valid = lane < count && r0 + lane <= t;
    for (int g = warp; g < groups; g += warps) {
      const int64_t row = q_row + g * p.seq_len;
      float pr = 0.0f, ds = 0.0f;
      if (valid) {
        pr = exp2f(DotRow<D>(qs + g * D, ks, lane) * scale2 - p.lse[row] * kLog2e);
        ds = pr * (DotRow<D>(dos + g * D, vs, lane) - p.delta[row]);
      }
      ps[g * kTile + lane] = pr;
      dss[g * kTile + lane] = ds;
    }
    __syncthreads();
    for (int g = 0; g < groups; ++g) {
      const float pr = ps[g * kTile + key], ds = dss[g * kTile + key];
      const float* qrow = qs + g * D + part * kCols;
      const float* drow = dos + g * D + part * kCols;
#pragma unroll
      for (int i = 0; i < kCols; ++i) {
        dv[i] = fmaf(pr, drow[i], dv[i]);
        dk[i] = fmaf(ds, qrow[i], dk[i]);
      }
    }
  }
  if (key < count) {
    const int64_t out = (kv_row + key) * D + part * kCols;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      atomicAdd(p.dk + out + i, dk[i] * p.scale);
      atomicAdd(p.dv + out + i, dv[i]);
    }
  }
}

int Warps(const NsaSelectedParams& p) {
  const int64_t groups = p.heads / p.kv_heads;
  return static_cast<int>(groups < kMaxWarps ? groups : kMaxWarps);
}

template <typename Kernel>
cudaError_t Launch(Kernel kernel, dim3 grid, int threads, size_t smem, cudaStream_t stream,
                   const NsaSelectedParams& p) {
  if (grid.x == 0) return cudaSuccess;
  const cudaError_t error = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (error != cudaSuccess) return error;
  kernel<<<grid, threads, smem, stream>>>(p);
  return cudaGetLastError();
}

template <int D>
cudaError_t Dispatch(const NsaSelectedParams& p, int which, cudaStream_t stream) {
  const int64_t groups = p.heads / p.kv_heads;
  const size_t tiles = 2 * sizeof(uint32_t) * kTile * RowWords<D>();
  const dim3 per_query(static_cast<unsigned>(p.seq_len), static_cast<unsigned>(p.kv_heads),
                       static_cast<unsigned>(p.batch));
  switch (which) {
    case 0:
      return Launch(ForwardKernel<D>, per_query, 32 * Warps(p),
                    sizeof(float) * groups * D + tiles, stream, p);
    case 1:
      return Launch(DqKernel<D>, per_query, 32 * Warps(p),
                    2 * sizeof(float) * groups * D + tiles, stream, p);
    default: {
      const dim3 grid(static_cast<unsigned>(p.num_items),
                      static_cast<unsigned>((p.block_size + kTile - 1) / kTile));
      return Launch(DkvKernel<D>, grid, kDkvThreads,
                    2 * sizeof(float) * groups * (D + kTile) + tiles, stream, p);
    }
  }
}

cudaError_t Run(const NsaSelectedParams& p, int which, cudaStream_t stream) {
  if (!NsaSelectedSupported(p)) return cudaErrorInvalidValue;
  switch (p.head_dim) {
    case 64:
      return Dispatch<64>(p, which, stream);
    case 128:
      return Dispatch<128>(p, which, stream);
    default:
      return Dispatch<256>(p, which, stream);
  }
}

}  // namespace

bool NsaSelectedSupported(const NsaSelectedParams& p) {
  const bool dim = p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256;
  return dim && p.batch > 0 && p.batch <= 65535 && p.kv_heads > 0 && p.kv_heads <= 65535 &&
         p.heads % p.kv_heads == 0 && p.heads / p.kv_heads <= kMaxGroup && p.seq_len > 0 &&
         p.seq_len < (int64_t{1} << 31) && p.block_size > 0 && p.selected > 0 &&
         p.num_items < (int64_t{1} << 31);
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
