#include "worker/slots.h"

#include "common/host_memory.h"
#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

TEST(SlotsTest, CpuSlotsAreIndexedFromZero) {
  std::vector<v1::Slot> slots = CpuSlots(3);
  ASSERT_EQ(slots.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(slots[i].kind(), v1::DEVICE_KIND_CPU);
    EXPECT_EQ(slots[i].index(), i);
    EXPECT_EQ(slots[i].name(), "cpu");
  }
}

TEST(SlotsTest, GivenCpuSlotsWinOverDevices) {
  std::vector<v1::Slot> slots = DefaultSlots(2);
  ASSERT_EQ(slots.size(), 2u);
  EXPECT_EQ(slots[1].kind(), v1::DEVICE_KIND_CPU);
  EXPECT_FALSE(DefaultSlots(0).empty());
}

TEST(SlotsTest, CpuSlotsShareTheMachinesMemoryUnlessGivenTheirOwn) {
  const uint64_t total = ReadMeminfoBytes("MemTotal");
  ASSERT_GT(total, 0u);
  std::vector<v1::Slot> slots = DefaultSlots(4);
  ASSERT_EQ(slots.size(), 4u);
  for (const v1::Slot& slot : slots) EXPECT_EQ(slot.memory_bytes(), total / 4);
  slots = DefaultSlots(2, 3ull << 30);
  for (const v1::Slot& slot : slots) EXPECT_EQ(slot.memory_bytes(), 3ull << 30);
}

TEST(SlotsTest, ParsesNvidiaSmiQuery) {
  std::vector<v1::Slot> slots = ParseNvidiaSmiQuery(
      "0, NVIDIA H100 80GB HBM3, 81559\n"
      "1, NVIDIA H100 80GB HBM3, 81559\n"
      "No devices were found\n");
  ASSERT_EQ(slots.size(), 2u);
  EXPECT_EQ(slots[1].kind(), v1::DEVICE_KIND_CUDA);
  EXPECT_EQ(slots[1].index(), 1u);
  EXPECT_EQ(slots[1].name(), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(slots[1].memory_bytes(), 81559ull << 20);
  EXPECT_TRUE(ParseNvidiaSmiQuery("").empty());
}

TEST(SlotsTest, ParsesProcGpuModel) {
  EXPECT_EQ(ParseProcGpuModel("Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 41\n"),
            "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(ParseProcGpuModel("IRQ: 41\n"), "");
}

// What a Slurm step or a container runtime leaves visible is what the worker offers, by the
// devices' physical indices (which the trainers' CUDA_VISIBLE_DEVICES then names).
TEST(VisibleSlotsTest, KeepsWhatTheEnvironmentMakesVisible) {
  const std::vector<v1::Slot> devices = ParseNvidiaSmiQuery(
      "0, NVIDIA H200, 143771\n1, NVIDIA H200, 143771\n2, NVIDIA H200, 143771\n"
      "3, NVIDIA H200, 143771\n");
  auto indices = [](const std::vector<v1::Slot>& slots) {
    std::vector<uint32_t> out;
    out.reserve(slots.size());
    for (const v1::Slot& slot : slots) out.push_back(slot.index());
    return out;
  };
  EXPECT_EQ(indices(VisibleSlots(devices, nullptr)), (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(indices(VisibleSlots(devices, "all")), (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(indices(VisibleSlots(devices, "3,1")), (std::vector<uint32_t>{3, 1}));
  EXPECT_EQ(indices(VisibleSlots(devices, "2,-1,0")), (std::vector<uint32_t>{2}));
  EXPECT_EQ(indices(VisibleSlots(devices, "7")), (std::vector<uint32_t>{}));
  EXPECT_TRUE(VisibleSlots(devices, "").empty());
  EXPECT_TRUE(VisibleSlots(devices, "NoDevFiles").empty());
  EXPECT_TRUE(VisibleSlots(devices, "none").empty());
  EXPECT_EQ(VisibleSlots(devices, "GPU-8a1b2c3d-0000").size(), 4u);  // UUIDs: not matched
}

}  // namespace
}  // namespace ablate::worker
