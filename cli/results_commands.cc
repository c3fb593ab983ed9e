// `ablate results` and `ablate compare`: a sweep's jobs read into cli/results.h's tables.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/results.h"
#include "cli/views.h"
#include "common/did_you_mean.h"

namespace ablate::cli {
namespace {

struct ReadOut {
  v1::Sweep sweep;
  v1::SweepResults results;
  // The series the first job that could have had a value logged, by name: what a note on a
  // missing series names. Empty when no such job was read (or it logged none).
  std::vector<std::string> a_job_series;
};

// Job `job_id` with its series `metric` thinned to the last point (the store's thinning keeps
// the last), and the names of every series it logged.
absl::StatusOr<v1::GetJobResponse> LastPoint(Client& client, const std::string& job_id,
                                             const std::string& metric) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  request.add_metric_names(metric);
  request.set_max_points(1);
  return client.GetJob(request);
}

// The value of LastPoint's point of `metric`; nullopt when the job has none.
std::optional<double> LastValue(const v1::GetJobResponse& job, const std::string& metric) {
  for (const v1::MetricSeries& series : job.metrics()) {
    if (series.name() == metric && !series.values().empty()) return series.values().rbegin()[0];
  }
  return std::nullopt;
}

// Reads every job of the sweep into results for `metric`; a metric the Job does not carry is
// read job by job, from the jobs that can have a result (succeeded, not a trial, not dropped).
absl::StatusOr<ReadOut> ReadResults(Client& client, const std::string& name_or_id,
                                    const std::string& metric) {
  absl::StatusOr<std::string> id = ResolveSweep(client, name_or_id);
  if (!id.ok()) return id.status();
  ReadOut out;
  absl::StatusOr<v1::Sweep> sweep = client.GetSweep(*id);
  if (!sweep.ok()) return sweep.status();
  out.sweep = *std::move(sweep);
  absl::StatusOr<ResultsBuilder> builder = ResultsBuilder::Create(out.sweep, metric);
  if (!builder.ok()) return builder.status();
  absl::Status failed;
  bool series_read = false;  // a_job_series is the first such job's
  absl::Status read = client.ForEachPage(*id, [&](const v1::ListJobsResponse& page) {
    for (const v1::Job& job : page.jobs()) {
      const bool can_have =
          job.state() == v1::JOB_STATE_SUCCEEDED && !job.dropped() && !job.spec().has_trial();
      if (builder->ReadsJobs() || !can_have || !failed.ok()) {
        builder->Add(job);
        continue;
      }
      absl::StatusOr<v1::GetJobResponse> point = LastPoint(client, job.spec().job_id(), metric);
      if (!point.ok()) {
        failed = point.status();
        builder->Add(job, std::nullopt);
        continue;
      }
      if (!series_read) {
        out.a_job_series.assign(point->logged_metric_names().begin(),
                                point->logged_metric_names().end());
        series_read = true;
      }
      builder->Add(job, LastValue(*point, metric));
    }
  });
  if (!read.ok()) return read;
  if (!failed.ok()) return failed;
  out.results = builder->Finish();
  return out;
}

// A problem with the command's own flags is a usage error; the coordinator's, a failure.
int FailResults(const Io& io, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    io.err << "ablate: " << status.message() << '\n';
    return kExitUsage;
  }
  return Fail(io, status);
}

// A table of dashes does not say why, nor tells a script that nothing more will come. When no
// cell has the metric, says so on io.err: kExitFailed once no job is left to run, else kExitOk.
int NoteMissingResults(const ReadOut& read, const Io& io) {
  for (const v1::CellResult& cell : read.results.cells()) {
    if (cell.has_metric()) return kExitOk;
  }
  const v1::JobCounts& n = read.sweep.counts();
  const std::string& metric = read.results.metric();
  const uint32_t unfinished = n.pending() + n.assigned() + n.running();
  const int code = unfinished > 0 ? kExitOk : kExitFailed;
  // A job that ended well without the series: the name is likely mistyped, and the jobs'
  // states say nothing about it.
  if (const std::vector<std::string>& series = read.a_job_series; !series.empty()) {
    io.err << "note: no succeeded job of " << read.sweep.id() << " logged " << metric
           << DidYouMean(metric, series) << "; they log " << absl::StrJoin(series, ", ") << "\n";
    return code;
  }
  io.err << "note: no cell of " << read.sweep.id() << " has a value of " << metric;
  if (unfinished > 0) {
    io.err << " yet (" << unfinished << " of " << n.total() << " jobs still to run)\n";
    return code;
  }
  io.err << ", and no job is left to run (" << n.failed() << " failed, " << n.cancelled()
         << " cancelled); `ablate status " << read.sweep.id() << "` shows why\n";
  return code;
}

}  // namespace

int ResultsCommand(Client& client, const std::string& sweep, const std::string& metric,
                   ResultsForm form, const Io& io) {
  absl::StatusOr<ReadOut> read = ReadResults(client, sweep, metric);
  if (!read.ok()) return FailResults(io, read.status());
  if (form == ResultsForm::kCsv) {
    io.out << ResultsCsv(read->sweep, read->results);
  } else if (form == ResultsForm::kJson) {
    absl::StatusOr<std::string> json = OneLineJson(read->results);
    if (!json.ok()) return Fail(io, json.status());
    io.out << *json << '\n';
  } else {
    io.out << ResultsText(read->sweep, read->results);
  }
  return NoteMissingResults(*read, io);
}

int CompareCommand(Client& client, const std::string& sweep, const std::string& rows,
                   const std::string& cols, const std::string& metric, const Io& io) {
  absl::StatusOr<ReadOut> read = ReadResults(client, sweep, metric);
  if (!read.ok()) return FailResults(io, read.status());
  absl::StatusOr<std::string> text = CompareText(read->sweep, read->results, rows, cols, io.color);
  if (!text.ok()) return FailResults(io, text.status());
  io.out << read->results.metric() << " of " << read->sweep.id() << ", mean over seeds\n" << *text;
  return NoteMissingResults(*read, io);
}

}  // namespace ablate::cli
