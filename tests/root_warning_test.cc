// A sweep whose paths no connected worker accepts, through the real coordinator, worker and CLI
// processes (the fake trainer in ablate-train's place): the worker reports its --checkpoint-root
// and --data-root as it connects, `ablate submit` warns of a checkpoint_dir or dataset outside
// them, while the sweep is still submitted (a worker with such roots may come later), and its
// job waits, saying why, rather than being handed to a worker that would refuse it. Seconds.
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RootWarningTest : public test::ClusterTest {
 protected:
  // A one-job sweep named `name` checkpointing under `checkpoint_root` and reading `dataset`.
  std::string WriteSweep(const std::string& name, const std::string& checkpoint_root,
                         const std::string& dataset) {
    std::string path = absl::StrCat(dir_, "/", name, ".yaml");
    std::ofstream(path) << "name: " << name << "\ngrid:\n  model: [tiny]\nfixed:\n  steps: 3\n"
                        << "  batch_size: 4\n  context_length: 32\n  warmup_steps: 1\n"
                        << "  checkpoint_every: 0\n  cpu_threads: 1\n  dataset: " << dataset
                        << "\nmax_attempts: 1\ncheckpoint_root: " << checkpoint_root << "\n";
    return path;
  }
};

TEST_F(RootWarningTest, SubmitWarnsOfPathsOutsideEveryConnectedWorkersRoots) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinatorAndWorker(
      "w", 1, {"--trainer", ABLATE_FAKE_TRAINER, "--data-root", dir_ + "/data"}));
  ASSERT_TRUE(Connected(1)) << Logs();
  EXPECT_THAT(Ablate({"workers", "--json"}).out, HasSubstr(absl::StrCat(dir_, "/checkpoints")));

  const test::Cli outside =
      Ablate({"submit", WriteSweep("outside", dir_ + "/elsewhere", dir_ + "/data2/corpus.bin")});
  EXPECT_EQ(outside.exit_code, 0) << outside.err << Logs();
  EXPECT_THAT(outside.out, HasSubstr("submitted sweep "));
  EXPECT_THAT(outside.err,
              HasSubstr(absl::StrCat("warning: checkpoint_dir ", dir_, "/elsewhere/")));
  EXPECT_THAT(outside.err, HasSubstr(absl::StrCat(
                               " is outside every connected worker's --checkpoint-root (w: ", dir_,
                               "/checkpoints")));
  EXPECT_THAT(outside.err,
              HasSubstr(absl::StrCat("warning: dataset ", dir_,
                                     "/data2/corpus.bin is outside every connected worker's "
                                     "--data-root (w: ",
                                     dir_, "/data")));
  EXPECT_THAT(outside.err, HasSubstr("will wait until a worker with such a root connects"));
  absl::StatusOr<v1::Job> waiting = WaitForOnlyJob(
      [](const v1::Job& job) { return absl::StartsWith(job.message(), "waiting: "); },
      absl::Seconds(20));
  ASSERT_TRUE(waiting.ok()) << waiting.status() << Logs();
  EXPECT_EQ(waiting->state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(waiting->attempts(), 0u);
  EXPECT_THAT(
      waiting->message(),
      HasSubstr(absl::StrCat("checkpoint_dir ", dir_, "/elsewhere/", waiting->spec().sweep_id(),
                             "/<job id> is outside every connected worker's "
                             "--checkpoint-root (w: ",
                             dir_, "/checkpoints")));

  const test::Cli inside =
      Ablate({"submit", WriteSweep("inside", dir_ + "/checkpoints/", dir_ + "/data/corpus.bin")});
  EXPECT_EQ(inside.exit_code, 0) << inside.err << Logs();
  EXPECT_THAT(inside.out, HasSubstr("submitted sweep "));
  EXPECT_THAT(inside.err, Not(HasSubstr("warning:")));
}

}  // namespace
}  // namespace ablate
