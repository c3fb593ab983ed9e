#include "worker/slots.h"

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

}  // namespace
}  // namespace ablate::worker
