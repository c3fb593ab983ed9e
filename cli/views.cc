#include "cli/views.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/slot_need.h"
#include "google/protobuf/util/json_util.h"
#include "sweep/grid.h"

namespace ablate::cli {
namespace {

// With tuning, the column that tells a cell's trials and final jobs apart.
constexpr char kTuningColumn[] = "tuning";

// A trial's rung and values, or the values a cell's final job trains with.
std::string TuningValue(const v1::JobSpec& job) {
  if (!job.has_trial() && !job.has_tuned()) return "";
  const std::string values =
      absl::StrFormat("lr %g wd %g", job.config().learning_rate(), job.config().weight_decay());
  if (job.has_tuned()) return absl::StrCat("chosen: ", values);
  return absl::StrCat("rung ", job.trial().rung(), ": ", values);
}

std::string LossText(bool present, double value) {
  return present ? absl::StrFormat("%.4f", value) : "-";
}

}  // namespace

std::string AttemptsText(const v1::Job& job) {
  const uint32_t uncounted = job.uncounted_attempts();
  if (uncounted == 0) return absl::StrCat(job.attempts());
  return absl::StrCat(job.attempts() - uncounted, " (+", uncounted, " not counted)");
}

std::optional<double> EvalLossOf(const v1::Job& job) {
  if (job.has_final_eval_loss()) return job.final_eval_loss();
  if (job.has_last_eval_loss()) return job.last_eval_loss();
  return std::nullopt;
}

std::string JobStateName(v1::JobState state) {
  return std::string(absl::StripPrefix(v1::JobState_Name(state), "JOB_STATE_"));
}

std::string SweepStateName(v1::SweepState state) {
  return std::string(absl::StripPrefix(v1::SweepState_Name(state), "SWEEP_STATE_"));
}

uint32_t DoneCount(const v1::JobCounts& counts) {
  return counts.succeeded() + counts.failed() + counts.cancelled();
}

std::string ShortJobId(const v1::Job& job) {
  absl::string_view id = job.spec().job_id();
  const std::string prefix = absl::StrCat(job.spec().sweep_id(), "-");
  return std::string(job.spec().sweep_id().empty() ? id : absl::StripPrefix(id, prefix));
}

std::vector<std::string> CellDimensions(const v1::Sweep& sweep) {
  std::vector<std::string> names;
  for (const v1::Dimension& dimension : sweep.spec().grid()) names.push_back(dimension.name());
  if (sweep.spec().repeats() > 0) names.emplace_back(sweep::kRepeatDimension);
  if (sweep.spec().has_tuning()) names.emplace_back(kTuningColumn);
  return names;
}

std::vector<std::string> CellValues(const v1::Sweep& sweep, const v1::Job& job) {
  // The cell lists values in grid order; matching by name keeps a missing value blank rather
  // than shifting the columns after it.
  std::vector<std::string> values;
  for (const std::string& name : CellDimensions(sweep)) {
    std::string value = name == kTuningColumn ? TuningValue(job.spec()) : "";
    // A trial trains on its cell's first seed, which its cell values leave out (they are the
    // cell's, shared by every repeat).
    if (name == sweep::kRepeatDimension && job.spec().has_trial()) {
      value = absl::StrCat(job.spec().config().seed());
    }
    for (const v1::CellValue& cell : job.spec().cell()) {
      if (cell.dimension() == name) value = cell.value();
    }
    values.push_back(std::move(value));
  }
  return values;
}

std::string FormatTime(const google::protobuf::Timestamp& time, absl::TimeZone zone) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  // The zone's abbreviation too: the table reads in the local zone, which a pasted copy loses.
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", absl::FromUnixSeconds(time.seconds()), zone);
}

Table SweepsTable(const v1::ListSweepsResponse& response, absl::TimeZone zone) {
  Table table({"SWEEP", "NAME", "STATE", "DONE", "CREATED"});
  table.SetAlign(3, Table::Align::kRight);
  for (const v1::Sweep& sweep : response.sweeps()) {
    // Jobs an update dropped are no cells of the sweep: apart, after its own.
    std::string done = absl::StrCat(DoneCount(sweep.counts()), "/", sweep.counts().total());
    if (sweep.counts().dropped() > 0) {
      absl::StrAppend(&done, " +", sweep.counts().dropped(), " dropped");
      // Those keep the sweep ACTIVE though its own jobs may all have ended.
      if (const uint32_t live = sweep.counts().dropped_live(); live > 0) {
        absl::StrAppend(&done, ", ", live, " not ended");
      }
    }
    table.AddRow({sweep.id(), sweep.spec().name(), SweepStateName(sweep.state()), std::move(done),
                  FormatTime(sweep.created_at(), zone)});
  }
  return table;
}

Table WorkersTable(const v1::ListWorkersResponse& response, absl::TimeZone zone) {
  Table table({"WORKER", "HOST", "STATE", "SLOTS", "FREE", "JOBS", "VERSION"});
  table.SetAlign(4, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  for (const v1::Worker& worker : response.workers()) {
    // Slots alike (kind, name, memory) as one group, in the order the worker lists them.
    std::vector<std::pair<std::string, int>> groups;
    for (const v1::Slot& slot : worker.info().slots()) {
      std::string what = slot.kind() == v1::DEVICE_KIND_CUDA ? slot.name() : "CPU";
      if (slot.memory_bytes() > 0) absl::StrAppend(&what, ", ", MemoryText(slot.memory_bytes()));
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& group) { return group.first == what; });
      if (it == groups.end()) {
        groups.emplace_back(what, 1);
      } else {
        ++it->second;
      }
    }
    std::vector<std::string> slots;
    slots.reserve(groups.size());
    for (const auto& [what, count] : groups) slots.push_back(absl::StrCat(count, " × ", what));
    const std::string state =
        !worker.connected()
            ? absl::StrCat("gone (last seen ", FormatTime(worker.last_seen(), zone), ")")
        : worker.has_backoff() ? "backing off"
                               : "connected";
    table.AddRow({worker.info().worker_id(), worker.info().hostname(), state,
                  slots.empty() ? "-" : absl::StrJoin(slots, "; "),
                  worker.connected() ? absl::StrCat(worker.free_slots()) : "-",
                  absl::StrCat(worker.job_ids_size()), worker.info().version()});
  }
  return table;
}

std::string WorkerBackoffLines(const v1::ListWorkersResponse& response, absl::Time now) {
  std::string lines;
  for (const v1::Worker& worker : response.workers()) {
    if (!worker.connected() || !worker.has_backoff()) continue;
    const v1::WorkerBackoff& backoff = worker.backoff();
    absl::StrAppend(&lines, worker.info().worker_id(), ": not taking work: ", backoff.reason());
    if (backoff.failures() > 1) {
      absl::StrAppend(&lines, " (", backoff.failures(), " failed starts in a row)");
    }
    const absl::Duration left = FromProto(backoff.retry_at()) - now;
    if (backoff.has_retry_at() && left > absl::ZeroDuration()) {
      absl::StrAppend(&lines, "; next try in ",
                      absl::ToInt64Seconds(absl::Ceil(left, absl::Seconds(1))), " s\n");
    } else {
      absl::StrAppend(&lines, "; trying one job until a trainer starts there\n");
    }
  }
  return lines;
}

std::string NewestCodeVersion(const Jobs& jobs) {
  const v1::Job* newest = nullptr;
  for (const v1::Job& job : jobs) {
    if (job.state() != v1::JOB_STATE_SUCCEEDED || job.provenance().code_version().empty()) {
      continue;
    }
    if (newest == nullptr || FromProto(job.updated_at()) >= FromProto(newest->updated_at())) {
      newest = &job;
    }
  }
  return newest == nullptr ? "" : newest->provenance().code_version();
}

namespace {

// A succeeded job whose code is not `newest`.
bool OtherCode(const v1::Job& job, const std::string& newest) {
  return job.state() == v1::JOB_STATE_SUCCEEDED && !job.provenance().code_version().empty() &&
         job.provenance().code_version() != newest;
}

}  // namespace

std::string CodeVersionLegend(const Jobs& jobs) {
  const std::string newest = NewestCodeVersion(jobs);
  std::set<std::string> others;
  for (const v1::Job& job : jobs) {
    if (OtherCode(job, newest)) others.insert(job.provenance().code_version());
  }
  if (others.empty()) return "";
  return absl::StrCat("* produced by code ", absl::StrJoin(others, ", "), ", not ", newest,
                      " (the newest result's)\n");
}

Table JobsTable(const v1::Sweep& sweep, const Jobs& jobs) {
  const std::string newest = NewestCodeVersion(jobs);
  std::vector<std::string> headers = {"JOB"};
  for (std::string& name : CellDimensions(sweep)) headers.push_back(std::move(name));
  const size_t first_number = headers.size() + 1;  // after STATE
  // The optimizer's state in bytes per parameter, once a trainer reported it.
  const bool state_bytes = std::any_of(jobs.begin(), jobs.end(), [](const v1::Job& job) {
    return job.provenance().optimizer_state_bytes_per_parameter() > 0;
  });
  for (absl::string_view h : {"STATE", "ATTEMPTS", "STEP", "LOSS", "EVAL LOSS"}) {
    headers.emplace_back(h);
  }
  if (state_bytes) headers.emplace_back("OPT B/PARAM");
  headers.emplace_back("MESSAGE");
  Table table(std::move(headers));
  for (size_t c = first_number; c < first_number + (state_bytes ? 5 : 4); ++c) {
    table.SetAlign(c, Table::Align::kRight);
  }

  for (const v1::Job& job : jobs) {
    std::vector<std::string> row = {job.spec().job_id()};
    for (std::string& value : CellValues(sweep, job)) row.push_back(std::move(value));
    row.push_back(absl::StrCat(JobStateName(job.state()), OtherCode(job, newest) ? "*" : "",
                               job.dropped() ? " (dropped)" : ""));
    row.push_back(AttemptsText(job));
    row.push_back(absl::StrCat(job.step()));
    row.push_back(LossText(job.has_last_loss(), job.last_loss()));
    const std::optional<double> eval = EvalLossOf(job);
    row.push_back(LossText(eval.has_value(), eval.value_or(0)));
    if (state_bytes) {
      const double bytes = job.provenance().optimizer_state_bytes_per_parameter();
      row.push_back(bytes > 0 ? absl::StrFormat("%.2f", bytes) : "-");
    }
    row.push_back(job.message());
    table.AddRow(std::move(row));
  }
  return table;
}

std::string CountsSummary(const v1::JobCounts& counts) {
  const std::pair<uint32_t, absl::string_view> parts[] = {
      {counts.succeeded(), "succeeded"}, {counts.failed(), "failed"},
      {counts.cancelled(), "cancelled"}, {counts.running(), "running"},
      {counts.assigned(), "assigned"},   {counts.pending(), "pending"},
  };
  std::vector<std::string> shown;
  for (const auto& [count, name] : parts) {
    if (count > 0) shown.push_back(absl::StrCat(count, " ", name));
  }
  std::string summary = absl::StrCat(counts.total(), counts.total() == 1 ? " job" : " jobs");
  if (!shown.empty()) absl::StrAppend(&summary, ": ", absl::StrJoin(shown, ", "));
  if (counts.dropped() > 0) {
    absl::StrAppend(&summary, "; ", counts.dropped(),
                    " more dropped by an update (out of the file, kept as they are, not counted; "
                    "`retry` runs a failed or cancelled one named)");
    if (counts.dropped_live() > 0) {
      absl::StrAppend(&summary, ", ", counts.dropped_live(), " of them not ended");
    }
  }
  return summary;
}

void CountNotes::Add(const v1::Job& job) {
  if (job.dropped() || !job.spec().has_trial()) return;
  ++trials;
  if (job.state() == v1::JOB_STATE_FAILED) ++failed_trials;
  if (job.state() == v1::JOB_STATE_CANCELLED) ++cancelled_trials;
}

std::string CountNotes::Summary() const {
  std::string out;
  if (trials > 0) {
    // What each kind of ended trial does to its cell's tuning (sweep/tuning.h).
    std::vector<std::string> ended;
    if (failed_trials > 0) {
      ended.push_back(absl::StrCat(failed_trials, " failed (ranked last, never chosen)"));
    }
    if (cancelled_trials > 0) {
      ended.push_back(absl::StrCat(cancelled_trials,
                                   " cancelled (their cells' tuning waits for `ablate retry "
                                   "--cancelled`)"));
    }
    absl::StrAppend(&out, "of which ", trials, trials == 1 ? " trial" : " trials",
                    ended.empty() ? "" : ": ", absl::StrJoin(ended, ", "), "\n");
  }
  return out;
}

std::string StatusText(const v1::Sweep& sweep, const Jobs& jobs) {
  CountNotes notes;
  for (const v1::Job& job : jobs) notes.Add(job);
  return absl::StrCat(JobsTable(sweep, jobs).Render(), CodeVersionLegend(jobs),
                      CountsSummary(sweep.counts()), "\n", notes.Summary());
}

absl::StatusOr<std::string> OneLineJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::InternalError(std::string(status.message()));
  return json;
}

// The field names are SweepSnapshot's, so the whole line parses as one: the one schema, not a
// hand-made object.
absl::Status StatusJsonWriter::Begin(const v1::Sweep& sweep) {
  absl::StatusOr<std::string> json = OneLineJson(sweep);
  if (!json.ok()) return json.status();
  out_ << R"({"sweep":)" << *json << R"(,"jobs":[)";
  return absl::OkStatus();
}

absl::Status StatusJsonWriter::Add(const v1::Job& job) {
  absl::StatusOr<std::string> json = OneLineJson(job);
  if (!json.ok()) return json.status();
  if (!first_job_) out_ << ',';
  first_job_ = false;
  out_ << *json;
  return absl::OkStatus();
}

void StatusJsonWriter::End() { out_ << "]}\n"; }

}  // namespace ablate::cli
