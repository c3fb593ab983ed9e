#include "coordinator/api/root_check.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "coordinator/scheduler/worker_roots.h"

namespace ablate::coordinator {
namespace {

// The warning for `path` (as RootedPaths holds it) when none of `workers` may take it; empty
// when one may, or when there is no path to judge.
std::string Outside(const std::string& path, RootKind kind, const char* field,
                    const std::vector<const v1::WorkerInfo*>& workers,
                    const std::string& whose_jobs) {
  if (SomeRootsHold(workers, kind, path)) return "";
  return absl::StrCat(OutsideEveryRoot(absl::StrCat(field, " ", path), kind, workers), "; ",
                      whose_jobs, " will wait until a worker with such a root connects");
}

}  // namespace

std::vector<std::string> RootWarnings(const std::vector<v1::Worker>& workers,
                                      const std::vector<v1::JobSpec>& jobs) {
  std::vector<const v1::WorkerInfo*> connected;
  for (const v1::Worker& worker : workers) {
    if (worker.connected()) connected.push_back(&worker.info());
  }
  std::vector<std::string> warnings;
  if (connected.empty()) return warnings;
  // Every job checkpoints under the same <checkpoint_root>/<sweep_id>/, so the first tells.
  for (const v1::JobSpec& job : jobs) {
    if (job.checkpoint_dir().empty()) continue;
    const std::string path = RootedPathsOf(job).checkpoint_dir;
    std::string warning =
        Outside(path, RootKind::kCheckpoint, "checkpoint_dir", connected, "the sweep's jobs");
    if (!warning.empty()) warnings.push_back(std::move(warning));
    break;
  }
  // Datasets may be a grid axis: each once, in the order the jobs first name them.
  std::vector<std::string> datasets;
  absl::flat_hash_map<std::string, size_t> jobs_of;
  for (const v1::JobSpec& job : jobs) {
    std::string dataset = RootedPathsOf(job).dataset;
    if (dataset.empty()) continue;
    if (jobs_of[dataset]++ == 0) datasets.push_back(std::move(dataset));
  }
  for (const std::string& dataset : datasets) {
    const size_t count = jobs_of[dataset];
    std::string warning =
        Outside(dataset, RootKind::kData, "dataset", connected,
                count == 1 ? std::string("its job") : absl::StrCat("its ", count, " jobs"));
    if (!warning.empty()) warnings.push_back(std::move(warning));
  }
  return warnings;
}

}  // namespace ablate::coordinator
