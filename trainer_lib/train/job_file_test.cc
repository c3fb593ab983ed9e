#include "trainer_lib/train/job_file.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/train_config.h"

namespace ablate::train {
namespace {

TEST(JobFileTest, JobSpecFillsMissingSettingsFromDefaults) {
  absl::StatusOr<v1::JobSpec> job = ParseJobJson(R"({
    "job_id": "j1",
    "checkpoint_dir": "runs/j1",
    "config": {"model": "mini", "steps": 50, "learningRate": 0.01}
  })");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->job_id(), "j1");
  EXPECT_EQ(job->checkpoint_dir(), "runs/j1");
  EXPECT_EQ(job->config().model(), "mini");
  EXPECT_EQ(job->config().steps(), 50u);
  EXPECT_DOUBLE_EQ(job->config().learning_rate(), 0.01);
  const v1::TrainConfig defaults = DefaultTrainConfig();
  EXPECT_EQ(job->config().batch_size(), defaults.batch_size());
  EXPECT_EQ(job->config().dataset(), defaults.dataset());
}

TEST(JobFileTest, ZeroValuesWrittenOutAreKept) {
  absl::StatusOr<v1::JobSpec> job =
      ParseJobJson(R"({"config": {"weight_decay": 0, "grad_clip": 0, "warmup_steps": 0}})");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->config().weight_decay(), 0.0);
  EXPECT_EQ(job->config().grad_clip(), 0.0);
  EXPECT_EQ(job->config().warmup_steps(), 0u);
}

TEST(JobFileTest, ResolvedConfigIsTakenAsWritten) {
  // What a worker writes: the coordinator's resolved config, zero values left out.
  absl::StatusOr<v1::JobSpec> job = ParseJobJson(R"({
    "config_hash": "0123456789abcdef",
    "config": {"model": "tiny", "attention": "dense", "optimizer": "adamw",
               "context_length": 64, "learning_rate": 0.01, "steps": 20, "batch_size": 4,
               "log_every": 5, "eval_batches": 1, "dataset": "builtin:tiny-corpus",
               "precision": "fp32"}
  })");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->config().weight_decay(), 0.0);
  EXPECT_EQ(job->config().warmup_steps(), 0u);
  EXPECT_EQ(job->config().min_lr_ratio(), 0.0);
}

TEST(JobFileTest, BareTrainConfigIsAJob) {
  absl::StatusOr<v1::JobSpec> job =
      ParseJobJson(R"({"model": "tiny", "steps": 30, "optimizer_args": {"beta2": 0.99}})");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->config().steps(), 30u);
  EXPECT_DOUBLE_EQ(job->config().optimizer_args().at("beta2"), 0.99);
  EXPECT_EQ(job->config().attention(), "dense");
}

TEST(JobFileTest, RejectsUnknownFieldsAndInvalidSettings) {
  EXPECT_EQ(ParseJobJson(R"({"config": {"stepz": 3}})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJobJson("[1, 2]").status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<v1::JobSpec> bad = ParseJobJson(R"({"config": {"model": "huge"}})");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("model"), absl::string_view::npos);
}

// A misspelt field is named, with the field it likely means, in a TrainConfig and in a
// JobSpec's config alike.
TEST(JobFileTest, AMisspeltFieldIsNamedWithTheLikelyOne) {
  EXPECT_EQ(ParseJobJson(R"({"learning_rte": 0.1, "steps": 3})").status().message(),
            "unknown field learning_rte (did you mean learning_rate?) (the fields of "
            "proto/ablate/v1/config.proto's TrainConfig, or of a JobSpec whose config holds them)");
  EXPECT_THAT(std::string(ParseJobJson(R"({"job_idd": "x", "config": {"stepz": 3}})")
                              .status()
                              .message()),
              ::testing::StartsWith("unknown fields job_idd (did you mean job_id?), config.stepz "
                                    "(did you mean steps?) ("));
}

TEST(JobFileTest, MissingFileIsNotFound) {
  absl::StatusOr<v1::JobSpec> job = ReadJobFile("no/such/job.json");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(job.status().message().find("no/such/job.json"), absl::string_view::npos);
}

}  // namespace
}  // namespace ablate::train
