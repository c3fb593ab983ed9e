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

// Every problem of `spec` in reading order, empty when it is valid: one per setting, list
// value or tuning field at most (the first problem of each piece: a problem makes the rest of
// its own piece meaningless, not the pieces beside it).
std::vector<SpecIssue> FindSpecIssues(const v1::SweepSpec& spec);

// The problems of a list of values of TrainConfig field `field` under `key` (a grid dimension,
// a condition, a tuned parameter's values): "needs at least one value" for an empty list, else
// one per value that does not parse (at `key[i]`) and, with `distinct`, one per value that
// repeats an earlier one once parsed ("32K" repeats "32768").
std::vector<SpecIssue> ValueIssues(const std::string& key, absl::string_view field,
                                   const google::protobuf::RepeatedPtrField<std::string>& values,
                                   bool distinct);

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
