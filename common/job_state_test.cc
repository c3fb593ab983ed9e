#include "common/job_state.h"

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace ablate {
namespace {

// Every value the schema declares, read from its descriptor: a state added to job.proto lands
// in neither list below and fails here until someone decides whether it has ended.
TEST(JobStateTest, EveryStateIsClassified) {
  const absl::flat_hash_set<int> ended = {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED,
                                          v1::JOB_STATE_CANCELLED};
  const absl::flat_hash_set<int> not_ended = {v1::JOB_STATE_UNSPECIFIED, v1::JOB_STATE_PENDING,
                                              v1::JOB_STATE_ASSIGNED, v1::JOB_STATE_RUNNING};
  const google::protobuf::EnumDescriptor& descriptor = *v1::JobState_descriptor();
  ASSERT_GT(descriptor.value_count(), 0);
  for (int i = 0; i < descriptor.value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor& value = *descriptor.value(i);
    const auto state = static_cast<v1::JobState>(value.number());
    if (ended.contains(value.number())) {
      EXPECT_TRUE(JobStateHasEnded(state)) << value.name();
    } else if (not_ended.contains(value.number())) {
      EXPECT_FALSE(JobStateHasEnded(state)) << value.name();
    } else {
      ADD_FAILURE() << value.name() << " is new: say in common/job_state.h whether it has ended";
    }
  }
}

}  // namespace
}  // namespace ablate
