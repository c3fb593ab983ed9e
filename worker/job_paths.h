// Where a worker lets a job write and read: a job's checkpoint_dir must lie under one of the
// worker's checkpoint roots and its dataset under one of its data roots (or be "builtin:NAME"),
// so a sweep cannot make a worker create, write or prune folders anywhere else on its machine.
// Paths are compared absolute and normalized, with symbolic links of the parts that exist
// resolved ("runs/../../etc" and a link out of a root are both outside it). Relative paths are
// taken from the worker's working directory, as the trainer it starts takes them.
//
// Stateless; safe from any thread.
#ifndef ABLATE_WORKER_JOB_PATHS_H_
#define ABLATE_WORKER_JOB_PATHS_H_

#include <filesystem>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "absl/status/status.h"

namespace ablate::worker {

struct PathRoots {
  std::vector<std::filesystem::path> checkpoint_roots;  // empty: no job may checkpoint
  std::vector<std::filesystem::path> data_roots;        // empty: only builtin datasets
};

// OK when `job`'s checkpoint_dir (when set) and dataset are inside `roots`; else
// PermissionDenied naming the field, the path and the roots it must lie under.
absl::Status CheckJobPaths(const v1::JobSpec& job, const PathRoots& roots);

// `path` as CheckJobPaths compares it: absolute (from the working directory), normalized, with
// the symbolic links of the parts that exist resolved.
std::filesystem::path ResolvedPath(const std::filesystem::path& path);

// The roots as this worker tells the coordinator (WorkerInfo.checkpoint_roots, data_roots):
// each absolute and normalized as given and, where a symbolic link leads elsewhere, resolved
// too, since a job's path under either spelling is inside the root. Each name once, in order.
std::vector<std::string> RootNames(const std::vector<std::filesystem::path>& roots);

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_JOB_PATHS_H_
