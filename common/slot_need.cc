#include "common/slot_need.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/host_memory.h"
#include "common/train_config.h"

namespace ablate {

SlotNeed SlotNeedOf(const v1::JobSpec& spec) {
  return {spec.config().gpus() > 0 ? v1::DEVICE_KIND_CUDA : v1::DEVICE_KIND_CPU,
          WorldSize(spec.config()), spec.memory_bytes(), spec.host_memory_bytes()};
}

uint64_t PinnedBytesOf(const SlotNeed& need) { return need.count * need.host_memory_bytes; }

bool PinnedMemoryFits(uint64_t pinnable_bytes, const SlotNeed& need) {
  return pinnable_bytes == 0 || PinnedBytesOf(need) <= pinnable_bytes;
}

bool SlotFits(const v1::Slot& slot, const SlotNeed& need) {
  return slot.kind() == need.kind &&
         (slot.memory_bytes() == 0 || slot.memory_bytes() >= need.memory_bytes);
}

std::string Gigabytes(uint64_t bytes) {
  const double gb = static_cast<double>(bytes) / 1e9;
  // Three significant digits, but never an exponent: "0.5 GB", "80 GB", "1800 GB".
  return absl::StrCat(gb < 1000 ? absl::StrFormat("%.3g", gb) : absl::StrFormat("%.0f", gb), " GB");
}

std::string DescribeNeed(const SlotNeed& need) {
  std::string text = absl::StrCat(need.count, need.kind == v1::DEVICE_KIND_CUDA ? " CUDA" : " CPU",
                                  need.count == 1 ? " slot" : " slots");
  if (need.memory_bytes > 0) absl::StrAppend(&text, " with ", Gigabytes(need.memory_bytes));
  if (need.host_memory_bytes > 0) {
    absl::StrAppend(&text, need.memory_bytes > 0 ? " and " : " with ",
                    Gibibytes(static_cast<double>(PinnedBytesOf(need))), " of pinned host memory");
  }
  return text;
}

}  // namespace ablate
