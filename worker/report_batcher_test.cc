#include "worker/report_batcher.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A metric event of `attempt_id` with one train/loss point per step in [first, last].
v1::WorkerMessage Metrics(uint64_t attempt_id, int64_t first, int64_t last) {
  v1::WorkerMessage message;
  message.mutable_job_event()->set_attempt_id(attempt_id);
  auto* batch = message.mutable_job_event()->mutable_event()->mutable_metrics();
  for (int64_t step = first; step <= last; ++step) {
    v1::MetricPoint* point = batch->add_points();
    point->set_name("train/loss");
    point->set_step(step);
    point->set_value(1.0 / static_cast<double>(step));
  }
  return message;
}

v1::WorkerMessage Log(uint64_t attempt_id) {
  v1::WorkerMessage message;
  message.mutable_job_event()->set_attempt_id(attempt_id);
  message.mutable_job_event()->mutable_event()->mutable_log()->set_text("checkpoint");
  return message;
}

v1::WorkerMessage Ended(uint64_t attempt_id) {
  v1::WorkerMessage message;
  message.mutable_attempt_ended()->set_attempt_id(attempt_id);
  return message;
}

// Each report as "<attempt>:<kind>", a metrics report as "<attempt>:<first step>-<last step>",
// its steps checked to be consecutive.
std::vector<std::string> Describe(const std::vector<v1::WorkerMessage>& reports) {
  std::vector<std::string> out;
  for (const v1::WorkerMessage& report : reports) {
    if (report.has_attempt_ended()) {
      out.push_back(absl::StrCat(report.attempt_ended().attempt_id(), ":ended"));
      continue;
    }
    const v1::JobEvent& event = report.job_event();
    if (!event.event().has_metrics()) {
      out.push_back(absl::StrCat(event.attempt_id(), ":log"));
      continue;
    }
    const auto& points = event.event().metrics().points();
    for (int i = 1; i < points.size(); ++i) {
      EXPECT_EQ(points[i].step(), points[i - 1].step() + 1) << "points out of order";
      EXPECT_EQ(points[i].name(), "train/loss");
    }
    out.push_back(absl::StrCat(event.attempt_id(), ":", points[0].step(), "-",
                               points[points.size() - 1].step()));
  }
  return out;
}

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

TEST(ReportBatcherTest, MetricEventsOfAnAttemptBecomeOneReportWhenDue) {
  ReportBatcher batcher({.max_points = 4096, .max_delay = absl::Milliseconds(100)});
  for (int64_t step = 1; step <= 300; step += 4) {
    EXPECT_THAT(batcher.Add(Metrics(7, step, step + 3), kStart + absl::Milliseconds(step / 4)),
                IsEmpty());
  }
  EXPECT_EQ(batcher.open(), 1u);
  // Due 100 ms after its first points, not after its last.
  EXPECT_EQ(batcher.NextDue(), kStart + absl::Milliseconds(100));
  EXPECT_THAT(batcher.TakeDue(kStart + absl::Milliseconds(99)), IsEmpty());
  const std::vector<v1::WorkerMessage> due = batcher.TakeDue(kStart + absl::Milliseconds(100));
  EXPECT_THAT(Describe(due), ElementsAre("7:1-300"));
  EXPECT_EQ(due[0].job_event().event().metrics().points_size(), 300);
  EXPECT_EQ(batcher.open(), 0u);
  EXPECT_EQ(batcher.NextDue(), absl::InfiniteFuture());
}

TEST(ReportBatcherTest, AReportLeavesBeforeItWouldPassThePointBound) {
  ReportBatcher batcher({.max_points = 10, .max_delay = absl::Seconds(1)});
  EXPECT_THAT(batcher.Add(Metrics(1, 1, 4), kStart), IsEmpty());
  EXPECT_THAT(batcher.Add(Metrics(1, 5, 8), kStart), IsEmpty());
  // 8 + 4 > 10: the 8 leave, the 4 open the next batch.
  EXPECT_THAT(Describe(batcher.Add(Metrics(1, 9, 12), kStart)), ElementsAre("1:1-8"));
  // An event past the bound on its own leaves alone, after the open batch.
  EXPECT_THAT(Describe(batcher.Add(Metrics(1, 13, 40), kStart)), ElementsAre("1:9-12", "1:13-40"));
  EXPECT_EQ(batcher.open(), 0u);
  // Exactly the bound leaves at once.
  EXPECT_THAT(Describe(batcher.Add(Metrics(1, 41, 50), kStart)), ElementsAre("1:41-50"));
}

TEST(ReportBatcherTest, OtherReportsOfTheAttemptFollowItsPointsAndOthersWaitForNothing) {
  ReportBatcher batcher({.max_points = 4096, .max_delay = absl::Seconds(1)});
  EXPECT_THAT(batcher.Add(Metrics(1, 1, 4), kStart), IsEmpty());
  EXPECT_THAT(batcher.Add(Metrics(2, 1, 4), kStart), IsEmpty());
  // Another attempt's log passes at once and leaves attempt 1's points waiting.
  EXPECT_THAT(Describe(batcher.Add(Log(2), kStart)), ElementsAre("2:1-4", "2:log"));
  EXPECT_EQ(batcher.open(), 1u);
  EXPECT_THAT(batcher.Add(Metrics(1, 5, 8), kStart), IsEmpty());
  // The attempt's end comes after every point it produced.
  EXPECT_THAT(Describe(batcher.Add(Ended(1), kStart)), ElementsAre("1:1-8", "1:ended"));
  EXPECT_THAT(Describe(batcher.Add(Ended(3), kStart)), ElementsAre("3:ended"));
  EXPECT_EQ(batcher.open(), 0u);
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat();
  EXPECT_EQ(batcher.Add(heartbeat, kStart).size(), 1u);
}

}  // namespace
}  // namespace ablate::worker
