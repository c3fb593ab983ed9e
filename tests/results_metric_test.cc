// `ablate results --metric` for a series no job logged, through the real coordinator, worker
// and CLI processes, with the fake trainer in place of ablate-train (worker/testdata/
// fake_trainer.cc: each job logs train/loss at every step and succeeds).
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ResultsMetricTest : public test::ClusterTest {};

// The report this answers: a typo ended with "`ablate status ...` shows why", though every job
// succeeded and status shows nothing of it. The note names what the jobs did log instead.
TEST_F(ResultsMetricTest, AMetricNoJobLoggedIsNamedWithTheNearestThatOneDid) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinatorAndWorker("w", 2, {"--trainer", ABLATE_FAKE_TRAINER}));
  absl::Status submitted = Submit(WriteTinySweep(2, 3));
  ASSERT_TRUE(submitted.ok()) << submitted;
  const test::Cli watch = Ablate({"watch", "tiny"});
  ASSERT_EQ(watch.exit_code, 0) << watch.out << watch.err << Logs();

  const test::Cli typo = Ablate({"results", "tiny", "--metric", "train/los"});
  EXPECT_EQ(typo.exit_code, 1) << typo.err;  // every job has ended: no value will come
  EXPECT_THAT(typo.err, testing::MatchesRegex("note: no succeeded job of tiny-[0-9a-f]+ logged "
                                              "train/los \\(did you mean train/loss\\?\\); they "
                                              "log train/loss\n"));
  EXPECT_THAT(typo.err, Not(HasSubstr("ablate status")));
  const test::Cli loss = Ablate({"results", "tiny", "--metric", "train/loss"});
  EXPECT_EQ(loss.exit_code, 0) << loss.err;
  EXPECT_EQ(loss.err, "");
}

}  // namespace
}  // namespace ablate
