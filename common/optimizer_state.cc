#include "common/optimizer_state.h"

#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/optimizer_args.h"
#include "common/typed_args.h"

namespace ablate {
namespace {

constexpr int64_t kFloat32 = 4;

int64_t Elements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t size : shape) n *= size;
  return n;
}

// The value of `name` for `optimizer`, or `otherwise` where the optimizer has no such argument.
double ArgOr(absl::string_view optimizer, const google::protobuf::Map<std::string, double>& args,
             absl::string_view name, double otherwise) {
  const std::vector<OptimizerArg>* declared = OptimizerArgs(optimizer);
  if (declared == nullptr ||
      absl::c_none_of(*declared, [&](const OptimizerArg& a) { return a.name == name; })) {
    return otherwise;
  }
  return TypedArgOr(absl::StrCat("optimizer ", optimizer), declared, args, name);
}

}  // namespace

bool AdamW8bitQuantizes(int64_t n) {
  return n >= kAdamW8bitMinElements && n % kAdamW8bitBlock == 0;
}

int64_t BlockQuantizedBytes(int64_t n, int bits, int64_t block) {
  const int64_t blocks = (n + block - 1) / block;
  return blocks * kFloat32 + blocks * block * bits / 8;
}

bool SoapPreconditions(absl::Span<const int64_t> shape, size_t d, int64_t max_precond_dim,
                       bool precondition_1d) {
  return (shape.size() > 1 || precondition_1d) && shape[d] <= max_precond_dim;
}

bool ShampooPreconditions(absl::Span<const int64_t> shape, int64_t max_precond_dim) {
  return shape.size() > 1 && absl::c_all_of(shape, [&](int64_t n) { return n <= max_precond_dim; });
}

OptimizerStateArgs OptimizerStateArgsOf(absl::string_view optimizer,
                                        const google::protobuf::Map<std::string, double>& args) {
  OptimizerStateArgs out;
  out.max_precond_dim = static_cast<int64_t>(
      ArgOr(optimizer, args, "max_precond_dim", static_cast<double>(out.max_precond_dim)));
  out.precondition_1d = ArgOr(optimizer, args, "precondition_1d", 0) != 0;
  out.start_preconditioning_step =
      static_cast<int64_t>(ArgOr(optimizer, args, "start_preconditioning_step",
                                 static_cast<double>(out.start_preconditioning_step)));
  return out;
}

int64_t PreconditionerElements(absl::string_view optimizer, absl::Span<const int64_t> shape,
                               const OptimizerStateArgs& args) {
  int64_t elements = 0;
  if (optimizer == "soap" || optimizer == "soap4bit") {
    for (size_t d = 0; d < shape.size(); ++d) {
      if (SoapPreconditions(shape, d, args.max_precond_dim, args.precondition_1d)) {
        elements += shape[d] * shape[d];
      }
    }
  } else if (optimizer == "shampoo" && ShampooPreconditions(shape, args.max_precond_dim)) {
    for (int64_t n : shape) elements += n * n;
  }
  return elements;
}

absl::StatusOr<int64_t> OptimizerStateBytes(absl::string_view optimizer,
                                            absl::Span<const int64_t> shape, bool hidden_matrix,
                                            const OptimizerStateArgs& args) {
  const int64_t n = Elements(shape);
  const int64_t adam = 2 * kFloat32 * n;
  const int64_t preconditioners = PreconditionerElements(optimizer, shape, args);
  if (optimizer == "adamw") return adam;
  if (optimizer == "adamw8bit") {
    return AdamW8bitQuantizes(n) ? 2 * BlockQuantizedBytes(n, 8, kAdamW8bitBlock) : adam;
  }
  if (optimizer == "muon") return hidden_matrix ? kFloat32 * n : adam;
  if (optimizer == "soap") return adam + 2 * kFloat32 * preconditioners;
  if (optimizer == "soap4bit") {
    int64_t bytes = 2 * BlockQuantizedBytes(n, 8, kSoap4bitSmallBlock);
    for (size_t d = 0; d < shape.size(); ++d) {
      if (!SoapPreconditions(shape, d, args.max_precond_dim, args.precondition_1d)) continue;
      const int64_t square = shape[d] * shape[d];
      bytes += BlockQuantizedBytes(square, 8, kSoap4bitFactorBlock) +
               BlockQuantizedBytes(square, 4, kSoap4bitSmallBlock);
    }
    return bytes;
  }
  if (optimizer == "shampoo") {
    const int64_t moments = args.start_preconditioning_step > 1 ? 3 : 2;  // m_graft till then
    return kFloat32 * (moments * n + 2 * preconditioners);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer: no state layout for '", optimizer, "'"));
}

}  // namespace ablate
