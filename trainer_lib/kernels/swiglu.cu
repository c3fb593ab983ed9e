// A thread takes a pack of kVec neighbouring elements of one row: 8 bf16 (one 16-byte load per
// tensor) where the layout allows, else 1. The threads stride over the packs: at most
// kMaxBlocks blocks, many waves on any current GPU (an H100's 132 SMs hold 1,056 such blocks).
// Elementwise and memory-bound: the forward reads 2 and writes 1 bf16 per element, the
// backward reads 3 and writes 2.
#include "trainer_lib/kernels/swiglu.h"

#include <algorithm>
#include <cstdint>

#include <cuda_bf16.h>

namespace ablate::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 14;
constexpr int kWideVec = 8;  // 8 bf16 = 16 bytes

template <int kVec>
struct alignas(sizeof(__nv_bfloat16) * kVec) Pack {
  __nv_bfloat16 v[kVec];
};

template <int kVec>
__device__ Pack<kVec> LoadPack(const void* base, int64_t at) {
  return *reinterpret_cast<const Pack<kVec>*>(static_cast<const __nv_bfloat16*>(base) + at);
}

template <int kVec>
__device__ void StorePack(void* base, int64_t at, const Pack<kVec>& pack) {
  *reinterpret_cast<Pack<kVec>*>(static_cast<__nv_bfloat16*>(base) + at) = pack;
}

// Where pack i starts: its row, and its first column.
struct PackAt {
  int64_t row;
  int64_t col;
};
template <int kVec>
__device__ PackAt LocatePack(int64_t i, int64_t cols) {
  const int64_t per_row = cols / kVec;
  const int64_t row = i / per_row;
  return {row, (i - row * per_row) * kVec};
}

template <int kVec>
__global__ void ForwardKernel(SwiGluParams p) {
  const int64_t count = p.rows * (p.cols / kVec);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += step) {
    const PackAt at = LocatePack<kVec>(i, p.cols);
    const int64_t in = at.row * p.gate_up_stride + at.col;
    const Pack<kVec> g = LoadPack<kVec>(p.gate, in);
    const Pack<kVec> u = LoadPack<kVec>(p.up, in);
    Pack<kVec> y;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const float gf = __bfloat162float(g.v[j]);
      const float silu = gf / (1.f + expf(-gf));
      y.v[j] = __float2bfloat16_rn(silu * __bfloat162float(u.v[j]));
    }
    StorePack<kVec>(p.y, at.row * p.cols + at.col, y);
  }
}

template <int kVec>
__global__ void BackwardKernel(SwiGluParams p) {
  const int64_t count = p.rows * (p.cols / kVec);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += step) {
    const PackAt at = LocatePack<kVec>(i, p.cols);
    const int64_t in = at.row * p.gate_up_stride + at.col;
    const Pack<kVec> g = LoadPack<kVec>(p.gate, in);
    const Pack<kVec> u = LoadPack<kVec>(p.up, in);
    const Pack<kVec> dy = LoadPack<kVec>(p.dy, at.row * p.cols + at.col);
    Pack<kVec> dg, du;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const float gf = __bfloat162float(g.v[j]);
      const float uf = __bfloat162float(u.v[j]);
      const float dyf = __bfloat162float(dy.v[j]);
      const float denominator = 1.f + expf(-gf);
      const float s = 1.f / denominator;
      const float silu = gf / denominator;
      dg.v[j] = __float2bfloat16_rn(dyf * uf * s * (1.f + gf * (1.f - s)));
      du.v[j] = __float2bfloat16_rn(dyf * silu);
    }
    StorePack<kVec>(p.dgate, in, dg);
    StorePack<kVec>(p.dup, in, du);
  }
}

bool Aligned(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// True when every row of every tensor starts on a 16-byte boundary, so packs of 8 never
// straddle a row or misalign.
bool Wide(const SwiGluParams& p, bool backward) {
  if (p.cols % kWideVec != 0 || p.gate_up_stride % kWideVec != 0) return false;
  if (!Aligned(p.gate) || !Aligned(p.up)) return false;
  if (!backward) return Aligned(p.y);
  return Aligned(p.dy) && Aligned(p.dgate) && Aligned(p.dup);
}

unsigned Blocks(int64_t packs) {
  return static_cast<unsigned>(std::min((packs + kThreads - 1) / kThreads, kMaxBlocks));
}

}  // namespace

bool SwiGluSupported(const SwiGluParams& p) {
  return p.rows >= 1 && p.cols >= 1 && p.gate_up_stride >= p.cols;
}

cudaError_t SwiGluForward(const SwiGluParams& p, cudaStream_t stream) {
  if (Wide(p, /*backward=*/false)) {
    ForwardKernel<kWideVec><<<Blocks(p.rows * (p.cols / kWideVec)), kThreads, 0, stream>>>(p);
  } else {
    ForwardKernel<1><<<Blocks(p.rows * p.cols), kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

cudaError_t SwiGluBackward(const SwiGluParams& p, cudaStream_t stream) {
  if (Wide(p, /*backward=*/true)) {
    BackwardKernel<kWideVec><<<Blocks(p.rows * (p.cols / kWideVec)), kThreads, 0, stream>>>(p);
  } else {
    BackwardKernel<1><<<Blocks(p.rows * p.cols), kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace ablate::kernels
