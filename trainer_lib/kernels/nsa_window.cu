// The sliding-window branch's forward on wgmma (nsa_window.h: the math, the design, the layout);
// what it shares with the backward is nsa_window_tiles.cuh.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/launch.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_row_shift.cuh"
#include "trainer_lib/kernels/nsa_window.h"
#include "trainer_lib/kernels/nsa_window_tiles.cuh"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa_window {
namespace {

// Shared memory: the q tile of each head, K and V double-buffered.
template <int kHeads>
constexpr size_t kForwardBytes = SharedBytes(kHeads + 4);

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// One key tile of the forward's online softmax (base 2) for one head: s, the tile's scores
// (masked), becomes P; m and l, the running max and this thread's share of the sum for its two
// rows, move on; o is rescaled to the new max. P's fragments are packed into a.
__device__ void SoftmaxStep(float (&s)[8][4], float (&m)[2], float (&l)[2], float (&o)[16][4],
                            uint32_t (&a)[4][4], float scale2) {
  float mx[2] = {m[0], m[1]};
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] *= scale2;
      mx[e / 2] = fmaxf(mx[e / 2], s[n][e]);
    }
  }
  float base[2], alpha[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    mx[half] = mma::QuadMax(mx[half]);
    // A row that has seen no key yet keeps a finite base, so that exp2 gives 0, not NaN.
    base[half] = mx[half] == -INFINITY ? 0.0f : mx[half];
    alpha[half] = Exp2(m[half] - base[half]);
    m[half] = mx[half];
    l[half] *= alpha[half];
  }
#pragma unroll
  for (int n = 0; n < 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = Exp2(s[n][e] - base[e / 2]);
      l[e / 2] += s[n][e];
    }
  }
  PackA(a, s);
#pragma unroll
  for (int n = 0; n < 16; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] *= alpha[e / 2];
  }
}

// The selected branch's one-pass terms of the block's 64 queries and kHeads heads over the
// query tile's own key tile (buffer own_buf of ks and vs), the one before it (the other buffer;
// none for the first query tile) and, from the third query tile on, key tile 0, fla's forced
// first block (copied into the other buffer once the one before is done), written as
// nsa_window.h's local_accum, local_sum and local_max rows. o, the heads' accumulators, are free
// (the window's output stored).
template <int kHeads>
__device__ void WriteLocalTerms(const NsaWindowParams& p, const QueryTile& at, const bf16* qs,
                                bf16* ks, bf16* vs, int own_buf, float (&o)[kHeads][16][4]) {
  const int own = at.q0 / kTile;
  // Per row half: the query's slots holding block 0, the one before its own and its own, a byte
  // each (tile j's count at bits 8 j; 0 where the tile is not taken here), shared by the heads
  // of the group; per head and row half, the shift in log2 units (+inf past T: P' = 0).
  uint32_t counts[2] = {0, 0};
  float shift2[kHeads][2];
  float top[kHeads][2], sum[kHeads][2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = FragmentRow(2 * half);
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) {
      top[hd][half] = -INFINITY;
      sum[hd][half] = 0.0f;
      shift2[hd][half] =
          r < at.rows ? nsa::Shift2(p.local_shift[at.q_row0 + hd * p.seq_len + r]) : INFINITY;
    }
    if (r >= at.rows) continue;
    const int32_t* slots = p.local_idx + (at.kv_row0 + at.q0 + r) * p.local_slots;
    const int blocks[3] = {own >= 2 ? 0 : -1, own - 1, own};
#pragma unroll
    for (int j = 0; j < 3; ++j) {
      const uint32_t c = blocks[j] >= 0 ? min(LocalCount(p, slots, blocks[j]), 255) : 0;
      counts[half] |= c << (8 * j);
    }
  }
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) {
#pragma unroll
    for (int n = 0; n < 16; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[hd][n][e] = 0.0f;
    }
  }
  const float scale2 = p.scale * kLog2e;
  const auto add_tile = [&](int j, const bf16* kb, const bf16* vb) {
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) {
      // One head's S at a time (both heads' S and P V with them spill at 255 registers); its
      // wait also takes the head before's P V, which ran beside this S.
      float s[8][4];
      wgmma::Fence();
      ProductOverHeadDim(s, qs + hd * kTileElems, kb);
      wgmma::Commit();
      // P' = c 2^(x - shift2) = 2^(x - sel2): +inf where c = 0.
      float sel2[2];
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const uint32_t c = (counts[half] >> (8 * j)) & 0xffu;
        sel2[half] = c > 0 ? shift2[hd][half] - log2f(static_cast<float>(c)) : INFINITY;
      }
      wgmma::Wait<0>();
      wgmma::FenceOperands(s);
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          // Own tile: key q0 + col is seen by query q0 + row where col <= row.
          const float bound = sel2[e / 2];
          const bool seen = bound < INFINITY && (j < 2 || FragmentCol(n, e) <= FragmentRow(e));
          const float x = s[n][e] * scale2;
          top[hd][e / 2] = seen ? fmaxf(top[hd][e / 2], x) : top[hd][e / 2];
          s[n][e] = seen ? Exp2(x - bound) : 0.0f;
          sum[hd][e / 2] += s[n][e];
        }
      }
      uint32_t a[4][4];
      PackA(a, s);
      AccumulateRows(o[hd], a, vb);
      wgmma::Commit();
    }
    wgmma::Wait<0>();
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) wgmma::FenceOperands(o[hd]);
  };
  bf16* other_k = ks + (1 - own_buf) * kTileElems;
  bf16* other_v = vs + (1 - own_buf) * kTileElems;
  if (own >= 1) add_tile(1, other_k, other_v);  // uniform
  add_tile(2, ks + own_buf * kTileElems, vs + own_buf * kTileElems);
  if (own >= 2) {
    __syncthreads();  // every warpgroup's products of the tile before are done
    CopyTile(other_k, p.k, at.kv_row0, kTile);
    CopyTile(other_v, p.v, at.kv_row0, kTile);
    mma::CommitCopies();
    mma::WaitCopies<0>();
    wgmma::FenceSharedForAsync();
    __syncthreads();
    add_tile(0, other_k, other_v);
  }
  const float one[2] = {1.0f, 1.0f};
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) {
    const int64_t row0 = at.q_row0 + hd * p.seq_len;
    StoreRows(p.local_accum, row0, at.rows, o[hd], one);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float top_h = mma::QuadMax(top[hd][half]), sum_h = mma::QuadSum(sum[hd][half]);
      const int r = FragmentRow(2 * half);
      if (r >= at.rows) continue;
      if (threadIdx.x % 4 == 0) {
        p.local_sum[row0 + r] = sum_h;
        p.local_max[row0 + r] = nsa::OrderedInt(top_h);
      }
    }
  }
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// The forward: a thread block per (64 queries, kHeads heads of one group, batch b), grid
// (ceil(T / 64), H / kHeads, B), and with local_accum set the selected branch's local terms. The
// heads share each K and V tile, and their chains overlap: head 1's S = Q K^T runs while head 0's
// softmax does, head 0's O += P V while head 1's softmax does. kHeads = 2 where G is even (K and
// V then cross L2 half as often), else 1.
template <int kHeads>
__global__ void __launch_bounds__(128, 2)
    ForwardKernel(NsaWindowParams p, const __grid_constant__ StepMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const QueryTile at = ThisQueryTile<kHeads>(p);
  const int64_t t_len = p.seq_len;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* qs = AlignedTiles(smem_raw);    // [kHeads][kTileElems]
  bf16* ks = qs + kHeads * kTileElems;  // [2][kTileElems]
  bf16* vs = ks + 2 * kTileElems;       // [2][kTileElems]
  auto* bars = reinterpret_cast<uint64_t*>(vs + 2 * kTileElems);
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) {
    CopyTile(qs + hd * kTileElems, p.q, at.q_row0 + hd * t_len, at.rows);
  }
  const float scale2 = p.scale * kLog2e;
  float o[kHeads][16][4] = {};
  // Per head and row half (rows FragmentRow(0) and FragmentRow(2)): the running max and this
  // thread's share of the sum (base 2).
  float m[kHeads][2], l[kHeads][2] = {};
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) m[hd][0] = m[hd][1] = -INFINITY;
  // Up to the diagonal: the own key tile and the one before it are the last two.
  const auto step = [&](int k0, const bf16* kb, const bf16* vb) {
    float s[kHeads][8][4];
    wgmma::Fence();
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) {
      ProductOverHeadDim(s[hd], qs + hd * kTileElems, kb);
      wgmma::Commit();
    }
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) {
      // Head hd's S is in once at most kHeads - 1 later groups are pending: the other heads' S,
      // the earlier heads' O += P V.
      wgmma::Wait<kHeads - 1>();
      wgmma::FenceOperands(s[hd]);
      at.Mask(s[hd], k0);
      uint32_t a[4][4];
      SoftmaxStep(s[hd], m[hd], l[hd], o[hd], a, scale2);
      AccumulateRows(o[hd], a, vb);
      wgmma::Commit();
    }
    wgmma::Wait<0>();
#pragma unroll
    for (int hd = 0; hd < kHeads; ++hd) wgmma::FenceOperands(o[hd]);
  };
  const int own = ForEachKeyTile<true>(at, maps, ks, vs, bars, step);
#pragma unroll
  for (int hd = 0; hd < kHeads; ++hd) {
    float inv[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float sum = mma::QuadSum(l[hd][half]);
      inv[half] = 1.0f / sum;
      const int r = FragmentRow(2 * half);
      if (threadIdx.x % 4 == 0 && r < at.rows) {
        p.lse[at.q_row0 + hd * t_len + r] = (m[hd][half] + log2f(sum)) * kLn2;
      }
    }
    StoreRows(static_cast<bf16*>(p.o), at.q_row0 + hd * t_len, at.rows, o[hd], inv);
  }
  if (p.local_accum != nullptr) WriteLocalTerms<kHeads>(p, at, qs, ks, vs, own, o);
#else
  __trap();  // launched only where the sm_90a code is in the build (NsaWindowKernelsRun)
#endif
}

}  // namespace
}  // namespace ablate::kernels::nsa_window

namespace ablate::kernels {

bool NsaWindowKernelsRun() {
#if defined(ABLATE_SM90A_KERNELS)
  return wgmma::DeviceRunsSm90a();
#else
  return false;
#endif
}

bool NsaWindowSupported(const NsaWindowParams& p) {
  return p.head_dim == nsa_window::kD && p.batch >= 1 && p.batch <= 65535 && p.kv_heads >= 1 &&
         p.heads >= p.kv_heads && p.heads <= 65535 && p.heads % p.kv_heads == 0 && p.seq_len >= 1 &&
         p.seq_len < (int64_t{1} << 31) &&
         p.window >= (p.local_idx != nullptr ? 2 * nsa_window::kTile : 1) &&
         (p.dq_accum == nullptr || (p.dk != nullptr && p.dv != nullptr && p.dq == nullptr)) &&
         (p.local_accum == nullptr || (p.local_idx != nullptr && p.local_shift != nullptr &&
                                       p.local_sum != nullptr && p.local_max != nullptr));
}

cudaError_t NsaWindowForward(const NsaWindowParams& p, cudaStream_t stream) {
  if (const cudaError_t refused = nsa_window::Refusal(p); refused != cudaSuccess) return refused;
  nsa_window::StepMaps maps;
  const cudaError_t error =
      nsa_window::EncodeStepMaps(&maps, p.k, p.v, p.batch, p.kv_heads, p.seq_len);
  if (error != cudaSuccess) return error;
  if ((p.heads / p.kv_heads) % 2 == 0) {
    const dim3 grid(nsa_window::Tiles(p), static_cast<unsigned>(p.heads / 2),
                    static_cast<unsigned>(p.batch));
    return LaunchKernel(nsa_window::ForwardKernel<2>, grid, 128, nsa_window::kForwardBytes<2>,
                        stream, p, maps);
  }
  const dim3 grid(nsa_window::Tiles(p), static_cast<unsigned>(p.heads),
                  static_cast<unsigned>(p.batch));
  return LaunchKernel(nsa_window::ForwardKernel<1>, grid, 128, nsa_window::kForwardBytes<1>, stream,
                      p, maps);
}

}  // namespace ablate::kernels
