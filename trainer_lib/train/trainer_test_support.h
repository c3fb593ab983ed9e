// What the trainer's tests share: a sink that keeps every event, a tiny CPU job, a folder of
// the test process's own, and the steps a run checkpointed.
#ifndef ABLATE_TRAINER_LIB_TRAIN_TRAINER_TEST_SUPPORT_H_
#define ABLATE_TRAINER_LIB_TRAIN_TRAINER_TEST_SUPPORT_H_

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/train_config.h"
#include "trainer_lib/train/event_sink.h"

namespace ablate::train::trainer_test {

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

inline v1::JobSpec TinyJob(uint32_t steps, const std::string& checkpoint_dir = "") {
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
inline std::filesystem::path FreshDir(const std::string& name) {
  return std::filesystem::path(testing::TempDir()) / absl::StrCat(name, "-", ::getpid());
}

inline std::vector<int64_t> SavedSteps(const MemorySink& sink) {
  std::vector<int64_t> saved;
  for (const auto& e : sink.events) {
    if (e.has_checkpoint()) saved.push_back(e.checkpoint().step());
  }
  return saved;
}

}  // namespace ablate::train::trainer_test

#endif  // ABLATE_TRAINER_LIB_TRAIN_TRAINER_TEST_SUPPORT_H_
