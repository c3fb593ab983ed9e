#include "trainer_lib/train/event_sink.h"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ablate::train {
namespace {

void AddPoint(v1::MetricBatch& batch, const std::string& name, double value) {
  v1::MetricPoint* point = batch.add_points();
  point->set_name(name);
  point->set_step(40);
  point->set_value(value);
}

TEST(ConsoleEventSinkTest, PrintsAStepLineWithMemoryWhereTheDeviceReportsIt) {
  std::ostringstream out;
  ConsoleEventSink sink(out);
  v1::TrainerEvent started;
  started.mutable_started()->set_total_steps(200);
  started.mutable_started()->set_parameters(1000);
  started.mutable_started()->set_device("cuda:0");
  ASSERT_TRUE(sink.Send(started).ok());

  v1::TrainerEvent cpu;
  AddPoint(*cpu.mutable_metrics(), "train/loss", 2.9134);
  AddPoint(*cpu.mutable_metrics(), "train/lr", 3e-3);
  AddPoint(*cpu.mutable_metrics(), "train/tokens_per_sec", 51234.4);
  ASSERT_TRUE(sink.Send(cpu).ok());
  v1::TrainerEvent gpu = cpu;
  AddPoint(*gpu.mutable_metrics(), "memory/peak_allocated_bytes", 12.5 * (1 << 30));
  AddPoint(*gpu.mutable_metrics(), "memory/planned_bytes", 13.0 * (1 << 30));
  ASSERT_TRUE(sink.Send(gpu).ok());
  EXPECT_EQ(out.str(),
            "training 1000 parameters on cuda:0 for 200 steps\n"
            "step 40/200 loss 2.913 lr 3.0e-03 tok/s 51234\n"
            "step 40/200 loss 2.913 lr 3.0e-03 tok/s 51234 peak 12.50 GiB planned 13.00 GiB\n");
}

// Progress comes by the clock, counted from the last event of any kind.
TEST(ProgressEventSinkTest, SendsProgressOnlyOnceItIsDue) {
  struct Counting : EventSink {
    absl::Status Send(const v1::TrainerEvent& event) override {
      steps.push_back(event.has_progress() ? event.progress().step() : -1);
      return absl::OkStatus();
    }
    std::vector<int64_t> steps;  // -1: not a progress event
  } counting;
  ProgressEventSink every(counting, absl::ZeroDuration());
  ASSERT_TRUE(every.Progress(1).ok());
  ASSERT_TRUE(every.Send(v1::TrainerEvent()).ok());
  ASSERT_TRUE(every.Progress(2).ok());
  EXPECT_EQ(counting.steps, (std::vector<int64_t>{1, -1, 2}));

  counting.steps.clear();
  ProgressEventSink hourly(counting, absl::Hours(1));
  ASSERT_TRUE(hourly.Progress(1).ok());  // an hour has not passed since its creation
  ASSERT_TRUE(hourly.Send(v1::TrainerEvent()).ok());
  EXPECT_EQ(counting.steps, (std::vector<int64_t>{-1}));
}

}  // namespace
}  // namespace ablate::train
