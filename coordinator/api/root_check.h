// What a submission is told when no connected worker may take its paths: a worker refuses an
// attempt whose checkpoint_dir lies outside its --checkpoint-root or whose dataset lies outside
// its --data-root (worker/job_paths.h), so the scheduler places a job only on a worker whose
// reported roots (WorkerInfo.checkpoint_roots, data_roots) hold its paths, and a job that no
// connected worker's roots hold waits for one. The rule, comparing spellings, is the scheduler's
// own (coordinator/scheduler/worker_roots.h), so the warning says at submit what placement will
// do. A warning only: the sweep is stored and queued as always, since a worker with such a root
// may connect later.
//
// Stateless; safe from any thread.
#ifndef ABLATE_COORDINATOR_API_ROOT_CHECK_H_
#define ABLATE_COORDINATOR_API_ROOT_CHECK_H_

#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/worker.pb.h"

namespace ablate::coordinator {

// One line for the first job's checkpoint_dir when no connected worker's roots may hold it, and
// one for each dataset path no connected worker's roots may hold, each naming the workers'
// roots. Workers that are not connected are not asked; a connected one that reported no roots
// (an older worker, whose roots are unknown) may take any path, as the scheduler places on it,
// so nothing is warned then; nor when no worker is connected.
std::vector<std::string> RootWarnings(const std::vector<v1::Worker>& workers,
                                      const std::vector<v1::JobSpec>& jobs);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_ROOT_CHECK_H_
