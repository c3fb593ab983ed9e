#include "common/event_pipe.h"

#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace ablate {
namespace {

class PipeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::pipe(fds_), 0); }
  void TearDown() override {
    CloseWriter();
    ::close(fds_[0]);
  }
  void CloseWriter() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  int fds_[2] = {-1, -1};
};

TEST_F(PipeTest, EventsArriveWholeAndInOrderThenCleanEnd) {
  EventWriter writer(fds_[1]);
  v1::TrainerEvent started;
  started.mutable_started()->set_parameters(115072);
  v1::TrainerEvent metrics;
  for (int i = 0; i < 300; ++i) {  // larger than one varint byte of length
    auto* p = metrics.mutable_metrics()->add_points();
    p->set_name("train/loss");
    p->set_step(i);
    p->set_value(5.0 - i * 0.01);
  }
  ASSERT_TRUE(writer.Write(started).ok());
  ASSERT_TRUE(writer.Write(metrics).ok());
  CloseWriter();

  EventReader reader(fds_[0]);
  auto first = reader.Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->started().parameters(), 115072);
  auto second = reader.Next();
  ASSERT_TRUE(second.ok() && second->has_value());
  ASSERT_EQ((*second)->metrics().points_size(), 300);
  EXPECT_EQ((*second)->metrics().points(299).step(), 299);
  auto end = reader.Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST_F(PipeTest, StreamCutInsideAnEventIsDataLoss) {
  v1::TrainerEvent event;
  event.mutable_log()->set_text("hello there");
  std::string body = event.SerializeAsString();
  const char length = static_cast<char>(body.size());
  ASSERT_EQ(::write(fds_[1], &length, 1), 1);
  ASSERT_EQ(::write(fds_[1], body.data(), 3), 3);
  CloseWriter();
  EventReader reader(fds_[0]);
  auto next = reader.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(PipeTest, WriterSeesAGoneReader) {
  ::close(fds_[0]);
  fds_[0] = ::dup(fds_[1]);  // keep TearDown's close harmless
  int other[2];
  ASSERT_EQ(::pipe(other), 0);
  ::close(other[0]);
  ASSERT_NE(signal(SIGPIPE, SIG_IGN), SIG_ERR);
  EventWriter writer(other[1]);
  v1::TrainerEvent event;
  event.mutable_finished()->set_ok(true);
  EXPECT_EQ(writer.Write(event).code(), absl::StatusCode::kUnavailable);
  ::close(other[1]);
}

}  // namespace
}  // namespace ablate
