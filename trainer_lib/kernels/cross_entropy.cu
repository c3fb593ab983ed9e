// One block of kThreads threads per row. Pass 1 reads the row once, each thread keeping a
// running (max, sum of exp) over its strided elements; the pairs are merged across the warp by
// shuffles and across warps through shared memory into lse. Pass 2 reads the row again and
// writes exp(z - lse) - [j == t] over it. Memory-bound: 2 reads and 1 write of 2 bytes per
// logit.
#include "trainer_lib/kernels/cross_entropy.h"

#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>

namespace ablate::kernels {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kWideVec = 8;  // 8 bf16 = 16 bytes

template <int kVec>
struct alignas(sizeof(__nv_bfloat16) * kVec) Pack {
  __nv_bfloat16 v[kVec];
};

// A running softmax normalizer: the largest value seen and the sum of exp(value - max).
struct Normalizer {
  float max;
  float sum;
};

__device__ Normalizer Add(Normalizer n, float x) {
  if (x > n.max) {
    n.sum = n.sum * expf(n.max - x) + 1.f;
    n.max = x;
  } else {
    n.sum += expf(x - n.max);
  }
  return n;
}

__device__ Normalizer Merge(Normalizer a, Normalizer b) {
  if (b.max == -INFINITY) return a;
  if (a.max == -INFINITY) return b;
  const float m = fmaxf(a.max, b.max);
  return {m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

template <int kVec>
__global__ void __launch_bounds__(kThreads) ForwardBackwardKernel(CrossEntropyParams p) {
  const int64_t row = blockIdx.x;
  __nv_bfloat16* z = static_cast<__nv_bfloat16*>(p.logits) + row * p.vocab;
  const int64_t packs = p.vocab / kVec;

  Normalizer n{-INFINITY, 0.f};
  for (int64_t i = threadIdx.x; i < packs; i += kThreads) {
    const Pack<kVec> pack = reinterpret_cast<const Pack<kVec>*>(z)[i];
#pragma unroll
    for (int j = 0; j < kVec; ++j) n = Add(n, __bfloat162float(pack.v[j]));
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const Normalizer other{__shfl_xor_sync(0xffffffffu, n.max, offset),
                           __shfl_xor_sync(0xffffffffu, n.sum, offset)};
    n = Merge(n, other);
  }
  __shared__ Normalizer per_warp[kWarps];
  __shared__ float row_lse;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) per_warp[warp] = n;
  __syncthreads();
  if (warp == 0) {
    n = lane < kWarps ? per_warp[lane] : Normalizer{-INFINITY, 0.f};
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      const Normalizer other{__shfl_xor_sync(0xffffffffu, n.max, offset),
                             __shfl_xor_sync(0xffffffffu, n.sum, offset)};
      n = Merge(n, other);
    }
    if (lane == 0) row_lse = n.max + logf(n.sum);
  }
  __syncthreads();
  const float lse = row_lse;
  const int64_t target = p.targets[row];
  const bool valid = target != p.ignore_index;
  if (threadIdx.x == 0) {
    p.lse[row] = lse;
    if (!valid) {
      p.loss[row] = 0.f;
    } else if (target < 0 || target >= p.vocab) {
      p.loss[row] = NAN;
    } else {
      p.loss[row] = lse - __bfloat162float(z[target]);
    }
  }
  // Every thread has read z[target] (thread 0 above) before any thread overwrites it.
  __syncthreads();

  for (int64_t i = threadIdx.x; i < packs; i += kThreads) {
    Pack<kVec> pack = reinterpret_cast<const Pack<kVec>*>(z)[i];
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const int64_t col = i * kVec + j;
      float d = 0.f;
      if (valid) d = expf(__bfloat162float(pack.v[j]) - lse) - (col == target ? 1.f : 0.f);
      pack.v[j] = __float2bfloat16_rn(d);
    }
    reinterpret_cast<Pack<kVec>*>(z)[i] = pack;
  }
}

bool Wide(const CrossEntropyParams& p) {
  return p.vocab % kWideVec == 0 && reinterpret_cast<uintptr_t>(p.logits) % 16 == 0;
}

}  // namespace

bool CrossEntropySupported(const CrossEntropyParams& p) {
  return p.rows >= 1 && p.vocab >= 1 && p.rows < (int64_t{1} << 31) && p.logits != nullptr &&
         p.targets != nullptr && p.lse != nullptr && p.loss != nullptr;
}

cudaError_t CrossEntropyForwardBackward(const CrossEntropyParams& p, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(p.rows);
  if (Wide(p)) {
    ForwardBackwardKernel<kWideVec><<<blocks, kThreads, 0, stream>>>(p);
  } else {
    ForwardBackwardKernel<1><<<blocks, kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace ablate::kernels
