#include "common/hf_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

namespace ablate {
namespace {

using nlohmann::json;

// Reads fields of one parsed config.json; the first problem met is kept in `status`.
class Fields {
 public:
  Fields(const json& root, absl::string_view source) : root_(root), source_(source) {}

  // A positive integer field; `fallback` when absent and a fallback is given.
  uint32_t Positive(const char* key, int64_t fallback = -1) {
    const json* value = Find(key);
    if (value == nullptr) {
      if (fallback > 0) return static_cast<uint32_t>(fallback);
      Fail(key, "is missing");
      return 0;
    }
    if (!value->is_number_integer() || value->get<int64_t>() <= 0 ||
        value->get<int64_t>() > int64_t{UINT32_MAX}) {
      Fail(key, absl::StrCat(value->dump(), " is not a positive 32-bit integer"));
      return 0;
    }
    return value->get<uint32_t>();
  }

  double PositiveNumber(const json* value, const std::string& key, double fallback) {
    if (value == nullptr || value->is_null()) {
      if (fallback > 0) return fallback;
      Fail(key, "is missing");
      return 0;
    }
    if (!value->is_number() || !(value->get<double>() > 0) ||
        !std::isfinite(value->get<double>())) {
      Fail(key, absl::StrCat(value->dump(), " is not a positive number"));
      return 0;
    }
    return value->get<double>();
  }

  // A token id: an integer in [0, 2^32), or nothing when absent.
  std::optional<uint32_t> TokenId(const json* value, absl::string_view key) {
    if (value == nullptr) return std::nullopt;
    if (!value->is_number_integer() || value->get<int64_t>() < 0 ||
        value->get<int64_t>() > int64_t{UINT32_MAX}) {
      Fail(key, absl::StrCat(value->dump(), " is not a token id"));
      return std::nullopt;
    }
    return value->get<uint32_t>();
  }

  bool Bool(const char* key, bool fallback) {
    const json* value = Find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) Fail(key, absl::StrCat(value->dump(), " is not true or false"));
    return value->is_boolean() && value->get<bool>();
  }

  // The field, or null when absent or JSON null.
  const json* Find(const char* key) const {
    auto it = root_.find(key);
    return it == root_.end() || it->is_null() ? nullptr : &*it;
  }

  void Fail(absl::string_view key, absl::string_view problem) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrCat(source_, ": ", key, ": ", problem));
    }
  }

  const absl::Status& status() const { return status_; }

 private:
  const json& root_;
  const std::string source_;
  absl::Status status_;
};

// Refuses what Qwen3ForCausalLM can be configured to do and this trainer does not.
void CheckSupported(Fields& f) {
  if (const json* type = f.Find("model_type"); type != nullptr && *type != "qwen3") {
    f.Fail("model_type", absl::StrCat(type->dump(), " is not \"qwen3\""));
  }
  if (const json* act = f.Find("hidden_act"); act != nullptr && *act != "silu") {
    f.Fail("hidden_act", absl::StrCat(act->dump(), " is not supported (only \"silu\")"));
  }
  if (f.Bool("attention_bias", false)) f.Fail("attention_bias", "true is not supported");
  if (f.Bool("use_sliding_window", false)) f.Fail("use_sliding_window", "true is not supported");
  if (const json* scaling = f.Find("rope_scaling"); scaling != nullptr) {
    f.Fail("rope_scaling", absl::StrCat(scaling->dump(), " is not supported (only null)"));
  }
  if (const json* params = f.Find("rope_parameters"); params != nullptr) {
    auto type = params->find("rope_type");
    if (type != params->end() && *type != "default") {
      f.Fail("rope_parameters.rope_type",
             absl::StrCat(type->dump(), " is not supported (only \"default\")"));
    }
  }
}

// bos_token_id, and eos_token_id as one id or a list of them (transformers writes both).
void ReadTokenIds(Fields& f, v1::ModelConfig& c) {
  if (std::optional<uint32_t> bos = f.TokenId(f.Find("bos_token_id"), "bos_token_id")) {
    c.set_bos_token_id(*bos);
  }
  const json* eos = f.Find("eos_token_id");
  if (eos == nullptr || !eos->is_array()) {
    if (std::optional<uint32_t> id = f.TokenId(eos, "eos_token_id")) c.add_eos_token_id(*id);
    return;
  }
  for (size_t i = 0; i < eos->size(); ++i) {
    const std::string key = absl::StrCat("eos_token_id[", i, "]");
    if (std::optional<uint32_t> id = f.TokenId(&(*eos)[i], key)) c.add_eos_token_id(*id);
  }
}

}  // namespace

absl::StatusOr<v1::ModelConfig> ParseHfConfig(absl::string_view text, absl::string_view source) {
  const json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  // An Ablate checkpoint's folder holds a config.json too: its job's TrainConfig.
  if (!root.contains("vocab_size") && root.contains("optimizer") && root.contains("steps")) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": an Ablate checkpoint's TrainConfig, not a model's config; `ablate-train export "
        "--checkpoint DIR --out OUT` writes its model as a Hugging Face directory"));
  }
  Fields f(root, source);
  CheckSupported(f);
  v1::ModelConfig c;
  c.set_vocab_size(f.Positive("vocab_size"));
  c.set_hidden_size(f.Positive("hidden_size"));
  c.set_intermediate_size(f.Positive("intermediate_size"));
  c.set_num_hidden_layers(f.Positive("num_hidden_layers"));
  c.set_num_attention_heads(f.Positive("num_attention_heads"));
  c.set_num_key_value_heads(f.Positive("num_key_value_heads", c.num_attention_heads()));
  const int64_t default_head_dim =
      c.num_attention_heads() > 0 ? c.hidden_size() / c.num_attention_heads() : 0;
  c.set_head_dim(f.Positive("head_dim", default_head_dim));
  c.set_max_position_embeddings(f.Positive("max_position_embeddings", 32768));
  c.set_rms_norm_eps(f.PositiveNumber(f.Find("rms_norm_eps"), "rms_norm_eps", 1e-6));
  c.set_tie_word_embeddings(f.Bool("tie_word_embeddings", false));
  if (const json* params = f.Find("rope_parameters");
      params != nullptr && params->is_object() && params->contains("rope_theta")) {
    c.set_rope_theta(f.PositiveNumber(&(*params)["rope_theta"], "rope_parameters.rope_theta", 0));
  } else {
    c.set_rope_theta(f.PositiveNumber(f.Find("rope_theta"), "rope_theta", 0));
  }
  ReadTokenIds(f, c);
  if (!f.status().ok()) return f.status();
  if (c.num_attention_heads() % c.num_key_value_heads() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": num_attention_heads: ", c.num_attention_heads(),
                     " is not a multiple of num_key_value_heads ", c.num_key_value_heads()));
  }
  if (c.head_dim() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": head_dim: ", c.head_dim(), " is odd; RoPE rotates pairs"));
  }
  return c;
}

absl::StatusOr<v1::ModelConfig> ReadHfConfig(const std::string& path, const std::string& name) {
  std::error_code error;
  const std::string file =
      std::filesystem::is_directory(path, error) ? path + "/config.json" : path;
  std::ifstream in(file);
  if (!in.is_open()) {
    return absl::NotFoundError(
        absl::StrCat(file, ": cannot open (a model directory or its config.json)"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(file, ": read failed"));
  absl::StatusOr<v1::ModelConfig> config = ParseHfConfig(text.str(), file);
  if (config.ok()) config->set_name(name);
  return config;
}

std::string HfConfigJson(const v1::ModelConfig& c) {
  json j = {
      {"architectures", {"Qwen3ForCausalLM"}},
      {"model_type", "qwen3"},
      {"vocab_size", c.vocab_size()},
      {"hidden_size", c.hidden_size()},
      {"intermediate_size", c.intermediate_size()},
      {"num_hidden_layers", c.num_hidden_layers()},
      {"num_attention_heads", c.num_attention_heads()},
      {"num_key_value_heads", c.num_key_value_heads()},
      {"head_dim", c.head_dim()},
      {"hidden_act", "silu"},
      {"max_position_embeddings", c.max_position_embeddings()},
      {"rms_norm_eps", c.rms_norm_eps()},
      // Both spellings, so that transformers 4.x and 5.x read the same base.
      {"rope_theta", c.rope_theta()},
      {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", c.rope_theta()}}},
      {"rope_scaling", nullptr},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"use_sliding_window", false},
      {"tie_word_embeddings", c.tie_word_embeddings()},
      {"torch_dtype", "float32"},
      {"dtype", "float32"},
  };
  if (c.has_bos_token_id()) j["bos_token_id"] = c.bos_token_id();
  if (c.eos_token_id_size() == 1) j["eos_token_id"] = c.eos_token_id(0);
  if (c.eos_token_id_size() > 1) {
    j["eos_token_id"] = std::vector<uint32_t>(c.eos_token_id().begin(), c.eos_token_id().end());
  }
  return j.dump(2) + "\n";
}

std::string ModelConfigDifferences(const v1::ModelConfig& a, const v1::ModelConfig& b) {
  std::vector<std::string> differences;
  const google::protobuf::Descriptor* descriptor = v1::ModelConfig::descriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->name() == "name" || field->name() == "max_position_embeddings" ||
        field->name() == "bos_token_id" || field->name() == "eos_token_id") {
      continue;
    }
    google::protobuf::util::MessageDifferencer differencer;
    std::vector<const google::protobuf::FieldDescriptor*> only = {field};
    if (differencer.CompareWithFields(a, b, only, only)) continue;
    std::string left, right;
    google::protobuf::TextFormat::PrintFieldValueToString(a, field, -1, &left);
    google::protobuf::TextFormat::PrintFieldValueToString(b, field, -1, &right);
    differences.push_back(absl::StrCat(field->name(), " ", left, " vs ", right));
  }
  return absl::StrJoin(differences, ", ");
}

}  // namespace ablate
