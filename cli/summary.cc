#include "cli/summary.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cli/views.h"

namespace ablate::cli {
namespace {

std::optional<double> LossOf(const v1::Job& job) {
  if (job.has_final_eval_loss()) return job.final_eval_loss();
  if (job.has_last_loss()) return job.last_loss();
  return std::nullopt;
}

// Inserts `job` into `kept`, ordered so `before(a, b)` holds for neighbours, and drops what
// falls past `keep`.
template <typename Before>
void KeepTop(std::vector<v1::Job>& kept, const v1::Job& job, size_t keep, Before before) {
  auto at = std::upper_bound(kept.begin(), kept.end(), job, before);
  if (static_cast<size_t>(at - kept.begin()) >= keep) return;
  kept.insert(at, job);
  if (kept.size() > keep) kept.pop_back();
}

std::string Section(const std::string& title, const v1::Sweep& sweep,
                    const std::vector<v1::Job>& jobs) {
  Jobs rows(jobs.begin(), jobs.end());
  return absl::StrCat("\n", title, ":\n", JobsTable(sweep, rows).Render());
}

}  // namespace

SweepSummary::SweepSummary(size_t keep) : keep_(keep) {}

void SweepSummary::Add(const v1::Job& job) {
  notes_.Add(job);
  if (job.state() == v1::JOB_STATE_FAILED) {
    ++failed_total_;
    if (failed_.size() < keep_) failed_.push_back(job);
  }
  if (!LossOf(job).has_value()) return;
  KeepTop(best_, job, keep_,
          [](const v1::Job& a, const v1::Job& b) { return *LossOf(a) < *LossOf(b); });
  KeepTop(worst_, job, keep_,
          [](const v1::Job& a, const v1::Job& b) { return *LossOf(a) > *LossOf(b); });
}

std::string SweepSummary::Render(const v1::Sweep& sweep) const {
  std::string out = absl::StrCat("sweep ", sweep.id(), " ", SweepStateName(sweep.state()), ": ",
                                 CountsSummary(sweep.counts()), "\n", notes_.Summary());
  if (!best_.empty()) {
    absl::StrAppend(&out, Section(absl::StrCat("best ", best_.size(), " by loss"), sweep, best_));
    absl::StrAppend(&out,
                    Section(absl::StrCat("worst ", worst_.size(), " by loss"), sweep, worst_));
  }
  if (failed_total_ > 0) {
    absl::StrAppend(&out, Section(absl::StrCat("failed (", failed_total_, ")"), sweep, failed_));
    if (failed_total_ > failed_.size()) {
      absl::StrAppend(&out, "… and ", failed_total_ - failed_.size(), " more failed\n");
    }
  }
  absl::StrAppend(&out, "\nevery job: ablate status ", sweep.id(), " --all (or --json)\n");
  return out;
}

}  // namespace ablate::cli
