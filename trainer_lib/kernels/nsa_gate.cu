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

// V consecutive elements of a row in fp32: V = 8 is one 16-byte access, V = 2 one bf16 pair.
template <int V>
struct Chunk {
  float x[V];
};

template <int V>
__device__ Chunk<V> Load(const bf16* from) {
  Chunk<V> c;
  if constexpr (V == 8) {
    const uint4 raw = *reinterpret_cast<const uint4*>(from);
    const bf16x2* pairs = reinterpret_cast<const bf16x2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(pairs[i]);
      c.x[2 * i] = f.x;
      c.x[2 * i + 1] = f.y;
    }
  } else {
    const float2 f = __bfloat1622float2(*reinterpret_cast<const bf16x2*>(from));
    c.x[0] = f.x;
    c.x[1] = f.y;
  }
  return c;
}

// Stores scale * c.
template <int V>
__device__ void Store(bf16* to, const Chunk<V>& c, float scale) {
  if constexpr (V == 8) {
    uint4 raw;
    bf16x2* pairs = reinterpret_cast<bf16x2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      pairs[i] = __float22bfloat162_rn(float2{scale * c.x[2 * i], scale * c.x[2 * i + 1]});
    }
    *reinterpret_cast<uint4*>(to) = raw;
  } else {
    *reinterpret_cast<bf16x2*>(to) = __float22bfloat162_rn(float2{scale * c.x[0], scale * c.x[1]});
  }
}

// A row is read V elements at a time by a team of `team` lanes (a power of two, at most 32): a
// warp takes 32 / team rows at once, so that each lane keeps a load of every tensor in flight
// (with a warp per row and a bf16 pair per lane, the backward took 6.16 ms at fla's 128K on an
// H200 for about 14 GB by our count, half of HBM's rate). Nor does this reach HBM's rate: 5.57 ms
// there, at 41% of DRAM's throughput and 59% of the SMs' by Nsight Compute, for about 10 GB by
// our count; what bounds it is not known yet. The row of this lane; rows past p.rows are
// inactive.
__device__ int64_t RowOf(int team) {
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  return warp * (32 / team) + (threadIdx.x % 32) / team;
}

// A folded branch 0's row (NsaGateParams::fold): its run and the element offset there; run -1
// where the row has none (t < l - 1).
struct FoldedAt {
  int64_t run, offset;
};

// In I's arithmetic: 64-bit divisions cost a few dozen instructions each (in 64 bits the gate's
// backward took 6.02 ms at fla's 128K on an H200, in 32 bits 5.57). Every quotient here is below
// rows, and the offset is formed in 64 bits.
template <typename I>
__device__ FoldedAt FoldedRowIn(const NsaGateParams& p, I row) {
  const I seq_len = static_cast<I>(p.seq_len), fold = static_cast<I>(p.fold);
  const I heads = static_cast<I>(p.heads), run_heads = static_cast<I>(p.run_heads);
  const I t = row % seq_len, bh = row / seq_len;
  if (t + 1 < fold) return {-1, 0};
  const I h = bh % heads, b = bh / heads, run = h / run_heads;
  const I in_run = min(run_heads, heads - run * run_heads);
  const I folded_head = (b * in_run + h % run_heads) * fold + (t + 1) % fold;
  const int64_t at = static_cast<int64_t>(folded_head) * (p.seq_len / p.fold) +
                     static_cast<int64_t>((t + 1) / fold - 1);
  return {static_cast<int64_t>(run), at * p.head_dim};
}

__device__ FoldedAt FoldedRow(const NsaGateParams& p, int64_t row) {
  return p.rows <= int64_t{UINT32_MAX} ? FoldedRowIn<uint32_t>(p, static_cast<uint32_t>(row))
                                       : FoldedRowIn<int64_t>(p, row);
}

// Where row `row` of branch c starts; null where the row has no element there.
__device__ const bf16* BranchRow(const NsaGateParams& p, int c, int64_t row) {
  if (c == 0 && p.fold > 0) {
    const FoldedAt at = FoldedRow(p, row);
    return at.run < 0 ? nullptr : static_cast<const bf16*>(p.folded[at.run]) + at.offset;
  }
  return static_cast<const bf16*>(p.branch[c]) + row * p.head_dim;
}

// Where row `row` of branch c's gradient starts; null where it is not written.
__device__ bf16* GradientRow(const NsaGateParams& p, int c, int64_t row) {
  if (c == 0 && p.fold > 0) {
    const FoldedAt at = FoldedRow(p, row);
    return at.run < 0 || p.d_folded[at.run] == nullptr
               ? nullptr
               : static_cast<bf16*>(p.d_folded[at.run]) + at.offset;
  }
  return p.d_branch[c] == nullptr ? nullptr : static_cast<bf16*>(p.d_branch[c]) + row * p.head_dim;
}

template <int V>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    GateForwardKernel(const __grid_constant__ NsaGateParams p, int team) {
  const int64_t row = RowOf(team);
  if (row >= p.rows) return;
  float g[kNsaGateMaxBranches];
  const bf16* from[kNsaGateMaxBranches];
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) {
    g[c] = c < p.branches ? GateAt(p, row, c) : 0.0f;
    from[c] = c < p.branches ? BranchRow(p, c, row) : nullptr;
  }
  bf16* out = static_cast<bf16*>(p.out) + row * p.head_dim;
  for (int64_t d = V * (threadIdx.x % team); d < p.head_dim; d += V * team) {
    Chunk<V> sum = {};
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (from[c] != nullptr) {
        const Chunk<V> x = Load<V>(from[c] + d);
#pragma unroll
        for (int i = 0; i < V; ++i) sum.x[i] += g[c] * x.x[i];
      }
    }
    Store<V>(out + d, sum, 1.0f);
  }
}

template <int V>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    GateBackwardKernel(const __grid_constant__ NsaGateParams p, int team) {
  const int64_t row = RowOf(team);
  // Inactive lanes still take part in their team's shuffles.
  const bool active = row < p.rows;
  float g[kNsaGateMaxBranches], dot[kNsaGateMaxBranches];
  const bf16* from[kNsaGateMaxBranches];
  bf16* to[kNsaGateMaxBranches];
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) {
    const bool here = active && c < p.branches;
    g[c] = here ? GateAt(p, row, c) : 0.0f;
    from[c] = here ? BranchRow(p, c, row) : nullptr;
    to[c] = from[c] != nullptr ? GradientRow(p, c, row) : nullptr;
    dot[c] = 0.0f;
  }
  const bf16* d_out = static_cast<const bf16*>(p.d_out) + row * p.head_dim;
  const int member = threadIdx.x % team;
  for (int64_t d = V * member; active && d < p.head_dim; d += V * team) {
    // Every load issued before any store, which the compiler may not do itself (a store may
    // alias a later load): 2.79 to 2.69 ms at fla's 64K on an H200.
    const Chunk<V> d_o = Load<V>(d_out + d);
    Chunk<V> x[kNsaGateMaxBranches];
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (from[c] != nullptr) x[c] = Load<V>(from[c] + d);
    }
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (from[c] != nullptr) {
#pragma unroll
        for (int i = 0; i < V; ++i) dot[c] += d_o.x[i] * x[c].x[i];
        if (to[c] != nullptr) Store<V>(to[c] + d, d_o, g[c]);
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) {
    for (int offset = team / 2; offset > 0; offset /= 2) {
      dot[c] += __shfl_xor_sync(kFullMask, dot[c], offset);
    }
  }
  if (!active) return;
  for (int col = member; col < p.gate_cols; col += team) {
    float value = 0.0f;
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (c == col && c < p.branches) value = dot[c];
    }
    p.d_gates[row * p.gate_cols + col] = value;
  }
}

bool Aligned(const void* x, int bytes) { return reinterpret_cast<uintptr_t>(x) % bytes == 0; }

bool Valid(const NsaGateParams& p, bool backward) {
  if (p.rows <= 0 || p.head_dim <= 0 || p.head_dim % 2 != 0 || p.branches < 1 ||
      p.branches > kNsaGateMaxBranches || p.gate_cols < p.branches || p.gate_cols > 32 ||
      p.gates == nullptr || (p.rows + kWarpsPerBlock - 1) / kWarpsPerBlock >= (int64_t{1} << 31)) {
    return false;
  }
  if (p.fold > 0) {
    if (p.heads <= 0 || p.seq_len < p.fold || p.rows % (p.heads * p.seq_len) != 0 ||
        p.run_heads <= 0 || p.runs <= 0 || p.runs > kNsaGateMaxRuns ||
        (p.heads + p.run_heads - 1) / p.run_heads != p.runs) {
      return false;
    }
    for (int j = 0; j < p.runs; ++j) {
      if (p.folded[j] == nullptr || !Aligned(p.folded[j], 4) || !Aligned(p.d_folded[j], 4)) {
        return false;
      }
    }
  }
  for (int c = p.fold > 0 ? 1 : 0; c < p.branches; ++c) {
    if (p.branch[c] == nullptr || !Aligned(p.branch[c], 4)) return false;
    if (backward && !Aligned(p.d_branch[c], 4)) return false;
  }
  return backward ? p.d_out != nullptr && Aligned(p.d_out, 4) && p.d_gates != nullptr
                  : p.out != nullptr && Aligned(p.out, 4);
}

// Whether every row tensor the pass touches reads as 16-byte chunks.
bool Wide(const NsaGateParams& p, bool backward) {
  bool wide = p.head_dim % 8 == 0 && Aligned(backward ? p.d_out : p.out, 16);
  for (int c = p.fold > 0 ? 1 : 0; c < p.branches; ++c) {
    wide = wide && Aligned(p.branch[c], 16) && (!backward || Aligned(p.d_branch[c], 16));
  }
  for (int j = 0; p.fold > 0 && j < p.runs; ++j) {
    wide = wide && Aligned(p.folded[j], 16) && (!backward || Aligned(p.d_folded[j], 16));
  }
  return wide;
}

// Launches kernel<8> or kernel<2> with the team that covers a row.
template <typename Kernel>
cudaError_t Launch(const NsaGateParams& p, bool wide, Kernel narrow_kernel, Kernel wide_kernel,
                   cudaStream_t stream) {
  const int v = wide ? 8 : 2;
  int team = 1;
  while (team < 32 && team * v < p.head_dim) team *= 2;
  const int64_t rows_per_block = int64_t{kWarpsPerBlock} * (32 / team);
  const dim3 grid(static_cast<unsigned>((p.rows + rows_per_block - 1) / rows_per_block));
  (wide ? wide_kernel : narrow_kernel)<<<grid, kWarpsPerBlock * 32, 0, stream>>>(p, team);
  return cudaGetLastError();
}

}  // namespace

cudaError_t NsaGateForward(const NsaGateParams& p, cudaStream_t stream) {
  if (!Valid(p, false)) return cudaErrorInvalidValue;
  return Launch(p, Wide(p, false), GateForwardKernel<2>, GateForwardKernel<8>, stream);
}

cudaError_t NsaGateBackward(const NsaGateParams& p, cudaStream_t stream) {
  if (!Valid(p, true)) return cudaErrorInvalidValue;
  return Launch(p, Wide(p, true), GateBackwardKernel<2>, GateBackwardKernel<8>, stream);
}

}  // namespace ablate::kernels
