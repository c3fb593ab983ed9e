// fp32 rows added from shared into global memory by the copy engine (sm_90: PTX ISA's
// cp.reduce.async.bulk): one instruction moves a row's bytes and the adds happen in L2, where
// per-thread float4 atomics send one request per 16 bytes. FlashAttention-3's Hopper backward
// adds its dq accumulator this way (its copy_sm90_bulk_reduce.hpp). Device code only.
//
// Use: write the rows to shared memory; each writing thread then FenceSharedForAsync
// (wgmma_bf16.cuh), a barrier, and each issuing thread AddRowAsync, CommitAdds, and
// WaitAddsRead before the rows' shared memory is written again.
#ifndef ABLATE_TRAINER_LIB_KERNELS_BULK_ADD_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_BULK_ADD_CUH_

#include "trainer_lib/kernels/mma_bf16.cuh"

namespace ablate::kernels::bulk {

// global[0, bytes / 4) += shared[0, bytes / 4) in fp32; both 16-byte aligned, bytes a multiple
// of 16. Asynchronous: shared is read until WaitAddsRead.
inline __device__ void AddRowAsync(float* global, const float* shared, int bytes) {
  asm volatile(
      "cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(global),
      "r"(mma::SharedAddress(shared)), "r"(bytes)
      : "memory");
}
// Closes this thread's adds issued since the last commit into a group.
inline __device__ void CommitAdds() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until this thread's committed groups have read their shared rows.
inline __device__ void WaitAddsRead() {
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}

}  // namespace ablate::kernels::bulk

#endif  // ABLATE_TRAINER_LIB_KERNELS_BULK_ADD_CUH_
