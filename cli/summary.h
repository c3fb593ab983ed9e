// What `ablate status` shows of a sweep too large for one row per job: its counts per state,
// the few jobs with the lowest and the highest loss, and the failures. Jobs are fed one at a
// time, as pages arrive, and only the few shown are kept, so memory stays bounded by `keep`
// whatever the sweep's size.
//
// A job's loss is its final eval loss when it has one, else its last train loss; jobs with
// neither are left out of the best and worst lists.
//
// A value; not thread-safe.
#ifndef ABLATE_CLI_SUMMARY_H_
#define ABLATE_CLI_SUMMARY_H_

#include <cstddef>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "cli/views.h"

namespace ablate::cli {

// Sweeps of at most this many jobs are shown one row per job by default.
inline constexpr uint32_t kTableJobs = 50;

class SweepSummary {
 public:
  // Keeps the `keep` best and worst jobs and the first `keep` failures (2 * keep at most).
  explicit SweepSummary(size_t keep = 5);

  void Add(const v1::Job& job);

  // The summary's text, every line ending in '\n': the counts, "best N by loss" and
  // "worst N by loss" tables, then the failures with their messages and how many more there
  // are, then how to see every job.
  std::string Render(const v1::Sweep& sweep) const;

 private:
  const size_t keep_;
  std::vector<v1::Job> best_;    // lowest loss first, at most keep_
  std::vector<v1::Job> worst_;   // highest loss first, at most keep_
  std::vector<v1::Job> failed_;  // the first keep_ failures, in expansion order
  size_t failed_total_ = 0;
  CountNotes notes_;
};

}  // namespace ablate::cli

#endif  // ABLATE_CLI_SUMMARY_H_
