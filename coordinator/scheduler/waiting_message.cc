#include "coordinator/scheduler/waiting_message.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/host_memory.h"

namespace ablate::coordinator {
namespace {

using Workers = std::vector<const v1::WorkerInfo*>;

// A path as a waiting message names it: the checkpoint_dir by its folder, which every job the
// message is stored on shares.
std::string Named(RootKind kind, const std::string& path) {
  if (kind == RootKind::kData) return absl::StrCat("dataset ", path);
  return absl::StrCat("checkpoint_dir ", CheckpointFolder(path), "/<job id>");
}

// Why the roots of `workers` keep a job of `paths` off every one of them; "" when one's may
// take it, or when there is no worker to judge.
std::string RootsRefuse(const Workers& workers, const RootedPaths& paths) {
  if (workers.empty()) return "";
  std::vector<std::string> outside;
  for (const auto& [kind, path] : {std::pair{RootKind::kCheckpoint, &paths.checkpoint_dir},
                                   std::pair{RootKind::kData, &paths.dataset}}) {
    if (!SomeRootsHold(workers, kind, *path)) {
      outside.push_back(OutsideEveryRoot(Named(kind, *path), kind, workers));
    }
  }
  if (!outside.empty()) return absl::StrJoin(outside, "; ");
  if (std::any_of(workers.begin(), workers.end(),
                  [&](const v1::WorkerInfo* w) { return RootsHold(*w, paths); })) {
    return "";
  }
  return absl::StrCat("no connected worker's roots hold both its ",
                      Named(RootKind::kCheckpoint, paths.checkpoint_dir), " and its ",
                      Named(RootKind::kData, paths.dataset));
}

}  // namespace

std::string WaitingMessage(const Workers& workers, const SlotNeed& need, const RootedPaths& paths) {
  if (std::string refused = RootsRefuse(workers, paths); !refused.empty()) {
    return absl::StrCat("waiting: ", refused);
  }
  // Only the workers whose roots hold the paths could take the job; their slots tell.
  Workers holders;
  std::copy_if(workers.begin(), workers.end(), std::back_inserter(holders),
               [&](const v1::WorkerInfo* w) { return RootsHold(*w, paths); });
  // Slots of those workers, by kind and memory, and the most host memory one of them with
  // enough fitting slots can pin, for the message.
  std::map<std::pair<int, uint64_t>, int, std::greater<>> fleet;
  uint64_t most_pinnable = 0;
  for (const v1::WorkerInfo* worker : holders) {
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
  absl::StrAppend(&why, "connected workers ",
                  holders.size() < workers.size() ? "whose roots hold its paths " : "", "have ",
                  absl::StrJoin(have, ", "));
  if (need.host_memory_bytes > 0 && most_pinnable > 0) {
    absl::StrAppend(&why, ", and the most host memory one with such slots can pin is ",
                    Gibibytes(static_cast<double>(most_pinnable)));
  }
  return why;
}

}  // namespace ablate::coordinator
