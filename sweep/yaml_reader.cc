#include "sweep/yaml_reader.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ablate::sweep::internal {
namespace {

// The key of the map or list holding `key`: "overrides[0]" for "overrides[0].sett".
absl::string_view Parent(absl::string_view key) {
  const size_t cut = key.find_last_of(".[");
  return cut == absl::string_view::npos ? key : key.substr(0, cut);
}

// Whether one key lies inside the other ("grid.lr" and "grid.lr[1]", "fixed" and
// "fixed.steps"), so a problem with one explains a problem with the other.
bool Related(absl::string_view a, absl::string_view b) {
  if (a.size() > b.size()) std::swap(a, b);
  return absl::StartsWith(b, a) &&
         (b.size() == a.size() || b[a.size()] == '.' || b[a.size()] == '[');
}

}  // namespace

absl::Status YamlReader::ForEachEntry(const YAML::Node& map, const std::string& key, EntryFn fn) {
  absl::flat_hash_set<std::string> seen;
  absl::Status first;
  for (const auto& entry : map) {
    const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
    const std::string entry_key = key.empty() ? name : absl::StrCat(key, ".", name);
    if (name.empty()) {
      first.Update(Error(entry.first, key, "expected a plain name as the key"));
      continue;
    }
    if (!seen.insert(name).second) {
      first.Update(Error(entry.first, entry_key, "repeated key"));
      continue;
    }
    marks_.insert_or_assign(entry_key, entry.first.Mark());
    first.Update(fn(name, entry_key, entry.second));
  }
  return first;
}

absl::Status YamlReader::ForEachItem(const YAML::Node& list, const std::string& key, ItemFn fn) {
  if (!list.IsSequence()) return Error(list, key, "expected a list");
  absl::Status first;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item_key = absl::StrCat(key, "[", i, "]");
    Remember(item_key, list[i]);
    first.Update(fn(item_key, list[i]));
  }
  return first;
}

absl::StatusOr<std::string> YamlReader::Scalar(const YAML::Node& node, const std::string& key) {
  if (node.IsScalar()) return node.Scalar();
  return Error(node, key, node.IsNull() ? "missing value" : "expected a single value");
}

absl::StatusOr<double> YamlReader::Number(const YAML::Node& node, const std::string& key) {
  absl::StatusOr<std::string> text = Scalar(node, key);
  if (!text.ok()) return text.status();
  double number = 0;
  if (!absl::SimpleAtod(*text, &number)) {
    return Error(node, key, absl::StrCat("'", *text, "' is not a number"));
  }
  return number;
}

absl::Status YamlReader::ReadValues(const YAML::Node& node, const std::string& key,
                                    google::protobuf::RepeatedPtrField<std::string>& out) {
  if (node.IsScalar()) {
    *out.Add() = node.Scalar();
    Remember(key + "[0]", node);
    return absl::OkStatus();
  }
  if (!node.IsSequence()) return Error(node, key, "expected a value or a list of values");
  absl::Status first;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_key = absl::StrCat(key, "[", i, "]");
    absl::StatusOr<std::string> text = Scalar(node[i], item_key);
    first.Update(text.status());
    if (!text.ok()) continue;
    *out.Add() = *std::move(text);
    Remember(item_key, node[i]);
  }
  return first;
}

absl::Status YamlReader::UnknownKey(const std::string& key, const std::string& name,
                                    const std::vector<std::string>& known) {
  return Error(marks_.at(key), key,
               absl::StrCat("unknown key", DidYouMean(name, known),
                            " (known: ", absl::StrJoin(known, ", "), ")"));
}

void YamlReader::Remember(const std::string& at, const YAML::Node& node) {
  if (!node.IsNull()) marks_.insert_or_assign(at, node.Mark());
}

const YAML::Mark* YamlReader::MarkOf(const std::string& at) const {
  auto it = marks_.find(at);
  return it == marks_.end() ? nullptr : &it->second;
}

absl::Status YamlReader::Error(const YAML::Node& node, const std::string& key,
                               absl::string_view problem) {
  if (node.IsNull()) {
    if (const YAML::Mark* mark = MarkOf(key)) return Error(*mark, key, problem);
  }
  return Error(node.Mark(), key, problem);
}

absl::Status YamlReader::Error(const YAML::Mark& mark, const std::string& key,
                               absl::string_view problem) {
  const int line = std::max(mark.line, 0) + 1;
  const int column = std::max(mark.column, 0) + 1;
  std::string text = absl::StrFormat("%s:%d:%d: %s: %s", source_, line, column, key, problem);
  problems_.push_back({line, column, key, text});
  return absl::InvalidArgumentError(text);
}

void YamlReader::Locate(const SpecIssue& issue) {
  std::string at = issue.at;
  while (!at.empty()) {
    if (const YAML::Mark* mark = MarkOf(at)) {
      Error(*mark, issue.key, issue.problem).IgnoreError();  // kept in problems_
      return;
    }
    const size_t cut = at.find_last_of(".[");
    at.resize(cut == std::string::npos ? 0 : cut);
  }
  Error(YAML::Mark(), issue.key, issue.problem).IgnoreError();
}

bool YamlReader::Explains(absl::string_view key) const {
  return std::any_of(problems_.begin(), problems_.end(),
                     [&](const Problem& problem) { return Related(Parent(problem.key), key); });
}

absl::Status YamlReader::Report() const {
  if (problems_.empty()) return absl::OkStatus();
  std::vector<const Problem*> sorted;
  sorted.reserve(problems_.size());
  for (const Problem& problem : problems_) sorted.push_back(&problem);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem* a, const Problem* b) {
    return std::pair(a->line, a->column) < std::pair(b->line, b->column);
  });
  std::vector<std::string> lines;
  lines.reserve(sorted.size());
  for (const Problem* problem : sorted) lines.push_back(problem->text);
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

std::string TabIndentNote(absl::string_view yaml, int line) {
  if (line < 0) return "";
  std::vector<absl::string_view> lines = absl::StrSplit(yaml, '\n');
  if (static_cast<size_t>(line) >= lines.size()) return "";
  const absl::string_view text = lines[line];
  const absl::string_view indent = text.substr(0, text.find_first_not_of(" \t"));
  if (!absl::StrContains(indent, '\t')) return "";
  return absl::StrCat("; line ", line + 1,
                      " is indented with a tab, which YAML does not allow (indent with spaces)");
}

bool HoldsOnlyComments(absl::string_view yaml) {
  for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!line.empty() && line.front() != '#') return false;
  }
  return true;
}

}  // namespace ablate::sweep::internal
