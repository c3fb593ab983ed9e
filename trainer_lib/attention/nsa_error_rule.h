// The NSA issue's error rule for tests: a fast path's largest absolute error against the fp32
// reference is at most twice PyTorch's own bf16 error, where PyTorch's is the same reference run
// in bf16 on the same bf16-rounded inputs, both measured against the reference in fp32.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_ERROR_RULE_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_ERROR_RULE_H_

#include <cstdint>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {

// Max |a - b| over all elements (NaN counts as infinite), with what a failure should show.
struct NsaError {
  double max = 0;
  int64_t first_over = -1;  // first flat index over the bound, -1 if none
};

inline NsaError NsaMeasure(const torch::Tensor& a, const torch::Tensor& b, double bound) {
  torch::Tensor diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().flatten();
  diff = torch::where(torch::isnan(diff), std::numeric_limits<double>::infinity(), diff);
  NsaError e;
  e.max = diff.numel() > 0 ? diff.max().item<double>() : 0.0;
  if (bound >= 0) {
    torch::Tensor over = torch::nonzero(diff > bound);
    if (over.size(0) > 0) e.first_over = over[0][0].item<int64_t>();
  }
  return e;
}

// Checks `ours` against `exact` within twice `torch_bf16`'s error, printing `what`, both errors
// and the first element over the bound. `label` names ours in the printed line ("kernel",
// "fast").
inline void NsaExpectWithinRule(const std::string& what, const char* label,
                                const torch::Tensor& ours, const torch::Tensor& torch_bf16,
                                const torch::Tensor& exact) {
  const double baseline = NsaMeasure(torch_bf16, exact, -1).max;
  const double bound = 2 * baseline + 1e-6;
  const NsaError e = NsaMeasure(ours, exact, bound);
  std::ostringstream where;
  if (e.first_over >= 0) {
    const double o = ours.flatten()[e.first_over].item<double>();
    const double x = exact.flatten()[e.first_over].item<double>();
    where << "; first over at flat index " << e.first_over << " of shape " << exact.sizes()
          << ": ours " << o << ", fp32 " << x;
  }
  EXPECT_LE(e.max, bound) << what << ": " << label << " error " << e.max
                          << ", PyTorch bf16 error " << baseline << where.str();
  std::cout << "  " << what << ": " << label << " " << e.max << ", PyTorch bf16 " << baseline
            << "\n";
}

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_ERROR_RULE_H_
