#include "coordinator/store/rows.h"

#include <string>
#include <vector>

#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"

namespace ablate::coordinator {
namespace {

using google::protobuf::util::MessageDifferencer;
using internal::JobSpecFromRow;
using internal::SerializeStoredSpec;

// An expansion's jobs (checkpoint_dir <root>/<sweep_id>/<job_id>, cells, configs, hashes), with
// every other field the store keeps set on the first.
sweep::Expansion Expanded() {
  v1::SweepSpec spec = testing::TinySweepSpec("rows", 3);
  spec.set_checkpoint_root("/shared/ckpt");
  sweep::Expansion expansion = sweep::ExpandSweep(spec).value();
  v1::JobSpec& first = expansion.jobs[0];
  first.set_memory_bytes(uint64_t{40} << 30);
  first.set_priority(7);
  first.set_train_flops_per_token(1.5e9);
  first.mutable_trial()->set_rung(2);
  return expansion;
}

TEST(StoredSpecTest, LeavesOutWhatTheColumnsHold) {
  const v1::JobSpec job = Expanded().jobs[1];
  std::string bytes;
  SerializeStoredSpec(job, bytes);
  EXPECT_LT(bytes.size(), job.ByteSizeLong() - job.job_id().size() - job.sweep_id().size());
  v1::JobSpec stored;
  ASSERT_TRUE(stored.ParseFromString(bytes));
  EXPECT_EQ(stored.job_id(), "");
  EXPECT_EQ(stored.sweep_id(), "");
  EXPECT_EQ(stored.index(), 0u);
  EXPECT_EQ(stored.checkpoint_dir(), "/shared/ckpt/");
  EXPECT_TRUE(MessageDifferencer::Equals(
      JobSpecFromRow(bytes, job.job_id(), job.sweep_id(), job.index()).value(), job));
}

// A directory that does not end in <sweep_id>/<job_id> after a '/', or none, is kept as it is.
TEST(StoredSpecTest, KeepsAnyOtherCheckpointDir) {
  v1::JobSpec job = Expanded().jobs[2];
  for (const std::string& dir : {std::string(""), std::string("/elsewhere/"),
                                 std::string("x") + job.sweep_id() + "/" + job.job_id(),
                                 "/a/" + job.sweep_id() + "/other"}) {
    job.set_checkpoint_dir(dir);
    std::string bytes;
    SerializeStoredSpec(job, bytes);
    EXPECT_TRUE(MessageDifferencer::Equals(
        JobSpecFromRow(bytes, job.job_id(), job.sweep_id(), job.index()).value(), job))
        << dir;
  }
}

// Rows stored whole, before the columns' fields were left out, read back unchanged.
TEST(StoredSpecTest, ReadsWholeSpecs) {
  const v1::JobSpec job = Expanded().jobs[0];
  EXPECT_TRUE(MessageDifferencer::Equals(
      JobSpecFromRow(job.SerializeAsString(), job.job_id(), job.sweep_id(), job.index()).value(),
      job));
  EXPECT_FALSE(JobSpecFromRow("\xff", job.job_id(), job.sweep_id(), job.index()).ok());
}

// Through the store: each way a job is read gives back the job stored.
TEST(StoredSpecTest, AJobReadBackEqualsTheJobStored) {
  testing::TempDir dir;
  testing::FakeClock clock;
  std::unique_ptr<Store> store = Store::Open(dir.File("ablate.db"), clock).value();
  const sweep::Expansion expansion = Expanded();
  ASSERT_TRUE(store->CreateSweep(testing::MakeSweep(expansion.sweep_id), expansion.jobs, 3).ok());

  const std::vector<v1::Job> listed = store->ListJobs(expansion.sweep_id).value();
  const std::vector<v1::Job> pending = store->PendingJobs(10).value();
  ASSERT_EQ(listed.size(), expansion.jobs.size());
  ASSERT_EQ(pending.size(), expansion.jobs.size());
  for (size_t i = 0; i < expansion.jobs.size(); ++i) {
    const v1::JobSpec& stored = expansion.jobs[i];
    EXPECT_TRUE(MessageDifferencer::Equals(listed[i].spec(), stored)) << i;
    EXPECT_TRUE(MessageDifferencer::Equals(pending[i].spec(), stored)) << i;
    EXPECT_TRUE(MessageDifferencer::Equals(store->GetJob(stored.job_id()).value().spec(), stored))
        << i;
  }
}

}  // namespace
}  // namespace ablate::coordinator
