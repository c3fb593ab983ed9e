#include "trainer_lib/optim/soap4bit.h"

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

TEST(Soap4bitTest, StateIsAtMostEightBytesPerParameter) {
  // Square, 1:3, 3:1, a vector and one dimension above max_precond_dim.
  const std::vector<torch::Tensor> params = {torch::randn({96, 96}), torch::randn({64, 192}),
                                             torch::randn({192, 64}), torch::randn({64}),
                                             torch::randn({300, 32})};
  for (const torch::Tensor& p : params) {
    torch::Tensor q = p.clone();
    Soap4bit soap(OneGroup({q}), SoapOptions().max_precond_dim(256));
    for (int t = 0; t < 3; ++t) {
      SetGrads({q}, t);
      soap.step();
    }
    const double per_param = static_cast<double>(soap.StateBytes()) / q.numel();
    EXPECT_LE(per_param, 8.0) << q.sizes();
    EXPECT_GT(per_param, 1.0) << q.sizes();  // moments at least: the state is all counted
  }
}

TEST(Soap4bitTest, SaveLoadContinuesBitIdentically) {
  torch::manual_seed(0);
  const std::vector<torch::Tensor> a = {torch::randn({6, 4}), torch::randn({4}),
                                        torch::randn({3, 12})};
  const SoapOptions options = SoapOptions(0.01).precondition_frequency(3).max_precond_dim(8);
  Soap4bit first(OneGroup(a), options);
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
  Soap4bit second(OneGroup(b), SoapOptions(1.0));
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
