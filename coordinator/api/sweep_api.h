// SweepApi is what SweepService means, independent of transport: the gRPC service and the
// HTTP JSON API both call it, so the two cannot answer the same question differently. Every
// method takes and returns the messages of sweep_service.proto; errors are absl::Status values
// a transport maps to its own codes:
//   InvalidArgument    the request is malformed or the spec does not expand
//   NotFound           no sweep or job with that id
//   FailedPrecondition a sweep name that several sweeps have (the message lists their ids)
//   otherwise        the store's error
//
// Thread safety: every method may be called from many threads at once. Watch() blocks its
// caller for as long as the watch lasts.
//
// Memory: ListJobs answers a page at a time and GetJob thins each series to max_points, so
// neither grows with a sweep's size. A watch holds its change-feed subscription (a bounded
// queue of deltas); only its first message, the whole sweep, grows with the sweep.
#ifndef ABLATE_COORDINATOR_API_SWEEP_API_H_
#define ABLATE_COORDINATOR_API_SWEEP_API_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/api/log_tails.h"
#include "coordinator/api/tuning_driver.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"

namespace ablate::coordinator {

class SweepApi {
 public:
  // Sends one snapshot to the watcher; false when the watcher has gone.
  using SnapshotSink = std::function<bool(const v1::SweepSnapshot&)>;
  // True when the watch should end early: the client left or the server is stopping. A
  // transport may also use the call to send keep-alives.
  using StopCheck = std::function<bool()>;

  struct WatchOptions {
    // The version of the last message the client holds (an SSE Last-Event-ID): the watch
    // sends only the changes after it when the change feed can still replay them, else it
    // starts with the whole sweep as a fresh watch does.
    std::optional<int64_t> resume_after;
    // How often `stop` is asked while no change arrives.
    absl::Duration poll = absl::Milliseconds(200);
  };

  // Everything borrowed must outlive the SweepApi. `feed` is the one the store publishes to;
  // `log_tails` (may be null: no job has a log) the one the workers' tails go to.
  SweepApi(Store& store, ChangeFeed& feed, Scheduler& scheduler, Telemetry& telemetry, Clock& clock,
           const LogTails* log_tails = nullptr);
  SweepApi(const SweepApi&) = delete;
  SweepApi& operator=(const SweepApi&) = delete;

  // Validates and expands the spec, then stores the sweep with its jobs as PENDING (each with
  // its train_flops_per_token, from common/model_math) and asks the scheduler to place them. The
  // same spec again changes nothing and answers already_existed with the stored sweep. A request
  // with a sweep_file instead is parsed as a sweep file first (sweep/sweep_file.h);
  // InvalidArgument naming its line when it does not parse, or when it also has a spec. With
  // `update`, the sweep of the spec's name is updated instead (sweep_service.proto,
  // sweep/update.h): its new cells are stored and queued; submitted as new when no sweep has
  // the name.
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& request);
  // `sweep_id` may also be a name exactly one sweep has; the answer holds the sweep's id.
  absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& request);
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request);
  // A page of the sweep's jobs in expansion order (`sweep_id` may be a name exactly one sweep
  // has), only those in one of the states asked (`states` and `state`) when any is: one store
  // read whatever their number. page_size 0 reads kDefaultPageSize, and more than kMaxPageSize
  // reads kMaxPageSize; next_page_token is the expansion index the next page starts at.
  // InvalidArgument for a page_token this method did not give, or a state no JobState has.
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  static constexpr uint32_t kDefaultPageSize = 100;
  static constexpr uint32_t kMaxPageSize = 5000;
  // The job, its attempts and its metric series (max_points 0 reads 1000 points per series),
  // with the names asked that the job has no series of and those it has (GetJobResponse).
  absl::StatusOr<v1::GetJobResponse> GetJob(const v1::GetJobRequest& request);
  // The job's log tail as its worker last sent it, from memory or, for an ended attempt, the
  // store (log_tails.h), of the attempt the request names if it does; NotFound for an unknown
  // job.
  absl::StatusOr<v1::JobLog> GetJobLog(const v1::GetJobLogRequest& request);
  // `id` names a sweep (all its unfinished jobs: its id, or a name exactly one sweep has) or
  // one job. PENDING jobs end at once; the workers of ASSIGNED and RUNNING ones are told to
  // stop.
  absl::StatusOr<v1::CancelResponse> Cancel(const v1::CancelRequest& request);
  // Queues the FAILED and CANCELLED jobs the request names (by id, or every job of the sweep
  // in the states given) again, each for a new attempt with the sweep's retry budget afresh
  // (Store::RequeueJobs), and hands them to the scheduler. Named jobs that have not ended or
  // succeeded are refused one by one in the answer. InvalidArgument without a sweep, with
  // both or neither of job_ids and states, or with a state other than FAILED and CANCELLED.
  absl::StatusOr<v1::RetryJobsResponse> RetryJobs(const v1::RetryJobsRequest& request);
  // SweepSpec.max_attempts, or the default when it is 0.
  static uint32_t MaxAttemptsOf(const v1::SweepSpec& spec);

  // Sweeps with tuning that are stored, updated or retried from now on are handed to `driver`
  // (borrowed; it must outlive the SweepApi), which runs their tuning. Without one, their first
  // rung's trials run and nothing follows. Call before the first request.
  void SetTuningDriver(TuningDriver* driver) { tuning_ = driver; }

  // Stored workers, with the free slots and jobs of the connected ones.
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const v1::ListWorkersRequest& request);

  // Sends the whole sweep (`sweep_id` may be a name exactly one sweep has) at once (delta
  // false), then each change the change feed publishes
  // for it (delta true: one message per commit that touched the sweep; see
  // sweep_service.proto's SweepSnapshot). When the watcher falls behind the feed (a slow
  // reader, or one commit changing thousands of jobs) it is sent the whole sweep again. OK once
  // a message with every job ended (and, with tuning, nothing more to add) was sent, or when `sink`
  // refuses one or `stop` turns true (asked at least every options.poll); NotFound for an unknown
  // sweep; Unavailable when the feed closes (the coordinator is stopping); the store's error if a
  // read fails.
  absl::Status Watch(const v1::WatchSweepRequest& request, const SnapshotSink& sink,
                     const StopCheck& stop, const WatchOptions& options);
  absl::Status Watch(const v1::WatchSweepRequest& request, const SnapshotSink& sink,
                     const StopCheck& stop) {
    return Watch(request, sink, stop, WatchOptions());
  }

 private:
  // OK, or InvalidArgument "<field> is required" when `value` is empty.
  static absl::Status Require(const std::string& value, const char* field);
  // The sweep `name_or_id` names: its id, or a name exactly one sweep has. NotFound when
  // neither; FailedPrecondition, listing the ids, when several sweeps have the name.
  absl::StatusOr<v1::Sweep> FindSweep(const std::string& name_or_id);
  // The job `id` names, read: the job of that id, else the one job whose id ends with "-" +
  // `id` (the short id `plan`, `watch` and `retry` show). NotFound when neither; when several
  // jobs end so, FailedPrecondition naming them.
  absl::StatusOr<v1::Job> FindJob(const std::string& id);
  // The id of the one sweep named `name`; `not_found` when none is, FailedPrecondition, listing
  // the ids, when several are.
  absl::StatusOr<std::string> SweepIdNamed(const std::string& name, absl::Status not_found);
  // SubmitSweep of a valid spec with `update`, of the sweep `sweep_id` its name names.
  absl::StatusOr<v1::SubmitSweepResponse> UpdateSweep(const v1::SweepSpec& spec,
                                                      const std::string& sweep_id);
  // Whether every job of the sweep ended and, with tuning, the tuning will add none: between a
  // rung's last trial and its promotions every job has ended, but the sweep goes on.
  bool Ended(const v1::Sweep& sweep);
  // Adds to `response` a warning for each path of `jobs` that no connected worker's roots hold
  // (root_check.h). A failed read of the workers is logged, not returned: the warnings are
  // advice, and the submission goes on without them.
  void WarnOfRoots(const std::vector<v1::JobSpec>& jobs, v1::SubmitSweepResponse* response);
  // Sets each attempt's folder from its worker's work_dir (Attempt.folder), where the store
  // knows it; a failed read of the workers leaves them empty.
  void SetFolders(const std::string& job_id, std::vector<v1::Attempt>& attempts);
  // AlreadyExists naming the sweeps stored under `name`, for a new spec of that name submitted
  // without update or new_sweep (an edited file, whose user must choose); OK where none is.
  absl::Status RefuseTwinName(const std::string& name);
  // Hands a sweep of `spec` to the tuning driver, when it has tuning and there is one.
  void WatchTuning(const std::string& sweep_id, const v1::SweepSpec& spec);
  // Sets each job's train_flops_per_token (common/model_math), computed once per model and
  // attention shape; 0 for a model whose config cannot be read.
  static void SetTrainFlops(std::vector<v1::JobSpec>& jobs);

  // Subscribes to the sweep's changes, then sends the whole sweep as of a version the
  // subscription continues from. Sets *ended when every job of it has ended.
  absl::StatusOr<std::unique_ptr<ChangeFeed::Subscription>> StartFresh(const std::string& sweep_id,
                                                                       const SnapshotSink& sink,
                                                                       bool* ended);

  // Constant after construction.
  Store& store_;
  ChangeFeed& feed_;
  Scheduler& scheduler_;
  Telemetry& telemetry_;
  Clock& clock_;
  const LogTails* const log_tails_;
  TuningDriver* tuning_ = nullptr;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_SWEEP_API_H_
