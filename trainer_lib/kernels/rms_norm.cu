// One warp per row: rows are short (a head's 64-256 values, or the hidden size), so a warp's
// shuffle reduction needs no shared memory and no block synchronisation. __fmul_rn and
// __fadd_rn keep nvcc from contracting a product and a sum into one fused multiply-add, which
// would round once where eager PyTorch rounds twice.
#include "trainer_lib/kernels/rms_norm.h"

#include <algorithm>

#include <cuda_bf16.h>

namespace ablate::kernels {
namespace {

constexpr int kWarpsPerBlock = 8;
// The backward's partial-sum rows: a constant (not the device's size) so that dweight's
// summation order, and so its bits, are the same on every GPU.
constexpr int64_t kMaxPartials = 2048;

template <typename T>
__device__ float Load(const T* p, int64_t i);
template <>
__device__ float Load<float>(const float* p, int64_t i) { return p[i]; }
template <>
__device__ float Load<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

template <typename T>
__device__ void Store(T* p, int64_t i, float v);
template <>
__device__ void Store<float>(float* p, int64_t i, float v) { p[i] = v; }
template <>
__device__ void Store<__nv_bfloat16>(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// Rounds to the input's dtype and back, as eager's .to(input dtype) does.
template <typename T>
__device__ float RoundIn(float v);
template <>
__device__ float RoundIn<float>(float v) { return v; }
template <>
__device__ float RoundIn<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

__device__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// 1 / sqrt(mean(x^2) + eps), as ATen computes it: mean as sum * (1 / C), then rsqrtf.
template <typename T>
__device__ float RowRstd(const T* x, int64_t cols, float eps, int lane) {
  float sum = 0.f;
  for (int64_t c = lane; c < cols; c += 32) {
    const float v = Load(x, c);
    sum = __fadd_rn(sum, __fmul_rn(v, v));
  }
  sum = WarpSum(sum);
  return rsqrtf(__fadd_rn(__fmul_rn(sum, 1.f / static_cast<float>(cols)), eps));
}

// Where row `row` of x [B, T, H, D] goes in y [B, H, T, D], and its position t.
struct RopeRow {
  int64_t out_row;
  int64_t t;
};
__device__ RopeRow LocateRopeRow(int64_t row, int64_t seq_len, int64_t heads) {
  const int64_t h = row % heads;
  const int64_t bt = row / heads;
  const int64_t t = bt % seq_len;
  const int64_t b = bt / seq_len;
  return {(b * heads + h) * seq_len + t, t};
}

template <typename T, bool kRope>
__global__ void ForwardKernel(RmsNormParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= p.rows) return;
  const int64_t cols = p.cols;
  const T* x = static_cast<const T*>(p.x) + row * cols;
  const float r = RowRstd(x, cols, p.eps, lane);
  if (lane == 0) p.rstd[row] = r;
  const float* w = p.weight;
  auto normed = [&](int64_t c) { return __fmul_rn(w[c], RoundIn<T>(__fmul_rn(Load(x, c), r))); };
  __nv_bfloat16* y = static_cast<__nv_bfloat16*>(p.y);
  if constexpr (!kRope) {
    for (int64_t c = lane; c < cols; c += 32) Store(y + row * cols, c, normed(c));
  } else {
    const RopeRow at = LocateRopeRow(row, p.seq_len, p.heads);
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
__global__ void BackwardKernel(RmsNormParams p, int64_t partials) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (warp >= partials) return;
  const int64_t cols = p.cols;
  const int64_t half = cols / 2;
  float* partial = p.workspace + warp * cols;
  for (int64_t c = lane; c < cols; c += 32) partial[c] = 0.f;
  const float* w = p.weight;
  const GradIn<kRope> grad_in;
  for (int64_t row = warp; row < p.rows; row += partials) {
    const T* x = static_cast<const T*>(p.x) + row * cols;
    T* dx = static_cast<T*>(p.dx) + row * cols;
    const float r = p.rstd[row];
    const __nv_bfloat16* dy = static_cast<const __nv_bfloat16*>(p.dy);
    const float* cs = nullptr;
    const float* sn = nullptr;
    if constexpr (kRope) {
      const RopeRow at = LocateRopeRow(row, p.seq_len, p.heads);
      dy += at.out_row * cols;
      cs = p.cos + at.t * cols;
      sn = p.sin + at.t * cols;
    } else {
      dy += row * cols;
    }
    float dot = 0.f;
    for (int64_t c = lane; c < cols; c += 32) {
      const float g = grad_in(dy, cs, sn, c, half);
      const float xh = __fmul_rn(Load(x, c), r);
      const float dn = RoundIn<T>(__fmul_rn(g, w[c]));
      dot = __fadd_rn(dot, __fmul_rn(dn, xh));
      partial[c] = __fadd_rn(partial[c], __fmul_rn(g, RoundIn<T>(xh)));
    }
    const float mean = WarpSum(dot) / static_cast<float>(cols);
    for (int64_t c = lane; c < cols; c += 32) {
      const float g = grad_in(dy, cs, sn, c, half);
      const float xh = __fmul_rn(Load(x, c), r);
      const float dn = RoundIn<T>(__fmul_rn(g, w[c]));
      Store(dx, c, __fmul_rn(r, __fsub_rn(dn, __fmul_rn(xh, mean))));
    }
  }
}

// dweight[c] = sum over partial rows in order: the same bits on every run.
__global__ void SumPartialsKernel(const float* partials, int64_t count, int64_t cols,
                                  float* out) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.f;
  for (int64_t i = 0; i < count; ++i) sum = __fadd_rn(sum, partials[i * cols + c]);
  out[c] = sum;
}

int64_t Partials(int64_t rows) { return std::min(rows, kMaxPartials); }

unsigned Blocks(int64_t warps) {
  return static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

template <bool kRope>
cudaError_t LaunchForward(const RmsNormParams& p, cudaStream_t stream) {
  const dim3 block(32 * kWarpsPerBlock);
  if (p.input == NormInput::kFloat32) {
    ForwardKernel<float, kRope><<<Blocks(p.rows), block, 0, stream>>>(p);
  } else {
    ForwardKernel<__nv_bfloat16, kRope><<<Blocks(p.rows), block, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

template <bool kRope>
cudaError_t LaunchBackward(const RmsNormParams& p, cudaStream_t stream) {
  const dim3 block(32 * kWarpsPerBlock);
  const int64_t partials = Partials(p.rows);
  if (p.input == NormInput::kFloat32) {
    BackwardKernel<float, kRope><<<Blocks(partials), block, 0, stream>>>(p, partials);
  } else {
    BackwardKernel<__nv_bfloat16, kRope><<<Blocks(partials), block, 0, stream>>>(p, partials);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const unsigned sum_blocks = static_cast<unsigned>((p.cols + 255) / 256);
  SumPartialsKernel<<<sum_blocks, 256, 0, stream>>>(p.workspace, partials, p.cols, p.dweight);
  return cudaGetLastError();
}

}  // namespace

bool RmsNormSupported(const RmsNormParams& p) {
  if (p.rows < 1 || p.cols < 1) return false;
  if (!p.rope) return true;
  return p.input == NormInput::kBFloat16 && p.cols % 2 == 0 && p.seq_len >= 1 && p.heads >= 1 &&
         p.rows % (p.seq_len * p.heads) == 0;
}

int64_t RmsNormWorkspaceFloats(int64_t rows, int64_t cols) { return Partials(rows) * cols; }

cudaError_t RmsNormForward(const RmsNormParams& p, cudaStream_t stream) {
  return p.rope ? LaunchForward<true>(p, stream) : LaunchForward<false>(p, stream);
}

cudaError_t RmsNormBackward(const RmsNormParams& p, cudaStream_t stream) {
  return p.rope ? LaunchBackward<true>(p, stream) : LaunchBackward<false>(p, stream);
}

}  // namespace ablate::kernels
