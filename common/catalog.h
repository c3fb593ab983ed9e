// The names a sweep may use for models, attention kinds and optimizers (what each model costs
// is in common/model_math.h). No LibTorch, so the coordinator, the CLI and the trainer all
// link it. Everything here is immutable and safe to call from any thread.
#ifndef ABLATE_COMMON_CATALOG_H_
#define ABLATE_COMMON_CATALOG_H_

#include <string>
#include <vector>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ablate {

// Model sizes by name: "tiny" and "mini" for tests and CPU demos, then the Qwen3 family
// (qwen3-0.6b, qwen3-1.7b, qwen3-4b, qwen3-8b, qwen3-14b, qwen3-32b) with Hugging Face's
// published shapes.
const std::vector<std::string>& ModelNames();

// A catalog name, or "hf:PATH" for the Qwen3 config.json at PATH (a model directory or the
// file itself; see common/hf_config.h), read at every call. NotFound for an unknown name or a
// missing file; InvalidArgument naming the file and field for a malformed config.
absl::StatusOr<v1::ModelConfig> ModelByName(absl::string_view name);

// Attention kinds ("dense", "nsa") and optimizers ("adamw", "adamw8bit", "muon", "soap",
// "shampoo", "soap4bit"; their arguments are in common/optimizer_args.h) a sweep may name. A name
// listed here may still be refused by a trainer that does not implement it yet; the trainer then
// fails the job with a clear reason.
const std::vector<std::string>& AttentionNames();
const std::vector<std::string>& OptimizerNames();

}  // namespace ablate

#endif  // ABLATE_COMMON_CATALOG_H_
