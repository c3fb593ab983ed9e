// Runs the real `ablate-coordinator` binary for a test: on loopback ports the kernel picks,
// with its database in a scratch directory, and reports the ports it announced.
//
// A TestCoordinator owns the process: destroying it sends SIGTERM, waits a bounded time for a
// clean exit, then SIGKILLs. Not thread-safe.
#ifndef ABLATE_TESTS_SUPPORT_COORDINATOR_H_
#define ABLATE_TESTS_SUPPORT_COORDINATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace ablate::test {

// The folder holding Ablate's binaries: $ABLATE_BIN_DIR, which ablate_test sets to build/bin.
// FailedPrecondition when it is unset.
absl::StatusOr<std::string> BinDir();

// Starts `<bin_dir>/ablate-worker --coordinator <coordinator> --worker-id <worker_id>
// --work-dir <work_dir> --slots <slots>` plus `extra_args`, with the worker token of
// `worker_id` (tokens.h) in its environment: a worker daemon whose CPU slots run the real
// ablate-train unless `extra_args` names another `--trainer`.
absl::StatusOr<std::unique_ptr<Subprocess>> StartWorker(
    const std::string& bin_dir, const std::string& coordinator, const std::string& worker_id,
    const std::string& work_dir, int slots = 1, const std::vector<std::string>& extra_args = {});

class TestCoordinator {
 public:
  // Starts `<bin_dir>/ablate-coordinator --listen 127.0.0.1:<grpc_port> --http 127.0.0.1:0
  // --db <dir>/a.db --ports-file <dir>/ports --token-file <dir>/tokens` plus `extra_args`, the
  // token file granting tokens.h's user and viewer tokens and a worker token to each of
  // `worker_ids`, and waits up to 30 s for the
  // ports file (removed first, so a restart in the same `dir` waits for its own). A
  // `grpc_port` of 0 lets the kernel pick; a restart passes the port its clients know. The
  // error includes the coordinator's stderr when it did not come up.
  static absl::StatusOr<std::unique_ptr<TestCoordinator>> Start(
      const std::string& bin_dir, const std::string& dir,
      const std::vector<std::string>& extra_args = {}, int grpc_port = 0,
      const std::vector<std::string>& worker_ids = {});

  ~TestCoordinator();

  // "127.0.0.1:PORT" of the gRPC listener, as `ablate --coordinator` takes it.
  std::string grpc_address() const;
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  Subprocess& process() { return *process_; }

  // SIGTERM, then up to `timeout` for the exit status.
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(15));

 private:
  TestCoordinator(std::unique_ptr<Subprocess> process, int grpc_port, int http_port);

  std::unique_ptr<Subprocess> process_;
  const int grpc_port_;
  const int http_port_;
};

}  // namespace ablate::test

#endif  // ABLATE_TESTS_SUPPORT_COORDINATOR_H_
