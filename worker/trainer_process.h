// One attempt's trainer: a child process of `ablate-train` supervised from start to exit.
//
// Start() writes the job spec as JSON (protobuf's JSON mapping) to
// <work_dir>/<job_id>/attempt-<id>/job.json and runs
//   <trainer> train --job <that file> --events-fd 3
// with the write end of a pipe on fd 3, stdin from /dev/null, stdout and stderr written to
// trainer.log beside job.json, no other descriptor open, the signal mask and dispositions at
// their defaults, and a process group of its own (so a stop reaches every process the trainer
// starts). The trainer is SIGKILLed if the thread that called Start() ends (so a worker killed
// outright takes its trainers with it; see spawn.h), and recorded in a pid file until its
// group is gone (so a restarted worker stops what is left of it; see trainer_pids.h). For
// CUDA slots it sets CUDA_VISIBLE_DEVICES to the slots' indices (and
// CUDA_DEVICE_ORDER=PCI_BUS_ID, so those are the indices nvidia-smi reports).
//
// Ownership: a TrainerProcess owns the child and its process group, the read end of the event
// pipe and two threads: a reader, which decodes the TrainerEvents and hands them to on_event,
// and a supervisor, which waits for the child's exit, enforces Stop()'s grace period, kills
// what is left of the group once the child has exited, and then calls on_exit once. The
// destructor stops the child (SIGTERM, SIGKILL after kDefaultStopGrace) and joins both threads,
// so no process of the group outlives the object.
//
// Callbacks: on_event calls come in the order the trainer wrote the events, all of them before
// the single on_exit call. They run on the object's threads with none of its locks held; they
// may call Stop() but must not destroy the object (it cannot join its own thread).
//
// Thread-safety: Stop(), WaitForExit() and the accessors may be called from any thread.
#ifndef ABLATE_WORKER_TRAINER_PROCESS_H_
#define ABLATE_WORKER_TRAINER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/trainer.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/unique_fd.h"

namespace ablate::worker {

inline constexpr absl::Duration kDefaultStopGrace = absl::Seconds(10);

struct TrainerOptions {
  // The ablate-train executable (or a stand-in speaking the same command line and pipe).
  std::string trainer_path;
  // Root of the attempts' directories; created when missing.
  std::filesystem::path work_dir;
  // TrainConfig.cpu_threads for a job that leaves it 0: this many threads per assigned slot.
  uint32_t cpu_threads_per_slot = 1;
};

class TrainerProcess {
 public:
  using EventCallback = std::function<void(const v1::TrainerEvent&)>;
  // Receives job_id, attempt_id, succeeded, exit and, when the trainer sent one, its last
  // TrainerFinished event in `finished`; `cancelled` is left false, since only the caller knows
  // whether a stop was the coordinator's wish. `sequence` is left for the caller to number.
  using ExitCallback = std::function<void(const v1::AttemptEnded&)>;

  // Starts the trainer for `attempt_id` of `job` on `slots`. InvalidArgument when the job id
  // cannot name a directory; Internal (with the path and errno text) when the attempt's
  // directory or files cannot be written or the trainer cannot be executed. On error no
  // process is left running and no callback is ever called.
  static absl::StatusOr<std::unique_ptr<TrainerProcess>> Start(
      const TrainerOptions& options, const v1::JobSpec& job, uint64_t attempt_id,
      const std::vector<v1::Slot>& slots, EventCallback on_event, ExitCallback on_exit);

  TrainerProcess(const TrainerProcess&) = delete;
  TrainerProcess& operator=(const TrainerProcess&) = delete;
  ~TrainerProcess();

  // Asks the trainer to stop: SIGTERM to its process group now (the trainer saves a
  // checkpoint and exits), SIGKILL to the group once `grace` has passed. The attempt then
  // ends as not succeeded, with `reason` as its exit reason ("cancelled"), followed by
  // ": killed by SIGKILL after <grace>" when the grace ran out. Returns at once; only the first
  // call counts, and a call after the exit does nothing.
  void Stop(absl::Duration grace, const std::string& reason);

  // Blocks until on_exit has returned, for at most `timeout`. Returns what on_exit received,
  // or nullopt on timeout.
  std::optional<v1::AttemptEnded> WaitForExit(absl::Duration timeout);

  pid_t pid() const { return pid_; }
  const std::filesystem::path& attempt_dir() const { return attempt_dir_; }

 private:
  TrainerProcess(const v1::JobSpec& job, uint64_t attempt_id, std::filesystem::path work_dir,
                 std::filesystem::path attempt_dir, pid_t pid, UniqueFd pidfd, UniqueFd events,
                 UniqueFd wake, EventCallback on_event, ExitCallback on_exit);

  void ReadEvents();  // the reader thread
  void Supervise();   // the supervisor thread
  v1::AttemptEnded Outcome(int wait_status);

  // Constant after construction.
  const std::string job_id_;
  const uint64_t attempt_id_;
  const std::filesystem::path work_dir_;
  const std::filesystem::path attempt_dir_;
  const pid_t pid_;  // also the process group id
  const UniqueFd pidfd_;
  const UniqueFd events_;
  const UniqueFd wake_;  // eventfd: Stop() wakes the supervisor to arm the SIGKILL deadline
  const EventCallback on_event_;
  const ExitCallback on_exit_;

  absl::Mutex mu_;
  // Once set, the child has been reaped and its pid must not be signalled again.
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<std::string> stop_reason_ ABSL_GUARDED_BY(mu_);
  absl::Duration stop_grace_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> kill_deadline_ ABSL_GUARDED_BY(mu_);
  bool killed_ ABSL_GUARDED_BY(mu_) = false;  // the grace ran out and SIGKILL was sent
  std::optional<v1::TrainerFinished> finished_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::AttemptEnded> ended_ ABSL_GUARDED_BY(mu_);

  std::thread reader_;      // joined by the supervisor, before on_exit
  std::thread supervisor_;  // joined by the destructor
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_TRAINER_PROCESS_H_
