#include "trainer_lib/train/trainer.h"

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/model_math.h"
#include "common/train_config.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;

// Keeps every event; `on_event` may act on one as it arrives (to ask for a stop).
class MemorySink : public EventSink {
 public:
  absl::Status Send(const v1::TrainerEvent& event) override {
    events.push_back(event);
    if (on_event) on_event(event);
    return absl::OkStatus();
  }

  // The values of one metric, in step order.
  std::vector<double> Values(const std::string& name) const {
    std::vector<double> values;
    for (const v1::TrainerEvent& e : events) {
      for (const v1::MetricPoint& p : e.metrics().points()) {
        if (p.name() == name) values.push_back(p.value());
      }
    }
    return values;
  }

  std::vector<v1::TrainerEvent> events;
  std::function<void(const v1::TrainerEvent&)> on_event;
};

v1::JobSpec TinyJob(uint32_t steps, const std::string& checkpoint_dir = "") {
  v1::JobSpec job;
  job.set_job_id("trainer-test");
  job.set_checkpoint_dir(checkpoint_dir);
  v1::TrainConfig* c = job.mutable_config();
  *c = DefaultTrainConfig();
  c->set_model("tiny");
  c->set_steps(steps);
  c->set_batch_size(8);
  c->set_context_length(64);
  c->set_learning_rate(1e-2);
  c->set_warmup_steps(5);
  c->set_log_every(5);
  c->set_eval_batches(2);
  c->set_cpu_threads(1);
  EXPECT_TRUE(ValidateTrainConfig(*c).ok());
  return job;
}

// A folder of this test process alone, so that concurrent test runs never share one.
fs::path FreshDir(const std::string& name) {
  return fs::path(testing::TempDir()) / absl::StrCat(name, "-", ::getpid());
}

// Removes a checkpoint folder laid out as checkpoint.h says: step-N folders of one file each.
// Not std::filesystem::remove_all, for the reason checkpoint.cc gives.
void RemoveCheckpoints(const fs::path& dir) {
  std::vector<fs::path> steps;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) steps.push_back(entry);
  for (const fs::path& step : steps) {
    fs::remove(step / "checkpoint.pt");
    fs::remove(step);
  }
  fs::remove(dir);
}

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

TEST(TrainerTest, ResumesFromTheLatestCheckpoint) {
  const fs::path dir = FreshDir("trainer_test_resume");
  v1::JobSpec first = TinyJob(20, dir.string());
  first.mutable_config()->set_checkpoint_every(10);
  MemorySink sink1;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(first, sink1, stop).ok());
  std::vector<int64_t> saved;
  for (const auto& e : sink1.events) {
    if (e.has_checkpoint()) saved.push_back(e.checkpoint().step());
  }
  EXPECT_EQ(saved, (std::vector<int64_t>{10, 20}));
  EXPECT_TRUE(fs::exists(dir / "step-00000020" / "checkpoint.pt"));
  EXPECT_FALSE(fs::exists(dir / "step-00000010"));  // only the latest is kept

  MemorySink sink2;
  ASSERT_TRUE(train::Run(TinyJob(40, dir.string()), sink2, stop).ok());
  EXPECT_EQ(sink2.events.front().started().resumed_from_step(), 20);
  EXPECT_TRUE(sink2.events.back().finished().ok());
  EXPECT_EQ(sink2.events.back().finished().steps(), 40);
  EXPECT_EQ(sink2.Values("train/loss").size(), 4u);  // steps 25, 30, 35, 40
  RemoveCheckpoints(dir);
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
  RemoveCheckpoints(dir);
}

TEST(TrainerTest, PeriodicEvaluationAndBf16) {
  v1::JobSpec job = TinyJob(10);
  job.mutable_config()->set_eval_every(5);
  job.mutable_config()->set_precision("bf16");
  MemorySink sink;
  StopRequest stop{0};
  ASSERT_TRUE(train::Run(job, sink, stop).ok());
  const std::vector<double> eval = sink.Values("eval/loss");
  ASSERT_EQ(eval.size(), 2u);  // step 5 and the end
  EXPECT_TRUE(std::isfinite(eval[1]));
}

TEST(TrainerTest, GpuJobRunsOnCudaOrFailsClearlyWithout) {
  v1::JobSpec job = TinyJob(30);
  job.mutable_config()->set_gpus(1);
  job.mutable_config()->set_precision("bf16");
  MemorySink sink;
  StopRequest stop{0};
  absl::Status status = train::Run(job, sink, stop);
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    EXPECT_EQ(sink.events.back().finished().error(),
              "gpus: 1 asked for, but CUDA is not available here");
    GTEST_SKIP() << "no CUDA device";
  }
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(sink.events.front().started().device(), "cuda:0");
  const std::vector<double> loss = sink.Values("train/loss");
  EXPECT_LT(loss.back(), 0.8 * loss.front());
}

TEST(TrainerTest, UnbuiltAttentionFailsTheJobWithItsReason) {
  v1::JobSpec job = TinyJob(10);
  job.mutable_config()->set_attention("nsa");
  MemorySink sink;
  StopRequest stop{0};
  absl::Status status = train::Run(job, sink, stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  ASSERT_EQ(sink.events.size(), 1u);  // never started
  EXPECT_FALSE(sink.events[0].finished().ok());
  EXPECT_EQ(sink.events[0].finished().error(), "attention nsa is not implemented yet");
}

}  // namespace
}  // namespace ablate::train
