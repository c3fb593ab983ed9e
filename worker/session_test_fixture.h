// The fixture of the worker session's tests (session_test.cc: assignments, slots, cancels,
// shutdown; session_delivery_test.cc: reconnects, resends, spills, batching): a Session
// against worker/testing's fake coordinator, with the fake trainer, and helpers that read what
// the coordinator received.
#ifndef ABLATE_WORKER_SESSION_TEST_FIXTURE_H_
#define ABLATE_WORKER_SESSION_TEST_FIXTURE_H_

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "worker/session.h"
#include "worker/slots.h"
#include "worker/testing/fake_coordinator.h"

namespace ablate::worker::session_testing {

inline v1::CoordinatorMessage Cancel(uint64_t attempt_id) {
  v1::CoordinatorMessage message;
  message.mutable_cancel()->set_job_id(absl::StrCat("job-", attempt_id));
  message.mutable_cancel()->set_attempt_id(attempt_id);
  return message;
}

// The events of one attempt as received, e.g. "started log metrics metrics metrics finished".
inline std::string EventKinds(const std::vector<v1::WorkerMessage>& messages, uint64_t attempt_id) {
  std::string kinds;
  for (const auto& m : messages) {
    if (!m.has_job_event() || m.job_event().attempt_id() != attempt_id) continue;
    const v1::TrainerEvent& e = m.job_event().event();
    absl::StrAppend(&kinds, kinds.empty() ? "" : " ",
                    e.has_started()   ? "started"
                    : e.has_metrics() ? "metrics"
                    : e.has_log()     ? "log"
                                      : "finished");
  }
  return kinds;
}

// The sequences of one attempt's reports as received, in order.
inline std::vector<uint64_t> Sequences(const std::vector<v1::WorkerMessage>& messages,
                                       uint64_t attempt_id) {
  std::vector<uint64_t> sequences;
  for (const auto& m : messages) {
    if (m.has_job_event() && m.job_event().attempt_id() == attempt_id) {
      sequences.push_back(m.job_event().sequence());
    } else if (m.has_attempt_ended() && m.attempt_ended().attempt_id() == attempt_id) {
      sequences.push_back(m.attempt_ended().sequence());
    }
  }
  return sequences;
}

inline std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> range;
  for (uint64_t i = first; i <= last; ++i) range.push_back(i);
  return range;
}

inline testing::Predicate HeartbeatWith(const std::function<bool(const v1::Heartbeat&)>& match) {
  return [=](const v1::WorkerMessage& m) { return m.has_heartbeat() && match(m.heartbeat()); };
}

inline v1::Ack MakeAck(uint64_t attempt_id, uint64_t sequence) {
  v1::Ack ack;
  ack.set_job_id(absl::StrCat("job-", attempt_id));
  ack.set_attempt_id(attempt_id);
  ack.set_sequence(sequence);
  return ack;
}

class SessionTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(work_dir_); }

  // With `gpus`, the slots are CUDA slots whose health `gpus` reads every 50 ms.
  std::unique_ptr<Session> MakeSession(int port, uint32_t slots, size_t max_buffered = 10000,
                                       std::shared_ptr<GpuMonitor> gpus = nullptr) {
    SessionOptions options;
    options.coordinator = absl::StrCat("127.0.0.1:", port);
    options.info.set_worker_id("w1");
    options.info.set_hostname("host");
    options.info.set_version("test");
    for (v1::Slot& slot : CpuSlots(slots)) {
      if (gpus != nullptr) slot.set_kind(v1::DEVICE_KIND_CUDA);
      *options.info.add_slots() = slot;
    }
    options.gpu_monitor = std::move(gpus);
    options.gpu_sample_interval = absl::Milliseconds(50);
    options.trainer.trainer_path = trainer_path_;
    options.trainer.work_dir = work_dir_;
    options.heartbeat_interval = absl::Milliseconds(200);
    options.min_backoff = absl::Milliseconds(50);
    options.max_backoff = absl::Milliseconds(400);
    options.stop_grace = absl::Seconds(2);
    options.drain_timeout = absl::Seconds(2);
    options.max_buffered = max_buffered;
    options.duplicate_for = duplicate_for_;
    options.on_refused = on_refused_;
    options.batching = batching_;
    options.roots.checkpoint_roots = {work_dir_ / "checkpoints"};
    auto session = std::make_unique<Session>(std::move(options));
    session->Start();
    return session;
  }

  // The trainer's metric events coalesce as in production unless a test says otherwise.
  ReportBatcherOptions batching_;
  std::string trainer_path_ = ABLATE_FAKE_TRAINER;
  absl::Duration duplicate_for_ = absl::Minutes(1);
  std::function<void()> on_refused_;
  static inline int counter_ = 0;
  const std::filesystem::path work_dir_ = std::filesystem::path(::testing::TempDir()) /
                                          absl::StrCat("session_test-", getpid(), "-", counter_++);
};

}  // namespace ablate::worker::session_testing

#endif  // ABLATE_WORKER_SESSION_TEST_FIXTURE_H_
