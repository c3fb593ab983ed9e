// One warp per row: rows are short (a head's 64-256 values, or the hidden size), so a warp's
// shuffle reduction needs no shared memory and no block synchronisation. __fmul_rn and
// __fadd_rn keep nvcc from contracting a product and a sum into one fused multiply-add, which
// would round once where eager PyTorch rounds twice.
#include "trainer_lib/kernels/rms_norm.h"

#include <algorithm>
#include <type_traits>

#include <cuda_bf16.h>

#include "trainer_lib/kernels/element_access.cuh"

namespace ablate::kernels {
namespace {

constexpr int kWarpsPerBlock = 8;
// The backward's warps, each with its own partial-sum row of dweight: enough to fill a GPU
// several times over for short rows, within a 16 MiB workspace. A function of the shape alone
// (not of the device) so that dweight's summation order, and so its bits, are the same on
// every GPU.
constexpr int64_t kWorkspaceFloats = int64_t{1} << 22;
constexpr int64_t kMinPartials = 2048;
constexpr int64_t kMaxPartials = 32768;

// Rounds to the input's dtype and back, as eager's .to(input dtype) does.
template <typename T>
__device__ float RoundIn(float v);
template <>
__device__ float RoundIn<float>(float v) { return v; }
template <>
__device__ float RoundIn<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// The kernels that may add a residual first, or dsum and dx_bf16 in backward: plain, fp32 x.
// Elsewhere those branches are not compiled at all.
template <typename T, bool kRope>
constexpr bool kAddable = std::is_same_v<T, float> && !kRope;

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
      StoreDx<T, kRope>(p, row * cols + c, __fmul_rn(r, __fsub_rn(dn, __fmul_rn(xh, mean))));
    }
  }
}

// The same two kernels for rows that fit in a warp's registers (C <= 32 * kPerLane; rope: C ==
// 32 * kPerLane, so that a lane holds both elements of each of its pairs): the row is read
// once, and the backward's dweight sums stay in registers until the warp's last row. Qwen3's
// heads (D = 128) and the 0.6B model's hidden size (1,024) take these; wider rows the kernels
// above.
template <typename T, bool kRope, int kPerLane>
__global__ void ForwardRegsKernel(RmsNormParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= p.rows) return;
  const int64_t cols = p.cols;
  const T* x = static_cast<const T*>(p.x) + row * cols;
  bool add = false;
  if constexpr (kAddable<T, kRope>) add = p.residual != nullptr;
  float v[kPerLane];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t c = lane + 32 * i;
    v[i] = c >= cols ? 0.f : add ? AddAt(p, row * cols + c) : Load(x, c);
    sum = __fadd_rn(sum, __fmul_rn(v[i], v[i]));
  }
  sum = WarpSum(sum);
  const float r = rsqrtf(__fadd_rn(__fmul_rn(sum, 1.f / static_cast<float>(cols)), p.eps));
  if (lane == 0) p.rstd[row] = r;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t c = lane + 32 * i;
    if (c < cols) v[i] = __fmul_rn(p.weight[c], RoundIn<T>(__fmul_rn(v[i], r)));
  }
  __nv_bfloat16* y = static_cast<__nv_bfloat16*>(p.y);
  if constexpr (!kRope) {
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t c = lane + 32 * i;
      if (c < cols) Store(y + row * cols, c, v[i]);
    }
  } else {
    constexpr int kHalf = kPerLane / 2;
    const int64_t half = cols / 2;
    const RopeRow at = LocateRopeRow(row, p.seq_len, p.heads);
    const float* cs = p.cos + at.t * cols;
    const float* sn = p.sin + at.t * cols;
    __nv_bfloat16* out = y + at.out_row * cols;
#pragma unroll
    for (int i = 0; i < kHalf; ++i) {
      const int64_t c = lane + 32 * i;
      const float n1 = v[i], n2 = v[i + kHalf];
      Store(out, c, __fadd_rn(__fmul_rn(n1, cs[c]), __fmul_rn(-n2, sn[c])));
      Store(out, c + half, __fadd_rn(__fmul_rn(n2, cs[c + half]), __fmul_rn(n1, sn[c + half])));
    }
  }
}

template <typename T, bool kRope, int kPerLane>
__global__ void BackwardRegsKernel(RmsNormParams p, int64_t partials) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (warp >= partials) return;
  const int64_t cols = p.cols;
  const int64_t half = cols / 2;
  float w[kPerLane], acc[kPerLane], xv[kPerLane], g[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t c = lane + 32 * i;
    w[i] = c < cols ? p.weight[c] : 0.f;
    acc[i] = 0.f;
  }
  const GradIn<kRope> grad_in;
  for (int64_t row = warp; row < p.rows; row += partials) {
    const T* x = static_cast<const T*>(p.x) + row * cols;
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
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t c = lane + 32 * i;
      xv[i] = c < cols ? __fmul_rn(Load(x, c), r) : 0.f;  // x r
      g[i] = c < cols ? grad_in(dy, cs, sn, c, half) : 0.f;
      acc[i] = __fadd_rn(acc[i], __fmul_rn(g[i], RoundIn<T>(xv[i])));
      g[i] = RoundIn<T>(__fmul_rn(g[i], w[i]));  // the gradient reaching round_in(x r)
      dot = __fadd_rn(dot, __fmul_rn(g[i], xv[i]));
    }
    const float mean = WarpSum(dot) / static_cast<float>(cols);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t c = lane + 32 * i;
      if (c < cols) {
        StoreDx<T, kRope>(p, row * cols + c, __fmul_rn(r, __fsub_rn(g[i], __fmul_rn(xv[i], mean))));
      }
    }
  }
  float* partial = p.workspace + warp * cols;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t c = lane + 32 * i;
    if (c < cols) partial[c] = acc[i];
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
    for (int64_t i = threadIdx.y; i < count; i += 32) sum = __fadd_rn(sum, partials[i * cols + c]);
  }
  sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  float total = 0.f;
  for (int j = 0; j < 32; ++j) total = __fadd_rn(total, sums[j][threadIdx.x]);
  out[c] = total;
}

int64_t Partials(int64_t rows, int64_t cols) {
  return std::min(rows, std::clamp(kWorkspaceFloats / cols, kMinPartials, kMaxPartials));
}

unsigned Blocks(int64_t warps) {
  return static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

// Values per lane when a row fits the register kernels, else 0.
int PerLane(const RmsNormParams& p) {
  for (int per_lane : {2, 4, 8, 16, 32}) {
    if (p.rope ? p.cols == 32 * per_lane : p.cols <= 32 * per_lane) return per_lane;
  }
  return 0;
}

template <typename T, bool kRope>
void LaunchForwardAs(const RmsNormParams& p, cudaStream_t stream) {
  const dim3 block(32 * kWarpsPerBlock), grid(Blocks(p.rows));
  switch (PerLane(p)) {
    case 2: ForwardRegsKernel<T, kRope, 2><<<grid, block, 0, stream>>>(p); break;
    case 4: ForwardRegsKernel<T, kRope, 4><<<grid, block, 0, stream>>>(p); break;
    case 8: ForwardRegsKernel<T, kRope, 8><<<grid, block, 0, stream>>>(p); break;
    case 16: ForwardRegsKernel<T, kRope, 16><<<grid, block, 0, stream>>>(p); break;
    case 32: ForwardRegsKernel<T, kRope, 32><<<grid, block, 0, stream>>>(p); break;
    default: ForwardKernel<T, kRope><<<grid, block, 0, stream>>>(p);
  }
}

template <typename T, bool kRope>
void LaunchBackwardAs(const RmsNormParams& p, int64_t partials, cudaStream_t stream) {
  const dim3 block(32 * kWarpsPerBlock), grid(Blocks(partials));
  switch (PerLane(p)) {
    case 2: BackwardRegsKernel<T, kRope, 2><<<grid, block, 0, stream>>>(p, partials); break;
    case 4: BackwardRegsKernel<T, kRope, 4><<<grid, block, 0, stream>>>(p, partials); break;
    case 8: BackwardRegsKernel<T, kRope, 8><<<grid, block, 0, stream>>>(p, partials); break;
    case 16: BackwardRegsKernel<T, kRope, 16><<<grid, block, 0, stream>>>(p, partials); break;
    case 32: BackwardRegsKernel<T, kRope, 32><<<grid, block, 0, stream>>>(p, partials); break;
    default: BackwardKernel<T, kRope><<<grid, block, 0, stream>>>(p, partials);
  }
}

template <bool kRope>
cudaError_t LaunchForward(const RmsNormParams& p, cudaStream_t stream) {
  if (p.input == NormInput::kFloat32) {
    LaunchForwardAs<float, kRope>(p, stream);
  } else {
    LaunchForwardAs<__nv_bfloat16, kRope>(p, stream);
  }
  return cudaGetLastError();
}

template <bool kRope>
cudaError_t LaunchBackward(const RmsNormParams& p, cudaStream_t stream) {
  const int64_t partials = Partials(p.rows, p.cols);
  if (p.input == NormInput::kFloat32) {
    LaunchBackwardAs<float, kRope>(p, partials, stream);
  } else {
    LaunchBackwardAs<__nv_bfloat16, kRope>(p, partials, stream);
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

int64_t RmsNormWorkspaceFloats(int64_t rows, int64_t cols) {
  return Partials(rows, cols) * cols;
}

cudaError_t RmsNormForward(const RmsNormParams& p, cudaStream_t stream) {
  return p.rope ? LaunchForward<true>(p, stream) : LaunchForward<false>(p, stream);
}

cudaError_t RmsNormBackward(const RmsNormParams& p, cudaStream_t stream) {
  return p.rope ? LaunchBackward<true>(p, stream) : LaunchBackward<false>(p, stream);
}

}  // namespace ablate::kernels
