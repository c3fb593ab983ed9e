#include "tests/support/tokens.h"

#include <fstream>

#include "absl/strings/str_cat.h"

namespace ablate::test {

std::string WorkerToken(const std::string& worker_id) {
  return absl::StrCat("test-worker-token-", worker_id, "-0123456789");
}

absl::Status WriteTokenFile(const std::string& path, const std::vector<std::string>& worker_ids) {
  std::ofstream out(path, std::ios::trunc);
  out << "user " << kUserToken << "\nviewer " << kViewerToken << "\n";
  for (const std::string& id : worker_ids) out << "worker " << WorkerToken(id) << " " << id << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::map<std::string, std::string> TokenEnv(const std::string& token) {
  return {{"ABLATE_TOKEN", token}};
}

}  // namespace ablate::test
