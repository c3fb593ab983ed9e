#include "cli/watch.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "cli/table.h"
#include "cli/views.h"
#include "common/job_state.h"

namespace ablate::cli {
namespace {

bool IsActive(v1::JobState state) {
  return state == v1::JOB_STATE_RUNNING || state == v1::JOB_STATE_ASSIGNED;
}

std::string DoneText(const v1::Sweep& sweep) {
  std::string out = absl::StrCat(DoneCount(sweep.counts()), "/", sweep.counts().total(), " done");
  // A tuned sweep adds jobs as its rungs end (sweep/tuning.h), so its total grows until then.
  if (sweep.spec().has_tuning() && sweep.state() == v1::SWEEP_STATE_ACTIVE) {
    absl::StrAppend(&out, " (tuning adds more)");
  }
  return out;
}

// "job tiny-3f2a1b RUNNING step 40 last loss 2.3100", with what else the state makes worth
// saying. While a job runs, its losses are the last logged (every log_every steps, and
// evaluations every eval_every), so maybe of an earlier step than the one it reached: "last".
std::string JobLine(const v1::Job& job) {
  std::string line = absl::StrCat("job ", job.spec().job_id(), " ", JobStateName(job.state()));
  if (job.attempts() > 1) absl::StrAppend(&line, " (attempt ", job.attempts(), ")");
  if (job.step() > 0) absl::StrAppend(&line, " step ", job.step());
  if (job.has_last_loss()) {
    absl::StrAppend(&line, JobStateHasEnded(job.state()) ? " loss " : " last loss ",
                    absl::StrFormat("%.4f", job.last_loss()));
  }
  if (const std::optional<double> eval = EvalLossOf(job)) {
    absl::StrAppend(&line, job.has_final_eval_loss() ? " final eval loss " : " last eval loss ",
                    absl::StrFormat("%.4f", *eval));
  }
  if (!job.message().empty()) absl::StrAppend(&line, ": ", job.message());
  return line;
}

bool Changed(const v1::Job& a, const v1::Job& b) {
  return a.state() != b.state() || a.attempts() != b.attempts() || a.step() != b.step() ||
         a.has_last_loss() != b.has_last_loss() || a.last_loss() != b.last_loss() ||
         a.has_final_eval_loss() != b.has_final_eval_loss() || a.message() != b.message();
}

// Pending jobs that carry a message (why no worker takes them), grouped by it: a sweep of
// 100,000 jobs that fit no worker says so in one line, not 100,000.
class PendingReasons {
 public:
  void Add(const v1::Job& job) {
    auto [it, inserted] = groups_.try_emplace(job.message(), Group{&job, 0});
    ++it->second.count;
    if (inserted) order_.push_back(job.message());
  }
  // "job X PENDING: reason" for a reason one job has, "N jobs PENDING: reason" otherwise; most
  // common first, at most `limit` lines.
  std::vector<std::string> Lines(size_t limit) const {
    std::vector<std::string> messages = order_;
    std::stable_sort(messages.begin(), messages.end(), [this](const auto& a, const auto& b) {
      return groups_.at(a).count > groups_.at(b).count;
    });
    if (messages.size() > limit) messages.resize(limit);
    std::vector<std::string> lines;
    for (const std::string& message : messages) {
      const Group& group = groups_.at(message);
      lines.push_back(group.count == 1 ? JobLine(*group.first)
                                       : absl::StrCat(group.count, " jobs PENDING: ", message));
    }
    return lines;
  }

 private:
  struct Group {
    const v1::Job* first;
    size_t count;
  };
  absl::flat_hash_map<std::string, Group> groups_;
  std::vector<std::string> order_;  // messages in the order first seen
};

bool HasReason(const v1::Job& job) {
  return job.state() == v1::JOB_STATE_PENDING && !job.message().empty();
}

}  // namespace

WatchView::WatchView(std::ostream& out, bool interactive, absl::TimeZone zone)
    : out_(out), interactive_(interactive), zone_(zone) {}

void WatchView::Update(const v1::SweepSnapshot& snapshot, absl::Time now, TerminalSize size) {
  if (!interactive_) {
    for (const std::string& line : ChangeLines(last_ ? &*last_ : nullptr, snapshot, now, zone_)) {
      out_ << line << '\n';
    }
  } else {
    // Overwrite the previous view line by line and clear what is left below, rather than
    // clearing first: the screen never shows a blank frame, so it does not flicker.
    if (lines_drawn_ > 0) out_ << "\x1b[" << lines_drawn_ << 'F';
    const std::vector<std::string> lines = LiveLines(snapshot, size);
    for (const std::string& line : lines) out_ << line << "\x1b[K\n";
    out_ << "\x1b[J";
    lines_drawn_ = static_cast<int>(lines.size());
  }
  out_.flush();
  last_ = snapshot;
}

void WatchView::Clear() {
  if (!interactive_ || lines_drawn_ == 0) return;
  out_ << "\x1b[" << lines_drawn_ << "F\x1b[J";
  out_.flush();
  lines_drawn_ = 0;
}

std::string ProgressBar(uint32_t done, uint32_t total, int width) {
  const uint64_t part = std::min(done, total);
  const int filled = total == 0 ? 0 : static_cast<int>(part * width / total);
  return absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '-'), "]");
}

std::vector<std::string> ChangeLines(const v1::SweepSnapshot* before,
                                     const v1::SweepSnapshot& after, absl::Time now,
                                     absl::TimeZone zone) {
  const std::string prefix = absl::StrCat("[", absl::FormatTime("%H:%M:%S", now, zone), "] ",
                                          DoneText(after.sweep()), " · ");
  std::vector<std::string> lines;
  PendingReasons reasons;
  if (before == nullptr) {
    lines.push_back(absl::StrCat(prefix, "sweep ", after.sweep().id(), " ",
                                 SweepStateName(after.sweep().state()), ": ",
                                 CountsSummary(after.sweep().counts())));
    for (const v1::Job& job : after.jobs()) {
      if (HasReason(job)) {
        reasons.Add(job);
      } else if (job.state() != v1::JOB_STATE_PENDING) {
        lines.push_back(prefix + JobLine(job));
      }
    }
  } else {
    absl::flat_hash_map<absl::string_view, const v1::Job*> previous;
    for (const v1::Job& job : before->jobs()) previous[job.spec().job_id()] = &job;
    for (const v1::Job& job : after.jobs()) {
      auto it = previous.find(job.spec().job_id());
      if (it != previous.end() && !Changed(*it->second, job)) continue;
      if (HasReason(job)) {
        reasons.Add(job);
      } else {
        lines.push_back(prefix + JobLine(job));
      }
    }
  }
  for (const std::string& line : reasons.Lines(SIZE_MAX)) lines.push_back(prefix + line);
  return lines;
}

std::vector<std::string> LiveLines(const v1::SweepSnapshot& snapshot, TerminalSize size) {
  const v1::Sweep& sweep = snapshot.sweep();
  const size_t columns = static_cast<size_t>(std::max(size.columns, 20));
  // Why jobs wait, when the coordinator said: at most two lines, under the sweep's.
  PendingReasons reasons;
  for (const v1::Job& job : snapshot.jobs()) {
    if (HasReason(job)) reasons.Add(job);
  }
  const std::vector<std::string> reason_lines = reasons.Lines(2);
  // One line for the sweep, one for the table's header, one left free for the cursor.
  const int job_rows = std::max(size.rows - 3 - static_cast<int>(reason_lines.size()), 1);

  std::vector<const v1::Job*> shown;
  for (const v1::Job& job : snapshot.jobs()) shown.push_back(&job);
  size_t hidden = 0;
  if (static_cast<int>(shown.size()) > job_rows) {
    std::stable_partition(shown.begin(), shown.end(),
                          [](const v1::Job* job) { return IsActive(job->state()); });
    const size_t keep = static_cast<size_t>(job_rows - 1);  // the last row counts the rest
    hidden = shown.size() - keep;
    shown.resize(keep);
  }

  std::vector<std::string> headers = {"JOB"};
  for (std::string& name : CellDimensions(sweep)) headers.push_back(std::move(name));
  for (absl::string_view h : {"STATE", "STEP", "LOSS"}) headers.emplace_back(h);
  Table table(std::move(headers));
  const size_t step_column = static_cast<size_t>(sweep.spec().grid_size()) + 2;
  table.SetAlign(step_column, Table::Align::kRight);
  table.SetAlign(step_column + 1, Table::Align::kRight);
  for (const v1::Job* job : shown) {
    std::vector<std::string> row = {ShortJobId(*job)};
    for (std::string& value : CellValues(sweep, *job)) row.push_back(std::move(value));
    row.push_back(JobStateName(job->state()));
    row.push_back(absl::StrCat(job->step()));
    row.push_back(job->has_last_loss() ? absl::StrFormat("%.4f", job->last_loss()) : "-");
    table.AddRow(std::move(row));
  }

  std::vector<std::string> lines = {absl::StrCat(
      sweep.id(), "  ", ProgressBar(DoneCount(sweep.counts()), sweep.counts().total(), 24), " ",
      DoneText(sweep), " · ", CountsSummary(sweep.counts()))};
  lines.insert(lines.end(), reason_lines.begin(), reason_lines.end());
  for (absl::string_view line : absl::StrSplit(table.Render(), '\n', absl::SkipEmpty())) {
    lines.emplace_back(line);
  }
  if (hidden > 0) lines.push_back(absl::StrCat("… ", hidden, " more jobs"));
  for (std::string& line : lines) line = std::string(TruncateToWidth(line, columns));
  return lines;
}

}  // namespace ablate::cli
