// One coordinator per database, and ports that are one process's alone: a second real
// coordinator process started on a database a live one holds, or on a port it (or any other
// program) listens on, refuses to start and says why, in its own words only; once the first is
// gone (even by SIGKILL) the next starts.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What gRPC's core logger prints when it cannot bind (chttp2_server.cc: "No address added out
// of total 1 resolved for ..."), which a user should never see beside the coordinator's error.
constexpr char kGrpcBindLine[] = "address added out of total";
constexpr char kGrpcSource[] = "chttp2_server";

class SingleCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> bin = BinDir();
    ASSERT_TRUE(bin.ok()) << bin.status();
    bin_ = *bin;
    absl::StatusOr<std::string> dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    absl::StatusOr<std::unique_ptr<TestCoordinator>> first = TestCoordinator::Start(bin_, dir_);
    ASSERT_TRUE(first.ok()) << first.status();
    first_ = *std::move(first);
  }
  void TearDown() override {
    first_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Runs a second coordinator to its exit; returns its exit code, its stderr in `err`.
  int RunSecond(const std::string& db, const std::string& grpc, const std::string& http,
                std::string& err) {
    absl::StatusOr<std::unique_ptr<Subprocess>> second =
        Subprocess::Start({absl::StrCat(bin_, "/ablate-coordinator"), "--db", db, "--listen", grpc,
                           "--http", http, "--token-file", absl::StrCat(dir_, "/tokens")});
    EXPECT_TRUE(second.ok()) << second.status();
    if (!second.ok()) return -1;
    absl::StatusOr<int> code = (*second)->WaitFor(absl::Seconds(30));
    err = (*second)->Stderr();
    EXPECT_TRUE(code.ok()) << "the second coordinator is still running: " << err;
    return code.value_or(-1);
  }

  std::string bin_;
  std::string dir_;
  std::unique_ptr<TestCoordinator> first_;
};

TEST_F(SingleCoordinatorTest, ASecondCoordinatorOnTheSameDatabaseRefusesNamingTheFirst) {
  std::string err;
  EXPECT_EQ(RunSecond(dir_ + "/a.db", "127.0.0.1:0", "127.0.0.1:0", err), 1);
  EXPECT_THAT(err, HasSubstr("in use by another coordinator"));
  EXPECT_THAT(err, HasSubstr(absl::StrCat("pid=", first_->process().pid())));
  EXPECT_THAT(err, HasSubstr(absl::StrCat("grpc=", first_->grpc_port())));
  EXPECT_THAT(err, HasSubstr(absl::StrCat("http=", first_->http_port())));

  // The lock dies with its holder, however it ends.
  first_->process().Signal(SIGKILL);
  ASSERT_TRUE(first_->process().WaitFor(absl::Seconds(30)).ok());
  std::filesystem::remove(dir_ + "/ports");  // the first one's, read by Start otherwise
  absl::StatusOr<std::unique_ptr<TestCoordinator>> next = TestCoordinator::Start(bin_, dir_);
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST_F(SingleCoordinatorTest, PortsAreNotShared) {
  std::string err;
  EXPECT_EQ(RunSecond(dir_ + "/other-grpc.db", first_->grpc_address(), "127.0.0.1:0", err), 1);
  EXPECT_THAT(err, HasSubstr(absl::StrCat("cannot listen for gRPC on ", first_->grpc_address(),
                                          ": Address already in use")));
  EXPECT_THAT(err, Not(HasSubstr(kGrpcBindLine)));
  EXPECT_EQ(RunSecond(dir_ + "/other-http.db", "127.0.0.1:0",
                      absl::StrCat("127.0.0.1:", first_->http_port()), err),
            1);
  EXPECT_THAT(err, HasSubstr(absl::StrCat("cannot listen for HTTP on 127.0.0.1:",
                                          first_->http_port(), ": Address already in use")));
}

// A port another program holds (here a plain listening socket): the error names the address
// and the flag and says what to do, and gRPC's own log line about the failed bind is not shown.
TEST_F(SingleCoordinatorTest, APortAnotherProgramHoldsIsReportedOnceInOurWords) {
  const int holder = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string held = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));

  std::string err;
  EXPECT_EQ(RunSecond(dir_ + "/held.db", held, "127.0.0.1:0", err), 1);
  close(holder);
  EXPECT_THAT(err, HasSubstr(absl::StrCat("cannot listen for gRPC on ", held,
                                          ": Address already in use; stop the program that "
                                          "listens there, or give --listen another port")));
  EXPECT_THAT(err, Not(HasSubstr(kGrpcBindLine))) << err;
  EXPECT_THAT(err, Not(HasSubstr(kGrpcSource))) << err;
}

// A usage error of either daemon is one line naming the option, and exit status 2 as `ablate`
// gives, where CLI11's own would be 106.
TEST_F(SingleCoordinatorTest, ADaemonsUsageErrorIsOneLineAndStatusTwo) {
  for (const char* daemon : {"ablate-coordinator", "ablate-worker"}) {
    absl::StatusOr<std::unique_ptr<Subprocess>> run =
        Subprocess::Start({absl::StrCat(bin_, "/", daemon), "--no-such-option"});
    ASSERT_TRUE(run.ok()) << run.status();
    absl::StatusOr<int> code = (*run)->WaitFor(absl::Seconds(30));
    ASSERT_TRUE(code.ok()) << daemon;
    EXPECT_EQ(*code, 2) << daemon;
    const std::string err = (*run)->Stderr();
    EXPECT_THAT(err, ::testing::StartsWith(absl::StrCat(daemon, ": "))) << err;
    EXPECT_THAT(err, ::testing::EndsWith(absl::StrCat(" (see ", daemon, " --help)\n"))) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

}  // namespace
}  // namespace ablate::test
