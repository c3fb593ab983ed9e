// ablate-coordinator: parses flags, starts a CoordinatorServer, reloads its token file on
// SIGHUP and stops it cleanly on SIGINT or SIGTERM. Every flag can also come from the
// environment variable named in its help. It does not start without a token file: whoever can
// reach its ports could otherwise submit, cancel and speak for any worker.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/log.h"
#include "coordinator/server.h"

namespace {

// Writes "grpc=PORT\nhttp=PORT\n" to a temporary file and renames it over `path`, so a script
// polling for the file never reads half of it.
absl::Status WritePortsFile(const std::string& path, int grpc_port, int http_port) {
  std::string temp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << "grpc=" << grpc_port << "\nhttp=" << http_port << "\n";
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temp));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::filesystem::remove(temp, error);
    return absl::InternalError(absl::StrCat("cannot rename ", temp, " to ", path));
  }
  return absl::OkStatus();
}

absl::Status MakeParentDir(const std::string& file) {
  std::filesystem::path parent = std::filesystem::path(file).parent_path();
  if (parent.empty()) return absl::OkStatus();
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", parent.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  ablate::coordinator::CoordinatorOptions options;
  options.web_dir = ABLATE_DEFAULT_WEB_DIR;
  std::string ports_file;
  double lease_timeout_s = absl::ToDoubleSeconds(options.lease_timeout);
  double worker_retention_s = absl::ToDoubleSeconds(options.worker_retention);

  CLI::App app{"Ablate coordinator: stores sweeps, places their jobs on workers, serves the API",
               "ablate-coordinator"};
  app.add_option("--listen", options.grpc_address, "gRPC address, host:port (port 0: any)")
      ->envname("ABLATE_LISTEN")
      ->capture_default_str();
  app.add_option("--http", options.http_address, "HTTP address, host:port (port 0: any)")
      ->envname("ABLATE_HTTP")
      ->capture_default_str();
  app.add_option("--db", options.db_path, "SQLite database; its folder is created")
      ->envname("ABLATE_DB")
      ->capture_default_str();
  app.add_option("--web-dir", options.web_dir, "folder of the web app served at /")
      ->envname("ABLATE_WEB_DIR")
      ->capture_default_str();
  app.add_option("--ports-file", ports_file,
                 "after binding, write grpc=PORT and http=PORT lines to this file")
      ->envname("ABLATE_PORTS_FILE");
  app.add_option("--lease-timeout-s", lease_timeout_s,
                 "seconds a worker may stay disconnected before its jobs are requeued; a worker "
                 "that has had no answer for half of it stops its trainers first")
      ->envname("ABLATE_LEASE_TIMEOUT_S")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--worker-retention-s", worker_retention_s,
                 "seconds a disconnected worker stays listed before it is forgotten")
      ->envname("ABLATE_WORKER_RETENTION_S")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--token-file", options.token_file,
                 "bearer tokens and their roles, one 'ROLE TOKEN [WORKER_ID]' a line; "
                 "reread on SIGHUP")
      ->envname("ABLATE_TOKEN_FILE")
      ->required();
  app.add_option("--tls-cert", options.tls_cert_file,
                 "PEM certificate chain: serve gRPC and HTTP over TLS only (with --tls-key)")
      ->envname("ABLATE_TLS_CERT_FILE");
  app.add_option("--tls-key", options.tls_key_file, "PEM private key of --tls-cert")
      ->envname("ABLATE_TLS_KEY_FILE");
  app.add_option("--tls-client-ca", options.tls_client_ca_file,
                 "PEM CA: gRPC clients (workers, the CLI) must present a certificate it signed")
      ->envname("ABLATE_TLS_CLIENT_CA_FILE");
  bool public_metrics = false;
  app.add_flag("--public-metrics", public_metrics,
               "serve GET /metrics without a token (else it needs viewer or user)")
      ->envname("ABLATE_PUBLIC_METRICS");
  if (std::optional<int> exit_code = ablate::ParseCommandLine(app, argc, argv)) {
    return *exit_code;
  }
  options.metrics_need_token = !public_metrics;
  options.lease_timeout = absl::Seconds(lease_timeout_s);
  options.worker_retention = absl::Seconds(worker_retention_s);

  // Blocked before any thread starts, so every thread inherits the mask and only sigwait
  // below receives these signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (absl::Status s = MakeParentDir(options.db_path); !s.ok()) {
    ABLATE_LOG(ERROR) << "cannot start error=\"" << s.message() << "\"";
    return 1;
  }
  ablate::coordinator::CoordinatorServer server(options);
  if (absl::Status s = server.Start(); !s.ok()) {
    ABLATE_LOG(ERROR) << "cannot start error=\"" << s.message() << "\"";
    return 1;
  }
  if (!ports_file.empty()) {
    absl::Status s = WritePortsFile(ports_file, server.grpc_port(), server.http_port());
    if (!s.ok()) {
      ABLATE_LOG(ERROR) << "cannot start error=\"" << s.message() << "\"";
      return 1;
    }
  }

  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGHUP) {
    if (absl::Status s = server.ReloadTokens(); s.ok()) {
      ABLATE_LOG(INFO) << "token file reloaded";
    } else {
      ABLATE_LOG(ERROR) << "token file not reloaded, the old tokens stay error=\"" << s.message()
                        << "\"";
    }
  }
  ABLATE_LOG(INFO) << "stopping signal=" << strsignal(signal_number);
  server.Shutdown();
  return 0;
}
