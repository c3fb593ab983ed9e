#include "worker/job_paths.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class JobPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::path(::testing::TempDir()) /
            ("job_paths_test-" + std::to_string(getpid()));
    std::filesystem::create_directories(base_ / "ckpt");
    std::filesystem::create_directories(base_ / "data" / "corpus");
    std::filesystem::create_directories(base_ / "elsewhere");
    std::filesystem::create_symlink(base_ / "elsewhere", base_ / "ckpt" / "escape");
    roots_.checkpoint_roots = {base_ / "ckpt"};
    roots_.data_roots = {base_ / "data"};
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  absl::Status Check(const std::string& checkpoint_dir, const std::string& dataset) {
    v1::JobSpec job;
    job.set_checkpoint_dir(checkpoint_dir);
    job.mutable_config()->set_dataset(dataset);
    return CheckJobPaths(job, roots_);
  }

  std::filesystem::path base_;
  PathRoots roots_;
};

TEST_F(JobPathsTest, PathsInsideTheRootsPass) {
  EXPECT_TRUE(Check((base_ / "ckpt/s1/j1").string(), (base_ / "data/corpus").string()).ok());
  EXPECT_TRUE(Check("", "builtin:tiny-corpus").ok());
}

TEST_F(JobPathsTest, ACheckpointDirElsewhereIsRefusedNamingTheRoots) {
  absl::Status s = Check("/etc/ablate/s1/j1", "builtin:tiny-corpus");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("checkpoint_dir /etc/ablate/s1/j1 is outside"));
  EXPECT_THAT(s.message(), HasSubstr("--checkpoint-root"));
  EXPECT_THAT(s.message(), HasSubstr((base_ / "ckpt").string()));
  // Escapes by ".." and by a symbolic link out of the root are outside too.
  EXPECT_FALSE(Check((base_ / "ckpt/../elsewhere/j1").string(), "builtin:x").ok());
  EXPECT_FALSE(Check((base_ / "ckpt/escape/j1").string(), "builtin:x").ok());
  EXPECT_FALSE(Check((base_ / "ckpt").string() + "-sibling/j1", "builtin:x").ok());
}

TEST_F(JobPathsTest, ADatasetElsewhereIsRefused) {
  absl::Status s = Check("", "/home/someone/secrets");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("dataset /home/someone/secrets is outside"));
  EXPECT_FALSE(Check("", "builtin:../../etc").ok());
  EXPECT_FALSE(Check("", "builtin:").ok());
}

TEST_F(JobPathsTest, NoRootsConfiguredRefusesEveryPath) {
  roots_ = PathRoots();
  absl::Status s = Check((base_ / "ckpt/s1/j1").string(), "builtin:tiny-corpus");
  EXPECT_THAT(s.message(), HasSubstr("(none configured)"));
}

// What the worker tells the coordinator: each root absolute, spelled once, and where a symbolic
// link leads elsewhere its target too, since a job's path under either is inside the root.
TEST_F(JobPathsTest, RootNamesAreAbsoluteOnceEachAndResolvedWhereALinkLeads) {
  const std::string ckpt = ResolvedPath(base_ / "ckpt").string();
  std::vector<std::string> names = RootNames({base_ / "ckpt" / "escape"});
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], (base_ / "ckpt" / "escape").lexically_normal().string());
  EXPECT_EQ(names[1], ResolvedPath(base_ / "elsewhere").string());
  names = RootNames({ckpt, ckpt + "/", ckpt + "/./"});
  EXPECT_THAT(names, ElementsAre(ckpt));
  EXPECT_EQ(RootNames({"relative-root"}).front(),
            (std::filesystem::current_path() / "relative-root").string());
  EXPECT_THAT(RootNames({}), ::testing::IsEmpty());
}

}  // namespace
}  // namespace ablate::worker
