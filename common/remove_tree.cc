#include "common/remove_tree.h"

#include <ftw.h>

#include <cstdio>

namespace ablate {

void RemoveTree(const std::filesystem::path& path) {
  // Depth first, so that each folder is empty when its turn comes; links are removed, not
  // followed.
  ::nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) { return std::remove(entry); },
      /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace ablate
