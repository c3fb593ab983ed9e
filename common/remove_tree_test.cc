#include "common/remove_tree.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ablate {
namespace {

namespace fs = std::filesystem;

fs::path Scratch(const std::string& name) {
  fs::path path = fs::path(testing::TempDir()) / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(path);  // this test links no LibTorch
  fs::create_directories(path);
  return path;
}

TEST(RemoveTreeTest, RemovesNestedFoldersAndFiles) {
  const fs::path root = Scratch("remove_tree_nested");
  fs::create_directories(root / "a" / "b");
  std::ofstream(root / "a" / "b" / "file") << "x";
  std::ofstream(root / "top") << "y";
  RemoveTree(root);
  EXPECT_FALSE(fs::exists(root));
}

TEST(RemoveTreeTest, MissingFolderIsFine) {
  const fs::path root = Scratch("remove_tree_missing") / "never-made";
  RemoveTree(root);
  EXPECT_FALSE(fs::exists(root));
  fs::remove_all(root.parent_path());
}

// A link inside the tree goes; what it points to outside stays.
TEST(RemoveTreeTest, RemovesLinksWithoutFollowingThem) {
  const fs::path outside = Scratch("remove_tree_outside");
  std::ofstream(outside / "kept") << "z";
  const fs::path root = Scratch("remove_tree_links");
  fs::create_directory_symlink(outside, root / "link");
  RemoveTree(root);
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(fs::exists(outside / "kept"));
  fs::remove_all(outside);
}

}  // namespace
}  // namespace ablate
