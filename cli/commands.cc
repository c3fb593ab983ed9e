#include "cli/commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/fit.h"
#include "cli/interrupt.h"
#include "cli/live_sweep.h"
#include "cli/plan_view.h"
#include "cli/results.h"
#include "cli/summary.h"
#include "cli/table.h"
#include "cli/views.h"
#include "cli/watch.h"
#include "common/auth/tokens.h"
#include "sweep/grid.h"
#include "sweep/plan.h"
#include "sweep/sweep_file.h"

namespace ablate::cli {
int Fail(const Io& io, const absl::Status& status) {
  io.err << status.message() << '\n';
  return status.code() == absl::StatusCode::kUnavailable ? kExitUnreachable : kExitFailed;
}

namespace {

TerminalSize QueryTerminalSize() {
  TerminalSize size;
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    size.columns = ws.ws_col;
    size.rows = ws.ws_row;
  }
  return size;
}

// Reads and expands the file; on a problem prints its one line ("file:line:col: key: problem"
// from the parser or, for a cell's problem, at the node that gave the value) and returns
// nullopt. Prints the file's notes on stderr (sweep_file.h), the command's output unchanged.
std::optional<sweep::ExpandedSweepFile> CheckSweepFile(const std::string& path, const Io& io) {
  absl::StatusOr<sweep::ExpandedSweepFile> checked = sweep::ExpandSweepFile(path);
  if (!checked.ok()) {
    io.err << checked.status().message() << '\n';
    return std::nullopt;
  }
  for (const std::string& note : checked->notes) io.err << "note: " << note << '\n';
  return *std::move(checked);
}

}  // namespace

int ValidateCommand(const std::string& path, const Io& io) {
  std::optional<sweep::ExpandedSweepFile> checked = CheckSweepFile(path, io);
  if (!checked) return kExitUsage;
  io.out << path << ": sweep " << checked->expansion.sweep_id << ": "
         << JobCountText(sweep::JobCountOf(checked->spec, checked->expansion)) << '\n';
  return kExitOk;
}

int PlanCommand(const std::string& path, bool json, const Io& io) {
  std::optional<sweep::ExpandedSweepFile> checked = CheckSweepFile(path, io);
  if (!checked) return kExitUsage;
  const v1::SweepPlan plan = sweep::PlanOf(checked->spec, checked->expansion);
  if (!json) {
    io.out << PlanText(plan);
    return kExitOk;
  }
  absl::StatusOr<std::string> text = OneLineJson(plan);
  if (!text.ok()) {
    io.err << "ablate: plan --json: " << text.status().message() << '\n';
    return kExitFailed;
  }
  io.out << *text << '\n';
  return kExitOk;
}

namespace {

// What an update did, in a line or two. `file_sweep_id` is the id the plan above was headed with:
// the file's own, which an update does not take.
void PrintUpdate(const v1::SubmitSweepResponse& response, const std::string& file_sweep_id,
                 const Io& io) {
  const v1::Sweep& sweep = response.sweep();
  io.out << "updated sweep " << sweep.id() << ": " << response.reused_jobs()
         << (response.reused_jobs() == 1 ? " job" : " jobs") << " reused, " << response.added_jobs()
         << " added, " << response.dropped_jobs()
         << " no longer in the file (kept as they are; one not started is cancelled"
         << (sweep.spec().has_tuning() ? "; tuning takes back those it needs again" : "") << ")\n";
  // An update cancels a job it drops only while it waits: one running goes on to its end.
  if (const uint32_t live = sweep.counts().dropped_live(); live > 0) {
    io.out << live << (live == 1 ? " dropped job has" : " dropped jobs have")
           << " not ended: the sweep stays ACTIVE until they do (`ablate cancel JOB` stops one)\n";
  }
  if (file_sweep_id != sweep.id()) {
    io.out << "the sweep keeps its id; " << file_sweep_id
           << " above is the id this file alone would have\n";
  }
  if (response.reused_unfinished() > 0) {
    const uint32_t ended = response.reused_failed() + response.reused_cancelled();
    const uint32_t live =
        response.reused_unfinished() - std::min(ended, response.reused_unfinished());
    std::vector<std::string> parts;
    if (live > 0) parts.push_back(absl::StrCat(live, " queued or running"));
    if (response.reused_failed() > 0) {
      parts.push_back(absl::StrCat(response.reused_failed(), " failed (`ablate retry ", sweep.id(),
                                   " --failed` runs them again)"));
    }
    if (response.reused_cancelled() > 0) {
      parts.push_back(absl::StrCat(response.reused_cancelled(), " cancelled (`ablate retry ",
                                   sweep.id(), " --cancelled` runs them again)"));
    }
    io.out << response.reused_unfinished()
           << (response.reused_unfinished() == 1 ? " reused job has" : " reused jobs have")
           << " not succeeded yet: " << absl::StrJoin(parts, ", ") << '\n';
  }
}

// OK unless the token's role may not submit: asked before the plan is printed, so that a
// viewer learns it at once rather than under a plan it cannot run. Only a role known to be
// read-only is refused here; a coordinator older than WhoAmI (Unimplemented) leaves the
// answer to SubmitSweep, as before.
absl::Status MaySubmit(Client& client) {
  absl::StatusOr<v1::WhoAmIResponse> who = client.WhoAmI();
  if (absl::IsUnimplemented(who.status())) return absl::OkStatus();
  if (!who.ok()) return who.status();
  if (who->role() != auth::RoleName(auth::Role::kViewer)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("ablate: submit: this token's role is ", who->role(),
                   ", which only reads; submitting needs a token of role ",
                   auth::RolesFor(auth::Access::kWrite), " (ABLATE_TOKEN or --token-file)"));
}

}  // namespace

int SubmitCommand(Client& client, const std::string& path, const SubmitChoice& choice,
                  const Io& io) {
  std::optional<sweep::ExpandedSweepFile> checked = CheckSweepFile(path, io);
  if (!checked) return kExitUsage;
  const v1::SweepSpec& spec = checked->spec;
  if (absl::Status may = MaySubmit(client); !may.ok()) return Fail(io, may);
  v1::SubmitSweepRequest request;
  *request.mutable_spec() = spec;
  request.set_update(choice.update);
  request.set_update_sweep(choice.update_sweep);
  request.set_new_sweep(choice.new_sweep);
  absl::StatusOr<v1::SubmitSweepResponse> response = client.SubmitSweep(request);
  if (absl::IsAlreadyExists(response.status())) {
    // Another sweep has the file's name: the user chooses between --update and --new.
    io.err << response.status().message() << '\n';
    return kExitUsage;
  }
  if (!response.ok()) {
    const int code = Fail(io, response.status());
    // Cut off mid-call (Client's "the connection was closed", a deadline), not refused before
    // anything was sent: the user cannot tell whether the sweep was stored.
    const absl::Status& failed = response.status();
    if ((absl::IsUnavailable(failed) || absl::IsDeadlineExceeded(failed)) &&
        !absl::StrContains(failed.message(), "connection refused") &&
        !absl::StrContains(failed.message(), "cannot resolve")) {
      io.err << "ablate: submitting again is safe: a sweep is stored whole or not at all, and "
                "the same file gives the same sweep\n";
    }
    return code;
  }

  // Printed once the coordinator has taken the sweep, so that a refused one prints nothing.
  const v1::SweepPlan plan = sweep::PlanOf(spec, checked->expansion);
  io.out << PlanText(plan, kTableJobs);
  // Workers may join later, so a job no known worker fits is a warning, not a refusal.
  if (absl::StatusOr<v1::ListWorkersResponse> workers = client.ListWorkers(); workers.ok()) {
    for (const std::string& line : UnfitJobs(checked->expansion.jobs, *workers)) {
      io.out << "fits no known worker: " << line << '\n';
    }
  }
  const v1::Sweep& sweep = response->sweep();
  if (response->updated()) {
    PrintUpdate(*response, checked->expansion.sweep_id, io);
  } else if (response->already_existed()) {
    io.out << "sweep " << sweep.id() << " was already submitted\n";
  } else {
    // The plan's count, which the file fixes: the coordinator stores a tuned sweep's later
    // rungs and final jobs only as its rungs end.
    io.out << "submitted sweep " << sweep.id() << ": " << JobCountText(plan.job_count()) << '\n';
  }
  io.out.flush();
  for (const std::string& warning : response->warnings()) io.err << "warning: " << warning << '\n';
  return choice.watch ? WatchCommand(client, sweep.id(), io) : kExitOk;
}

int ListCommand(Client& client, const Io& io) {
  absl::StatusOr<v1::ListSweepsResponse> response = client.ListSweeps();
  if (!response.ok()) return Fail(io, response.status());
  io.out << SweepsTable(*response, io.zone).Render();
  return kExitOk;
}

int WorkersCommand(Client& client, bool json, const Io& io) {
  absl::StatusOr<v1::ListWorkersResponse> response = client.ListWorkers();
  if (!response.ok()) return Fail(io, response.status());
  if (json) {
    absl::StatusOr<std::string> line = OneLineJson(*response);
    if (!line.ok()) return Fail(io, line.status());
    io.out << *line << '\n';
    return kExitOk;
  }
  if (response->workers().empty()) {
    io.out << "no worker has connected to the coordinator at " << client.address() << '\n';
    return kExitOk;
  }
  io.out << WorkersTable(*response, io.zone).Render() << WorkerBackoffLines(*response, absl::Now());
  return kExitOk;
}

absl::StatusOr<std::string> ResolveSweep(Client& client, const std::string& name_or_id) {
  absl::StatusOr<v1::Sweep> sweep = client.GetSweep(name_or_id);
  if (sweep.ok()) return sweep->id();
  if (sweep.status().code() != absl::StatusCode::kNotFound) return sweep.status();
  // A job's id where a sweep's belongs: say whose it is rather than "unknown sweep".
  v1::GetJobRequest request;
  request.set_job_id(name_or_id);
  request.set_max_points(1);
  absl::StatusOr<v1::GetJobResponse> job = client.GetJob(request);
  if (!job.ok()) return sweep.status();
  const std::string& parent = job->job().spec().sweep_id();
  return absl::NotFoundError(absl::StrCat("ablate: ", name_or_id, " is a job's id, not a sweep's; ",
                                          "its sweep is ", parent, " (`ablate status ", parent,
                                          "` lists its jobs)"));
}

int StatusCommand(Client& client, const std::string& name_or_id, StatusForm form, const Io& io) {
  absl::StatusOr<std::string> resolved = ResolveSweep(client, name_or_id);
  if (!resolved.ok()) return Fail(io, resolved.status());
  const std::string& sweep_id = *resolved;
  absl::StatusOr<v1::Sweep> sweep = client.GetSweep(sweep_id);
  if (!sweep.ok()) return Fail(io, sweep.status());
  if (form == StatusForm::kDefault && sweep->counts().total() > kTableJobs) {
    SweepSummary summary;
    absl::Status read = client.ForEachPage(sweep_id, [&](const v1::ListJobsResponse& page) {
      for (const v1::Job& job : page.jobs()) summary.Add(job);
    });
    if (!read.ok()) return Fail(io, read);
    io.out << summary.Render(*sweep);
    return kExitOk;
  }
  if (form == StatusForm::kJson) {
    StatusJsonWriter writer(io.out);
    absl::Status written = writer.Begin(*sweep);
    absl::Status read = client.ForEachPage(sweep_id, [&](const v1::ListJobsResponse& page) {
      for (const v1::Job& job : page.jobs()) {
        if (written.ok()) written = writer.Add(job);
      }
    });
    if (!read.ok()) return Fail(io, read);
    if (!written.ok()) {
      io.err << "\nablate: status --json: " << written.message() << '\n';
      return kExitFailed;
    }
    writer.End();
    return kExitOk;
  }
  // Pages print as they arrive, each lined up with the first; each marks code versions
  // against its own newest result.
  std::vector<size_t> widths;
  std::string legend;
  CountNotes notes;
  absl::Status read = client.ForEachPage(sweep_id, [&](const v1::ListJobsResponse& page) {
    for (const v1::Job& job : page.jobs()) notes.Add(job);
    Table table = JobsTable(*sweep, page.jobs());
    table.SetMinWidths(widths);
    io.out << table.Render(/*header=*/widths.empty());
    widths = table.Widths();
    if (legend.empty()) legend = CodeVersionLegend(page.jobs());
  });
  if (!read.ok()) return Fail(io, read);
  io.out << legend << CountsSummary(sweep->counts()) << '\n' << notes.Summary();
  return kExitOk;
}

int WatchCommand(Client& client, const std::string& name_or_id, const Io& io) {
  absl::StatusOr<std::string> resolved = ResolveSweep(client, name_or_id);
  if (!resolved.ok()) return Fail(io, resolved.status());
  const std::string& sweep_id = *resolved;
  SayOnInterrupt(absl::StrCat("ablate: stopped watching; sweep ", sweep_id,
                              " goes on (ablate watch ", sweep_id,
                              " follows it again, ablate cancel ", sweep_id, " stops it)"));
  WatchView view(io.out, io.interactive, io.zone);
  LiveSweep live;
  std::optional<absl::Time> lost_at;  // set while the connection is down
  absl::Duration backoff = absl::Milliseconds(250);
  while (true) {
    absl::Status watched = client.WatchSweep(sweep_id, [&](const v1::SweepSnapshot& message) {
      if (lost_at.has_value()) {
        io.err << "ablate: reconnected to the coordinator at " << client.address() << '\n';
        lost_at.reset();
        backoff = absl::Milliseconds(250);
      }
      live.Apply(message);
      if (live.known()) view.Update(live.snapshot(), absl::Now(), QueryTerminalSize());
    });
    if (watched.ok()) break;
    // Only a watch that began reconnects: an unreachable coordinator at the start, or an
    // error of the sweep itself, is reported at once. A coordinator that stops (SIGTERM) ends
    // the calls it has open as CANCELLED, or is UNAVAILABLE, depending on when the call meets
    // its shutdown: both mean it may be back.
    if ((watched.code() != absl::StatusCode::kUnavailable &&
         watched.code() != absl::StatusCode::kCancelled) ||
        !live.known()) {
      return Fail(io, watched);
    }
    if (!lost_at.has_value()) {
      lost_at = absl::Now();
      io.err << watched.message() << "; reconnecting for up to "
             << absl::FormatDuration(kReconnectFor) << '\n';
    } else if (absl::Now() - *lost_at > kReconnectFor) {
      return Fail(io, watched);
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }

  const v1::JobCounts* counts = live.known() ? &live.snapshot().sweep().counts() : nullptr;
  if (counts == nullptr || DoneCount(*counts) < counts->total()) {
    io.err << "ablate: WatchSweep: the coordinator ended the stream before every job of "
           << sweep_id << " ended; run `ablate watch " << sweep_id << "` again\n";
    return kExitFailed;
  }
  view.Clear();
  if (!io.interactive) io.out << '\n';
  const v1::SweepSnapshot& last = live.snapshot();
  if (counts->total() > kTableJobs) {
    SweepSummary summary;
    for (const v1::Job& job : last.jobs()) summary.Add(job);
    io.out << summary.Render(last.sweep());
  } else {
    io.out << StatusText(last.sweep(), last.jobs());
  }
  // The sweep's state, not its job counts: a tuned sweep completes when every cell's final
  // jobs succeeded, whatever some of its trials did.
  return last.sweep().state() == v1::SWEEP_STATE_COMPLETED ? kExitOk : kExitFailed;
}

int CancelCommand(Client& client, const std::string& id, const Io& io) {
  absl::StatusOr<v1::CancelResponse> response = client.Cancel(id);
  if (!response.ok()) return Fail(io, response.status());
  if (response->cancelled_job_ids().empty()) {
    io.out << "nothing to cancel: " << id << " has already ended\n";
    return kExitOk;
  }
  const int n = response->cancelled_job_ids_size();
  io.out << "cancelled " << n << (n == 1 ? " job:\n" : " jobs:\n");
  for (const std::string& job_id : response->cancelled_job_ids()) io.out << "  " << job_id << '\n';
  return kExitOk;
}

int RetryCommand(Client& client, const std::string& sweep, const RetryChoice& choice,
                 const Io& io) {
  v1::RetryJobsRequest request;
  request.set_sweep(sweep);
  for (const std::string& job_id : choice.job_ids) request.add_job_ids(job_id);
  if (choice.failed) request.add_states(v1::JOB_STATE_FAILED);
  if (choice.cancelled) request.add_states(v1::JOB_STATE_CANCELLED);
  if (request.job_ids().empty() == request.states().empty()) {
    io.err << "ablate: retry: name jobs, or pass --failed and/or --cancelled"
           << (request.job_ids().empty() ? " (what to run again)" : ", not jobs and flags together")
           << '\n';
    return kExitUsage;
  }
  absl::StatusOr<v1::RetryJobsResponse> response = client.RetryJobs(request);
  if (!response.ok()) return Fail(io, response.status());
  const int n = response->requeued_job_ids_size();
  if (n == 0 && response->refused().empty()) {
    io.out << "nothing to retry: no job of " << response->sweep_id() << " is "
           << (choice.failed && choice.cancelled ? "failed or cancelled"
                                                 : (choice.failed ? "failed" : "cancelled"))
           << (response->dropped_left() > 0 ? " that the sweep still has" : "")
           << (choice.failed && !choice.cancelled ? " (cancelled jobs: --cancelled)" : "") << '\n';
    if (const uint32_t dropped = response->dropped_left(); dropped > 0) {
      io.out << (dropped == 1 ? "1 such job was dropped by an update and is left as it is; name "
                                "it to run it again\n"
                              : absl::StrCat(dropped,
                                             " such jobs were dropped by an update and "
                                             "are left as they are; name one to run it "
                                             "again\n"));
    }
    return kExitOk;
  }
  if (n > 0) {
    io.out << "requeued " << n << (n == 1 ? " job" : " jobs") << " of " << response->sweep_id()
           << ":\n";
    for (const std::string& job_id : response->requeued_job_ids()) {
      io.out << "  " << job_id << '\n';
    }
  }
  for (const v1::RefusedJob& refused : response->refused()) {
    io.out << "not requeued: " << refused.job_id() << ": " << refused.reason() << '\n';
  }
  return response->refused().empty() ? kExitOk : kExitFailed;
}

}  // namespace ablate::cli
