#include "trainer_lib/train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/model_math.h"
#include "common/remove_tree.h"
#include "common/train_config.h"
#include "trainer_lib/train/run_status.h"
#include "trainer_lib/train/trainer_test_support.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;
using trainer_test::FreshDir;
using trainer_test::MemorySink;
using trainer_test::SavedSteps;
using trainer_test::TinyJob;

TEST(TrainerTest, LossFallsOnTheBuiltinCorpus) {
  MemorySink sink;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(TinyJob(60), sink, stop).ok());

  ASSERT_GE(sink.events.size(), 3u);
  const v1::TrainerStarted& started = sink.events.front().started();
  EXPECT_EQ(started.parameters(), ParameterCount(*ModelByName("tiny")));
  EXPECT_EQ(started.device(), "cpu");
  EXPECT_EQ(started.resumed_from_step(), 0);
  EXPECT_EQ(started.total_steps(), 60);
  EXPECT_EQ(started.provenance().optimizer_state_bytes_per_parameter(), 8.0);  // AdamW, fp32

  const std::vector<double> loss = sink.Values("train/loss");
  ASSERT_EQ(loss.size(), 12u);  // every 5 steps
  EXPECT_LT(loss.back(), 0.8 * loss.front());
  EXPECT_EQ(sink.Values("train/lr").size(), 12u);
  EXPECT_EQ(sink.Values("train/tokens_per_sec").size(), 12u);
  EXPECT_EQ(sink.Values("train/grad_norm").size(), 12u);
  const std::vector<double> eval = sink.Values("eval/loss");
  ASSERT_EQ(eval.size(), 1u);  // eval_every 0: at the end only
  EXPECT_TRUE(std::isfinite(eval[0]));
  EXPECT_NEAR(sink.Values("eval/perplexity")[0], std::exp(eval[0]), 1e-9);

  const v1::TrainerFinished& finished = sink.events.back().finished();
  EXPECT_TRUE(finished.ok());
  EXPECT_EQ(finished.steps(), 60);
  EXPECT_DOUBLE_EQ(finished.final_eval_loss(), eval[0]);
}

TEST(TrainerTest, ResumesFromTheLatestCheckpointKeepingTheNewestTwo) {
  const fs::path dir = FreshDir("trainer_test_resume");
  v1::JobSpec first = TinyJob(30, dir.string());
  first.mutable_config()->set_checkpoint_every(10);
  MemorySink sink1;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(first, sink1, stop).ok());
  EXPECT_EQ(SavedSteps(sink1), (std::vector<int64_t>{10, 20, 30}));
  EXPECT_TRUE(fs::exists(dir / "step-00000030" / "MANIFEST"));
  EXPECT_TRUE(fs::exists(dir / "step-00000020" / "model.pt"));
  EXPECT_FALSE(fs::exists(dir / "step-00000010"));  // keep_checkpoints 2

  // A longer run is another configuration: refused, naming the field, unless allowed.
  MemorySink refused;
  absl::Status status = train::Run(TinyJob(50, dir.string()), refused, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.events.back().finished().error(), "steps 30 -> 50"))
      << refused.events.back().finished().error();
  EXPECT_TRUE(IsPermanent(status));

  v1::JobSpec longer = TinyJob(50, dir.string());
  longer.mutable_config()->set_allow_config_change(true);
  MemorySink sink2;
  ASSERT_TRUE(train::Run(longer, sink2, stop).ok());
  EXPECT_EQ(sink2.events.front().started().resumed_from_step(), 30);
  EXPECT_EQ(sink2.events.back().finished().steps(), 50);
  EXPECT_EQ(sink2.Values("train/loss").size(), 4u);  // steps 35, 40, 45, 50
  RemoveTree(dir);
}

TEST(TrainerTest, AnotherModelIsRefusedByNameNotByLibTorch) {
  const fs::path dir = FreshDir("trainer_test_model");
  MemorySink sink1;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(TinyJob(5, dir.string()), sink1, stop).ok());
  v1::JobSpec other = TinyJob(5, dir.string());
  other.mutable_config()->set_model("mini");
  other.mutable_config()->set_allow_config_change(true);  // never enough for a model
  MemorySink sink2;
  absl::Status status = train::Run(other, sink2, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  const std::string error = sink2.events.back().finished().error();
  EXPECT_TRUE(absl::StrContains(error, "holds another model")) << error;
  EXPECT_TRUE(absl::StrContains(error, "hidden_size")) << error;
  RemoveTree(dir);
}

TEST(TrainerTest, CorruptNewestCheckpointResumesFromThePreviousOne) {
  MemorySink straight;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(TinyJob(30), straight, stop).ok());

  const fs::path dir = FreshDir("trainer_test_corrupt");
  v1::JobSpec job = TinyJob(30, dir.string());
  job.mutable_config()->set_checkpoint_every(10);
  MemorySink first;
  stop.store(0);
  first.on_event = [&](const v1::TrainerEvent& e) {
    if (e.has_checkpoint() && e.checkpoint().step() == 20) stop.store(SIGTERM);
  };
  EXPECT_EQ(train::Run(job, first, stop).code(), absl::StatusCode::kCancelled);
  // Truncate the newest: as a disk that lost the file's tail.
  fs::resize_file(dir / "step-00000020" / "model.pt", 1000);

  MemorySink resumed;
  StopRequest never{0};
  ASSERT_TRUE(train::Run(job, resumed, never).ok());
  EXPECT_EQ(resumed.events.front().started().resumed_from_step(), 10);
  std::vector<std::string> warnings;
  for (const auto& e : resumed.events) {
    if (e.has_log()) warnings.push_back(e.log().text());
  }
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_TRUE(absl::StrContains(warnings[0], "step-00000020 is unreadable")) << warnings[0];
  EXPECT_TRUE(absl::StrContains(warnings[1], "resuming from the previous checkpoint"))
      << warnings[1];
  EXPECT_TRUE(fs::exists(dir / "step-00000020.corrupt" / "model.pt"));  // kept for inspection
  EXPECT_EQ(resumed.Values("train/loss").back(), straight.Values("train/loss").back());
  EXPECT_EQ(resumed.events.back().finished().final_eval_loss(),
            straight.events.back().finished().final_eval_loss());
  RemoveTree(dir);
}

TEST(TrainerTest, StoppedRunResumesExactlyAsIfUninterrupted) {
  MemorySink straight;
  StopRequest never{0};
  ASSERT_TRUE(train::Run(TinyJob(30), straight, never).ok());

  const fs::path dir = FreshDir("trainer_test_stop");
  MemorySink stopped;
  StopRequest stop{0};
  stopped.on_event = [&](const v1::TrainerEvent& e) {
    if (e.has_metrics() && e.metrics().points(0).step() == 15) stop.store(SIGTERM);
  };
  absl::Status status = train::Run(TinyJob(30, dir.string()), stopped, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  const v1::TrainerFinished& finished = stopped.events.back().finished();
  EXPECT_FALSE(finished.ok());
  EXPECT_EQ(finished.error(), "terminated by SIGTERM at step 15");
  EXPECT_TRUE(fs::exists(dir / "step-00000015"));

  MemorySink resumed;
  ASSERT_TRUE(train::Run(TinyJob(30, dir.string()), resumed, never).ok());
  EXPECT_EQ(resumed.events.front().started().resumed_from_step(), 15);
  EXPECT_EQ(resumed.Values("train/loss").back(), straight.Values("train/loss").back());
  EXPECT_EQ(resumed.events.back().finished().final_eval_loss(),
            straight.events.back().finished().final_eval_loss());
  RemoveTree(dir);
}

TEST(TrainerTest, PeriodicEvaluationAndBf16) {
  v1::JobSpec job = TinyJob(10);
  job.mutable_config()->set_eval_every(5);
  MemorySink fp32;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(job, fp32, stop).ok());
  job.mutable_config()->set_precision("bf16");
  MemorySink bf16;
  ASSERT_TRUE(train::Run(job, bf16, stop).ok());
  const std::vector<double> eval = bf16.Values("eval/loss");
  ASSERT_EQ(eval.size(), 2u);  // step 5 and the end
  EXPECT_TRUE(std::isfinite(eval[1]));
  // The same run in bf16 computes other numbers: were the setting ignored, they would be equal.
  EXPECT_GT(std::abs(eval[1] - fp32.Values("eval/loss")[1]), 1e-5);
  EXPECT_LT(std::abs(eval[1] - fp32.Values("eval/loss")[1]), 0.1);
}

// Today's regression: beta2 1 makes AdamW divide by zero, every loss after the first update is
// NaN, and the job used to end SUCCEEDED.
TEST(TrainerTest, NonFiniteLossFailsTheJobNamingTheStep) {
  v1::JobSpec job = TinyJob(20);
  (*job.mutable_config()->mutable_optimizer_args())["beta2"] = 1.0;
  MemorySink sink;
  StopRequest stop{0};
  absl::Status status = train::Run(job, sink, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsPermanent(status));
  const v1::TrainerFinished& finished = sink.events.back().finished();
  EXPECT_FALSE(finished.ok());
  EXPECT_EQ(finished.error(), "step 2: non-finite loss (nan)");
  EXPECT_TRUE(sink.Values("train/loss").empty());  // no NaN was ever reported as a loss
  EXPECT_TRUE(sink.Values("eval/loss").empty());

  // Step 1's update already made the weights NaN: no checkpoint may hold them.
  const fs::path dir = FreshDir("trainer_test_nan");
  job.set_checkpoint_dir(dir.string());
  job.mutable_config()->set_checkpoint_every(1);
  MemorySink saving;
  status = train::Run(job, saving, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(saving.events.back().finished().error(), "step 1: non-finite weights after the update");
  EXPECT_TRUE(SavedSteps(saving).empty());
  EXPECT_FALSE(fs::exists(dir / "step-00000001"));
  fs::remove(dir);
}

// A learning rate of 1 with no clipping throws the tiny model's loss far above its first
// evaluation: the watch stops the run at the evaluation that makes the count, as a permanent
// failure.
TEST(TrainerTest, ADivergedRunStopsWithItsReason) {
  v1::JobSpec job = TinyJob(40);
  v1::TrainConfig& c = *job.mutable_config();
  c.set_learning_rate(1.0);
  c.set_warmup_steps(0);
  c.set_grad_clip(0);
  c.set_eval_every(2);
  c.set_divergence_factor(1.5);
  c.set_divergence_evals(2);
  ASSERT_TRUE(ValidateTrainConfig(c).ok());
  MemorySink sink;
  StopRequest stop{0};
  const absl::Status status = train::Run(job, sink, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(IsPermanent(status));
  const std::vector<double> eval = sink.Values("eval/loss");
  ASSERT_GE(eval.size(), 3u);
  const double minimum = *std::min_element(eval.begin(), eval.end() - 2);
  EXPECT_GT(eval[eval.size() - 1], 1.5 * minimum);  // the last two were both above
  EXPECT_GT(eval[eval.size() - 2], 1.5 * minimum);
  const v1::TrainerFinished& finished = sink.events.back().finished();
  EXPECT_FALSE(finished.ok());
  EXPECT_TRUE(absl::StrContains(finished.error(), "diverged: eval/loss")) << finished.error();
  EXPECT_TRUE(absl::StrContains(finished.error(), "for 2 evaluations")) << finished.error();
  EXPECT_LT(finished.steps(), 40);  // stopped early

  // The same run without the watch goes to its end.
  c.set_divergence_factor(0);
  MemorySink unwatched;
  EXPECT_TRUE(train::Run(job, unwatched, stop).ok());
}

TEST(TrainerTest, SkipModeCountsSkippedStepsAndStillFailsANonFiniteModel) {
  v1::JobSpec job = TinyJob(10);
  (*job.mutable_config()->mutable_optimizer_args())["beta2"] = 1.0;
  job.mutable_config()->set_nonfinite("skip");
  MemorySink sink;
  StopRequest stop{0};
  absl::Status status = train::Run(job, sink, stop);
  // Steps 2..10 see NaN weights and are skipped; the NaN model then fails its evaluation.
  EXPECT_EQ(sink.Values("train/skipped_steps"), (std::vector<double>{4, 9}));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sink.events.back().finished().error(), "step 10: non-finite evaluation loss (nan)");
}

TEST(TrainerTest, StopRequestIsHonouredDuringEvaluation) {
  const fs::path dir = FreshDir("trainer_test_stop_eval");
  v1::JobSpec job = TinyJob(20, dir.string());
  job.mutable_config()->set_eval_every(10);
  job.mutable_config()->set_eval_batches(100000);  // hours, were the stop not seen inside it
  MemorySink sink;
  StopRequest stop{0};
  sink.on_event = [&](const v1::TrainerEvent& e) {
    if (e.has_metrics() && e.metrics().points(0).step() == 10) stop.store(SIGTERM);
  };
  absl::Status status = train::Run(job, sink, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(sink.events.back().finished().error(), "terminated by SIGTERM at step 10");
  EXPECT_TRUE(sink.Values("eval/loss").empty());
  EXPECT_EQ(SavedSteps(sink), (std::vector<int64_t>{10}));
  RemoveTree(dir);
}

// A disk that refuses to grow a file: a file-size limit, with SIGXFSZ ignored so that write
// returns EFBIG as a full quota would (a full disk, ENOSPC, is exercised through the binary in
// tests/trainer_process_test.cc). The run must fail with the path, permanently, and leave no
// partial checkpoint behind.
TEST(TrainerTest, DiskThatRefusesWritesFailsTheJobNamingThePath) {
  const fs::path dir = FreshDir("trainer_test_full");
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;  // the tiny model's weights take ~0.5 MB
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  MemorySink sink;
  StopRequest stop{0};
  absl::Status status = train::Run(TinyJob(5, dir.string()), sink, stop);
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, SIG_DFL);

  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsPermanent(status));
  const std::string error = sink.events.back().finished().error();
  EXPECT_EQ(error, absl::StrCat("step 5: checkpoint: write ", (dir / ".tmp-step-00000005").string(),
                                "/model.pt: file too large"));
  EXPECT_TRUE(fs::is_empty(dir));  // the partial folder is gone
  RemoveTree(dir);
}

TEST(TrainerTest, ProvenanceRecordsCodeConfigSeedsAndData) {
  MemorySink sink;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(TinyJob(5), sink, stop).ok());
  const v1::Provenance& p = sink.events.front().started().provenance();
  EXPECT_TRUE(absl::StartsWith(p.code_version(), "0.1.0+")) << p.code_version();
  EXPECT_TRUE(absl::StrContains(p.config_json(), "\"model\":\"tiny\"")) << p.config_json();
  EXPECT_TRUE(absl::StrContains(p.config_json(), "\"lr_schedule\":\"cosine\""));
  EXPECT_EQ(p.seed(), 1u);
  EXPECT_EQ(p.data_seed(), 1u);
  EXPECT_EQ(p.data_sha256().size(), 64u);
  EXPECT_EQ(p.device(), "cpu");
  MemorySink again;
  ASSERT_TRUE(train::Run(TinyJob(5), again, stop).ok());
  EXPECT_EQ(again.events.front().started().provenance().data_sha256(), p.data_sha256());
}

TEST(TrainerTest, GpuJobRunsOnCudaOrFailsClearlyWithout) {
  v1::JobSpec job = TinyJob(30);
  job.mutable_config()->set_gpus(1);
  job.mutable_config()->set_precision("bf16");
  MemorySink sink;
  StopRequest stop{0};
  absl::Status status = train::Run(job, sink, stop);
  if (status.code() == absl::StatusCode::kUnavailable) {
    EXPECT_FALSE(IsPermanent(status));  // another host may have a GPU
    EXPECT_EQ(sink.events.back().finished().error(),
              "gpus: 1 asked for, but CUDA is not available here");
    GTEST_SKIP() << "no CUDA device";
  }
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(sink.events.front().started().device(), "cuda:0");
  const std::vector<double> loss = sink.Values("train/loss");
  EXPECT_LT(loss.back(), 0.8 * loss.front());
}

class NsaTrainerTest : public testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(FlaAndPaper, NsaTrainerTest, testing::Bool());
TEST_P(NsaTrainerTest, NsaTrainsWithItsArgumentsAndResumesExactly) {
  auto nsa_job = [this](const std::string& dir) {
    v1::JobSpec job = TinyJob(12, dir);
    v1::TrainConfig* c = job.mutable_config();
    c->set_attention("nsa");
    const std::string paper = GetParam() ? "true" : "false";
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"block_size", "8"}, {"selected_blocks", "3"}, {"window", "16"},
             {"learned_compression", paper}, {"paper_selection", paper},
             {"compression_kernel", "4"}, {"compression_stride", "2"}}) {
      EXPECT_TRUE(SetTrainField(*c, absl::StrCat("attention_args.", key), value).ok());
    }
    EXPECT_TRUE(ValidateTrainConfig(*c).ok());
    return job;
  };
  MemorySink straight;
  StopRequest never{0};
  ASSERT_TRUE(train::Run(nsa_job(""), straight, never).ok());
  const std::vector<double> loss = straight.Values("train/loss");
  ASSERT_EQ(loss.size(), 3u);  // steps 5, 10 and the last
  EXPECT_LT(loss.back(), loss.front());
  // The gate projections are the model's parameters: more than the dense model's.
  EXPECT_GT(straight.events.front().started().parameters(),
            ParameterCount(*ModelByName("tiny")));

  // Stopped at step 5 and resumed from its checkpoint (gate and compression weights included),
  // it ends exactly where the straight run did.
  const fs::path dir = FreshDir(GetParam() ? "trainer_test_nsa_paper" : "trainer_test_nsa");
  MemorySink stopped;
  StopRequest stop{0};
  stopped.on_event = [&](const v1::TrainerEvent& e) {
    if (e.has_metrics() && e.metrics().points(0).step() == 5) stop.store(SIGTERM);
  };
  EXPECT_EQ(train::Run(nsa_job(dir.string()), stopped, stop).code(),
            absl::StatusCode::kCancelled);
  // Another window is another configuration: refused, naming the argument.
  v1::JobSpec wider = nsa_job(dir.string());
  (*wider.mutable_config()->mutable_attention_args())["window"] = 32;
  MemorySink refused;
  EXPECT_EQ(train::Run(wider, refused, never).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.events.back().finished().error(),
                                "attention_args.window 16 -> 32"))
      << refused.events.back().finished().error();
  MemorySink resumed;
  ASSERT_TRUE(train::Run(nsa_job(dir.string()), resumed, never).ok());
  EXPECT_EQ(resumed.events.front().started().resumed_from_step(), 5);
  EXPECT_EQ(resumed.events.back().finished().final_eval_loss(),
            straight.events.back().finished().final_eval_loss());
  RemoveTree(dir);
}

}  // namespace
}  // namespace ablate::train
