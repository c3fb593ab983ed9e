// ablate-train as the worker runs it, a real process meeting real signals and a real full
// disk: a SIGKILL in the middle of a checkpoint write, a filesystem with no space left, and a
// run whose loss turns NaN. What the worker sees is the exit status and the events on the pipe
// (here, stdout): 0 trained, 1 failed (a retry may help), 3 failed permanently.
//
// Data parallelism the same way: 2 and 3 ranks of one CPU job, started as the worker starts
// them (torchrun's variables, a TCP store on loopback, Gloo), against one process on the same
// global batches; and a SIGTERM to one rank, which must stop them all at one step.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "ablate/v1/trainer.pb.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/event_pipe.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kWait = absl::Seconds(120);

// The trainer's events, read from what it wrote to stdout (--events-fd 1). A process killed
// mid-message leaves a torn tail, which is dropped.
std::vector<v1::TrainerEvent> Events(const std::string& bytes, const fs::path& scratch) {
  { std::ofstream(scratch, std::ios::binary) << bytes; }
  std::FILE* file = std::fopen(scratch.c_str(), "rb");
  std::vector<v1::TrainerEvent> events;
  EventReader reader(::fileno(file));
  while (true) {
    absl::StatusOr<std::optional<v1::TrainerEvent>> next = reader.Next();
    if (!next.ok() || !next->has_value()) break;
    events.push_back(**next);
  }
  (void)std::fclose(file);  // read only: nothing to lose
  return events;
}

// step -> train/loss.
std::map<int64_t, double> Losses(const std::vector<v1::TrainerEvent>& events) {
  std::map<int64_t, double> losses;
  for (const v1::TrainerEvent& e : events) {
    for (const v1::MetricPoint& p : e.metrics().points()) {
      if (p.name() == "train/loss") losses[p.step()] = p.value();
    }
  }
  return losses;
}

class TrainerProcessTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> bin = test::BinDir();
    ASSERT_TRUE(bin.ok()) << bin.status();
    train_ = *bin + "/ablate-train";
    absl::StatusOr<std::string> dir = test::MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override {
    std::error_code error;
    fs::remove_all(dir_, error);  // this test does not link LibTorch (see checkpoint.h)
  }

  // A job file for the tiny model; `extra` adds JSON members.
  std::string Job(int steps, const std::string& extra = "", int batch_size = 8) {
    const fs::path path = dir_ / absl::StrCat("job-", jobs_++, ".json");
    std::ofstream(path) << absl::StrCat(
        R"({"model": "tiny", "steps": )", steps, R"(, "batch_size": )", batch_size,
        R"(, "context_length": 64, "learning_rate": 0.01,)",
        R"( "warmup_steps": 5, "log_every": 1, "eval_batches": 2, "cpu_threads": 1)", extra, "}");
    return path.string();
  }

  std::vector<std::string> Train(const std::string& job, const std::string& checkpoints = "") {
    std::vector<std::string> argv = {train_, "train", "--job", job, "--events-fd", "1"};
    if (!checkpoints.empty()) {
      argv.push_back("--checkpoint-dir");
      argv.push_back(checkpoints);
    }
    return argv;
  }

  // Starts `world` ranks of `job`, rank 0 writing events to stdout, as the worker does.
  std::vector<std::unique_ptr<test::Subprocess>> StartRanks(
      const std::string& job, int world, const std::string& checkpoints,
      const std::vector<std::string>& extra_args = {}) {
    absl::StatusOr<int> port = test::UnusedLoopbackPort();
    EXPECT_TRUE(port.ok()) << port.status();
    std::vector<std::unique_ptr<test::Subprocess>> ranks;
    for (int rank = 0; rank < world; ++rank) {
      std::vector<std::string> argv = {train_,     "train", "--job", job, "--checkpoint-dir",
                                       checkpoints};
      argv.insert(argv.end(), extra_args.begin(), extra_args.end());
      if (rank == 0) {
        argv.push_back("--events-fd");
        argv.push_back("1");
      }
      auto process =
          test::Subprocess::Start(argv, {{"RANK", absl::StrCat(rank)},
                                         {"LOCAL_RANK", absl::StrCat(rank)},
                                         {"WORLD_SIZE", absl::StrCat(world)},
                                         {"MASTER_ADDR", "127.0.0.1"},
                                         {"MASTER_PORT", absl::StrCat(port.value_or(0))}});
      EXPECT_TRUE(process.ok()) << process.status();
      if (process.ok()) ranks.push_back(*std::move(process));
    }
    return ranks;
  }

  std::string train_;
  fs::path dir_;
  int jobs_ = 0;
};

TEST_F(TrainerProcessTest, SigkillDuringACheckpointWriteResumesTheSameLossCurve) {
  const std::string job = Job(40, R"(, "checkpoint_every": 1)");
  auto straight = test::Subprocess::Start(Train(job));
  ASSERT_TRUE(straight.ok()) << straight.status();
  ASSERT_EQ(*(*straight)->WaitFor(kWait), 0) << (*straight)->Stderr();
  const std::map<int64_t, double> expected = Losses(Events((*straight)->Stdout(), dir_ / "a"));
  ASSERT_EQ(expected.size(), 40u);

  // Kill the run while a checkpoint folder past step 10 is being written.
  const fs::path checkpoints = dir_ / "checkpoints";
  auto killed = test::Subprocess::Start(Train(job, checkpoints.string()));
  ASSERT_TRUE(killed.ok()) << killed.status();
  std::string torn;
  const absl::Time deadline = absl::Now() + kWait;
  while (torn.empty() && absl::Now() < deadline) {
    std::error_code error;
    for (const fs::directory_entry& entry : fs::directory_iterator(checkpoints, error)) {
      const std::string name = entry.path().filename().string();
      if (absl::StartsWith(name, ".tmp-step-") && name > ".tmp-step-00000010") torn = name;
    }
    if ((*killed)->WaitFor(absl::ZeroDuration()).ok()) break;  // it ended first
  }
  (*killed)->Signal(SIGKILL);
  ASSERT_EQ(*(*killed)->WaitFor(kWait), 128 + SIGKILL);
  ASSERT_FALSE(torn.empty()) << "never saw a checkpoint being written";
  EXPECT_TRUE(fs::exists(checkpoints / torn)) << "killed after the write, not during it";

  auto resumed = test::Subprocess::Start(Train(job, checkpoints.string()));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_EQ(*(*resumed)->WaitFor(kWait), 0) << (*resumed)->Stderr();
  const std::vector<v1::TrainerEvent> events = Events((*resumed)->Stdout(), dir_ / "b");
  ASSERT_FALSE(events.empty());
  const int64_t from = events.front().started().resumed_from_step();
  EXPECT_GE(from, 10);
  EXPECT_LT(from, 40);
  const std::map<int64_t, double> losses = Losses(events);
  ASSERT_EQ(losses.size(), static_cast<size_t>(40 - from));
  for (const auto& [step, loss] : losses) {
    EXPECT_EQ(loss, expected.at(step)) << "step " << step;  // bit-identical on the CPU
  }
  EXPECT_FALSE(fs::exists(checkpoints / torn));  // the torn folder was cleared away
}

TEST_F(TrainerProcessTest, FullDiskFailsPermanentlyNamingThePath) {
  // A real full filesystem: a 256 KiB tmpfs mounted in a private user and mount namespace,
  // where the tiny model's 0.5 MB of weights cannot fit.
  auto probe = test::Subprocess::Start({"unshare", "-rm", "true"});
  ASSERT_TRUE(probe.ok()) << probe.status();
  if (*(*probe)->WaitFor(kWait) != 0) {
    GTEST_SKIP() << "unprivileged user namespaces are off here: " << (*probe)->Stderr();
  }
  const fs::path full = dir_ / "full";
  fs::create_directories(full);
  std::vector<std::string> argv = {
      "unshare",    "-rm", "sh", "-c", "mount -t tmpfs -o size=256k tmpfs \"$0\" && exec \"$@\"",
      full.string()};
  for (const std::string& arg : Train(Job(6), full.string())) argv.push_back(arg);
  auto run = test::Subprocess::Start(argv);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(*(*run)->WaitFor(kWait), 3) << (*run)->Stderr();
  const std::vector<v1::TrainerEvent> events = Events((*run)->Stdout(), dir_ / "c");
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_finished());
  const std::string error = events.back().finished().error();
  EXPECT_TRUE(absl::StrContains(error, "no space left on device")) << error;
  EXPECT_TRUE(absl::StrContains(error, full.string())) << error;
  EXPECT_FALSE(absl::StrContains((*run)->Stderr(), "Exception raised from")) << (*run)->Stderr();
}

// Regression: a NaN loss from the second step on (once from beta2 1, now refused as an
// argument; here from a weight decay that overflows the weights, which the gradient check
// catches first) let the job exit 0.
TEST_F(TrainerProcessTest, NonFiniteLossExitsAsAPermanentFailure) {
  auto run = test::Subprocess::Start(Train(Job(10, R"(, "weight_decay": 1e30)")));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(*(*run)->WaitFor(kWait), 3) << (*run)->Stderr();
  const std::vector<v1::TrainerEvent> events = Events((*run)->Stdout(), dir_ / "d");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().finished().error(), "step 2: non-finite gradient (norm nan)");
}

// Settings for a job of `ranks` CPU ranks. With 12 rows per batch, 1, 2 and 3 ranks take 12, 6
// and 4 rows of each, in micro-batches of 2: every rank also accumulates over micro-batches.
// The optimizer state is sharded (ZeRO-1) unless `sharding` says otherwise.
std::string MultiRankExtra(int ranks, absl::string_view sharding = "zero1") {
  return absl::StrCat(R"(, "cpu_ranks": )", ranks, R"(, "optimizer_sharding": ")", sharding,
                      R"(", "micro_batch_size": 2, "checkpoint_every": 4, "keep_checkpoints": 1)");
}

// (ranks, optimizer_sharding)
class MultiRankTest : public TrainerProcessTest,
                      public testing::WithParamInterface<std::tuple<int, const char*>> {};

// Each rank's gradients are summed over the ranks, so every step is the one-process step up
// to the order of fp32 additions (per micro-batch, per rank, then across ranks, where one
// process adds its 6 micro-batches in turn). Measured on this tiny model: losses (about 5)
// equal or one ulp (2.4e-7) apart over 12 steps at 2 and 3 ranks; the bound, 1e-5, allows 40
// ulps of drift. A wrong shard, a missing or doubled rank, or an average where a sum belongs
// changes the gradients by a factor or the batch, and the loss by far more from step 2 on.
TEST_P(MultiRankTest, RanksTogetherTrainAsOneProcessOnTheSameBatches) {
  const auto [world, sharding] = GetParam();
  constexpr int kSteps = 12;
  const std::string job = Job(kSteps, MultiRankExtra(world, sharding), /*batch_size=*/12);
  auto alone = test::Subprocess::Start(Train(job, (dir_ / "alone").string()));
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_EQ(*(*alone)->WaitFor(kWait), 0) << (*alone)->Stderr();
  const std::map<int64_t, double> expected = Losses(Events((*alone)->Stdout(), dir_ / "a"));
  ASSERT_EQ(expected.size(), static_cast<size_t>(kSteps));

  std::vector<std::unique_ptr<test::Subprocess>> ranks =
      StartRanks(job, world, (dir_ / "ranks").string());
  ASSERT_EQ(ranks.size(), static_cast<size_t>(world));
  // Exit 0 also says the ranks' parameters were bitwise equal at steps 4, 8 and 12: each
  // checkpoint compares their digests and fails the run when they differ.
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(*ranks[r]->WaitFor(kWait), 0) << "rank " << r << ": " << ranks[r]->Stderr();
  }
  const std::vector<v1::TrainerEvent> events = Events(ranks[0]->Stdout(), dir_ / "b");
  const std::map<int64_t, double> losses = Losses(events);
  ASSERT_EQ(losses.size(), static_cast<size_t>(kSteps));
  for (const auto& [step, loss] : losses) {
    EXPECT_NEAR(loss, expected.at(step), 1e-5) << "step " << step;
  }
  EXPECT_LT(losses.at(kSteps), losses.at(1) - 0.5);  // it learned
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().finished().ok());
  EXPECT_TRUE(ranks[1]->Stdout().empty()) << "only rank 0 writes events";
}

INSTANTIATE_TEST_SUITE_P(Ranks, MultiRankTest,
                         testing::Combine(testing::Values(2, 3), testing::Values("zero1", "none")),
                         [](const testing::TestParamInfo<std::tuple<int, const char*>>& info) {
                           return absl::StrCat(std::get<0>(info.param), "Ranks_",
                                               std::get<1>(info.param));
                         });

TEST_F(TrainerProcessTest, WorldSizeOtherThanTheJobsRanksIsRefused) {
  const std::string job = Job(6, MultiRankExtra(3), /*batch_size=*/12);
  std::vector<std::unique_ptr<test::Subprocess>> ranks =
      StartRanks(job, 2, (dir_ / "ranks").string());
  ASSERT_EQ(ranks.size(), 2u);
  EXPECT_EQ(*ranks[0]->WaitFor(kWait), 3) << ranks[0]->Stderr();
  EXPECT_EQ(*ranks[1]->WaitFor(kWait), 3);
  const std::vector<v1::TrainerEvent> events = Events(ranks[0]->Stdout(), dir_ / "c");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().finished().error(),
            "WORLD_SIZE=2 but the job asks for 3 ranks (gpus, or cpu_ranks on a CPU)");
}

class StopTest : public TrainerProcessTest, public testing::WithParamInterface<bool> {};

// The worker signals every rank (GetParam() true), each at its own moment; with only rank 1
// signalled, rank 0 must learn of it at the next step boundary. Either way both save the same
// step and exit 143, and the job resumes from that step.
TEST_P(StopTest, SigtermStopsEveryRankAtOneStepAndTheJobResumes) {
  const std::string job = Job(100000, MultiRankExtra(2));
  const fs::path checkpoints = dir_ / "checkpoints";
  std::vector<std::unique_ptr<test::Subprocess>> ranks = StartRanks(job, 2, checkpoints.string());
  ASSERT_EQ(ranks.size(), 2u);
  const absl::Time deadline = absl::Now() + kWait;
  while (Losses(Events(ranks[0]->Stdout(), dir_ / "d")).size() < 3 && absl::Now() < deadline &&
         !ranks[0]->WaitFor(absl::Milliseconds(50)).ok()) {
  }
  ranks[1]->Signal(SIGTERM);
  if (GetParam()) ranks[0]->Signal(SIGTERM);
  EXPECT_EQ(*ranks[0]->WaitFor(kWait), 128 + SIGTERM) << ranks[0]->Stderr();
  EXPECT_EQ(*ranks[1]->WaitFor(kWait), 128 + SIGTERM) << ranks[1]->Stderr();
  const std::vector<v1::TrainerEvent> events = Events(ranks[0]->Stdout(), dir_ / "d");
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_finished());
  const int64_t stopped = events.back().finished().steps();
  EXPECT_GE(stopped, 3);
  EXPECT_EQ(events.back().finished().error(),
            absl::StrCat("terminated by SIGTERM at step ", stopped));
  EXPECT_TRUE(fs::exists(checkpoints / absl::StrFormat("step-%08d", stopped)));
  EXPECT_TRUE(absl::StrContains(ranks[1]->Stderr(), absl::StrCat("at step ", stopped)))
      << ranks[1]->Stderr();

  // The same job resumes at that step; a few more steps end it.
  const std::string resume = Job(static_cast<int>(stopped) + 3, MultiRankExtra(2));
  std::vector<std::unique_ptr<test::Subprocess>> again =
      StartRanks(resume, 2, checkpoints.string(), {"--allow-config-change"});
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(*again[0]->WaitFor(kWait), 0) << again[0]->Stderr();
  EXPECT_EQ(*again[1]->WaitFor(kWait), 0) << again[1]->Stderr();
  const std::vector<v1::TrainerEvent> resumed = Events(again[0]->Stdout(), dir_ / "e");
  ASSERT_FALSE(resumed.empty());
  EXPECT_EQ(resumed.front().started().resumed_from_step(), stopped);
  EXPECT_EQ(Losses(resumed).size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(SignalledRanks, StopTest, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "All" : "OnlyRank1";
                         });

// ZeRO-1: each of 2 ranks saves the optimizer state it owns; 3 ranks resume from those shards,
// each taking the states of the parameters it now owns, and continue exactly as one process
// that never stopped. min_lr_ratio 1 keeps the rate constant after warmup, so the 6-step run
// and the 12-step runs share their schedule. A lost or misplaced state (fresh moments) moves
// the loss of the first resumed step by far more than the bound.
TEST_F(TrainerProcessTest, OptimizerShardsOfTwoRanksResumeOnThreeAsAnUnbrokenRun) {
  const std::string extra = R"(, "min_lr_ratio": 1)";
  const std::string whole = Job(12, extra + MultiRankExtra(2), /*batch_size=*/12);
  auto alone = test::Subprocess::Start(Train(whole, (dir_ / "alone").string()));
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_EQ(*(*alone)->WaitFor(kWait), 0) << (*alone)->Stderr();
  const std::map<int64_t, double> expected = Losses(Events((*alone)->Stdout(), dir_ / "f"));
  ASSERT_EQ(expected.size(), 12u);

  const fs::path checkpoints = dir_ / "checkpoints";
  const std::string first_half = Job(6, extra + MultiRankExtra(2), /*batch_size=*/12);
  for (auto& rank : StartRanks(first_half, 2, checkpoints.string())) {
    EXPECT_EQ(*rank->WaitFor(kWait), 0) << rank->Stderr();
  }
  for (const char* file : {"optimizer-0.pt", "optimizer-1.pt", "optimizer-owners.txt"}) {
    EXPECT_TRUE(fs::exists(checkpoints / "step-00000006" / file)) << file;
  }

  const std::string rest = Job(12, extra + MultiRankExtra(3), /*batch_size=*/12);
  std::vector<std::unique_ptr<test::Subprocess>> ranks =
      StartRanks(rest, 3, checkpoints.string(), {"--allow-config-change"});
  ASSERT_EQ(ranks.size(), 3u);
  for (auto& rank : ranks) EXPECT_EQ(*rank->WaitFor(kWait), 0) << rank->Stderr();
  const std::vector<v1::TrainerEvent> events = Events(ranks[0]->Stdout(), dir_ / "g");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().started().resumed_from_step(), 6);
  const std::map<int64_t, double> losses = Losses(events);
  ASSERT_EQ(losses.size(), 6u);
  for (const auto& [step, loss] : losses) {
    EXPECT_NEAR(loss, expected.at(step), 1e-5) << "step " << step;
  }
}

class ShardedStateTest : public TrainerProcessTest,
                         public testing::WithParamInterface<const char*> {
 protected:
  // Rank 0's losses once `ranks` ranks of `job` all exit 0 (none, and a failure, otherwise).
  std::map<int64_t, double> LossesOfRanks(const std::string& job, int ranks,
                                          const fs::path& checkpoints,
                                          const std::vector<std::string>& flags = {}) {
    std::vector<std::unique_ptr<test::Subprocess>> started =
        StartRanks(job, ranks, checkpoints.string(), flags);
    if (started.size() != static_cast<size_t>(ranks)) return {};
    for (auto& rank : started) {
      absl::StatusOr<int> code = rank->WaitFor(kWait);
      if (!code.ok() || *code != 0) {
        ADD_FAILURE() << rank->Stderr();
        return {};
      }
    }
    return Losses(Events(started[0]->Stdout(), dir_ / absl::StrCat("events-", events_++)));
  }
  int events_ = 0;
};

// Every optimizer's sharded state (Muon's momentum beside its AdamW part's moments, SOAP's
// eigenbases, Shampoo's Kronecker factors, the 8- and 4-bit quantized states) survives a
// checkpoint: 2 ranks stopped after 6 steps and resumed continue exactly as 2 ranks that never
// stopped. The same ranks sum the same gradients in the same order, so the losses are equal to
// the bit. (A different rank count changes fp32 summation order, which SOAP's eigenbases of
// near-degenerate statistics amplify past any useful bound: the 2-to-3 resharding above is
// checked with AdamW, and the owners' hand-over is the same for every optimizer.)
TEST_P(ShardedStateTest, ShardsOfEveryOptimizerResumeAsAnUnbrokenRun) {
  const std::string extra =
      absl::StrCat(R"(, "min_lr_ratio": 1, "optimizer": ")", GetParam(), R"(")", MultiRankExtra(2));
  const std::map<int64_t, double> expected =
      LossesOfRanks(Job(12, extra, /*batch_size=*/12), 2, dir_ / "unbroken");
  ASSERT_EQ(expected.size(), 12u);
  const fs::path checkpoints = dir_ / "checkpoints";
  ASSERT_EQ(LossesOfRanks(Job(6, extra, /*batch_size=*/12), 2, checkpoints).size(), 6u);
  const std::map<int64_t, double> resumed =
      LossesOfRanks(Job(12, extra, /*batch_size=*/12), 2, checkpoints, {"--allow-config-change"});
  ASSERT_EQ(resumed.size(), 6u);
  for (const auto& [step, loss] : resumed) EXPECT_EQ(loss, expected.at(step)) << "step " << step;
}

INSTANTIATE_TEST_SUITE_P(Optimizers, ShardedStateTest,
                         testing::Values("adamw8bit", "muon", "soap", "shampoo", "soap4bit"));

}  // namespace
}  // namespace ablate
