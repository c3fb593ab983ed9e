// Typed arguments in a map<string, double> of TrainConfig (optimizer_args, attention_args):
// each argument's name, type, default, valid range and the source of its default, and the one
// check that refuses a misspelt key (with a suggestion), a value of the wrong type and a value
// out of range, naming the field. common/optimizer_args.h and common/attention_args.h declare
// their tables with it. No LibTorch; immutable and safe to call from any thread.
//
// A bool is stored as 1 or 0 (a sweep file writes `nesterov: true`), an int as a whole number.
#ifndef ABLATE_COMMON_TYPED_ARGS_H_
#define ABLATE_COMMON_TYPED_ARGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/map.h"

namespace ablate {

enum class ArgType { kFloat, kInt, kBool };

struct TypedArg {
  std::string name;  // the key in the map ("beta2", "block_size")
  ArgType type;
  double default_value;
  // Valid values: low < v (or low <= v when low_inclusive) and v < high (or <=). Bools ignore
  // the bounds; an int must also be whole.
  double low;
  bool low_inclusive;
  double high;
  bool high_inclusive;
  std::string source;  // where the default comes from ("torch.optim.AdamW")
  // The bool argument under which alone this one is read ("learned_compression" for NSA's
  // compression_kernel), or "" for one always read.
  std::string read_only_under = "";
};

// Checks `args`, the map field `field` ("optimizer_args") of a config whose `owner` ("adamw",
// "nsa") declares `declared`: InvalidArgument for an undeclared key
// ("optimizer_args.beta_2: adamw has no argument beta_2 (did you mean beta2?)"), a value out of
// range ("optimizer_args.beta2: 1 is outside [0, 1) for adamw"), a fractional int, a bool other
// than true/false, and NaN or infinity. Every bad key is reported, a line each, in sorted order
// of the keys, so that one round of edits fixes them all and the message does not depend on
// the map's order.
absl::Status CheckTypedArgs(absl::string_view field, absl::string_view owner,
                            const std::vector<TypedArg>& declared,
                            const google::protobuf::Map<std::string, double>& args);

// Erases from `args` each entry equal to its declared default, each entry read only under a
// bool argument that is off (NSA's compression_kernel without learned_compression), and every
// entry where `declared` is null (an owner that declares no argument reads none): a setting
// written at its default, or one nothing reads, and one left out are then one config, of one
// job id. Nothing that trains can tell
// the difference, since every reader looks arguments up through TypedArgOr, which gives the
// declared default for a key left out. A default that stands for another argument's value
// (soap's shampoo_beta, whose -1 means "beta2") is compared as declared, never resolved: -1 is
// erased, but a shampoo_beta written equal to beta2 stays, a job of its own id that trains as
// one without it. Resolving it would teach this table each optimizer's rules; keeping it
// never makes one job of two that train differently.
void EraseDefaultArgs(const std::vector<TypedArg>* declared,
                      google::protobuf::Map<std::string, double>& args);

// The value of `name` in `args`, else its declared default. `name` must be declared (a
// programming error otherwise: it aborts, naming `owner` and `name`).
double TypedArgOr(absl::string_view owner, const std::vector<TypedArg>* declared,
                  const google::protobuf::Map<std::string, double>& args, absl::string_view name);

}  // namespace ablate

#endif  // ABLATE_COMMON_TYPED_ARGS_H_
