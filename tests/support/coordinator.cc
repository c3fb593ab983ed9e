#include "tests/support/coordinator.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/support/tokens.h"

namespace ablate::test {

absl::StatusOr<std::string> BinDir() {
  const char* dir = std::getenv("ABLATE_BIN_DIR");
  if (dir == nullptr || *dir == '\0') {
    return absl::FailedPreconditionError(
        "ABLATE_BIN_DIR must name the folder of Ablate's binaries");
  }
  return std::string(dir);
}

absl::StatusOr<std::unique_ptr<Subprocess>> StartWorker(
    const std::string& bin_dir, const std::string& coordinator, const std::string& worker_id,
    const std::string& work_dir, int slots, const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {absl::StrCat(bin_dir, "/ablate-worker"),
                                   "--coordinator",
                                   coordinator,
                                   "--worker-id",
                                   worker_id,
                                   "--work-dir",
                                   work_dir,
                                   "--slots",
                                   absl::StrCat(slots)};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return Subprocess::Start(argv, TokenEnv(WorkerToken(worker_id)));
}

absl::StatusOr<std::unique_ptr<TestCoordinator>> TestCoordinator::Start(
    const std::string& bin_dir, const std::string& dir, const std::vector<std::string>& extra_args,
    int grpc_port, const std::vector<std::string>& worker_ids) {
  const std::string ports_file = absl::StrCat(dir, "/ports");
  // A ports file left by an earlier start would be read as this one's; none is the usual case.
  (void)std::remove(ports_file.c_str());
  const std::string token_file = absl::StrCat(dir, "/tokens");
  if (absl::Status s = WriteTokenFile(token_file, worker_ids); !s.ok()) return s;
  std::vector<std::string> argv = {absl::StrCat(bin_dir, "/ablate-coordinator"),
                                   "--listen",
                                   absl::StrCat("127.0.0.1:", grpc_port),
                                   "--http",
                                   "127.0.0.1:0",
                                   "--db",
                                   absl::StrCat(dir, "/a.db"),
                                   "--ports-file",
                                   ports_file,
                                   "--token-file",
                                   token_file};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv);
  if (!process.ok()) return process.status();

  absl::StatusOr<std::map<std::string, int>> ports = ReadPortsFile(ports_file, absl::Seconds(30));
  if (!ports.ok()) {
    return absl::Status(
        ports.status().code(),
        absl::StrCat(ports.status().message(), "; coordinator stderr:\n", (*process)->Stderr()));
  }
  return std::unique_ptr<TestCoordinator>(
      new TestCoordinator(*std::move(process), ports->at("grpc"), ports->at("http")));
}

TestCoordinator::TestCoordinator(std::unique_ptr<Subprocess> process, int grpc_port, int http_port)
    : process_(std::move(process)), grpc_port_(grpc_port), http_port_(http_port) {}

TestCoordinator::~TestCoordinator() {
  // Subprocess's destructor SIGKILLs whatever did not stop here.
  (void)Stop();
}

std::string TestCoordinator::grpc_address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }

absl::StatusOr<int> TestCoordinator::Stop(absl::Duration timeout) {
  process_->Signal(SIGTERM);
  return process_->WaitFor(timeout);
}

}  // namespace ablate::test
