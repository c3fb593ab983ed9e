// Which jobs of a sweep no worker the coordinator knows could ever run, and why: a job needs
// max(1, gpus) slots of its kind, each with its planned memory (common/slot_need.h, the rule
// placement uses), and a worker fits it when it has that many such slots, free or not. What
// `ablate submit` warns about before the jobs wait for a worker that may never come.
//
// Pure; safe from any thread.
#ifndef ABLATE_CLI_FIT_H_
#define ABLATE_CLI_FIT_H_

#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep_service.pb.h"

namespace ablate::cli {

// One line per distinct need no known worker meets, in the order of the first job with it:
// "18 jobs need 8 CUDA slots with 29.6 GB (first: model=qwen3-4b ...); the most any known
// worker has is 4 (n1)". Empty when every job fits some worker. With no worker known, one line
// saying so.
std::vector<std::string> UnfitJobs(const std::vector<v1::JobSpec>& jobs,
                                   const v1::ListWorkersResponse& workers);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_FIT_H_
