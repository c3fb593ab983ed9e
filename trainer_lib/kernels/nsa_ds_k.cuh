// dq's share of a dk/dv kernel's step (FlashAttention-2's dq = scale dS K, Dao 2023), added into
// fp32 rows with atomics, as the selected branch's dk/dv kernel by key block on wgmma forms it
// (nsa_backward_by_block.cu; the window's two-warpgroup kernel splits dq's columns between its
// warpgroups instead, nsa_window_backward.cu). Device code only, sm_90a (under
// __CUDA_ARCH_FEAT_SM90_ALL).
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_DS_K_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_DS_K_CUH_

#include <cuda_bf16.h>

#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Adds scale dS K into 64 rows of dq for the step's dS^T, a warpgroup's 64 keys x 64 rows in
// accumulator layout (wgmma_bf16.cuh's "Fragments": this thread's element e of column tile n is
// key 16 warp + lane / 4 + 8 (e / 2) and row 8 n + 2 (lane % 4) + e % 2), and k, the keys'
// swizzled [64][128] tile. dS goes, rounded to bf16 as FlashAttention-2 rounds it, into ds (a
// swizzled [64 rows][64 keys] tile, 1024-byte aligned), then dq = dS K a 64-column half at a time
// (m64n64, k read N-major), and each warp adds its rows 16 warp + lane / 4 (`top`: that row's
// column 0) and 16 warp + lane / 4 + 8 (`bottom`) with float2 atomics (mma::AtomicAddRows); a null
// row is not added.
// Waits for every wgmma the warpgroup has in flight. All threads of the block, which is one
// warpgroup; ds may be rewritten once every thread has passed a barrier after this.
inline __device__ void AddDsK(const float (&ds_t)[8][4], __nv_bfloat16* ds, const __nv_bfloat16* k,
                              float scale, float* top, float* bottom) {
  constexpr int kKeys = 64, kRows = 64;
  const int lane = threadIdx.x % 32, key0 = 16 * static_cast<int>(threadIdx.x / 32);
#pragma unroll
  for (int n = 0; n < kRows / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int key = key0 + lane / 4 + 8 * (e / 2), row = 8 * n + 2 * (lane % 4) + e % 2;
      ds[wgmma::SwizzledOffset(kRows, row, key)] = __float2bfloat16(ds_t[n][e]);
    }
  }
  wgmma::FenceSharedForAsync();
  __syncthreads();  // dS is in
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float dq[8][4];
    wgmma::Fence();
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      wgmma::MmaShared64<1>(dq, wgmma::SwizzledKMajor(ds, kRows, kk),
                            wgmma::SwizzledMnMajor(k + half * kKeys * 64, kKeys, kk), kk > 0);
    }
    wgmma::Commit();
    wgmma::Wait<0>();
    wgmma::FenceOperands(dq);
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) dq[n][e] *= scale;
    }
    const int col0 = 64 * half;
    mma::AtomicAddRows<64>(top == nullptr ? nullptr : top + col0,
                           bottom == nullptr ? nullptr : bottom + col0, dq);
  }
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

}  // namespace ablate::kernels::nsa

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_DS_K_CUH_
