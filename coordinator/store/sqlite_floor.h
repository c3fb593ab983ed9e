// SQLite's own cost for the rows the store writes and reads, without the store: the floor the
// store's benchmarks measure themselves against in the same run. Each function runs on a file
// whose schema Store::Open created (same tables, same indexes), through one plain connection,
// with prepared statements and nothing else; a job row's spec holds the same bytes as the
// store's (internal::SerializeStoredSpec). For benchmarks only.
#ifndef ABLATE_COORDINATOR_STORE_SQLITE_FLOOR_H_
#define ABLATE_COORDINATOR_STORE_SQLITE_FLOOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/metrics.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ablate::coordinator::floor {

// Inserts a sweep row and `jobs` as rows of the jobs table in one transaction, serializing
// each job's spec as it goes, with SQLite's settings as the file left them (its default page
// cache and synchronous level, the checkpoint at commit and at close inside the call).
absl::Status InsertJobs(const std::string& db_path, const std::string& sweep_id,
                        const std::vector<v1::JobSpec>& jobs);

// The same rows as the store's writer now commits them: its page cache (64 MiB), synchronous
// NORMAL and foreign keys, the specs serialized before the transaction and the checkpoint
// left until after the commit. Returns the time from BEGIN to COMMIT's return, which is what
// a writer waits for before it answers; the checkpoint then runs before returning.
absl::StatusOr<absl::Duration> CommitJobsAsWriter(const std::string& db_path,
                                                  const std::string& sweep_id,
                                                  const std::vector<v1::JobSpec>& jobs);

// Appends `rounds` copies of `points` (steps shifted each round) as reports in the store's
// layout, one row each, each round for the next of `jobs` job rowids in turn (as reports of
// many jobs arrive), committing once `points_per_commit` points are in the transaction.
absl::Status AppendPoints(const std::string& db_path, const std::vector<v1::MetricPoint>& points,
                          int rounds, int jobs, int points_per_commit);

// Decodes every report of job rowid `job`; returns how many points of series `name` it read.
absl::StatusOr<int64_t> ReadSeries(const std::string& db_path, int64_t job,
                                   const std::string& name);

}  // namespace ablate::coordinator::floor

#endif  // ABLATE_COORDINATOR_STORE_SQLITE_FLOOR_H_
