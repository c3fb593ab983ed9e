#include "coordinator/api/root_check.h"

#include <filesystem>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/lexical_path.h"

namespace ablate::coordinator {
namespace {

// A warning names this many workers' roots at most, so that a large fleet's does not fill the
// user's terminal.
constexpr size_t kWorkersNamed = 5;

using Roots = google::protobuf::RepeatedPtrField<std::string>;
using RootsOf = const Roots& (v1::WorkerInfo::*)() const;

bool Within(const std::string& path, const Roots& roots) {
  for (const std::string& root : roots) {
    if (LexicallyWithin(path, root)) return true;
  }
  return false;
}

// "w1: /a, /b; w2: none", the first kWorkersNamed workers.
std::string Described(const std::vector<const v1::WorkerInfo*>& workers, RootsOf roots_of) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < workers.size() && i < kWorkersNamed; ++i) {
    const Roots& roots = (workers[i]->*roots_of)();
    parts.push_back(absl::StrCat(workers[i]->worker_id(), ": ",
                                 roots.empty() ? "none" : absl::StrJoin(roots, ", ")));
  }
  if (workers.size() > kWorkersNamed) {
    parts.push_back(absl::StrCat(workers.size() - kWorkersNamed, " more"));
  }
  return absl::StrJoin(parts, "; ");
}

// The warning for `path` when no worker's roots hold it; empty when one does, or when the path
// is relative.
std::string Outside(const std::string& path, const std::vector<const v1::WorkerInfo*>& workers,
                    RootsOf roots_of, const char* field, const char* flag,
                    const std::string& whose_jobs) {
  if (!std::filesystem::path(path).is_absolute()) return "";
  for (const v1::WorkerInfo* worker : workers) {
    if (Within(path, (worker->*roots_of)())) return "";
  }
  return absl::StrCat(field, " ", path, " is outside every connected worker's ", flag, " (",
                      Described(workers, roots_of), "); ", whose_jobs,
                      " will be refused until a worker with such a root connects");
}

}  // namespace

std::vector<std::string> RootWarnings(const std::vector<v1::Worker>& workers,
                                      const std::vector<v1::JobSpec>& jobs) {
  std::vector<const v1::WorkerInfo*> asked;
  for (const v1::Worker& worker : workers) {
    const v1::WorkerInfo& info = worker.info();
    if (worker.connected() && (!info.checkpoint_roots().empty() || !info.data_roots().empty())) {
      asked.push_back(&info);
    }
  }
  std::vector<std::string> warnings;
  if (asked.empty()) return warnings;
  // Every job checkpoints under the same <checkpoint_root>/<sweep_id>/, so the first tells.
  for (const v1::JobSpec& job : jobs) {
    if (job.checkpoint_dir().empty()) continue;
    std::string warning = Outside(job.checkpoint_dir(), asked, &v1::WorkerInfo::checkpoint_roots,
                                  "checkpoint_dir", "--checkpoint-root", "the sweep's jobs");
    if (!warning.empty()) warnings.push_back(std::move(warning));
    break;
  }
  // Datasets may be a grid axis: each once, in the order the jobs first name them.
  std::vector<std::string> datasets;
  absl::flat_hash_map<std::string, size_t> jobs_of;
  for (const v1::JobSpec& job : jobs) {
    const std::string& dataset = job.config().dataset();
    if (dataset.empty() || absl::StartsWith(dataset, "builtin:")) continue;
    if (jobs_of[dataset]++ == 0) datasets.push_back(dataset);
  }
  for (const std::string& dataset : datasets) {
    const size_t count = jobs_of[dataset];
    std::string warning =
        Outside(dataset, asked, &v1::WorkerInfo::data_roots, "dataset", "--data-root",
                count == 1 ? std::string("its job") : absl::StrCat("its ", count, " jobs"));
    if (!warning.empty()) warnings.push_back(std::move(warning));
  }
  return warnings;
}

}  // namespace ablate::coordinator
