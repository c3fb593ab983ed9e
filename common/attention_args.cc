#include "common/attention_args.h"

#include <cstdint>

namespace ablate {
namespace {

const std::vector<TypedArg>& NsaArgs() {
  static const auto* args = new std::vector<TypedArg>{
      // fla-core's naive_nsa and parallel_nsa default block_size 64; the paper's l' = 64.
      {"block_size", ArgType::kInt, 64, 1, true, 65536, true,
       "fla-core naive_nsa block_size; paper l' = 64"},
      // The paper's n = 16, which counts the initial and two local blocks fla forces in.
      {"selected_blocks", ArgType::kInt, 16, 3, true, 65536, true,
       "fla-core naive_nsa block_counts; paper n = 16 (section 4.1)"},
      {"window", ArgType::kInt, 512, 0, true, 1 << 20, true, "paper w = 512 (section 4.1)"},
      {"learned_compression", ArgType::kBool, 0, 0, true, 1, true,
       "fla-core mean pooling (the paper's MLP over kernel 32, stride 16 is not built)"},
  };
  return *args;
}

}  // namespace

const std::vector<TypedArg>* AttentionArgs(absl::string_view attention) {
  return attention == "nsa" ? &NsaArgs() : nullptr;
}

absl::Status ValidateAttentionArgs(const v1::TrainConfig& config) {
  const std::vector<TypedArg>* declared = AttentionArgs(config.attention());
  if (declared == nullptr) return absl::OkStatus();
  if (absl::Status s =
          CheckTypedArgs("attention_args", config.attention(), *declared, config.attention_args());
      !s.ok()) {
    return s;
  }
  if (TypedArgOr("nsa", declared, config.attention_args(), "learned_compression") != 0) {
    return absl::InvalidArgumentError(
        "attention_args.learned_compression: true is not built yet; nsa compresses keys and "
        "values by mean pooling over block_size tokens, as fla-core does (set it to false)");
  }
  return absl::OkStatus();
}

NsaShape NsaShapeOf(const v1::TrainConfig& config) {
  auto value = [&](absl::string_view name) {
    return static_cast<int64_t>(TypedArgOr("nsa", &NsaArgs(), config.attention_args(), name));
  };
  NsaShape shape;
  shape.block_size = value("block_size");
  shape.selected_blocks = value("selected_blocks");
  shape.window = value("window");
  return shape;
}

}  // namespace ablate
