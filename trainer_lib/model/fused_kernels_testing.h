// What the fused kernels' tests share: skipping without the kernels or a GPU, bf16 autocast for
// a scope, NaN-poisoned allocations, the largest error against an fp64 reference, and the two
// rules every fused node is held to (within twice eager's error; its fallback bit-identical).
// Tests only.
#ifndef ABLATE_TRAINER_LIB_MODEL_FUSED_KERNELS_TESTING_H_
#define ABLATE_TRAINER_LIB_MODEL_FUSED_KERNELS_TESTING_H_

#include <cmath>
#include <string>
#include <vector>

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/device/fused_kernels.h"

namespace ablate::train::kernel_test {

// Skips the test unless the kernels can run here.
#define ABLATE_REQUIRE_FUSED_KERNELS()                                                \
  if (!::ablate::train::FusedKernelsEnabled() || !torch::cuda::is_available()) {      \
    GTEST_SKIP() << "needs the CUDA kernels (nvcc and LibTorch with CUDA) and a GPU"; \
  }

// CUDA autocast to bf16 for the object's lifetime.
class Bf16Autocast {
 public:
  Bf16Autocast() {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
  }
  ~Bf16Autocast() {
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    at::autocast::clear_cache();
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;
};

// Leaves NaN in the caching allocator's free blocks, where the next outputs will come from, so
// an element a kernel forgets to write shows: 256 MiB in its pool of large blocks, and 64 MiB in
// its pool of blocks for tensors of at most 1 MiB, which the large block never serves.
inline void PoisonAllocator() {
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  torch::Tensor large = torch::full({64 << 20}, NAN, cuda);
  std::vector<torch::Tensor> small;
  for (int i = 0; i < 256; ++i) small.push_back(torch::full({64 << 10}, NAN, cuda));
  torch::cuda::synchronize();
}

// max |got - want|, with want in fp64.
inline double MaxError(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kFloat64) - want).abs().max().item<double>();
}

// The kernel tests' rule (flash-attention's), for each output and gradient `names[i]`: the fused
// node's result is finite, has the eager path's shape and dtype, and its largest error against
// the fp64 reference is at most twice the eager path's.
inline void ExpectWithinTwiceEagerError(const std::vector<std::string>& names,
                                        const std::vector<torch::Tensor>& fused,
                                        const std::vector<torch::Tensor>& eager,
                                        const std::vector<torch::Tensor>& exact) {
  ASSERT_EQ(fused.size(), names.size());
  ASSERT_EQ(eager.size(), names.size());
  ASSERT_EQ(exact.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const torch::Tensor &a = fused[i], &b = eager[i];
    ASSERT_TRUE(torch::isfinite(a).all().item<bool>()) << names[i] << " has NaN or Inf";
    ASSERT_EQ(a.sizes(), b.sizes()) << names[i];
    ASSERT_EQ(a.scalar_type(), b.scalar_type()) << names[i];
    const double fused_error = MaxError(a, exact[i]);
    const double eager_error = MaxError(b, exact[i]);
    EXPECT_LE(fused_error, 2 * eager_error + 1e-6) << names[i] << ": eager " << eager_error;
  }
}

// The fallback's rule: without the node's conditions its results are the eager path's, bit for
// bit.
inline void ExpectBitIdentical(const std::vector<std::string>& names,
                               const std::vector<torch::Tensor>& fused,
                               const std::vector<torch::Tensor>& eager) {
  ASSERT_EQ(fused.size(), names.size());
  ASSERT_EQ(eager.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_TRUE(torch::equal(fused[i], eager[i])) << names[i];
  }
}

}  // namespace ablate::train::kernel_test

#endif  // ABLATE_TRAINER_LIB_MODEL_FUSED_KERNELS_TESTING_H_
