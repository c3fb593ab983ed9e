#include "worker/trainer_process.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "worker/slots.h"
#include "worker/testing/process_state.h"
#include "worker/trainer_pids.h"

namespace ablate::worker {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(8);

v1::JobSpec FakeJob(const std::string& behavior, uint32_t steps = 3) {
  v1::JobSpec job;
  job.set_job_id(absl::StrCat("job-", behavior));
  job.set_sweep_id("sweep");
  v1::CellValue& cell = *job.add_cell();
  cell.set_dimension("behavior");
  cell.set_value(behavior);
  job.mutable_config()->set_steps(steps);
  return job;
}

using testing::Dead;
using testing::EventuallyDead;

class TrainerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.trainer_path = ABLATE_FAKE_TRAINER;
    options_.work_dir =
        std::filesystem::path(::testing::TempDir()) /
        absl::StrCat("trainer_process_test-", getpid(), "-",
                     ::testing::UnitTest::GetInstance()->random_seed(), "-", counter_++);
    options_.cpu_threads_per_slot = 2;
  }
  void TearDown() override { std::filesystem::remove_all(options_.work_dir); }

  absl::StatusOr<std::unique_ptr<TrainerProcess>> Start(
      const v1::JobSpec& job, const std::vector<v1::Slot>& slots = CpuSlots(1)) {
    return TrainerProcess::Start(
        options_, job, /*attempt_id=*/7, slots,
        [this](const v1::TrainerEvent& event) {
          absl::MutexLock lock(&mu_);
          events_.push_back(event);
        },
        [this](const v1::AttemptEnded& ended) {
          absl::MutexLock lock(&mu_);
          exits_.push_back(ended);
        });
  }

  std::vector<v1::TrainerEvent> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

  // Waits for the first event that is a log line, and returns its text.
  std::string FirstLog() {
    absl::MutexLock lock(&mu_);
    auto has_log = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& e : events_) {
        if (e.has_log()) return true;
      }
      return false;
    };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&has_log), kWait));
    for (const auto& e : events_) {
      if (e.has_log()) return e.log().text();
    }
    return "";
  }

  static inline int counter_ = 0;
  TrainerOptions options_;
  absl::Mutex mu_;
  std::vector<v1::TrainerEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::AttemptEnded> exits_ ABSL_GUARDED_BY(mu_);
};

TEST_F(TrainerProcessTest, SuccessDeliversEventsInOrderAndWritesTheJobFile) {
  auto process = Start(FakeJob("succeed", 4));
  ASSERT_TRUE(process.ok()) << process.status();
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->succeeded());
  EXPECT_EQ(ended->job_id(), "job-succeed");
  EXPECT_EQ(ended->attempt_id(), 7u);
  EXPECT_EQ(ended->exit().exit_code(), 0);
  EXPECT_EQ(ended->exit().signal(), 0);
  EXPECT_EQ(ended->exit().reason(), "exited with code 0");
  // The trainer's last word travels with the attempt's end.
  ASSERT_TRUE(ended->has_finished());
  EXPECT_TRUE(ended->finished().ok());
  EXPECT_EQ(ended->finished().steps(), 4u);

  std::vector<v1::TrainerEvent> events = Events();
  ASSERT_EQ(events.size(), 7u);  // started, log, 4 metrics, finished
  EXPECT_TRUE(events[0].has_started());
  EXPECT_TRUE(events[1].has_log());
  for (int step = 1; step <= 4; ++step) {
    ASSERT_TRUE(events[1 + step].has_metrics());
    EXPECT_EQ(events[1 + step].metrics().points(0).step(), step);
  }
  EXPECT_TRUE(events[6].finished().ok());
  {
    absl::MutexLock lock(&mu_);
    ASSERT_EQ(exits_.size(), 1u);  // on_exit ran before WaitForExit returned
  }

  const std::filesystem::path dir = options_.work_dir / "job-succeed" / "attempt-7";
  EXPECT_EQ((*process)->attempt_dir(), dir);
  std::ifstream in(dir / "job.json");
  std::stringstream json;
  json << in.rdbuf();
  v1::JobSpec written;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.str(), &written).ok());
  EXPECT_EQ(written.job_id(), "job-succeed");
  EXPECT_EQ(written.config().steps(), 4u);
  EXPECT_EQ(written.config().cpu_threads(), 2u);  // 2 per slot, 1 slot
  EXPECT_TRUE(std::filesystem::exists(dir / "trainer.log"));
}

TEST_F(TrainerProcessTest, ChildGetsOnlyItsDescriptorsItsGroupAndTheCudaDevices) {
  unsetenv("PYTORCH_CUDA_ALLOC_CONF");  // the worker's own setting would be passed on instead
  v1::Slot gpu1, gpu3;
  gpu1.set_kind(v1::DEVICE_KIND_CUDA);
  gpu1.set_index(1);
  gpu3.set_kind(v1::DEVICE_KIND_CUDA);
  gpu3.set_index(3);
  auto process = Start(FakeJob("succeed"), {gpu1, gpu3});
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string env = FirstLog();
  EXPECT_THAT(env, HasSubstr("CUDA_VISIBLE_DEVICES=1,3 "));
  EXPECT_THAT(env, HasSubstr("CUDA_DEVICE_ORDER=PCI_BUS_ID "));
  EXPECT_THAT(env, HasSubstr("PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "));
  EXPECT_THAT(env, HasSubstr("cpu_threads=4 "));
  EXPECT_THAT(env, HasSubstr("fds=0,1,2,3 "));
  EXPECT_THAT(env, HasSubstr("pgid_is_pid=1"));
  ASSERT_TRUE((*process)->WaitForExit(kWait).has_value());
}

TEST_F(TrainerProcessTest, FailureReportsTheTrainersError) {
  auto process = Start(FakeJob("fail"));
  ASSERT_TRUE(process.ok()) << process.status();
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->succeeded());
  EXPECT_EQ(ended->exit().exit_code(), 1);
  EXPECT_EQ(ended->exit().reason(), "exited with code 1: loss is NaN at step 2");
  ASSERT_TRUE(ended->has_finished());
  EXPECT_FALSE(ended->finished().ok());
  EXPECT_EQ(ended->finished().error(), "loss is NaN at step 2");
}

TEST_F(TrainerProcessTest, SilentFailureQuotesTheEndOfTheLogAsValidUtf8) {
  auto process = Start(FakeJob("fail-silent"));
  ASSERT_TRUE(process.ok()) << process.status();
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->exit().exit_code(), 3);
  EXPECT_EQ(ended->exit().reason(),
            "exited with code 3: loading data | out of memory | bad byte ?? here");
  EXPECT_FALSE(ended->has_finished());
}

TEST_F(TrainerProcessTest, CrashesAreReportedBySignal) {
  auto segv = Start(FakeJob("segv"));
  ASSERT_TRUE(segv.ok()) << segv.status();
  std::optional<v1::AttemptEnded> ended = (*segv)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->succeeded());
  EXPECT_EQ(ended->exit().exit_code(), -1);
  EXPECT_EQ(ended->exit().signal(), SIGSEGV);
  EXPECT_EQ(ended->exit().reason(), "killed by signal 11 (SIGSEGV)");

  auto abort = Start(FakeJob("abort"));
  ASSERT_TRUE(abort.ok()) << abort.status();
  ended = (*abort)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->exit().signal(), SIGABRT);
  EXPECT_EQ(ended->exit().reason(), "killed by signal 6 (SIGABRT): fatal: invariant broken");
}

// Reads "grandchild_pid=N" from the sleeping fake's log event.
pid_t Grandchild(const std::string& log) {
  int pid = 0;
  EXPECT_TRUE(absl::SimpleAtoi(log.substr(log.find('=') + 1), &pid)) << log;
  return pid;
}

TEST_F(TrainerProcessTest, StopTerminatesTheWholeGroup) {
  auto process = Start(FakeJob("sleep"));
  ASSERT_TRUE(process.ok()) << process.status();
  const pid_t grandchild = Grandchild(FirstLog());
  // Recorded while it runs, so that a restarted worker could stop it.
  std::ifstream record(PidFilePath(options_.work_dir, 7));
  pid_t recorded = 0;
  ASSERT_TRUE(record >> recorded);
  EXPECT_EQ(recorded, (*process)->pid());
  const absl::Time start = absl::Now();
  (*process)->Stop(absl::Seconds(5), "cancelled");
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // SIGTERM did it, well within the grace
  EXPECT_FALSE(ended->succeeded());
  EXPECT_EQ(ended->exit().signal(), SIGTERM);
  EXPECT_EQ(ended->exit().reason(), "cancelled");
  EXPECT_TRUE(EventuallyDead(grandchild, kWait));
  EXPECT_FALSE(std::filesystem::exists(PidFilePath(options_.work_dir, 7)));  // the group is gone
}

TEST_F(TrainerProcessTest, StopEscalatesToSigkillAfterTheGrace) {
  auto process = Start(FakeJob("ignore-term"));
  ASSERT_TRUE(process.ok()) << process.status();
  const pid_t grandchild = Grandchild(FirstLog());
  const absl::Time start = absl::Now();
  (*process)->Stop(absl::Milliseconds(300), "cancelled");
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_EQ(ended->exit().signal(), SIGKILL);
  EXPECT_EQ(ended->exit().reason(), "cancelled: killed by SIGKILL after 300ms");
  EXPECT_TRUE(EventuallyDead(grandchild, kWait));
}

// A second stop may hurry the first (a lease lapsing while the worker shuts down), never delay
// it, and the first stop's reason stays the attempt's.
TEST_F(TrainerProcessTest, ALaterStopOnlyBringsTheSigkillForward) {
  auto process = Start(FakeJob("ignore-term"));
  ASSERT_TRUE(process.ok()) << process.status();
  Grandchild(FirstLog());  // running, its SIGTERM handler set
  const absl::Time start = absl::Now();
  (*process)->Stop(absl::Minutes(5), "worker shutting down");
  (*process)->Stop(absl::Milliseconds(300), "fenced");
  (*process)->Stop(absl::Minutes(1), "cancelled");
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(ended->exit().signal(), SIGKILL);
  EXPECT_THAT(ended->exit().reason(), StartsWith("worker shutting down: killed by SIGKILL after "));
}

// A trainer that reports progress more often than the stall timeout runs to its end, however
// long; one that goes silent (SIGSTOPped here, as a hung collective would leave it, and a
// stopped process cannot act on SIGTERM) is stopped as stalled, SIGKILL after the grace.
TEST_F(TrainerProcessTest, ATrainerSilentForTheStallTimeoutIsStoppedAsStalled) {
  options_.stall_timeout = absl::Milliseconds(600);
  options_.stall_grace = absl::Milliseconds(200);
  v1::JobSpec job = FakeJob("progress");
  v1::CellValue& steps = *job.add_cell();
  steps.set_dimension("steps");
  steps.set_value("12");  // 1.2 s of progress, twice the timeout
  auto steady = Start(job);
  ASSERT_TRUE(steady.ok()) << steady.status();
  std::optional<v1::AttemptEnded> ended = (*steady)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->succeeded()) << ended->exit().reason();

  // Progress is the stall watch's alone: none reaches on_event.
  for (const v1::TrainerEvent& event : Events()) EXPECT_FALSE(event.has_progress());

  steps.set_value("100");
  auto hung = Start(job);
  ASSERT_TRUE(hung.ok()) << hung.status();
  absl::SleepFor(absl::Milliseconds(350));  // a few steps' progress first
  ASSERT_EQ(kill((*hung)->pid(), SIGSTOP), 0);
  ended = (*hung)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->succeeded());
  EXPECT_EQ(ended->exit().signal(), SIGKILL);
  EXPECT_THAT(ended->exit().reason(),
              StartsWith("stalled: the trainer sent nothing for 600ms after step "));
  EXPECT_THAT(ended->exit().reason(),
              HasSubstr("(the worker's --stall-timeout-s): killed by SIGKILL after 200ms"));
}

TEST_F(TrainerProcessTest, DestructorStopsAndJoins) {
  pid_t pid = 0;
  {
    auto process = Start(FakeJob("sleep"));
    ASSERT_TRUE(process.ok()) << process.status();
    pid = (*process)->pid();
    FirstLog();
  }
  EXPECT_TRUE(Dead(pid));
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(exits_.size(), 1u);
  EXPECT_EQ(exits_[0].exit().reason(), "stopped");
}

TEST_F(TrainerProcessTest, StartErrorsLeaveNothingRunning) {
  EXPECT_EQ(Start(FakeJob("../escape")).status().code(), absl::StatusCode::kInvalidArgument);
  v1::JobSpec no_id = FakeJob("succeed");
  no_id.clear_job_id();
  EXPECT_EQ(Start(no_id).status().code(), absl::StatusCode::kInvalidArgument);

  options_.trainer_path = (options_.work_dir / "no-such-trainer").string();
  absl::Status status = Start(FakeJob("succeed")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(status.message()), StartsWith("cannot run "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("No such file or directory"));
  // No folder is left for an attempt that never ran, nor for its job.
  EXPECT_FALSE(std::filesystem::exists(options_.work_dir / "job-succeed"));
  // A folder this start did not create is kept, with what else it holds.
  const std::filesystem::path earlier = options_.work_dir / "job-succeed" / "attempt-7";
  std::filesystem::create_directories(earlier);
  std::ofstream(earlier / "notes.txt") << "kept\n";
  EXPECT_FALSE(Start(FakeJob("succeed")).ok());
  EXPECT_TRUE(std::filesystem::exists(earlier / "notes.txt"));
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(events_.empty());
  EXPECT_TRUE(exits_.empty());
}

// The text of `path` once it holds `needle` (a rank writes its log on its own time).
std::string WaitForText(const std::filesystem::path& path, const std::string& needle) {
  std::string text;
  for (const absl::Time deadline = absl::Now() + kWait; absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    std::ifstream in(path);
    text.assign(std::istreambuf_iterator<char>(in), {});
    if (text.find(needle) != std::string::npos) break;
  }
  return text;
}

// The number after `key` ("pid=") in `text`.
int NumberAfter(const std::string& text, const std::string& key) {
  int value = 0;
  const size_t at = text.find(key);
  EXPECT_NE(at, std::string::npos) << key << " in " << text;
  if (at != std::string::npos) {
    const std::string rest = text.substr(at + key.size());
    EXPECT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find_first_of(" \n")), &value)) << rest;
  }
  return value;
}

v1::JobSpec GangJob(const std::string& behavior, uint32_t ranks) {
  v1::JobSpec job = FakeJob(behavior);
  job.mutable_config()->set_cpu_ranks(ranks);
  return job;
}

TEST_F(TrainerProcessTest, RanksShareOneGroupAndOneRendezvousAndOnlyRankZeroSpeaks) {
  auto process = Start(GangJob("succeed", 3), CpuSlots(3));
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string rank0 = FirstLog();
  EXPECT_THAT(rank0, HasSubstr("RANK=0 LOCAL_RANK=0 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 "));
  EXPECT_THAT(rank0, HasSubstr("cpu_threads=2 "));  // 2 per slot, 3 slots, 3 ranks
  EXPECT_THAT(rank0, HasSubstr("fds=0,1,2,3 "));
  const int port = NumberAfter(rank0, "MASTER_PORT=");
  EXPECT_GT(port, 0);
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->succeeded());
  EXPECT_EQ(ended->exit().reason(), "3 ranks exited with code 0");
  for (int rank : {1, 2}) {
    const std::string log =
        WaitForText((*process)->attempt_dir() / absl::StrCat("trainer-rank", rank, ".log"), "pid=");
    EXPECT_THAT(log, HasSubstr(absl::StrCat(
                         "RANK=", rank, " LOCAL_RANK=", rank,
                         " WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=", port, " ")));
    EXPECT_THAT(log, HasSubstr("fds=0,1,2 "));  // no event pipe
    EXPECT_EQ(NumberAfter(log, "pgid="), (*process)->pid());
  }
}

TEST_F(TrainerProcessTest, OneFailedRankStopsTheGangWithItsReason) {
  auto process = Start(GangJob("rank-fail", 2), CpuSlots(2));
  ASSERT_TRUE(process.ok()) << process.status();
  // Rank 0 would sleep for ever: the attempt ends only because the gang stopped it.
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_FALSE(ended->succeeded());
  EXPECT_EQ(ended->exit().exit_code(), 1);
  EXPECT_THAT(ended->exit().reason(), StartsWith("rank 1 of 2 exited with code 1: "));
  EXPECT_THAT(ended->exit().reason(), HasSubstr("rank 1: connection to rank 0 lost"));
  EXPECT_FALSE(std::filesystem::exists(PidFilePath(options_.work_dir, 7)));
}

TEST_F(TrainerProcessTest, StopReachesEveryRank) {
  auto process = Start(GangJob("sleep", 2), CpuSlots(2));
  ASSERT_TRUE(process.ok()) << process.status();
  const pid_t grandchild = Grandchild(FirstLog());
  const pid_t rank1 =
      NumberAfter(WaitForText((*process)->attempt_dir() / "trainer-rank1.log", "pid="), "pid=");
  (*process)->Stop(absl::Seconds(5), "cancelled");
  std::optional<v1::AttemptEnded> ended = (*process)->WaitForExit(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->exit().reason(), "cancelled");
  EXPECT_EQ(ended->exit().signal(), SIGTERM);
  EXPECT_TRUE(Dead(rank1));
  EXPECT_TRUE(EventuallyDead(grandchild, kWait));
}

}  // namespace
}  // namespace ablate::worker
