// A GoogleTest fixture for tests that run a real coordinator and real workers: the folder of
// Ablate's binaries, a scratch directory removed afterwards, the user token in ABLATE_TOKEN for
// the CLI processes a test starts (workers get their own through test::StartWorker), and the
// processes' stderr for failure messages. Header-only: it needs GoogleTest, which
// tests_support does not link.
#ifndef ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_
#define ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate::test {

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("ABLATE_TOKEN", kUserToken, 1);
    auto bin_dir = BinDir();
    ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
    bin_dir_ = *bin_dir;
    auto dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }

  void TearDown() override {
    workers_.clear();
    coordinator_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // What the workers and the coordinator wrote to stderr.
  std::string Logs() {
    std::string out;
    for (auto& w : workers_) absl::StrAppend(&out, "--- worker stderr\n", w->Stderr());
    if (coordinator_) absl::StrAppend(&out, "--- coordinator\n", coordinator_->process().Stderr());
    return out;
  }

  std::string bin_dir_;
  std::string dir_;
  std::unique_ptr<TestCoordinator> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
};

}  // namespace ablate::test

#endif  // ABLATE_TESTS_SUPPORT_CLUSTER_TEST_H_
