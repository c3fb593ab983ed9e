// What the fused kernels' GPU tests share: skipping without the kernels or a GPU, bf16 autocast
// for a scope, NaN-poisoned allocations and the largest error against an fp64 reference.
// Tests only.
#ifndef ABLATE_TRAINER_LIB_MODEL_FUSED_KERNELS_TESTING_H_
#define ABLATE_TRAINER_LIB_MODEL_FUSED_KERNELS_TESTING_H_

#include <cmath>
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

}  // namespace ablate::train::kernel_test

#endif  // ABLATE_TRAINER_LIB_MODEL_FUSED_KERNELS_TESTING_H_
