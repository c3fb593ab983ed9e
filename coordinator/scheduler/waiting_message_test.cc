#include "coordinator/scheduler/waiting_message.h"

#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

constexpr uint64_t kGib = uint64_t{1} << 30;

v1::WorkerInfo Worker(int cuda_slots, uint64_t slot_memory, uint64_t pinnable) {
  v1::WorkerInfo info;
  for (int i = 0; i < cuda_slots; ++i) {
    v1::Slot* slot = info.add_slots();
    slot->set_kind(v1::DEVICE_KIND_CUDA);
    slot->set_index(static_cast<uint32_t>(i));
    slot->set_memory_bytes(slot_memory);
  }
  v1::Slot* cpu = info.add_slots();
  cpu->set_kind(v1::DEVICE_KIND_CPU);
  cpu->set_index(static_cast<uint32_t>(cuda_slots));
  info.set_pinned_memory_bytes(pinnable);
  return info;
}

TEST(WaitingMessageTest, SaysWhatNoWorkerHas) {
  const SlotNeed gpu{v1::DEVICE_KIND_CUDA, 1, 80'000'000'000};
  EXPECT_EQ(WaitingMessage({}, gpu),
            "waiting: needs 1 CUDA slot with 74.5 GiB; no worker is connected");
  const v1::WorkerInfo small = Worker(2, 40'000'000'000, 0);
  EXPECT_EQ(WaitingMessage({&small}, gpu),
            "waiting: needs 1 CUDA slot with 74.5 GiB; connected workers have 2 CUDA slots with "
            "37.3 GiB, 1 CPU slot");
  const v1::WorkerInfo big = Worker(1, 80'000'000'000, 0);
  EXPECT_EQ(WaitingMessage({&small, &big}, gpu), "");
}

// The host memory named is the most a worker with enough fitting slots can pin: a worker
// without them does not count, however much it could pin.
TEST(WaitingMessageTest, NamesTheMostAWorkerWithEnoughSlotsCanPin) {
  const SlotNeed pinning{v1::DEVICE_KIND_CUDA, 2, 0, 60 * kGib};
  const v1::WorkerInfo two = Worker(2, 0, 100 * kGib);
  const v1::WorkerInfo one = Worker(1, 0, 500 * kGib);
  EXPECT_EQ(WaitingMessage({&two, &one}, pinning),
            "waiting: needs 2 CUDA slots with 120.0 GiB of pinned host memory; connected workers "
            "have 3 CUDA slots, 2 CPU slots, and the most host memory one with such slots can pin "
            "is 100.0 GiB");
  const v1::WorkerInfo roomy = Worker(2, 0, 120 * kGib);
  EXPECT_EQ(WaitingMessage({&two, &roomy}, pinning), "");
  const v1::WorkerInfo unknown = Worker(2, 0, 0);  // says nothing: not ruled out
  EXPECT_EQ(WaitingMessage({&unknown}, pinning), "");
}

}  // namespace
}  // namespace ablate::coordinator
