// Suggestions for misspelt names ("optimzer" -> "optimizer", "beta_2" -> "beta2"), shared by
// the sweep file's checks and the optimizer arguments' checks. Stateless; safe from any thread.
#ifndef ABLATE_COMMON_DID_YOU_MEAN_H_
#define ABLATE_COMMON_DID_YOU_MEAN_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ablate {

// Edits (insert, delete, substitute, swap two neighbours) between a and b, the optimal string
// alignment distance: "grdi" is one swap from "grid".
size_t EditDistance(absl::string_view a, absl::string_view b);

// The closest name from `known` to a misspelt `name`, as " (did you mean optimizer?)", or ""
// when none is within a third of the name's length (at least one edit).
std::string DidYouMean(absl::string_view name, const std::vector<std::string>& known);

}  // namespace ablate

#endif  // ABLATE_COMMON_DID_YOU_MEAN_H_
