// The kernels for any shape, one element at a time, and the launch logic that prefers the 16-byte
// kernels of rms_norm_vector.cu where they apply (rows that are whole 16-byte vectors and fit in
// registers: Qwen3's hidden sizes up to 1,024 and its head dims) and falls back to these.
// Forward: one warp per row, whose shuffle reduction needs no shared memory. Backward: one block
// per row at a time, each thread owning a fixed set of columns, so that it can add its columns'
// dweight terms into the block's partial row without racing another thread. __fmul_rn and
// __fadd_rn keep nvcc from contracting a product and a sum into one fused multiply-add, which
// would round once where eager PyTorch rounds twice.
#include "trainer_lib/kernels/rms_norm.h"

#include <algorithm>

#include <cuda_bf16.h>

#include "trainer_lib/kernels/element_access.cuh"
#include "trainer_lib/kernels/rms_norm_internal.cuh"

namespace ablate::kernels {
namespace {

using rms_norm_internal::GroupSum;
using rms_norm_internal::kAddable;
using rms_norm_internal::kMaxPartials;
using rms_norm_internal::kThreadsPerBlock;
using rms_norm_internal::kWarpsPerBlock;
using rms_norm_internal::LocateRopeRow;
using rms_norm_internal::RopeRow;
using rms_norm_internal::RoundIn;
using rms_norm_internal::RstdOf;
using rms_norm_internal::TryVectorBackward;
using rms_norm_internal::TryVectorForward;

// Element i of residual + delta, the new residual stream, written to sum as well.
__device__ float AddAt(const RmsNormParams& p, int64_t i) {
  const float s =
      __fadd_rn(p.residual[i], __bfloat162float(static_cast<const __nv_bfloat16*>(p.delta)[i]));
  p.sum[i] = s;
  return s;
}

// Element i of dx, v the norm's gradient: with add's extras, dsum added and a bf16 copy.
template <typename T, bool kRope>
__device__ void StoreDx(const RmsNormParams& p, int64_t i, float v) {
  if constexpr (kAddable<T, kRope>) {
    if (p.dsum != nullptr) v = __fadd_rn(v, p.dsum[i]);
    if (p.dx_bf16 != nullptr) Store(static_cast<__nv_bfloat16*>(p.dx_bf16), i, v);
  }
  Store(static_cast<T*>(p.dx), i, v);
}

// 1 / sqrt(mean(x^2) + eps) of a row, by one warp.
template <typename T>
__device__ float RowRstd(const T* x, int64_t cols, float eps, int lane) {
  float sum = 0.f;
  for (int64_t c = lane; c < cols; c += 32) {
    const float v = Load(x, c);
    sum = __fadd_rn(sum, __fmul_rn(v, v));
  }
  return RstdOf(GroupSum(sum), cols, eps);
}

// The sum of v over the block, the same in every thread, in a fixed order: each warp's by
// shuffles, then the warps' in warp order.
__device__ float BlockSum(float v) {
  __shared__ float warp_sums[kWarpsPerBlock];
  v = GroupSum(v);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < kWarpsPerBlock; ++w) total = __fadd_rn(total, warp_sums[w]);
  __syncthreads();  // warp_sums is free for the next call
  return total;
}

template <typename T, bool kRope>
__global__ void ForwardKernel(RmsNormParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= p.rows) return;
  const int64_t cols = p.cols;
  const T* x = static_cast<const T*>(p.x) + row * cols;
  if constexpr (kAddable<T, kRope>) {
    // The sum first, then the norm reads it back: each lane rereads only what it wrote.
    if (p.residual != nullptr) {
      for (int64_t c = lane; c < cols; c += 32) AddAt(p, row * cols + c);
      x = p.sum + row * cols;
    }
  }
  const float r = RowRstd(x, cols, p.eps, lane);
  if (lane == 0) p.rstd[row] = r;
  const float* w = p.weight;
  auto normed = [&](int64_t c) { return __fmul_rn(w[c], RoundIn<T>(__fmul_rn(Load(x, c), r))); };
  __nv_bfloat16* y = static_cast<__nv_bfloat16*>(p.y);
  if constexpr (!kRope) {
    for (int64_t c = lane; c < cols; c += 32) Store(y + row * cols, c, normed(c));
  } else {
    const RopeRow at = LocateRopeRow(row, p);
    const int64_t half = cols / 2;
    const float* cs = p.cos + at.t * cols;
    const float* sn = p.sin + at.t * cols;
    __nv_bfloat16* out = y + at.out_row * cols;
    for (int64_t c = lane; c < half; c += 32) {
      const float n1 = normed(c), n2 = normed(c + half);
      Store(out, c, __fadd_rn(__fmul_rn(n1, cs[c]), __fmul_rn(-n2, sn[c])));
      Store(out, c + half, __fadd_rn(__fmul_rn(n2, cs[c + half]), __fmul_rn(n1, sn[c + half])));
    }
  }
}

// The gradient reaching n[c] and n[c + half] from y's gradient (rope: through the rotation).
template <bool kRope>
struct GradIn;
template <>
struct GradIn<false> {
  __device__ float operator()(const __nv_bfloat16* dy, const float*, const float*, int64_t c,
                              int64_t) const {
    return __bfloat162float(dy[c]);
  }
};
template <>
struct GradIn<true> {
  // y[c] = n[c] cos[c] - n[c+h] sin[c] and y[c+h] = n[c+h] cos[c+h] + n[c] sin[c+h] for c < h.
  __device__ float operator()(const __nv_bfloat16* dy, const float* cs, const float* sn,
                              int64_t c, int64_t half) const {
    if (c < half) {
      return __fadd_rn(__fmul_rn(__bfloat162float(dy[c]), cs[c]),
                       __fmul_rn(__bfloat162float(dy[c + half]), sn[c + half]));
    }
    return __fadd_rn(__fmul_rn(__bfloat162float(dy[c]), cs[c]),
                     -__fmul_rn(__bfloat162float(dy[c - half]), sn[c - half]));
  }
};

template <typename T, bool kRope>
__global__ void BackwardKernel(RmsNormParams p) {
  const int tid = threadIdx.x;
  const int64_t cols = p.cols;
  const int64_t half = cols / 2;
  // Written by the thread that owns column c alone: no races, and a fixed order of rows.
  float* partial = p.workspace + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t c = tid; c < cols; c += kThreadsPerBlock) partial[c] = 0.f;
  const float* w = p.weight;
  const GradIn<kRope> grad_in;
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const T* x = static_cast<const T*>(p.x) + row * cols;
    const float r = p.rstd[row];
    const __nv_bfloat16* dy = static_cast<const __nv_bfloat16*>(p.dy);
    const float* cs = nullptr;
    const float* sn = nullptr;
    if constexpr (kRope) {
      const RopeRow at = LocateRopeRow(row, p);
      dy += at.out_row * cols;
      cs = p.cos + at.t * cols;
      sn = p.sin + at.t * cols;
    } else {
      dy += row * cols;
    }
    float dot = 0.f;
    for (int64_t c = tid; c < cols; c += kThreadsPerBlock) {
      const float g = grad_in(dy, cs, sn, c, half);
      const float xh = __fmul_rn(Load(x, c), r);
      const float dn = RoundIn<T>(__fmul_rn(g, w[c]));
      dot = __fadd_rn(dot, __fmul_rn(dn, xh));
      partial[c] = __fadd_rn(partial[c], __fmul_rn(g, RoundIn<T>(xh)));
    }
    const float mean = BlockSum(dot) / static_cast<float>(cols);
    for (int64_t c = tid; c < cols; c += kThreadsPerBlock) {
      const float g = grad_in(dy, cs, sn, c, half);
      const float xh = __fmul_rn(Load(x, c), r);
      const float dn = RoundIn<T>(__fmul_rn(g, w[c]));
      StoreDx<T, kRope>(p, row * cols + c, __fmul_rn(r, __fsub_rn(dn, __fmul_rn(xh, mean))));
    }
  }
}

// dweight[c] = sum over partial rows in a fixed order: the same bits on every run. A block
// takes 32 columns; its 32 rows of threads each sum every 32nd partial row, coalesced across
// the columns, then row 0 adds the 32 sums in order.
__global__ void SumPartialsKernel(const float* partials, int64_t count, int64_t cols,
                                  float* out) {
  __shared__ float sums[32][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float sum = 0.f;
  if (c < cols) {
    // Unrolled so that several loads are in flight before the adds, which stay in order.
#pragma unroll 8
    for (int64_t i = threadIdx.y; i < count; i += 32) sum = __fadd_rn(sum, partials[i * cols + c]);
  }
  sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  float total = 0.f;
  for (int j = 0; j < 32; ++j) total = __fadd_rn(total, sums[j][threadIdx.x]);
  out[c] = total;
}

// The most partial rows a backward writes: the scalar kernel's count (four of its blocks fit
// an SM), the vector kernels' at most.
int64_t Partials(int64_t rows) { return std::min(rows, kMaxPartials); }

cudaError_t LaunchForward(const RmsNormParams& p, cudaStream_t stream) {
  if (!TryVectorForward(p, stream)) {
    const auto blocks = static_cast<unsigned>((p.rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
    if (p.rope) {
      ForwardKernel<__nv_bfloat16, true><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
    } else if (p.input == NormInput::kFloat32) {
      ForwardKernel<float, false><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
    } else {
      ForwardKernel<__nv_bfloat16, false><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
    }
  }
  return cudaGetLastError();
}

cudaError_t LaunchBackward(const RmsNormParams& p, cudaStream_t stream) {
  int64_t partials = TryVectorBackward(p, stream);
  if (partials == 0) {
    partials = Partials(p.rows);
    const auto blocks = static_cast<unsigned>(partials);
    if (p.rope) {
      BackwardKernel<__nv_bfloat16, true><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
    } else if (p.input == NormInput::kFloat32) {
      BackwardKernel<float, false><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
    } else {
      BackwardKernel<__nv_bfloat16, false><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
    }
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const unsigned sum_blocks = static_cast<unsigned>((p.cols + 31) / 32);
  SumPartialsKernel<<<sum_blocks, dim3(32, 32), 0, stream>>>(p.workspace, partials, p.cols,
                                                             p.dweight);
  return cudaGetLastError();
}

}  // namespace

bool RmsNormSupported(const RmsNormParams& p) {
  if (p.rows < 1 || p.cols < 1) return false;
  const bool add = p.residual != nullptr || p.delta != nullptr || p.sum != nullptr;
  if (add || p.dsum != nullptr || p.dx_bf16 != nullptr) {
    if (p.rope || p.input != NormInput::kFloat32) return false;
    if (add && (p.residual == nullptr || p.delta == nullptr || p.sum == nullptr)) return false;
  }
  if (!p.rope) return true;
  return p.input == NormInput::kBFloat16 && p.cols % 2 == 0 && p.seq_len >= 1 && p.heads >= 1 &&
         p.rows % (p.seq_len * p.heads) == 0;
}

int64_t RmsNormWorkspaceFloats(int64_t rows, int64_t cols) { return Partials(rows) * cols; }

cudaError_t RmsNormForward(const RmsNormParams& p, cudaStream_t stream) {
  return LaunchForward(p, stream);
}

cudaError_t RmsNormBackward(const RmsNormParams& p, cudaStream_t stream) {
  return LaunchBackward(p, stream);
}

}  // namespace ablate::kernels
