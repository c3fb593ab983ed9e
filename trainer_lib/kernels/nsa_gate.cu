#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "trainer_lib/kernels/nsa_gate.h"

#include "trainer_lib/kernels/fast_divisor.h"

namespace ablate::kernels {
namespace {

using bf16 = __nv_bfloat16;
using bf16x2 = __nv_bfloat162;

constexpr int kWarpsPerBlock = 8;
constexpr unsigned kFullMask = 0xffffffffu;
// Blocks an SM keeps resident, which caps each kernel's registers (64K an SM): a pass this thin
// moves what its lanes have in flight (Little's law: HBM's rate times its latency, about 50 KB
// an SM on an H200), and each lane holds one 16-byte load per tensor. The compiler's own choice
// (37 and 72 registers) let 6 forward and 3 backward blocks in: the backward, with 48 KB in
// flight an SM, moved about 5 GB in 2.35 ms at fla's 64K, 2.14 ms with these bounds, and 1.80
// with its loads kept packed, unspilled (the forward 1.14 and 1.03; docs/benchmarks.md). Two rows
// a lane at 2 blocks an SM, the same bytes in flight, took 2.41.
constexpr int kForwardBlocksPerSm = 8;   // 32 registers
constexpr int kBackwardBlocksPerSm = 4;  // 64 registers

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

// V consecutive bf16 elements as loaded, 2 V bytes: kept so until used, half the registers of
// their fp32 values.
template <int V>
struct Raw {
  static_assert(V == 8 || V == 2);
  std::conditional_t<V == 8, uint4, uint32_t> bits;
};

template <int V>
__device__ Raw<V> LoadRaw(const bf16* from) {
  return {*reinterpret_cast<const decltype(Raw<V>::bits)*>(from)};
}

template <int V>
__device__ Chunk<V> Widen(const Raw<V>& raw) {
  Chunk<V> c;
  const bf16x2* pairs = reinterpret_cast<const bf16x2*>(&raw.bits);
#pragma unroll
  for (int i = 0; i < V / 2; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    c.x[2 * i] = f.x;
    c.x[2 * i + 1] = f.y;
  }
  return c;
}

template <int V>
__device__ Chunk<V> Load(const bf16* from) {
  return Widen<V>(LoadRaw<V>(from));
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
// H200 for about 14 GB by our count, half of HBM's rate). The row of this lane; rows past p.rows
// are inactive.
__device__ int64_t RowOf(int team) {
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  return warp * (32 / team) + ((threadIdx.x % 32) >> (__ffs(team) - 1));
}

// A folded branch 0's row (NsaGateParams::fold): its run and the element offset there; run -1
// where the row has none (t < l - 1).
struct FoldedAt {
  int64_t run, offset;
};

// The sizes a folded row's place divides by, in this order: T, H, run_heads, l. As FastDivisors
// (fast_divisor.h), built by the launcher: with 32-bit divisions by runtime values the gate's
// backward spent most of its issue slots on them (5.57 ms at fla's 128K on an H200, 59% of the
// SMs' throughput and 41% of DRAM's by Nsight Compute; 64-bit ones took 6.02 ms).
struct FoldDivisors {
  FastDivisor at[4];
};

// In I's arithmetic, divmod(x, k, &remainder) dividing by size k of FoldDivisors' order. Every
// quotient is below rows; the offset is formed in 64 bits.
template <typename I, typename DivMod>
__device__ FoldedAt FoldedRowIn(const NsaGateParams& p, I row, const DivMod& divmod) {
  I t, h, head_in_run, slot;
  const I bh = divmod(row, 0, &t);
  const I b = divmod(bh, 1, &h);
  const I run = divmod(h, 2, &head_in_run);
  const I position = divmod(t + 1, 3, &slot);  // t + 1 = position l + slot
  if (position == 0) return {-1, 0};           // t < l - 1
  const I run_heads = static_cast<I>(p.run_heads), heads = static_cast<I>(p.heads);
  const I in_run = min(run_heads, heads - run * run_heads);
  const I folded_head = (b * in_run + head_in_run) * static_cast<I>(p.fold) + slot;
  const int64_t at = static_cast<int64_t>(folded_head) * (p.seq_len / p.fold) +
                     static_cast<int64_t>(position - 1);
  return {static_cast<int64_t>(run), at * p.head_dim};
}

// Multiplies and shifts below 2^31 rows (FastDivisor's range), 64-bit divisions past that.
__device__ FoldedAt FoldedRow(const NsaGateParams& p, const FoldDivisors& d, int64_t row) {
  if (p.rows < (int64_t{1} << 31)) {
    const auto divmod = [&](uint32_t x, int k, uint32_t* r) { return d.at[k].DivMod(x, r); };
    return FoldedRowIn<uint32_t>(p, static_cast<uint32_t>(row), divmod);
  }
  const int64_t sizes[4] = {p.seq_len, p.heads, p.run_heads, p.fold};
  return FoldedRowIn<int64_t>(p, row, [&](int64_t x, int k, int64_t* r) {
    *r = x % sizes[k];
    return x / sizes[k];
  });
}

// Where row `row` of branch c starts; null where the row has no element there. `folded`:
// FoldedRow's place of the row where p.fold > 0.
__device__ const bf16* BranchRow(const NsaGateParams& p, int c, int64_t row,
                                 const FoldedAt& folded) {
  if (c == 0 && p.fold > 0) {
    return folded.run < 0 ? nullptr
                          : static_cast<const bf16*>(p.folded[folded.run]) + folded.offset;
  }
  return static_cast<const bf16*>(p.branch[c]) + row * p.head_dim;
}

// Where row `row` of branch c's gradient starts; null where it is not written.
__device__ bf16* GradientRow(const NsaGateParams& p, int c, int64_t row, const FoldedAt& folded) {
  if (c == 0 && p.fold > 0) {
    return folded.run < 0 || p.d_folded[folded.run] == nullptr
               ? nullptr
               : static_cast<bf16*>(p.d_folded[folded.run]) + folded.offset;
  }
  return p.d_branch[c] == nullptr ? nullptr : static_cast<bf16*>(p.d_branch[c]) + row * p.head_dim;
}

// The row's place in the folded branch 0 where there is one.
__device__ FoldedAt FoldedPlace(const NsaGateParams& p, const FoldDivisors& d, int64_t row) {
  return p.fold > 0 ? FoldedRow(p, d, row) : FoldedAt{-1, 0};
}

template <int V>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, kForwardBlocksPerSm)
    GateForwardKernel(const __grid_constant__ NsaGateParams p, const FoldDivisors d, int team) {
  const int64_t row = RowOf(team);
  if (row >= p.rows) return;
  const FoldedAt folded = FoldedPlace(p, d, row);
  float g[kNsaGateMaxBranches];
  const bf16* from[kNsaGateMaxBranches];
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) {
    g[c] = c < p.branches ? GateAt(p, row, c) : 0.0f;
    from[c] = c < p.branches ? BranchRow(p, c, row, folded) : nullptr;
  }
  bf16* out = static_cast<bf16*>(p.out) + row * p.head_dim;
  for (int64_t e = V * (threadIdx.x & (team - 1)); e < p.head_dim; e += V * team) {
    Chunk<V> sum = {};
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (from[c] != nullptr) {
        const Chunk<V> x = Load<V>(from[c] + e);
#pragma unroll
        for (int i = 0; i < V; ++i) sum.x[i] += g[c] * x.x[i];
      }
    }
    Store<V>(out + e, sum, 1.0f);
  }
}

template <int V>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, kBackwardBlocksPerSm)
    GateBackwardKernel(const __grid_constant__ NsaGateParams p, const FoldDivisors d, int team) {
  const int64_t row = RowOf(team);
  // Inactive lanes still take part in their team's shuffles.
  const bool active = row < p.rows;
  const FoldedAt folded = active ? FoldedPlace(p, d, row) : FoldedAt{-1, 0};
  float g[kNsaGateMaxBranches], dot[kNsaGateMaxBranches];
  const bf16* from[kNsaGateMaxBranches];
  bf16* to[kNsaGateMaxBranches];
#pragma unroll
  for (int c = 0; c < kNsaGateMaxBranches; ++c) {
    const bool here = active && c < p.branches;
    g[c] = here ? GateAt(p, row, c) : 0.0f;
    from[c] = here ? BranchRow(p, c, row, folded) : nullptr;
    to[c] = from[c] != nullptr ? GradientRow(p, c, row, folded) : nullptr;
    dot[c] = 0.0f;
  }
  const bf16* d_out = static_cast<const bf16*>(p.d_out) + row * p.head_dim;
  const int member = threadIdx.x & (team - 1);
  for (int64_t e = V * member; active && e < p.head_dim; e += V * team) {
    // Every load issued before any store, which the compiler may not do itself (a store may
    // alias a later load): 2.79 to 2.69 ms at fla's 64K on an H200. The loads stay packed until
    // used: widened at once they took 32 registers and spilled under the 64 that the resident
    // blocks allow (2.14 to 1.80 ms).
    const Raw<V> d_o = LoadRaw<V>(d_out + e);
    Raw<V> x[kNsaGateMaxBranches];
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (from[c] != nullptr) x[c] = LoadRaw<V>(from[c] + e);
    }
    const Chunk<V> d_o_wide = Widen<V>(d_o);
#pragma unroll
    for (int c = 0; c < kNsaGateMaxBranches; ++c) {
      if (from[c] != nullptr) {
        const Chunk<V> xc = Widen<V>(x[c]);
#pragma unroll
        for (int i = 0; i < V; ++i) dot[c] += d_o_wide.x[i] * xc.x[i];
        if (to[c] != nullptr) Store<V>(to[c] + e, d_o_wide, g[c]);
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
  FoldDivisors d;
  if (p.fold > 0 && p.rows < (int64_t{1} << 31)) {  // FoldedRow's range for them
    int k = 0;
    for (const int64_t size : {p.seq_len, p.heads, p.run_heads, p.fold}) {
      d.at[k++] = FastDivisor(static_cast<uint32_t>(size));
    }
  }
  (wide ? wide_kernel : narrow_kernel)<<<grid, kWarpsPerBlock * 32, 0, stream>>>(p, d, team);
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
