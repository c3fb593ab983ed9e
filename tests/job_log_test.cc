// The tail of a job's log, from the trainer's file on the worker to the coordinator's JSON API:
// a real coordinator, a real worker and ablate-train on a tiny model. While the job runs its
// log's progress lines arrive within seconds; once it ends, GET /api/v1/jobs/{id}/log answers
// the last lines of the trainer.log on the worker's disk, exactly, and so does `ablate log`;
// `ablate log --follow`, started while the job runs, prints each line of the file from where it
// started to the end once, in order, and exits with the job. An ended job's last lines are still
// served after the coordinator restarts, and so are a retried attempt's (`ablate log --attempt`).
// An attempt its worker refused before starting a trainer has no log, and `ablate log` says why
// rather than naming a folder never made.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate {
namespace {

class JobLogTest : public test::ClusterTest {
 protected:
  // GET `path` with the viewer token: the HTTP status, and the body parsed into `message`.
  int Get(const std::string& path, google::protobuf::Message& message) {
    httplib::Client http("127.0.0.1", coordinator_->http_port());
    httplib::Result result =
        http.Get(path, {{"Authorization", absl::StrCat("Bearer ", test::kViewerToken)}});
    if (!result) return 0;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (result->status == 200) {
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(result->body, &message, options).ok())
          << result->body;
    }
    return result->status;
  }

  // Drains the worker, stops the coordinator and starts it again on the same database, as an
  // upgrade would.
  void RestartCoordinator() {
    ASSERT_TRUE(DrainFirstWorker(absl::Seconds(20)).ok()) << Logs();
    absl::StatusOr<int> stopped = coordinator_->Stop();
    ASSERT_TRUE(stopped.ok() && *stopped == 0) << Logs();
    coordinator_.reset();
    auto restarted = test::TestCoordinator::Start(bin_dir_, dir_, {}, 0, {"w"});
    ASSERT_TRUE(restarted.ok()) << restarted.status();
    coordinator_ = *std::move(restarted);
  }

  // The job's log as the API answers it, once `done` holds for it (polled), or the last seen.
  v1::JobLog WaitForLog(const std::string& job_id,
                        const std::function<bool(const v1::JobLog&)>& done,
                        absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::JobLog log;
    while (absl::Now() < deadline) {
      log.Clear();
      EXPECT_EQ(Get(absl::StrCat("/api/v1/jobs/", job_id, "/log"), log), 200);
      if (done(log)) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return log;
  }
};

// `shown`, the lines a follower printed of one attempt, is a run of the lines of its `file` that
// ends where the file does. A follower slowed by a loaded machine may fall more than a tail's
// lines behind between two reads (the tiny trainer writes some 200 lines a second); it says so
// (`skipped`), and what must hold then is that it still ends with the file's last lines.
testing::AssertionResult EndsTheFile(const std::vector<std::string>& shown,
                                     const std::vector<std::string>& file, bool skipped) {
  if (shown.empty()) return testing::AssertionFailure() << "no line shown";
  if (shown.size() > file.size()) {
    return testing::AssertionFailure()
           << shown.size() << " lines shown of a file of " << file.size();
  }
  const size_t compared = skipped ? std::min<size_t>(shown.size(), 8) : shown.size();
  for (size_t i = 1; i <= compared; ++i) {
    if (shown[shown.size() - i] != file[file.size() - i]) {
      return testing::AssertionFailure()
             << "line " << i << " from the end: shown '" << shown[shown.size() - i]
             << "', in the file '" << file[file.size() - i] << "'";
    }
  }
  return testing::AssertionSuccess();
}

bool HasLine(const v1::JobLog& log, absl::string_view prefix) {
  for (const std::string& line : log.lines()) {
    if (absl::StartsWith(line, prefix)) return true;
  }
  return false;
}

TEST_F(JobLogTest, TheApiServesTheTailOfTheTrainersLog) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinatorAndWorker("w", 1));
  ASSERT_TRUE(Submit(WriteTinySweep(/*jobs=*/1, /*steps=*/300)).ok()) << Logs();

  absl::StatusOr<v1::Job> job =
      WaitForOnlyJob([](const v1::Job& j) { return j.step() >= 1; }, absl::Minutes(2));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const std::string job_id = job->spec().job_id();

  // While it runs: its progress lines, from the attempt that runs it.
  v1::JobLog running = WaitForLog(
      job_id, [](const v1::JobLog& log) { return HasLine(log, "step "); }, absl::Seconds(30));
  ASSERT_TRUE(HasLine(running, "step ")) << running.DebugString() << Logs();
  EXPECT_EQ(running.attempt_id(), job->current_attempt_id());
  EXPECT_TRUE(running.has_updated_at());
  auto follow = test::Subprocess::Start({bin_dir_ + "/ablate", "--coordinator",
                                         coordinator_->grpc_address(), "log", "--follow", job_id});
  ASSERT_TRUE(follow.ok()) << follow.status();

  // Once it ended: the last lines of the file on the worker's disk, exactly.
  job = WaitForOnlyJob([](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; },
                       absl::Minutes(3));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  v1::JobLog ended = WaitForLog(
      job_id, [](const v1::JobLog& log) { return HasLine(log, "done after "); }, absl::Seconds(20));
  ASSERT_TRUE(HasLine(ended, "done after ")) << ended.DebugString() << Logs();
  const std::filesystem::path file = std::filesystem::path(dir_) / "w" / job_id /
                                     absl::StrCat("attempt-", job->current_attempt_id()) /
                                     "trainer.log";
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  // 300 steps of progress lines: more than a tail's 200 lines.
  ASSERT_GT(lines.size(), 200u);
  ASSERT_EQ(ended.lines_size(), 200);
  EXPECT_TRUE(ended.truncated());
  const std::vector<std::string> last(lines.end() - 200, lines.end());
  EXPECT_EQ(std::vector<std::string>(ended.lines().begin(), ended.lines().end()), last);

  // `ablate log` by the short id: the same lines; where the rest is, on stderr.
  const std::string short_id = job_id.substr(job->spec().sweep_id().size() + 1);
  test::Cli printed = Ablate({"log", short_id});
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, absl::StrCat(absl::StrJoin(last, "\n"), "\n"));
  EXPECT_THAT(printed.err, testing::HasSubstr(absl::StrCat(
                               job_id, "/attempt-", job->current_attempt_id(), "/ on worker w")));

  // --follow: a run of the file's lines that ends where the file does, none twice, none
  // skipped; exit 0 for a job that succeeded.
  absl::StatusOr<int> followed = (*follow)->WaitFor(absl::Seconds(30));
  ASSERT_TRUE(followed.ok()) << followed.status();
  EXPECT_EQ(*followed, 0) << (*follow)->Stderr();
  EXPECT_THAT((*follow)->Stderr(), testing::HasSubstr("SUCCEEDED"));
  std::vector<std::string> tail = absl::StrSplit((*follow)->Stdout(), '\n');
  ASSERT_FALSE(tail.empty());
  ASSERT_TRUE(tail.back().empty());
  tail.pop_back();
  ASSERT_GE(tail.size(), 200u) << (*follow)->Stdout();
  EXPECT_EQ(tail,
            std::vector<std::string>(lines.end() - static_cast<long>(tail.size()), lines.end()));
  EXPECT_THAT((*follow)->Stderr(), testing::Not(testing::HasSubstr("skipped")));

  EXPECT_EQ(Ablate({"log", "no-such-job"}).exit_code, 1);

  v1::JobLog unknown;
  EXPECT_EQ(Get("/api/v1/jobs/no-such-job/log", unknown), 404);
}

// An ended job's log outlives a restart of the coordinator: its worker, gone by then, never
// sends it again, so `ablate log` and the API answer it from the coordinator's database.
TEST_F(JobLogTest, AnEndedJobsLogOutlivesACoordinatorRestart) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinatorAndWorker("w", 1));
  ASSERT_TRUE(Submit(WriteTinySweep(/*jobs=*/1, /*steps=*/10)).ok()) << Logs();
  absl::StatusOr<v1::Job> job = WaitForOnlyJob(
      [](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; }, absl::Minutes(1));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const std::string job_id = job->spec().job_id();
  const v1::JobLog before = WaitForLog(
      job_id, [](const v1::JobLog& log) { return HasLine(log, "done after "); }, absl::Seconds(20));
  ASSERT_TRUE(HasLine(before, "done after ")) << before.DebugString() << Logs();

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());

  v1::JobLog after;
  ASSERT_EQ(Get(absl::StrCat("/api/v1/jobs/", job_id, "/log"), after), 200);
  EXPECT_EQ(after.attempt_id(), job->current_attempt_id());
  EXPECT_EQ(std::vector<std::string>(after.lines().begin(), after.lines().end()),
            std::vector<std::string>(before.lines().begin(), before.lines().end()));
  // `ablate log`: the last lines of the file on the worker's disk (all of them: a short run).
  std::ifstream in(std::filesystem::path(dir_) / "w" / job_id /
                   absl::StrCat("attempt-", job->current_attempt_id()) / "trainer.log");
  ASSERT_TRUE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  test::Cli printed = Ablate({"log", job_id});
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, text);
  EXPECT_THAT(printed.out, testing::HasSubstr("done after "));
}

// A job whose checkpoint_dir leads, through a symbolic link, outside the worker's
// --checkpoint-root: the coordinator, which compares spellings, places it there, and the
// worker, which resolves links, refuses its attempt before making the attempt's folder or
// starting a trainer, so no log exists. `ablate log` says that attempt never started, and why,
// and names no folder.
TEST_F(JobLogTest, AnAttemptThatNeverStartedHasNoLogAndSaysWhy) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinatorAndWorker("w", 1));
  const std::filesystem::path link = std::filesystem::path(dir_) / "checkpoints" / "elsewhere";
  std::filesystem::create_directories(link.parent_path());
  std::filesystem::create_directories(std::filesystem::path(dir_) / "elsewhere");
  std::filesystem::create_directory_symlink(std::filesystem::path(dir_) / "elsewhere", link);
  const std::string sweep = WriteTinySweep(/*jobs=*/1, /*steps=*/10);
  std::string text;
  {
    std::ifstream in(sweep);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string inside = absl::StrCat("checkpoint_root: ", dir_, "/checkpoints");
  const size_t at = text.find(inside);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, inside.size(), absl::StrCat("checkpoint_root: ", link.string()));
  std::ofstream(sweep) << text;
  ASSERT_TRUE(Submit(sweep).ok()) << Logs();
  absl::StatusOr<v1::Job> job = WaitForOnlyJob(
      [](const v1::Job& j) { return j.state() == v1::JOB_STATE_FAILED; }, absl::Minutes(1));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const std::string job_id = job->spec().job_id();
  const uint64_t attempt = job->current_attempt_id();
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dir_) / "w" / job_id /
                                       absl::StrCat("attempt-", attempt)));

  test::Cli printed = Ablate({"log", job_id});
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, "");
  EXPECT_THAT(printed.err,
              testing::StartsWith(absl::StrCat(
                  "ablate: log: ", job_id, " is FAILED and has no log: attempt 1 (id ", attempt,
                  ") on worker w never started its trainer: checkpoint_dir ", link.string(), "/")));
  EXPECT_THAT(printed.err, testing::HasSubstr(" is outside this worker's --checkpoint-root ("));
  EXPECT_THAT(printed.err, testing::Not(testing::HasSubstr("trainer.log in")));
  EXPECT_THAT(printed.err, testing::Not(testing::HasSubstr("/attempt-")));
}

// `ablate log -f` across a retry: attempt 1's lines to the end of its file (its last line
// too, held back while it might still grow), how it ended, then attempt 2's to the end of its.
// Attempt 2's first tail may replace attempt 1's last one at the coordinator before the follower
// reads it (on a loaded machine the retry's trainer resumes within a poll of the follower), as
// it does here while the follower is stopped: the follower then asks for attempt 1's by its id.
TEST_F(JobLogTest, FollowingTheLogCarriesOnThroughARetry) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinatorAndWorker("w", 1));
  ASSERT_TRUE(Submit(WriteTinySweep(/*jobs=*/1, /*steps=*/1500)).ok()) << Logs();
  absl::StatusOr<v1::Job> job =
      WaitForOnlyJob([](const v1::Job& j) { return j.step() >= 25; }, absl::Minutes(2));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const std::string job_id = job->spec().job_id();
  const uint64_t first = job->current_attempt_id();
  // Attempt 1's trainer held still (SIGSTOP) from here until it is killed: an idle machine runs
  // the tiny model's 1,500 steps in a few seconds, faster than the follower's first tail comes.
  std::ifstream pid_file(std::filesystem::path(dir_) / "w" / "trainer-pids" /
                         absl::StrCat("attempt-", first, ".pid"));
  pid_t pid = 0;
  ASSERT_TRUE(pid_file >> pid) << Logs();
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  auto follow = test::Subprocess::Start(
      {bin_dir_ + "/ablate", "--coordinator", coordinator_->grpc_address(), "log", "-f", job_id});
  ASSERT_TRUE(follow.ok()) << follow.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((*follow)->Stdout().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE((*follow)->Stdout().empty()) << (*follow)->Stderr() << Logs();  // attempt 1's
  // Attempt 1, held, still runs, and `ablate log --attempt 1` says so.
  const test::Cli running = Ablate({"log", "--attempt", "1", job_id});
  EXPECT_EQ(running.exit_code, 0) << running.err;
  EXPECT_THAT(running.err, testing::EndsWith("; it is still running\n"));

  // The follower held still, as a loaded machine may hold it, while a signal the worker did not
  // send ends attempt 1 (as the OOM killer would), until attempt 2's first tail has replaced
  // attempt 1's last one at the coordinator.
  (*follow)->Signal(SIGSTOP);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  const v1::JobLog replaced = WaitForLog(
      job_id, [first](const v1::JobLog& log) { return log.attempt_id() > first; },
      absl::Minutes(1));
  (*follow)->Signal(SIGCONT);
  ASSERT_GT(replaced.attempt_id(), first) << replaced.DebugString() << Logs();
  absl::StatusOr<int> followed = (*follow)->WaitFor(absl::Minutes(3));
  ASSERT_TRUE(followed.ok()) << followed.status() << Logs();
  EXPECT_EQ(*followed, 0) << (*follow)->Stderr();
  job = WaitForOnlyJob([](const v1::Job&) { return true; }, absl::Seconds(5));
  ASSERT_TRUE(job.ok());
  const uint64_t second = job->current_attempt_id();
  ASSERT_NE(second, first);

  const auto file_lines = [&](uint64_t attempt) {
    std::ifstream in(std::filesystem::path(dir_) / "w" / job_id /
                     absl::StrCat("attempt-", attempt) / "trainer.log");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  const std::vector<std::string> one = file_lines(first), two = file_lines(second);
  ASSERT_FALSE(one.empty());
  ASSERT_FALSE(two.empty());
  std::vector<std::string> out = absl::StrSplit((*follow)->Stdout(), '\n');
  ASSERT_TRUE(!out.empty() && out.back().empty());
  out.pop_back();
  // Attempt 1's lines to its last, even where attempt 2's first tail replaced attempt 1's last
  // one at the coordinator before the follower read it; then attempt 2's lines to the end of its
  // file. The follower says when it skipped lines, and of which attempt: before or after it
  // names attempt 2.
  const std::string err = (*follow)->Stderr();
  EXPECT_THAT(err, testing::HasSubstr(absl::StrCat("ablate: log: attempt 1 (id ", first,
                                                   ") on worker w ended: ")));
  const size_t named_two =
      err.find(absl::StrCat("ablate: log: attempt 2 (id ", second, ") on worker w"));
  ASSERT_NE(named_two, std::string::npos) << err;
  const auto last_of_one = std::find(out.begin(), out.end(), one.back());
  ASSERT_NE(last_of_one, out.end()) << (*follow)->Stdout() << err;
  const std::vector<std::string> of_one(out.begin(), last_of_one + 1);
  const std::vector<std::string> of_two(last_of_one + 1, out.end());
  EXPECT_TRUE(
      EndsTheFile(of_one, one, absl::StrContains(err.substr(0, named_two), "lines skipped")))
      << err;
  EXPECT_TRUE(EndsTheFile(of_two, two, absl::StrContains(err.substr(named_two), "lines skipped")))
      << err;

  // Without -f: attempt 2's lines, and where attempt 1's whole log is.
  const test::Cli printed = Ablate({"log", job_id});
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_THAT(printed.err,
              testing::HasSubstr(absl::StrCat(
                  "ablate: log: attempt 2 (id ", second,
                  ") on worker w's lines; the job's other attempts' whole logs (trainer.log): ",
                  dir_, "/w/", job_id, "/attempt-", first, "/ on worker w (ablate log --attempt N ",
                  job_id, " prints the Nth attempt's last lines)\n")));

  // --attempt 1: attempt 1's last lines, which the retry replaced as the job's log, and how it
  // ended; they are still there after the coordinator restarts.
  for (const bool restarted : {false, true}) {
    if (restarted) {
      ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
    }
    const test::Cli first_log = Ablate({"log", "--attempt", "1", job_id});
    EXPECT_EQ(first_log.exit_code, 0) << first_log.err;
    std::vector<std::string> lines = absl::StrSplit(first_log.out, '\n');
    ASSERT_TRUE(lines.size() > 1 && lines.back().empty()) << first_log.out << first_log.err;
    lines.pop_back();
    EXPECT_TRUE(EndsTheFile(lines, one, /*skipped=*/false)) << first_log.err;
    EXPECT_THAT(first_log.err, testing::HasSubstr(absl::StrCat("ablate: log: attempt 1 (id ", first,
                                                               ") on worker w's ")));
    EXPECT_THAT(first_log.err, testing::HasSubstr("; it ended: "));
  }
  const test::Cli none = Ablate({"log", "--attempt", "3", job_id});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_EQ(none.err, absl::StrCat("ablate: log: --attempt 3: ", job_id, " has 2 attempts\n"));
  EXPECT_EQ(Ablate({"log", "--attempt", "1", "-f", job_id}).exit_code, 2);
  const test::Cli zero = Ablate({"log", "--attempt", "0", job_id});
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_EQ(zero.err,
            "ablate: --attempt: takes an attempt's number, 1 or more (1: the job's first "
            "attempt), not '0' (see ablate log --help)\n");
}

}  // namespace
}  // namespace ablate
