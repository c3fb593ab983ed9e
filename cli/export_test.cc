#include "cli/export.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

// The install hint names the package by its absolute path, so that it works from any folder,
// with the extra of the format asked for (csv needs none).
TEST(ExportTest, TheInstallHintWorksFromAnyFolder) {
  std::string dir = ::testing::TempDir() + "/export-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::filesystem::create_directories(dir + "/python");
  std::ofstream(dir + "/python/pyproject.toml") << "[project]\n";
  EXPECT_EQ(InstallHint(dir, "parquet"), "pip install '" + dir + "/python[parquet]'");
  EXPECT_EQ(InstallHint(dir, "wandb"), "pip install '" + dir + "/python[wandb]'");
  EXPECT_EQ(InstallHint(dir, "csv"), "pip install '" + dir + "/python'");
  // A binary copied away from its source tree cannot name the package: it says so.
  std::filesystem::remove_all(dir);
  EXPECT_EQ(InstallHint(dir, "tensorboard"),
            "pip install 'SOURCE/python[tensorboard]', SOURCE being a copy of Ablate's source "
            "tree (the one this ablate was built from, " +
                dir + ", is gone)");
}

}  // namespace
}  // namespace ablate::cli
