#include "coordinator/api/root_check.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::Worker Connected(const std::string& id, const std::vector<std::string>& checkpoint_roots,
                     const std::vector<std::string>& data_roots) {
  v1::Worker worker;
  worker.set_connected(true);
  v1::WorkerInfo& info = *worker.mutable_info();
  info.set_worker_id(id);
  for (const std::string& root : checkpoint_roots) info.add_checkpoint_roots(root);
  for (const std::string& root : data_roots) info.add_data_roots(root);
  return worker;
}

v1::JobSpec Job(const std::string& checkpoint_dir, const std::string& dataset) {
  v1::JobSpec job;
  job.set_checkpoint_dir(checkpoint_dir);
  job.mutable_config()->set_dataset(dataset);
  return job;
}

TEST(RootWarningsTest, PathsInsideSomeConnectedWorkersRootsWarnNothing) {
  const std::vector<v1::Worker> workers = {Connected("w1", {"/a"}, {"/data"}),
                                           Connected("w2", {"/ckpt/"}, {"/data2"})};
  EXPECT_THAT(
      RootWarnings(workers, {Job("/ckpt/s/j0", "/data2/set"), Job("/ckpt/s/j1", "/data/x")}),
      IsEmpty());
}

TEST(RootWarningsTest, ACheckpointDirOutsideEveryWorkersRootsIsNamedOnce) {
  const std::vector<v1::Worker> workers = {Connected("w1", {"/a", "/b"}, {"/data"}),
                                           Connected("w2", {}, {"/data"})};
  EXPECT_THAT(RootWarnings(workers, {Job("/ab/s/j0", ""), Job("/ab/s/j1", "")}),
              ElementsAre("checkpoint_dir /ab/s/j0 is outside every connected worker's "
                          "--checkpoint-root (w1: /a, /b; w2: none); the sweep's jobs will wait "
                          "until a worker with such a root connects"));
}

TEST(RootWarningsTest, EachDatasetOutsideEveryWorkersRootsIsNamedWithItsJobs) {
  const std::vector<v1::Worker> workers = {Connected("w1", {"/ckpt"}, {"/data"})};
  EXPECT_THAT(
      RootWarnings(workers, {Job("/ckpt/s/j0", "/data2/set"), Job("/ckpt/s/j1", "/data/../x"),
                             Job("/ckpt/s/j2", "/data2/set"), Job("/ckpt/s/j3", "/data/ok"),
                             Job("/ckpt/s/j4", "builtin:tiny")}),
      ElementsAre("dataset /data2/set is outside every connected worker's --data-root (w1: "
                  "/data); its 2 jobs will wait until a worker with such a root connects",
                  "dataset /data/../x is outside every connected worker's --data-root (w1: "
                  "/data); its job will wait until a worker with such a root connects"));
}

TEST(RootWarningsTest, RelativePathsAndWorkersOfUnknownRootsAreNotJudged) {
  v1::Worker gone = Connected("gone", {"/elsewhere"}, {"/elsewhere"});
  gone.set_connected(false);
  const std::vector<v1::Worker> workers = {Connected("old", {}, {}), gone};
  // Only an older worker and a disconnected one: nobody to ask.
  EXPECT_THAT(RootWarnings(workers, {Job("/x/s/j0", "/y/set")}), IsEmpty());
  // An older worker beside one whose roots hold nothing of the sweep: the scheduler places the
  // sweep's jobs on the older one, so they do not wait.
  EXPECT_THAT(RootWarnings({Connected("old", {}, {}), Connected("w1", {"/ckpt"}, {"/data"})},
                           {Job("/x/s/j0", "/y/set")}),
              IsEmpty());
  // A relative path is taken from each worker's own working directory.
  EXPECT_THAT(RootWarnings({Connected("w1", {"/ckpt"}, {"/data"})},
                           {Job("runs/checkpoints/s/j0", "data/set")}),
              IsEmpty());
}

TEST(RootWarningsTest, ALargeFleetIsNamedInPart) {
  std::vector<v1::Worker> workers;
  workers.reserve(7);
  for (int i = 0; i < 7; ++i) workers.push_back(Connected("w" + std::to_string(i), {"/c"}, {"/d"}));
  const std::vector<std::string> warnings = RootWarnings(workers, {Job("/x/s/j0", "")});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0],
              ::testing::HasSubstr("(w0: /c; w1: /c; w2: /c; w3: /c; w4: /c; 2 more)"));
}

}  // namespace
}  // namespace ablate::coordinator
