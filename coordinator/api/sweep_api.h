// SweepApi is what SweepService means, independent of transport: the gRPC service and the
// HTTP JSON API both call it, so the two cannot answer the same question differently. Every
// method takes and returns the messages of sweep_service.proto; errors are absl::Status values
// a transport maps to its own codes:
//   InvalidArgument  the request is malformed or the spec does not expand
//   NotFound         no sweep or job with that id
//   otherwise        the store's error
//
// Thread safety: every method may be called from many threads at once. Watch() blocks its
// caller for as long as the watch lasts.
#ifndef ABLATE_COORDINATOR_API_SWEEP_API_H_
#define ABLATE_COORDINATOR_API_SWEEP_API_H_

#include <functional>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"

namespace ablate::coordinator {

class SweepApi {
 public:
  // Sends one snapshot to the watcher; false when the watcher has gone.
  using SnapshotSink = std::function<bool(const v1::SweepSnapshot&)>;
  // True when the watch should end early: the client left or the server is stopping.
  using StopCheck = std::function<bool()>;

  // Everything borrowed must outlive the SweepApi.
  SweepApi(Store& store, Scheduler& scheduler, Telemetry& telemetry, Clock& clock);
  SweepApi(const SweepApi&) = delete;
  SweepApi& operator=(const SweepApi&) = delete;

  // Validates and expands the spec, then stores the sweep with its jobs as PENDING and asks the
  // scheduler to place them. The same spec again changes nothing and answers already_existed
  // with the stored sweep.
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& request);
  absl::StatusOr<v1::Sweep> GetSweep(const v1::GetSweepRequest& request);
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps(const v1::ListSweepsRequest& request);
  // A page of the sweep's jobs in expansion order: page_size 0 reads kDefaultPageSize, and
  // more than kMaxPageSize reads kMaxPageSize. InvalidArgument for a page_token this method
  // did not give.
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  static constexpr uint32_t kDefaultPageSize = 500;
  static constexpr uint32_t kMaxPageSize = 5000;
  // The job, its attempts and its metric series (max_points 0 reads 1000 points per series).
  absl::StatusOr<v1::GetJobResponse> GetJob(const v1::GetJobRequest& request);
  // `id` names a sweep (all its unfinished jobs) or one job. PENDING jobs end at once; the
  // workers of ASSIGNED and RUNNING ones are told to stop.
  absl::StatusOr<v1::CancelResponse> Cancel(const v1::CancelRequest& request);
  // Stored workers, with the free slots and jobs of the connected ones.
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const v1::ListWorkersRequest& request);

  // Sends a snapshot of the sweep at once, then a new one after store changes that change it,
  // at most one per `poll` (a busy sweep commits metrics many times a second, and every
  // snapshot reads all its jobs). OK once a snapshot with every job ended was sent, or when
  // `sink` refuses a snapshot or `stop` turns true (checked at least every `poll`); NotFound
  // for an unknown sweep; the store's error if it fails meanwhile.
  absl::Status Watch(const v1::WatchSweepRequest& request, const SnapshotSink& sink,
                     const StopCheck& stop, absl::Duration poll = absl::Milliseconds(200));

 private:
  absl::StatusOr<v1::SweepSnapshot> Snapshot(const std::string& sweep_id);

  // Constant after construction.
  Store& store_;
  Scheduler& scheduler_;
  Telemetry& telemetry_;
  Clock& clock_;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_SWEEP_API_H_
