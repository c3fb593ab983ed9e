// A test's own folder on disk, gone when the test is: for tests that write files.
#ifndef ABLATE_TESTS_SUPPORT_TEMP_FOLDER_H_
#define ABLATE_TESTS_SUPPORT_TEMP_FOLDER_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "common/remove_tree.h"

namespace ablate::test {

// A new empty folder under gtest's TempDir(), `prefix` plus a unique suffix, removed with all
// it holds when the object goes (RemoveTree: safe in programs that link LibTorch). A failure to
// make it fails the test.
class TempFolder {
 public:
  explicit TempFolder(const std::string& prefix) {
    std::string path = (std::filesystem::path(testing::TempDir()) / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(path.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << path;
    path_ = path;
  }
  ~TempFolder() { RemoveTree(path_); }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ablate::test

#endif  // ABLATE_TESTS_SUPPORT_TEMP_FOLDER_H_
