// The event stream (/api/v1/sweeps/{id}/events) of a whole CoordinatorServer on loopback, read
// with httplib's client as a browser's EventSource reads it; and EventWriter's framing.
#include "coordinator/http/event_stream.h"

#include <httplib.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/http/loopback_coordinator.h"
#include "coordinator/server.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::FakeClock;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::TinySweepSpec;

struct Event {
  std::string id;
  v1::SweepSnapshot snapshot;
};

// Splits a text/event-stream body into its events, and counts its comment lines.
class EventParser {
 public:
  // Feeds bytes as they arrive; returns the events completed by them.
  std::vector<Event> Feed(absl::string_view bytes) {
    buffer_.append(bytes.data(), bytes.size());
    std::vector<Event> events;
    size_t end;
    while ((end = buffer_.find("\n\n")) != std::string::npos) {
      Event event;
      std::string data;
      for (absl::string_view line : absl::StrSplit(buffer_.substr(0, end), '\n')) {
        if (absl::ConsumePrefix(&line, "id: ")) event.id = std::string(line);
        if (absl::ConsumePrefix(&line, "data: ")) data = std::string(line);
        if (absl::ConsumePrefix(&line, ":")) ++comments_;
      }
      buffer_.erase(0, end + 2);
      if (data.empty()) continue;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(data, &event.snapshot).ok()) << data;
      events.push_back(std::move(event));
    }
    return events;
  }
  int comments() const { return comments_; }

 private:
  std::string buffer_;
  int comments_ = 0;
};

class EventStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
        testing::StartLoopbackCoordinator(dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->http_port());
    client_->set_read_timeout(10);
    v1::SubmitSweepRequest request;
    *request.mutable_spec() = TinySweepSpec("events", 2);
    std::string body;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(request, &body).ok());
    httplib::Result submitted = client_->Post("/api/v1/sweeps", body, "application/json");
    ASSERT_TRUE(submitted && submitted->status == 200);
    v1::SubmitSweepResponse response;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(submitted->body, &response).ok());
    sweep_id_ = response.sweep().id();
  }
  void TearDown() override { server_->Shutdown(); }

  void Cancel(const std::string& id) {
    httplib::Client other("127.0.0.1", server_->http_port());
    httplib::Result r =
        other.Post("/api/v1/cancel", absl::StrCat(R"({"id": ")", id, R"("})"), "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
  }

  // Reads the sweep's stream, calling `on_event` with each event and the events so far, until
  // the server ends the stream or `on_event` returns false.
  std::vector<Event> Stream(const httplib::Headers& headers,
                            const std::function<bool(const std::vector<Event>&)>& on_event) {
    std::vector<Event> events;
    EventParser parser;
    httplib::Result result =
        client_->Get(absl::StrCat("/api/v1/sweeps/", sweep_id_, "/events"), headers,
                     [&](const char* data, size_t size) {
                       for (Event& event : parser.Feed(absl::string_view(data, size))) {
                         events.push_back(std::move(event));
                         if (!on_event(events)) return false;
                       }
                       return true;
                     });
    return events;
  }

  TempDir dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::string sweep_id_;
};

TEST_F(EventStreamTest, WholeSweepFirstThenWhatEachCommitChanged) {
  // The scheduler may note on the pending jobs why they wait while the stream is open: a change
  // that commits on its own or in the same group as a cancel, so a delta may also carry a
  // pending job. The deltas that cancel are the ones this test makes.
  auto cancels_a_job = [](const v1::SweepSnapshot& s) {
    return s.delta() && std::any_of(s.jobs().begin(), s.jobs().end(), [](const v1::Job& job) {
             return job.state() == v1::JOB_STATE_CANCELLED;
           });
  };
  std::vector<std::string> job_ids;
  std::vector<Event> cancels;
  std::vector<Event> events = Stream({}, [&](const std::vector<Event>& so_far) {
    const v1::SweepSnapshot& last = so_far.back().snapshot;
    if (so_far.size() == 1) {
      for (const v1::Job& job : last.jobs()) job_ids.push_back(job.spec().job_id());
      Cancel(job_ids.at(0));
    } else if (cancels_a_job(last)) {
      cancels.push_back(so_far.back());
      if (cancels.size() == 1) Cancel(job_ids.at(1));
    }
    return true;  // the server ends the stream once every job has ended
  });
  ASSERT_GE(events.size(), 3u);
  EXPECT_FALSE(events[0].snapshot.delta());
  EXPECT_EQ(events[0].snapshot.jobs_size(), 2);
  EXPECT_EQ(events[0].snapshot.sweep().spec().name(), "events");
  for (size_t i = 1; i < events.size(); ++i) EXPECT_TRUE(events[i].snapshot.delta());
  ASSERT_EQ(cancels.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const v1::SweepSnapshot& delta = cancels[i].snapshot;
    // A delta carries only jobs that changed: the one cancelled now, at most the other one
    // while it still waits (a scheduler note), never the one cancelled before.
    int cancelled_now = 0;
    for (const v1::Job& job : delta.jobs()) {
      if (job.spec().job_id() == job_ids[i]) {
        EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
        ++cancelled_now;
      } else {
        EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING) << job.spec().job_id();
      }
    }
    EXPECT_EQ(cancelled_now, 1);
    EXPECT_LE(delta.jobs_size(), 2 - static_cast<int>(i));
    EXPECT_EQ(delta.sweep().counts().cancelled(), i + 1);
  }
  // Event ids are the store's versions, growing.
  int64_t previous = -1;
  for (const Event& event : events) {
    int64_t id = 0;
    ASSERT_TRUE(absl::SimpleAtoi(event.id, &id)) << event.id;
    EXPECT_EQ(id, event.snapshot.version());
    EXPECT_GT(id, previous);
    previous = id;
  }
}

TEST_F(EventStreamTest, LastEventIdResumesWithOnlyTheChangesMissed) {
  std::string job_to_cancel;
  std::string resume_from;
  // Leave after the whole sweep, then change a job while away.
  Stream({}, [&](const std::vector<Event>& so_far) {
    job_to_cancel = so_far[0].snapshot.jobs(0).spec().job_id();
    resume_from = so_far[0].id;
    return false;
  });
  ASSERT_FALSE(resume_from.empty());
  Cancel(job_to_cancel);

  std::vector<Event> resumed =
      Stream({{"Last-Event-ID", resume_from}}, [](const std::vector<Event>&) { return false; });
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_TRUE(resumed[0].snapshot.delta()) << "resumed with the whole sweep, not the change";
  ASSERT_EQ(resumed[0].snapshot.jobs_size(), 1);
  EXPECT_EQ(resumed[0].snapshot.jobs(0).spec().job_id(), job_to_cancel);
}

TEST_F(EventStreamTest, AnIdTheFeedCannotReplayStartsWithTheWholeSweep) {
  std::vector<Event> events =
      Stream({{"Last-Event-ID", "999999999"}}, [](const std::vector<Event>&) { return false; });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].snapshot.delta());
  EXPECT_EQ(events[0].snapshot.jobs_size(), 2);
}

TEST_F(EventStreamTest, UnknownSweepIsAJson404) {
  httplib::Result result = client_->Get("/api/v1/sweeps/no-such-sweep/events");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_THAT(result->body, HasSubstr("NOT_FOUND"));
}

TEST(EventWriterTest, FramesEventsAndKeepsAQuietStreamAlive) {
  FakeClock clock;
  std::string written;
  EventWriter writer(
      [&written](absl::string_view text) {
        written.append(text.data(), text.size());
        return true;
      },
      clock, absl::Seconds(15));
  ASSERT_TRUE(writer.Open());
  EXPECT_EQ(written, "retry: 2000\n\n");
  written.clear();

  v1::SweepSnapshot snapshot;
  snapshot.set_version(42);
  snapshot.set_delta(true);
  snapshot.mutable_sweep()->set_id("s");
  ASSERT_TRUE(writer.Event(snapshot));
  EXPECT_EQ(written,
            "id: 42\ndata: {\"sweep\":{\"id\":\"s\"},\"version\":\"42\",\"delta\":true}\n\n");
  written.clear();

  clock.Advance(absl::Seconds(14));
  ASSERT_TRUE(writer.KeepAliveIfQuiet());
  EXPECT_EQ(written, "") << "nothing is due before 15 s of quiet";
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(writer.KeepAliveIfQuiet());
  EXPECT_EQ(written, ": keep-alive\n\n");
}

TEST(EventWriterTest, AClientThatLeftIsReported) {
  FakeClock clock;
  EventWriter writer([](absl::string_view) { return false; }, clock, absl::Seconds(15));
  EXPECT_FALSE(writer.Open());
  clock.Advance(absl::Minutes(1));
  EXPECT_FALSE(writer.KeepAliveIfQuiet());
}

}  // namespace
}  // namespace ablate::coordinator
