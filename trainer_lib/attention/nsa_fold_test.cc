#include "trainer_lib/attention/nsa_fold.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <vector>

namespace ablate::train {
namespace {

// The fold written as pad, reshape and permute (the form nsa_fold.h replaces): the oracle.
torch::Tensor PaddedFold(const torch::Tensor& x, int64_t l) {
  const int64_t b = x.size(0), h = x.size(1), t = x.size(2), d = x.size(3), nf = t / l;
  const torch::Tensor queries =
      torch::constant_pad_nd(x.narrow(2, l - 1, t - l + 1), {0, 0, 0, nf * l - (t - l + 1)});
  return queries.reshape({b, h, nf, l, d}).permute({0, 1, 3, 2, 4}).reshape({b, h * l, nf, d});
}

torch::Tensor PaddedUnfold(const torch::Tensor& x, int64_t h, int64_t l, int64_t t, double fill) {
  const int64_t b = x.size(0), nf = x.size(2);
  const torch::Tensor rows =
      x.reshape({b, h, l, nf, -1}).permute({0, 1, 3, 2, 4}).reshape({b, h, nf * l, -1});
  return torch::constant_pad_nd(rows.narrow(2, 0, t - l + 1), {0, 0, l - 1, 0}, fill);
}

// (T, l): a sequence of one block, one short of two blocks (every slot a query), a remainder,
// blocks of one token, and a length that is a multiple of the block.
struct Case {
  int64_t t, l;
};
constexpr Case kCases[] = {{8, 8}, {15, 8}, {43, 8}, {7, 1}, {30, 3}, {64, 16}};

TEST(NsaFoldTest, FoldAndItsGradientEqualThePaddedForm) {
  torch::manual_seed(7);
  for (const Case& c : kCases) {
    SCOPED_TRACE(testing::Message() << "T " << c.t << " l " << c.l);
    // x with strides of a [B, T, H, X] tensor seen as [B, H, T, X], as q often is.
    const torch::Tensor base = torch::randn({2, c.t, 3, 4}).transpose(1, 2);
    const torch::Tensor x = base.detach().requires_grad_(true);
    const torch::Tensor x_ref = base.detach().requires_grad_(true);
    const torch::Tensor folded = NsaFoldRows(x, c.l, {3})[0];
    const torch::Tensor expected = PaddedFold(x_ref, c.l);
    ASSERT_EQ(folded.sizes(), expected.sizes());
    EXPECT_TRUE(torch::equal(folded, expected));
    const torch::Tensor weights = torch::randn(folded.sizes());
    (folded * weights).sum().backward();
    (expected * weights).sum().backward();
    EXPECT_TRUE(torch::equal(x.grad(), x_ref.grad()));
  }
}

TEST(NsaFoldTest, UnfoldAndItsGradientEqualThePaddedForm) {
  torch::manual_seed(8);
  constexpr double kFills[] = {0.0, -std::numeric_limits<double>::infinity()};
  for (const Case& c : kCases) {
    for (double fill : kFills) {
      SCOPED_TRACE(testing::Message() << "T " << c.t << " l " << c.l << " fill " << fill);
      // Folded rows with strides of [B, NF, H l, X], as cuDNN may lay its output out.
      const torch::Tensor base = torch::randn({2, c.t / c.l, 3 * c.l, 5}).transpose(1, 2);
      const torch::Tensor x = base.detach().requires_grad_(true);
      const torch::Tensor x_ref = base.detach().requires_grad_(true);
      const torch::Tensor rows = NsaUnfoldRows({x}, 3, c.l, c.t, fill);
      const torch::Tensor expected = PaddedUnfold(x_ref, 3, c.l, c.t, fill);
      ASSERT_EQ(rows.sizes(), expected.sizes());
      EXPECT_TRUE(torch::equal(rows, expected));
      // The rows that see no block carry the fill; only the others reach the gradient.
      const torch::Tensor weights = torch::randn(rows.sizes());
      (rows.narrow(2, c.l - 1, c.t - c.l + 1) * weights.narrow(2, c.l - 1, c.t - c.l + 1))
          .sum()
          .backward();
      (expected.narrow(2, c.l - 1, c.t - c.l + 1) * weights.narrow(2, c.l - 1, c.t - c.l + 1))
          .sum()
          .backward();
      EXPECT_TRUE(torch::equal(x.grad(), x_ref.grad()));
    }
  }
}

TEST(NsaFoldTest, FoldThenUnfoldGivesBackTheQueriesThatSeeABlock) {
  const torch::Tensor x = torch::randn({1, 2, 43, 4});
  const torch::Tensor back = NsaUnfoldRows(NsaFoldRows(x, 8, {1, 1}), 2, 8, 43, 0.0);
  EXPECT_TRUE(torch::equal(back.narrow(2, 7, 36), x.narrow(2, 7, 36)));
  EXPECT_TRUE(torch::equal(back.narrow(2, 0, 7), torch::zeros({1, 2, 7, 4})));
}

TEST(NsaFoldTest, RunsOfHeadsUnfoldAsTheirJoinedWhole) {
  torch::manual_seed(9);
  // Runs of 1, 2 and 2 heads of l = 8 (T = 43, NF = 5): each run lands in its own heads.
  const torch::Tensor base = torch::randn({2, 5 * 8, 5, 4});
  const torch::Tensor whole = base.detach().requires_grad_(true);
  const torch::Tensor runs = base.detach().requires_grad_(true);
  const torch::Tensor expected = NsaUnfoldRows({whole}, 5, 8, 43, -1.0);
  const torch::Tensor rows =
      NsaUnfoldRows({runs.narrow(1, 0, 8), runs.narrow(1, 8, 16), runs.narrow(1, 24, 16)}, 5, 8,
                    43, -1.0);
  EXPECT_TRUE(torch::equal(rows, expected));
  const torch::Tensor weights = torch::randn(rows.sizes());
  (expected * weights).sum().backward();
  (rows * weights).sum().backward();
  EXPECT_TRUE(torch::equal(runs.grad(), whole.grad()));
}

TEST(NsaFoldTest, RunsOfHeadsFoldAsTheWholeFolded) {
  torch::manual_seed(10);
  // Runs of 1, 2 and 2 of 5 heads (T = 43, l = 8): run i is the whole fold's heads of run i.
  const torch::Tensor base = torch::randn({2, 43, 5, 4}).transpose(1, 2);
  const torch::Tensor whole = base.detach().requires_grad_(true);
  const torch::Tensor runs = base.detach().requires_grad_(true);
  const torch::Tensor expected = NsaFoldRows(whole, 8, {5})[0];
  const std::vector<torch::Tensor> folded = NsaFoldRows(runs, 8, {1, 2, 2});
  ASSERT_EQ(folded.size(), 3u);
  EXPECT_TRUE(torch::equal(folded[0], expected.narrow(1, 0, 8)));
  EXPECT_TRUE(torch::equal(folded[1], expected.narrow(1, 8, 16)));
  EXPECT_TRUE(torch::equal(folded[2], expected.narrow(1, 24, 16)));
  // The second run reaches no loss: its heads get 0, the others the whole fold's gradient.
  const torch::Tensor weights = torch::randn(expected.sizes());
  weights.narrow(1, 8, 16).zero_();
  (expected * weights).sum().backward();
  ((folded[0] * weights.narrow(1, 0, 8)).sum() + (folded[2] * weights.narrow(1, 24, 16)).sum())
      .backward();
  EXPECT_TRUE(torch::equal(runs.grad(), whole.grad()));
}

// Into a given tensor, widened to fp32, the first l - 1 rows zeroed over what was there: the
// padded form's rows. On the CPU (LibTorch's copies) and, with a GPU, on CUDA at head dims 64,
// 128 and 256, where the kernel takes bf16 into fp32.
TEST(NsaFoldTest, UnfoldIntoAGivenTensorEqualsThePaddedForm) {
  torch::manual_seed(11);
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.push_back(torch::kCUDA);
  for (const torch::Device device : devices) {
    for (const Case& c : kCases) {
      for (int64_t d : {8, 64, 128, 256}) {
        SCOPED_TRACE(testing::Message() << device << " T " << c.t << " l " << c.l << " D " << d);
        const auto opts = torch::TensorOptions().device(device);
        const torch::Tensor folded =
            torch::randn({2, 3 * c.l, c.t / c.l, d}, opts).to(torch::kBFloat16);
        const torch::Tensor rows = torch::full({2, 3, c.t, d}, 7.0, opts);
        NsaUnfoldRowsInto(rows, folded, c.l);
        EXPECT_TRUE(torch::equal(rows, PaddedUnfold(folded, 3, c.l, c.t, 0.0).to(torch::kFloat32)));
      }
    }
  }
}

TEST(NsaFoldTest, RefusesAFoldThatDoesNotMatch) {
  // Folded heads not H l, NF not T / l.
  EXPECT_THROW(NsaUnfoldRowsInto(torch::empty({1, 2, 12, 4}), torch::randn({1, 6, 3, 4}), 4),
               c10::Error);
  EXPECT_THROW(NsaUnfoldRowsInto(torch::empty({1, 2, 12, 4}), torch::randn({1, 8, 2, 4}), 4),
               c10::Error);
  EXPECT_THROW(NsaFoldRows(torch::randn({1, 2, 5, 4}), 8, {2}), c10::Error);  // T < l
  EXPECT_THROW(NsaFoldRows(torch::randn({1, 2, 9, 4}), 8, {1}), c10::Error);  // runs' heads
  EXPECT_THROW(NsaFoldRows(torch::randn({1, 2, 9, 4}), 8, {2, 0}), c10::Error);
  EXPECT_THROW(NsaUnfoldRows({torch::randn({1, 6, 3, 4})}, 2, 4, 12, 0.0), c10::Error);  // H l
  EXPECT_THROW(NsaUnfoldRows({torch::randn({1, 8, 2, 4})}, 2, 4, 12, 0.0), c10::Error);  // NF
  // Runs whose heads do not sum to `heads`, or whose NF differ.
  EXPECT_THROW(NsaUnfoldRows({torch::randn({1, 4, 3, 4}), torch::randn({1, 4, 3, 4})}, 3, 4, 12,
                             0.0),
               c10::Error);
  EXPECT_THROW(NsaUnfoldRows({torch::randn({1, 4, 3, 4}), torch::randn({1, 4, 2, 4})}, 2, 4, 12,
                             0.0),
               c10::Error);
}

}  // namespace
}  // namespace ablate::train
