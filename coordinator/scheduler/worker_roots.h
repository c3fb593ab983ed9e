// Which workers may take a job, by its paths: a worker refuses an attempt whose checkpoint_dir
// lies outside its --checkpoint-root or whose dataset lies outside its --data-root
// (worker/job_paths.h), so the scheduler places a job only on a worker whose reported roots
// (WorkerInfo.checkpoint_roots, data_roots) hold its paths, and a submission is warned
// (coordinator/api/root_check.h) of paths that no connected worker's roots hold. Both ask here,
// so that the warning foretells the placement.
//
// The coordinator cannot see a worker's filesystem, so it compares spellings
// (common/lexical_path.h); the worker still checks with its symbolic links resolved. Left
// unrestricted, since the coordinator cannot judge them:
//  - a relative path: each worker resolves it from its own working directory;
//  - a "builtin:" dataset, which names no file;
//  - any path, on a worker that reported no roots at all: an older worker, whose roots are
//    unknown.
// A worker that reported roots of one kind only has none of the other, and takes no job with
// an absolute path of that kind, as it would refuse it.
//
// Pure functions; safe from any thread.
#ifndef ABLATE_COORDINATOR_SCHEDULER_WORKER_ROOTS_H_
#define ABLATE_COORDINATOR_SCHEDULER_WORKER_ROOTS_H_

#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/strings/string_view.h"

namespace ablate::coordinator {

enum class RootKind { kCheckpoint, kData };

// The paths of a job that its worker's roots must hold; "" where it has none the coordinator
// can judge (unset, relative, or a "builtin:" dataset).
struct RootedPaths {
  std::string checkpoint_dir;  // JobSpec.checkpoint_dir, when absolute
  std::string dataset;         // JobSpec.config.dataset, when an absolute path
};

RootedPaths RootedPathsOf(const v1::JobSpec& job);

// Whether `worker` may take a job whose path of `kind` is `path`, as RootedPaths holds it ("":
// any worker may).
bool RootsHold(const v1::WorkerInfo& worker, RootKind kind, const std::string& path);
// Whether `worker` may take a job with `paths`: both are held.
bool RootsHold(const v1::WorkerInfo& worker, const RootedPaths& paths);
// Whether one of `workers` may take a job whose path of `kind` is `path`.
bool SomeRootsHold(const std::vector<const v1::WorkerInfo*>& workers, RootKind kind,
                   const std::string& path);

// The folder a job's `checkpoint_dir` lies in ("" for ""): <checkpoint_root>/<sweep_id>, one for
// all of a sweep's jobs (sweep/job_ids.h). A root holds all their checkpoint_dirs or none of
// them (short of a root that is one job's own checkpoint_dir), so the scheduler queues a
// sweep's jobs together by it, and names it in what it tells all of them.
std::string CheckpointFolder(const std::string& checkpoint_dir);

// "<what> is outside every connected worker's --checkpoint-root (w1: /a, /b; w2: none)": what
// a user is told when none of `workers` holds a path of `kind`, naming the roots of `kind` of
// the first five workers, then how many more. `what` names the path ("dataset /d/set").
std::string OutsideEveryRoot(absl::string_view what, RootKind kind,
                             const std::vector<const v1::WorkerInfo*>& workers);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_WORKER_ROOTS_H_
