// The `ablate` binary's commands against a real coordinator (tests/cli_fixture.h): submit (and
// a viewer's refused before its plan), ls, status, results, cancel, watch, and a tuned sweep's
// job count.
#include "tests/cli_fixture.h"

namespace ablate::cli_test {
namespace {

TEST_F(CliCoordinatorTest, SubmitTwiceSaysItWasAlreadySubmitted) {
  const std::string id = Submit();
  const Result again = Ablate({"submit", WriteFile("ok.yaml", kValidSweep)});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out,
              ::testing::EndsWith(absl::StrCat("\nsweep ", id, " was already submitted\n")));
  EXPECT_EQ(again.err, "");
}

// With a token file and $ABLATE_TOKEN both set, the file's token is the one sent (README,
// `ablate --help`): here the file's is a user's and the variable's one the coordinator refuses.
TEST_F(CliCoordinatorTest, ATokenFileWinsOverTheTokenVariable) {
  const std::string file = WriteFile("token", absl::StrCat(test::kUserToken, "\n"));
  const auto ls = [&](const std::map<std::string, std::string>& env) {
    absl::StatusOr<std::unique_ptr<test::Subprocess>> process = test::Subprocess::Start(
        {ablate_, "--coordinator", coordinator_->grpc_address(), "ls"}, env);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return -1;
    absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(15));
    return code.ok() ? *code : -1;
  };
  const std::string refused = "not-a-token-this-coordinator-knows";
  EXPECT_EQ(ls({{"ABLATE_TOKEN_FILE", file}, {"ABLATE_TOKEN", refused}}), 0);
  EXPECT_NE(ls({{"ABLATE_TOKEN_FILE", ""}, {"ABLATE_TOKEN", refused}}), 0);
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
  // No baseline in the file: no columns of differences from one.
  EXPECT_THAT(results.out, ContainsRegex("^seed +RUNS +eval/loss +95% CI +STD\n"));
  EXPECT_THAT(results.out, ContainsRegex("\n1 +0/1 +- +- +-\n2 +0/1 "));
  EXPECT_EQ(results.err,
            absl::StrCat("note: no cell of ", id,
                         " has a value of eval/loss yet (2 of 2 jobs still to run)\n"));
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
  const Result metric = Ablate({"results", "cli-test", "--metric", "accuracy"});
  EXPECT_EQ(metric.exit_code, 2);
  EXPECT_THAT(metric.err, HasSubstr("--metric: 'accuracy' is no series name (GROUP/NAME"));

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
  // An edited file of a stored sweep's name is refused before anything is queued...
  const Result twin_refused = Ablate({"submit", WriteFile("twin.yaml", twin)});
  EXPECT_EQ(twin_refused.exit_code, 2);
  EXPECT_THAT(twin_refused.err, IsOneLine());
  EXPECT_THAT(twin_refused.err,
              HasSubstr(absl::StrCat("sweep ", id, " is named 'cli-test' too, with other cells")));
  EXPECT_THAT(twin_refused.err, HasSubstr("`ablate submit --new`"));
  EXPECT_EQ(twin_refused.out, "");
  // ...and --new adds it beside.
  EXPECT_EQ(Ablate({"submit", "--new", "--update", WriteFile("twin.yaml", twin)}).exit_code, 2);
  const Result twin_submitted = Ablate({"submit", "--new", WriteFile("twin.yaml", twin)});
  ASSERT_EQ(twin_submitted.exit_code, 0) << twin_submitted.err;
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
  // An update of an ambiguous name says how to name the sweep, and does so with --sweep.
  const std::string edited = WriteFile("edited.yaml", absl::StrCat(twin, "  log_every: 5\n"));
  const Result unnamed = Ablate({"submit", "--update", edited});
  EXPECT_EQ(unnamed.exit_code, 1);
  EXPECT_THAT(unnamed.err, HasSubstr("`ablate submit --update --sweep ID`"));
  const Result named = Ablate({"submit", "--update", "--sweep", id, edited});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_THAT(named.out, HasSubstr(absl::StrCat("updated sweep ", id, ": ")));
  // The original file again, without --update: that sweep now runs the edited file's cells.
  const Result original = Ablate({"submit", WriteFile("ok.yaml", kValidSweep)});
  EXPECT_EQ(original.exit_code, 0) << original.err;
  EXPECT_THAT(original.out, HasSubstr(absl::StrCat("sweep ", id, " was already submitted")));
  EXPECT_THAT(original.err,
              HasSubstr(absl::StrCat("warning: an update has changed sweep ", id, " since")));
  EXPECT_THAT(original.err,
              HasSubstr(absl::StrCat("`ablate submit --update --sweep ", id, "`) makes it")));
  EXPECT_EQ(Ablate({"submit", "--sweep", id, edited}).exit_code, 2);  // --sweep needs --update
  EXPECT_EQ(Ablate({"cancel", id}).exit_code, 0);
  const Result retried = Ablate({"retry", id, "--cancelled"});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_THAT(retried.out, ::testing::StartsWith(absl::StrCat("requeued 2 jobs of ", id, ":\n")));
}

// retry needs what to run again: named jobs or states, never both.
TEST_F(CliCoordinatorTest, RetryNamesJobsOrStates) {
  const std::string id = Submit();
  const Result none = Ablate({"retry", id});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err,
            "ablate: retry: name jobs, or pass --failed and/or --cancelled (what to run again)\n");
  const Result both = Ablate({"retry", id, "some-job", "--failed"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.err, HasSubstr(", not jobs and flags together"));
}

// The coordinator's refusal names the call already; the CLI does not name it twice.
TEST_F(CliCoordinatorTest, AViewersRefusalNamesTheCallOnce) {
  const std::string id = Submit();
  setenv("ABLATE_TOKEN", test::kViewerToken, 1);
  const Result r = Ablate({"cancel", id});
  setenv("ABLATE_TOKEN", test::kUserToken, 1);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ::testing::StartsWith("ablate: Cancel needs a token of role user; this "
                                           "token's role is viewer"));
}

// A viewer learns that its token cannot submit before a plan it cannot run is printed, whether
// the file would be a new sweep or an update; nothing is queued. A user's submit is unchanged.
TEST_F(CliCoordinatorTest, AViewersSubmitFailsBeforeThePlan) {
  const std::string path = WriteFile("ok.yaml", kValidSweep);
  setenv("ABLATE_TOKEN", test::kViewerToken, 1);
  const Result plain = Ablate({"submit", path});
  const Result update = Ablate({"submit", "--update", path});
  const Result ls = Ablate({"ls"});
  setenv("ABLATE_TOKEN", test::kUserToken, 1);
  for (const Result* r : {&plain, &update}) {
    EXPECT_EQ(r->exit_code, 1) << r->out;
    EXPECT_EQ(r->out, "");
    EXPECT_THAT(r->err, IsOneLine());
    EXPECT_THAT(r->err, ::testing::StartsWith("ablate: submit: this token's role is viewer, "));
    EXPECT_THAT(r->err, HasSubstr("submitting needs a token of role user"));
  }
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_THAT(ls.out, ::testing::Not(HasSubstr("cli-test")));

  // Submit() checks that the plan comes first, then the submission.
  EXPECT_FALSE(Submit().empty());
}

// A job's id given where a sweep's belongs is named as a job's, with its sweep.
TEST_F(CliCoordinatorTest, AJobIdForASweepNamesItsSweep) {
  const std::string id = Submit();
  const Result json = Ablate({"status", id, "--json"});
  v1::SweepSnapshot snapshot;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &snapshot).ok()) << json.out;
  ASSERT_GT(snapshot.jobs_size(), 0);
  const Result r = Ablate({"status", snapshot.jobs(0).spec().job_id()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, absl::StrCat("ablate: ", snapshot.jobs(0).spec().job_id(),
                                " is a job's id, not a sweep's; its sweep is ", id,
                                " (`ablate status ", id, "` lists its jobs)\n"));
}

TEST_F(CliCoordinatorTest, WorkersSaysWhenNoneHasConnected) {
  const Result r = Ablate({"workers"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("no worker has connected to the coordinator at ",
                                coordinator_->grpc_address(), "\n"));
  const Result json = Ablate({"workers", "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, "{\"workers\":[]}\n");
}

// The dashboard's port given for the gRPC one: said so, not gRPC's transport error.
TEST_F(CliCoordinatorTest, TheWebPortIsNamedForWhatItIs) {
  const Result r =
      Run({"--coordinator", absl::StrCat("127.0.0.1:", coordinator_->http_port()), "ls"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr("it answers HTTP/1, not gRPC: is that the coordinator's web "
                               "port? the CLI needs its gRPC port"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("is ablate-coordinator running?")));
}

TEST_F(CliCoordinatorTest, UnknownSweepIsAServerError) {
  const Result r = Ablate({"status", "no-such-sweep"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, IsOneLine());
  EXPECT_THAT(r.err, HasSubstr("ablate: GetSweep: "));
  EXPECT_THAT(r.err, HasSubstr("no-such-sweep"));
}

// Ctrl-C is how one leaves a watch: exit 130 with a line saying the sweep goes on, which it
// does.
TEST_F(CliCoordinatorTest, CtrlCLeavesAWatchSayingTheSweepGoesOn) {
  const std::string id = Submit();
  auto watch = test::Subprocess::Start(
      {(*test::BinDir()) + "/ablate", "--coordinator", coordinator_->grpc_address(), "watch", id});
  ASSERT_TRUE(watch.ok()) << watch.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((*watch)->Stdout().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE((*watch)->Stdout().empty()) << (*watch)->Stderr();
  (*watch)->Signal(SIGINT);
  absl::StatusOr<int> code = (*watch)->WaitFor(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 130);
  EXPECT_THAT((*watch)->Stderr(), HasSubstr(absl::StrCat("ablate: stopped watching; sweep ", id,
                                                         " goes on (ablate watch ", id)));
  const Result status = Ablate({"status", id});
  EXPECT_THAT(status.out, HasSubstr("PENDING"));
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

  // Nor will any result come: results says so, and fails, so that a script stops there.
  const Result results = Ablate({"results", id, "--csv"});
  EXPECT_EQ(results.exit_code, 1) << results.err;
  EXPECT_THAT(results.out, HasSubstr("\n1,1,0,0,,,,,,,\n"));
  EXPECT_EQ(results.err,
            absl::StrCat("note: no cell of ", id,
                         " has a value of eval/loss, and no job is left to run (0 failed, 2 "
                         "cancelled); `ablate status ",
                         id, "` shows why\n"));
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

  // Stopped (its open calls end CANCELLED or UNAVAILABLE) and killed.
  const auto reconnections = [&] {
    const std::string err = (*watch)->Stderr();
    int n = 0;
    for (size_t at = err.find("reconnected"); at != std::string::npos;
         at = err.find("reconnected", at + 1)) {
      ++n;
    }
    return n;
  };
  for (const int signal : {SIGTERM, SIGKILL}) {
    const int before = reconnections();
    coordinator_->process().Signal(signal);
    ASSERT_TRUE(coordinator_->Stop().ok());
    absl::StatusOr<std::unique_ptr<test::TestCoordinator>> restarted =
        test::TestCoordinator::Start(*test::BinDir(), dir_, {}, grpc_port);
    ASSERT_TRUE(restarted.ok()) << restarted.status();
    coordinator_ = *std::move(restarted);
    ASSERT_TRUE(Eventually([&] { return reconnections() > before; }, absl::Seconds(20)))
        << "signal " << signal << ": " << (*watch)->Stderr();
  }

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
}  // namespace ablate::cli_test
