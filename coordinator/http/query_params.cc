#include "coordinator/http/query_params.h"

#include <httplib.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ablate::coordinator {

absl::Status CheckQueryParams(const httplib::Request& req,
                              std::initializer_list<QueryParam> known) {
  // req.params is a multimap: a repeated parameter's entries are neighbours, in name order.
  for (auto it = req.params.begin(); it != req.params.end();
       it = req.params.upper_bound(it->first)) {
    const std::string& name = it->first;
    const auto param = std::find_if(known.begin(), known.end(),
                                    [&](const QueryParam& p) { return p.name == name; });
    if (param == known.end()) {
      std::vector<absl::string_view> names;
      for (const QueryParam& p : known) names.push_back(p.name);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter '", name, "' (", req.path, " takes ",
                       names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
    }
    if (const auto [begin, end] = req.params.equal_range(name);
        !param->list && std::next(begin) != end) {
      std::vector<absl::string_view> values;
      for (auto value = begin; value != end; ++value) values.push_back(value->second);
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter '", name, "' has ", values.size(), " values (",
                       absl::StrJoin(values, ", "), "); it takes one"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> ListParam(const httplib::Request& req, const std::string& name) {
  std::vector<std::string> values;
  const auto [begin, end] = req.params.equal_range(name);
  for (auto it = begin; it != end; ++it) {
    for (absl::string_view value : absl::StrSplit(it->second, ',', absl::SkipEmpty())) {
      if (std::find(values.begin(), values.end(), value) == values.end()) {
        values.emplace_back(value);
      }
    }
  }
  return values;
}

namespace {

template <typename Uint>
absl::Status ParseUint(const httplib::Request& req, const std::string& name, Uint* value) {
  if (!req.has_param(name)) return absl::OkStatus();
  if (!absl::SimpleAtoi(req.get_param_value(name), value)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected a non-negative integer"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseUintParam(const httplib::Request& req, const std::string& name, uint32_t* value) {
  return ParseUint(req, name, value);
}

absl::Status ParseUintParam(const httplib::Request& req, const std::string& name, uint64_t* value) {
  return ParseUint(req, name, value);
}

}  // namespace ablate::coordinator
