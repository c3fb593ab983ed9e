#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

extern char** environ;

namespace ablate::test {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(10);

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// An open file with no name: it vanishes when the last descriptor closes.
absl::StatusOr<int> AnonymousFile() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = absl::StrCat(tmpdir != nullptr ? tmpdir : "/tmp", "/ablate-out-XXXXXX");
  const int fd = mkstemp(path.data());
  if (fd < 0) return ErrnoError("mkstemp");
  unlink(path.c_str());
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buffer[1 << 16];
  off_t offset = 0;
  // pread leaves the offset the child writes at alone.
  for (ssize_t n; (n = pread(fd, buffer, sizeof(buffer), offset)) > 0; offset += n) {
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

int DecodeWaitStatus(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  if (argv.empty()) return absl::InvalidArgumentError("Subprocess::Start: empty argv");

  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::pair<std::string, std::string> kv = absl::StrSplit(*e, absl::MaxSplits('=', 1));
    merged.insert(std::move(kv));
  }
  for (const auto& [name, value] : env) merged[name] = value;
  std::vector<std::string> env_strings;
  env_strings.reserve(merged.size());
  for (const auto& [name, value] : merged) env_strings.push_back(absl::StrCat(name, "=", value));

  std::vector<char*> c_argv, c_env;
  c_argv.reserve(argv.size() + 1);
  c_env.reserve(env_strings.size() + 1);
  for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  for (const std::string& e : env_strings) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);

  absl::StatusOr<int> out = AnonymousFile();
  if (!out.ok()) return out.status();
  absl::StatusOr<int> err = AnonymousFile();
  if (!err.ok()) {
    close(*out);
    return err.status();
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, *out, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, *err, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);  // a group of its own, led by the child

  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, c_argv[0], &actions, &attr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    close(*out);
    close(*err);
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, *out, *err));
}

Subprocess::Subprocess(pid_t pid, int stdout_fd, int stderr_fd)
    : pid_(pid), stdout_fd_(stdout_fd), stderr_fd_(stderr_fd) {}

Subprocess::~Subprocess() {
  if (!exit_.has_value()) {
    Signal(SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  close(stdout_fd_);
  close(stderr_fd_);
}

absl::StatusOr<int> Subprocess::WaitFor(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!exit_.has_value()) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_ = DecodeWaitStatus(status);
    } else if (done < 0 && errno != EINTR) {
      return ErrnoError("waitpid");
    } else if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running after ", absl::FormatDuration(timeout)));
    } else {
      absl::SleepFor(kPollInterval);
    }
  }
  return *exit_;
}

void Subprocess::Signal(int sig) {
  // After reaping, the pid (and so the group id) may belong to someone else.
  if (exit_.has_value()) return;
  kill(-pid_, sig);
}

std::string Subprocess::Stdout() const { return ReadAll(stdout_fd_); }
std::string Subprocess::Stderr() const { return ReadAll(stderr_fd_); }

absl::StatusOr<std::map<std::string, int>> ReadPortsFile(const std::string& path,
                                                         absl::Duration timeout,
                                                         const std::vector<std::string>& names) {
  const absl::Time deadline = absl::Now() + timeout;
  std::map<std::string, int> ports;
  while (true) {
    ports.clear();
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    const std::string content = text.str();
    // Only lines ended by '\n' are complete; the writer may be between two writes.
    const size_t end = content.rfind('\n');
    if (end != std::string::npos) {
      for (absl::string_view line : absl::StrSplit(content.substr(0, end), '\n')) {
        std::pair<absl::string_view, absl::string_view> kv =
            absl::StrSplit(line, absl::MaxSplits('=', 1));
        int port = 0;
        if (absl::SimpleAtoi(kv.second, &port)) ports[std::string(kv.first)] = port;
      }
    }
    bool complete = true;
    for (const std::string& name : names) complete = complete && ports.count(name) > 0;
    if (complete) return ports;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(path, " did not name every port of ", absl::StrJoin(names, ","), " within ",
                       absl::FormatDuration(timeout), "; it holds: ", content));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::StatusOr<std::string> MakeTempDir() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = absl::StrCat(tmpdir != nullptr ? tmpdir : "/tmp", "/ablate-test-XXXXXX");
  if (mkdtemp(path.data()) == nullptr) return ErrnoError("mkdtemp");
  return path;
}

absl::StatusOr<int> UnusedLoopbackPort() {
  // Below Linux's ephemeral range (32768-60999 by default): a port the kernel hands out there
  // can be taken again by any outgoing connection, such as another test's ranks connecting to
  // each other, between this check and the caller's listen; this range is only ever claimed
  // explicitly. Random, so tests running in parallel rarely try the same one.
  thread_local std::minstd_rand generator(static_cast<unsigned>(getpid()) ^
                                          static_cast<unsigned>(absl::ToUnixNanos(absl::Now())));
  absl::Status last;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return ErrnoError("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int port = 20000 + static_cast<int>(generator() % 12000);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (!free) last = ErrnoError("bind");
    close(fd);
    if (free) return port;
  }
  return last;
}

}  // namespace ablate::test
