#include "trainer_lib/optim/soap.h"

#include <cmath>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

std::vector<torch::optim::OptimizerParamGroup> OneGroup(const std::vector<torch::Tensor>& ps) {
  return {torch::optim::OptimizerParamGroup(ps)};
}

void SetGrads(const std::vector<torch::Tensor>& params, int64_t seed) {
  torch::manual_seed(seed);
  for (const torch::Tensor& p : params) p.mutable_grad() = torch::randn_like(p);
}

TEST(SoapTest, FirstStepOnlyGathersStatistics) {
  torch::Tensor w = torch::randn({5, 3});
  const torch::Tensor before = w.clone();
  Soap soap(OneGroup({w}));
  SetGrads({w}, 1);
  soap.step();
  EXPECT_TRUE(torch::equal(w, before));
  SetGrads({w}, 2);
  soap.step();
  EXPECT_FALSE(torch::equal(w, before));
}

// A vector without precondition_1d keeps the identity basis, where SOAP is Adam that starts a
// step late, with decoupled weight decay after the update.
TEST(SoapTest, UnpreconditionedVectorIsAdam) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
  torch::Tensor p = torch::randn({7});
  torch::Tensor expected = p.clone();
  Soap soap(OneGroup({p}), SoapOptions(lr).beta1(b1).beta2(b2).eps(eps).weight_decay(wd));
  torch::Tensor m = torch::zeros({7}), v = torch::zeros({7});
  for (int t = 0; t < 5; ++t) {
    SetGrads({p}, 10 + t);
    const torch::Tensor g = p.grad().clone();
    soap.step();
    if (t == 0) continue;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double size = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    expected = (expected - size * m / (v.sqrt() + eps)) * (1 - lr * wd);
  }
  EXPECT_TRUE(torch::allclose(p, expected, 1e-6, 1e-7));
}

// Save after some steps, load into a new optimizer over a copy of the parameters, and both
// continue through a basis refresh to the same bits.
TEST(SoapTest, SaveLoadContinuesBitIdentically) {
  torch::manual_seed(0);
  const std::vector<torch::Tensor> a = {torch::randn({6, 4}), torch::randn({4}),
                                        torch::randn({3, 12})};
  const SoapOptions options =
      SoapOptions(0.01).precondition_frequency(3).max_precond_dim(8).precondition_1d(true);
  Soap first(OneGroup(a), options);
  for (int t = 0; t < 5; ++t) {
    SetGrads(a, 100 + t);
    first.step();
  }
  torch::serialize::OutputArchive out;
  first.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);

  std::vector<torch::Tensor> b;
  for (const torch::Tensor& p : a) b.push_back(p.clone());
  Soap second(OneGroup(b), SoapOptions(1.0));  // options come back from the archive
  torch::serialize::InputArchive in;
  std::istringstream read(bytes.str());
  in.load_from(read);
  second.load(in);
  for (int t = 5; t < 9; ++t) {
    SetGrads(a, 100 + t);
    SetGrads(b, 100 + t);
    first.step();
    second.step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

}  // namespace
}  // namespace ablate::train
