#include "trainer_lib/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/remove_tree.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;

// A piece holding one number in <name>.txt; Load can be told to refuse.
class Note : public Stateful {
 public:
  explicit Note(std::string name) : name_(std::move(name)) {}
  std::string Name() const override { return name_; }
  absl::Status Save(const fs::path& dir) override {
    std::ofstream(dir / (name_ + ".txt")) << value;
    return absl::OkStatus();
  }
  absl::Status Load(const fs::path& dir) override {
    if (!refuse.ok()) return refuse;
    std::ifstream(dir / (name_ + ".txt")) >> value;
    return absl::OkStatus();
  }
  int value = 0;
  absl::Status refuse;

 private:
  std::string name_;
};

class CheckpointDirTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / absl::StrCat("checkpoint_test-", ::getpid());
    RemoveTree(dir_);
  }
  void TearDown() override { RemoveTree(dir_); }

  // Saves steps `from`..`to`, the note holding the step.
  void SaveSteps(CheckpointDir& checkpoints, int from, int to) {
    for (int step = from; step <= to; ++step) {
      a_.value = step;
      ASSERT_TRUE(checkpoints.Save(step, {&a_, &b_}).ok());
    }
  }

  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
  Note a_{"a"}, b_{"b"};
};

TEST_F(CheckpointDirTest, KeepsTheNewestAndNoPartialFolders) {
  CheckpointDir checkpoints(dir_, 2);
  SaveSteps(checkpoints, 1, 4);
  EXPECT_EQ(Entries(), (std::vector<std::string>{"step-00000003", "step-00000004"}));
  EXPECT_TRUE(fs::exists(dir_ / "step-00000004" / "MANIFEST"));
  std::vector<std::string> skipped;
  a_.value = 0;
  auto loaded = checkpoints.LoadLatest({&a_, &b_}, skipped);
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->step, 4);
  EXPECT_EQ(a_.value, 4);
  EXPECT_TRUE(skipped.empty());
}

TEST_F(CheckpointDirTest, AFlippedByteSetsTheNewestAsideAndLoadsThePrevious) {
  CheckpointDir checkpoints(dir_, 2);
  SaveSteps(checkpoints, 1, 2);
  {  // same size, other bytes: only the digest can tell
    std::ofstream(dir_ / "step-00000002" / "a.txt", std::ios::trunc) << "7";
  }
  std::vector<std::string> skipped;
  auto loaded = checkpoints.LoadLatest({&a_, &b_}, skipped);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ((*loaded)->step, 1);
  EXPECT_EQ(a_.value, 1);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_TRUE(absl::StrContains(skipped[0], "a.txt does not match its SHA-256")) << skipped[0];
  EXPECT_EQ(Entries(), (std::vector<std::string>{"step-00000001", "step-00000002.corrupt"}));
  EXPECT_EQ(checkpoints.NewestComplete().value(), dir_ / "step-00000001");

  // The next save of step 2 writes a fresh one; the last good one is kept beside it.
  SaveSteps(checkpoints, 2, 2);
  EXPECT_EQ(Entries(), (std::vector<std::string>{"step-00000001", "step-00000002",
                                                 "step-00000002.corrupt"}));

  // Corrupt again: set aside beside the first one, not onto it.
  {
    std::ofstream(dir_ / "step-00000002" / "a.txt", std::ios::trunc) << "8";
  }
  skipped.clear();
  loaded = checkpoints.LoadLatest({&a_, &b_}, skipped);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ((*loaded)->step, 1);
  ASSERT_EQ(skipped.size(), 1u);
  const std::string aside = (dir_ / "step-00000002.corrupt-2").string();
  EXPECT_TRUE(absl::StrContains(skipped[0], "moved to " + aside)) << skipped[0];
  EXPECT_EQ(Entries(), (std::vector<std::string>{"step-00000001", "step-00000002.corrupt",
                                                 "step-00000002.corrupt-2"}));
}

TEST_F(CheckpointDirTest, ALeftoverOfAKilledWriteIsIgnoredThenCleared) {
  CheckpointDir checkpoints(dir_, 2);
  SaveSteps(checkpoints, 1, 1);
  fs::create_directories(dir_ / ".tmp-step-00000002");
  std::ofstream(dir_ / ".tmp-step-00000002" / "a.txt") << "half";
  std::vector<std::string> skipped;
  auto loaded = checkpoints.LoadLatest({&a_, &b_}, skipped);
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->step, 1);
  SaveSteps(checkpoints, 2, 2);
  EXPECT_EQ(Entries(), (std::vector<std::string>{"step-00000001", "step-00000002"}));
}

TEST_F(CheckpointDirTest, APiecesRefusalIsReturnedNotTakenForCorruption) {
  CheckpointDir checkpoints(dir_, 2);
  SaveSteps(checkpoints, 1, 2);
  b_.refuse = absl::FailedPreconditionError("other settings");
  std::vector<std::string> skipped;
  auto loaded = checkpoints.LoadLatest({&a_, &b_}, skipped);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Entries(), (std::vector<std::string>{"step-00000001", "step-00000002"}));
}

TEST_F(CheckpointDirTest, NoFolderMeansNoCheckpoint) {
  CheckpointDir checkpoints(dir_ / "absent", 2);
  std::vector<std::string> skipped;
  auto loaded = checkpoints.LoadLatest({&a_}, skipped);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

}  // namespace
}  // namespace ablate::train
