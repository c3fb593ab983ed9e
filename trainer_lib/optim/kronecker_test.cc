#include "trainer_lib/optim/kronecker.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

// A symmetric positive semi-definite factor, as the averages of outer products are.
torch::Tensor RandomFactor(int64_t n) {
  const torch::Tensor g = torch::randn({n, 2 * n});
  const torch::Tensor f = torch::matmul(g, g.t());
  return (f + f.t()) / 2;  // a float32 product is symmetric only up to rounding
}

TEST(KroneckerTest, EighBasesDiagonalizeInDescendingOrder) {
  torch::manual_seed(1);
  const std::vector<torch::Tensor> factors = {RandomFactor(6), RandomFactor(4)};
  std::vector<torch::Tensor> bases(2);
  EighBases({{&factors, &bases, nullptr}});
  for (size_t d = 0; d < 2; ++d) {
    const torch::Tensor q = bases[d];
    const int64_t n = q.size(0);
    EXPECT_TRUE(torch::allclose(torch::matmul(q.t(), q), torch::eye(n), 1e-5, 1e-5));
    const torch::Tensor diag = torch::matmul(torch::matmul(q.t(), factors[d]), q);
    const torch::Tensor eig = diag.diagonal();
    EXPECT_TRUE(torch::allclose(diag, torch::diag(eig), 1e-3, 1e-3));
    EXPECT_TRUE(torch::all(eig.slice(0, 0, n - 1) >= eig.slice(0, 1, n)).item<bool>());
  }
}

// Batching across parameters must not change any parameter's result: each stacked slice goes
// through the same kernels as a lone matrix.
TEST(KroneckerTest, BatchedPowerIterationEqualsOneByOne) {
  torch::manual_seed(2);
  std::vector<std::vector<torch::Tensor>> factors, bases_batched, bases_single;
  std::vector<torch::Tensor> v_batched, v_single;
  for (int i = 0; i < 3; ++i) {
    factors.push_back({RandomFactor(8), RandomFactor(5)});
    std::vector<torch::Tensor> q(2);
    EighBases({{&factors.back(), &q, nullptr}});
    factors.back()[0] += 0.1 * RandomFactor(8);  // drift, so the iteration has work to do
    bases_batched.push_back(q);
    bases_single.push_back({q[0].clone(), q[1].clone()});
    v_batched.push_back(torch::rand({8, 5}));
    v_single.push_back(v_batched.back().clone());
  }
  std::vector<Refresh> batch;
  for (int i = 0; i < 3; ++i) batch.push_back({&factors[i], &bases_batched[i], &v_batched[i]});
  PowerIterationBases(batch);
  for (int i = 0; i < 3; ++i) {
    PowerIterationBases({{&factors[i], &bases_single[i], &v_single[i]}});
    EXPECT_TRUE(torch::equal(bases_batched[i][0], bases_single[i][0])) << i;
    EXPECT_TRUE(torch::equal(bases_batched[i][1], bases_single[i][1])) << i;
    EXPECT_TRUE(torch::equal(v_batched[i], v_single[i])) << i;
  }
}

// Cholesky QR gives Householder's Q up to the signs of its columns, on the power iteration's
// own kind of input (F Q with Q near F's eigenbasis, columns of very different norms) and on a
// plain random matrix.
TEST(KroneckerTest, CholeskyQrEqualsHouseholderUpToColumnSigns) {
  torch::manual_seed(7);
  const torch::Tensor f = RandomFactor(24) * torch::logspace(0, -6, 24).unsqueeze(0);
  const torch::Tensor sym = (f + f.t()) / 2;
  const torch::Tensor near = std::get<1>(torch::linalg_eigh(sym + 1e-3 * RandomFactor(24)));
  const torch::Tensor a = torch::stack({torch::matmul(sym, near), torch::randn({24, 24})});
  const torch::Tensor householder = std::get<0>(torch::linalg_qr(a));
  const torch::Tensor q = CholeskyQr(a);
  ASSERT_EQ(q.scalar_type(), torch::kFloat32);
  const torch::Tensor signs = (q * householder).sum(-2, /*keepdim=*/true).sign();
  EXPECT_LT((q * signs - householder).abs().max().item<float>(), 1e-4);
  EXPECT_LT((torch::matmul(q.mT(), q) - torch::eye(24)).abs().max().item<float>(), 1e-5);
  // Cut into slices of one matrix each, the stack gives the same bits.
  EXPECT_TRUE(torch::equal(CholeskyQr(a, /*max_slice_elements=*/24 * 24), q));
}

// A rank-deficient member (a zero column: F with a null direction) fails Cholesky and is redone
// by Householder QR; the other member keeps its Cholesky result.
TEST(KroneckerTest, CholeskyQrFallsBackForRankDeficientMatrices) {
  torch::manual_seed(8);
  torch::Tensor deficient = torch::randn({16, 16});
  deficient.select(1, 3).zero_();
  const torch::Tensor a = torch::stack({deficient, torch::randn({16, 16})});
  const torch::Tensor q = CholeskyQr(a);
  EXPECT_FALSE(q.isnan().any().item<bool>());
  EXPECT_LT((torch::matmul(q.mT(), q) - torch::eye(16)).abs().max().item<float>(), 1e-5);
  // A QR decomposition: R = Q^T a is upper triangular.
  EXPECT_LT(torch::tril(torch::matmul(q.mT(), a), -1).abs().max().item<float>(), 1e-4);
}

TEST(KroneckerTest, ProjectBackUndoesProjectAndSkipsUndefinedBases) {
  torch::manual_seed(3);
  const std::vector<torch::Tensor> factors = {RandomFactor(6), torch::Tensor()};
  std::vector<torch::Tensor> bases(2);
  EighBases({{&factors, &bases, nullptr}});
  EXPECT_FALSE(bases[1].defined());
  const torch::Tensor x = torch::randn({6, 9});
  const torch::Tensor y = Project(x, bases, /*backward=*/false);
  EXPECT_TRUE(torch::allclose(y, torch::matmul(bases[0].t(), x), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(Project(y, bases, /*backward=*/true), x, 1e-5, 1e-5));
}

// Stacked projections and factor statistics give each slice the bits of its lone computation,
// for matrices (square, tall, with an unpreconditioned dimension) and vectors.
TEST(KroneckerTest, BatchedProjectionAndStatisticsEqualOneByOne) {
  torch::manual_seed(5);
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{6, 6}, {9, 4}, {4, 40}, {7}}) {
    std::vector<std::vector<torch::Tensor>> bases, factors_batched, factors_single;
    std::vector<torch::Tensor> grads;
    for (int i = 0; i < 3; ++i) {
      std::vector<torch::Tensor> f = ZeroFactors(shape, torch::TensorOptions(), 10, true);
      for (torch::Tensor& factor : f) {
        if (factor.defined()) factor.copy_(RandomFactor(factor.size(0)));
      }
      std::vector<torch::Tensor> q(f.size());
      EighBases({{&f, &q, nullptr}});
      bases.push_back(q);
      factors_batched.push_back(f);
      std::vector<torch::Tensor> copy;
      for (const torch::Tensor& factor : f) copy.push_back(factor.defined() ? factor.clone() : factor);
      factors_single.push_back(copy);
      grads.push_back(torch::randn(shape));
    }
    std::vector<torch::Tensor> stacked_bases;
    for (size_t d = 0; d < shape.size(); ++d) {
      stacked_bases.push_back(bases[0][d].defined()
                                  ? torch::stack({bases[0][d], bases[1][d], bases[2][d]})
                                  : torch::Tensor());
    }
    const torch::Tensor x = torch::stack(grads);
    for (const bool backward : {false, true}) {
      const torch::Tensor y = ProjectBatch(x, stacked_bases, backward);
      for (int64_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(torch::equal(y[i], Project(grads[i], bases[i], backward)))
            << shape.size() << "-D " << shape[0] << " " << i;
      }
    }
    AccumulateFactors(x, 0.9, {&factors_batched[0], &factors_batched[1], &factors_batched[2]});
    for (int i = 0; i < 3; ++i) {
      AccumulateFactors(grads[i], 0.9, factors_single[i]);
      for (size_t d = 0; d < shape.size(); ++d) {
        if (!factors_single[i][d].defined()) continue;
        EXPECT_TRUE(torch::equal(factors_batched[i][d], factors_single[i][d])) << i << " " << d;
      }
    }
  }
}

// F^(-1/(2k)) raised to the power 2k is F's inverse; k counts the defined factors.
TEST(KroneckerTest, InverseRootsInvertAtTheRightPower) {
  torch::manual_seed(4);
  const std::vector<torch::Tensor> two = {RandomFactor(5).to(torch::kF64),
                                          RandomFactor(3).to(torch::kF64)};
  const std::vector<torch::Tensor> one = {RandomFactor(5).to(torch::kF64), torch::Tensor()};
  std::vector<torch::Tensor> two_roots(2), one_roots(2);
  InverseRoots({{&two, &two_roots, nullptr}, {&one, &one_roots, nullptr}});
  const auto power = [](const torch::Tensor& m, int k) { return torch::linalg_matrix_power(m, k); };
  for (size_t d = 0; d < 2; ++d) {
    const torch::Tensor eye = torch::eye(two[d].size(0), torch::kF64);
    EXPECT_TRUE(torch::allclose(torch::matmul(power(two_roots[d], 4), two[d]), eye, 1e-8, 1e-8));
  }
  EXPECT_TRUE(torch::allclose(torch::matmul(power(one_roots[0], 2), one[0]),
                              torch::eye(5, torch::kF64), 1e-8, 1e-8));
  EXPECT_FALSE(one_roots[1].defined());
}

TEST(KroneckerTest, FactorsFollowMaxDimAndVectorRule) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  const auto matrix = ZeroFactors({4, 20}, options, 10, false);
  EXPECT_TRUE(matrix[0].defined());
  EXPECT_FALSE(matrix[1].defined());
  EXPECT_FALSE(ZeroFactors({4}, options, 10, false)[0].defined());
  EXPECT_TRUE(ZeroFactors({4}, options, 10, true)[0].defined());
}

TEST(KroneckerTest, GroupBySizeKeepsFirstSeenOrder) {
  const std::vector<torch::Tensor> mats = {torch::zeros({3, 3}), torch::zeros({2, 2}),
                                           torch::zeros({3, 3}), torch::zeros({3, 3}, torch::kF64)};
  const auto groups = GroupBySize(mats);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0], (std::vector<size_t>{0, 2}));
  EXPECT_EQ(groups[1], (std::vector<size_t>{1}));
  EXPECT_EQ(groups[2], (std::vector<size_t>{3}));
}

TEST(KroneckerTest, GroupBySizeCutsGroupsAtTheElementBound) {
  const std::vector<torch::Tensor> mats(5, torch::zeros({3, 3}));
  // 9 elements each: 20 holds two per group; a bound below one matrix still takes one.
  const auto pairs = GroupBySize(mats, /*max_elements=*/20);
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0], (std::vector<size_t>{0, 1}));
  EXPECT_EQ(pairs[1], (std::vector<size_t>{2, 3}));
  EXPECT_EQ(pairs[2], (std::vector<size_t>{4}));
  EXPECT_EQ(GroupBySize(mats, /*max_elements=*/4).size(), 5u);
}

}  // namespace
}  // namespace ablate::train
