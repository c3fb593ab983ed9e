#include "coordinator/scheduler/worker_roots.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

v1::WorkerInfo Rooted(const std::string& id, const std::vector<std::string>& checkpoint_roots,
                      const std::vector<std::string>& data_roots) {
  v1::WorkerInfo info;
  info.set_worker_id(id);
  for (const std::string& root : checkpoint_roots) info.add_checkpoint_roots(root);
  for (const std::string& root : data_roots) info.add_data_roots(root);
  return info;
}

v1::JobSpec Job(const std::string& checkpoint_dir, const std::string& dataset) {
  v1::JobSpec job;
  job.set_checkpoint_dir(checkpoint_dir);
  job.mutable_config()->set_dataset(dataset);
  return job;
}

TEST(WorkerRootsTest, OnlyAbsolutePathsAreJudged) {
  const RootedPaths absolute = RootedPathsOf(Job("/ckpt/s/j", "/data/set"));
  EXPECT_EQ(absolute.checkpoint_dir, "/ckpt/s/j");
  EXPECT_EQ(absolute.dataset, "/data/set");
  // Each worker takes a relative path from its own working directory; a builtin dataset is no
  // file.
  const RootedPaths relative = RootedPathsOf(Job("runs/s/j", "data/set"));
  EXPECT_EQ(relative.checkpoint_dir, "");
  EXPECT_EQ(relative.dataset, "");
  EXPECT_EQ(RootedPathsOf(Job("", "builtin:tiny")).dataset, "");
}

TEST(WorkerRootsTest, ARootHoldsWhatItsSpellingHolds) {
  const v1::WorkerInfo worker = Rooted("w1", {"/ckpt/", "/mnt/a/../b"}, {"/data"});
  EXPECT_TRUE(RootsHold(worker, RootKind::kCheckpoint, "/ckpt/s/j"));
  EXPECT_TRUE(RootsHold(worker, RootKind::kCheckpoint, "/mnt/b/s/j"));
  EXPECT_FALSE(RootsHold(worker, RootKind::kCheckpoint, "/ckpt2/s/j"));
  EXPECT_FALSE(RootsHold(worker, RootKind::kCheckpoint, "/ckpt/../etc"));
  // Each kind against its own roots.
  EXPECT_FALSE(RootsHold(worker, RootKind::kCheckpoint, "/data/s/j"));
  EXPECT_TRUE(RootsHold(worker, RootKind::kData, "/data/set"));
  EXPECT_TRUE(RootsHold(worker, RootedPaths{"/ckpt/s/j", "/data/set"}));
  EXPECT_FALSE(RootsHold(worker, RootedPaths{"/ckpt/s/j", "/other/set"}));
  // Nothing to judge.
  EXPECT_TRUE(RootsHold(worker, RootedPaths{}));
}

TEST(WorkerRootsTest, AWorkerWithoutRootsOfAKindTakesNoSuchPathUnlessItReportedNone) {
  // It refuses every checkpoint_dir, as ablate-worker does without --checkpoint-root.
  const v1::WorkerInfo data_only = Rooted("w1", {}, {"/data"});
  EXPECT_FALSE(RootsHold(data_only, RootKind::kCheckpoint, "/ckpt/s/j"));
  // An older worker says nothing of its roots: not ruled out.
  const v1::WorkerInfo old = Rooted("old", {}, {});
  EXPECT_TRUE(RootsHold(old, RootedPaths{"/ckpt/s/j", "/data/set"}));
  EXPECT_TRUE(SomeRootsHold({&data_only, &old}, RootKind::kCheckpoint, "/ckpt/s/j"));
  EXPECT_FALSE(SomeRootsHold({&data_only}, RootKind::kCheckpoint, "/ckpt/s/j"));
}

TEST(WorkerRootsTest, TheCheckpointFolderIsTheSweeps) {
  EXPECT_EQ(CheckpointFolder("/ckpt/s/s-0"), "/ckpt/s");
  EXPECT_EQ(CheckpointFolder(""), "");
}

TEST(WorkerRootsTest, OutsideEveryRootNamesTheFirstFiveWorkersRoots) {
  const v1::WorkerInfo w1 = Rooted("w1", {"/a", "/b"}, {});
  const v1::WorkerInfo w2 = Rooted("w2", {}, {"/d"});
  EXPECT_EQ(OutsideEveryRoot("checkpoint_dir /x/s/j", RootKind::kCheckpoint, {&w1, &w2}),
            "checkpoint_dir /x/s/j is outside every connected worker's --checkpoint-root (w1: "
            "/a, /b; w2: none)");
  const std::vector<const v1::WorkerInfo*> seven(7, &w2);
  EXPECT_EQ(OutsideEveryRoot("dataset /x", RootKind::kData, seven),
            "dataset /x is outside every connected worker's --data-root (w2: /d; w2: /d; w2: /d; "
            "w2: /d; w2: /d; 2 more)");
}

}  // namespace
}  // namespace ablate::coordinator
