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
      slot_of_(parameters_.size()),
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
    Bucket& bucket = buckets_.back();
    slot_of_[i] = static_cast<int64_t>(bucket.parameters.size());
    bucket.offsets.push_back(bucket.parameters.empty()
                                 ? 0
                                 : bucket.offsets.back() + parameters_[bucket.parameters.back()].numel());
    bucket.parameters.push_back(i);
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
    // A fresh buffer each step (the caching allocator makes that cheap): the previous one
    // lives on as the .grad views until the trainer clears them, and between steps no
    // gradient memory is held, as with zero_grad(set_to_none).
    const at::Tensor& last = parameters_[bucket.parameters.back()];
    bucket.flat = torch::empty({bucket.offsets.back() + last.numel()}, last.options());
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
  // Copied now, on the stream backward runs on, so the buffer is complete when the bucket's
  // last gradient arrives; the all-reduce is ordered after these copies.
  Slot(bucket, parameter).copy_(parameters_[parameter].grad());
  if (--bucket.pending == 0) LaunchReadyInOrder();
}

at::Tensor GradientSync::Slot(const Bucket& bucket, int64_t parameter) const {
  const at::Tensor& p = parameters_[parameter];
  return bucket.flat.narrow(0, bucket.offsets[slot_of_[parameter]], p.numel()).view_as(p);
}

void GradientSync::LaunchReadyInOrder() {
  while (next_launch_ < bucket_count() && buckets_[next_launch_].pending == 0) {
    Launch(buckets_[next_launch_++]);
  }
}

void GradientSync::Launch(Bucket& bucket) {
  bucket.work.emplace(group_.AllReduceSum(bucket.flat));
}

void GradientSync::Finish() {
  // Buckets whose parameters had no gradient this step (or whose hooks did not run) still
  // take part, in order, so that every rank issues the same collectives; such parameters
  // contribute zeros.
  torch::NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) {
    if (bucket.pending == 0) continue;
    for (const int64_t i : bucket.parameters) {
      if (!ready_[i]) {
        const at::Tensor& grad = parameters_[i].grad();
        if (grad.defined()) {
          Slot(bucket, i).copy_(grad);
        } else {
          Slot(bucket, i).zero_();
        }
      }
    }
    bucket.pending = 0;
  }
  LaunchReadyInOrder();
  armed_ = false;
  for (Bucket& bucket : buckets_) {
    bucket.work->Wait();
    bucket.work.reset();
    for (const int64_t i : bucket.parameters) {
      const_cast<at::Tensor&>(parameters_[i]).mutable_grad() = Slot(bucket, i);
    }
    bucket.flat = at::Tensor();
  }
}

}  // namespace ablate::train::dist
