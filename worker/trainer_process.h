// One attempt's trainer: the child processes of `ablate-train`, one per rank, supervised as one
// unit from start to exit.
//
// Start() writes the job spec as JSON (protobuf's JSON mapping) to
// <work_dir>/<job_id>/attempt-<id>/job.json and runs, for each of the job's WorldSize ranks
// (common/train_config.h),
//   <trainer> train --job <that file> [--events-fd 3]
// with stdin from /dev/null, stdout and stderr written to trainer.log beside job.json (rank r
// > 0: trainer-rank<r>.log), no other descriptor open, the signal mask and dispositions at
// their defaults, and one process group for the attempt, whose id is rank 0's pid (so a stop
// reaches every process of every rank). Only rank 0 gets the event pipe, on fd 3: it speaks
// for the job. A job on several ranks gets torchrun's variables (spawn.h, RankPlace) with a
// rendezvous port on loopback. The ranks are SIGKILLed if the thread that called Start() ends
// (so a worker killed outright takes its trainers with it; see spawn.h), and the group is
// recorded in a pid file until it is gone (so a restarted worker stops what is left of it; see
// trainer_pids.h). For CUDA slots every rank sees CUDA_VISIBLE_DEVICES set to the slots'
// indices (and CUDA_DEVICE_ORDER=PCI_BUS_ID, so those are the indices nvidia-smi reports);
// rank r uses the r-th of them.
//
// A gang: when one rank fails (a non-zero exit or a signal) while no stop was asked for, the
// others cannot go on (their collectives would wait for it forever), so the whole group is
// SIGKILLed at once and the attempt ends with that rank's reason ("rank 1 of 2 exited with
// code 1: <the end of its log>").
//
// Ownership: a TrainerProcess owns the ranks and their process group, the read end of the
// event pipe and two threads: a reader, which decodes rank 0's TrainerEvents and hands them to
// on_event, and a supervisor, which waits for every rank's exit, enforces Stop()'s grace
// period and the gang rule, kills what is left of the group once the ranks have exited, and
// then calls on_exit once. The destructor stops the ranks (SIGTERM, SIGKILL after
// kDefaultStopGrace) and joins both threads, so no process of the group outlives the object.
//
// Callbacks: on_event calls come in the order the trainer wrote the events (but TrainerProgress,
// which only the stall watch reads: TrainerOptions.stall_timeout), all of them before the
// single on_exit call. They run on the object's threads with none of its locks held; they
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
  // TrainConfig.cpu_threads for a job that leaves it 0: this many threads per assigned slot,
  // shared by the ranks (each rank gets its share).
  uint32_t cpu_threads_per_slot = 1;
  // A trainer that sends no event for this long is taken as hung (a collective that never
  // returns, a stopped process) and stopped as Stop(stall_grace, "stalled: ...") would; the
  // attempt ends with that reason and, not being the coordinator's stop, is retried while the
  // job has attempts left. ablate-train sends a TrainerProgress event at least every minute
  // while it steps or evaluates (trainer.proto), whatever its log_every. Zero: never.
  absl::Duration stall_timeout = absl::ZeroDuration();
  absl::Duration stall_grace = kDefaultStopGrace;
};

class TrainerProcess {
 public:
  using EventCallback = std::function<void(const v1::TrainerEvent&)>;
  // Receives job_id, attempt_id, succeeded, exit and, when the trainer sent one, its last
  // TrainerFinished event in `finished`; `cancelled` is left false, since only the caller knows
  // whether a stop was the coordinator's wish. `sequence` is left for the caller to number.
  using ExitCallback = std::function<void(const v1::AttemptEnded&)>;

  // Starts the trainer's ranks for `attempt_id` of `job` on `slots`. InvalidArgument when the
  // job id cannot name a directory; Internal (with the path and errno text) when the attempt's
  // directory or files cannot be written or the trainer cannot be executed. On error no
  // process is left running, no callback is ever called, and the attempt's directory is
  // removed when this call created it (with the job's, when that is left empty).
  static absl::StatusOr<std::unique_ptr<TrainerProcess>> Start(
      const TrainerOptions& options, const v1::JobSpec& job, uint64_t attempt_id,
      const std::vector<v1::Slot>& slots, EventCallback on_event, ExitCallback on_exit);

  TrainerProcess(const TrainerProcess&) = delete;
  TrainerProcess& operator=(const TrainerProcess&) = delete;
  ~TrainerProcess();

  // Asks the trainer to stop: SIGTERM to its process group now (the ranks save a checkpoint
  // and exit), SIGKILL to the group once `grace` has passed. The attempt then
  // ends as not succeeded, with `reason` as its exit reason ("cancelled"), followed by
  // ": killed by SIGKILL after <grace>" when the grace ran out. Returns at once. A later call
  // may only bring the SIGKILL forward (the first call's reason stands, and the grace counts
  // from it); a call after the exit does nothing.
  void Stop(absl::Duration grace, const std::string& reason);

  // Blocks until on_exit has returned, for at most `timeout`. Returns what on_exit received,
  // or nullopt on timeout.
  std::optional<v1::AttemptEnded> WaitForExit(absl::Duration timeout);

  // Rank 0's pid, which is also the process group's id.
  pid_t pid() const { return ranks_.front().pid; }
  const std::filesystem::path& attempt_dir() const { return attempt_dir_; }
  // Rank 0's trainer.log.
  const std::filesystem::path& log() const { return ranks_.front().log; }

 private:
  struct Rank {
    pid_t pid;
    UniqueFd pidfd;
    std::filesystem::path log;
  };

  TrainerProcess(const TrainerOptions& options, const v1::JobSpec& job, uint64_t attempt_id,
                 std::filesystem::path attempt_dir, std::vector<Rank> ranks, UniqueFd events,
                 UniqueFd wake, EventCallback on_event, ExitCallback on_exit);

  void ReadEvents();  // the reader thread
  void Supervise();   // the supervisor thread
  // Records that rank `index` has exited with `wait_status` (not yet reaped); the first failure
  // of a rank while no stop was asked for kills the group.
  void RankExited(size_t index, int wait_status);
  // Stop()'s body.
  void StopLocked(absl::Duration grace, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops a trainer silent for stall_timeout_; else how long until it would be (InfiniteDuration
  // when there is no such deadline).
  absl::Duration StallCheckLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The attempt's end from the ranks' wait statuses (rank order).
  v1::AttemptEnded Outcome(const std::vector<int>& wait_statuses);

  // Constant after construction.
  const std::string job_id_;
  const uint64_t attempt_id_;
  const std::filesystem::path work_dir_;
  const std::filesystem::path attempt_dir_;
  const std::vector<Rank> ranks_;  // rank 0 first; its pid is the process group's id
  const pid_t group_;
  const UniqueFd events_;
  const UniqueFd wake_;  // eventfd: Stop() wakes the supervisor to arm the SIGKILL deadline
  const absl::Duration stall_timeout_;  // TrainerOptions'
  const absl::Duration stall_grace_;
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
  absl::Time last_event_ ABSL_GUARDED_BY(mu_) = absl::Now();  // or the start
  int64_t last_step_ ABSL_GUARDED_BY(mu_) = 0;                // the newest step an event named
  // The first rank that failed on its own (not by a stop or by the gang's SIGKILL).
  std::optional<size_t> failed_rank_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::AttemptEnded> ended_ ABSL_GUARDED_BY(mu_);

  std::thread reader_;      // joined by the supervisor, before on_exit
  std::thread supervisor_;  // joined by the destructor
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_TRAINER_PROCESS_H_
