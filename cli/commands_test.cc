// `ablate submit` against a coordinator older than SweepService.WhoAmI, over real gRPC on
// loopback: the role is not known up front, so the command does what it did before the call
// existed (prints the plan, then submits, and the coordinator's refusal is what a viewer sees).
// tests/cli_coordinator_test.cc runs it against the real coordinator.
#include "cli/commands.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// SweepService without WhoAmI (gRPC answers it UNIMPLEMENTED), which refuses or accepts every
// submission as told.
class OlderCoordinator final : public v1::SweepService::Service {
 public:
  explicit OlderCoordinator(bool viewer) : viewer_(viewer) {}

  grpc::Status ListSweeps(grpc::ServerContext* /*context*/,
                          const v1::ListSweepsRequest* /*request*/,
                          v1::ListSweepsResponse* /*response*/) override {
    return grpc::Status::OK;
  }
  grpc::Status ListWorkers(grpc::ServerContext* /*context*/,
                           const v1::ListWorkersRequest* /*request*/,
                           v1::ListWorkersResponse* /*response*/) override {
    return grpc::Status::OK;
  }
  grpc::Status SubmitSweep(grpc::ServerContext* /*context*/, const v1::SubmitSweepRequest* request,
                           v1::SubmitSweepResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++submits_;
    if (viewer_) {
      return {grpc::StatusCode::PERMISSION_DENIED,
              "SubmitSweep needs a token of role user; this token's role is viewer"};
    }
    response->mutable_sweep()->set_id("older-sweep");
    *response->mutable_sweep()->mutable_spec() = request->spec();
    return grpc::Status::OK;
  }

  int submits() const {
    absl::MutexLock lock(&mu_);
    return submits_;
  }

 private:
  const bool viewer_;
  mutable absl::Mutex mu_;
  int submits_ ABSL_GUARDED_BY(mu_) = 0;
};

class SubmitToAnOlderCoordinatorTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
    path_ = absl::StrCat(::testing::TempDir(), "/older-", GetParam() ? "viewer" : "user", ".yaml");
    std::ofstream(path_) << "name: cli-test\ngrid:\n  seed: [1, 2]\nfixed:\n  steps: 10\n";
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Runs SubmitCommand as the CLI would, with what it printed in out_ and err_.
  int Submit() {
    Client client(address_, "some-token-0123456789");
    const Io io{out_, err_, /*interactive=*/false, absl::UTCTimeZone()};
    return SubmitCommand(client, path_, SubmitChoice(), io);
  }

  OlderCoordinator service_{GetParam()};
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::string path_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_P(SubmitToAnOlderCoordinatorTest, SubmitsAsBeforeWhoAmI) {
  const bool viewer = GetParam();
  const int code = Submit();
  // The role could not be asked, so the coordinator refuses a viewer's submit itself, and the
  // plan, printed once a submission is taken, is not printed.
  EXPECT_EQ(service_.submits(), 1);
  if (viewer) {
    EXPECT_EQ(out_.str(), "");
    EXPECT_EQ(code, kExitFailed);
    EXPECT_EQ(err_.str(),
              "ablate: SubmitSweep needs a token of role user; this token's role is viewer\n");
  } else {
    EXPECT_EQ(code, kExitOk) << err_.str();
    EXPECT_THAT(out_.str(), StartsWith("sweep cli-test-"));
    EXPECT_THAT(out_.str(), HasSubstr("\nsubmitted sweep older-sweep: 2 jobs"));
    EXPECT_EQ(err_.str(), "");
  }
}

INSTANTIATE_TEST_SUITE_P(ViewerOrUser, SubmitToAnOlderCoordinatorTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Viewer" : "User";
                         });

}  // namespace
}  // namespace ablate::cli
