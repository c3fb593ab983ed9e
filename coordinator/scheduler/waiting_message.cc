#include "coordinator/scheduler/waiting_message.h"

#include <algorithm>
#include <functional>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/host_memory.h"

namespace ablate::coordinator {

std::string WaitingMessage(const std::vector<const v1::WorkerInfo*>& workers,
                           const SlotNeed& need) {
  // Slots of connected workers that take new jobs, by kind and memory, and the most host memory
  // one of those with enough fitting slots can pin, for the message.
  std::map<std::pair<int, uint64_t>, int, std::greater<>> fleet;
  uint64_t most_pinnable = 0;
  for (const v1::WorkerInfo* worker : workers) {
    uint32_t fitting = 0;
    for (const v1::Slot& slot : worker->slots()) {
      fitting += SlotFits(slot, need) ? 1 : 0;
      ++fleet[{slot.kind(), slot.memory_bytes()}];
    }
    if (fitting < need.count) continue;
    const uint64_t pinnable = worker->pinned_memory_bytes();
    if (PinnedMemoryFits(pinnable, need)) return "";
    most_pinnable = std::max(most_pinnable, pinnable);
  }
  std::string why = absl::StrCat("waiting: needs ", DescribeNeed(need), "; ");
  if (fleet.empty()) return absl::StrCat(why, "no worker is connected");
  std::vector<std::string> have;
  for (const auto& [kind_memory, count] : fleet) {
    SlotNeed slots{static_cast<v1::DeviceKind>(kind_memory.first), static_cast<uint32_t>(count),
                   kind_memory.second};
    have.push_back(DescribeNeed(slots));
  }
  absl::StrAppend(&why, "connected workers have ", absl::StrJoin(have, ", "));
  if (need.host_memory_bytes > 0 && most_pinnable > 0) {
    absl::StrAppend(&why, ", and the most host memory one with such slots can pin is ",
                    Gibibytes(static_cast<double>(most_pinnable)));
  }
  return why;
}

}  // namespace ablate::coordinator
