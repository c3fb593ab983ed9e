#include "sweep/job_ids.h"

#include <algorithm>
#include <bit>
#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ablate::sweep::internal {
namespace {

constexpr absl::string_view kDefaultCheckpointRoot = "runs/checkpoints";
constexpr size_t kJobHashDigits = 6;

// Hex digits two 64-bit hashes share at the front.
size_t CommonDigits(uint64_t a, uint64_t b) {
  return a == b ? 16 : static_cast<size_t>(std::countl_zero(a ^ b)) / 4;
}

}  // namespace

std::string CheckpointRootOf(const v1::SweepSpec& spec) {
  const absl::string_view root =
      spec.checkpoint_root().empty() ? kDefaultCheckpointRoot : spec.checkpoint_root();
  return std::string(absl::StripSuffix(root, "/"));
}

uint64_t HashNumber(const std::string& config_hash) {
  uint64_t number = 0;
  std::from_chars(config_hash.data(), config_hash.data() + config_hash.size(), number, 16);
  return number;
}

void AssignJobIds(const std::string& sweep_id, const std::string& checkpoint_root,
                  std::vector<std::pair<uint64_t, size_t>> by_hash,
                  std::vector<v1::JobSpec>& jobs) {
  std::sort(by_hash.begin(), by_hash.end());
  // The digits each job's id takes, found in hash order; the ids are then written in the jobs'
  // order, which walks their memory once instead of jumping across it in hash order.
  std::vector<uint8_t> digits(jobs.size(), 0);
  for (size_t i = 0; i < by_hash.size(); ++i) {
    if (by_hash[i].second == kStoredJob) continue;
    const uint64_t hash = by_hash[i].first;
    size_t n = kJobHashDigits;
    if (i > 0) n = std::max(n, CommonDigits(hash, by_hash[i - 1].first) + 1);
    if (i + 1 < by_hash.size()) n = std::max(n, CommonDigits(hash, by_hash[i + 1].first) + 1);
    digits[by_hash[i].second] = static_cast<uint8_t>(n);
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (digits[j] == 0) continue;  // not in by_hash
    v1::JobSpec& job = jobs[j];
    job.set_job_id(
        absl::StrCat(sweep_id, "-", absl::string_view(job.config_hash()).substr(0, digits[j])));
    job.set_checkpoint_dir(absl::StrCat(checkpoint_root, "/", sweep_id, "/", job.job_id()));
  }
}

}  // namespace ablate::sweep::internal
