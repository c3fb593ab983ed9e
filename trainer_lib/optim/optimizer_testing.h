// Helpers for the optimizers' unit tests: one parameter group, fresh seeded gradients, and the
// save → load → continue check every optimizer must pass. Test-only; header-only.
#ifndef ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_TESTING_H_
#define ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_TESTING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train::testing {

inline std::vector<torch::optim::OptimizerParamGroup> OneGroup(
    const std::vector<torch::Tensor>& params) {
  return {torch::optim::OptimizerParamGroup(params)};
}

// Gives every parameter a standard-normal gradient drawn from `seed`.
inline void SetGrads(const std::vector<torch::Tensor>& params, int64_t seed) {
  torch::manual_seed(seed);
  for (const torch::Tensor& p : params) p.mutable_grad() = torch::randn_like(p);
}

// Builds an optimizer over `params`; the options it is given are the test's.
using MakeOptimizerFn =
    std::function<std::unique_ptr<torch::optim::Optimizer>(const std::vector<torch::Tensor>&)>;

// Runs `make(a)` for `before` steps and saves it; loads that archive into `make_blank` over a
// copy of the parameters (the options must come back from the archive); then steps both
// `after` more times on the same gradients and expects the same bits in every parameter.
inline void ExpectSaveLoadContinuesBitIdentically(const std::vector<torch::Tensor>& a,
                                                  const MakeOptimizerFn& make,
                                                  const MakeOptimizerFn& make_blank, int before,
                                                  int after) {
  std::unique_ptr<torch::optim::Optimizer> first = make(a);
  for (int t = 0; t < before; ++t) {
    SetGrads(a, 100 + t);
    first->step();
  }
  torch::serialize::OutputArchive out;
  first->save(out);
  std::ostringstream bytes;
  out.save_to(bytes);

  std::vector<torch::Tensor> b;
  for (const torch::Tensor& p : a) b.push_back(p.clone());
  std::unique_ptr<torch::optim::Optimizer> second = make_blank(b);
  torch::serialize::InputArchive in;
  std::istringstream read(bytes.str());
  in.load_from(read);
  second->load(in);
  for (int t = before; t < before + after; ++t) {
    SetGrads(a, 100 + t);
    SetGrads(b, 100 + t);
    first->step();
    second->step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

}  // namespace ablate::train::testing

#endif  // ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_TESTING_H_
