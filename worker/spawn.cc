#include "worker/spawn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

extern char** environ;

namespace ablate::worker {
namespace {

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// The child between fork and exec: async-signal-safe calls only. Never returns.
[[noreturn]] void RunChild(const char* path, char* const* argv, char* const* env,
                           const ChildFds& fds, pid_t process_group, pid_t parent, int status_fd) {
  auto fail = [status_fd](int error) {
    while (write(status_fd, &error, sizeof(error)) < 0 && errno == EINTR) {
    }
    _exit(127);
  };
  if (setpgid(0, process_group) != 0) fail(errno);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
  // The parent may have died before prctl took effect: then no signal will ever come.
  if (getppid() != parent) _exit(127);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &default_action, nullptr);
  }
  // The worker blocks SIGTERM and SIGINT to wait for them; a child must not inherit that.
  sigset_t empty;
  sigemptyset(&empty);
  if (sigprocmask(SIG_SETMASK, &empty, nullptr) != 0) fail(errno);
  // Every source is above kEventsFd (AboveEventsFd), so no dup2 overwrites a later source.
  if (dup2(fds.stdin_fd, 0) < 0 || dup2(fds.output_fd, 1) < 0 || dup2(fds.output_fd, 2) < 0 ||
      (fds.events_fd >= 0 && dup2(fds.events_fd, kEventsFd) < 0)) {
    fail(errno);
  }
  // Close-on-exec rather than closed, so the status pipe still reports a failed exec.
  const unsigned first_closed = fds.events_fd >= 0 ? kEventsFd + 1 : kEventsFd;
  if (close_range(first_closed, ~0U, CLOSE_RANGE_CLOEXEC) != 0) fail(errno);
  execve(path, argv, env);
  fail(errno);
  _exit(127);  // not reached: fail() exits
}

}  // namespace

absl::Status ErrnoError(const std::string& what, int error) {
  return absl::InternalError(
      absl::StrCat(what, ": ", std::error_code(error, std::generic_category()).message()));
}

absl::StatusOr<UniqueFd> AboveEventsFd(int fd) {
  if (fd < 0) return ErrnoError("cannot open a descriptor for the trainer", errno);
  UniqueFd owned(fd);
  if (fd > kEventsFd) return owned;
  UniqueFd moved(fcntl(fd, F_DUPFD_CLOEXEC, kEventsFd + 1));
  if (!moved.valid()) return ErrnoError("cannot move a descriptor", errno);
  return moved;
}

absl::StatusOr<int> FreeLoopbackPort() {
  UniqueFd socket_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket_fd.valid()) return ErrnoError("cannot open a socket for the rendezvous", errno);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return ErrnoError("cannot find a free port for the rendezvous", errno);
  }
  return ntohs(address.sin_port);
}

std::vector<std::string> ChildEnvironment(const std::vector<v1::Slot>& slots,
                                          const RankPlace& place) {
  std::vector<std::string> cuda;
  for (const v1::Slot& slot : slots) {
    if (slot.kind() == v1::DEVICE_KIND_CUDA) cuda.push_back(absl::StrCat(slot.index()));
  }
  constexpr absl::string_view kRankVariables[] = {
      "RANK=", "LOCAL_RANK=", "WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const absl::string_view var(*entry);
    if (!cuda.empty() && (absl::StartsWith(var, "CUDA_VISIBLE_DEVICES=") ||
                          absl::StartsWith(var, "CUDA_DEVICE_ORDER="))) {
      continue;
    }
    if (absl::c_any_of(kRankVariables,
                       [var](absl::string_view name) { return absl::StartsWith(var, name); })) {
      continue;
    }
    env.emplace_back(var);
  }
  if (!cuda.empty()) {
    env.push_back("CUDA_DEVICE_ORDER=PCI_BUS_ID");
    env.push_back(absl::StrCat("CUDA_VISIBLE_DEVICES=", absl::StrJoin(cuda, ",")));
    if (std::getenv("PYTORCH_CUDA_ALLOC_CONF") == nullptr) {
      env.push_back(std::string(kCudaAllocatorSettings));
    }
  }
  if (place.world_size > 1) {
    env.push_back(absl::StrCat("RANK=", place.rank));
    env.push_back(absl::StrCat("LOCAL_RANK=", place.rank));
    env.push_back(absl::StrCat("WORLD_SIZE=", place.world_size));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back(absl::StrCat("MASTER_PORT=", place.master_port));
  }
  return env;
}

absl::StatusOr<pid_t> SpawnInGroup(const std::string& path, std::vector<std::string> argv,
                                   std::vector<std::string> env, const ChildFds& fds,
                                   pid_t process_group) {
  // Everything the child needs is allocated before fork: it may not allocate after.
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  int status_pipe[2];  // the child writes exec's errno here; exec closes it on success
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    return ErrnoError(absl::StrCat("cannot prepare to run ", path), errno);
  }
  UniqueFd status_read(status_pipe[0]);
  UniqueFd status_write(status_pipe[1]);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return ErrnoError(absl::StrCat("cannot run ", path), errno);
  if (pid == 0) {
    RunChild(path.c_str(), c_argv.data(), c_env.data(), fds, process_group, parent,
             status_write.get());
  }
  status_write.Reset();
  // Also here, so the child is in its group before the caller signals it, whichever runs first.
  setpgid(pid, process_group == 0 ? pid : process_group);
  int child_errno = 0;
  ssize_t n = 0;
  while ((n = read(status_read.get(), &child_errno, sizeof(child_errno))) < 0 && errno == EINTR) {
  }
  if (n == 0) return pid;  // exec succeeded
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return ErrnoError(absl::StrCat("cannot run ", path),
                    n == sizeof(child_errno) ? child_errno : EIO);
}

}  // namespace ablate::worker
