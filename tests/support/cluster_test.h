// A GoogleTest fixture for tests that run a real coordinator and real workers: the folder of
// Ablate's binaries, a scratch directory removed afterwards, the user token in ABLATE_TOKEN for
// the CLI processes a test starts (workers get their own through test::StartWorker), the
// processes' stderr for failure messages, and helpers for a sweep of tiny-model jobs.
// Header-only: it needs GoogleTest, which tests_support does not link.
#ifndef ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_
#define ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate::test {

// The output of one `ablate` run.
struct Cli {
  int exit_code = -1;  // -1 when it did not start or did not exit within 30 s
  std::string out;
  std::string err;
};

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
    std::string path = dir_ + "/sweep.yaml";
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
    auto submit = Subprocess::Start({bin_dir_ + "/ablate", "--coordinator",
                                     coordinator_->grpc_address(), "submit", sweep_file});
    if (!submit.ok()) return submit.status();
    absl::StatusOr<int> exit = (*submit)->WaitFor(absl::Seconds(30));
    if (!exit.ok()) return exit.status();
    if (*exit != 0) {
      return absl::InternalError(
          absl::StrCat("ablate submit exited with ", *exit, ": ", (*submit)->Stderr()));
    }
    return absl::OkStatus();
  }

  // Runs `ablate --coordinator ADDRESS args...` to its end (at most 30 s).
  Cli Ablate(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {bin_dir_ + "/ablate", "--coordinator",
                                     coordinator_->grpc_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    Cli out;
    auto process = Subprocess::Start(argv);
    if (!process.ok()) return out;
    absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(30));
    out.exit_code = code.ok() ? *code : -1;
    out.out = (*process)->Stdout();
    out.err = (*process)->Stderr();
    return out;
  }

  // Whether `count` workers are connected, as `ablate workers --json` says within 10 s.
  bool Connected(int count) {
    for (const absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;
         absl::SleepFor(absl::Milliseconds(100))) {
      const std::string json = Ablate({"workers", "--json"}).out;
      int connected = 0;
      for (size_t at = json.find(R"("connected":true)"); at != std::string::npos;
           at = json.find(R"("connected":true)", at + 1)) {
        ++connected;
      }
      if (connected == count) return true;
    }
    return false;
  }

  // A worker of `slots` CPU slots named `id`, its work under dir_/id, its checkpoints allowed
  // under dir_/checkpoints; `extra_args` are added to its command line.
  absl::StatusOr<std::unique_ptr<Subprocess>> StartNamedWorker(
      const std::string& id, int slots, const std::vector<std::string>& extra_args = {}) {
    std::vector<std::string> args = {"--checkpoint-root", dir_ + "/checkpoints"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return StartWorker(bin_dir_, coordinator_->grpc_address(), id, absl::StrCat(dir_, "/", id),
                       slots, args);
  }

  // A coordinator that knows one worker, `id`, and that worker (StartNamedWorker).
  void StartCoordinatorAndWorker(const std::string& id, int slots,
                                 const std::vector<std::string>& extra_worker_args = {}) {
    auto coordinator = TestCoordinator::Start(bin_dir_, dir_, {}, 0, {id});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    auto worker = StartNamedWorker(id, slots, extra_worker_args);
    ASSERT_TRUE(worker.ok()) << worker.status();
    workers_.push_back(*std::move(worker));
  }

  // A coordinator that knows the workers "first" and "second", worker "first" with `slots`
  // slots, and one sweep of WriteTinySweep(1, steps, extra_fixed) submitted to them.
  absl::Status StartFirstWorkerWithOneJob(int slots, int steps,
                                          const std::string& extra_fixed = "") {
    auto coordinator = TestCoordinator::Start(bin_dir_, dir_, {}, 0, {"first", "second"});
    if (!coordinator.ok()) return coordinator.status();
    coordinator_ = std::move(*coordinator);
    auto first = StartNamedWorker("first", slots);
    if (!first.ok()) return first.status();
    workers_.push_back(std::move(*first));
    return Submit(WriteTinySweep(/*jobs=*/1, steps, extra_fixed));
  }

  // SIGTERM to worker "first", which must exit 0 within `grace`.
  absl::Status DrainFirstWorker(absl::Duration grace) {
    workers_.front()->Signal(SIGTERM);
    absl::StatusOr<int> exit = workers_.front()->WaitFor(grace);
    if (!exit.ok()) return absl::DeadlineExceededError("the worker did not exit");
    if (*exit != 0) return absl::InternalError(absl::StrCat("the worker exited ", *exit));
    return absl::OkStatus();
  }

  // The only job, once handed back (PENDING), then started on worker "second" with `slots`
  // slots and run to SUCCEEDED there.
  absl::StatusOr<v1::Job> FinishOnSecondWorker(int slots) {
    absl::StatusOr<v1::Job> job = WaitForOnlyJob(
        [](const v1::Job& j) { return j.state() == v1::JOB_STATE_PENDING; }, absl::Seconds(20));
    if (!job.ok()) return job.status();
    auto second = StartNamedWorker("second", slots);
    if (!second.ok()) return second.status();
    workers_.push_back(std::move(*second));
    return WaitForOnlyJob([](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; },
                          absl::Minutes(3));
  }

  // A drain in the middle of a run, as Kubernetes or Slurm starts one, and what must follow:
  // once the only job passed step 25 (a periodic checkpoint, every 20 steps, behind it),
  // SIGTERM to worker "first", which must exit 0 within `grace` with the job's newest
  // checkpoint at the step its trainer reached (at least the step seen before the signal, short
  // of the job's `steps`); then the job, handed back, must run to SUCCEEDED on worker "second"
  // with `slots` slots, in a second attempt. Records the worker's exit time and the step the
  // job stopped at as test properties.
  void DrainFirstWorkerThenFinishOnSecond(int slots, int steps, absl::Duration grace) {
    absl::StatusOr<v1::Job> job =
        WaitForOnlyJob([](const v1::Job& j) { return j.step() >= 25; }, absl::Minutes(2));
    ASSERT_TRUE(job.ok()) << job.status() << Logs();
    const int64_t seen_step = job->step();
    const absl::Time sent = absl::Now();
    absl::Status drained = DrainFirstWorker(grace);
    ASSERT_TRUE(drained.ok()) << drained << Logs();
    RecordProperty("worker_exit_ms", absl::ToInt64Milliseconds(absl::Now() - sent));

    // The trainer saved where it stopped, not only the periodic checkpoint before it.
    const int64_t stopped_at = NewestCheckpointStep(job->spec().checkpoint_dir());
    EXPECT_GE(stopped_at, seen_step) << Logs();
    EXPECT_LT(stopped_at, steps);
    RecordProperty("stopped_at_step", stopped_at);

    job = FinishOnSecondWorker(slots);
    ASSERT_TRUE(job.ok()) << job.status() << Logs();
    EXPECT_EQ(job->attempts(), 2u);
    EXPECT_EQ(job->worker_id(), "second");
    EXPECT_EQ(job->step(), steps);
  }

  // The newest step-N folder under a job's checkpoint directory, or -1.
  static int64_t NewestCheckpointStep(const std::filesystem::path& dir) {
    int64_t newest = -1;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
      const std::string name = entry.path().filename().string();
      int64_t step = 0;
      if (absl::StartsWith(name, "step-") && absl::SimpleAtoi(name.substr(5), &step)) {
        newest = std::max(newest, step);
      }
    }
    return newest;
  }

  // The coordinator's only sweep.
  absl::StatusOr<v1::Sweep> OnlySweep() {
    auto stub = v1::SweepService::NewStub(TokenChannel(coordinator_->grpc_address(), kViewerToken));
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::ListSweepsResponse sweeps;
    grpc::Status status = stub->ListSweeps(&context, {}, &sweeps);
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    if (sweeps.sweeps_size() != 1) return absl::NotFoundError("expected one sweep");
    return sweeps.sweeps(0);
  }

  // The only sweep's jobs in expansion order.
  absl::StatusOr<std::vector<v1::Job>> OnlySweepJobs() {
    absl::StatusOr<v1::Sweep> sweep = OnlySweep();
    if (!sweep.ok()) return sweep.status();
    auto stub = v1::SweepService::NewStub(TokenChannel(coordinator_->grpc_address(), kViewerToken));
    grpc::ClientContext context;
    v1::ListJobsRequest request;
    request.set_sweep_id(sweep->id());
    v1::ListJobsResponse jobs;
    grpc::Status status = stub->ListJobs(&context, request, &jobs);
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    return std::vector<v1::Job>(jobs.jobs().begin(), jobs.jobs().end());
  }

  // The one job of the only sweep, once `done` holds for it (polled), or the reason it never
  // did within `timeout`.
  absl::StatusOr<v1::Job> WaitForOnlyJob(const std::function<bool(const v1::Job&)>& done,
                                         absl::Duration timeout) {
    auto stub = v1::SweepService::NewStub(TokenChannel(coordinator_->grpc_address(), kViewerToken));
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
    return absl::DeadlineExceededError(
        absl::StrCat("job never got there; last seen at step ", last.step(), ", ", last.message()));
  }

  std::string bin_dir_;
  std::string dir_;
  std::unique_ptr<TestCoordinator> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
};

}  // namespace ablate::test

#endif  // ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_
