// A block of 64 threads per quantization block of 256 elements, four elements per thread
// (strided by 64, so each load of a warp is contiguous): the encoding's binary search is a
// chain of dependent shared-memory loads, and four independent chains per thread hide its
// latency where one element per thread left the kernel at a third of the memory bandwidth.
// The block's two absmax reductions (first and second moment) are a warp shuffle and one step
// over the two warps in shared memory. Unquantized moments need no reduction and take a
// grid-stride loop instead.
#include "trainer_lib/kernels/adamw8bit.h"

#include <algorithm>

#include <cuda_bf16.h>

#include "trainer_lib/kernels/element_access.cuh"

namespace ablate::kernels {
namespace {

constexpr int kThreads = 64;  // per quantization block
constexpr int kPerThread = static_cast<int>(kAdamW8bitBlock) / kThreads;
constexpr int kWarps = kThreads / 32;
constexpr int kMapSize = 256;

// ATen's CUDA lerp, whose two forms nvcc compiles to fused multiply-adds.
__device__ float Lerp(float self, float end, float weight) {
  return fabsf(weight) < 0.5f ? fmaf(weight, end - self, self)
                              : fmaf(-(end - self), 1.f - weight, end);
}

// The update of one element once m and v are known; returns the new parameter.
__device__ float Update(float p32, float m, float v, const AdamW8bitParams& a) {
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), a.bias_correction2_sqrt), a.eps);
  return __fsub_rn(p32, __fdiv_rn(__fmul_rn(a.lr, __fdiv_rn(m, a.bias_correction1)), denom));
}

__device__ float Decayed(float p, const AdamW8bitParams& a) {
  return __fsub_rn(p, __fmul_rn(a.lr_times_weight_decay, p));
}

// The nearest value of the ascending 256-value map to x, ties up: the eager path's search.
__device__ unsigned Encode(float x, const float* qmap) {
  unsigned code = x >= qmap[128] ? 128u : 0u;
  for (unsigned half = 64; half >= 1; half >>= 1) {
    if (x >= qmap[code + half]) code += half;
  }
  const unsigned up = min(code + 1, 255u);
  const float down_value = qmap[code];
  return __fsub_rn(x, down_value) >= __fmul_rn(__fsub_rn(qmap[up], down_value), 0.5f) ? up : code;
}

// The largest of the block's values (one per thread), in every thread.
__device__ float BlockMax(float v, float* shared) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) shared[warp] = v;
  __syncthreads();
  float result = shared[0];
  for (int w = 1; w < kWarps; ++w) result = fmaxf(result, shared[w]);
  return result;
}

template <typename T>
__global__ void QuantizedStep(AdamW8bitParams a) {
  __shared__ float qmap_signed[kMapSize];
  __shared__ float qmap_unsigned[kMapSize];
  __shared__ float max_m[kWarps];
  __shared__ float max_v[kWarps];
  for (int j = threadIdx.x; j < kMapSize; j += kThreads) {
    qmap_signed[j] = a.qmap_signed[j];
    qmap_unsigned[j] = a.qmap_unsigned[j];
  }
  const int64_t block = blockIdx.x;
  const int64_t first = block * kAdamW8bitBlock + threadIdx.x;
  auto* param = static_cast<T*>(a.param);
  const auto* grad = static_cast<const T*>(a.grad);
  auto* m_codes = static_cast<uint8_t*>(a.exp_avg);
  auto* v_codes = static_cast<uint8_t*>(a.exp_avg_sq);
  const float m_block_scale = a.exp_avg_scale[block];
  const float v_block_scale = a.exp_avg_sq_scale[block];
  float p32[kPerThread], m[kPerThread], v[kPerThread];
  uint8_t m_old[kPerThread], v_old[kPerThread];
  float g[kPerThread];
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t i = first + k * kThreads;
    g[k] = Load(grad, i);
    p32[k] = Decayed(Load(param, i), a);
    m_old[k] = m_codes[i];
    v_old[k] = v_codes[i];
  }
  __syncthreads();  // the maps are in shared memory
  float m_max = 0.f, v_max = 0.f;
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    m[k] = Lerp(__fmul_rn(qmap_signed[m_old[k]], m_block_scale), g[k], a.one_minus_beta1);
    v[k] = Lerp(__fmul_rn(qmap_unsigned[v_old[k]], v_block_scale), __fmul_rn(g[k], g[k]),
                a.one_minus_beta2);
    m_max = fmaxf(m_max, fabsf(m[k]));
    v_max = fmaxf(v_max, fabsf(v[k]));
  }
  const float m_scale = fmaxf(BlockMax(m_max, max_m), 1e-12f);
  const float v_scale = fmaxf(BlockMax(v_max, max_v), 1e-12f);
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t i = first + k * kThreads;
    m_codes[i] = static_cast<uint8_t>(Encode(__fdiv_rn(m[k], m_scale), qmap_signed));
    v_codes[i] = static_cast<uint8_t>(Encode(__fdiv_rn(v[k], v_scale), qmap_unsigned));
    Store(param, i, Update(p32[k], m[k], v[k], a));
  }
  if (threadIdx.x == 0) {
    a.exp_avg_scale[block] = m_scale;
    a.exp_avg_sq_scale[block] = v_scale;
  }
}

template <typename T>
__global__ void Float32MomentsStep(AdamW8bitParams a) {
  auto* param = static_cast<T*>(a.param);
  auto* exp_avg = static_cast<float*>(a.exp_avg);
  auto* exp_avg_sq = static_cast<float*>(a.exp_avg_sq);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.numel;
       i += stride) {
    const float g = Load(static_cast<const T*>(a.grad), i);
    const float p32 = Decayed(Load(param, i), a);
    const float m = Lerp(exp_avg[i], g, a.one_minus_beta1);
    const float v = Lerp(exp_avg_sq[i], __fmul_rn(g, g), a.one_minus_beta2);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    Store(param, i, Update(p32, m, v, a));
  }
}

template <typename T>
cudaError_t Launch(const AdamW8bitParams& a, cudaStream_t stream) {
  if (a.quantized) {
    QuantizedStep<T>
        <<<static_cast<unsigned>(a.numel / kAdamW8bitBlock), kThreads, 0, stream>>>(a);
  } else {
    constexpr int kLoopThreads = 256;
    const int64_t blocks = std::min<int64_t>((a.numel + kLoopThreads - 1) / kLoopThreads, 1024);
    Float32MomentsStep<T><<<static_cast<unsigned>(blocks), kLoopThreads, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t AdamW8bitStep(const AdamW8bitParams& p, cudaStream_t stream) {
  if (p.numel <= 0) return cudaSuccess;
  if (p.quantized && p.numel % kAdamW8bitBlock != 0) return cudaErrorInvalidValue;
  return p.dtype == ParamDtype::kBFloat16 ? Launch<__nv_bfloat16>(p, stream)
                                          : Launch<float>(p, stream);
}

}  // namespace ablate::kernels
