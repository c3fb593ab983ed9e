// What the service tests share: a whole CoordinatorServer over real gRPC on loopback, its
// database in a temporary directory, and a fake worker whose every message the test decides.
#ifndef ABLATE_COORDINATOR_SERVICE_SERVICE_TEST_FIXTURE_H_
#define ABLATE_COORDINATOR_SERVICE_SERVICE_TEST_FIXTURE_H_

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "ablate/v1/worker.grpc.pb.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/server.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/support/tokens.h"

namespace ablate::coordinator::service_test {

using testing::TempDir;
using testing::TinySweepSpec;
using testing::WaitUntil;

// Every call and stream of these tests ends within this long, whatever the server does.
constexpr auto kDeadline = std::chrono::seconds(8);

inline void SetDeadline(grpc::ClientContext& context, std::chrono::seconds deadline = kDeadline) {
  context.set_deadline(std::chrono::system_clock::now() + deadline);
}

// A worker daemon reduced to its stream: the test decides every message.
class FakeWorker {
 public:
  FakeWorker(const std::shared_ptr<grpc::Channel>& channel, const std::string& worker_id,
             int cpu_slots = 1, std::chrono::seconds deadline = kDeadline)
      : stub_(v1::WorkerService::NewStub(channel)) {
    SetDeadline(context_, deadline);
    stream_ = stub_->Connect(&context_);
    hello_.set_worker_id(worker_id);
    hello_.set_hostname("localhost");
    for (int i = 0; i < cpu_slots; ++i) {
      v1::Slot* slot = hello_.add_slots();
      slot->set_kind(v1::DEVICE_KIND_CPU);
      slot->set_index(static_cast<uint32_t>(i));
      slot->set_name("cpu");
    }
  }

  v1::WorkerInfo& hello() { return hello_; }

  bool SendHello() {
    v1::WorkerMessage message;
    *message.mutable_hello() = hello_;
    return stream_->Write(message);
  }
  bool Send(const v1::WorkerMessage& message) { return stream_->Write(message); }
  bool Read(v1::CoordinatorMessage& message) { return stream_->Read(&message); }
  bool SendEvent(const std::string& job_id, uint64_t attempt_id, const v1::TrainerEvent& event) {
    v1::WorkerMessage message;
    message.mutable_job_event()->set_job_id(job_id);
    message.mutable_job_event()->set_attempt_id(attempt_id);
    *message.mutable_job_event()->mutable_event() = event;
    return Send(message);
  }
  // Half-closes, reads what the coordinator still sends until it ends the stream, and returns
  // the stream's status.
  grpc::Status Close() {
    stream_->WritesDone();
    v1::CoordinatorMessage unread;
    while (stream_->Read(&unread)) {
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> stream_;
  v1::WorkerInfo hello_;
};

// Reads until an assignment; false when the stream ends first.
inline bool ReadAssignment(FakeWorker& worker, v1::Assignment& assignment) {
  v1::CoordinatorMessage message;
  while (worker.Read(message)) {
    if (message.has_assign()) {
      assignment = message.assign();
      return true;
    }
  }
  return false;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(CoordinatorOptions()); }

  // (Re)starts the server on the test's database with `options` (addresses and path set here).
  void StartServer(CoordinatorOptions options) {
    if (server_ != nullptr) server_->Shutdown();
    options.grpc_address = "127.0.0.1:0";
    options.http_address = "127.0.0.1:0";
    options.db_path = dir_.File("ablate.db");
    server_ = std::make_unique<CoordinatorServer>(options);
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    sweeps_ = v1::SweepService::NewStub(channel_);
  }
  // (Re)starts the server checking the tokens in dir_'s "tokens" (test::WriteTokenFile's), its
  // lease `lease`; the fixture's channel and stub then carry the user token.
  void StartWithTokens(absl::Duration lease) {
    CoordinatorOptions options;
    options.token_file = dir_.File("tokens");
    options.lease_timeout = lease;
    StartServer(options);
    channel_ = Channel(test::kUserToken);
    sweeps_ = v1::SweepService::NewStub(channel_);
  }

  // A channel to the server that carries `token`.
  std::shared_ptr<grpc::Channel> Channel(const std::string& token) {
    return test::TokenChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()), token);
  }

  void TearDown() override { server_->Shutdown(); }

  v1::SubmitSweepResponse Submit(const v1::SweepSpec& spec) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::SubmitSweepRequest request;
    *request.mutable_spec() = spec;
    v1::SubmitSweepResponse response;
    grpc::Status status = sweeps_->SubmitSweep(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  grpc::Status GetJob(const std::string& job_id, v1::GetJobResponse& response) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    return sweeps_->GetJob(&context, request, &response);
  }

  v1::Job Job(const std::string& job_id) {
    v1::GetJobResponse response;
    return GetJob(job_id, response).ok() ? response.job() : v1::Job();
  }

  v1::JobState JobState(const std::string& job_id) {
    v1::GetJobResponse response;
    return GetJob(job_id, response).ok() ? response.job().state() : v1::JOB_STATE_UNSPECIFIED;
  }

  v1::ListJobsResponse ListJobs(const std::string& sweep_id) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ListJobsRequest request;
    request.set_sweep_id(sweep_id);
    v1::ListJobsResponse response;
    EXPECT_TRUE(sweeps_->ListJobs(&context, request, &response).ok());
    return response;
  }

  TempDir dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SweepService::Stub> sweeps_;
};

}  // namespace ablate::coordinator::service_test

#endif  // ABLATE_COORDINATOR_SERVICE_SERVICE_TEST_FIXTURE_H_
