// The text forms of sweeps and jobs that the commands print: state names, tables, summary
// lines and the machine-readable JSON of `status --json`. Pure functions of the protos and a
// time zone, so tests can pin their output; safe from any thread.
#ifndef ABLATE_CLI_VIEWS_H_
#define ABLATE_CLI_VIEWS_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "ablate/v1/sweep_service.pb.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/table.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"

namespace ablate::cli {

using Jobs = google::protobuf::RepeatedPtrField<v1::Job>;

// "RUNNING", "SUCCEEDED": the enum's name without its prefix.
std::string JobStateName(v1::JobState state);
std::string SweepStateName(v1::SweepState state);

// Jobs that ended (succeeded, failed or cancelled).
uint32_t DoneCount(const v1::JobCounts& counts);

// The job's eval/loss: its final one once it succeeded, else the newest its run reported (an
// evaluation during the run), else none.
std::optional<double> EvalLossOf(const v1::Job& job);

// The job id without its sweep's id in front ("460358" for "tiny-grid-5f6276bf-460358"), for
// views that already name the sweep.
std::string ShortJobId(const v1::Job& job);

// The columns that tell a sweep's jobs apart: its grid dimensions in order, then the repeat's
// seed when the sweep has repeats, then, with tuning, "tuning": a trial's rung and values
// ("rung 1: lr 0.003 wd 0") or a final job's chosen ones ("chosen: lr 0.003 wd 0").
std::vector<std::string> CellDimensions(const v1::Sweep& sweep);

// The job's value on each of CellDimensions(sweep), in that order; empty where the job's cell
// names no value for a dimension. A trial's seed is its config's (the cell's first seed, which
// every trial of the cell trains on).
std::vector<std::string> CellValues(const v1::Sweep& sweep, const v1::Job& job);

// "2026-11-23 14:33:49" in `zone`; "-" when unset.
std::string FormatTime(const google::protobuf::Timestamp& time, absl::TimeZone zone);

// A sweep per row: id, name, state, done/total, created.
Table SweepsTable(const v1::ListSweepsResponse& response, absl::TimeZone zone);

// A worker per row, as ListWorkers answers: id, host, whether it is connected ("backing off"
// while it takes no work after failed starts; else when it was last seen), its slots by kind,
// name and memory ("8 × NVIDIA H200, 139.7 GiB"), how many are free, how many jobs it runs,
// its version.
Table WorkersTable(const v1::ListWorkersResponse& response, absl::TimeZone zone);

// A line per connected worker backing off (Worker.backoff), for below WorkersTable: "n1: not
// taking work: <the failed start's reason> (2 failed starts in a row); next try in 8 s", or,
// its rest over at `now`, "...; trying one job until a trainer starts there". "" when none is.
std::string WorkerBackoffLines(const v1::ListWorkersResponse& response, absl::Time now);

// The code version (Provenance.code_version) of the succeeded job among `jobs` updated last;
// "" when none reported one.
std::string NewestCodeVersion(const Jobs& jobs);

// The ATTEMPTS cell of a job: the attempts counted against its max_attempts, then "(+K not
// counted)" for its Job.uncounted_attempts: those its worker interrupted, and those before a
// retry, which grants the budget afresh ("2 (+1 not counted)"; "2" when there are none).
std::string AttemptsText(const v1::Job& job);

// A job per row: id, one column per grid dimension, state, attempts, step, last loss, final
// eval loss, the optimizer's state in bytes per parameter (OPT B/PARAM, only once some job's
// trainer reported it), message. The state of a succeeded job produced by another code version
// than NewestCodeVersion(jobs) ends in '*' (CodeVersionLegend explains it); that of a job an
// update of the sweep dropped (Job.dropped) in " (dropped)".
Table JobsTable(const v1::Sweep& sweep, const Jobs& jobs);

// "* produced by code 0.1.0+aaa, not 0.1.0+bbb (the newest result's)\n" when JobsTable marks a
// job of `jobs`; else "".
std::string CodeVersionLegend(const Jobs& jobs);

// "4 jobs: 2 succeeded, 1 failed, 1 running"; states with no job are left out. The jobs an
// update dropped, which the counts by state leave out, follow: "; 2 more dropped by an update
// (...), 1 of them not ended".
std::string CountsSummary(const v1::JobCounts& counts);

// What the counts by state hold that needs telling apart, from the sweep's jobs: a tuned
// sweep's trials (a trial that failed or was cancelled ranks last in its rung and is never
// chosen; the sweep's state is decided by its cells' final jobs, so the trials' ends are told
// apart here). Jobs an update dropped are no trials of the sweep now.
struct CountNotes {
  uint32_t trials = 0;
  uint32_t failed_trials = 0;
  uint32_t cancelled_trials = 0;

  void Add(const v1::Job& job);
  // "of which 6 trials: 2 failed (ranked last, never chosen), 1 cancelled (...)\n" ("of which
  // 6 trials\n" when none failed); empty without trials.
  std::string Summary() const;
};

// The `status` command's whole text: the jobs table, the code version legend, then the
// summary line and the lines of CountNotes.
std::string StatusText(const v1::Sweep& sweep, const Jobs& jobs);

// `message` in protobuf's JSON mapping on one line, every field printed, even at its default,
// so a script finds every key. Internal when a string is not UTF-8.
absl::StatusOr<std::string> OneLineJson(const google::protobuf::Message& message);

// Writes `status --json` as pages of jobs arrive: {"sweep": {...}, "jobs": [...]} on one
// line, a SweepSnapshot in protobuf's JSON mapping. Fields at their default are printed too,
// so a script finds every key on every job. Memory stays one job's, whatever the sweep's size.
// Borrows `out`; not thread-safe.
class StatusJsonWriter {
 public:
  explicit StatusJsonWriter(std::ostream& out) : out_(out) {}
  // Call Begin once, Add per job in order, then End. An error only when a message does not
  // print (a string that is not UTF-8).
  absl::Status Begin(const v1::Sweep& sweep);
  absl::Status Add(const v1::Job& job);
  void End();

 private:
  std::ostream& out_;
  bool first_job_ = true;
};

}  // namespace ablate::cli

#endif  // ABLATE_CLI_VIEWS_H_
