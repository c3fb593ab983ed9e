#include "coordinator/instance_lock.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::HasSubstr;

// flock locks belong to an open file description, so a second Acquire in this process meets
// the first one as another coordinator would.
TEST(InstanceLockTest, ASecondHolderIsRefusedAndToldWhoHoldsIt) {
  testing::TempDir dir;
  const std::string db = dir.File("ablate.db");
  absl::StatusOr<std::unique_ptr<InstanceLock>> first = InstanceLock::Acquire(db);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->Describe(7070, 8080).ok());

  absl::StatusOr<std::unique_ptr<InstanceLock>> second = InstanceLock::Acquire(db);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("pid=", getpid())));
  EXPECT_THAT(second.status().message(), HasSubstr("grpc=7070 http=8080"));
  EXPECT_THAT(second.status().message(), HasSubstr(db));

  first->reset();  // released: the next coordinator starts
  EXPECT_TRUE(InstanceLock::Acquire(db).ok());
}

TEST(InstanceLockTest, AnInMemoryDatabaseNeedsNoLock) {
  absl::StatusOr<std::unique_ptr<InstanceLock>> lock = InstanceLock::Acquire(":memory:");
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(*lock, nullptr);
}

}  // namespace
}  // namespace ablate::coordinator
