// Changes gathers what the writes of one group commit changed, so that the group writes each
// job's progress once (not once per report), records each attempt's committed sequence once,
// and hands the change feed one Commit: the sweeps touched, the changed job rows and the new
// metric points.
//
// A write records its changes only after all of its statements succeeded (a refused write
// records nothing), so what is recorded is what the group commits.
//
// Thread safety: none; it lives on the writer thread, for one group.
#ifndef ABLATE_COORDINATOR_STORE_CHANGES_H_
#define ABLATE_COORDINATOR_STORE_CHANGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ablate/v1/metrics.pb.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/store/sqlite_db.h"

namespace ablate::coordinator::internal {

// What the fence needs of a job, remembered between groups so that a metric report costs its
// inserts and no lookups: the writer is the only writer, so a job's row changes only through a
// write that then Forgets it. Cleared when a group rolls back (what it remembered of that group
// did not happen). Bounded: cleared when it outgrows kMaxEntries.
class ReportCache {
 public:
  struct Entry {
    int64_t rowid = 0;
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
    uint64_t current_attempt_id = 0;
    std::string sweep_id;
    uint64_t sequence = 0;  // the highest applied of current_attempt_id's reports
  };
  static constexpr size_t kMaxEntries = 200'000;

  Entry* Find(const std::string& job_id);
  Entry& Put(const std::string& job_id, Entry entry);
  void Forget(const std::string& job_id) { entries_.erase(job_id); }
  void Clear() { entries_.clear(); }

 private:
  absl::flat_hash_map<std::string, Entry> entries_;
};

class Changes {
 public:
  // `feed` (may be null: no feed) is asked once per sweep whether it wants deltas. `cache`
  // lives across groups; the writer clears it when this group rolls back.
  Changes(ChangeFeed* feed, ReportCache& cache) : feed_(feed), cache_(cache) {}

  ReportCache& cache() { return cache_; }

  // The row of job `rowid` (of sweep `sweep_id`) changed.
  void Job(int64_t rowid, const std::string& sweep_id);
  // A new sweep: touched, but never sent as a delta (a watcher of it takes a snapshot).
  void NewSweep(const std::string& sweep_id);
  // A job became PENDING.
  void Pending() { pending_ = true; }

  // Points appended for job `rowid` by one report: its step becomes the report's highest and
  // its last loss the report's train/loss at the highest step, when the report has one. Written
  // by Flush.
  void Progress(int64_t rowid, const std::string& sweep_id, const std::string& job_id,
                const google::protobuf::RepeatedPtrField<v1::MetricPoint>& points);
  // Report `sequence` of `attempt_id` was applied. Written by Flush.
  void Sequence(uint64_t attempt_id, uint64_t sequence);
  // The highest sequence of the attempt applied in this group, if any.
  std::optional<uint64_t> SequenceOf(uint64_t attempt_id) const;

  // Writes the progress of jobs and the sequences of attempts gathered, stamped `now`.
  absl::Status Flush(Db& db, int64_t now);

  // The Commit for the feed, with deltas for the sweeps `feed` wants, read in the group's
  // transaction (after Flush). `version` is the version this group commits as.
  absl::StatusOr<Commit> BuildCommit(Db& db, int64_t version);

  bool empty() const { return sweeps_.empty() && !pending_; }

 private:
  struct JobProgress {
    int64_t step = 0;
    std::optional<double> last_loss;
    std::optional<double> last_eval_loss;
  };
  struct SweepChanges {
    bool wanted = false;  // the feed wants deltas of it
    bool created = false;
    absl::btree_map<int64_t, std::string> jobs;  // rowid -> job id ("" until points name it)
    // Points per job rowid, in report order.
    absl::flat_hash_map<int64_t, std::vector<v1::MetricPoint>> points;
  };

  SweepChanges& Sweep(const std::string& sweep_id);

  ChangeFeed* const feed_;
  ReportCache& cache_;
  bool pending_ = false;
  absl::flat_hash_map<std::string, SweepChanges> sweeps_;
  absl::flat_hash_map<int64_t, JobProgress> progress_;
  absl::flat_hash_map<uint64_t, uint64_t> sequences_;
};

}  // namespace ablate::coordinator::internal

#endif  // ABLATE_COORDINATOR_STORE_CHANGES_H_
