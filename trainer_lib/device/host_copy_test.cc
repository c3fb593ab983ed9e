#include "trainer_lib/device/host_copy.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

namespace ablate::train {
namespace {

TEST(CopyToDevice, OnTheCpuIsTheTensorItself) {
  const torch::Tensor host = torch::arange(12, torch::kInt64).view({3, 4});
  const torch::Tensor copy = CopyToDevice(host, torch::kCPU);
  EXPECT_TRUE(copy.is_same(host));
}

TEST(CopyToDevice, RefusesATensorNotInHostMemory) {
  EXPECT_THROW(CopyToDevice(torch::zeros({2}, torch::kMeta), torch::kCPU), c10::Error);
}

// The host queues copies behind a long product and overwrites (and frees) each source at once,
// as the trainer does with a step's batch: every copy must still hold its source's values.
TEST(CopyToDevice, SourcesReusedBeforeTheDeviceRunsTheCopiesAreSafe) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const torch::Tensor a = torch::randn({8192, 8192}, torch::kCUDA);
  torch::Tensor busy = a;
  for (int i = 0; i < 8; ++i) busy = busy.matmul(a).div_(100.0);  // keeps the stream busy
  std::vector<torch::Tensor> copies;
  std::vector<torch::Tensor> expected;
  // A strided view of one pageable buffer, refilled each time, as the dataset's targets are.
  torch::Tensor windows = torch::empty({4, 4097}, torch::kInt64);
  const torch::Tensor host = windows.narrow(1, 1, 4096);
  for (int64_t i = 0; i < 16; ++i) {
    windows.fill_(i);
    copies.push_back(CopyToDevice(host, torch::kCUDA));
    expected.push_back(torch::full({4, 4096}, i, torch::kInt64));
  }
  for (size_t i = 0; i < copies.size(); ++i) {
    EXPECT_TRUE(copies[i].device().is_cuda());
    EXPECT_TRUE(torch::equal(copies[i].cpu(), expected[i])) << "copy " << i;
  }
}

}  // namespace
}  // namespace ablate::train
