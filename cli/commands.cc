#include "cli/commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "ablate/v1/sweep_service.pb.h"
#include "cli/views.h"
#include "cli/watch.h"
#include "sweep/sweep_file.h"

namespace ablate::cli {
namespace {

// Prints a failed call's line; an unreachable coordinator and a refusal end differently.
int Fail(const Io& io, const absl::Status& status) {
  io.err << status.message() << '\n';
  return status.code() == absl::StatusCode::kUnavailable ? kExitUnreachable : kExitFailed;
}

TerminalSize QueryTerminalSize() {
  TerminalSize size;
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    size.columns = ws.ws_col;
    size.rows = ws.ws_row;
  }
  return size;
}

}  // namespace

int SubmitCommand(Client& client, const std::string& path, bool watch, const Io& io) {
  absl::StatusOr<v1::SweepSpec> spec = sweep::LoadSweepFile(path);
  if (!spec.ok()) {
    // The parser's message is already "file:line:col: key: problem".
    io.err << spec.status().message() << '\n';
    return kExitUsage;
  }
  absl::StatusOr<v1::SubmitSweepResponse> response = client.SubmitSweep(*spec);
  if (!response.ok()) return Fail(io, response.status());

  const v1::Sweep& sweep = response->sweep();
  if (response->already_existed()) {
    io.out << "sweep " << sweep.id() << " was already submitted\n";
  } else {
    io.out << "submitted sweep " << sweep.id() << ": " << sweep.counts().total() << " jobs ("
           << response->dropped_cells_size() << " cells dropped by constraints)\n";
  }
  io.out.flush();
  return watch ? WatchCommand(client, sweep.id(), io) : kExitOk;
}

int ListCommand(Client& client, const Io& io) {
  absl::StatusOr<v1::ListSweepsResponse> response = client.ListSweeps();
  if (!response.ok()) return Fail(io, response.status());
  io.out << SweepsTable(*response, io.zone).Render();
  return kExitOk;
}

int StatusCommand(Client& client, const std::string& sweep_id, bool json, const Io& io) {
  absl::StatusOr<v1::Sweep> sweep = client.GetSweep(sweep_id);
  if (!sweep.ok()) return Fail(io, sweep.status());
  absl::StatusOr<v1::ListJobsResponse> jobs = client.ListJobs(sweep_id);
  if (!jobs.ok()) return Fail(io, jobs.status());
  if (!json) {
    io.out << StatusText(*sweep, jobs->jobs());
    return kExitOk;
  }
  absl::StatusOr<std::string> text = StatusJson(*sweep, jobs->jobs());
  if (!text.ok()) {
    io.err << "ablate: status --json: " << text.status().message() << '\n';
    return kExitFailed;
  }
  io.out << *text << '\n';
  return kExitOk;
}

int WatchCommand(Client& client, const std::string& sweep_id, const Io& io) {
  WatchView view(io.out, io.interactive, io.zone);
  std::optional<v1::SweepSnapshot> last;
  absl::Status watched =
      client.WatchSweep(sweep_id, [&](const v1::SweepSnapshot& snapshot) {
        view.Update(snapshot, absl::Now(), QueryTerminalSize());
        last = snapshot;
      });
  if (!watched.ok()) return Fail(io, watched);

  const v1::JobCounts* counts = last ? &last->sweep().counts() : nullptr;
  if (counts == nullptr || DoneCount(*counts) < counts->total()) {
    io.err << "ablate: WatchSweep: the coordinator ended the stream before every job of "
           << sweep_id << " ended; run `ablate watch " << sweep_id << "` again\n";
    return kExitFailed;
  }
  view.Clear();
  if (!io.interactive) io.out << '\n';
  io.out << StatusText(last->sweep(), last->jobs());
  return counts->succeeded() == counts->total() ? kExitOk : kExitFailed;
}

int CancelCommand(Client& client, const std::string& id, const Io& io) {
  absl::StatusOr<v1::CancelResponse> response = client.Cancel(id);
  if (!response.ok()) return Fail(io, response.status());
  if (response->cancelled_job_ids().empty()) {
    io.out << "nothing to cancel: every job of " << id << " has already ended\n";
    return kExitOk;
  }
  const int n = response->cancelled_job_ids_size();
  io.out << "cancelled " << n << (n == 1 ? " job:\n" : " jobs:\n");
  for (const std::string& job_id : response->cancelled_job_ids()) io.out << "  " << job_id << '\n';
  return kExitOk;
}

}  // namespace ablate::cli
