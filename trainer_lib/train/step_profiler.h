// Records a window of training steps with PyTorch's profiler (Kineto, the engine behind
// torch.profiler) and writes down where their time went: the whole trace for a trace viewer
// (Perfetto, chrome://tracing) and a table of the time per kernel and per kind of kernel.
//
// On a GPU the table sums the device's own activity (kernels, copies and fills, as CUPTI
// timed them); these never overlap within one stream, so their sum is the time the device was
// busy. On a CPU it sums each operator's inclusive time, so nested operators count twice there:
// read that table for names, not for a total.
//
// Thread-safety: used by the thread that runs the steps. One profile per process at a time.
#ifndef ABLATE_TRAINER_LIB_TRAIN_STEP_PROFILER_H_
#define ABLATE_TRAINER_LIB_TRAIN_STEP_PROFILER_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "trainer_lib/train/trainer.h"

namespace ablate::train {

// The kind a device activity belongs to, from its name: "communication" (NCCL's kernels, which
// run on their own stream, beside the others: their time is not added to the device's busy
// time), "matmul" (cuBLAS, CUTLASS, nvjet),
// "attention" (flash and memory-efficient SDPA), "optimizer" (multi-tensor and fused
// optimizer kernels), "copy" (memcpy, memset, dtype casts), "reduction", "elementwise", or
// "other".
std::string KernelKind(const std::string& name);

class StepProfiler {
 public:
  // options.steps > 0; options.dir is created when the window ends.
  explicit StepProfiler(ProfileOptions options);
  // Stops a profile still running (a run that stopped or failed inside the window), unsaved.
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // Call before running the step that follows `steps_done` completed steps. Starts the
  // profiler when that step is the window's first.
  void BeforeStep(int64_t steps_done, const c10::Device& device);

  // Call after a step, `steps_done` counting it. When that step ends the window: waits for the
  // device, stops the profiler, writes dir/trace.json and dir/kernels.tsv (kind, name, calls,
  // total ms, ms per step, share of the total, the largest first), and returns a one-line
  // summary to log ("profile of steps 4..5: device busy 412.3 ms per step: matmul 61%, ...").
  // Otherwise returns nullopt. Internal naming the file when one cannot be written.
  absl::StatusOr<std::optional<std::string>> AfterStep(int64_t steps_done,
                                                       const c10::Device& device);

 private:
  const ProfileOptions options_;
  bool running_ = false;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_STEP_PROFILER_H_
