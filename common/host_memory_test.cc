#include "common/host_memory.h"

#include <gtest/gtest.h>

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
