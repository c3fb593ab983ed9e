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

// CPUs and memory are asked for only when given (else the cluster's defaults, and a note that
// those are often one CPU); a bad size, or a template with no place for the line, is refused.
TEST_F(SlurmUpTest, CpusAndMemoryPerNode) {
  absl::StatusOr<std::string> script =
      RenderSlurmScript(kSlurmWorkersTemplate, options_, "coord:50051");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_FALSE(absl::StrContains(*script, "--cpus-per-task"));
  EXPECT_FALSE(absl::StrContains(*script, "--mem"));

  options_.cpus_per_node = 32;
  options_.mem_per_node = "256G";
  script = RenderSlurmScript(kSlurmWorkersTemplate, options_, "coord:50051");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_TRUE(absl::StrContains(*script, "#SBATCH --cpus-per-task=32\n"));
  EXPECT_TRUE(absl::StrContains(*script, "#SBATCH --mem=256G\n"));

  for (const std::string bad : {"256GB", "lots", "-4G", "1.5G"}) {
    options_.mem_per_node = bad;
    EXPECT_TRUE(absl::StartsWith(
        RenderSlurmScript(kSlurmWorkersTemplate, options_, "c:1").status().message(),
        "--mem-per-node: bad value '" + bad + "'"));
  }
  options_.mem_per_node.clear();
  EXPECT_EQ(RenderSlurmScript("#SBATCH --nodes=@NODES@\n", options_, "c:1").status().message(),
            "template: no @CPUS_LINE@ for --cpus-per-node (add the word where its #SBATCH line "
            "belongs)");
}

TEST_F(SlurmUpTest, WithoutCpusPerNodeItNotesTheClustersDefault) {
  WriteTokens(1);
  options_.dry_run = true;
  ASSERT_EQ(SlurmUpCommand(options_, "c:1", io_), kExitOk) << err_.str();
  EXPECT_TRUE(absl::StrContains(err_.str(), "note: no --cpus-per-node")) << err_.str();
  err_.str("");
  options_.cpus_per_node = 8;
  ASSERT_EQ(SlurmUpCommand(options_, "c:1", io_), kExitOk) << err_.str();
  EXPECT_EQ(err_.str(), "");
}

TEST_F(SlurmUpTest, UnknownTemplateFieldIsNamed) {
  absl::StatusOr<std::string> script =
      RenderSlurmScript("#SBATCH --nodes=@NODES@\n#SBATCH --qos=@QOS@\n", options_, "c:1");
  ASSERT_FALSE(script.ok());
  EXPECT_EQ(script.status().message(),
            "template: unknown field @QOS@ (see ablate slurm up --help)");
}

// What the script cannot quote is refused by flag, as is a time sbatch would not read or one
// the stop signal's lead does not fit in; sbatch's time forms are all taken.
TEST_F(SlurmUpTest, RefusesWhatTheScriptCannotHold) {
  options_.time = "2:00:00";
  for (const std::string bad : {"q'dir", "d$HOME", "a\"b", "back`tick`"}) {
    options_.token_dir = bad;
    absl::StatusOr<std::string> script = RenderSlurmScript(kSlurmWorkersTemplate, options_, "c:1");
    ASSERT_FALSE(script.ok()) << bad;
    EXPECT_TRUE(absl::StartsWith(script.status().message(), "--token-dir: '" + bad + "' holds"))
        << script.status();
  }
  options_.token_dir = (dir_ / "tokens").string();
  EXPECT_TRUE(absl::StartsWith(
      RenderSlurmScript(kSlurmWorkersTemplate, options_, "c:1\"").status().message(),
      "--coordinator: "));

  for (const std::string bad : {"banana", "", "1:2:3:4", "2 hours"}) {
    options_.time = bad;
    EXPECT_TRUE(absl::StartsWith(
        RenderSlurmScript(kSlurmWorkersTemplate, options_, "c:1").status().message(),
        "--time: bad value '" + bad + "'"));
  }
  options_.time = "00:01:00";
  options_.grace_s = 600;
  EXPECT_EQ(RenderSlurmScript(kSlurmWorkersTemplate, options_, "c:1").status().message(),
            "--grace-s: 600 s is not less than --time 00:01:00 (60 s): the workers would be "
            "told to stop before they start");
  options_.grace_s = 120;
  for (const std::string good : {"30", "30:00", "2:00:00", "1-0", "1-12:30", "1-12:30:00"}) {
    options_.time = good;
    EXPECT_TRUE(RenderSlurmScript(kSlurmWorkersTemplate, options_, "c:1").ok()) << good;
  }
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
