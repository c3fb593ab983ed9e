// A GoogleTest fixture for tests that run a real coordinator and real workers: the folder of
// Ablate's binaries, a scratch directory removed afterwards, the user token in ABLATE_TOKEN for
// the CLI processes a test starts (workers get their own through test::StartWorker), the
// processes' stderr for failure messages, and helpers for a sweep of tiny-model jobs.
// Header-only: it needs GoogleTest, which tests_support does not link.
#ifndef ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_
#define ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate::test {

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("ABLATE_TOKEN", kUserToken, 1);
    auto bin_dir = BinDir();
    ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
    bin_dir_ = *bin_dir;
    auto dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }

  void TearDown() override {
    workers_.clear();
    coordinator_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // What the workers and the coordinator wrote to stderr.
  std::string Logs() {
    std::string out;
    for (auto& w : workers_) absl::StrAppend(&out, "--- worker stderr\n", w->Stderr());
    if (coordinator_) absl::StrAppend(&out, "--- coordinator\n", coordinator_->process().Stderr());
    return out;
  }

  // A sweep of `jobs` tiny-model jobs differing in seed, each `steps` long, logging every step
  // and checkpointing every 20 under dir_/checkpoints; `extra_fixed` adds settings, one
  // "  name: value\n" line each. Returns the file's path.
  std::string WriteTinySweep(int jobs, int steps, const std::string& extra_fixed = "") {
    const std::string path = dir_ + "/sweep.yaml";
    std::ofstream out(path);
    out << "name: tiny\ngrid:\n  model: [tiny]\n  seed: [";
    for (int seed = 1; seed <= jobs; ++seed) out << (seed > 1 ? ", " : "") << seed;
    out << "]\nfixed:\n  steps: " << steps
        << "\n  batch_size: 4\n  context_length: 32\n  warmup_steps: 2\n"
        << "  learning_rate: 5e-3\n  log_every: 1\n  eval_batches: 2\n"
        << "  checkpoint_every: 20\n  cpu_threads: 1\n"
        << extra_fixed << "checkpoint_root: " << dir_ << "/checkpoints\n";
    return path;
  }

  // Submits `sweep_file` with the CLI, as a user would. Its stderr in the error when it fails.
  absl::Status Submit(const std::string& sweep_file) {
    auto submit = Subprocess::Start(
        {bin_dir_ + "/ablate", "--coordinator", coordinator_->grpc_address(), "submit",
         sweep_file});
    if (!submit.ok()) return submit.status();
    absl::StatusOr<int> exit = (*submit)->WaitFor(absl::Seconds(30));
    if (!exit.ok()) return exit.status();
    if (*exit != 0) {
      return absl::InternalError(absl::StrCat("ablate submit exited with ", *exit, ": ",
                                              (*submit)->Stderr()));
    }
    return absl::OkStatus();
  }

  // A worker of `slots` CPU slots named `id`, its work under dir_/id, its checkpoints allowed
  // under dir_/checkpoints.
  absl::StatusOr<std::unique_ptr<Subprocess>> StartNamedWorker(const std::string& id,
                                                               int slots) {
    return StartWorker(bin_dir_, coordinator_->grpc_address(), id, absl::StrCat(dir_, "/", id),
                       slots, {"--checkpoint-root", dir_ + "/checkpoints"});
  }

  // The coordinator's only sweep.
  absl::StatusOr<v1::Sweep> OnlySweep() {
    auto stub =
        v1::SweepService::NewStub(TokenChannel(coordinator_->grpc_address(), kViewerToken));
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::ListSweepsResponse sweeps;
    grpc::Status status = stub->ListSweeps(&context, {}, &sweeps);
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    if (sweeps.sweeps_size() != 1) return absl::NotFoundError("expected one sweep");
    return sweeps.sweeps(0);
  }

  // The one job of the only sweep, once `done` holds for it (polled), or the reason it never
  // did within `timeout`.
  absl::StatusOr<v1::Job> WaitForOnlyJob(const std::function<bool(const v1::Job&)>& done,
                                         absl::Duration timeout) {
    auto stub =
        v1::SweepService::NewStub(TokenChannel(coordinator_->grpc_address(), kViewerToken));
    const absl::Time deadline = absl::Now() + timeout;
    v1::Job last;
    while (absl::Now() < deadline) {
      absl::StatusOr<v1::Sweep> sweep = OnlySweep();
      if (!sweep.ok()) return sweep.status();
      v1::ListJobsRequest request;
      request.set_sweep_id(sweep->id());
      v1::ListJobsResponse jobs;
      grpc::ClientContext context;
      if (stub->ListJobs(&context, request, &jobs).ok() && jobs.jobs_size() == 1) {
        last = jobs.jobs(0);
        if (done(last)) return last;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return absl::DeadlineExceededError(absl::StrCat("job never got there; last seen at step ",
                                                    last.step(), ", ", last.message()));
  }

  std::string bin_dir_;
  std::string dir_;
  std::unique_ptr<TestCoordinator> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
};

}  // namespace ablate::test

#endif  // ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_
