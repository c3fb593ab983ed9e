#include "common/typed_args.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/did_you_mean.h"

namespace ablate {
namespace {

// v as a user writes it: a whole number of an int argument in full (1048576, where a double's
// shortest form is 1.04858e+06).
std::string Number(const TypedArg& arg, double v) {
  if (arg.type == ArgType::kInt && std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrFormat("%.0f", v);
  }
  return absl::StrCat(v);
}

std::string Range(const TypedArg& arg) {
  return absl::StrCat(arg.low_inclusive ? "[" : "(", Number(arg, arg.low), ", ",
                      Number(arg, arg.high), arg.high_inclusive ? "]" : ")");
}

std::string TypeProblem(const TypedArg& arg, double v) {
  if (!std::isfinite(v)) return "must be a finite number";
  switch (arg.type) {
    case ArgType::kBool:
      return v == 0 || v == 1 ? "" : "must be true or false";
    case ArgType::kInt:
      if (v != std::floor(v)) return "must be a whole number";
      break;
    case ArgType::kFloat:
      break;
  }
  const bool above = arg.low_inclusive ? v >= arg.low : v > arg.low;
  const bool below = arg.high_inclusive ? v <= arg.high : v < arg.high;
  return above && below ? "" : absl::StrCat("is outside ", Range(arg));
}

}  // namespace

absl::Status CheckTypedArgs(absl::string_view field, absl::string_view owner,
                            const std::vector<TypedArg>& declared,
                            const google::protobuf::Map<std::string, double>& args) {
  const std::map<std::string, double> sorted(args.begin(), args.end());
  std::vector<std::string> problems;
  for (const auto& [name, value] : sorted) {
    const TypedArg* arg = nullptr;
    std::vector<std::string> names;
    for (const TypedArg& a : declared) {
      if (a.name == name) arg = &a;
      names.push_back(a.name);
    }
    const std::string key = absl::StrCat(field, ".", name);
    if (arg == nullptr) {
      std::string hint = DidYouMean(name, names);
      if (hint.empty()) hint = absl::StrCat(" (it takes ", absl::StrJoin(names, ", "), ")");
      problems.push_back(absl::StrCat(key, ": ", owner, " has no argument ", name, hint));
    } else if (std::string problem = TypeProblem(*arg, value); !problem.empty()) {
      problems.push_back(
          absl::StrCat(key, ": ", Number(*arg, value), " ", problem, " for ", owner));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

void EraseDefaultArgs(const std::vector<TypedArg>* declared,
                      google::protobuf::Map<std::string, double>& args) {
  if (declared == nullptr) {
    args.clear();
    return;
  }
  // Whether each switch is on is read before anything is erased: a switch at its default is
  // erased too.
  std::vector<std::string> unread;
  for (const TypedArg& arg : *declared) {
    if (arg.read_only_under.empty()) continue;
    const std::string owner = absl::StrCat("the table of ", arg.name);
    if (TypedArgOr(owner, declared, args, arg.read_only_under) == 0) unread.push_back(arg.name);
  }
  for (const std::string& name : unread) args.erase(name);
  for (const TypedArg& arg : *declared) {
    const auto it = args.find(arg.name);
    if (it != args.end() && it->second == arg.default_value) args.erase(it);
  }
}

double TypedArgOr(absl::string_view owner, const std::vector<TypedArg>* declared,
                  const google::protobuf::Map<std::string, double>& args, absl::string_view name) {
  auto set = args.find(std::string(name));
  if (set != args.end()) return set->second;
  if (declared != nullptr) {
    for (const TypedArg& arg : *declared) {
      if (arg.name == name) return arg.default_value;
    }
  }
  absl::FPrintF(stderr, "%s declares no argument %s\n", owner, name);
  std::abort();
}

}  // namespace ablate
