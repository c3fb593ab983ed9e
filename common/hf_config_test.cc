#include "common/hf_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/train_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;

// The fields of Qwen/Qwen3-0.6B's config.json as published (transformers 4.51 wrote it).
constexpr char kQwen3_0_6B[] = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
  "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

// A tiny model as transformers 5 saves it: the RoPE base inside rope_parameters.
constexpr char kTransformers5[] = R"({
  "model_type": "qwen3", "vocab_size": 97, "hidden_size": 40, "intermediate_size": 56,
  "num_hidden_layers": 2, "num_attention_heads": 5, "num_key_value_heads": 1, "head_dim": 8,
  "rope_parameters": {"rope_theta": 500.0, "rope_type": "default"}, "rms_norm_eps": 1e-05,
  "tie_word_embeddings": false, "use_sliding_window": false, "sliding_window": null})";

TEST(HfConfigTest, PublishedQwen3ConfigMatchesTheCatalog) {
  absl::StatusOr<v1::ModelConfig> parsed = ParseHfConfig(kQwen3_0_6B, "config.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  v1::ModelConfig catalog = *ModelByName("qwen3-0.6b");
  EXPECT_EQ(ModelConfigDifferences(*parsed, catalog), "");
  EXPECT_EQ(parsed->max_position_embeddings(), catalog.max_position_embeddings());
}

// The fields that differ between the published config.json files of the Qwen3 sizes (all
// share vocab 151936, head_dim 128, 8 key/value heads, rope_theta 1e6, rms_norm_eps 1e-6 and
// max_position_embeddings 40960 with 0.6B).
TEST(HfConfigTest, PublishedSizesMatchTheCatalog) {
  struct Size {
    const char* name;
    int hidden, intermediate, layers, heads;
    bool tied;
  };
  for (const Size& size :
       {Size{"qwen3-1.7b", 2048, 6144, 28, 16, true}, Size{"qwen3-4b", 2560, 9728, 36, 32, true},
        Size{"qwen3-8b", 4096, 12288, 36, 32, false}, Size{"qwen3-14b", 5120, 17408, 40, 40, false},
        Size{"qwen3-32b", 5120, 25600, 64, 64, false}}) {
    std::string json = kQwen3_0_6B;
    auto set = [&json](const std::string& key, const std::string& old_value,
                       const std::string& value) {
      const std::string from = absl::StrCat("\"", key, "\": ", old_value);
      json.replace(json.find(from), from.size(), absl::StrCat("\"", key, "\": ", value));
    };
    set("hidden_size", "1024", std::to_string(size.hidden));
    set("intermediate_size", "3072", std::to_string(size.intermediate));
    set("num_hidden_layers", "28", std::to_string(size.layers));
    set("num_attention_heads", "16", std::to_string(size.heads));
    set("tie_word_embeddings", "true", size.tied ? "true" : "false");
    absl::StatusOr<v1::ModelConfig> parsed = ParseHfConfig(json, size.name);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(ModelConfigDifferences(*parsed, *ModelByName(size.name)), "") << size.name;
  }
}

TEST(HfConfigTest, ReadsTransformers5RopeParameters) {
  absl::StatusOr<v1::ModelConfig> c = ParseHfConfig(kTransformers5, "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_theta(), 500.0);
  EXPECT_EQ(c->num_attention_heads(), 5u);
  EXPECT_EQ(c->num_key_value_heads(), 1u);
  EXPECT_EQ(c->rms_norm_eps(), 1e-5);
  EXPECT_FALSE(c->tie_word_embeddings());
  EXPECT_EQ(c->max_position_embeddings(), 32768u);  // Qwen3Config's default
}

TEST(HfConfigTest, WrittenConfigReadsBackTheSame) {
  for (const std::string& name : ModelNames()) {
    v1::ModelConfig config = *ModelByName(name);
    absl::StatusOr<v1::ModelConfig> back = ParseHfConfig(HfConfigJson(config), name);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(ModelConfigDifferences(config, *back), "") << name;
    EXPECT_EQ(back->max_position_embeddings(), config.max_position_embeddings());
  }
}

// The token ids travel from a config.json to an export's, as one id or a list, and change no
// comparison: they name tokens, not weights.
TEST(HfConfigTest, TokenIdsAreKeptForAnExport) {
  absl::StatusOr<v1::ModelConfig> qwen = ParseHfConfig(kQwen3_0_6B, "config.json");
  ASSERT_TRUE(qwen.ok()) << qwen.status();
  ASSERT_TRUE(qwen->has_bos_token_id());
  EXPECT_EQ(qwen->bos_token_id(), 151643u);
  EXPECT_THAT(qwen->eos_token_id(), ::testing::ElementsAre(151645u));
  EXPECT_THAT(HfConfigJson(*qwen), HasSubstr("\"eos_token_id\": 151645"));

  std::string listed = kTransformers5;
  listed.replace(listed.find("\"vocab_size\""), 12, R"("eos_token_id": [3, 0], "vocab_size")");
  absl::StatusOr<v1::ModelConfig> two = ParseHfConfig(listed, "c");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_FALSE(two->has_bos_token_id());
  absl::StatusOr<v1::ModelConfig> back = ParseHfConfig(HfConfigJson(*two), "back");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_THAT(back->eos_token_id(), ::testing::ElementsAre(3u, 0u));
  EXPECT_FALSE(back->has_bos_token_id());
  EXPECT_EQ(ModelConfigDifferences(*two, *ParseHfConfig(kTransformers5, "c")), "");

  listed.replace(listed.find("[3, 0]"), 6, "[3, -1]");
  EXPECT_EQ(ParseHfConfig(listed, "c").status().message(),
            "c: eos_token_id[1]: -1 is not a token id");
}

TEST(HfConfigTest, MalformedFieldsAreNamedWithTheSource) {
  EXPECT_THAT(ParseHfConfig(R"({"vocab_size": 10})", "/m/config.json").status().message(),
              HasSubstr("/m/config.json: hidden_size: is missing"));
  EXPECT_THAT(ParseHfConfig("{\"hidden_size\": -4", "/m/config.json").status().message(),
              HasSubstr("/m/config.json: not a JSON object"));
  // A checkpoint's step folder, mistaken for a model's: said so, with the way to one.
  EXPECT_THAT(ParseHfConfig(R"({"model": "mini", "optimizer": "adamw", "steps": 20})",
                            "/c/step-00000020/config.json")
                  .status()
                  .message(),
              HasSubstr("/c/step-00000020/config.json: an Ablate checkpoint's TrainConfig, not a "
                        "model's config; `ablate-train export --checkpoint DIR --out OUT`"));
  std::string bad_heads = kTransformers5;
  bad_heads.replace(bad_heads.find("\"num_key_value_heads\": 1"), 24, "\"num_key_value_heads\": 2");
  EXPECT_THAT(ParseHfConfig(bad_heads, "c").status().message(),
              HasSubstr("num_attention_heads: 5 is not a multiple of num_key_value_heads 2"));
  std::string string_width = kTransformers5;
  string_width.replace(string_width.find("\"hidden_size\": 40"), 17, "\"hidden_size\": \"40\"");
  EXPECT_THAT(ParseHfConfig(string_width, "c").status().message(),
              HasSubstr("c: hidden_size: \"40\" is not a positive 32-bit integer"));
}

TEST(HfConfigTest, UnsupportedSettingsAreRefused) {
  std::string yarn = kQwen3_0_6B;
  yarn.replace(yarn.find("\"rope_scaling\": null"), 20,
               R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0})");
  EXPECT_THAT(ParseHfConfig(yarn, "c").status().message(), HasSubstr("c: rope_scaling:"));
  std::string bias = kQwen3_0_6B;
  bias.replace(bias.find("\"attention_bias\": false"), 23, "\"attention_bias\": true");
  EXPECT_THAT(ParseHfConfig(bias, "c").status().message(), HasSubstr("attention_bias"));
  std::string llama = kQwen3_0_6B;
  llama.replace(llama.find("\"qwen3\""), 7, "\"llama\"");
  EXPECT_THAT(ParseHfConfig(llama, "c").status().message(), HasSubstr("model_type"));
}

// A job records the config its hf: model had when its sweep was expanded (so that an edited
// file makes another job), and refuses to run once the file holds another model.
TEST(HfConfigTest, AJobRecordsItsModelAndRefusesAnEditedOne) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "hf_config_job";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << kTransformers5;
  v1::TrainConfig config = DefaultTrainConfig();
  ASSERT_TRUE(SetTrainField(config, "model", "hf:" + dir.string()).ok());
  ASSERT_TRUE(RecordHfModel(config).ok());
  EXPECT_EQ(config.hf_model().num_hidden_layers(), 2u);
  EXPECT_TRUE(ModelOfConfig(config).ok());
  EXPECT_FALSE(IsTrainField("hf_model")) << "a sweep file could set what expansion records";

  std::string deeper = kTransformers5;
  deeper.replace(deeper.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 3");
  std::ofstream(dir / "config.json", std::ios::trunc) << deeper;
  absl::StatusOr<v1::ModelConfig> edited = ModelOfConfig(config);
  EXPECT_EQ(edited.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(edited.status().message(),
              HasSubstr("changed since its sweep was expanded (num_hidden_layers 2 vs 3)"));
  v1::TrainConfig catalog = DefaultTrainConfig();
  ASSERT_TRUE(RecordHfModel(catalog).ok());
  EXPECT_FALSE(catalog.has_hf_model());
}

TEST(HfConfigTest, ModelByNameReadsADirectoryOrTheFile) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "hf_config_dir";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << kTransformers5;
  for (const std::string& path : {dir.string(), (dir / "config.json").string()}) {
    absl::StatusOr<v1::ModelConfig> c = ModelByName("hf:" + path);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->name(), "hf:" + path);
    EXPECT_EQ(c->vocab_size(), 97u);
  }
  absl::StatusOr<v1::ModelConfig> missing = ModelByName("hf:" + (dir / "nowhere").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr((dir / "nowhere").string()));
}

TEST(HfConfigTest, DifferencesNameEachField) {
  v1::ModelConfig a = *ModelByName("tiny");
  v1::ModelConfig b = a;
  b.set_name("other");
  b.set_max_position_embeddings(7);
  EXPECT_EQ(ModelConfigDifferences(a, b), "");
  b.set_hidden_size(128);
  b.set_tie_word_embeddings(false);
  EXPECT_EQ(ModelConfigDifferences(a, b),
            "hidden_size 64 vs 128, tie_word_embeddings true vs false");
}

}  // namespace
}  // namespace ablate
