#include "cli/slurm.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/slurm_template.h"

namespace ablate::cli {
namespace {

namespace fs = std::filesystem;

class SlurmUpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / absl::StrCat("slurm-", getpid());
    fs::create_directories(dir_ / "tokens");
    options_.token_dir = (dir_ / "tokens").string();
    options_.work_dir = (dir_ / "work").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void WriteTokens(int count) {
    for (int i = 0; i < count; ++i)
      std::ofstream(dir_ / "tokens" / absl::StrCat("slurm-", i)) << "t";
  }

  fs::path dir_;
  SlurmUpOptions options_;
  std::ostringstream out_, err_;
  Io io_{out_, err_, false, absl::UTCTimeZone()};
};

TEST_F(SlurmUpTest, BuiltInTemplateFillsEveryField) {
  options_.nodes = 3;
  options_.gpus_per_node = 8;
  options_.time = "2:00:00";
  absl::StatusOr<std::string> script =
      RenderSlurmScript(kSlurmWorkersTemplate, options_, "coord:50051");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_TRUE(absl::StrContains(*script, "#SBATCH --nodes=3\n"));
  EXPECT_TRUE(absl::StrContains(*script, "#SBATCH --gpus-per-node=8\n"));
  EXPECT_TRUE(absl::StrContains(*script, "#SBATCH --time=2:00:00\n"));
  EXPECT_TRUE(absl::StrContains(*script, "#SBATCH --signal=TERM@120\n"));
  EXPECT_FALSE(absl::StrContains(*script, "--partition"));  // the cluster's default
  EXPECT_TRUE(absl::StrContains(*script, "--coordinator \"coord:50051\""));
  // Paths the nodes read are absolute.
  EXPECT_TRUE(
      absl::StrContains(*script, absl::StrCat("--token-file \"", dir_.string(), "/tokens/$id\"")));
  EXPECT_TRUE(absl::StrContains(*script, "id=\"slurm-${SLURM_NODEID}\""));
}

TEST_F(SlurmUpTest, UnknownTemplateFieldIsNamed) {
  absl::StatusOr<std::string> script =
      RenderSlurmScript("#SBATCH --nodes=@NODES@\n#SBATCH --qos=@QOS@\n", options_, "c:1");
  ASSERT_FALSE(script.ok());
  EXPECT_EQ(script.status().message(),
            "template: unknown field @QOS@ (see ablate slurm up --help)");
}

TEST_F(SlurmUpTest, EveryWorkerNeedsItsToken) {
  options_.nodes = 2;
  WriteTokens(1);
  EXPECT_EQ(SlurmUpCommand(options_, "c:1", io_), kExitUsage);
  EXPECT_TRUE(absl::StrContains(err_.str(), "no token for worker slurm-1")) << err_.str();
}

// A stand-in for sbatch that records its arguments and answers as sbatch --parsable does.
TEST_F(SlurmUpTest, SubmitsTheRenderedScriptWithSbatch) {
  WriteTokens(1);
  const fs::path sbatch = dir_ / "sbatch";
  std::ofstream(sbatch) << "#!/bin/sh\necho \"$@\" > " << (dir_ / "args").string()
                        << "\necho 4242\n";
  chmod(sbatch.c_str(), 0755);
  options_.sbatch = sbatch.string();
  ASSERT_EQ(SlurmUpCommand(options_, "c:1", io_), kExitOk) << err_.str();
  EXPECT_TRUE(absl::StartsWith(out_.str(), "submitted Slurm job 4242: workers slurm-0 for c:1"))
      << out_.str();
  std::ifstream args(dir_ / "args");
  std::string flag, script;
  args >> flag >> script;
  EXPECT_EQ(flag, "--parsable");
  std::ifstream submitted(script);
  std::string first_line;
  std::getline(submitted, first_line);
  EXPECT_EQ(first_line, "#!/bin/bash");
}

TEST_F(SlurmUpTest, FailingSbatchFailsTheCommand) {
  WriteTokens(1);
  options_.sbatch = "false";
  EXPECT_EQ(SlurmUpCommand(options_, "c:1", io_), kExitFailed);
  EXPECT_TRUE(absl::StrContains(err_.str(), "false ")) << err_.str();
}

}  // namespace
}  // namespace ablate::cli
