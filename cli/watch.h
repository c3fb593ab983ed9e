// Shows a sweep's progress as WatchSweep's snapshots arrive, in one of two forms:
//  - on an interactive terminal, a compact live view (progress bar, one row per job) redrawn
//    in place with ANSI cursor movement, each line cut to the terminal's width so redrawing
//    never scrolls;
//  - anywhere else (a pipe, a file, CI logs), one plain line per change and no escape codes:
//    "[12:01:03] 2/4 done · job tiny-3f2a1b RUNNING step 40 loss 2.3100".
//
// A WatchView borrows its stream, which must outlive it. Not thread-safe.
#ifndef ABLATE_CLI_WATCH_H_
#define ABLATE_CLI_WATCH_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/time/time.h"

namespace ablate::cli {

struct TerminalSize {
  int columns = 80;
  int rows = 24;
};

class WatchView {
 public:
  WatchView(std::ostream& out, bool interactive, absl::TimeZone zone);

  // Shows `snapshot`, seen at `now`, on a terminal of `size` (ignored when not interactive).
  void Update(const v1::SweepSnapshot& snapshot, absl::Time now, TerminalSize size);

  // Erases the live view, so what is printed next starts where it began. Does nothing when
  // not interactive: the change lines are the record and stay.
  void Clear();

 private:
  std::ostream& out_;
  const bool interactive_;
  const absl::TimeZone zone_;
  std::optional<v1::SweepSnapshot> last_;
  int lines_drawn_ = 0;  // height of the live view now on screen
};

// "[##########----------]": `done` of `total` as a bar `width` characters wide inside.
std::string ProgressBar(uint32_t done, uint32_t total, int width);

// The lines a non-interactive watch prints for `after`. Without `before` (the first snapshot):
// a line naming the sweep and its counts, then one per job that is no longer pending. With
// it: one per job whose state, attempts, step, loss or message changed. Pending jobs with a
// message (the reason no worker takes them) are grouped by it: "12 jobs PENDING: <reason>".
std::vector<std::string> ChangeLines(const v1::SweepSnapshot* before,
                                     const v1::SweepSnapshot& after, absl::Time now,
                                     absl::TimeZone zone);

// The live view's lines for a terminal of `size`: at most size.rows - 1 lines, none wider
// than size.columns. Under the sweep's line, up to two lines say why pending jobs wait, when
// the coordinator gave a reason. When the jobs do not fit, running and assigned ones are shown
// first and a last line counts the rest.
std::vector<std::string> LiveLines(const v1::SweepSnapshot& snapshot, TerminalSize size);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_WATCH_H_
