#include "trainer_lib/train/nonfinite.h"

#include <cmath>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace ablate::train {
namespace {

std::string Describe(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

}  // namespace

NonFiniteWatch::NonFiniteWatch(const c10::Device& device)
    : first_step_(torch::zeros({}, torch::dtype(torch::kInt64).device(device))),
      loss_(torch::zeros({}, torch::dtype(torch::kFloat32).device(device))),
      grad_norm_(torch::zeros({}, torch::dtype(torch::kFloat32).device(device))) {}

void NonFiniteWatch::Record(int64_t step, const at::Tensor& loss, const at::Tensor& grad_norm) {
  const torch::Tensor bad =
      torch::logical_not(torch::isfinite(loss) & torch::isfinite(grad_norm));
  const torch::Tensor first = bad & (first_step_ == 0);
  first_step_ = torch::where(first, torch::full_like(first_step_, step), first_step_);
  loss_ = torch::where(first, loss, loss_);
  grad_norm_ = torch::where(first, grad_norm, grad_norm_);
}

std::optional<std::string> NonFiniteWatch::FirstProblem() const {
  const int64_t step = first_step_.item<int64_t>();
  if (step == 0) return std::nullopt;
  const double loss = loss_.item<double>();
  if (!std::isfinite(loss)) {
    return absl::StrCat("step ", step, ": non-finite loss (", Describe(loss), ")");
  }
  return absl::StrCat("step ", step, ": non-finite gradient (norm ",
                      Describe(grad_norm_.item<double>()), ")");
}

}  // namespace ablate::train
