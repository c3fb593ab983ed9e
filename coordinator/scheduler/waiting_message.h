// Why a queued job waits when no connected worker could ever take it: the message the scheduler
// stores on such jobs, for `ablate status` and the dashboard.
//
// Pure function; safe from any thread.
#ifndef ABLATE_COORDINATOR_SCHEDULER_WAITING_MESSAGE_H_
#define ABLATE_COORDINATOR_SCHEDULER_WAITING_MESSAGE_H_

#include <string>
#include <vector>

#include "ablate/v1/worker.pb.h"
#include "common/slot_need.h"
#include "coordinator/scheduler/worker_roots.h"

namespace ablate::coordinator {

// "" when one of `workers` (those that take new jobs) has roots that hold `paths`
// (worker_roots.h), enough slots that fit `need` and can pin its host memory
// (common/slot_need.h), busy or not. Otherwise "waiting: " then, when no worker's roots hold a
// path, that path and the workers' roots ("waiting: checkpoint_dir /b/s/<job id> is outside
// every connected worker's --checkpoint-root (w1: /a)": the checkpoint_dir by its folder, as
// the message is stored on all of a sweep's jobs), or "no connected worker's roots hold both
// ..." when each path has a worker but none has both; else "needs <need>; " then "no worker is
// connected", or what the workers whose roots hold the paths have: their slots by kind and
// memory and, for a job that pins host memory, the most one with enough such slots can pin
// ("waiting: needs 1 CUDA slot with 80 GB; connected workers have 1 CUDA slot with 40 GB").
std::string WaitingMessage(const std::vector<const v1::WorkerInfo*>& workers, const SlotNeed& need,
                           const RootedPaths& paths);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_WAITING_MESSAGE_H_
