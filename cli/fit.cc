#include "cli/fit.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/host_memory.h"
#include "common/slot_need.h"

namespace ablate::cli {
namespace {

// Slots of `worker` that could each hold one rank of a job with `need`.
uint32_t FittingSlots(const v1::WorkerInfo& worker, const SlotNeed& need) {
  return static_cast<uint32_t>(
      std::count_if(worker.slots().begin(), worker.slots().end(),
                    [&](const v1::Slot& slot) { return SlotFits(slot, need); }));
}

// The most such slots one known worker has, and which; or, when one has enough of them, the
// most host memory one of those can pin.
std::string BestOffer(const v1::ListWorkersResponse& workers, const SlotNeed& need) {
  uint32_t best = 0;
  uint64_t most_pinnable = 0;
  std::string id, pinning_id;
  for (const v1::Worker& worker : workers.workers()) {
    const uint32_t slots = FittingSlots(worker.info(), need);
    if (slots > best) {
      best = slots;
      id = worker.info().worker_id();
    }
    if (slots >= need.count && worker.info().pinned_memory_bytes() > most_pinnable) {
      most_pinnable = worker.info().pinned_memory_bytes();
      pinning_id = worker.info().worker_id();
    }
  }
  if (best == 0) return "no known worker has such a slot";
  if (!pinning_id.empty()) {
    return absl::StrCat("the most host memory a known worker with such slots can pin is ",
                        Gibibytes(static_cast<double>(most_pinnable)), " (", pinning_id, ")");
  }
  return absl::StrCat("the most any known worker has is ", best, " (", id, ")");
}

// Whether `worker` could ever hold a job of `need`: enough fitting slots, and host memory to
// pin.
bool Fits(const v1::WorkerInfo& worker, const SlotNeed& need) {
  return FittingSlots(worker, need) >= need.count &&
         PinnedMemoryFits(worker.pinned_memory_bytes(), need);
}

}  // namespace

std::vector<std::string> UnfitJobs(const std::vector<v1::JobSpec>& jobs,
                                   const v1::ListWorkersResponse& workers) {
  if (workers.workers().empty()) {
    return {"no worker has registered with the coordinator yet: the jobs wait until one does"};
  }
  struct Unfit {
    size_t order;
    size_t jobs = 0;
    SlotNeed need;
    std::string first;
  };
  std::map<std::string, Unfit> by_need;
  for (const v1::JobSpec& job : jobs) {
    const SlotNeed need = SlotNeedOf(job);
    const bool fits =
        std::any_of(workers.workers().begin(), workers.workers().end(),
                    [&](const v1::Worker& worker) { return Fits(worker.info(), need); });
    if (fits) continue;
    const std::string description = DescribeNeed(need);
    auto it = by_need.find(description);
    if (it == by_need.end()) {
      const std::string first =
          absl::StrJoin(job.cell(), " ", [](std::string* out, const v1::CellValue& v) {
            absl::StrAppend(out, v.dimension(), "=", v.value());
          });
      it = by_need.emplace(description, Unfit{by_need.size(), 0, need, first}).first;
    }
    ++it->second.jobs;
  }
  std::vector<std::pair<size_t, std::string>> lines;
  lines.reserve(by_need.size());
  for (const auto& [description, unfit] : by_need) {
    lines.emplace_back(
        unfit.order,
        absl::StrCat(unfit.jobs, unfit.jobs == 1 ? " job needs " : " jobs need ", description,
                     " (first: ", unfit.first, "); ", BestOffer(workers, unfit.need)));
  }
  std::sort(lines.begin(), lines.end());
  std::vector<std::string> out;
  out.reserve(lines.size());
  for (auto& [order, line] : lines) out.push_back(std::move(line));
  return out;
}

}  // namespace ablate::cli
