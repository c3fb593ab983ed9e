#include "coordinator/scheduler/worker_roots.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/lexical_path.h"

namespace ablate::coordinator {
namespace {

// A message names this many workers' roots at most, so that a large fleet's does not fill the
// user's terminal.
constexpr size_t kWorkersNamed = 5;

using Roots = google::protobuf::RepeatedPtrField<std::string>;

const Roots& RootsOf(const v1::WorkerInfo& worker, RootKind kind) {
  return kind == RootKind::kCheckpoint ? worker.checkpoint_roots() : worker.data_roots();
}

bool Absolute(const std::string& path) { return std::filesystem::path(path).is_absolute(); }

}  // namespace

RootedPaths RootedPathsOf(const v1::JobSpec& job) {
  RootedPaths paths;
  if (Absolute(job.checkpoint_dir())) paths.checkpoint_dir = job.checkpoint_dir();
  const std::string& dataset = job.config().dataset();
  if (!absl::StartsWith(dataset, "builtin:") && Absolute(dataset)) paths.dataset = dataset;
  return paths;
}

bool RootsHold(const v1::WorkerInfo& worker, RootKind kind, const std::string& path) {
  if (path.empty()) return true;
  if (worker.checkpoint_roots().empty() && worker.data_roots().empty()) return true;
  const Roots& roots = RootsOf(worker, kind);
  return std::any_of(roots.begin(), roots.end(),
                     [&](const std::string& root) { return LexicallyWithin(path, root); });
}

bool RootsHold(const v1::WorkerInfo& worker, const RootedPaths& paths) {
  return RootsHold(worker, RootKind::kCheckpoint, paths.checkpoint_dir) &&
         RootsHold(worker, RootKind::kData, paths.dataset);
}

bool SomeRootsHold(const std::vector<const v1::WorkerInfo*>& workers, RootKind kind,
                   const std::string& path) {
  return std::any_of(workers.begin(), workers.end(),
                     [&](const v1::WorkerInfo* worker) { return RootsHold(*worker, kind, path); });
}

std::string CheckpointFolder(const std::string& checkpoint_dir) {
  return std::filesystem::path(checkpoint_dir).parent_path().string();
}

std::string OutsideEveryRoot(absl::string_view what, RootKind kind,
                             const std::vector<const v1::WorkerInfo*>& workers) {
  std::vector<std::string> named;
  for (size_t i = 0; i < workers.size() && i < kWorkersNamed; ++i) {
    const Roots& roots = RootsOf(*workers[i], kind);
    named.push_back(absl::StrCat(workers[i]->worker_id(), ": ",
                                 roots.empty() ? "none" : absl::StrJoin(roots, ", ")));
  }
  if (workers.size() > kWorkersNamed) {
    named.push_back(absl::StrCat(workers.size() - kWorkersNamed, " more"));
  }
  return absl::StrCat(what, " is outside every connected worker's ",
                      kind == RootKind::kCheckpoint ? "--checkpoint-root" : "--data-root", " (",
                      absl::StrJoin(named, "; "), ")");
}

}  // namespace ablate::coordinator
