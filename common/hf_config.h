// Hugging Face's config.json for Qwen3 (transformers' Qwen3Config), read into and written from
// v1::ModelConfig without LibTorch, so that the sweep validator, the coordinator and the
// trainer all accept `model: hf:PATH`.
//
// Reading accepts both spellings of the RoPE base that transformers has written: a top-level
// "rope_theta" (4.x, the official Qwen3 files) and "rope_parameters": {"rope_theta": ...}
// (5.x). Fields Qwen3Config defaults when absent default the same way here (head_dim to
// hidden_size / num_attention_heads, num_key_value_heads to num_attention_heads, rms_norm_eps
// to 1e-6, tie_word_embeddings to false, max_position_embeddings to 32768). Settings this
// trainer does not implement (a RoPE type other than "default", attention_bias, sliding-window
// layers, an activation other than silu) are refused rather than silently ignored.
// bos_token_id and eos_token_id (one id or a list) are kept when present, for an export.
//
// Stateless; safe from any thread.
#ifndef ABLATE_COMMON_HF_CONFIG_H_
#define ABLATE_COMMON_HF_CONFIG_H_

#include <string>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ablate {

// The prefix of a model name that points to a Hugging Face config: "hf:/models/qwen3-0.6b".
inline constexpr absl::string_view kHfModelPrefix = "hf:";

// The config.json at `path`, or at `path`/config.json when `path` is a directory. The result's
// name is `name` (what the job called it). NotFound when the file is missing;
// InvalidArgument naming the file and the field when it is malformed or asks for something
// unsupported: "/m/config.json: num_attention_heads: 12 is not a multiple of
// num_key_value_heads 5".
absl::StatusOr<v1::ModelConfig> ReadHfConfig(const std::string& path, const std::string& name);

// The same, from the text of a config.json; `source` names it in errors.
absl::StatusOr<v1::ModelConfig> ParseHfConfig(absl::string_view json, absl::string_view source);

// A config.json that transformers loads as Qwen3ForCausalLM with this shape, in float32.
std::string HfConfigJson(const v1::ModelConfig& config);

// The fields in which `a` and `b` describe different weights or computations, comma-separated
// ("hidden_size 64 vs 128, tie_word_embeddings true vs false"), or empty when they agree.
// The name, max_position_embeddings and the token ids are not compared: none changes a weight
// or a result.
std::string ModelConfigDifferences(const v1::ModelConfig& a, const v1::ModelConfig& b);

}  // namespace ablate

#endif  // ABLATE_COMMON_HF_CONFIG_H_
