#include "coordinator/telemetry/telemetry.h"

#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "prometheus/text_serializer.h"

namespace ablate::coordinator {

Telemetry::Telemetry(Store& store)
    : store_(store),
      jobs_(prometheus::BuildGauge()
                .Name("ablate_jobs")
                .Help("Jobs by state, read from the store at scrape time")
                .Register(registry_)),
      workers_connected_(prometheus::BuildGauge()
                             .Name("ablate_workers_connected")
                             .Help("Workers holding a stream to the coordinator")
                             .Register(registry_)
                             .Add({})),
      rpcs_(prometheus::BuildCounter()
                .Name("ablate_rpcs_total")
                .Help("SweepService calls, over gRPC and the JSON API, by method")
                .Register(registry_)),
      http_responses_(prometheus::BuildCounter()
                          .Name("ablate_http_responses_total")
                          .Help("HTTP responses of the coordinator, by route and status code")
                          .Register(registry_)),
      attempts_ended_(prometheus::BuildCounter()
                          .Name("ablate_attempts_ended_total")
                          .Help("Attempts whose end the store recorded, by how they ended")
                          .Register(registry_)),
      metric_points_(prometheus::BuildCounter()
                         .Name("ablate_metric_points_ingested_total")
                         .Help("Metric points stored from workers' reports")
                         .Register(registry_)
                         .Add({})),
      sweeps_submitted_(prometheus::BuildCounter()
                            .Name("ablate_sweeps_submitted_total")
                            .Help("Sweeps created (resubmissions of a stored sweep excluded)")
                            .Register(registry_)
                            .Add({})),
      events_spilled_(prometheus::BuildGauge()
                          .Name("ablate_worker_events_spilled")
                          .Help("Reports a worker spilled to its disk, as its last heartbeat said")
                          .Register(registry_)),
      events_dropped_(prometheus::BuildGauge()
                          .Name("ablate_worker_events_dropped")
                          .Help("Reports a worker lost, as its last heartbeat said")
                          .Register(registry_)),
      events_unacked_(prometheus::BuildGauge()
                          .Name("ablate_worker_events_unacked")
                          .Help("Reports a worker holds until acknowledged, at its last heartbeat")
                          .Register(registry_)) {}

void Telemetry::CountRpc(std::string_view method) {
  rpcs_.Add({{"method", std::string(method)}}).Increment();
}

void Telemetry::CountHttpResponse(std::string_view route, int code) {
  http_responses_.Add({{"route", std::string(route)}, {"code", std::to_string(code)}}).Increment();
}

void Telemetry::CountAttemptEnded(v1::AttemptState state) {
  // ATTEMPT_STATE_SUCCEEDED -> "succeeded", as ablate_jobs names job states.
  absl::string_view name = v1::AttemptState_Name(state);
  absl::ConsumePrefix(&name, "ATTEMPT_STATE_");
  attempts_ended_.Add({{"state", absl::AsciiStrToLower(name)}}).Increment();
}

void Telemetry::CountMetricPoints(int64_t points) {
  metric_points_.Increment(static_cast<double>(points));
}

void Telemetry::CountSweepSubmitted() { sweeps_submitted_.Increment(); }

void Telemetry::SetWorkerEvents(const std::string& worker_id, const v1::Heartbeat& heartbeat) {
  const std::map<std::string, std::string> labels = {{"worker", worker_id}};
  events_spilled_.Add(labels).Set(static_cast<double>(heartbeat.events_spilled()));
  events_dropped_.Add(labels).Set(static_cast<double>(heartbeat.events_dropped()));
  events_unacked_.Add(labels).Set(static_cast<double>(heartbeat.events_unacked()));
}

std::string Telemetry::Scrape() {
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_.ListSweeps();
  if (sweeps.ok()) {
    v1::JobCounts total;
    for (const v1::Sweep& sweep : *sweeps) {
      const v1::JobCounts& c = sweep.counts();
      total.set_pending(total.pending() + c.pending());
      total.set_assigned(total.assigned() + c.assigned());
      total.set_running(total.running() + c.running());
      total.set_succeeded(total.succeeded() + c.succeeded());
      total.set_failed(total.failed() + c.failed());
      total.set_cancelled(total.cancelled() + c.cancelled());
      total.set_dropped(total.dropped() + c.dropped());
      total.set_dropped_live(total.dropped_live() + c.dropped_live());
    }
    jobs_.Add({{"state", "pending"}}).Set(total.pending());
    jobs_.Add({{"state", "assigned"}}).Set(total.assigned());
    jobs_.Add({{"state", "running"}}).Set(total.running());
    jobs_.Add({{"state", "succeeded"}}).Set(total.succeeded());
    jobs_.Add({{"state", "failed"}}).Set(total.failed());
    jobs_.Add({{"state", "cancelled"}}).Set(total.cancelled());
    jobs_.Add({{"state", "dropped_ended"}}).Set(total.dropped() - total.dropped_live());
    jobs_.Add({{"state", "dropped_live"}}).Set(total.dropped_live());
  } else {
    ABLATE_LOG(WARNING) << "job gauges not refreshed error=\"" << sweeps.status().message() << "\"";
  }
  absl::StatusOr<std::vector<v1::Worker>> workers = store_.ListWorkers();
  if (workers.ok()) {
    int connected = 0;
    for (const v1::Worker& worker : *workers) connected += worker.connected() ? 1 : 0;
    workers_connected_.Set(connected);
  }
  return prometheus::TextSerializer().Serialize(registry_.Collect());
}

}  // namespace ablate::coordinator
