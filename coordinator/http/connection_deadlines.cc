#include "coordinator/http/connection_deadlines.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"

namespace ablate::coordinator {
namespace {

// The watched descriptor of the connection this httplib thread is serving, -1 when none: the
// routing handlers run on the connection's own thread, between its reads.
thread_local int current_watch_fd = -1;

bool ReadsOnly(const std::string& method) { return method == "GET" || method == "HEAD"; }

int LocalPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

bool HasPeer(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  return getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
}

uint64_t InodeOf(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

}  // namespace

namespace internal {

// httplib's thread pool, with each connection watched from accept() to its close.
class WatchedPool : public httplib::TaskQueue {
 public:
  WatchedPool(size_t threads, ConnectionDeadlines& deadlines)
      : pool_(threads), deadlines_(deadlines) {}

  void enqueue(std::function<void()> fn) override {
    const int watch_fd = deadlines_.WatchNewest();
    pool_.enqueue([this, watch_fd, fn = std::move(fn)] {
      current_watch_fd = watch_fd;
      fn();
      current_watch_fd = -1;
      deadlines_.Forget(watch_fd);
    });
  }

  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  ConnectionDeadlines& deadlines_;
};

}  // namespace internal

ConnectionDeadlines::ConnectionDeadlines(absl::Duration request_timeout)
    : request_timeout_(request_timeout) {}

ConnectionDeadlines::~ConnectionDeadlines() { Stop(); }

absl::StatusOr<std::unique_ptr<httplib::Server>> ConnectionDeadlines::NewServer(const HttpTls& tls,
                                                                                size_t threads) {
  std::unique_ptr<httplib::Server> server;
  if (tls.cert_file.empty() && tls.key_file.empty()) {
    server = std::make_unique<httplib::Server>();
  } else {
    auto ssl = std::make_unique<httplib::SSLServer>(tls.cert_file.c_str(), tls.key_file.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-cert/--tls-key: cannot load the certificate ", tls.cert_file, " and key ",
          tls.key_file, " (PEM files, the key matching the certificate)"));
    }
    server = std::move(ssl);
  }
  server->new_task_queue = [this, threads] { return new internal::WatchedPool(threads, *this); };
  return server;
}

void ConnectionDeadlines::Start(int port) {
  {
    absl::MutexLock lock(&mu_);
    port_ = port;
  }
  watcher_ = std::thread([this] { Enforce(); });
}

void ConnectionDeadlines::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

int ConnectionDeadlines::WatchNewest() {
  absl::MutexLock lock(&mu_);
  if (port_ <= 0) return -1;
  absl::flat_hash_set<uint64_t> known = foreign_;
  for (const auto& [watch_fd, watched] : watched_) known.insert(watched.inode);
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    int fd = -1;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == dirfd(dir)) continue;
    char target[64];
    const ssize_t n =
        readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view link(target, static_cast<size_t>(n));
    uint64_t inode = 0;
    if (!absl::ConsumePrefix(&link, "socket:[") || !absl::ConsumeSuffix(&link, "]") ||
        !absl::SimpleAtoi(link, &inode) || known.contains(inode)) {
      continue;
    }
    if (LocalPort(fd) == port_ && HasPeer(fd) && InodeOf(fd) == inode) {
      found = fd;
      break;
    }
    foreign_.insert(inode);
  }
  closedir(dir);
  // Inode numbers are reused once sockets close; a stale list only ever hides a connection
  // from the watch, and is dropped when that happens or it grows large.
  if (found < 0 || foreign_.size() > 100'000) foreign_.clear();
  if (found < 0) return -1;
  const int watch_fd = ::dup(found);
  if (watch_fd < 0) return -1;
  watched_[watch_fd] = {InodeOf(watch_fd), absl::Now() + request_timeout_};
  return watch_fd;
}

void ConnectionDeadlines::Forget(int watch_fd) {
  if (watch_fd < 0) return;
  {
    absl::MutexLock lock(&mu_);
    watched_.erase(watch_fd);
  }
  ::close(watch_fd);
}

void ConnectionDeadlines::RequestRead(const httplib::Request& req) {
  if (!ReadsOnly(req.method)) return;  // its body is still to be read, under the deadline
  absl::MutexLock lock(&mu_);
  if (auto it = watched_.find(current_watch_fd); it != watched_.end()) {
    it->second.deadline = absl::InfiniteFuture();
  }
}

void ConnectionDeadlines::ResponseStarting(httplib::Response& res) {
  const bool streamed = static_cast<bool>(res.content_provider_);
  if (streamed) res.set_header("Connection", "close");
  absl::MutexLock lock(&mu_);
  if (auto it = watched_.find(current_watch_fd); it != watched_.end()) {
    it->second.deadline = streamed ? absl::InfiniteFuture() : absl::Now() + request_timeout_;
  }
}

void ConnectionDeadlines::Enforce() {
  // A quarter of the timeout, at most a quarter second: late by no more than that.
  const absl::Duration tick = std::min(request_timeout_ / 4, absl::Milliseconds(250));
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick)) {
    const absl::Time now = absl::Now();
    for (auto& [watch_fd, watched] : watched_) {
      if (watched.deadline > now) continue;
      // Shutting the socket down wakes the thread blocked reading it; that thread then closes
      // the connection. The entry stays until then, never shut down twice.
      ::shutdown(watch_fd, SHUT_RDWR);
      watched.deadline = absl::InfiniteFuture();
      ABLATE_LOG(INFO) << "http_connection_timed_out request_timeout=" << request_timeout_;
    }
  }
}

}  // namespace ablate::coordinator
