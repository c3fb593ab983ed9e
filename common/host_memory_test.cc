#include "common/host_memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ablate {
namespace {

constexpr char kMeminfo[] =
    "MemTotal:       16314432 kB\nMemFree:          421508 kB\nMemAvailable:    9000000 kB\n";

TEST(HostMemoryTest, ReadsMeminfoFieldsInBytes) {
  EXPECT_EQ(MeminfoBytes(kMeminfo, "MemTotal"), 16314432ull << 10);
  EXPECT_EQ(MeminfoBytes(kMeminfo, "MemAvailable"), 9000000ull << 10);
  EXPECT_EQ(MeminfoBytes(kMeminfo, "Mem"), 0u);  // a field's name in full, not a prefix
  EXPECT_EQ(MeminfoBytes("MemFree: 1 kB\n", "MemTotal"), 0u);
  EXPECT_EQ(MeminfoBytes("MemTotal: lots\n", "MemTotal"), 0u);
  EXPECT_GT(ReadMeminfoBytes("MemTotal"), 0u);  // this host's
}

// A folder laid out as /sys/fs/cgroup, with `files` (path under it -> first line) written.
std::filesystem::path CgroupTree(const std::string& name,
                                 const std::vector<std::pair<std::string, std::string>>& files) {
  std::filesystem::path root = std::filesystem::path(::testing::TempDir()) /
                               absl::StrCat("host_memory_test-", getpid(), "-", name);
  std::filesystem::remove_all(root);
  for (const auto& [path, text] : files) {
    std::filesystem::create_directories((root / path).parent_path());
    std::ofstream(root / path) << text << "\n";
  }
  return root;
}

// A container's limit, not the host's MemTotal: the worker's slots are sized by it.
TEST(HostMemoryTest, ReadsTheCgroupsMemoryLimit) {
  // cgroup v2, the pod's own folder (no cgroup namespace) and, namespaced, the root.
  const auto v2 =
      CgroupTree("v2", {{"kubepods/pod1/memory.max", "4294967296"}, {"memory.max", "max"}});
  EXPECT_EQ(CgroupMemoryLimitBytes(v2, "0::/kubepods/pod1\n"), uint64_t{4} << 30);
  EXPECT_EQ(CgroupMemoryLimitBytes(v2, "0::/\n"), 0u);  // "max": no limit
  const auto namespaced = CgroupTree("ns", {{"memory.max", "2147483648"}});
  EXPECT_EQ(CgroupMemoryLimitBytes(namespaced, "0::/\n"), uint64_t{2} << 30);
  EXPECT_EQ(CgroupMemoryLimitBytes(namespaced, "0::/not/here\n"), uint64_t{2} << 30);

  // cgroup v1: the memory controller's line, whatever else shares it; "unlimited" is none.
  const auto v1 = CgroupTree("v1", {{"memory/docker/abc/memory.limit_in_bytes", "1073741824"},
                                    {"memory/memory.limit_in_bytes", "9223372036854771712"}});
  EXPECT_EQ(CgroupMemoryLimitBytes(v1,
                                   "12:cpu,cpuacct:/docker/abc\n"
                                   "4:memory:/docker/abc\n"),
            uint64_t{1} << 30);
  EXPECT_EQ(CgroupMemoryLimitBytes(v1, "4:hugetlb,memory:/\n"), 0u);

  EXPECT_EQ(CgroupMemoryLimitBytes(v2, ""), 0u);
  EXPECT_EQ(CgroupMemoryLimitBytes(CgroupTree("empty", {}), "0::/\n"), 0u);
  // This process's: never more than the host's.
  EXPECT_GT(ReadUsableMemoryBytes(), 0u);
  EXPECT_LE(ReadUsableMemoryBytes(), ReadMeminfoBytes("MemTotal"));
  for (const auto& root : {v2, namespaced, v1}) std::filesystem::remove_all(root);
}

// Qwen3-0.6B at 1M tokens with 20 layers offloaded pins 80 GiB a rank (docs/benchmarks.md).
TEST(HostMemoryTest, RefusesPinningMoreThanTheHostHasLeft) {
  constexpr int64_t kPerRank = int64_t{80} << 30;
  EXPECT_TRUE(CheckPinnedHostMemory(kPerRank, 1, 20, uint64_t{120} << 30).ok());
  const absl::Status eight = CheckPinnedHostMemory(kPerRank, 8, 20, uint64_t{500} << 30);
  EXPECT_EQ(eight.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(eight.message(),
            "checkpoint_offload_layers: 20 layers pin 80.0 GiB of host memory per rank, 640.0 "
            "GiB for the job's 8 ranks on this host, more than 90% of the 500.0 GiB it has "
            "available (MemAvailable); offload fewer layers, or run the job on a host with more "
            "memory");
  // 90% of 88 GiB is 79.2 GiB, of 89 GiB 80.1.
  EXPECT_FALSE(CheckPinnedHostMemory(kPerRank, 1, 20, uint64_t{88} << 30).ok());
  EXPECT_TRUE(CheckPinnedHostMemory(kPerRank, 1, 20, uint64_t{89} << 30).ok());
  EXPECT_TRUE(CheckPinnedHostMemory(0, 8, 0, uint64_t{1} << 30).ok());  // nothing pinned
  EXPECT_TRUE(CheckPinnedHostMemory(kPerRank, 8, 20, 0).ok());          // unknown host
  // What a worker offers its jobs is the share the trainer allows: a job it was placed by fits.
  EXPECT_EQ(PinnableBytes(100'000), 90'000u);
  EXPECT_LT(PinnableBytes(uint64_t{88} << 30), static_cast<uint64_t>(kPerRank));
  EXPECT_GE(PinnableBytes(uint64_t{89} << 30), static_cast<uint64_t>(kPerRank));
}

}  // namespace
}  // namespace ablate
