// What a submission is told when no connected worker would accept its paths: a worker refuses
// an attempt whose checkpoint_dir lies outside its --checkpoint-root or whose dataset lies
// outside its --data-root (worker/job_paths.h), and the job fails then, long after the submit.
// The coordinator cannot see a worker's filesystem, so it compares spellings
// (common/lexical_path.h) of the roots each worker reported (WorkerInfo.checkpoint_roots,
// data_roots) with the sweep's absolute paths; a relative path is left alone, since each worker
// takes it from its own working directory. A warning only: a worker with such a root may
// connect later, and a worker still checks with its symbolic links resolved.
//
// Stateless; safe from any thread.
#ifndef ABLATE_COORDINATOR_API_ROOT_CHECK_H_
#define ABLATE_COORDINATOR_API_ROOT_CHECK_H_

#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/worker.pb.h"

namespace ablate::coordinator {

// One line for the first job's checkpoint_dir when it lies outside every connected worker's
// checkpoint roots, and one for each dataset path (not "builtin:") outside every connected
// worker's data roots, each naming the workers' roots. Workers that are not connected, and
// those that reported no roots (older workers, whose roots are unknown), are not asked; none
// when no worker is left to ask.
std::vector<std::string> RootWarnings(const std::vector<v1::Worker>& workers,
                                      const std::vector<v1::JobSpec>& jobs);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_ROOT_CHECK_H_
