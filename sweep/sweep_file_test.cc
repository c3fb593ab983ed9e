#include "sweep/sweep_file.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

// The one line a bad file gives, or "" when it parses.
std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "s.yaml");
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

TEST(SweepFileTest, ParsesEverySection) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(R"(
name: tiny-grid
description: free text
grid:
  model: [tiny, mini]
  attention: [dense, nsa]
  context_length: [64, 1M]
constraints:
  - when: {context_length: [1M]}
    require: {attention: nsa}
    reason: long contexts need sparse attention
fixed:
  steps: 150
  optimizer_args: {beta2: 0.95}
overrides:
  - when: {model: mini}
    set: {learning_rate: 2e-3}
max_attempts: 5
checkpoint_root: runs/ckpt
)",
                                                      "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "tiny-grid");
  EXPECT_EQ(spec->description(), "free text");
  ASSERT_EQ(spec->grid_size(), 3);
  EXPECT_EQ(spec->grid(0).name(), "model");  // file order, not sorted
  EXPECT_EQ(spec->grid(1).name(), "attention");
  EXPECT_THAT(spec->grid(2).values(), ElementsAre("64", "1M"));  // the user's text is kept
  ASSERT_EQ(spec->constraints_size(), 1);
  EXPECT_EQ(spec->constraints(0).when(0).dimension(), "context_length");
  EXPECT_THAT(spec->constraints(0).require(0).values(), ElementsAre("nsa"));
  EXPECT_EQ(spec->constraints(0).reason(), "long contexts need sparse attention");
  EXPECT_THAT(spec->fixed(),
              UnorderedElementsAre(Pair("steps", "150"), Pair("optimizer_args.beta2", "0.95")));
  ASSERT_EQ(spec->overrides_size(), 1);
  EXPECT_THAT(spec->overrides(0).set(), UnorderedElementsAre(Pair("learning_rate", "2e-3")));
  EXPECT_EQ(spec->max_attempts(), 5u);
  EXPECT_EQ(spec->checkpoint_root(), "runs/ckpt");
}

TEST(SweepFileTest, LoadsTheExamples) {
  for (const char* path : {"examples/tiny-grid.yaml", "examples/qwen3-ablation.yaml",
                           "examples/research-nsa.yaml", "examples/research-64k.yaml",
                           "examples/optimizer-study.yaml", "examples/shapes/one-factor.yaml",
                           "examples/shapes/cells.yaml", "examples/shapes/sample.yaml"}) {
    absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile(path);
    EXPECT_TRUE(spec.ok()) << spec.status();
  }
}

TEST(SweepFileTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadSweepFile("no/such/sweep.yaml").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadSweepFile("no/such/sweep.yaml").status().message(),
            "no/such/sweep.yaml: cannot read the sweep file: No such file or directory");
  EXPECT_EQ(LoadSweepFile("sweep").status().message(),
            "sweep: is a directory, not a sweep file (a .yaml file)");
}

TEST(SweepFileTest, BadYamlNamesItsPosition) {
  const std::string error = ErrorOf("name: t\ngrid:\n  model: [tiny, mini\n");
  EXPECT_THAT(error, HasSubstr("s.yaml:4:1: invalid YAML: "));
  EXPECT_THAT(error, Not(HasSubstr("\n")));
}

// YAML takes no tab in indentation, and yaml-cpp's complaint ("illegal map value") does not
// say that a tab is what it met.
TEST(SweepFileTest, ATabInTheIndentationIsNamed) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n\tmodel: [tiny]\n"),
            "s.yaml:3:7: invalid YAML: illegal map value; line 3 is indented with a tab, which "
            "YAML does not allow (indent with spaces)");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\n \tattention: [dense]\n"),
            "s.yaml:4:3: invalid YAML: end of map not found; line 4 is indented with a tab, "
            "which YAML does not allow (indent with spaces)");
  // A tab after the indentation is no indentation: the complaint is yaml-cpp's alone.
  EXPECT_THAT(ErrorOf("name: t\ngrid:\n  model: [tiny,\tmini\n"), Not(HasSubstr("tab")));
}

// An empty file is said to be empty, not only "not a map".
TEST(SweepFileTest, AnEmptyFileIsSaidToBe) {
  for (const std::string text : {"", "\n\n", "# a sweep, one day\n  # more\n"}) {
    EXPECT_THAT(ErrorOf(text),
                StartsWith("s.yaml:1:1: sweep: the file is empty (no settings, at most "
                           "comments); expected a map of settings (name, description, grid, "))
        << text;
  }
  EXPECT_THAT(ErrorOf("[name, t]\n"), StartsWith("s.yaml:1:1: sweep: expected a map of settings"));
}

TEST(SweepFileTest, UnknownTopLevelKey) {
  EXPECT_THAT(ErrorOf("name: t\ngrdi:\n  model: [tiny]\n"),
              HasSubstr("s.yaml:2:1: grdi: unknown key (did you mean grid?) (known: name, "));
}

TEST(SweepFileTest, UnknownSetting) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  optimzer: [adamw]\n"),
            "s.yaml:3:3: grid.optimzer: unknown setting (did you mean optimizer?)");
  // Other trainers' names, which no typo explains, point to ours.
  EXPECT_EQ(ErrorOf("name: t\ngrid: {seed: [1]}\nfixed:\n  eval_interval: 50\n"),
            "s.yaml:4:3: fixed.eval_interval: unknown setting (did you mean eval_every?)");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  seed: [1]\n  lr: [1e-3]\n"),
            "s.yaml:4:3: grid.lr: unknown setting (did you mean learning_rate?)");
}

// Regression: a value where the map belongs was "unknown setting", though the name exists.
TEST(SweepFileTest, AnArgumentMapGivenAValue) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nfixed:\n  attention_args: 16\n"),
            "s.yaml:5:3: fixed.attention_args: takes named settings, not a value "
            "(attention_args: {name: value})");
}

TEST(SweepFileTest, UnknownOptimizerListsTheKnownOnes) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\n  optimizer: [adamw, adamx]\n"),
            "s.yaml:4:22: grid.optimizer: unknown optimizer 'adamx' (known: adamw, adamw8bit, "
            "muon, soap, shampoo, soap4bit)");
}

TEST(SweepFileTest, HfModelIsReadWhenValidated) {
  const std::string dir = testing::TempDir() + "/sweep_hf_model";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"vocab_size": 300, "hidden_size": 48,
      "intermediate_size": 88, "num_hidden_layers": 2, "num_attention_heads": 10,
      "num_key_value_heads": 2, "head_dim": 8, "rope_theta": 500.0})";
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny, hf:" + dir + "]\n"), "");
  EXPECT_THAT(ErrorOf("name: t\ngrid:\n  model: [hf:" + dir + "/nowhere]\n"),
              HasSubstr("grid.model: " + dir + "/nowhere: cannot open"));
  EXPECT_THAT(ErrorOf("name: t\ngrid:\n  model: [hf:models/qwen3]\n"),
              HasSubstr("grid.model: hf:models/qwen3: give an absolute path (the CLI, the "
                        "coordinator and each trainer read it, each from its own working "
                        "directory)"));
}

TEST(SweepFileTest, BadNumber) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  context_length: [64, 12x]\n"),
            "s.yaml:3:24: grid.context_length: '12x' is not a whole number");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nfixed:\n  learning_rate: fast\n"),
            "s.yaml:5:18: fixed.learning_rate: 'fast' is not a number");
}

TEST(SweepFileTest, EmptyValueList) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: []\n"),
            "s.yaml:3:3: grid.model: needs at least one value");
}

TEST(SweepFileTest, RepeatedValueComparesParsedValues) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny, mini, tiny]\n"),
            "s.yaml:3:23: grid.model: 'tiny' is listed twice");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  context_length: [32K, 32768]\n"),
            "s.yaml:3:25: grid.context_length: '32768' repeats '32K'");
}

TEST(SweepFileTest, ConditionOnDimensionOutsideTheGrid) {
  EXPECT_EQ(ErrorOf("name: t\n"
                    "grid:\n"
                    "  model: [tiny]\n"
                    "  context_length: [64]\n"
                    "constraints:\n"
                    "  - when: {context_length: [64]}\n"
                    "    require: {attention: [nsa]}\n"),
            "s.yaml:7:15: constraints[0].require.attention: not a grid dimension (grid: model, "
            "context_length)");
}

// A repeats value of 0 is what leaving it out means; -1 is negative, not "not whole".
TEST(SweepFileTest, RepeatsOfZeroOrBelow) {
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nrepeats: 0\n"),
            "s.yaml:4:10: repeats: 0 is what leaving repeats out means (each cell once, with its "
            "configured seeds): leave it out, or give 1 or more (seeds 1 to N)");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nrepeats: -1\n"),
            "s.yaml:4:10: repeats: '-1' is negative");
}

TEST(SweepFileTest, OverrideProblems) {
  const std::string head = "name: t\ngrid:\n  model: [tiny, mini]\noverrides:\n";
  EXPECT_EQ(ErrorOf(head + "  - when: {model: mini}\n    set: {learnign_rate: 1e-3}\n"),
            "s.yaml:6:11: overrides[0].set.learnign_rate: unknown setting (did you mean "
            "learning_rate?)");
  EXPECT_EQ(ErrorOf(head + "  - when: {model: huge}\n    set: {steps: 10}\n"),
            "s.yaml:5:19: overrides[0].when.model: unknown model 'huge' (known: tiny, mini, small, "
            "qwen3-0.6b, qwen3-1.7b, qwen3-4b, qwen3-8b, qwen3-14b, qwen3-32b)");
  EXPECT_EQ(ErrorOf(head + "  - set: {steps: 10}\n"),
            "s.yaml:5:5: overrides[0].when: needs at least one condition");
  EXPECT_EQ(ErrorOf(head + "  - when: {model: mini}\n    sett: {steps: 10}\n"),
            "s.yaml:6:5: overrides[0].sett: unknown key (did you mean set?) (known: when, set)");
  EXPECT_EQ(ErrorOf(head + "  - when: {modle: mini}\n    set: {steps: 10}\n"),
            "s.yaml:5:12: overrides[0].when.modle: not a grid dimension (did you mean model?) "
            "(grid: model)");
  // Applied after the grid's value, it would run mini under tiny's label.
  EXPECT_EQ(ErrorOf(head + "  - when: {model: tiny}\n    set: {model: mini}\n"),
            "s.yaml:6:11: overrides[0].set.model: a grid dimension, which an override may not "
            "change (its cells would run what their labels do not say); drop cells with "
            "constraints, or list them with cells");
}

TEST(SweepFileTest, ShapeProblems) {
  EXPECT_EQ(ErrorOf("grid:\n  model: [tiny]\n"), "s.yaml:1:1: name: a sweep needs a name");
  EXPECT_EQ(ErrorOf("name: t\ngrid: [model]\n"),
            "s.yaml:2:7: grid: expected a map of dimension: [values]");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: tiny\n"),
            "s.yaml:3:10: grid.model: expected a list of values, as [a, b]");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\n  model: [mini]\n"),
            "s.yaml:4:3: grid.model: repeated key");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nfixed:\n  model: mini\n"),
            "s.yaml:5:3: fixed.model: also a grid dimension; set it in one place");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nmax_attempts: many\n"),
            "s.yaml:4:15: max_attempts: 'many' is not a positive whole number");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nmax_attempts: 0\n"),
            "s.yaml:4:15: max_attempts: '0' is not a positive whole number");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\npriority: high\n"),
            "s.yaml:4:11: priority: 'high' is not a whole number");
  EXPECT_EQ(ErrorOf("name: t\ngrid:\n  model: [tiny]\nfixed:\n  steps:\n"),
            "s.yaml:5:3: fixed.steps: missing value");
  EXPECT_EQ(ErrorOf("just text\n"),
            "s.yaml:1:1: sweep: expected a map of settings (name, description, "
            "grid, constraints, fixed, overrides, priority, max_attempts, checkpoint_root, "
            "baseline, cells, sample, repeats, derived, throughput, tuning)");
}

}  // namespace
}  // namespace ablate::sweep

namespace ablate::sweep {
namespace {

// The failure this fixes: a grid whose cross product is 10^7 cells was only refused after it
// was expanded; now its size is computed from the dimensions and refused with both numbers.
// The failure this fixes: each submit reported only the first mistake, so a real sweep file
// took four rounds to fix. Shape and content problems of one file come back together, one line
// each with its line and column, in file order.
TEST(SweepFileTest, EveryMistakeIsReportedInOneRun) {
  const std::string error = ErrorOf(R"(name: four-mistakes
grid:
  optimizer: [adamw, adamx]
  learning_rate: [1e-3, fast]
fixed:
  stpes: 100
max_attempts: many
)");
  EXPECT_EQ(error,
            "s.yaml:3:22: grid.optimizer: unknown optimizer 'adamx' (known: adamw, adamw8bit, "
            "muon, soap, shampoo, soap4bit)\n"
            "s.yaml:4:25: grid.learning_rate: 'fast' is not a number\n"
            "s.yaml:6:3: fixed.stpes: unknown setting (did you mean steps?)\n"
            "s.yaml:7:15: max_attempts: 'many' is not a positive whole number");
}

// A key whose reading failed is not reported again by the content rules ("a sweep needs a
// name" after "name: expected a single value").
TEST(SweepFileTest, AProblemIsNotRepeatedByTheRulesOnContent) {
  EXPECT_EQ(ErrorOf("name: [a, b]\ngrid:\n  model: [tiny]\n"),
            "s.yaml:1:7: name: expected a single value");
}

// A problem ExpandSweep finds in one cell is placed at the node that gave the value it names:
// the cell's grid value, the override whose conditions hold for it, else fixed.
TEST(SweepFileTest, ACellsProblemIsPlacedAtTheSettingThatGaveIt) {
  auto problem = [](const std::string& yaml) {
    absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
    EXPECT_FALSE(expanded.ok());
    return std::string(expanded.status().message());
  };
  EXPECT_EQ(problem("name: t\ngrid:\n  optimizer: [adamw]\n  optimizer_args.beta_2: [0.5, "
                    "0.999]\n"),
            "s.yaml:4:27: cell optimizer=adamw optimizer_args.beta_2=0.5: optimizer_args.beta_2: "
            "adamw has no argument beta_2 (did you mean beta2?) (so do cells optimizer=adamw "
            "optimizer_args.beta_2=0.999)");
  EXPECT_EQ(problem("name: t\ngrid:\n  optimizer: [adamw]\nfixed:\n  optimizer_args: {beta2: "
                    "1.0}\n"),
            "s.yaml:5:27: cell optimizer=adamw: optimizer_args.beta2: 1 is outside [0, 1) for "
            "adamw");
  // A default the file does not set is said to be one.
  EXPECT_EQ(problem("name: t\ngrid:\n  optimizer: [adamw]\nfixed:\n  steps: 5\n"),
            "s.yaml: cell optimizer=adamw: warmup_steps: 10 is longer than the run (5 steps) "
            "(warmup_steps is not set in the file: 10 is its default)");
  // Two cells' problems, each at the setting that gave it: adamw's at the override that holds
  // for it (not at the fixed beta2 the override replaced), muon's at that fixed beta2.
  EXPECT_EQ(problem(R"(name: t
grid:
  optimizer: [adamw, muon]
fixed:
  optimizer_args: {beta2: 0.95}
overrides:
  - when: {optimizer: muon}
    set: {optimizer_args.momentum: 0.9}
  - when: {optimizer: adamw}
    set: {optimizer_args.beta2: 1.5}
)"),
            "s.yaml:10:33: cell optimizer=adamw: optimizer_args.beta2: 1.5 is outside [0, 1) for "
            "adamw\ns.yaml:5:27: cell optimizer=muon: optimizer_args.beta2: muon has no argument "
            "beta2 (it takes momentum, nesterov, ns_steps, ns_a, ns_b, ns_c, ns_eps, "
            "match_rms_adamw, adam_lr_ratio, adam_beta1, adam_beta2, adam_eps)");
  // A problem with no node of its own in the file names the file alone.
  EXPECT_EQ(problem("name: t\ngrid:\n  optimizer: [adamw]\nconstraints:\n  - when: {optimizer: "
                    "adamw}\n    require: {optimizer: muon}\n"),
            "s.yaml: constraints leave no cell of the grid to run");
}

// Every bad key of an argument map is reported, each at its own key: a file is mended in one
// round.
TEST(SweepFileTest, EveryBadArgumentIsPlacedAtItsKey) {
  const absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(R"(name: t
grid:
  attention: [nsa]
fixed:
  attention_args: {windw: 64, blok_size: 16}
  optimizer_args: {beta_2: 0.9, eps: -1}
)",
                                                                     "s.yaml");
  ASSERT_FALSE(expanded.ok());
  EXPECT_EQ(std::string(expanded.status().message()),
            "s.yaml:6:28: cell attention=nsa: optimizer_args.beta_2: adamw has no argument beta_2 "
            "(did you mean beta2?)\n"
            "s.yaml:6:38: cell attention=nsa: optimizer_args.eps: -1 is outside [0, inf) for "
            "adamw\n"
            "s.yaml:5:42: cell attention=nsa: attention_args.blok_size: nsa has no argument "
            "blok_size (did you mean block_size?)\n"
            "s.yaml:5:27: cell attention=nsa: attention_args.windw: nsa has no argument windw "
            "(did you mean window?)");
}

// Every derived setting's problem is reported, as fixed's are: a file is mended in one round.
TEST(SweepFileTest, EachDerivedSettingsProblemIsReported) {
  const std::string error = ErrorOf(R"(name: t
grid: {optimizer: [adamw]}
derived:
  lr: {adamw: 1e-3}
  keep_checkpoints: {adamw: 0}
)");
  EXPECT_THAT(error, HasSubstr("s.yaml:4:3: derived.lr: unknown setting (did you mean "
                               "learning_rate?)"));
  EXPECT_THAT(error, HasSubstr("derived.keep_checkpoints.adamw: 0 would mean the default, 2"));
}

// A cell's derived problems come with its others: a missing value for one setting does not
// hide what validation finds.
TEST(SweepFileTest, ACellsDerivedProblemsComeWithItsOthers) {
  const absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(R"(name: t
grid: {optimizer: [adamw, muon]}
derived:
  weight_decay: {adamw: 0.1}
  learning_rate: {adamw: 3e-3, muon: 2e-2}
  optimizer_args.beta2: {adamw: 0.99, muon: 0.9}
)",
                                                                     "s.yaml");
  ASSERT_FALSE(expanded.ok());
  const std::string error(expanded.status().message());
  EXPECT_THAT(error, HasSubstr("s.yaml:4:3: cell optimizer=muon: derived.weight_decay: no value "
                               "for optimizer muon"));
  EXPECT_THAT(error, HasSubstr("cell optimizer=muon: optimizer_args.beta2: muon has no argument"));
}

TEST(SweepFileTest, ASettingWrittenAtItsDefaultIsTheSameJobAsOneLeftOut) {
  const std::string plain = "name: t\ngrid:\n  seed: [1]\nfixed:\n  batch_size: 8\n";
  absl::StatusOr<ExpandedSweepFile> left_out = ExpandSweepYaml(plain, "s.yaml");
  ASSERT_TRUE(left_out.ok()) << left_out.status();
  for (const char* setting : {"micro_batch_size: 8", "divergence_evals: 3", "grad_bucket_mb: 100",
                              "optimizer_sharding: auto", "cpu_ranks: 1", "decay_fraction: 0.2",
                              "loss_chunk_tokens: 4096", "keep_checkpoints: 2"}) {
    absl::StatusOr<ExpandedSweepFile> written =
        ExpandSweepYaml(absl::StrCat(plain, "  ", setting, "\n"), "s.yaml");
    ASSERT_TRUE(written.ok()) << setting << ": " << written.status();
    EXPECT_EQ(written->expansion.jobs[0].config_hash(), left_out->expansion.jobs[0].config_hash())
        << setting;
  }
  absl::StatusOr<ExpandedSweepFile> other =
      ExpandSweepYaml(absl::StrCat(plain, "  micro_batch_size: 4\n"), "s.yaml");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(other->expansion.jobs[0].config_hash(), left_out->expansion.jobs[0].config_hash());
}

// The same for arguments: one at its optimizer's or attention's declared default, or any
// attention argument of a dense cell, is the job left out; another value is another job.
TEST(SweepFileTest, AnArgumentAtItsDefaultOrUnreadIsTheSameJobAsOneLeftOut) {
  const auto hashes_of = [](absl::string_view fixed) {
    absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(
        absl::StrCat("name: t\ngrid:\n  attention: [dense, nsa]\nfixed:\n  batch_size: 8\n", fixed),
        "s.yaml");
    EXPECT_TRUE(expanded.ok()) << fixed << ": " << expanded.status();
    std::vector<std::string> hashes;
    if (expanded.ok()) {
      for (const v1::JobSpec& job : expanded->expansion.jobs) hashes.push_back(job.config_hash());
    }
    return hashes;
  };
  const std::vector<std::string> left_out = hashes_of("");
  ASSERT_EQ(left_out.size(), 2u);
  for (const char* setting :
       {"  attention_args: {window: 512}\n",
        "  attention_args: {window: 512, paper_selection: false}\n",
        "  optimizer_args: {beta2: 0.95}\n", "  optimizer_args: {beta1: 0.9, eps: 1e-8}\n"}) {
    EXPECT_EQ(hashes_of(setting), left_out) << setting;
  }
  // A window of 64 is another NSA job; dense, which ignores it, is the same one.
  const std::vector<std::string> window = hashes_of("  attention_args: {window: 64}\n");
  ASSERT_EQ(window.size(), 2u);
  EXPECT_EQ(window[0], left_out[0]);
  EXPECT_NE(window[1], left_out[1]);
  EXPECT_NE(hashes_of("  optimizer_args: {beta2: 0.99}\n"), left_out);
}

TEST(SweepFileLimitsTest, AHugeGridIsRefusedWithItsCountAndTheLimit) {
  std::string yaml = "name: huge\ngrid:\n";
  for (const char* name : {"seed", "learning_rate", "warmup_steps", "batch_size", "steps",
                           "weight_decay", "grad_clip"}) {
    absl::StrAppend(&yaml, "  ", name, ": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n");
  }
  EXPECT_THAT(ErrorOf(yaml),
              HasSubstr("grid: the grid has 10000000 cells (the product of its dimensions' "
                        "sizes); the limit is 1000000"));
}

TEST(SweepFileLimitsTest, AFileOverTheSizeLimitIsRefusedUnread) {
  const std::string big(kMaxSweepFileBytes + 1, '#');
  EXPECT_THAT(ErrorOf(big), HasSubstr("the sweep file is 1048577 bytes; the limit is 1048576"));
  const std::string path = ::testing::TempDir() + "/sweep_file_test_big.yaml";
  std::ofstream(path) << big;
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile(path);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("the limit is 1048576"));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ablate::sweep
