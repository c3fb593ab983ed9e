// Slow clients against a real coordinator's HTTP listener over loopback: connections that
// trickle their headers a byte at a time are closed at their deadline, so they cannot hold
// every server thread while other clients wait. (An idle connection is httplib's own to close:
// its keep-alive and read timeouts apply to a client that sends nothing.)
#include "coordinator/http/connection_deadlines.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/http/loopback_coordinator.h"
#include "coordinator/server.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace ablate::coordinator {
namespace {

using testing::TempDir;

// Sends a request's header one byte every 100 ms (well inside httplib's 5 s read timeout, so
// only a deadline on the whole request stops it) until the server closes the connection or
// `stop` is set. Counts the connections the server closed.
void Trickle(int port, const std::atomic<bool>& stop, std::atomic<int>& closed_by_server) {
  const int fd = testing::ConnectLoopback(port);
  if (fd < 0) return;
  const std::string header =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(10'000, 'a');
  for (size_t i = 0; !stop.load() && i < header.size(); ++i) {
    char byte;
    const ssize_t got = recv(fd, &byte, 1, MSG_DONTWAIT);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
        send(fd, &header[i], 1, MSG_NOSIGNAL) != 1) {
      ++closed_by_server;
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  close(fd);
}

class ConnectionDeadlinesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.grpc_address = "127.0.0.1:0";
    options.http_address = "127.0.0.1:0";
    options.db_path = dir_.File("ablate.db");
    options.http_threads = 2;  // fewer threads than slow clients
    options.http_request_timeout = absl::Seconds(1);
    server_ = std::make_unique<CoordinatorServer>(options);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override { server_->Shutdown(); }

  TempDir dir_;
  std::unique_ptr<CoordinatorServer> server_;
};

// The failure this fixes: eight connections trickling headers made every other request time
// out. Here four trickle against two threads; a normal request is still answered.
TEST_F(ConnectionDeadlinesTest, TricklingClientsCannotStarveOthers) {
  std::atomic<bool> stop{false};
  std::atomic<int> closed_by_server{0};
  constexpr int kTricklers = 4;
  std::vector<std::thread> slow;
  slow.reserve(kTricklers);
  for (int i = 0; i < kTricklers; ++i) {
    slow.emplace_back([&] { Trickle(server_->http_port(), stop, closed_by_server); });
  }
  absl::SleepFor(absl::Milliseconds(300));  // let them take the threads first
  httplib::Client client("127.0.0.1", server_->http_port());
  client.set_read_timeout(20, 0);  // the trickling would last 1000 s without deadlines
  client.set_connection_timeout(20, 0);
  httplib::Result reply = client.Get("/healthz");
  ASSERT_TRUE(reply) << httplib::to_string(reply.error());
  EXPECT_EQ(reply->status, 200);
  // Every slow connection is closed by the server well before the 10 s the test waits.
  std::thread stopper([&] {
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (closed_by_server.load() < 4 && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    stop = true;
  });
  for (std::thread& t : slow) t.join();
  stopper.join();
  EXPECT_EQ(closed_by_server.load(), 4);
}

// Each plain response renews the deadline: one kept-alive connection serves requests for
// longer than a deadline, as a polling dashboard's does.
TEST_F(ConnectionDeadlinesTest, AKeptAliveConnectionGetsANewDeadlineEachRequest) {
  const int fd = testing::ConnectLoopback(server_->http_port());
  ASSERT_GE(fd, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const absl::Time start = absl::Now();
  for (int i = 0; i < 6; ++i) {
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()))
        << "request " << i;
    std::string reply;
    char buffer[512];
    while (!reply.ends_with("\r\n\r\nok")) {
      const ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
      ASSERT_GT(got, 0) << "the connection closed during request " << i << " after "
                        << absl::Now() - start;
      reply.append(buffer, got);
    }
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
    absl::SleepFor(absl::Milliseconds(400));
  }
  EXPECT_GT(absl::Now() - start, absl::Seconds(2));  // longer than one deadline
  close(fd);
}

}  // namespace
}  // namespace ablate::coordinator
