#include "common/slot_need.h"

#include "gtest/gtest.h"

namespace ablate {
namespace {

v1::JobSpec Job(uint32_t gpus, uint64_t memory_bytes) {
  v1::JobSpec spec;
  spec.mutable_config()->set_gpus(gpus);
  spec.set_memory_bytes(memory_bytes);
  return spec;
}

v1::Slot Slot(v1::DeviceKind kind, uint64_t memory_bytes) {
  v1::Slot slot;
  slot.set_kind(kind);
  slot.set_memory_bytes(memory_bytes);
  return slot;
}

TEST(SlotNeedTest, AJobHoldsOneSlotPerGpuOrOneCpuSlot) {
  EXPECT_EQ(SlotNeedOf(Job(0, 0)), (SlotNeed{v1::DEVICE_KIND_CPU, 1, 0}));
  EXPECT_EQ(SlotNeedOf(Job(1, 5)), (SlotNeed{v1::DEVICE_KIND_CUDA, 1, 5}));
  EXPECT_EQ(SlotNeedOf(Job(4, 0)), (SlotNeed{v1::DEVICE_KIND_CUDA, 4, 0}));
  v1::JobSpec ranks = Job(0, 7);
  ranks.mutable_config()->set_cpu_ranks(3);
  EXPECT_EQ(SlotNeedOf(ranks), (SlotNeed{v1::DEVICE_KIND_CPU, 3, 7}));
}

TEST(SlotNeedTest, ASlotFitsByKindAndMemory) {
  SlotNeed need = SlotNeedOf(Job(1, 80'000'000'000));
  EXPECT_TRUE(SlotFits(Slot(v1::DEVICE_KIND_CUDA, 80'000'000'000), need));
  EXPECT_FALSE(SlotFits(Slot(v1::DEVICE_KIND_CUDA, 40'000'000'000), need));
  EXPECT_FALSE(SlotFits(Slot(v1::DEVICE_KIND_CPU, 0), need));
  // A slot that does not say its memory is not ruled out by it.
  EXPECT_TRUE(SlotFits(Slot(v1::DEVICE_KIND_CUDA, 0), need));
  EXPECT_TRUE(SlotFits(Slot(v1::DEVICE_KIND_CPU, 1), SlotNeedOf(Job(0, 0))));
}

// Pinned host memory is the worker's to give, for all of a job's ranks at once.
TEST(SlotNeedTest, PinnedHostMemoryFitsWhatTheWorkerCanStillPin) {
  v1::JobSpec spec = Job(2, 0);
  spec.set_host_memory_bytes(40'000'000'000);
  const SlotNeed need = SlotNeedOf(spec);
  EXPECT_EQ(need.host_memory_bytes, 40'000'000'000u);
  EXPECT_EQ(PinnedBytesOf(need), 80'000'000'000u);
  EXPECT_TRUE(PinnedMemoryFits(80'000'000'000, need));
  EXPECT_FALSE(PinnedMemoryFits(79'999'999'999, need));
  // A worker that does not say what it can pin is not ruled out by it.
  EXPECT_TRUE(PinnedMemoryFits(0, need));
  // A job that pins nothing fits wherever its slots do.
  EXPECT_TRUE(PinnedMemoryFits(1, SlotNeedOf(Job(2, 0))));
}

TEST(SlotNeedTest, DescribesANeedForAUser) {
  EXPECT_EQ(DescribeNeed(SlotNeedOf(Job(1, 80'000'000'000))), "1 CUDA slot with 74.5 GiB");
  EXPECT_EQ(DescribeNeed(SlotNeedOf(Job(2, 0))), "2 CUDA slots");
  EXPECT_EQ(DescribeNeed(SlotNeedOf(Job(0, 0))), "1 CPU slot");
  v1::JobSpec pinning = Job(2, 150'000'000'000);
  pinning.set_host_memory_bytes(uint64_t{40} << 30);
  EXPECT_EQ(DescribeNeed(SlotNeedOf(pinning)),
            "2 CUDA slots with 139.7 GiB and 80.0 GiB of pinned host memory");
  pinning.set_memory_bytes(0);
  EXPECT_EQ(DescribeNeed(SlotNeedOf(pinning)), "2 CUDA slots with 80.0 GiB of pinned host memory");
  // Never an exponent, however large.
  EXPECT_EQ(MemoryText(1'800'000'000'000), "1676.4 GiB");
  EXPECT_EQ(MemoryText(500'000'000), "476.8 MiB");
}

}  // namespace
}  // namespace ablate
