#include "sweep/update.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "common/ids.h"
#include "common/train_config.h"
#include "sweep/job_ids.h"
#include "sweep/tuning.h"

namespace ablate::sweep {
namespace {

// The config_hash an expansion gives `job`'s cell now: its config normalized as ExpandSweep
// normalizes a cell's (WithoutExplicitDefaults), hashed as ExpandSweep hashes its kind of job.
// A job stored by a release that normalized less (an NSA argument in a dense config, an
// argument written at its default) then matches its cell, where its own config_hash would not.
std::string HashAsExpandedNow(v1::JobSpec job) {
  *job.mutable_config() = WithoutExplicitDefaults(std::move(*job.mutable_config()));
  return job.has_trial() ? TrialHash(job) : MessageHash(job.config());
}

}  // namespace

Update UpdateOf(const std::string& sweep_id, const std::vector<v1::JobSpec>& stored,
                const v1::SweepSpec& spec, Expansion expansion) {
  Update out;
  absl::flat_hash_set<std::string> in_spec;
  for (const v1::JobSpec& job : expansion.jobs) in_spec.insert(job.config_hash());
  // Matching only: a stored job keeps its config, config_hash and id, and its hash as stored
  // still keeps new ids apart from its id (AssignJobIds).
  std::vector<std::string> stored_now;
  stored_now.reserve(stored.size());
  for (const v1::JobSpec& job : stored) stored_now.push_back(HashAsExpandedNow(job));
  const absl::flat_hash_set<std::string> in_sweep(stored_now.begin(), stored_now.end());
  // With tuning, the spec names only a cell's first-rung trials; its later trials and final
  // jobs stand while the cell keeps the same search (every first-rung trial already stored).
  absl::flat_hash_set<std::string> tuned_cells;
  absl::flat_hash_set<std::string> searches_changed;
  for (const v1::JobSpec& job : expansion.jobs) {
    if (!job.has_trial()) continue;
    const std::string cell = TuningCellKey(spec, job);
    tuned_cells.insert(cell);
    if (!in_sweep.contains(job.config_hash())) searches_changed.insert(cell);
  }
  std::vector<std::pair<uint64_t, size_t>> by_hash;
  uint32_t next_index = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    const v1::JobSpec& job = stored[i];
    by_hash.emplace_back(internal::HashNumber(job.config_hash()), internal::kStoredJob);
    next_index = std::max(next_index, job.index() + 1);
    bool reused = in_spec.contains(stored_now[i]);
    if (job.has_tuned() || (job.has_trial() && job.trial().rung() > 0)) {
      const std::string cell = TuningCellKey(spec, job);
      reused = tuned_cells.contains(cell) && !searches_changed.contains(cell);
    }
    (reused ? out.reused : out.dropped).push_back(job.job_id());
  }
  for (v1::JobSpec& job : expansion.jobs) {
    if (in_sweep.contains(job.config_hash())) continue;
    job.set_sweep_id(sweep_id);
    job.set_index(next_index++);
    by_hash.emplace_back(internal::HashNumber(job.config_hash()), out.added.size());
    out.added.push_back(std::move(job));
  }
  internal::AssignJobIds(sweep_id, internal::CheckpointRootOf(spec), std::move(by_hash), out.added);
  return out;
}

}  // namespace ablate::sweep
