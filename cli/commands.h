// The CLI's subcommands. Each prints its results on `io.out`, at most one error line on
// `io.err`, and returns the exit status the process ends with (see ExitCode). Commands borrow
// the Client and the streams for the call only.
#ifndef ABLATE_CLI_COMMANDS_H_
#define ABLATE_CLI_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/client.h"

namespace ablate::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,       // the coordinator refused, or a watched sweep did not fully succeed
  kExitUsage = 2,        // bad flags or a bad sweep file
  kExitUnreachable = 3,  // no connection to the coordinator
};

struct Io {
  std::ostream& out;
  std::ostream& err;
  bool interactive;  // `out` is a terminal a person watches: live views may redraw it
  absl::TimeZone zone;
  bool color = false;  // `out` shows ANSI colors: a terminal, and NO_COLOR is not set
};

// Prints a failed call's line on io.err; kExitUnreachable for an unreachable coordinator,
// else kExitFailed.
int Fail(const Io& io, const absl::Status& status);

// The sweep `name_or_id` names: a sweep id, or a sweep name that exactly one sweep has (the
// coordinator resolves it). A name several sweeps share is refused, listing their ids; a job's
// id is NotFound naming the job's sweep.
absl::StatusOr<std::string> ResolveSweep(Client& client, const std::string& name_or_id);

// Checks the sweep file without a coordinator: parses it (errors name the line), then expands
// its grid and checks every cell as the coordinator would at submit (the cell is named, e.g.
// "f.yaml:5:19: cell optimizer=adamw: optimizer_args.beta_2: adamw has no argument beta_2 (did
// you mean beta2?)", placed at the setting that gave the value). Prints the sweep id and its
// job count as `plan` and `submit` print it (cli/plan_view.h's JobCountText). kExitOk, or
// kExitUsage with the error.
int ValidateCommand(const std::string& path, const Io& io);

// Expands the sweep file without a coordinator and prints its plan (cli/plan_view.h): cells
// per dimension, excluded cells with their rule, per job its parameters, tokens, FLOPs, memory
// plan, GPUs, derived batch and learning rate, and GPU-hours where the file's throughput table
// gives them; with `json`, the SweepPlan in protobuf's JSON mapping on one line. A bad file
// fails as ValidateCommand does.
int PlanCommand(const std::string& path, bool json, const Io& io);

// Checks the sweep file locally as ValidateCommand does (so errors name its line), asks the
// coordinator the token's role (SweepService.WhoAmI; a viewer's token fails here, before any
// plan, and a coordinator without the call is not asked), prints its plan (at most kTableJobs
// job rows), submits it (saying the plan's job count: the coordinator
// stores a tuned sweep's first rung at once and the rest as rungs end), and with `watch` follows it
// as WatchCommand does. With `update`, the file updates the sweep of its name
// (SubmitSweepRequest.update), and the command says how many jobs were reused, added, and are no
// longer in the file.
struct SubmitChoice {
  bool update = false;
  std::string update_sweep;  // with update: the sweep's id, where several have the file's name
  // A sweep beside those of the file's name. Without it (or update), a file whose name another
  // sweep has is refused before anything is queued: most often it is that sweep's file edited,
  // and a second sweep would run again every cell the two share.
  bool new_sweep = false;
  bool watch = false;
};
int SubmitCommand(Client& client, const std::string& path, const SubmitChoice& choice,
                  const Io& io);

// A table of every sweep, newest first.
int ListCommand(Client& client, const Io& io);

// The workers the coordinator knows, connected or not (WorkersTable, then
// WorkerBackoffLines); with `json`, ListWorkersResponse in protobuf's JSON mapping on one
// line.
int WorkersCommand(Client& client, bool json, const Io& io);

enum class StatusForm {
  kDefault,  // one row per job when the sweep has at most kTableJobs, else a SweepSummary
  kAll,      // one row per job, printed a page at a time
  kJson,     // {"sweep": ..., "jobs": [...]} on one line, a page at a time
};

// Shows the sweep (an id or a unique name) in `form`. Every form reads the jobs a page at a time,
// so memory stays bounded whatever the sweep's size.
int StatusCommand(Client& client, const std::string& sweep_id, StatusForm form, const Io& io);

// Follows the sweep until every job ended, then prints its status as StatusForm::kDefault
// does. When the connection drops after the watch began (the coordinator restarted), says so
// on `io.err` and reconnects, retrying with backoff for up to kReconnectFor. kExitOk when
// every job succeeded, kExitFailed when one failed or was cancelled.
int WatchCommand(Client& client, const std::string& sweep_id, const Io& io);
inline constexpr absl::Duration kReconnectFor = absl::Minutes(5);

enum class ResultsForm { kTable, kCsv, kJson };

// The sweep's results per cell over its repeats (cli/results.h) for `metric`: a table, CSV, or
// the SweepResults message as one line of JSON. When no cell has the metric, a note on
// `io.err`, and kExitFailed if no job is left to run: a script then knows nothing will come.
int ResultsCommand(Client& client, const std::string& sweep, const std::string& metric,
                   ResultsForm form, const Io& io);

// The sweep's `metric` per cell as a heatmap of `rows` x `cols`, one panel per combination of
// the other dimensions, colored when `io.color`.
int CompareCommand(Client& client, const std::string& sweep, const std::string& rows,
                   const std::string& cols, const std::string& metric, const Io& io);

// Cancels a sweep's unfinished jobs (by id or unique name), or one job, and names the jobs
// cancelled.
int CancelCommand(Client& client, const std::string& id, const Io& io);

// Which ended jobs `ablate retry` runs again: those named, or every job in the states asked.
struct RetryChoice {
  std::vector<std::string> job_ids;
  bool failed = false;
  bool cancelled = false;
};

// Queues the chosen jobs of the sweep (an id or a unique name) again (SweepService.RetryJobs)
// and names those requeued, then each named job refused with why. kExitOk, or kExitFailed when
// a named job was refused; kExitUsage when `choice` names no job and no state.
int RetryCommand(Client& client, const std::string& sweep, const RetryChoice& choice, const Io& io);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_COMMANDS_H_
