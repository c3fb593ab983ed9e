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

namespace ablate::coordinator {

// "" when one of `workers` (those that take new jobs) has enough slots that fit `need` and can
// pin its host memory (common/slot_need.h), busy or not. Otherwise "waiting: needs <need>; "
// then "no worker is connected", or what the workers have: their slots by kind and memory and,
// for a job that pins host memory, the most one with enough such slots can pin ("waiting:
// needs 1 CUDA slot with 80 GB; connected workers have 1 CUDA slot with 40 GB").
std::string WaitingMessage(const std::vector<const v1::WorkerInfo*>& workers, const SlotNeed& need);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_WAITING_MESSAGE_H_
