// RMSNorm (rms_norm.h's math, bit for bit) for rows that fit in registers, read and written
// 16 bytes at a time.
//
// Tiling: a row is held by a group of kLanes lanes (4 to 32; a warp holds 32 / kLanes rows),
// each lane kChunks chunks of kVec = 16 / sizeof(T) consecutive elements (4 fp32 or 8 bf16).
// Plain: chunk i of lane j starts at element (j + kLanes i) kVec, so each access of a group
// covers kLanes * 16 contiguous bytes of x. Rope: the first kChunks / 2 chunks tile the first
// half of the row so, and chunk i + kChunks / 2 is chunk i moved by D / 2: a lane holds both
// elements of each rotation pair, and needs no shuffles. Chunks past the row's end (C, or D / 2
// for rope: a multiple of kVec) are masked whole. A warp's groups take consecutive rows, which
// for rope are heads at one position t: they read the same rows of cos and sin.
//
// Backward: a wave of blocks (rms_norm_internal.cuh) walks the rows with a grid stride. A lane
// adds its columns' dweight terms, row after row of its group, into its group's row of shared
// memory (registers would cost the occupancy that keeps enough loads in flight); at the end
// the block adds its groups' rows in group order into its own partial row. So the partials are
// few, and dweight's summation order depends on the shape alone.
//
// Registers (ptxas, sm_90, no spills): backward 128 at 32 elements a lane (C = 1,024 fp32),
// 80 at 16 (D = 128); forward at most 72.
#include <algorithm>
#include <cstdint>

#include <cuda_bf16.h>

#include "trainer_lib/kernels/element_access.cuh"
#include "trainer_lib/kernels/rms_norm_internal.cuh"

namespace ablate::kernels::rms_norm_internal {
namespace {

// N elements of T moved as accesses of at most 16 bytes, each aligned to its own size.
template <typename T, int N>
struct Pieces {
  static constexpr int kSize = N * sizeof(T) > 16 ? 16 / static_cast<int>(sizeof(T)) : N;
  struct alignas(sizeof(T) * kSize) Piece {
    T v[kSize];
  };
};

template <typename T, int N>
__device__ void LoadN(const T* src, float (&out)[N]) {
  using P = Pieces<T, N>;
#pragma unroll
  for (int k = 0; k < N / P::kSize; ++k) {
    const typename P::Piece piece = reinterpret_cast<const typename P::Piece*>(src)[k];
#pragma unroll
    for (int e = 0; e < P::kSize; ++e) out[k * P::kSize + e] = Load(piece.v, e);
  }
}

template <typename T, int N>
__device__ void StoreN(T* dst, const float (&in)[N]) {
  using P = Pieces<T, N>;
#pragma unroll
  for (int k = 0; k < N / P::kSize; ++k) {
    typename P::Piece piece;
#pragma unroll
    for (int e = 0; e < P::kSize; ++e) Store(piece.v, e, in[k * P::kSize + e]);
    reinterpret_cast<typename P::Piece*>(dst)[k] = piece;
  }
}

template <int N>
__device__ void Zero(float (&v)[N]) {
#pragma unroll
  for (int e = 0; e < N; ++e) v[e] = 0.f;
}

template <typename T, bool kRope, int kLanes, int kChunks>
struct Tile {
  static constexpr int kVec = 16 / sizeof(T);
  static constexpr int kRowsPerWarp = 32 / kLanes;
  static constexpr int kRowsPerBlock = kRowsPerWarp * kWarpsPerBlock;
  // The backward's blocks resident on an SM: its registers capped (ptxas) so that they fit
  // without spilling, 80 a thread for up to 16 elements a lane, 128 for 32.
  static constexpr int kBackwardBlocksPerSm = kChunks * kVec <= 16 ? 3 : 2;
  static_assert(!kRope || kChunks % 2 == 0, "rope pairs chunk i with chunk i + kChunks / 2");

  // The element where chunk i of lane j (of its group) starts, or -1 past the row's end.
  static __device__ int Start(int i, int j, int cols) {
    if constexpr (kRope) {
      const int half = cols / 2;
      const int c = (j + kLanes * (i % (kChunks / 2))) * kVec;
      if (c >= half) return -1;
      return i < kChunks / 2 ? c : c + half;
    } else {
      const int c = (j + kLanes * i) * kVec;
      return c < cols ? c : -1;
    }
  }
};

// Where a row's elements start in x (and dx) and in y (and dy), and, for rope, its position's
// rows of cos and sin.
struct RowAt {
  int64_t in, out;
  const float* cs;
  const float* sn;
};
template <bool kRope>
__device__ RowAt Locate(const RmsNormParams& p, int64_t row) {
  if constexpr (kRope) {
    const RopeRow at = LocateRopeRow(row, p);
    return {row * p.cols, at.out_row * p.cols, p.cos + at.t * p.cols, p.sin + at.t * p.cols};
  } else {
    return {row * p.cols, row * p.cols, nullptr, nullptr};
  }
}

template <typename T, bool kRope, int kLanes, int kChunks>
__global__ void __launch_bounds__(kThreadsPerBlock) VectorForwardKernel(RmsNormParams p) {
  using Tl = Tile<T, kRope, kLanes, kChunks>;
  constexpr int kVec = Tl::kVec, kHalf = kChunks / 2;
  const int lane = threadIdx.x & 31, j = lane % kLanes;
  const int cols = static_cast<int>(p.cols);
  const int64_t row =
      (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5)) *
          Tl::kRowsPerWarp + lane / kLanes;
  const bool live = row < p.rows;
  const RowAt at = Locate<kRope>(p, live ? row : 0);
  bool add = false;
  if constexpr (kAddable<T, kRope>) add = p.residual != nullptr;
  float v[kChunks][kVec];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = Tl::Start(i, j, cols);
    Zero(v[i]);
    if (live && c >= 0) {
      if constexpr (kAddable<T, kRope>) {
        if (add) {
          // The new residual stream, eager's fp32 + bf16, written out and normalized.
          float d[kVec];
          LoadN(p.residual + at.in + c, v[i]);
          LoadN(static_cast<const __nv_bfloat16*>(p.delta) + at.in + c, d);
#pragma unroll
          for (int e = 0; e < kVec; ++e) v[i][e] = __fadd_rn(v[i][e], d[e]);
          StoreN(p.sum + at.in + c, v[i]);
        }
      }
      if (!add) LoadN(static_cast<const T*>(p.x) + at.in + c, v[i]);
    }
#pragma unroll
    for (int e = 0; e < kVec; ++e) sum = __fadd_rn(sum, __fmul_rn(v[i][e], v[i][e]));
  }
  const float r = RstdOf(GroupSum<kLanes>(sum), cols, p.eps);
  if (live && j == 0) p.rstd[row] = r;
  if (!live) return;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = Tl::Start(i, j, cols);
    if (c < 0) continue;
    float w[kVec];
    LoadN(p.weight + c, w);
#pragma unroll
    for (int e = 0; e < kVec; ++e) v[i][e] = __fmul_rn(w[e], RoundIn<T>(__fmul_rn(v[i][e], r)));
  }
  __nv_bfloat16* y = static_cast<__nv_bfloat16*>(p.y) + at.out;
  if constexpr (!kRope) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int c = Tl::Start(i, j, cols);
      if (c >= 0) StoreN(y + c, v[i]);
    }
  } else {
    const int half = cols / 2;
#pragma unroll
    for (int i = 0; i < kHalf; ++i) {
      const int c = Tl::Start(i, j, cols);
      if (c < 0) continue;
      float cl[kVec], ch[kVec], sl[kVec], sh[kVec], lo[kVec], hi[kVec];
      LoadN(at.cs + c, cl);
      LoadN(at.cs + c + half, ch);
      LoadN(at.sn + c, sl);
      LoadN(at.sn + c + half, sh);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        const float n1 = v[i][e], n2 = v[i + kHalf][e];
        lo[e] = __fadd_rn(__fmul_rn(n1, cl[e]), __fmul_rn(-n2, sl[e]));
        hi[e] = __fadd_rn(__fmul_rn(n2, ch[e]), __fmul_rn(n1, sh[e]));
      }
      StoreN(y + c, lo);
      StoreN(y + c + half, hi);
    }
  }
}

// dy's gradient through the rotation, in place: g[c] = dy[c] cos[c] + dy[c+h] sin[c+h] and
// g[c+h] = dy[c+h] cos[c+h] - dy[c] sin[c], the transpose of forward's, for chunks lo and hi.
template <int kVec>
__device__ void UnrotateGrad(const float* cs, const float* sn, int c, int half, float (&lo)[kVec],
                             float (&hi)[kVec]) {
  float cl[kVec], ch[kVec], sl[kVec], sh[kVec];
  LoadN(cs + c, cl);
  LoadN(cs + c + half, ch);
  LoadN(sn + c, sl);
  LoadN(sn + c + half, sh);
#pragma unroll
  for (int e = 0; e < kVec; ++e) {
    const float d1 = lo[e], d2 = hi[e];
    lo[e] = __fadd_rn(__fmul_rn(d1, cl[e]), __fmul_rn(d2, sh[e]));
    hi[e] = __fadd_rn(__fmul_rn(d2, ch[e]), -__fmul_rn(d1, sl[e]));
  }
}

template <typename T, bool kRope, int kLanes, int kChunks>
__global__ void __launch_bounds__(kThreadsPerBlock,
                                  (Tile<T, kRope, kLanes, kChunks>::kBackwardBlocksPerSm))
    VectorBackwardKernel(RmsNormParams p) {
  using Tl = Tile<T, kRope, kLanes, kChunks>;
  constexpr int kVec = Tl::kVec, kHalf = kChunks / 2;
  constexpr int kGroups = kThreadsPerBlock / kLanes;
  extern __shared__ __align__(16) float group_dw[];  // [kGroups, C]: each group's row sums
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, j = lane % kLanes;
  const int cols = static_cast<int>(p.cols);
  const T* x = static_cast<const T*>(p.x);
  const __nv_bfloat16* dy = static_cast<const __nv_bfloat16*>(p.dy);
  // Each element is added to by its own lane alone, row after row.
  float* dw = group_dw + (threadIdx.x / kLanes) * cols;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = Tl::Start(i, j, cols);
    float zero[kVec];
    Zero(zero);
    if (c >= 0) StoreN(dw + c, zero);
  }
  const int64_t stride = static_cast<int64_t>(gridDim.x) * Tl::kRowsPerBlock;
  for (int64_t first = (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp) *
                       Tl::kRowsPerWarp;
       first < p.rows; first += stride) {
    const int64_t row = first + lane / kLanes;
    const bool live = row < p.rows;
    const RowAt at = Locate<kRope>(p, live ? row : 0);
    const float r = live ? p.rstd[row] : 0.f;
    float xh[kChunks][kVec], g[kChunks][kVec];
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int c = Tl::Start(i, j, cols);
      Zero(xh[i]);
      Zero(g[i]);
      if (live && c >= 0) {
        LoadN(x + at.in + c, xh[i]);
        LoadN(dy + at.out + c, g[i]);
      }
    }
    if constexpr (kRope) {
#pragma unroll
      for (int i = 0; i < kHalf; ++i) {
        const int c = Tl::Start(i, j, cols);
        if (live && c >= 0) UnrotateGrad(at.cs, at.sn, c, cols / 2, g[i], g[i + kHalf]);
      }
    }
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int c = Tl::Start(i, j, cols);
      float w[kVec], acc[kVec];
      Zero(w);
      Zero(acc);
      if (c >= 0) {
        LoadN(p.weight + c, w);
        LoadN(dw + c, acc);
      }
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        xh[i][e] = __fmul_rn(xh[i][e], r);  // x r
        acc[e] = __fadd_rn(acc[e], __fmul_rn(g[i][e], RoundIn<T>(xh[i][e])));
        g[i][e] = RoundIn<T>(__fmul_rn(g[i][e], w[e]));  // the gradient reaching round_in(x r)
        dot = __fadd_rn(dot, __fmul_rn(g[i][e], xh[i][e]));
      }
      if (live && c >= 0) StoreN(dw + c, acc);
    }
    const float mean = GroupSum<kLanes>(dot) / static_cast<float>(cols);
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int c = Tl::Start(i, j, cols);
      if (!live || c < 0) continue;
      float dx[kVec];
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        dx[e] = __fmul_rn(r, __fsub_rn(g[i][e], __fmul_rn(xh[i][e], mean)));
      }
      if constexpr (kAddable<T, kRope>) {
        if (p.dsum != nullptr) {
          float ds[kVec];
          LoadN(p.dsum + at.in + c, ds);
#pragma unroll
          for (int e = 0; e < kVec; ++e) dx[e] = __fadd_rn(dx[e], ds[e]);
        }
        if (p.dx_bf16 != nullptr) StoreN(static_cast<__nv_bfloat16*>(p.dx_bf16) + at.in + c, dx);
      }
      StoreN(static_cast<T*>(p.dx) + at.in + c, dx);
    }
  }
  __syncthreads();
  // The block's partial row: the groups' sums added in group order.
  float* partial = p.workspace + static_cast<int64_t>(blockIdx.x) * cols;
  for (int c = threadIdx.x; c < cols; c += kThreadsPerBlock) {
    float sum = group_dw[c];
    for (int group = 1; group < kGroups; ++group) sum = __fadd_rn(sum, group_dw[group * cols + c]);
    partial[c] = sum;
  }
}

bool Aligned(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// Every pointer the kernels give 16-byte accesses to, null or 16-byte aligned.
bool AllAligned(const RmsNormParams& p) {
  for (const void* ptr : {p.x, static_cast<const void*>(p.weight), static_cast<const void*>(p.cos),
                          static_cast<const void*>(p.sin), static_cast<const void*>(p.residual),
                          p.delta, static_cast<const void*>(p.sum), static_cast<const void*>(p.y),
                          p.dy, static_cast<const void*>(p.dx), static_cast<const void*>(p.dsum),
                          static_cast<const void*>(p.dx_bf16)}) {
    if (!Aligned(ptr)) return false;
  }
  return true;
}

// Calls launch.template operator()<kLanes, kChunks>() for the smallest tile whose chunks cover
// p's rows (at most 32 elements a lane); false when none does or the rows are not whole vectors.
template <typename T, bool kRope, typename Launch>
bool WithTile(const RmsNormParams& p, const Launch& launch) {
  constexpr int kVec = 16 / sizeof(T);
  const int64_t span = kRope ? p.cols / 2 : p.cols;  // what the first kChunks (rope: half) tile
  if (span % kVec != 0 || !AllAligned(p)) return false;
  const int64_t vectors = span / kVec;
  constexpr int kTiled = kRope ? 2 : 1;  // rope's chunks tile half a row
  if (vectors <= 4 * 2 / kTiled) return launch.template operator()<4, 2>(), true;
  if (vectors <= 8 * 2 / kTiled) return launch.template operator()<8, 2>(), true;
  if (vectors <= 16 * 2 / kTiled) return launch.template operator()<16, 2>(), true;
  if (vectors <= 32 * 2 / kTiled) return launch.template operator()<32, 2>(), true;
  if (vectors <= 32 * 4 / kTiled) return launch.template operator()<32, 4>(), true;
  if constexpr (kVec * 8 <= 32) {
    if (vectors <= 32 * 8 / kTiled) return launch.template operator()<32, 8>(), true;
  }
  return false;
}

template <typename T, bool kRope>
bool ForwardAs(const RmsNormParams& p, cudaStream_t stream) {
  return WithTile<T, kRope>(p, [&]<int kLanes, int kChunks>() {
    using Tl = Tile<T, kRope, kLanes, kChunks>;
    const auto blocks = static_cast<unsigned>((p.rows + Tl::kRowsPerBlock - 1) / Tl::kRowsPerBlock);
    VectorForwardKernel<T, kRope, kLanes, kChunks><<<blocks, kThreadsPerBlock, 0, stream>>>(p);
  });
}

template <typename T, bool kRope>
int64_t BackwardAs(const RmsNormParams& p, cudaStream_t stream) {
  int64_t partials = 0;
  WithTile<T, kRope>(p, [&]<int kLanes, int kChunks>() {
    // One wave of blocks on an H200, each with its share of the rows.
    partials = std::min(p.rows, kSmCount * Tile<T, kRope, kLanes, kChunks>::kBackwardBlocksPerSm);
    const size_t shared = (kThreadsPerBlock / kLanes) * static_cast<size_t>(p.cols) * sizeof(float);
    VectorBackwardKernel<T, kRope, kLanes, kChunks>
        <<<static_cast<unsigned>(partials), kThreadsPerBlock, shared, stream>>>(p);
  });
  return partials;
}

}  // namespace

bool TryVectorForward(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rope) return ForwardAs<__nv_bfloat16, true>(p, stream);
  return p.input == NormInput::kFloat32 ? ForwardAs<float, false>(p, stream)
                                        : ForwardAs<__nv_bfloat16, false>(p, stream);
}

int64_t TryVectorBackward(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rope) return BackwardAs<__nv_bfloat16, true>(p, stream);
  return p.input == NormInput::kFloat32 ? BackwardAs<float, false>(p, stream)
                                        : BackwardAs<__nv_bfloat16, false>(p, stream);
}

}  // namespace ablate::kernels::rms_norm_internal
