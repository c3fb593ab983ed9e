#include "trainer_lib/attention/nsa_blocks.h"

#include <cmath>
#include <set>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/attention/nsa.h"

namespace ablate::train {
namespace {

using torch::indexing::Slice;

NsaShape Learned(int64_t kernel, int64_t stride, int64_t block) {
  NsaShape s;
  s.block_size = block;
  s.selected_blocks = 4;
  s.window = 5;
  s.learned_compression = true;
  s.compression_kernel = kernel;
  s.compression_stride = stride;
  return s;
}

NsaCompressionWeights MeanWeights(int64_t hkv, int64_t l, int64_t d, torch::Dtype dtype) {
  torch::Tensor w = NsaMeanCompressionWeight(hkv, l, d).to(dtype);
  torch::Tensor pe = torch::zeros({hkv, l, d}, dtype);
  return {w, pe, w.clone(), pe.clone()};
}

// The set of kept blocks in one row of NsaTopBlocks' output.
std::set<int64_t> Kept(const torch::Tensor& idx, int64_t row) {
  std::set<int64_t> kept;
  for (int64_t s = 0; s < idx.size(3); ++s) {
    const int64_t c = idx[0][0][row][s].item<int64_t>();
    if (c >= 0) kept.insert(c);
  }
  return kept;
}

TEST(NsaBlocksTest, MeanInitialisedLearnedCompressionWithKernelStrideAndBlockEqualIsMeanPooling) {
  torch::manual_seed(1);
  torch::Tensor x = torch::randn({2, 3, 37, 5}, torch::kFloat64);
  const NsaCompressionWeights w = MeanWeights(3, 4, 5, torch::kFloat64);
  torch::Tensor learned = NsaLearnedCompress(x, w.k_weight, w.k_pe, 4, 4);
  ASSERT_EQ(learned.sizes(), NsaMeanPool(x, 4).sizes());  // 9 windows, the partial one left out
  EXPECT_LT((learned - NsaMeanPool(x, 4)).abs().max().item<double>(), 1e-14);

  // Through the whole attention: the same outputs as fla's mean pooling.
  torch::Tensor q = torch::randn({2, 6, 37, 5}), k = torch::randn({2, 3, 37, 5});
  torch::Tensor v = torch::randn({2, 3, 37, 5}), gates = torch::rand({2, 6, 37, 3});
  NsaOptions mean;
  mean.shape = Learned(4, 4, 4);
  mean.shape.learned_compression = false;
  NsaOptions as_learned = mean;
  as_learned.shape.learned_compression = true;
  torch::Tensor expected = NsaAttend(q, k, v, gates, mean);
  torch::Tensor ours =
      NsaAttend(q, k, v, gates, as_learned, MeanWeights(3, 4, 5, torch::kFloat32));
  EXPECT_LT((ours - expected).abs().max().item<double>(), 1e-6);
}

TEST(NsaBlocksTest, LearnedCompressionGradientsMatchFiniteDifferences) {
  torch::manual_seed(2);
  // Kernel 4, stride 2 over 11 tokens: 4 overlapping windows; 2 heads of dim 3.
  torch::Tensor x = torch::randn({1, 2, 11, 3}, torch::kFloat64);
  torch::Tensor w = torch::randn({2, 12, 3}, torch::kFloat64);
  torch::Tensor pe = torch::randn({2, 4, 3}, torch::kFloat64);
  torch::Tensor r = torch::randn({1, 2, 4, 3}, torch::kFloat64);
  auto loss = [&](const torch::Tensor& xx, const torch::Tensor& ww, const torch::Tensor& pp) {
    return (NsaLearnedCompress(xx, ww, pp, 4, 2).pow(2) * r).sum();
  };
  std::vector<torch::Tensor> leaves = {x.clone().requires_grad_(), w.clone().requires_grad_(),
                                       pe.clone().requires_grad_()};
  loss(leaves[0], leaves[1], leaves[2]).backward();
  const double h = 1e-6;
  for (size_t which = 0; which < leaves.size(); ++which) {
    torch::Tensor analytic = leaves[which].grad().flatten();
    for (int64_t i = 0; i < analytic.numel(); ++i) {
      std::vector<torch::Tensor> plus = {x.clone(), w.clone(), pe.clone()};
      std::vector<torch::Tensor> minus = {x.clone(), w.clone(), pe.clone()};
      plus[which].view(-1)[i] += h;
      minus[which].view(-1)[i] -= h;
      const double numeric = (loss(plus[0], plus[1], plus[2]).item<double>() -
                              loss(minus[0], minus[1], minus[2]).item<double>()) /
                             (2 * h);
      EXPECT_NEAR(analytic[i].item<double>(), numeric, 1e-6 * (1 + std::abs(numeric)))
          << "input " << which << " element " << i;
    }
  }
}

TEST(NsaBlocksTest, EquationNineSumsTheWindowsEachBlockShares) {
  // l = 4, d = 2, l' = 8: block j shares 1, 2, 2, 2, 1 stride segments with windows
  // 4j - 1 .. 4j + 3 (window i covers tokens 2i .. 2i + 3).
  torch::Tensor p = torch::tensor({1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6}, torch::kFloat64);
  torch::Tensor slc = NsaSelectionScores(p.view({1, 7}), 2, Learned(4, 2, 8));
  // Block 0: 2 (1 + 10 + 100) + 1000; block 1: 1000 + 2 (1e4 + 1e5 + 1e6) (window 7 absent).
  EXPECT_EQ(slc[0][0].item<double>(), 1222.0);
  EXPECT_EQ(slc[0][1].item<double>(), 2221000.0);

  // The paper's l = 32, d = 16, l' = 64: window 3 (tokens 48-79) is half in block 0 and half
  // in block 1; window 4 (tokens 64-95) lies wholly in block 1.
  const NsaShape paper = Learned(32, 16, 64);
  auto one_hot = [](int64_t i) { return torch::zeros({10}).index_put_({i}, 1.0); };
  EXPECT_TRUE(
      torch::equal(NsaSelectionScores(one_hot(3), 3, paper), torch::tensor({1.f, 1.f, 0.f})));
  EXPECT_TRUE(
      torch::equal(NsaSelectionScores(one_hot(4), 3, paper), torch::tensor({0.f, 2.f, 0.f})));

  // With l = d = l' it is the identity, zero past the windows given.
  NsaShape pooled;
  pooled.block_size = 4;
  EXPECT_TRUE(torch::equal(NsaSelectionScores(torch::tensor({0.25f, 0.75f}), 3, pooled),
                           torch::tensor({0.25f, 0.75f, 0.f})));
}

TEST(NsaBlocksTest, ThePapersRuleRanksByScoreAloneWhereFlasForcesTheFirstAndLocalBlocks) {
  NsaShape s;
  s.block_size = 4;
  s.selected_blocks = 3;
  // A query at t = 21 (own block 5, five blocks ended) and one at t = 2 (no block ended).
  torch::Tensor score = torch::tensor({0.05f, 0.15f, 0.5f, 0.3f, 0.f, 0.f}).view({1, 1, 1, 6});
  auto at = [&](int64_t t, const NsaShape& shape) {
    return NsaTopBlocks(t == 21 ? score : torch::zeros_like(score), t, shape);
  };
  EXPECT_EQ(Kept(at(21, s), 0), (std::set<int64_t>{0, 4, 5}));  // fla: first, previous, own
  EXPECT_EQ(Kept(at(2, s), 0), (std::set<int64_t>{0}));          // its own block, forced
  NsaShape paper = s;
  paper.paper_selection = true;
  torch::Tensor idx = at(21, paper);
  EXPECT_EQ(idx[0][0][0][0].item<int64_t>(), 2);  // in descending score
  EXPECT_EQ(Kept(idx, 0), (std::set<int64_t>{1, 2, 3}));
  EXPECT_EQ(Kept(at(2, paper), 0), (std::set<int64_t>{}));  // nothing scored yet
  paper.selected_blocks = 1;  // fewer than fla forces: the paper's rule alone takes it
  EXPECT_EQ(Kept(at(21, paper), 0), (std::set<int64_t>{2}));

  // Under learned compression (l = 4, d = 2, l' = 8) a block holds a score once the first
  // window overlapping it has ended: block 1's first is window 3 (tokens 6-9), ended at t = 9.
  NsaShape learned = Learned(4, 2, 8);
  learned.paper_selection = true;
  torch::Tensor two = torch::full({1, 1, 1, 2}, 0.5f);
  EXPECT_EQ(Kept(NsaTopBlocks(two, 8, learned), 0), (std::set<int64_t>{0}));
  EXPECT_EQ(Kept(NsaTopBlocks(two, 9, learned), 0), (std::set<int64_t>{0, 1}));
}

TEST(NsaBlocksTest, UnderThePapersRuleAQueryWithNothingSelectedReadsZeroWithoutNaN) {
  torch::manual_seed(3);
  NsaOptions o;
  o.shape = Learned(4, 2, 8);
  o.shape.paper_selection = true;
  torch::Tensor q = torch::randn({1, 2, 19, 4}).requires_grad_();
  torch::Tensor k = torch::randn({1, 1, 19, 4}), v = torch::randn({1, 1, 19, 4});
  torch::Tensor gates = torch::zeros({1, 2, 19, 3});
  gates.index_put_({"...", 1}, 1.0);  // the selected branch alone
  NsaCompressionWeights w = MeanWeights(1, 4, 4, torch::kFloat32);
  w.k_weight.requires_grad_();
  torch::Tensor out = NsaAttend(q, k, v, gates, o, w);
  // The first window ends at t = 3: before it, nothing is selected.
  EXPECT_TRUE(torch::equal(out.index({Slice(), Slice(), Slice(0, 3)}),
                           torch::zeros({1, 2, 3, 4})));
  EXPECT_GT(out.index({Slice(), Slice(), 3}).abs().sum().item<double>(), 0);
  out.sum().backward();
  EXPECT_TRUE(torch::isfinite(q.grad()).all().item<bool>());
}

}  // namespace
}  // namespace ablate::train
