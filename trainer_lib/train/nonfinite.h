// Watches a run's steps for a non-finite loss or gradient norm without waiting for the device:
// Record queues a few device operations that remember the first bad step and its values, and
// FirstProblem reads them back with one small copy, which the loop does only when it reads the
// loss anyway (at log time) and before it evaluates or saves a checkpoint, so no checkpoint
// ever holds weights that a non-finite step produced.
//
// Thread-safety: one thread at a time.
#ifndef ABLATE_TRAINER_LIB_TRAIN_NONFINITE_H_
#define ABLATE_TRAINER_LIB_TRAIN_NONFINITE_H_

#include <cstdint>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace ablate::train {

class NonFiniteWatch {
 public:
  explicit NonFiniteWatch(const c10::Device& device);

  // Notes step `step` (1-based: the step-th update) with its 0-d fp32 loss and gradient norm,
  // on `device`. Never waits for the device.
  void Record(int64_t step, const at::Tensor& loss, const at::Tensor& grad_norm);

  // For the first recorded step that was not finite: "step 2: non-finite loss (nan)", or
  // "step 7: non-finite gradient (norm inf)" when only the gradient was. nullopt when every
  // step was finite. Waits for the device.
  std::optional<std::string> FirstProblem() const;

 private:
  at::Tensor first_step_;  // 0-d int64: 0 until a bad step is seen
  at::Tensor loss_;        // 0-d fp32: that step's loss
  at::Tensor grad_norm_;   // 0-d fp32: that step's gradient norm
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_NONFINITE_H_
