// What a run's status says beyond its code: the signal that stopped it, and whether a retry
// would meet the same failure. Torch-free.
//
// Thread-safety: pure functions.
#ifndef ABLATE_TRAINER_LIB_TRAIN_RUN_STATUS_H_
#define ABLATE_TRAINER_LIB_TRAIN_RUN_STATUS_H_

#include <cstdint>

#include "absl/status/status.h"

namespace ablate::train {

// Cancelled, "terminated by SIGTERM at step N", carrying `signal` for StopSignalOf.
absl::Status StoppedBy(int signal, int64_t step);

// The signal that stopped a run whose status is Cancelled (every rank of a job stops with the
// one some rank received), or 0 for any other status.
int StopSignalOf(const absl::Status& status);
inline constexpr char kStopSignalPayload[] = "ablate.train/stop-signal";

// True when a failed run would fail the same way if retried (a full disk, a bad setting, a
// diverged run, a refused checkpoint): every code but Internal, Unavailable, Unknown and
// DeadlineExceeded (LibTorch, device and host errors, which a fresh process or another host
// may not meet), OK and Cancelled.
bool IsPermanent(const absl::Status& status);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_RUN_STATUS_H_
