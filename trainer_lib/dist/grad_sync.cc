#include "trainer_lib/dist/grad_sync.h"

#include <algorithm>
#include <utility>

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

namespace ablate::train::dist {
namespace {

class ReadyHook : public torch::autograd::PostAccumulateGradHook {
 public:
  ReadyHook(GradientSync& sync, int64_t parameter) : sync_(sync), parameter_(parameter) {}
  void operator()(const torch::autograd::Variable& /*tensor*/) override {
    sync_.MarkReady(parameter_);
  }

 private:
  GradientSync& sync_;
  const int64_t parameter_;
};

}  // namespace

GradientSync::GradientSync(ProcessGroup& group, std::vector<at::Tensor> parameters,
                           int64_t bucket_bytes)
    : group_(group),
      parameters_(std::move(parameters)),
      bucket_of_(parameters_.size()),
      ready_(parameters_.size(), 0) {
  TORCH_CHECK(bucket_bytes > 0, "GradientSync: bucket_bytes must be positive");
  int64_t bytes = 0;
  for (int64_t i = static_cast<int64_t>(parameters_.size()) - 1; i >= 0; --i) {
    const int64_t size = parameters_[i].numel() * parameters_[i].element_size();
    if (buckets_.empty() || bytes + size > bucket_bytes ||
        parameters_[buckets_.back().parameters.front()].scalar_type() !=
            parameters_[i].scalar_type()) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().parameters.push_back(i);
    bucket_of_[i] = static_cast<int64_t>(buckets_.size()) - 1;
    bytes += size;
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    torch::autograd::impl::set_post_acc_grad_hooks(
        parameters_[i], std::make_unique<ReadyHook>(*this, static_cast<int64_t>(i)));
  }
}

GradientSync::~GradientSync() {
  for (const at::Tensor& p : parameters_) {
    torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
  }
}

void GradientSync::Arm() {
  for (Bucket& bucket : buckets_) {
    bucket.pending = static_cast<int64_t>(bucket.parameters.size());
    bucket.work.reset();
  }
  std::fill(ready_.begin(), ready_.end(), 0);
  next_launch_ = 0;
  armed_ = true;
}

void GradientSync::MarkReady(int64_t parameter) {
  if (!armed_) return;
  // A parameter whose gradient accumulates twice in one backward pass (used by two
  // reentrant recomputations) would be sent before it is complete.
  TORCH_CHECK(!ready_[parameter], "GradientSync: parameter ", parameter,
              " accumulated its gradient twice in one backward pass");
  ready_[parameter] = 1;
  Bucket& bucket = buckets_[bucket_of_[parameter]];
  if (--bucket.pending == 0) LaunchReadyInOrder();
}

void GradientSync::LaunchReadyInOrder() {
  while (next_launch_ < bucket_count() && buckets_[next_launch_].pending == 0) {
    Launch(buckets_[next_launch_++]);
  }
}

void GradientSync::Launch(Bucket& bucket) {
  std::vector<at::Tensor> grads;
  for (const int64_t i : bucket.parameters) {
    const at::Tensor& p = parameters_[i];
    grads.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros_like(p).reshape(-1));
  }
  bucket.flat = torch::cat(grads);
  bucket.work.emplace(group_.AllReduceSum(bucket.flat));
}

void GradientSync::Finish() {
  // Buckets whose parameters had no gradient this step (or whose hooks did not run) still
  // take part, in order, so that every rank issues the same collectives.
  for (Bucket& bucket : buckets_) bucket.pending = 0;
  LaunchReadyInOrder();
  armed_ = false;
  torch::NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) {
    bucket.work->Wait();
    int64_t offset = 0;
    for (const int64_t i : bucket.parameters) {
      at::Tensor& p = const_cast<at::Tensor&>(parameters_[i]);
      const at::Tensor sum = bucket.flat.narrow(0, offset, p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(sum);
      } else {
        p.mutable_grad() = sum.clone();
      }
      offset += p.numel();
    }
    bucket.flat = at::Tensor();
    bucket.work.reset();
  }
}

}  // namespace ablate::train::dist
