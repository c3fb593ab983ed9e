#include "cli/job_log.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep_service.pb.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli/interrupt.h"
#include "cli/views.h"
#include "common/job_state.h"
#include "google/protobuf/util/time_util.h"

namespace ablate::cli {
namespace {

using google::protobuf::util::TimeUtil;

// The job and its attempts, without its metrics (one point of one series: GetJob has no way
// to ask for none).
absl::StatusOr<v1::GetJobResponse> JobOnly(Client& client, const std::string& job_id) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  request.add_metric_names("train/loss");
  request.set_max_points(1);
  return client.GetJob(request);
}

const v1::Attempt* FindAttempt(const v1::GetJobResponse& job, uint64_t attempt_id) {
  for (const v1::Attempt& attempt : job.attempts()) {
    if (attempt.id() == attempt_id) return &attempt;
  }
  return nullptr;
}

// The attempt's folder on its worker: as the coordinator gives it (Attempt.folder), else
// "<work dir>/JOB/attempt-ID/" where its worker did not say its work dir. The folder is named by
// the attempt's id, unique across the coordinator, not by its number among the job's attempts.
std::string Folder(const v1::GetJobResponse& job, const v1::Attempt* attempt, uint64_t attempt_id) {
  if (attempt != nullptr && !attempt->folder().empty()) return attempt->folder();
  return absl::StrCat("<work dir>/", job.job().spec().job_id(), "/attempt-", attempt_id, "/");
}

// "trainer.log in /runs/w1/JOB/attempt-A/ on worker W": the whole log of the attempt.
std::string WholeLog(const v1::GetJobResponse& job, uint64_t attempt_id) {
  const v1::Attempt* attempt = FindAttempt(job, attempt_id);
  const std::string worker =
      attempt != nullptr ? attempt->worker_id() : std::string(job.job().worker_id());
  return absl::StrCat("trainer.log in ", Folder(job, attempt, attempt_id), " on worker ",
                      worker.empty() ? "(none yet)" : worker);
}

// "other attempts' whole logs: /runs/w1/JOB/attempt-9/ on worker w1, ...": each attempt of
// `job` but `attempt_id` that ran a trainer (one refused before has no folder).
std::string OtherLogs(const v1::GetJobResponse& job, uint64_t attempt_id) {
  std::vector<std::string> folders;
  for (const v1::Attempt& attempt : job.attempts()) {
    if (attempt.id() == attempt_id || attempt.never_started()) continue;
    folders.push_back(
        absl::StrCat(Folder(job, &attempt, attempt.id()), " on worker ", attempt.worker_id()));
  }
  if (folders.empty()) return "other attempts never started a trainer";
  return absl::StrCat("other attempts' whole logs (trainer.log): ", absl::StrJoin(folders, ", "),
                      " (ablate log --attempt N ", job.job().spec().job_id(),
                      " prints the Nth attempt's last lines)");
}

// "attempt 2 (id 9) on worker w2": the attempt's number among the job's (every attempt, those
// not counted against max_attempts too), then the id that names its folder; "attempt id 9"
// for one newer than `job` knows.
std::string AttemptName(const v1::GetJobResponse& job, uint64_t attempt_id) {
  for (int i = 0; i < job.attempts_size(); ++i) {
    const v1::Attempt& attempt = job.attempts(i);
    if (attempt.id() != attempt_id) continue;
    return absl::StrCat(
        "attempt ", i + 1, " (id ", attempt_id, ")",
        attempt.worker_id().empty() ? "" : absl::StrCat(" on worker ", attempt.worker_id()));
  }
  return absl::StrCat("attempt id ", attempt_id);
}

// Why the attempt ended before its trainer started (Attempt.never_started: its worker refused
// it, for a path outside its roots, no free slot, a shutdown), which left no trainer.log and
// mostly no folder at all; nullopt when it started one, or has not ended, or the job has no
// such attempt. The reason loses the "not started: " the worker opens it with, which the
// caller's words say.
std::optional<std::string> WhyNotStarted(const v1::GetJobResponse& job, uint64_t attempt_id) {
  const v1::Attempt* attempt = FindAttempt(job, attempt_id);
  if (attempt == nullptr || !attempt->never_started()) return std::nullopt;
  return std::string(absl::StripPrefix(attempt->exit().reason(), "not started: "));
}

// Why a job has no log lines at the coordinator.
std::string NoLines(const v1::GetJobResponse& job) {
  const v1::Job& j = job.job();
  if (j.current_attempt_id() == 0) {
    return absl::StrCat("ablate: log: ", j.spec().job_id(), " is ", JobStateName(j.state()),
                        " and has not started: no log yet",
                        j.message().empty() ? "" : absl::StrCat(" (", j.message(), ")"));
  }
  if (std::optional<std::string> why = WhyNotStarted(job, j.current_attempt_id())) {
    return absl::StrCat("ablate: log: ", j.spec().job_id(), " is ", JobStateName(j.state()),
                        " and has no log", JobStateHasEnded(j.state()) ? "" : " yet", ": ",
                        AttemptName(job, j.current_attempt_id()),
                        " never started its trainer: ", *why);
  }
  if (!JobStateHasEnded(j.state())) {
    return absl::StrCat("ablate: log: no line of ", j.spec().job_id(),
                        "'s log has arrived yet (its worker sends the log every few seconds)");
  }
  return absl::StrCat("ablate: log: the coordinator holds no line of ", j.spec().job_id(),
                      "'s log: none arrived before its attempt ended. The whole log is ",
                      WholeLog(job, j.current_attempt_id()));
}

// Whether `log` holds the last lines of the job's current attempt, which ended: its worker
// sent them after the attempt ended.
bool HasLastLines(const v1::GetJobResponse& job, const v1::JobLog& log) {
  if (log.attempt_id() != job.job().current_attempt_id()) return false;
  const v1::Attempt* attempt = FindAttempt(job, log.attempt_id());
  return attempt != nullptr && attempt->has_ended_at() &&
         TimeUtil::TimestampToNanoseconds(log.updated_at()) >=
             TimeUtil::TimestampToNanoseconds(attempt->ended_at());
}

// Follows the log until the job ended and its last lines arrived (LogChoice.follow).
class Follower {
 public:
  Follower(Client& client, const LogChoice& choice, const Io& io)
      : client_(client), choice_(choice), io_(io) {}

  int Run(const std::string& id) {
    absl::StatusOr<v1::GetJobResponse> job = JobOnly(client_, id);
    if (!job.ok()) return Fail(io_, job.status());
    const std::string job_id = job->job().spec().job_id();
    SayOnInterrupt(absl::StrCat("ablate: stopped following the log; job ", job_id,
                                " goes on (ablate log -f ", job_id, " follows it again)"));
    std::optional<absl::Time> ended_seen;
    bool said_waiting = false;
    while (true) {
      absl::StatusOr<v1::JobLog> log = client_.GetJobLog(job_id);
      if (!log.ok()) return Fail(io_, log.status());
      // The tail of an attempt that started between the two reads: the job again, which names
      // that attempt and says how its predecessor ended.
      if (log->attempt_id() != 0 && FindAttempt(*job, log->attempt_id()) == nullptr) {
        job = JobOnly(client_, job_id);
        if (!job.ok()) return Fail(io_, job.status());
      }
      const bool ended = JobStateHasEnded(job->job().state());
      if (ended && !ended_seen) ended_seen = absl::Now();
      // The worker sends an ended attempt's tail once more only where its lines changed, so an
      // unchanged tail a moment after the end is the whole of it.
      const bool last =
          ended && (HasLastLines(*job, *log) || absl::Now() - *ended_seen >= choice_.settle);
      if (log->attempt_id() == 0 && !said_waiting && !last) {
        io_.err << NoLines(*job) << '\n';
        said_waiting = true;
      }
      if (absl::Status shown = Show(*job, *log, /*all=*/last); !shown.ok()) {
        return Fail(io_, shown);
      }
      if (last) return End(*job, *log);
      absl::SleepFor(choice_.poll);
      job = JobOnly(client_, job_id);
      if (!job.ok()) return Fail(io_, job.status());
    }
  }

 private:
  // Prints the lines of `log` not shown yet, after the rest of the attempt followed so far
  // where `log` is a newer one's. The error of a failed read.
  absl::Status Show(const v1::GetJobResponse& job, const v1::JobLog& log, bool all) {
    if (log.attempt_id() == 0) return absl::OkStatus();
    if (log.attempt_id() != attempt_id_) {
      if (attempt_id_ != 0) {
        if (absl::Status ended = EndOfAttempt(job); !ended.ok()) return ended;
      }
      if (attempt_id_ != 0 || log.truncated()) {
        io_.err << "ablate: log: " << AttemptName(job, log.attempt_id())
                << (log.truncated()
                        ? absl::StrCat(" (earlier lines: ", WholeLog(job, log.attempt_id()), ")")
                        : std::string())
                << '\n';
      }
      attempt_id_ = log.attempt_id();
      shown_.clear();
      shown_at_ = 0;
      holding_ = false;
    }
    ShowLines(job, log, all);
    return absl::OkStatus();
  }

  // Prints the lines of `log`, a tail of the attempt followed, not shown yet; all of them once
  // the attempt ended, else all but its newest, which the trainer may still be writing (a tail
  // keeps a last line without its newline as it stands).
  void ShowLines(const v1::GetJobResponse& job, const v1::JobLog& log, bool all) {
    std::vector<std::string> lines(log.lines().begin(), log.lines().end());
    shown_at_ = TimeUtil::TimestampToNanoseconds(log.updated_at());
    const size_t keep = all || lines.empty() ? lines.size() : lines.size() - 1;
    const size_t shared = SharedLines(shown_, lines);
    if (shared == 0 && !shown_.empty() && keep > 0) {
      io_.err << "ablate: log: lines skipped (the log moved on by more than the coordinator "
                 "keeps between two reads; they are in "
              << WholeLog(job, attempt_id_) << ")\n";
    }
    for (size_t i = std::min(shared, keep); i < keep; ++i) io_.out << lines[i] << '\n';
    io_.out.flush();
    if (keep > shared) shown_.assign(lines.begin(), lines.begin() + static_cast<long>(keep));
    holding_ = keep < lines.size();
    if (holding_) held_ = lines.back();
  }

  // The attempt followed so far was replaced: the rest of its lines, then how it ended. The
  // newer attempt's first tail may have replaced its last one at the coordinator between two
  // reads, so that one is asked for by the attempt's id. Where the coordinator holds none newer
  // than the one shown, the line held back is the last one seen. The error of a failed read.
  absl::Status EndOfAttempt(const v1::GetJobResponse& job) {
    absl::StatusOr<v1::JobLog> last = client_.GetJobLog(job.job().spec().job_id(), attempt_id_);
    if (!last.ok()) return last.status();
    if (last->attempt_id() == attempt_id_ &&
        TimeUtil::TimestampToNanoseconds(last->updated_at()) >= shown_at_) {
      ShowLines(job, *last, /*all=*/true);
    } else if (holding_) {
      io_.out << held_ << '\n';
      io_.out.flush();
    }
    const v1::Attempt* ended = FindAttempt(job, attempt_id_);
    if (ended != nullptr && !ended->exit().reason().empty()) {
      io_.err << "ablate: log: " << AttemptName(job, attempt_id_)
              << " ended: " << ended->exit().reason()
              << " (any later lines: " << WholeLog(job, attempt_id_) << ")\n";
    }
    return absl::OkStatus();
  }

  int End(const v1::GetJobResponse& job, const v1::JobLog& log) {
    const v1::Job& j = job.job();
    const v1::Attempt* current = FindAttempt(job, j.current_attempt_id());
    if (current != nullptr && current->state() == v1::ATTEMPT_STATE_LOST &&
        !WhyNotStarted(job, current->id()).has_value()) {
      io_.err << "ablate: log: its worker is gone, so the last lines may be missing; the whole "
                 "log is "
              << WholeLog(job, j.current_attempt_id()) << '\n';
    }
    io_.err << "ablate: log: " << j.spec().job_id() << " " << JobStateName(j.state())
            << (j.message().empty() ? "" : absl::StrCat(": ", j.message())) << '\n';
    return j.state() == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitFailed;
  }

  Client& client_;
  const LogChoice& choice_;
  const Io& io_;
  uint64_t attempt_id_ = 0;
  std::vector<std::string> shown_;  // the current attempt's lines printed last, oldest first
  int64_t shown_at_ = 0;            // when the coordinator received the tail shown last (ns)
  // Its newest line, not printed while it may grow (a flag beside the text: an empty line is
  // a line).
  bool holding_ = false;
  std::string held_;
};

// Prints the tail of the job's attempt number `number` (LogChoice.attempt).
int AttemptLog(Client& client, const v1::GetJobResponse& job, uint32_t number, const Io& io) {
  const std::string& job_id = job.job().spec().job_id();
  if (number > static_cast<uint32_t>(job.attempts_size())) {
    io.err << "ablate: log: --attempt " << number << ": " << job_id << " has "
           << (job.attempts_size() == 0 ? std::string("no attempt yet")
                                        : absl::StrCat(job.attempts_size(), " attempt",
                                                       job.attempts_size() == 1 ? "" : "s"))
           << '\n';
    return kExitFailed;
  }
  const v1::Attempt& attempt = job.attempts(static_cast<int>(number) - 1);
  const std::string name = AttemptName(job, attempt.id());
  if (std::optional<std::string> why = WhyNotStarted(job, attempt.id())) {
    io.err << "ablate: log: " << name << " never started its trainer, so it has no log: " << *why
           << '\n';
    return kExitOk;
  }
  absl::StatusOr<v1::JobLog> log = client.GetJobLog(job_id, attempt.id());
  if (!log.ok()) return Fail(io, log.status());
  if (log->attempt_id() != attempt.id()) {
    io.err << "ablate: log: the coordinator holds no line of " << name
           << " (it keeps the newest attempt's and those of the 8 newest that ended); the whole "
              "log is "
           << WholeLog(job, attempt.id()) << '\n';
    return kExitOk;
  }
  for (const std::string& line : log->lines()) io.out << line << '\n';
  io.err << "ablate: log: " << name << "'s "
         << (log->truncated()
                 ? absl::StrCat("last ", log->lines_size(), " lines; the whole log is ",
                                WholeLog(job, attempt.id()))
                 : std::string("lines"));
  if (!attempt.has_ended_at()) {
    io.err << "; it is still running";
  } else if (!attempt.exit().reason().empty()) {
    io.err << "; it ended: " << attempt.exit().reason();
  }
  io.err << '\n';
  return kExitOk;
}

}  // namespace

size_t SharedLines(const std::vector<std::string>& shown, const std::vector<std::string>& next) {
  for (size_t n = std::min(shown.size(), next.size()); n > 0; --n) {
    if (std::equal(shown.end() - static_cast<long>(n), shown.end(), next.begin())) return n;
  }
  return 0;
}

int LogCommand(Client& client, const std::string& job_id, const LogChoice& choice, const Io& io) {
  if (choice.follow) return Follower(client, choice, io).Run(job_id);
  absl::StatusOr<v1::GetJobResponse> job = JobOnly(client, job_id);
  if (!job.ok()) return Fail(io, job.status());
  if (choice.attempt != 0) return AttemptLog(client, *job, choice.attempt, io);
  absl::StatusOr<v1::JobLog> log = client.GetJobLog(job->job().spec().job_id());
  if (!log.ok()) return Fail(io, log.status());
  if (log->attempt_id() == 0) {
    io.err << NoLines(*job) << '\n';
    return kExitOk;
  }
  for (const std::string& line : log->lines()) io.out << line << '\n';
  if (log->truncated()) {
    io.err << "ablate: log: the last " << log->lines_size() << " lines; the whole log is "
           << WholeLog(*job, log->attempt_id()) << '\n';
  }
  // Where the job had other attempts, say whose lines these are and where the others' whole
  // logs are (a tail older than the current attempt is told apart below).
  if (job->attempts_size() > 1 && log->attempt_id() >= job->job().current_attempt_id()) {
    io.err << "ablate: log: " << AttemptName(*job, log->attempt_id()) << "'s lines; the job's "
           << OtherLogs(*job, log->attempt_id()) << '\n';
  }
  // Attempt ids grow, so a tail newer than the job read before it is the newest attempt's.
  if (const uint64_t current = job->job().current_attempt_id(); log->attempt_id() < current) {
    const std::optional<std::string> why = WhyNotStarted(*job, current);
    io.err << "ablate: log: these lines are " << AttemptName(*job, log->attempt_id()) << "'s; "
           << AttemptName(*job, current)
           << (why ? absl::StrCat(" never started its trainer: ", *why) : " has sent none yet")
           << '\n';
  }
  return kExitOk;
}

}  // namespace ablate::cli
