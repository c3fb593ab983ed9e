// Helpers for tests that run Ablate's real binaries: start a program with arguments and extra
// environment, collect what it prints, wait for it with a bound, signal it, read the ports a
// server announces, and make scratch directories.
//
// A Subprocess owns its child: the child runs in a process group of its own (so a signal
// reaches the helpers it spawns, as Chromium does) and is killed and reaped when the
// Subprocess is destroyed. Its stdout and stderr go to unlinked temporary files rather than
// pipes, so a chatty child never blocks on a full pipe while the test does something else.
// Not thread-safe: use a Subprocess from one thread.
#ifndef ABLATE_TESTS_SUPPORT_PROCESS_H_
#define ABLATE_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ablate::test {

class Subprocess {
 public:
  // Runs argv[0] (looked up on PATH when it has no '/') with `argv`, in the current directory,
  // with this process's environment plus `env` (which overrides variables of the same name).
  // stdin is /dev/null. InvalidArgument for an empty argv; Internal when it cannot start.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});

  ~Subprocess();  // SIGKILLs the process group if still running, then reaps the child
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits up to `timeout` for the child to exit. Returns its exit code, or 128 + the signal
  // that killed it (as a shell reports it); DeadlineExceeded while it still runs. Once it
  // has ended, every later call returns the same value at once.
  absl::StatusOr<int> WaitFor(absl::Duration timeout);

  // Sends `sig` to the child's process group. Does nothing once the child has been reaped.
  void Signal(int sig);

  // Everything the child has written so far.
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  Subprocess(pid_t pid, int stdout_fd, int stderr_fd);

  const pid_t pid_;
  const int stdout_fd_;
  const int stderr_fd_;
  std::optional<int> exit_;  // set once reaped
};

// Reads a ports file a server writes once it listens ("grpc=PORT\nhttp=PORT\n"), waiting up
// to `timeout` until it holds a port for each of `names`. Returns name -> port for every
// complete line. DeadlineExceeded when a name is still missing at the deadline.
absl::StatusOr<std::map<std::string, int>> ReadPortsFile(const std::string& path,
                                                         absl::Duration timeout,
                                                         const std::vector<std::string>& names = {
                                                             "grpc", "http"});

// A new empty directory under $TMPDIR (or /tmp). The caller removes it.
absl::StatusOr<std::string> MakeTempDir();

// A loopback TCP port in 20000-31999 (below the kernel's ephemeral ports) that was free a
// moment ago: bound, then closed.
absl::StatusOr<int> UnusedLoopbackPort();

}  // namespace ablate::test

#endif  // ABLATE_TESTS_SUPPORT_PROCESS_H_
