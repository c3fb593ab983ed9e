// Placement by the roots workers report: a job goes only to a worker whose --checkpoint-root
// and --data-root hold its absolute paths, waits saying so when no connected worker's do, and
// never holds up jobs that some worker's roots hold.
#include <string>
#include <vector>

#include "coordinator/scheduler/scheduler_test_fixture.h"

namespace ablate::coordinator::scheduler_test {
namespace {

// Worker `id` with `cpu_slots` CPU slots and the roots it reports.
v1::WorkerInfo Rooted(const std::string& id, int cpu_slots,
                      const std::vector<std::string>& checkpoint_roots,
                      const std::vector<std::string>& data_roots) {
  v1::WorkerInfo info = Worker(id, cpu_slots);
  for (const std::string& root : checkpoint_roots) info.add_checkpoint_roots(root);
  for (const std::string& root : data_roots) info.add_data_roots(root);
  return info;
}

class RootPlacementTest : public SchedulerTest {
 protected:
  // Sweep `id` of one CPU job per dataset in `datasets`, checkpointing in
  // <checkpoint_root>/<id>/<job id> as a submitted sweep's jobs do.
  void AddSweepUnder(const std::string& id, const std::string& checkpoint_root,
                     const std::vector<std::string>& datasets) {
    std::vector<v1::JobSpec> jobs;
    for (size_t i = 0; i < datasets.size(); ++i) {
      v1::JobSpec& job = jobs.emplace_back(JobOf(id, i));
      job.set_checkpoint_dir(absl::StrCat(checkpoint_root, "/", id, "/", job.job_id()));
      job.mutable_config()->set_dataset(datasets[i]);
    }
    QueueSweep(id, jobs);
  }

  std::shared_ptr<FakeLink> Connect(const v1::WorkerInfo& info) {
    auto link = std::make_shared<FakeLink>();
    EXPECT_TRUE(scheduler_->AddWorker(info, link).ok());
    return link;
  }

  bool MessageIs(const std::string& job_id, const std::string& message) {
    return testing::WaitUntil([&] { return Job(job_id).message() == message; });
  }
};

TEST_F(RootPlacementTest, AJobGoesToTheWorkerWhoseCheckpointRootHoldsIt) {
  // w1 comes first in placement order and has a free slot, but not the root.
  auto w1 = Connect(Rooted("w1", 1, {"/ckpt-a"}, {"/data"}));
  auto w2 = Connect(Rooted("w2", 1, {"/ckpt-b/"}, {"/data"}));
  AddSweepUnder("s", "/ckpt-b", {"/data/set"});
  EXPECT_EQ(w2->Await(1).at(0).assign().job().job_id(), "s-0");
  EXPECT_EQ(Job("s-0").worker_id(), "w2");
  Round();
  EXPECT_EQ(w1->Count(), 0u);
}

TEST_F(RootPlacementTest, AJobUnderNoRootWaitsSayingSoUntilAWorkerWithTheRootConnects) {
  auto w1 = Connect(Rooted("w1", 2, {"/ckpt"}, {"/data"}));
  AddSweepUnder("s", "/elsewhere", {"/data/set", "/data/set"});
  const std::string why =
      "waiting: checkpoint_dir /elsewhere/s/<job id> is outside every connected worker's "
      "--checkpoint-root (w1: /ckpt)";
  ASSERT_TRUE(MessageIs("s-0", why)) << Job("s-0").message();
  EXPECT_EQ(Job("s-1").message(), why);
  EXPECT_EQ(w1->Count(), 0u);

  // One slot for two jobs: one is placed there, and the other no longer says it waits for a
  // root.
  auto w2 = Connect(Rooted("w2", 1, {"/elsewhere"}, {"/data"}));
  EXPECT_EQ(w2->Await(1).at(0).assign().job().job_id(), "s-0");
  ASSERT_TRUE(MessageIs("s-1", "")) << Job("s-1").message();
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(w1->Count(), 0u);
}

TEST_F(RootPlacementTest, AJobWhoseDatasetNoRootHoldsWaitsAndTheOthersGo) {
  auto w1 = Connect(Rooted("w1", 2, {"/ckpt"}, {"/data"}));
  // The dataset is a grid axis: s-0's lies outside every root, s-1's does not, and s-0 ahead of
  // it holds nothing up.
  AddSweepUnder("s", "/ckpt", {"/other/set", "/data/set"});
  EXPECT_EQ(w1->Await(1).at(0).assign().job().job_id(), "s-1");
  ASSERT_TRUE(MessageIs("s-0",
                        "waiting: dataset /other/set is outside every connected worker's "
                        "--data-root (w1: /data)"))
      << Job("s-0").message();
  Round();
  EXPECT_EQ(w1->Count(), 1u);

  auto w2 = Connect(Rooted("w2", 1, {"/ckpt"}, {"/other"}));
  EXPECT_EQ(w2->Await(1).at(0).assign().job().job_id(), "s-0");
  EXPECT_EQ(Job("s-0").message(), "");
}

TEST_F(RootPlacementTest, AnOlderSweepNoWorkerTakesDoesNotHoldUpAYoungerOne) {
  auto w1 = Connect(Rooted("w1", 1, {"/ckpt"}, {"/data"}));
  AddSweepUnder("far", "/elsewhere", {"/data/set"});
  AddSweepUnder("near", "/ckpt", {"/data/set"});
  EXPECT_EQ(w1->Await(1).at(0).assign().job().job_id(), "near-0");
  EXPECT_EQ(Job("far-0").state(), v1::JOB_STATE_PENDING);
}

TEST_F(RootPlacementTest, AWorkerThatReportedNoRootsTakesAnyPath) {
  // An older worker, whose roots are unknown: only the worker itself can tell.
  auto old = Connect(Worker("old", 1));
  AddSweepUnder("s", "/anywhere", {"/any/set"});
  EXPECT_EQ(old->Await(1).at(0).assign().job().job_id(), "s-0");
}

TEST_F(RootPlacementTest, RelativePathsAndBuiltinDatasetsAreNotJudged) {
  // Each worker takes a relative path from its own working directory, which the coordinator
  // does not know.
  auto w1 = Connect(Rooted("w1", 2, {"/ckpt"}, {"/data"}));
  AddSweepUnder("s", "runs/checkpoints", {"data/set", "builtin:tiny"});
  std::vector<v1::CoordinatorMessage> sent = w1->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assign().job().job_id(), "s-0");
  EXPECT_EQ(sent[1].assign().job().job_id(), "s-1");
}

}  // namespace
}  // namespace ablate::coordinator::scheduler_test
