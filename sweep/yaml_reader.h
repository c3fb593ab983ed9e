// The part of the sweep file's reader that knows YAML but no section of a sweep: walking maps
// and lists in file order, reading scalars, and recording every problem with its file, line and
// column, under the names SpecIssue::at uses (`key` for a key, `key[i]` for its i-th value), so
// a rule checked later on the spec can still be placed in the file. sweep_file.cc reads the
// sections of a sweep with it, tuning_file.cc the `tuning:` section. Internal to sweep/.
//
// Thread safety: none; one reader reads one file.
#ifndef ABLATE_SWEEP_YAML_READER_H_
#define ABLATE_SWEEP_YAML_READER_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "sweep/validate.h"
#include "yaml-cpp/yaml.h"

namespace ablate::sweep::internal {

class YamlReader {
 public:
  using EntryFn = absl::FunctionRef<absl::Status(const std::string& name, const std::string& key,
                                                 const YAML::Node& value)>;
  using ItemFn = absl::FunctionRef<absl::Status(const std::string& key, const YAML::Node& item)>;

  // `source` names the file in every problem; it must outlive the reader.
  explicit YamlReader(absl::string_view source) : source_(source) {}

  absl::string_view source() const { return source_; }

  // Calls `fn` for each entry of a map in file order; keys must be plain names, each once.
  // Entries after a failed one are still read, for their own problems; the first error is
  // returned.
  absl::Status ForEachEntry(const YAML::Node& map, const std::string& key, EntryFn fn);
  // Calls `fn` for each item of a list, keyed `key[i]`.
  absl::Status ForEachItem(const YAML::Node& list, const std::string& key, ItemFn fn);

  // The text of a scalar; a problem for a missing value, a list or a map.
  absl::StatusOr<std::string> Scalar(const YAML::Node& node, const std::string& key);
  // A scalar that reads as an Int; with `positive`, above 0 too.
  template <typename Int>
  absl::StatusOr<Int> WholeNumber(const YAML::Node& node, const std::string& key,
                                  bool positive = false);
  // A scalar that reads as a double.
  absl::StatusOr<double> Number(const YAML::Node& node, const std::string& key);
  // One value, or a list of values, appended to `out`.
  absl::Status ReadValues(const YAML::Node& node, const std::string& key,
                          google::protobuf::RepeatedPtrField<std::string>& out);

  // A problem naming `name` under `key` as unknown, with a suggestion and the `known` keys.
  absl::Status UnknownKey(const std::string& key, const std::string& name,
                          const std::vector<std::string>& known);
  // Records the problem for the final report (Report()) and returns it, so a caller can stop
  // reading what depends on the value. An empty value has no position of its own (YAML places
  // it at the next token), so a problem with it is placed at its key.
  absl::Status Error(const YAML::Node& node, const std::string& key, absl::string_view problem);
  absl::Status Error(const YAML::Mark& mark, const std::string& key, absl::string_view problem);
  // Remembers a value's position under `at`.
  void Remember(const std::string& at, const YAML::Node& node);
  // Where `at` (a key or a value) stood, if it was read.
  const YAML::Mark* MarkOf(const std::string& at) const;

  // Records `issue` at the nearest remembered position: its value, else its key, else the key
  // that holds it ("constraints[0].when" missing falls back to "constraints[0]").
  void Locate(const SpecIssue& issue);
  // Whether a problem recorded so far lies beside or inside `key`'s value (a problem with
  // "overrides[0].sett" explains one with "overrides[0]"), so a rule on `key` would repeat it.
  bool Explains(absl::string_view key) const;
  // Every problem recorded, one line each in file order; OK when there is none.
  absl::Status Report() const;

 private:
  struct Problem {
    int line;
    int column;
    std::string key;
    std::string text;  // the report's line: "file:line:column: key: problem"
  };

  absl::string_view source_;
  absl::flat_hash_map<std::string, YAML::Mark> marks_;
  std::vector<Problem> problems_;  // in the order found
};

// What a YAML parser's complaint about line `line` (0-based) of `yaml` leaves out: "; line 3 is
// indented with a tab, which YAML does not allow (indent with spaces)" when that line's
// indentation holds a tab (yaml-cpp says "illegal map value" or "end of map not found"), else "".
std::string TabIndentNote(absl::string_view yaml, int line);

// Whether `yaml` holds nothing but blank lines and comments: a file that reads as no value.
bool HoldsOnlyComments(absl::string_view yaml);

template <typename Int>
absl::StatusOr<Int> YamlReader::WholeNumber(const YAML::Node& node, const std::string& key,
                                            bool positive) {
  absl::StatusOr<std::string> text = Scalar(node, key);
  if (!text.ok()) return text.status();
  Int number = 0;
  if (!absl::SimpleAtoi(*text, &number) || (positive && number <= 0)) {
    // "-1 is not a whole number" would be false: it is one, below the range.
    return Error(
        node, key,
        !positive && absl::StartsWith(*text, "-")
            ? absl::StrCat("'", *text, "' is negative")
            : absl::StrCat("'", *text, "' is not a ", positive ? "positive " : "", "whole number"));
  }
  Remember(key + "[0]", node);
  return number;
}

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_YAML_READER_H_
