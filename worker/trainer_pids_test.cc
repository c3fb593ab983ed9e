#include "worker/trainer_pids.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "worker/testing/process_state.h"

namespace ablate::worker {
namespace {

constexpr absl::Duration kWait = absl::Seconds(8);

using testing::Dead;
using testing::EventuallyDead;

// A stand-in trainer: a child leading a process group of its own, and a member of that group
// it started (as a trainer's helper processes are).
struct Group {
  pid_t leader = 0;
  pid_t member = 0;
};

Group StartGroup() {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  Group group;
  group.leader = fork();
  if (group.leader == 0) {
    setpgid(0, 0);
    if (fork() == 0) {
      const pid_t self = getpid();
      if (write(fds[1], &self, sizeof(self)) != sizeof(self)) _exit(1);
      while (true) pause();
    }
    while (true) pause();
  }
  close(fds[1]);
  EXPECT_EQ(read(fds[0], &group.member, sizeof(group.member)),
            static_cast<ssize_t>(sizeof(group.member)));
  close(fds[0]);
  return group;
}

class TrainerPidsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Whatever a failed test left running.
    for (pid_t pid : {group_.leader, group_.member}) {
      if (pid > 0) kill(pid, SIGKILL);
    }
    if (group_.leader > 0) waitpid(group_.leader, nullptr, WNOHANG);
    std::filesystem::remove_all(work_dir_);
  }

  Group group_;
  static inline int counter_ = 0;
  const std::filesystem::path work_dir_ =
      std::filesystem::path(::testing::TempDir()) /
      absl::StrCat("trainer_pids_test-", getpid(), "-", counter_++);
};

TEST_F(TrainerPidsTest, RecordsPidAndStartTime) {
  group_ = StartGroup();
  ASSERT_TRUE(WritePidFile(work_dir_, 4, group_.leader).ok());
  std::ifstream file(PidFilePath(work_dir_, 4));
  pid_t pid = 0;
  uint64_t start = 0;
  ASSERT_TRUE(file >> pid >> start);
  EXPECT_EQ(pid, group_.leader);
  EXPECT_EQ(start, *ProcessStartTime(group_.leader));
  EXPECT_EQ(PidFilePath(work_dir_, 4), work_dir_ / "trainer-pids" / "attempt-4.pid");
  RemovePidFile(work_dir_, 4);
  EXPECT_FALSE(std::filesystem::exists(PidFilePath(work_dir_, 4)));
  EXPECT_FALSE(ProcessStartTime(-5).ok());
}

TEST_F(TrainerPidsTest, StopsTheWholeGroupOfALeftoverTrainer) {
  group_ = StartGroup();
  ASSERT_TRUE(WritePidFile(work_dir_, 1, group_.leader).ok());
  EXPECT_EQ(StopLeftoverTrainers(work_dir_, kWait), 2);
  int status = 0;
  ASSERT_EQ(waitpid(group_.leader, &status, 0), group_.leader);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(EventuallyDead(group_.member, kWait));
  EXPECT_FALSE(std::filesystem::exists(PidFilePath(work_dir_, 1)));
  group_ = {};
}

TEST_F(TrainerPidsTest, StopsWhatALeaderThatDiedLeftInItsGroup) {
  group_ = StartGroup();
  ASSERT_TRUE(WritePidFile(work_dir_, 2, group_.leader).ok());
  // The trainer itself died (the death signal); its helper lives on in its group.
  kill(group_.leader, SIGKILL);
  ASSERT_EQ(waitpid(group_.leader, nullptr, 0), group_.leader);
  ASSERT_FALSE(Dead(group_.member));
  EXPECT_EQ(StopLeftoverTrainers(work_dir_, kWait), 1);
  EXPECT_TRUE(EventuallyDead(group_.member, kWait));
  group_.leader = 0;
}

TEST_F(TrainerPidsTest, NeverSignalsAProcessThatReusedThePid) {
  group_ = StartGroup();
  // The record names the leader's pid with another start time: an earlier process's.
  std::filesystem::create_directories(PidFilePath(work_dir_, 3).parent_path());
  std::ofstream(PidFilePath(work_dir_, 3))
      << group_.leader << ' ' << *ProcessStartTime(group_.leader) + 1 << '\n';
  EXPECT_EQ(StopLeftoverTrainers(work_dir_, kWait), 0);
  EXPECT_FALSE(Dead(group_.leader));
  EXPECT_FALSE(Dead(group_.member));
  EXPECT_FALSE(std::filesystem::exists(PidFilePath(work_dir_, 3)));  // forgotten all the same
}

TEST_F(TrainerPidsTest, NothingRecordedNothingStopped) {
  EXPECT_EQ(StopLeftoverTrainers(work_dir_, kWait), 0);
}

}  // namespace
}  // namespace ablate::worker
