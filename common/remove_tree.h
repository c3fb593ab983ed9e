// Removing a folder and everything in it, for programs that link LibTorch too.
#ifndef ABLATE_COMMON_REMOVE_TREE_H_
#define ABLATE_COMMON_REMOVE_TREE_H_

#include <filesystem>

namespace ablate {

// Removes a folder and all it holds; a missing one is fine, and what cannot be removed stays
// (with the folders above it) while the rest goes.
// Not std::filesystem::remove_all: LibTorch's CUDA build (2.11) exports a copy of it that
// programs linking LibTorch call instead of libstdc++'s, and that copy jumps to a null address.
void RemoveTree(const std::filesystem::path& path);

}  // namespace ablate

#endif  // ABLATE_COMMON_REMOVE_TREE_H_
