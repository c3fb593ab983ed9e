// A whole sweep through the real binaries: ablate-coordinator, two ablate-worker daemons, each
// running ablate-train per job, driven by the `ablate` CLI, on loopback. Asserts what a user
// relies on: every job succeeds, its loss falls, its metrics are in the SQLite store, its
// checkpoint is on disk; and that a coordinator killed with SIGKILL mid-sweep comes back on
// the same database and the workers carry the sweep to the end.
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "coordinator/store/store.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate {
namespace {

constexpr absl::Duration kSweepTimeout = absl::Seconds(240);

class EndToEndTest : public test::ClusterTest {
 protected:
  // Two tiny-model jobs, different seeds, the same data order: a minute of CPU in all.
  std::string WriteSweep(int steps) {
    std::string path = dir_ + "/sweep.yaml";
    std::ofstream(path) << "name: e2e\n"
                        << "grid:\n  model: [tiny]\n  seed: [1, 2]\n"
                        << "fixed:\n  steps: " << steps
                        << "\n  batch_size: 8\n  context_length: 64\n  warmup_steps: 5\n"
                        << "  learning_rate: 5e-3\n  log_every: 5\n  eval_batches: 4\n"
                        << "  checkpoint_every: 20\n"
                        << "checkpoint_root: " << dir_ << "/checkpoints\n";
    return path;
  }

  void StartWorkers(const std::string& coordinator) {
    for (int i = 1; i <= 2; ++i) {
      auto worker = test::StartWorker(bin_dir_, coordinator, absl::StrCat("e2e-", i),
                                      absl::StrCat(dir_, "/worker-", i), /*slots=*/1,
                                      {"--checkpoint-root", dir_ + "/checkpoints"});
      ASSERT_TRUE(worker.ok()) << worker.status();
      workers_.push_back(std::move(*worker));
    }
  }

  std::unique_ptr<v1::SweepService::Stub> Stub(const std::string& address) {
    return v1::SweepService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
};

TEST_F(EndToEndTest, TwoJobSweepSucceedsWithFallingLossAndStoredMetrics) {
  auto coordinator = test::TestCoordinator::Start(bin_dir_, dir_, {}, 0, {"e2e-1", "e2e-2"});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = std::move(*coordinator);
  StartWorkers(coordinator_->grpc_address());

  auto cli =
      test::Subprocess::Start({bin_dir_ + "/ablate", "--coordinator", coordinator_->grpc_address(),
                               "submit", WriteSweep(80), "--watch"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  auto cli_exit = (*cli)->WaitFor(kSweepTimeout);
  ASSERT_TRUE(cli_exit.ok()) << cli_exit.status() << Logs();
  EXPECT_EQ(*cli_exit, 0) << (*cli)->Stdout() << (*cli)->Stderr() << Logs();
  EXPECT_NE((*cli)->Stdout().find("SUCCEEDED"), std::string::npos) << (*cli)->Stdout();

  auto stub = Stub(coordinator_->grpc_address());
  v1::ListSweepsResponse sweeps;
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", test::kUserToken));
    ASSERT_TRUE(stub->ListSweeps(&context, {}, &sweeps).ok());
  }
  ASSERT_EQ(sweeps.sweeps_size(), 1);
  EXPECT_EQ(sweeps.sweeps(0).state(), v1::SWEEP_STATE_COMPLETED);
  v1::ListJobsRequest list;
  list.set_sweep_id(sweeps.sweeps(0).id());
  v1::ListJobsResponse jobs;
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", test::kUserToken));
    ASSERT_TRUE(stub->ListJobs(&context, list, &jobs).ok());
  }
  ASSERT_EQ(jobs.jobs_size(), 2);
  std::vector<std::string> job_ids;
  for (const v1::Job& job : jobs.jobs()) {
    SCOPED_TRACE(job.spec().job_id());
    job_ids.push_back(job.spec().job_id());
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.message();
    EXPECT_EQ(job.step(), 80);
    ASSERT_TRUE(job.has_final_eval_loss());
    EXPECT_LT(job.final_eval_loss(), 4.5);  // a byte-uniform guess scores ln 256 = 5.55
    EXPECT_TRUE(std::filesystem::exists(job.spec().checkpoint_dir()))
        << job.spec().checkpoint_dir();
  }
  // Both workers took a job: one slot each.
  EXPECT_NE(jobs.jobs(0).worker_id(), jobs.jobs(1).worker_id());

  // The store, opened again after the coordinator stopped, holds every series.
  ASSERT_TRUE(coordinator_->Stop().ok());
  coordinator_.reset();
  auto store = coordinator::Store::Open(dir_ + "/a.db", RealClock());
  ASSERT_TRUE(store.ok()) << store.status();
  for (const std::string& job_id : job_ids) {
    SCOPED_TRACE(job_id);
    auto series = (*store)->ReadMetrics(job_id, {}, 1000);
    ASSERT_TRUE(series.ok()) << series.status();
    std::map<std::string, v1::MetricSeries> by_name;
    for (const auto& s : *series) by_name[s.name()] = s;
    for (const char* name : {"train/loss", "train/lr", "train/tokens_per_sec", "train/grad_norm",
                             "eval/loss", "eval/perplexity"}) {
      EXPECT_TRUE(by_name.count(name)) << name;
    }
    const v1::MetricSeries& loss = by_name["train/loss"];
    ASSERT_GE(loss.values_size(), 10);
    EXPECT_LT(loss.values(loss.values_size() - 1), 0.8 * loss.values(0));
  }
}

TEST_F(EndToEndTest, SweepSurvivesCoordinatorKilledWithSigkill) {
  auto port = test::UnusedLoopbackPort();
  ASSERT_TRUE(port.ok());
  const std::string address = absl::StrCat("127.0.0.1:", *port);
  ASSERT_TRUE(test::WriteTokenFile(dir_ + "/tokens", {"e2e-1", "e2e-2"}).ok());
  auto start_coordinator = [&] {
    return test::Subprocess::Start({bin_dir_ + "/ablate-coordinator", "--listen", address, "--http",
                                    "127.0.0.1:0", "--db", dir_ + "/a.db", "--ports-file",
                                    dir_ + "/ports", "--token-file", dir_ + "/tokens"});
  };
  auto first = start_coordinator();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(test::ReadPortsFile(dir_ + "/ports", absl::Seconds(30)).ok());
  StartWorkers(address);

  auto submit = test::Subprocess::Start(
      {bin_dir_ + "/ablate", "--coordinator", address, "submit", WriteSweep(150)});
  ASSERT_TRUE(submit.ok());
  ASSERT_EQ(*(*submit)->WaitFor(absl::Seconds(30)), 0) << (*submit)->Stderr();

  // Kill it once both jobs are running, then start it again on the same port and database.
  auto stub = Stub(address);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    v1::ListSweepsResponse sweeps;
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", test::kUserToken));
    ASSERT_TRUE(stub->ListSweeps(&context, {}, &sweeps).ok());
    if (sweeps.sweeps_size() == 1 && sweeps.sweeps(0).counts().running() == 2) break;
    ASSERT_LT(absl::Now(), deadline) << "jobs never ran\n" << Logs();
    absl::SleepFor(absl::Milliseconds(200));
  }
  (*first)->Signal(SIGKILL);
  ASSERT_TRUE((*first)->WaitFor(absl::Seconds(10)).ok());
  std::filesystem::remove(dir_ + "/ports");
  auto second = start_coordinator();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(test::ReadPortsFile(dir_ + "/ports", absl::Seconds(30)).ok());

  // A new channel: the old one still holds the dead server's connection.
  stub = Stub(address);
  v1::ListSweepsResponse sweeps;
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", test::kUserToken));
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = stub->ListSweeps(&context, {}, &sweeps);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << (*second)->Stderr();
  }
  ASSERT_EQ(sweeps.sweeps_size(), 1);
  auto watch = test::Subprocess::Start(
      {bin_dir_ + "/ablate", "--coordinator", address, "watch", sweeps.sweeps(0).id()});
  ASSERT_TRUE(watch.ok());
  auto watch_exit = (*watch)->WaitFor(kSweepTimeout);
  ASSERT_TRUE(watch_exit.ok()) << Logs() << (*second)->Stderr();
  EXPECT_EQ(*watch_exit, 0) << (*watch)->Stdout() << (*watch)->Stderr() << Logs()
                            << (*second)->Stderr();
  (*second)->Signal(SIGTERM);
  EXPECT_EQ(*(*second)->WaitFor(absl::Seconds(15)), 0);
}

}  // namespace
}  // namespace ablate
