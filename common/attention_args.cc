#include "common/attention_args.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace ablate {
namespace {

// Blocks fla's rule forces into every query's selection: the first and the two local ones.
constexpr int64_t kNsaForcedBlocks = 3;

const std::vector<TypedArg>& NsaArgs() {
  static const auto* args = new std::vector<TypedArg>{
      // fla-core's naive_nsa and parallel_nsa default block_size 64; the paper's l' = 64.
      {"block_size", ArgType::kInt, 64, 1, true, 65536, true,
       "fla-core naive_nsa block_size; paper l' = 64"},
      // The paper's n = 16, which counts the initial and two local blocks fla forces in (so at
      // least 3 under fla's rule: ValidateAttentionArgs).
      {"selected_blocks", ArgType::kInt, 16, 1, true, 65536, true,
       "fla-core naive_nsa block_counts; paper n = 16 (section 4.1)"},
      {"window", ArgType::kInt, 512, 0, true, 1 << 20, true, "paper w = 512 (section 4.1)"},
      {"learned_compression", ArgType::kBool, 0, 0, true, 1, true,
       "fla-core mean pooling; true: the paper's learned compression (section 3.3.1, eq. 7)"},
      {"compression_kernel", ArgType::kInt, 32, 1, true, 65536, true, "paper l = 32 (section 4.1)",
       "learned_compression"},
      {"compression_stride", ArgType::kInt, 16, 1, true, 65536, true, "paper d = 16 (section 4.1)",
       "learned_compression"},
      {"paper_selection", ArgType::kBool, 0, 0, true, 1, true,
       "fla-core naive_nsa_topk (forces the first and two local blocks); true: paper eq. 11"},
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
  const NsaShape shape = NsaShapeOf(config);
  if (!shape.paper_selection && shape.selected_blocks < kNsaForcedBlocks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention_args.selected_blocks: ", shape.selected_blocks, " is below ", kNsaForcedBlocks,
        ", the blocks fla's rule forces into every selection (the first and the two local ones); "
        "paper_selection: true (eq. 11, none forced) takes from 1"));
  }
  // Eq. 9 maps compressed scores onto selection blocks given l <= l', d | l and d | l'
  // (section 3.3.2); the window and stride matter only to learned compression.
  if (!shape.learned_compression) return absl::OkStatus();
  const int64_t l = shape.compression_kernel, d = shape.compression_stride;
  if (l % d != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention_args.compression_stride: ", d, " does not divide compression_kernel ", l,
        " (the paper's eq. 9 needs the stride to divide the window)"));
  }
  if (shape.block_size % d != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention_args.compression_stride: ", d, " does not divide block_size ", shape.block_size,
        " (the paper's eq. 9 needs the stride to divide the selection block)"));
  }
  if (l > shape.block_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention_args.compression_kernel: ", l, " exceeds block_size ", shape.block_size,
        " (the paper's eq. 9 needs compression windows no longer than selection blocks)"));
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
  shape.learned_compression = value("learned_compression") != 0;
  shape.compression_kernel = value("compression_kernel");
  shape.compression_stride = value("compression_stride");
  shape.paper_selection = value("paper_selection") != 0;
  return shape;
}

std::string NsaReadsEveryKey(const v1::TrainConfig& config) {
  if (config.attention() != "nsa") return "";
  const NsaShape shape = NsaShapeOf(config);
  const int64_t t = config.context_length();
  if (shape.window >= t) {
    return absl::StrCat("attention_args.window: ", shape.window, " tokens hold every key of a ", t,
                        "-token context: NSA computes dense attention there, and more");
  }
  if (shape.selected_blocks * shape.block_size >= t) {
    return absl::StrCat("attention_args.selected_blocks: ", shape.selected_blocks, " blocks of ",
                        shape.block_size, " tokens hold every key of a ", t,
                        "-token context: NSA computes dense attention there, and more");
  }
  return "";
}

}  // namespace ablate
