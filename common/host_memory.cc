#include "common/host_memory.h"

#include <fstream>
#include <sstream>

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
