#include <cuda_bf16.h>

#include "trainer_lib/kernels/nsa_gate.h"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;
using bf16x2 = __nv_bfloat162;

constexpr int kWarpsPerBlock = 8;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ float GateAt(const NsaGateParams& p, int64_t row, int c) {
  const int64_t at = row * p.gate_cols + c;
  return p.gates_fp32 ? static_cast<const float*>(p.gates)[at]
                      : __bfloat162float(static_cast<const bf16*>(p.gates)[at]);
}

__device__ float2 Load2(const void* base, int64_t at) {
  return __bfloat1622float2(*reinterpret_cast<const bf16x2*>(static_cast<const bf16*>(base) + at));
}

__device__ void Store2(void* base, int64_t at, float2 x) {
  *reinterpret_cast<bf16x2*>(static_cast<bf16*>(base) + at) = __float22bfloat162_rn(x);
}

__global__ void __launch_bounds__(kWarpsPerBlock * 32) GateForwardKernel(NsaGateParams p) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= p.rows) return;
  float g[kNsaGateMaxBranches];
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) g[c] = c < p.branches ? GateAt(p, row, c) : 0.0f;
  const int64_t base = row * p.head_dim;
  for (int64_t d = 2 * (threadIdx.x % 32); d < p.head_dim; d += 64) {
    float2 sum = {0.0f, 0.0f};
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (c < p.branches) {
        const float2 x = Load2(p.branch[c], base + d);
        sum.x += g[c] * x.x;
        sum.y += g[c] * x.y;
      }
    }
    Store2(p.out, base + d, sum);
  }
}

__global__ void __launch_bounds__(kWarpsPerBlock * 32) GateBackwardKernel(NsaGateParams p) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= p.rows) return;
  float g[kNsaGateMaxBranches], dot[kNsaGateMaxBranches];
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) {
    g[c] = c < p.branches ? GateAt(p, row, c) : 0.0f;
    dot[c] = 0.0f;
  }
  const int64_t base = row * p.head_dim;
  for (int64_t d = 2 * (threadIdx.x % 32); d < p.head_dim; d += 64) {
    const float2 d_o = Load2(p.d_out, base + d);
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (c < p.branches) {
        const float2 x = Load2(p.branch[c], base + d);
        dot[c] += d_o.x * x.x + d_o.y * x.y;
        if (p.d_branch[c] != nullptr) {
          Store2(p.d_branch[c], base + d, float2{g[c] * d_o.x, g[c] * d_o.y});
        }
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) {
    for (int offset = 16; offset > 0; offset /= 2) {
      dot[c] += __shfl_xor_sync(kFullMask, dot[c], offset);
    }
  }
  const int lane = threadIdx.x % 32;
  if (lane < p.gate_cols) {
    float value = 0.0f;
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (c == lane) value = dot[c];
    }
    p.d_gates[row * p.gate_cols + lane] = lane < p.branches ? value : 0.0f;
  }
}

bool Aligned(const void* x) { return reinterpret_cast<uintptr_t>(x) % 4 == 0; }

bool Valid(const NsaGateParams& p, bool backward) {
  if (p.rows <= 0 || p.head_dim <= 0 || p.head_dim % 2 != 0 || p.branches < 1 ||
      p.branches > kNsaGateMaxBranches || p.gate_cols < p.branches || p.gate_cols > 32 ||
      p.gates == nullptr || (p.rows + kWarpsPerBlock - 1) / kWarpsPerBlock >= (int64_t{1} << 31)) {
    return false;
  }
  for (int c = 0; c < p.branches; ++c) {
    if (p.branch[c] == nullptr || !Aligned(p.branch[c])) return false;
    if (backward && !Aligned(p.d_branch[c])) return false;
  }
  return backward ? p.d_out != nullptr && Aligned(p.d_out) && p.d_gates != nullptr
                  : p.out != nullptr && Aligned(p.out);
}

dim3 Grid(const NsaGateParams& p) {
  return dim3(static_cast<unsigned>((p.rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
}

}  // namespace

cudaError_t NsaGateForward(const NsaGateParams& p, cudaStream_t stream) {
  if (!Valid(p, false)) return cudaErrorInvalidValue;
  GateForwardKernel<<<Grid(p), kWarpsPerBlock * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t NsaGateBackward(const NsaGateParams& p, cudaStream_t stream) {
  if (!Valid(p, true)) return cudaErrorInvalidValue;
  GateBackwardKernel<<<Grid(p), kWarpsPerBlock * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace ablate::kernels
