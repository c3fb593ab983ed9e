#include "trainer_lib/train/step_profiler.h"

#include <gtest/gtest.h>

namespace ablate::train {
namespace {

// Names as CUPTI reports them on an H200 with PyTorch 2.11 (cuBLAS, flash SDPA, fused AdamW).
TEST(KernelKindTest, SortsDeviceKernelsByWhatTheyDo) {
  EXPECT_EQ(KernelKind("nvjet_tst_192x192_64x4_2x1_v_bz_coopB_TNT"), "matmul");
  EXPECT_EQ(KernelKind("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"), "matmul");
  EXPECT_EQ(KernelKind("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128>>"),
            "attention");
  EXPECT_EQ(KernelKind("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<"
                       "FusedAdamMathFunctor>"),
            "optimizer");
  EXPECT_EQ(KernelKind("Memcpy DtoD (Device -> Device)"), "copy");
  EXPECT_EQ(KernelKind("void at::native::reduce_kernel<512, 1, ReduceOp<float, MeanOps>>"),
            "reduction");
  EXPECT_EQ(KernelKind("void at::native::vectorized_elementwise_kernel<4, MulFunctor<float>>"),
            "elementwise");
  EXPECT_EQ(KernelKind("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)"),
            "communication");
  EXPECT_EQ(KernelKind("ablate_rope_forward"), "other");
}

}  // namespace
}  // namespace ablate::train
