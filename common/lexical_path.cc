#include "common/lexical_path.h"

namespace ablate {

bool LexicallyWithin(const std::filesystem::path& path, const std::filesystem::path& root) {
  // An empty root would make every relative path "inside" it.
  if (root.empty() || path.empty()) return false;
  const std::filesystem::path relative =
      path.lexically_normal().lexically_relative(root.lexically_normal());
  return !relative.empty() && *relative.begin() != "..";
}

}  // namespace ablate
