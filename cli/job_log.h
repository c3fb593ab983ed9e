// `ablate log JOB [--follow | --attempt N]`: the end of a job's log (rank 0's trainer.log) as its
// worker last sent it to the coordinator (SweepService.GetJobLog). The log's lines go to io.out as
// they are, so that they pipe into grep; what the CLI itself says (where the whole log is, that no
// line has arrived yet, an attempt that starts while following) goes to io.err.
//
// The coordinator keeps a tail of each job's newest attempt (worker.proto's LogTail, 200
// lines by default) in memory while the attempt runs, and of each of its newest 8 ended
// attempts in its database (a failed attempt's lines outlive the retry that replaced it); the
// whole log stays on the worker, at <its --work-dir>/<job id>/attempt-<attempt id>/trainer.log,
// and the notes name it. An attempt its worker refused before starting a trainer
// (Attempt.never_started) wrote no log: the notes say so and why, and name no folder.
#ifndef ABLATE_CLI_JOB_LOG_H_
#define ABLATE_CLI_JOB_LOG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/client.h"
#include "cli/commands.h"

namespace ablate::cli {

struct LogChoice {
  // Keep printing the log's new lines, a new attempt's included, until the job has ended and
  // its last lines arrived; then exit 0 if it succeeded, 1 if not.
  bool follow = false;
  // Print the tail of the job's attempt of this number (1 its first, counting every attempt, as
  // the notes name them) instead of its newest's; 0 for the newest. Not with follow.
  uint32_t attempt = 0;
  absl::Duration poll = absl::Seconds(1);  // between two reads while following
  // After the job ended, how long to wait for its worker to send the attempt's last lines: the
  // worker sends them at once where they changed since its last send.
  absl::Duration settle = absl::Seconds(3);
};

// Prints the log of the job `job_id` names (a whole id, or the short id after its sweep's id).
// kExitOk; kExitFailed for an unknown job (or, following, one that did not succeed);
// kExitUnreachable when the coordinator cannot be reached.
int LogCommand(Client& client, const std::string& job_id, const LogChoice& choice, const Io& io);

// Where `next` (a newer tail of the same log) starts to hold lines not in `shown` (the lines
// printed so far, oldest first): the length of the longest run of lines that ends `shown` and
// starts `next`. 0 when they share none: the log moved on by more than a tail between reads,
// or `shown` is empty.
size_t SharedLines(const std::vector<std::string>& shown, const std::vector<std::string>& next);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_JOB_LOG_H_
