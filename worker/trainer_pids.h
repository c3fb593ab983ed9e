// Records of the trainers a worker runs, so that a worker restarted on the same work dir stops
// any its predecessor left behind (one killed with SIGKILL takes its trainers with it, see
// spawn.h, but not what they started in their process groups, nor trainers of a worker that
// ran without that guard).
//
// One file per attempt, <work_dir>/trainer-pids/attempt-<id>.pid, holds "<pid> <start>\n":
// the trainer's pid, which is also its process group's id, and its start time (field 22 of
// /proc/<pid>/stat, clock ticks after boot). A process is taken for part of that trainer only
// when it is in that group and started no earlier than the trainer, and, while a process with
// the trainer's pid exists, only when that process started at the recorded time: a pid (and so
// a group id) reused by an unrelated process is never signalled. The one case this cannot tell
// apart: the group emptied, its number was reused as a new group's id whose leader then exited;
// Linux does not reuse a number that quickly in practice.
//
// Stateless; safe from any thread.
#ifndef ABLATE_WORKER_TRAINER_PIDS_H_
#define ABLATE_WORKER_TRAINER_PIDS_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ablate::worker {

// The file that records `attempt_id`'s trainer.
std::filesystem::path PidFilePath(const std::filesystem::path& work_dir, uint64_t attempt_id);

// The start time of `pid` (field 22 of /proc/<pid>/stat); NotFound when there is no such
// process.
absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid);

// Records `pid` as `attempt_id`'s trainer. Internal (with the path) when the file cannot be
// written; NotFound when the process is already gone.
absl::Status WritePidFile(const std::filesystem::path& work_dir, uint64_t attempt_id, pid_t pid);

// Removes `attempt_id`'s record, if any.
void RemovePidFile(const std::filesystem::path& work_dir, uint64_t attempt_id);

// SIGKILLs every process left of each recorded trainer, waits up to `timeout` for them to
// exit, and removes the records. Returns how many processes it signalled; each is logged.
int StopLeftoverTrainers(const std::filesystem::path& work_dir, absl::Duration timeout);

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_TRAINER_PIDS_H_
