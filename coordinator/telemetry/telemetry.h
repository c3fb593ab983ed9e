// Telemetry owns the coordinator's Prometheus registry: counters the API and the worker
// service bump as they work, and gauges read from the store when /metrics is scraped, so a
// gauge never disagrees with the database.
//
// Series:
//   ablate_jobs{state="pending"|"assigned"|"running"|"succeeded"|"failed"|"cancelled"}   the
//                               sweeps' cells' jobs by state (JobCounts)
//   ablate_jobs{state="dropped_live"|"dropped_ended"}   jobs an update of their sweep dropped,
//                               not ended (they may hold a slot: JobCounts.dropped_live) or
//                               ended; JobCounts.dropped is the two together
//   ablate_workers_connected
//   ablate_rpcs_total{method="SubmitSweep"|...}   API calls, over gRPC or the JSON API
//   ablate_http_responses_total{route="api"|"events"|"metrics"|"healthz"|"dashboard",
//                               code="200"|"404"|...}   every HTTP response, refusals included
//   ablate_attempts_ended_total{state="succeeded"|"failed"|"lost"|"cancelled"}   attempts whose
//                               end the store recorded: a worker's report, or a lease run out
//   ablate_metric_points_ingested_total
//   ablate_sweeps_submitted_total
//   ablate_worker_events_spilled{worker="<id>"}   the counters of each worker's last heartbeat:
//   ablate_worker_events_dropped{worker="<id>"}   reports spilled to its disk, lost, and now
//   ablate_worker_events_unacked{worker="<id>"}   waiting for an Ack (worker.proto, Heartbeat)
//
// Thread safety: every method may be called from any thread.
#ifndef ABLATE_COORDINATOR_TELEMETRY_TELEMETRY_H_
#define ABLATE_COORDINATOR_TELEMETRY_TELEMETRY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "coordinator/store/store.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ablate::coordinator {

class Telemetry {
 public:
  // `store` must outlive the Telemetry.
  explicit Telemetry(Store& store);
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  void CountRpc(std::string_view method);
  // One HTTP response with status `code` to a request for `route` (one of the few route labels
  // above, never a raw path: paths hold ids, and a label per id would grow without bound).
  void CountHttpResponse(std::string_view route, int code);
  // An attempt ended in `state` (its end committed).
  void CountAttemptEnded(v1::AttemptState state);
  void CountMetricPoints(int64_t points);
  void CountSweepSubmitted();
  // Records the counters of a heartbeat from `worker_id`.
  void SetWorkerEvents(const std::string& worker_id, const v1::Heartbeat& heartbeat);

  // Refreshes the gauges from the store and renders every series in Prometheus' text format.
  // A store that cannot be read leaves the gauges at their last values.
  std::string Scrape();

 private:
  // Constant after construction; the registry and its families synchronize themselves.
  Store& store_;
  prometheus::Registry registry_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Gauge& workers_connected_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Counter>& http_responses_;
  prometheus::Family<prometheus::Counter>& attempts_ended_;
  prometheus::Counter& metric_points_;
  prometheus::Counter& sweeps_submitted_;
  prometheus::Family<prometheus::Gauge>& events_spilled_;
  prometheus::Family<prometheus::Gauge>& events_dropped_;
  prometheus::Family<prometheus::Gauge>& events_unacked_;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_TELEMETRY_TELEMETRY_H_
