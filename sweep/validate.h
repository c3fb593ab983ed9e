// The rules a SweepSpec must meet, shared by the YAML reader (which adds a file position to a
// problem) and by ValidateSweepSpec (which reports the keys alone, one problem a line). Stateless;
// safe from any thread.
#ifndef ABLATE_SWEEP_VALIDATE_H_
#define ABLATE_SWEEP_VALIDATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ablate/v1/sweep.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/did_you_mean.h"

namespace ablate::sweep::internal {

// The most cells one sweep may expand to; a larger grid is almost always a mistake and would
// not fit the coordinator's memory as jobs.
inline constexpr uint64_t kMaxCells = 1'000'000;
inline constexpr uint32_t kMaxAttempts = 100;
// The most repeats of each cell: beyond a few dozen seeds an interval hardly narrows.
inline constexpr uint32_t kMaxRepeats = 1000;
// The most points one cell's tuning searches: successive halving's rungs shrink by eta, so a
// search of a thousand points is already seven rungs deep at eta = 3.
inline constexpr uint32_t kMaxTrials = 1000;

// One problem found in a spec. `key` is what the user reads ("grid.optimizer"); `at` locates
// it more finely for a file position: `key` itself for the key, `key[i]` for its i-th value.
struct SpecIssue {
  std::string key;
  std::string at;
  std::string problem;
};

// Every problem of `spec` in reading order (at most one per setting, dimension or section:
// the first problem of each piece), empty when it is valid.
std::vector<SpecIssue> FindSpecIssues(const v1::SweepSpec& spec);

// The value `text` of TrainConfig field `field` in a form that compares equal exactly when the
// parsed values are equal ("512K" and "524288" give the same key). InvalidArgument with the
// problem alone ("'x' is not a whole number", "unknown optimizer 'adamx' (known: ...)") when
// the text does not parse or names nothing in the catalog.
absl::StatusOr<std::string> ValueKey(absl::string_view field, absl::string_view text);

using ::ablate::DidYouMean;  // common/did_you_mean.h

// Every field name a sweep may set, in the order TrainConfig declares them.
const std::vector<std::string>& TrainFieldNames();

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_VALIDATE_H_
