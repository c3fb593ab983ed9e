#include "common/remove_tree.h"

#include <ftw.h>

#include <cstdio>

namespace ablate {

void RemoveTree(const std::filesystem::path& path) {
  // Depth first, so that each folder is empty when its turn comes; links are removed, not
  // followed. An entry that cannot be removed does not stop the walk (0: go on).
  ::nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) {
        (void)std::remove(entry);  // what cannot go stays
        return 0;
      },
      /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace ablate
