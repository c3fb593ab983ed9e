// How a sweep names its jobs and where they checkpoint, shared by a sweep's expansion
// (grid.h) and an update of a stored sweep (update.h). Pure functions; safe from any thread.
#ifndef ABLATE_SWEEP_JOB_IDS_H_
#define ABLATE_SWEEP_JOB_IDS_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep.pb.h"

namespace ablate::sweep::internal {

// The spec's checkpoint_root without a trailing '/', or the default "runs/checkpoints".
std::string CheckpointRootOf(const v1::SweepSpec& spec);

// A JobSpec.config_hash (16 hex digits) as the number it writes.
uint64_t HashNumber(const std::string& config_hash);

// In AssignJobIds' list: a hash of a stored job, whose id stands.
inline constexpr size_t kStoredJob = std::numeric_limits<size_t>::max();

// Sets job_id = <sweep_id>-<first 6 hex digits of config_hash> and checkpoint_dir =
// <checkpoint_root>/<sweep_id>/<job_id> of jobs[i] for each (hash, i) in `by_hash` with i not
// kStoredJob. `by_hash` holds every config hash of the sweep, stored jobs' too. Where two
// hashes share the first 6 digits, the id takes as many more as tell them apart (as git
// lengthens short commit ids): a sweep of 100,000 cells has hundreds of such pairs. The length
// depends only on the set of hashes, so ids stay deterministic; an id given beside stored ones
// never equals one of them, since it is longer than the digits it shares with each.
void AssignJobIds(const std::string& sweep_id, const std::string& checkpoint_root,
                  std::vector<std::pair<uint64_t, size_t>> by_hash, std::vector<v1::JobSpec>& jobs);

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_JOB_IDS_H_
