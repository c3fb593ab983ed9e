#include "sweep/long_context_fix.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/attention_args.h"
#include "common/train_config.h"
#include "sweep/validate.h"

namespace ablate::sweep::internal {
namespace {

constexpr char kContext[] = "context_length";
constexpr char kAttention[] = "attention";

bool IsDimension(const v1::SweepSpec& spec, const std::string& name) {
  return std::any_of(spec.grid().begin(), spec.grid().end(),
                     [&](const v1::Dimension& d) { return d.name() == name; });
}

// The cell's value of `dimension`, parsed (ValueKey), or "" when it has none or it does not parse.
std::string ValueOf(const CellValueList& cell, const std::string& dimension) {
  for (const v1::CellValue& value : cell) {
    if (value.dimension() == dimension) return ValueKey(dimension, value.value()).value_or("");
  }
  return "";
}

// Past dense attention's limit but within NSA's: a context only NSA can train. One past both
// gets no fix, since NSA would be refused too.
bool NsaOnly(const std::string& context_key) {
  uint64_t tokens = 0;
  return absl::SimpleAtoi(context_key, &tokens) && tokens > kLongestDenseContext &&
         tokens <= kMaxContext;
}

}  // namespace

absl::Status WithLongContextFix(const v1::SweepSpec& spec, const absl::Status& problems,
                                const std::vector<const CellValueList*>& failed) {
  const auto contexts = std::find_if(spec.grid().begin(), spec.grid().end(),
                                     [](const v1::Dimension& d) { return d.name() == kContext; });
  if (contexts == spec.grid().end()) return problems;
  const bool attention_in_grid = IsDimension(spec, kAttention);
  // Without an attention dimension, every cell has the file's fixed one (or the default).
  std::string attention = DefaultTrainConfig().attention();
  if (const auto fixed = spec.fixed().find(kAttention); fixed != spec.fixed().end()) {
    attention = ValueKey(kAttention, fixed->second).value_or(fixed->second);
  }
  std::vector<std::string> long_keys;  // parsed contexts of dense cells only NSA can train
  for (const CellValueList* cell : failed) {
    const std::string context = ValueOf(*cell, kContext);
    if (attention_in_grid) attention = ValueOf(*cell, kAttention);
    if (attention != "nsa" && NsaOnly(context)) long_keys.push_back(context);
  }
  // The values as the file writes them, in its order.
  std::vector<std::string> values;
  for (const std::string& value : contexts->values()) {
    const std::string key = ValueKey(kContext, value).value_or("");
    if (std::find(long_keys.begin(), long_keys.end(), key) != long_keys.end()) {
      values.push_back(value);
    }
  }
  if (values.empty()) return problems;
  const std::string when = absl::StrCat("{", kContext, ": [", absl::StrJoin(values, ", "), "]}");
  const bool has_section =
      attention_in_grid ? spec.constraints_size() > 0 : spec.overrides_size() > 0;
  const std::string section = attention_in_grid ? "constraints" : "overrides";
  // Each line two spaces in from where the file has it, so that it stands apart from the
  // problems above it.
  const std::string indent = "    ";
  return absl::Status(
      problems.code(),
      absl::StrCat(
          problems.message(), "\ndense attention takes at most ", kLongestDenseContext,
          " tokens; to ", attention_in_grid ? "leave out its cells" : "train the cells",
          " at context_length ", absl::StrJoin(values, ", "),
          attention_in_grid ? "" : " with NSA instead", ", add to the file",
          has_section ? absl::StrCat("'s ", section, ":") : ":",
          has_section ? "" : absl::StrCat("\n  ", section, ":"), "\n", indent, "- when: ", when,
          "\n", indent,
          attention_in_grid ? "  require: {attention: [nsa]}" : "  set: {attention: nsa}"));
}

}  // namespace ablate::sweep::internal
