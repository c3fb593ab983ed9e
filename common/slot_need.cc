#include "common/slot_need.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/train_config.h"

namespace ablate {

SlotNeed SlotNeedOf(const v1::JobSpec& spec) {
  return {spec.config().gpus() > 0 ? v1::DEVICE_KIND_CUDA : v1::DEVICE_KIND_CPU,
          WorldSize(spec.config()), spec.memory_bytes()};
}

bool SlotFits(const v1::Slot& slot, const SlotNeed& need) {
  return slot.kind() == need.kind &&
         (slot.memory_bytes() == 0 || slot.memory_bytes() >= need.memory_bytes);
}

std::string DescribeNeed(const SlotNeed& need) {
  std::string text = absl::StrCat(need.count, need.kind == v1::DEVICE_KIND_CUDA ? " CUDA" : " CPU",
                                  need.count == 1 ? " slot" : " slots");
  if (need.memory_bytes > 0) {
    // Decimal gigabytes, as GPU memory is sold ("80 GB").
    absl::StrAppend(&text, " with ",
                    absl::StrFormat("%.3g", static_cast<double>(need.memory_bytes) / 1e9), " GB");
  }
  return text;
}

}  // namespace ablate
