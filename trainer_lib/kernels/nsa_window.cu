// The sliding-window branch's forward on wgmma (nsa_window.h: the math, the design, the layout);
// what it shares with the backward is nsa_window_tiles.cuh.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/launch.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
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

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// The forward: a thread block per (64 queries, kHeads heads of one group, batch b), grid
// (ceil(T / 64), H / kHeads, B). The heads share each K and V tile, and their chains overlap:
// head 1's S = Q K^T runs while head 0's softmax does, head 0's O += P V while head 1's softmax
// does. kHeads = 2 where G is even (K and V then cross L2 half as often), else 1.
template <int kHeads>
__global__ void __launch_bounds__(128, 2) ForwardKernel(NsaWindowParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const QueryTile at = ThisQueryTile<kHeads>(p);
  const int64_t t_len = p.seq_len;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* qs = AlignedTiles(smem_raw);    // [kHeads][kTileElems]
  bf16* ks = qs + kHeads * kTileElems;  // [2][kTileElems]
  bf16* vs = ks + 2 * kTileElems;       // [2][kTileElems]
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
  ForEachKeyTile(p, at, ks, vs, [&](int k0, const bf16* kb, const bf16* vb) {
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
  });
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
    StoreRows(p.o, at.q_row0 + hd * t_len, at.rows, o[hd], inv);
  }
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
         p.window >= (p.local_idx != nullptr ? 2 * nsa_window::kTile : 1);
}

cudaError_t NsaWindowForward(const NsaWindowParams& p, cudaStream_t stream) {
  if (const cudaError_t refused = nsa_window::Refusal(p); refused != cudaSuccess) return refused;
  if ((p.heads / p.kv_heads) % 2 == 0) {
    const dim3 grid(nsa_window::Tiles(p), static_cast<unsigned>(p.heads / 2),
                    static_cast<unsigned>(p.batch));
    return LaunchKernel(nsa_window::ForwardKernel<2>, grid, 128, nsa_window::kForwardBytes<2>,
                        stream, p);
  }
  const dim3 grid(nsa_window::Tiles(p), static_cast<unsigned>(p.heads),
                  static_cast<unsigned>(p.batch));
  return LaunchKernel(nsa_window::ForwardKernel<1>, grid, 128, nsa_window::kForwardBytes<1>, stream,
                      p);
}

}  // namespace ablate::kernels
