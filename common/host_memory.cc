#include "common/host_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ablate {
std::string Gibibytes(double bytes) { return absl::StrFormat("%.1f GiB", bytes / double(1 << 30)); }

uint64_t MeminfoBytes(std::string_view meminfo, std::string_view field) {
  const absl::string_view text(meminfo.data(), meminfo.size());
  const std::string prefix = absl::StrCat(absl::string_view(field.data(), field.size()), ":");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, prefix)) continue;
    line = absl::StripAsciiWhitespace(line);
    uint64_t kib = 0;
    if (absl::ConsumeSuffix(&line, "kB") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) {
      return kib << 10;
    }
    return 0;
  }
  return 0;
}

uint64_t ReadMeminfoBytes(std::string_view field) {
  std::ifstream file("/proc/meminfo");
  std::stringstream text;
  text << file.rdbuf();
  return MeminfoBytes(text.str(), field);
}

namespace {

// The first line of `path`'s file as a byte count; 0 when it is absent, "max" or malformed, or
// so large that it means no limit (v1 writes LONG_MAX rounded down to a page).
uint64_t LimitIn(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::string line;
  uint64_t bytes = 0;
  if (!std::getline(file, line) || !absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &bytes) ||
      bytes >= (uint64_t{1} << 62)) {
    return 0;
  }
  return bytes;
}

// `file` in the cgroup folder `path` names under `root`, else at `root` itself.
uint64_t LimitAt(const std::filesystem::path& root, absl::string_view path, const char* file) {
  const std::filesystem::path own = root / std::string(absl::StripPrefix(path, "/")) / file;
  std::error_code error;
  return std::filesystem::exists(own, error) ? LimitIn(own) : LimitIn(root / file);
}

}  // namespace

uint64_t CgroupMemoryLimitBytes(const std::filesystem::path& cgroup_root,
                                std::string_view self_cgroup) {
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(self_cgroup.data(), self_cgroup.size()), '\n')) {
    // "hierarchy-ID:controller-list:cgroup-path" (cgroups(7)).
    const std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[0] == "0" && parts[1].empty()) {
      return LimitAt(cgroup_root, parts[2], "memory.max");
    }
    const std::vector<absl::string_view> controllers = absl::StrSplit(parts[1], ',');
    if (std::find(controllers.begin(), controllers.end(), "memory") != controllers.end()) {
      return LimitAt(cgroup_root / "memory", parts[2], "memory.limit_in_bytes");
    }
  }
  return 0;
}

uint64_t ReadUsableMemoryBytes() {
  std::ifstream file("/proc/self/cgroup");
  std::stringstream text;
  text << file.rdbuf();
  const uint64_t total = ReadMeminfoBytes("MemTotal");
  const uint64_t limit = CgroupMemoryLimitBytes("/sys/fs/cgroup", text.str());
  return limit > 0 && (total == 0 || limit < total) ? limit : total;
}

uint64_t PinnableBytes(uint64_t available_bytes) {
  return static_cast<uint64_t>(kPinnableShare * static_cast<double>(available_bytes));
}

absl::Status CheckPinnedHostMemory(int64_t per_rank_bytes, int64_t ranks, uint32_t offloaded_layers,
                                   uint64_t available_bytes) {
  if (per_rank_bytes <= 0 || available_bytes == 0) return absl::OkStatus();
  const double need = double(per_rank_bytes) * double(ranks);
  if (need <= double(PinnableBytes(available_bytes))) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("checkpoint_offload_layers: ", offloaded_layers, " layers pin ",
                   Gibibytes(per_rank_bytes), " of host memory per rank, ", Gibibytes(need),
                   " for the job's ", ranks, ranks == 1 ? " rank" : " ranks",
                   " on this host, more than 90% of the ", Gibibytes(available_bytes),
                   " it has available (MemAvailable); offload fewer layers, or run "
                   "the job on a host with more memory"));
}

}  // namespace ablate
