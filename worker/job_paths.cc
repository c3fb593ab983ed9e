#include "worker/job_paths.h"

#include <algorithm>
#include <string>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/lexical_path.h"

namespace ablate::worker {
namespace {

bool Inside(const std::filesystem::path& path, const std::filesystem::path& root) {
  return LexicallyWithin(ResolvedPath(path), ResolvedPath(root));
}

absl::Status CheckUnder(const char* field, const std::string& path,
                        const std::vector<std::filesystem::path>& roots, const char* flag) {
  for (const std::filesystem::path& root : roots) {
    if (Inside(path, root)) return absl::OkStatus();
  }
  std::vector<std::string> names;
  names.reserve(roots.size());
  for (const std::filesystem::path& root : roots) names.push_back(ResolvedPath(root).string());
  return absl::PermissionDeniedError(absl::StrCat(
      field, " ", path, " is outside this worker's ", flag,
      names.empty() ? " (none configured)" : absl::StrCat(" (", absl::StrJoin(names, ", "), ")")));
}

}  // namespace

std::filesystem::path ResolvedPath(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) return path.lexically_normal();
  std::filesystem::path canonical = std::filesystem::weakly_canonical(absolute, error);
  return error ? absolute.lexically_normal() : canonical;
}

std::vector<std::string> RootNames(const std::vector<std::filesystem::path>& roots) {
  std::vector<std::string> names;
  auto add = [&names](std::filesystem::path name) {
    // "/data/" as "/data": the same root, spelled once.
    if (!name.has_filename() && name.has_relative_path()) name = name.parent_path();
    if (std::find(names.begin(), names.end(), name.string()) == names.end()) {
      names.push_back(name.string());
    }
  };
  for (const std::filesystem::path& root : roots) {
    std::error_code error;
    const std::filesystem::path absolute = std::filesystem::absolute(root, error);
    if (!error) add(absolute.lexically_normal());
    add(ResolvedPath(root));
  }
  return names;
}

absl::Status CheckJobPaths(const v1::JobSpec& job, const PathRoots& roots) {
  if (!job.checkpoint_dir().empty()) {
    absl::Status s = CheckUnder("checkpoint_dir", job.checkpoint_dir(), roots.checkpoint_roots,
                                "--checkpoint-root");
    if (!s.ok()) return s;
  }
  absl::string_view dataset = job.config().dataset();
  if (absl::ConsumePrefix(&dataset, "builtin:")) {
    if (dataset.empty() || absl::StrContains(dataset, "/") || dataset == "." || dataset == "..") {
      return absl::PermissionDeniedError(
          absl::StrCat("dataset builtin:", dataset, " is not a builtin dataset's name"));
    }
    return absl::OkStatus();
  }
  if (dataset.empty()) return absl::OkStatus();
  return CheckUnder("dataset", std::string(dataset), roots.data_roots, "--data-root");
}

}  // namespace ablate::worker
