#include "trainer_lib/dist/placement.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace ablate::train::dist {

absl::StatusOr<c10::Device> RankDevice(const v1::TrainConfig& config, int local_rank) {
  if (config.gpus() == 0) return torch::Device(torch::kCPU);
  // A GPU job that lands on a host without CUDA is a placement error; training it on the CPU
  // instead would only look like a very slow run. Another host may have one: not permanent.
  if (!torch::cuda::is_available()) {
    return absl::UnavailableError(
        absl::StrCat("gpus: ", config.gpus(), " asked for, but CUDA is not available here"));
  }
  if (local_rank >= static_cast<int>(torch::cuda::device_count())) {
    return absl::UnavailableError(absl::StrCat("LOCAL_RANK=", local_rank, ", but only ",
                                               torch::cuda::device_count(), " GPUs are visible"));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

}  // namespace ablate::train::dist
