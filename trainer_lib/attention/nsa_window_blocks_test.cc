// NsaWindowBlockIndices on the CPU (no kernels needed): the blocks each query's window touches,
// and the reference's selected branch over them, which is the window branch the kernels then
// compute (nsa_cuda_test.cc).
#include <algorithm>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/attention/nsa.h"
#include "trainer_lib/attention/nsa_blocks.h"
#include "trainer_lib/attention/nsa_cuda.h"

namespace ablate::train {
namespace {

// The window's block indices against a loop over each query's window, on the CPU (no kernels
// needed): exact blocks, ascending, -1 after them, and the slot count the widest window needs,
// reached by some query once the sequence is long enough.
TEST(NsaWindowBlockIndicesTest, MatchEachQuerysWindow) {
  struct Shape {
    int64_t t, l, w;
  };
  for (const Shape s : {Shape{1000, 64, 512}, Shape{1001, 64, 100}, Shape{777, 100, 100},
                        Shape{300, 100, 512}, Shape{37, 64, 512}, Shape{200, 7, 1},
                        Shape{200, 16, 17}, Shape{130, 64, 64}}) {
    const torch::Tensor idx = NsaWindowBlockIndices(2, 3, s.t, s.l, s.w, torch::kCPU);
    const int64_t blocks = (s.t + s.l - 1) / s.l;
    const int64_t slots = std::min((s.w - 1 + s.l - 1) / s.l + 1, blocks);
    ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{2, 3, s.t, slots}))
        << "T=" << s.t << " l=" << s.l << " w=" << s.w;
    ASSERT_EQ(idx.scalar_type(), torch::kInt32);
    ASSERT_TRUE(idx.is_contiguous());
    EXPECT_TRUE(torch::equal(idx, idx.select(0, 0).select(0, 0).expand_as(idx)));
    const auto a = idx.accessor<int32_t, 4>();
    int64_t widest = 0;
    for (int64_t t = 0; t < s.t; ++t) {
      const int64_t first = std::max<int64_t>(0, t - s.w + 1) / s.l, last = t / s.l;
      widest = std::max(widest, last - first + 1);
      for (int64_t j = 0; j < slots; ++j) {
        const int64_t want = first + j <= last ? first + j : -1;
        ASSERT_EQ(a[1][2][t][j], want)
            << "T=" << s.t << " l=" << s.l << " w=" << s.w << " t=" << t << " slot " << j;
      }
    }
    if (s.t >= s.w + s.l) {
      EXPECT_EQ(widest, slots) << "T=" << s.t << " l=" << s.l << " w=" << s.w;
    }
  }
}

// What the fast path relies on, in the reference's fp32 on the CPU: the selected branch over the
// window's blocks with the window's lower bound is the window branch, outputs and gradients.
TEST(NsaWindowBlockIndicesTest, SelectedBranchOverThemIsTheWindowBranch) {
  struct Shape {
    int64_t t, l, w;
  };
  for (const Shape s : {Shape{300, 64, 128}, Shape{301, 64, 100}, Shape{250, 100, 37},
                        Shape{40, 16, 512}}) {
    torch::manual_seed(s.t + s.w);
    const int64_t hkv = 2, d = 16;
    const torch::Tensor q0 = torch::randn({2, 6, s.t, d}), d_o = torch::randn({2, 6, s.t, d});
    const torch::Tensor k0 = torch::randn({2, hkv, s.t, d}), v0 = torch::randn({2, hkv, s.t, d});
    const torch::Tensor idx = NsaWindowBlockIndices(2, hkv, s.t, s.l, s.w, torch::kCPU);
    auto run = [&](bool window_branch) {
      torch::Tensor q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true);
      torch::Tensor v = v0.clone().requires_grad_(true);
      torch::Tensor o = window_branch ? NsaWindowReference(q, k, v, s.w)
                                      : NsaSelectedReference(q, k, v, idx, s.l, 0, s.w);
      o.backward(d_o);
      return std::vector<torch::Tensor>{o.detach(), q.grad(), k.grad(), v.grad()};
    };
    const std::vector<torch::Tensor> window = run(true), selected = run(false);
    for (int i = 0; i < 4; ++i) {
      EXPECT_TRUE(torch::allclose(selected[i], window[i], 1e-5, 1e-5))
          << "T=" << s.t << " l=" << s.l << " w=" << s.w << " output " << i << ": "
          << (selected[i] - window[i]).abs().max().item<double>();
    }
  }
}

}  // namespace
}  // namespace ablate::train
