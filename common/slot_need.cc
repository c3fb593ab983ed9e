#include "common/slot_need.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

std::string MemoryText(uint64_t bytes) {
  const double gib = static_cast<double>(bytes) / double(uint64_t{1} << 30);
  if (gib >= 1) return absl::StrFormat("%.1f GiB", gib);
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / double(uint64_t{1} << 20));
}

std::string DescribeNeed(const SlotNeed& need) {
  std::string text = absl::StrCat(need.count, need.kind == v1::DEVICE_KIND_CUDA ? " CUDA" : " CPU",
                                  need.count == 1 ? " slot" : " slots");
  if (need.memory_bytes > 0) absl::StrAppend(&text, " with ", MemoryText(need.memory_bytes));
  if (need.host_memory_bytes > 0) {
    absl::StrAppend(&text, need.memory_bytes > 0 ? " and " : " with ",
                    MemoryText(PinnedBytesOf(need)), " of pinned host memory");
  }
  return text;
}

}  // namespace ablate
