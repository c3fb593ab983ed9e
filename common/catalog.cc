#include "common/catalog.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hf_config.h"

namespace ablate {
namespace {

v1::ModelConfig Make(std::string name, uint32_t vocab, uint32_t hidden, uint32_t intermediate,
                     uint32_t layers, uint32_t heads, uint32_t kv_heads, uint32_t head_dim,
                     double rope_theta, bool tied) {
  v1::ModelConfig c;
  c.set_name(std::move(name));
  c.set_vocab_size(vocab);
  c.set_hidden_size(hidden);
  c.set_intermediate_size(intermediate);
  c.set_num_hidden_layers(layers);
  c.set_num_attention_heads(heads);
  c.set_num_key_value_heads(kv_heads);
  c.set_head_dim(head_dim);
  c.set_max_position_embeddings(40960);
  c.set_rope_theta(rope_theta);
  c.set_rms_norm_eps(1e-6);
  c.set_tie_word_embeddings(tied);
  return c;
}

// Qwen3 shapes as published in Hugging Face's config.json of each size (Qwen/Qwen3-0.6B ...
// Qwen/Qwen3-32B: max_position_embeddings 40960, rms_norm_eps 1e-6, rope_theta 1e6, no RoPE
// scaling; the embedding tied up to 4B); tiny and mini keep the
// architecture and shrink every width so a CPU trains them in seconds on a byte vocabulary;
// small (108M parameters, 25M of them the tied embedding) is Qwen3's architecture at GPT-2
// small's widths with a 32,768-id vocabulary (scripts/prepare_kernel_docs.sh's tokenizer), for
// GPU comparisons that take minutes.
const std::vector<v1::ModelConfig>& Models() {
  static const auto* models = new std::vector<v1::ModelConfig>{
      Make("tiny", 256, 64, 192, 2, 4, 2, 16, 10000, true),
      Make("mini", 256, 128, 384, 4, 4, 2, 32, 10000, true),
      Make("small", 32768, 768, 2304, 12, 12, 4, 64, 1e6, true),
      Make("qwen3-0.6b", 151936, 1024, 3072, 28, 16, 8, 128, 1e6, true),
      Make("qwen3-1.7b", 151936, 2048, 6144, 28, 16, 8, 128, 1e6, true),
      Make("qwen3-4b", 151936, 2560, 9728, 36, 32, 8, 128, 1e6, true),
      Make("qwen3-8b", 151936, 4096, 12288, 36, 32, 8, 128, 1e6, false),
      Make("qwen3-14b", 151936, 5120, 17408, 40, 40, 8, 128, 1e6, false),
      Make("qwen3-32b", 151936, 5120, 25600, 64, 64, 8, 128, 1e6, false),
  };
  return *models;
}

}  // namespace

const std::vector<std::string>& ModelNames() {
  static const auto* names = [] {
    auto* out = new std::vector<std::string>;
    for (const auto& m : Models()) out->push_back(m.name());
    return out;
  }();
  return *names;
}

absl::StatusOr<v1::ModelConfig> ModelByName(absl::string_view name) {
  if (absl::StartsWith(name, kHfModelPrefix)) {
    return ReadHfConfig(std::string(name.substr(kHfModelPrefix.size())), std::string(name));
  }
  for (const auto& m : Models()) {
    if (m.name() == name) return m;
  }
  return absl::NotFoundError(
      absl::StrCat("unknown model '", name, "' (known: ", absl::StrJoin(ModelNames(), ", "), ")"));
}

const std::vector<std::string>& AttentionNames() {
  static const auto* names = new std::vector<std::string>{"dense", "nsa"};
  return *names;
}

const std::vector<std::string>& OptimizerNames() {
  static const auto* names =
      new std::vector<std::string>{"adamw", "adamw8bit", "muon", "soap", "shampoo", "soap4bit"};
  return *names;
}

}  // namespace ablate
