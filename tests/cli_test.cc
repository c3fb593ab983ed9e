// The `ablate` binary as a user meets it: for each kind of mistake, the exit status and the
// single stderr line that names the problem and where it is; then each command against a real
// coordinator.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "ablate/v1/plan.pb.h"
#include "ablate/v1/results.pb.h"
#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The CLI processes the test starts send the user token.
    setenv("ABLATE_TOKEN", test::kUserToken, 1);
    absl::StatusOr<std::string> bin_dir = test::BinDir();
    ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
    ablate_ = absl::StrCat(*bin_dir, "/ablate");
    absl::StatusOr<std::string> dir = test::MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    // Nothing listens here, so a command that got past its local checks fails to connect.
    absl::StatusOr<int> port = test::UnusedLoopbackPort();
    ASSERT_TRUE(port.ok()) << port.status();
    unreachable_ = absl::StrCat("127.0.0.1:", *port);
  }

  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << text;
    return path;
  }

  // Runs `ablate args...` with ABLATE_COORDINATOR set as given; an unreachable coordinator
  // must still end the command within a few seconds.
  Result Run(const std::vector<std::string>& args, const std::string& coordinator_env = "") {
    std::vector<std::string> argv = {ablate_};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<std::unique_ptr<test::Subprocess>> process =
        test::Subprocess::Start(argv, {{"ABLATE_COORDINATOR", coordinator_env}});
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return {};
    absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(15));
    EXPECT_TRUE(code.ok()) << code.status();
    return {code.ok() ? *code : -1, (*process)->Stdout(), (*process)->Stderr()};
  }

  std::string ablate_;
  std::string dir_;
  std::string unreachable_;
};

// Polls `done` every 50 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

// One line: the error, ended by a newline, and nothing else.
MATCHER(IsOneLine, "is exactly one newline-terminated line") {
  return !arg.empty() && arg.find('\n') == arg.size() - 1;
}

constexpr char kValidSweep[] = R"(name: cli-test
grid:
  seed: [1, 2]
fixed:
  steps: 10
)";

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
  EXPECT_EQ(r.err,
            "note: cell attention=nsa: the window of 512 holds every key of a 256-token context: "
            "NSA computes dense attention there, and more\n");
  const Result sparse =
      Run({"--coordinator", unreachable_, "validate", "examples/nsa-vs-dense.yaml"});
  EXPECT_EQ(sparse.exit_code, 0) << sparse.err;
  EXPECT_EQ(sparse.err, "");
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

TEST_F(CliTest, HelpGoesToStdoutAndSucceeds) {
  const Result r = Run({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("submit"));
  EXPECT_THAT(r.out, HasSubstr("--coordinator"));
  // Tuning is documented where it is met: what `samples` draws, what a failed tuning shows.
  EXPECT_THAT(Run({"plan", "--help"}).out, HasSubstr("with `samples: N`, N points drawn"));
  EXPECT_THAT(Run({"results", "--help"}).out, HasSubstr("\"failed: N of M trials\""));
}

// The commands that talk to a coordinator, against the real one. No worker joins, so jobs stay
// pending until the test cancels them.
class CliCoordinatorTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<test::TestCoordinator>> coordinator =
        test::TestCoordinator::Start(*test::BinDir(), dir_);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  void TearDown() override {
    coordinator_.reset();
    CliTest::TearDown();
  }

  Result Ablate(std::vector<std::string> args) {
    args.insert(args.begin(), {"--coordinator", coordinator_->grpc_address()});
    return Run(args);
  }

  // Submits the two-job sweep and returns its id.
  std::string Submit() {
    const Result r = Ablate({"submit", WriteFile("ok.yaml", kValidSweep)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch match;
    EXPECT_TRUE(std::regex_search(
        r.out, match, std::regex(R"((?:^|\n)submitted sweep (\S+): 2 jobs; 0 cells excluded)")))
        << r.out;
    // The plan comes first, then a warning: no worker joins these tests.
    EXPECT_THAT(r.out, ::testing::StartsWith("sweep cli-test-"));
    EXPECT_THAT(r.out, HasSubstr("\nfits no known worker: no worker has registered with the "
                                 "coordinator yet"));
    return match.size() > 1 ? match[1].str() : "";
  }

  std::unique_ptr<test::TestCoordinator> coordinator_;
};

TEST_F(CliCoordinatorTest, SubmitTwiceSaysItWasAlreadySubmitted) {
  const std::string id = Submit();
  const Result again = Ablate({"submit", WriteFile("ok.yaml", kValidSweep)});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out,
              ::testing::EndsWith(absl::StrCat("\nsweep ", id, " was already submitted\n")));
}

TEST_F(CliCoordinatorTest, ListAndStatusShowTheSweep) {
  const std::string id = Submit();
  const Result ls = Ablate({"ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_THAT(ls.out, ContainsRegex("^SWEEP +NAME +STATE +DONE +CREATED\n"));
  EXPECT_THAT(ls.out, ContainsRegex(absl::StrCat(id, " +cli-test +ACTIVE +0/2 ")));

  const Result status = Ablate({"status", id});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, ContainsRegex("^JOB +seed +STATE +ATTEMPTS +STEP +LOSS +EVAL LOSS"));
  EXPECT_THAT(status.out, ContainsRegex(absl::StrCat(id, "-[0-9a-f]+ +1 +PENDING ")));
  EXPECT_THAT(status.out, ContainsRegex(absl::StrCat(id, "-[0-9a-f]+ +2 +PENDING ")));
  EXPECT_THAT(status.out, ::testing::EndsWith("\n2 jobs: 2 pending\n"));
}

TEST_F(CliCoordinatorTest, StatusJsonIsOneSnapshot) {
  const std::string id = Submit();
  const Result r = Ablate({"status", id, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  v1::SweepSnapshot snapshot;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &snapshot).ok()) << r.out;
  EXPECT_EQ(snapshot.sweep().id(), id);
  ASSERT_EQ(snapshot.jobs_size(), 2);
  EXPECT_EQ(snapshot.jobs(0).state(), v1::JOB_STATE_PENDING);
}

// A sweep's name stands for its id while one sweep has it; results and compare read it.
TEST_F(CliCoordinatorTest, SweepsAreNamedWhereTheNameIsUnique) {
  const std::string id = Submit();
  const Result status = Ablate({"status", "cli-test"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat(id, "-")));

  // No job has run: every cell is known, none has a value yet.
  const Result results = Ablate({"results", "cli-test"});
  EXPECT_EQ(results.exit_code, 0) << results.err;
  EXPECT_THAT(results.out, ContainsRegex("^seed +RUNS +eval/loss +95% CI +STD +VS BASELINE"));
  EXPECT_THAT(results.out, ContainsRegex("\n1 +0/1 +- +- +- +- +-\n2 +0/1 "));
  const Result csv = Ablate({"results", "cli-test", "--csv"});
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out,
            "seed,jobs,succeeded,n,mean,std,ci95_low,ci95_high,diff,diff_ci95_low,"
            "diff_ci95_high\n1,1,0,0,,,,,,,\n2,1,0,0,,,,,,,\n");
  const Result json = Ablate({"results", id, "--json", "--metric", "train/loss"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  v1::SweepResults parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  EXPECT_EQ(parsed.sweep_id(), id);
  EXPECT_EQ(parsed.cells_size(), 2);
  const Result same = Ablate({"compare", "cli-test", "--rows", "seed", "--cols", "seed"});
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_EQ(same.err, "ablate: --cols: the same dimension as --rows\n");
  const Result metric = Ablate({"results", "cli-test", "--metric", "eval/acc"});
  EXPECT_EQ(metric.exit_code, 2);
  EXPECT_THAT(metric.err, HasSubstr("--metric: unknown metric 'eval/acc'"));

  // A second sweep of the same name: the name no longer says which.
  const Result second =
      Ablate({"submit", WriteFile("twin.yaml", absl::StrCat(kValidSweep, "  seed: 3\n"))});
  ASSERT_EQ(second.exit_code, 2) << second.out;  // seed is a grid dimension: refused
  const std::string twin = R"(name: cli-test
grid:
  seed: [1, 2]
fixed:
  steps: 20
)";
  ASSERT_EQ(Ablate({"submit", WriteFile("twin.yaml", twin)}).exit_code, 0);
  const Result ambiguous = Ablate({"status", "cli-test"});
  EXPECT_EQ(ambiguous.exit_code, 1);
  EXPECT_THAT(ambiguous.err, IsOneLine());
  EXPECT_THAT(ambiguous.err, HasSubstr("2 sweeps are named 'cli-test'; give one of their ids: "));
  EXPECT_THAT(ambiguous.err, HasSubstr(id));
  // Cancel and retry resolve names as the coordinator does: not an ambiguous one.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"cancel", "cli-test"},
        std::vector<std::string>{"retry", "cli-test", "--cancelled"}}) {
    const Result refused = Ablate(args);
    EXPECT_EQ(refused.exit_code, 1) << args[0];
    EXPECT_THAT(refused.err, HasSubstr("2 sweeps are named 'cli-test'")) << args[0];
  }
  EXPECT_EQ(Ablate({"cancel", id}).exit_code, 0);
  const Result retried = Ablate({"retry", id, "--cancelled"});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_THAT(retried.out, ::testing::StartsWith(absl::StrCat("requeued 2 jobs of ", id, ":\n")));
}

TEST_F(CliCoordinatorTest, UnknownSweepIsAServerError) {
  const Result r = Ablate({"status", "no-such-sweep"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr("ablate: GetSweep: "));
  EXPECT_THAT(r.err, HasSubstr("no-such-sweep"));
}

TEST_F(CliCoordinatorTest, CancelNamesJobsAndWatchEndsWithFailure) {
  const std::string id = Submit();
  const Result cancel = Ablate({"cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_THAT(cancel.out, ::testing::StartsWith("cancelled 2 jobs:\n"));
  const Result again = Ablate({"cancel", id});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("nothing to cancel"));

  // Every job has ended: watch prints the final table at once and fails, since none succeeded.
  const Result watch = Ablate({"watch", id});
  EXPECT_EQ(watch.exit_code, 1) << watch.err;
  EXPECT_EQ(watch.out.find('\x1b'), std::string::npos) << "escape codes on a pipe";
  EXPECT_THAT(watch.out, HasSubstr("2 jobs: 2 cancelled\n"));
}

TEST_F(CliCoordinatorTest, WatchReconnectsAfterTheCoordinatorRestarts) {
  const std::string id = Submit();
  const int grpc_port = coordinator_->grpc_port();
  absl::StatusOr<std::unique_ptr<test::Subprocess>> watch = test::Subprocess::Start(
      {ablate_, "--coordinator", coordinator_->grpc_address(), "watch", id});
  ASSERT_TRUE(watch.ok()) << watch.status();
  // The watch has begun once it printed the sweep's first line.
  ASSERT_TRUE(Eventually([&] { return (*watch)->Stdout().find(id) != std::string::npos; },
                         absl::Seconds(15)))
      << (*watch)->Stderr();

  coordinator_->process().Signal(SIGKILL);
  ASSERT_TRUE(coordinator_->Stop().ok());
  absl::StatusOr<std::unique_ptr<test::TestCoordinator>> restarted =
      test::TestCoordinator::Start(*test::BinDir(), dir_, {}, grpc_port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  coordinator_ = *std::move(restarted);
  ASSERT_TRUE(
      Eventually([&] { return (*watch)->Stderr().find("reconnected") != std::string::npos; },
                 absl::Seconds(20)))
      << (*watch)->Stderr();

  // What changes on the new coordinator reaches the old watch, which then ends.
  EXPECT_EQ(Ablate({"cancel", id}).exit_code, 0);
  absl::StatusOr<int> code = (*watch)->WaitFor(absl::Seconds(15));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1) << (*watch)->Stderr();
  EXPECT_THAT((*watch)->Stderr(), HasSubstr("reconnecting"));
  EXPECT_THAT((*watch)->Stdout(), HasSubstr("2 jobs: 2 cancelled\n"));
}

// A tuned sweep's job count is one figure, in the same words, from validate, plan, plan --json
// and submit; status then shows each trial's seed (its cell's first).
TEST_F(CliCoordinatorTest, ATunedSweepsJobCountAgreesEverywhere) {
  const std::string file = "examples/optimizer-tuning.yaml";
  const std::string count =
      "48 jobs at most: 9 final (3 cells x 3 seeds) + 39 trials (rung 0: 30 x 25 steps, rung 1: "
      "9 x 75 steps); 0 cells excluded by constraints; rung 0's 30 trials run first\n";
  const Result validate = Ablate({"validate", file});
  EXPECT_THAT(validate.out, ::testing::EndsWith(absl::StrCat(": ", count))) << validate.err;
  EXPECT_THAT(Ablate({"plan", file}).out, HasSubstr(absl::StrCat("(baseline): ", count)));
  v1::SweepPlan plan;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(Ablate({"plan", "--json", file}).out, &plan)
          .ok());
  EXPECT_EQ(plan.job_count().total(), 48u);
  EXPECT_EQ(plan.job_count().submitted(), 30u);
  const Result submitted = Ablate({"submit", file});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::smatch match;
  ASSERT_TRUE(
      std::regex_search(submitted.out, match, std::regex(R"(\nsubmitted sweep (\S+): (.*\n))")))
      << submitted.out;
  EXPECT_EQ(match[2].str(), count);
  const Result status = Ablate({"status", match[1].str()});
  EXPECT_THAT(status.out, ContainsRegex("^JOB +optimizer +seed +tuning +STATE"));
  EXPECT_THAT(status.out, ContainsRegex("-[0-9a-f]+ +muon +1 +rung 0: lr 0.005 wd 0 +PENDING"));
}

TEST_F(CliCoordinatorTest, StatusAllAndJsonPageThroughEveryJob) {
  // 120 jobs: more than kTableJobs, so plain `status` summarises; pages of the API are 1000,
  // so this checks the paging path end to end with one page, and the forms agree.
  const std::string path = WriteFile("big.yaml", R"(name: cli-big
grid:
  seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
  learning_rate: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
fixed:
  steps: 10
)");
  const Result submitted = Ablate({"submit", path});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(submitted.out, match, std::regex(R"(sweep (\S+): 120 jobs)")))
      << submitted.out;
  const std::string id = match[1].str();

  const Result summary = Ablate({"status", id});
  EXPECT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_THAT(summary.out, ::testing::StartsWith(
                               absl::StrCat("sweep ", id, " ACTIVE: 120 jobs: 120 pending\n")));
  EXPECT_THAT(summary.out, HasSubstr("--all"));
  EXPECT_THAT(summary.out, ::testing::Not(ContainsRegex("PENDING +0 +0")));  // no job rows

  const Result all = Ablate({"status", id, "--all"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(std::count(all.out.begin(), all.out.end(), '\n'), 1 + 120 + 1);
  EXPECT_THAT(all.out, ::testing::EndsWith("\n120 jobs: 120 pending\n"));

  const Result json = Ablate({"status", id, "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  v1::SweepSnapshot snapshot;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &snapshot).ok());
  EXPECT_EQ(snapshot.jobs_size(), 120);
}

}  // namespace
}  // namespace ablate
