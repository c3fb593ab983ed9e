// What the worker's tests ask of a process they do not own (a trainer, a trainer's helper):
// whether it still runs. Stateless; safe from any thread.
#ifndef ABLATE_WORKER_TESTING_PROCESS_STATE_H_
#define ABLATE_WORKER_TESTING_PROCESS_STATE_H_

#include <sys/types.h>

#include "absl/time/time.h"

namespace ablate::worker::testing {

// True when `pid` is gone or a zombie nobody has reaped yet: in both cases it runs no more.
bool Dead(pid_t pid);

// Polls Dead(pid) every 10 ms for up to `timeout`.
bool EventuallyDead(pid_t pid, absl::Duration timeout);

}  // namespace ablate::worker::testing

#endif  // ABLATE_WORKER_TESTING_PROCESS_STATE_H_
