// The `ablate` binary as a user meets it: for each kind of mistake, the exit status and the
// single stderr line that names the problem and where it is, without a coordinator
// (cli_coordinator_test.cc runs each command against a real one).
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/cli_fixture.h"

namespace ablate::cli_test {
namespace {

TEST_F(CliTest, BadYamlNamesFileLineAndColumn) {
  const std::string path = WriteFile("bad.yaml", "name: x\ngrid:\n  seed: [1, 2\nfixed: {}\n");
  const Result r = Run({"--coordinator", unreachable_, "submit", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, ContainsRegex("bad\\.yaml:[0-9]+:[0-9]+: "));
  EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, UnknownOptimizerIsNamedWithItsLine) {
  const std::string path = WriteFile("optim.yaml", "name: x\ngrid:\n  optimizer: [adamw, adamx]\n");
  const Result r = Run({"--coordinator", unreachable_, "submit", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, ContainsRegex("optim\\.yaml:3:[0-9]+: "));
  EXPECT_THAT(r.err, HasSubstr("adamx"));
}

// `validate` needs no coordinator, and checks every cell as a submit would.
TEST_F(CliTest, ValidateChecksEveryCellWithoutACoordinator) {
  const Result ok =
      Run({"--coordinator", unreachable_, "validate", WriteFile("ok.yaml", kValidSweep)});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr(": sweep cli-test-"));
  EXPECT_THAT(ok.out, HasSubstr(": 2 jobs; 0 cells excluded by constraints\n"));

  const std::string typo = WriteFile(
      "typo.yaml", "name: x\ngrid:\n  seed: [1, 2]\nfixed:\n  optimizer_args: {beta_2: 0.9}\n");
  const Result r = Run({"--coordinator", unreachable_, "validate", typo});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr("optimizer_args.beta_2: adamw has no argument beta_2"));
  EXPECT_THAT(r.err, HasSubstr("did you mean beta2?"));
  EXPECT_EQ(r.out, "");
}

// An NSA cell whose window holds its whole context is valid, and noted on stderr: it compares
// no sparse attention. The output is what it was.
TEST_F(CliTest, ValidateNotesNsaCellsThatReadEveryKey) {
  const std::string path = WriteFile(
      "dense-nsa.yaml",
      "name: x\ngrid:\n  attention: [dense, nsa]\nfixed:\n  context_length: 256\n  steps: 10\n");
  const Result r = Run({"--coordinator", unreachable_, "validate", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": 2 jobs; 0 cells excluded by constraints\n"));
  // The window is not in the file: the note goes to the file, with what the default is.
  EXPECT_EQ(r.err, "note: " + path +
                       ": cell attention=nsa: attention_args.window: 512 tokens hold every key of "
                       "a 256-token context: NSA computes dense attention there, and more\n");
  const Result sparse =
      Run({"--coordinator", unreachable_, "validate", "examples/nsa-vs-dense.yaml"});
  EXPECT_EQ(sparse.exit_code, 0) << sparse.err;
  EXPECT_EQ(sparse.err, "");
}

// An override no cell meets (a value mistyped, or its cells excluded) is legal, and noted at its
// conditions by each command that checks the file.
TEST_F(CliTest, ValidateAndPlanNoteAnOverrideThatChangesNothing) {
  const std::string path = WriteFile("idle.yaml", R"(name: x
grid:
  context_length: [256, 512]
fixed:
  steps: 10
overrides:
  - when: {context_length: 1K}
    set: {learning_rate: 1e-3}
)");
  for (const char* command : {"validate", "plan"}) {
    const Result r = Run({"--coordinator", unreachable_, command, path});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    EXPECT_EQ(r.err, absl::StrCat("note: ", path,
                                  ":7:5: overrides[0].when: no cell that the grid and its "
                                  "constraints keep meets it, so the override changes nothing\n"))
        << command;
  }
}

// A misspelt command is named with the nearest one, past the options before it; --version
// prints the version and exits 0.
TEST_F(CliTest, AMisspeltCommandIsNamedWithTheNearestOne) {
  const Result misspelt = Run({"--coordinator", unreachable_, "sumbit", "x.yaml"});
  EXPECT_EQ(misspelt.exit_code, 2);
  EXPECT_EQ(misspelt.err,
            "ablate: unknown command 'sumbit' (did you mean submit?) (see ablate --help)\n");
  const Result none = Run({"--coordinator", unreachable_});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("A subcommand is required"));
  const Result scheme = Run({"--coordinator", "http://127.0.0.1:7070", "ls"});
  EXPECT_EQ(scheme.exit_code, 2);
  EXPECT_THAT(scheme.err, HasSubstr("expected HOST:PORT without a scheme"));
  const Result version = Run({"--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_THAT(version.out, ContainsRegex("^[0-9]+\\.[0-9]+\\.[0-9]+\n$"));
}

// The README's example of `ablate plan` is what the command prints: its job ids are the ones a
// reader's own run shows, which a change of job identity would otherwise leave stale.
TEST_F(CliTest, TheReadmesPlanExampleIsWhatPlanPrints) {
  std::ifstream readme("README.md");
  ASSERT_TRUE(readme.good());
  const std::string prompt = "$ ablate plan examples/shapes/one-factor.yaml";
  std::string line, shown;
  bool in_example = false;
  while (std::getline(readme, line)) {
    if (in_example && absl::StartsWith(line, "$ ")) break;
    if (in_example) absl::StrAppend(&shown, line, "\n");
    if (line == prompt) in_example = true;
  }
  ASSERT_FALSE(shown.empty()) << "README.md has no line '" << prompt << "'";
  const Result plan =
      Run({"--coordinator", unreachable_, "plan", "examples/shapes/one-factor.yaml"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(plan.out, shown);
}

// `plan` needs no coordinator: the example's counts, derived batches and estimates, as text
// and as JSON that parses into the SweepPlan message; a bad file is one line naming the field.
TEST_F(CliTest, PlanShowsCountsDerivedSettingsAndCostWithoutACoordinator) {
  const Result text = Run({"--coordinator", unreachable_, "plan", "examples/research-nsa.yaml"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, ContainsRegex("^sweep nsa-research-[0-9a-f]+ \\(grid\\): 54 jobs; 18 "
                                      "cells excluded by constraints\n"));
  EXPECT_THAT(text.out, HasSubstr("  context_length  32K 18  128K 18  512K 9  1M 9\n"));
  EXPECT_THAT(text.out, HasSubstr("model=qwen3-8b attention=dense optimizer=soap "
                                  "context_length=1M: constraints[0]: dense attention stops at "
                                  "128K\n"));
  // qwen3-0.6b, dense, adamw, 32K: 256 sequences in 32 accumulation steps, 116.5 GPU-hours;
  // no checkpoints offloaded ("-" under HOST, which the 1M cells of qwen3-0.6b fill).
  EXPECT_THAT(text.out, ContainsRegex("qwen3-0.6b +dense +adamw +32K +596M +16.8B +2.49e\\+20 "
                                      "+[0-9.]+ GiB +- +8 +256 +32 +0.0003 +116.5\n"));
  EXPECT_THAT(text.out, HasSubstr("at least 3495.3 GPU-hours; 36 jobs unknown"));

  const Result json =
      Run({"--coordinator", unreachable_, "plan", "--json", "examples/optimizer-study.yaml"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  v1::SweepPlan plan;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &plan).ok()) << json.out;
  EXPECT_EQ(plan.cells_size(), 9);
  EXPECT_EQ(plan.repeats(), 3u);
  EXPECT_EQ(plan.shape(), "baseline");

  const std::string bad = WriteFile("bad.yaml", R"(name: b
grid:
  optimizer: [adamw, muon]
constraints:
  - when: {attention: nsa}
    require: {optimizer: muon}
)");
  const Result r = Run({"--coordinator", unreachable_, "plan", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr("bad.yaml:5:12: constraints[0].when.attention: not a grid "
                               "dimension (grid: optimizer)"));
}

TEST_F(CliTest, MissingFileIsAUsageError) {
  const Result r = Run({"--coordinator", unreachable_, "submit", dir_ + "/absent.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr("absent.yaml"));
}

TEST_F(CliTest, UnreachableCoordinatorExits3NamingTheAddress) {
  const std::string path = WriteFile("ok.yaml", kValidSweep);
  const absl::Time start = absl::Now();
  const Result r = Run({"--coordinator", unreachable_, "submit", path});
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("cannot reach the coordinator at ", unreachable_,
                                            " (connection refused)")));
  EXPECT_THAT(r.err, HasSubstr("ABLATE_COORDINATOR"));
}

TEST_F(CliTest, CoordinatorComesFromTheEnvironment) {
  const Result r = Run({"ls"}, unreachable_);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr(unreachable_));
}

TEST_F(CliTest, EveryRemoteCommandReportsAnUnreachableCoordinator) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"ls"}, {"status", "s"}, {"status", "s", "--json"}, {"watch", "s"}, {"cancel", "s"}}) {
    std::vector<std::string> full = {"--coordinator", unreachable_};
    full.insert(full.end(), args.begin(), args.end());
    const Result r = Run(full);
    EXPECT_EQ(r.exit_code, 3) << args[0];
    EXPECT_THAT(r.err, IsOneLine()) << args[0];
  }
}

TEST_F(CliTest, UsageErrorsExit2WithOneLine) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {}, {"status"}, {"frobnicate"}, {"--coordinator", "no-port", "ls"}}) {
    const Result r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << (args.empty() ? "(no args)" : args[0]);
    EXPECT_THAT(r.err, IsOneLine()) << r.err;
  }
}

// Without the Python package's ablate-export on PATH, export says how to install it with a
// command that works from any folder: the package by its absolute path, with the format's extra.
TEST_F(CliTest, ExportWithoutThePackageSaysHowToInstallIt) {
  absl::StatusOr<std::unique_ptr<test::Subprocess>> process =
      test::Subprocess::Start({ablate_, "--coordinator", unreachable_, "export", "s", "--format",
                               "parquet", "--out", dir_ + "/out"},
                              {{"PATH", dir_}});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(15));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2);
  EXPECT_THAT((*process)->Stderr(), IsOneLine());
  EXPECT_THAT((*process)->Stderr(),
              HasSubstr(absl::StrCat("it comes with the Python package: pip install '",
                                     ABLATE_SOURCE_DIR, "/python[parquet]'\n")));
}

TEST_F(CliTest, HelpGoesToStdoutAndSucceeds) {
  const Result r = Run({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("submit"));
  EXPECT_THAT(r.out, HasSubstr("--coordinator"));
  // Tuning is documented where it is met: what `samples` draws, what a failed tuning shows.
  EXPECT_THAT(Run({"plan", "--help"}).out, HasSubstr("with `samples: N`, N points drawn"));
  EXPECT_THAT(Run({"results", "--help"}).out, HasSubstr("\"failed: N of M trials\""));
  // Where an attempt's log lives, and how long the coordinator keeps its tail.
  const std::string log = Run({"log", "--help"}).out;
  EXPECT_THAT(log, HasSubstr("of each of its 8 newest ended attempts in its database"));
  EXPECT_THAT(log, HasSubstr("JOB/attempt-ID/trainer.log, ID being the attempt's id"));
  EXPECT_THAT(Run({"status", "--help"}).out, HasSubstr("\"(+K not counted)\""));
  // Which token is sent when several are given.
  EXPECT_THAT(r.out, HasSubstr("--token-file, else $ABLATE_TOKEN_FILE, else $ABLATE_TOKEN"));
}

// The mistakes of a file that YAML cannot read, or that holds nothing, are said in their words.
TEST_F(CliTest, ATabOrAnEmptyFileIsNamed) {
  const Result tab = Run({"--coordinator", unreachable_, "validate",
                          WriteFile("tab.yaml", "name: x\ngrid:\n\tseed: [1, 2]\n")});
  EXPECT_EQ(tab.exit_code, 2);
  EXPECT_THAT(tab.err, IsOneLine());
  EXPECT_THAT(tab.err, HasSubstr("tab.yaml:3:6: invalid YAML: illegal map value; line 3 is "
                                 "indented with a tab, which YAML does not allow"));
  const Result empty = Run({"--coordinator", unreachable_, "validate", WriteFile("e.yaml", "")});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.err, HasSubstr("e.yaml:1:1: sweep: the file is empty"));
}

}  // namespace
}  // namespace ablate::cli_test
