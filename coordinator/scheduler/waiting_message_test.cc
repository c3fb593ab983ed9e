#include "coordinator/scheduler/waiting_message.h"

#include <string>

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
  EXPECT_EQ(WaitingMessage({}, gpu, {}),
            "waiting: needs 1 CUDA slot with 74.5 GiB; no worker is connected");
  const v1::WorkerInfo small = Worker(2, 40'000'000'000, 0);
  EXPECT_EQ(WaitingMessage({&small}, gpu, {}),
            "waiting: needs 1 CUDA slot with 74.5 GiB; connected workers have 2 CUDA slots with "
            "37.3 GiB, 1 CPU slot");
  const v1::WorkerInfo big = Worker(1, 80'000'000'000, 0);
  EXPECT_EQ(WaitingMessage({&small, &big}, gpu, {}), "");
}

// The host memory named is the most a worker with enough fitting slots can pin: a worker
// without them does not count, however much it could pin.
TEST(WaitingMessageTest, NamesTheMostAWorkerWithEnoughSlotsCanPin) {
  const SlotNeed pinning{v1::DEVICE_KIND_CUDA, 2, 0, 60 * kGib};
  const v1::WorkerInfo two = Worker(2, 0, 100 * kGib);
  const v1::WorkerInfo one = Worker(1, 0, 500 * kGib);
  EXPECT_EQ(WaitingMessage({&two, &one}, pinning, {}),
            "waiting: needs 2 CUDA slots with 120.0 GiB of pinned host memory; connected workers "
            "have 3 CUDA slots, 2 CPU slots, and the most host memory one with such slots can pin "
            "is 100.0 GiB");
  const v1::WorkerInfo roomy = Worker(2, 0, 120 * kGib);
  EXPECT_EQ(WaitingMessage({&two, &roomy}, pinning, {}), "");
  const v1::WorkerInfo unknown = Worker(2, 0, 0);  // says nothing: not ruled out
  EXPECT_EQ(WaitingMessage({&unknown}, pinning, {}), "");
}

v1::WorkerInfo Rooted(const std::string& id, int cuda_slots, const std::string& checkpoint_root,
                      const std::string& data_root) {
  v1::WorkerInfo info = Worker(cuda_slots, 0, 0);
  info.set_worker_id(id);
  info.add_checkpoint_roots(checkpoint_root);
  info.add_data_roots(data_root);
  return info;
}

// A path that no worker's roots hold is named first, whatever their slots: no slot would place
// the job. The checkpoint_dir is named by its folder, since every job of the sweep is told.
TEST(WaitingMessageTest, SaysWhichPathNoWorkersRootsHold) {
  const SlotNeed cpu{v1::DEVICE_KIND_CPU, 1, 0};
  const v1::WorkerInfo w1 = Rooted("w1", 0, "/ckpt", "/data");
  const v1::WorkerInfo w2 = Rooted("w2", 0, "/ckpt2", "/data2");
  EXPECT_EQ(WaitingMessage({&w1, &w2}, cpu, {"/x/s/s-0", "/y/set"}),
            "waiting: checkpoint_dir /x/s/<job id> is outside every connected worker's "
            "--checkpoint-root (w1: /ckpt; w2: /ckpt2); dataset /y/set is outside every "
            "connected worker's --data-root (w1: /data; w2: /data2)");
  EXPECT_EQ(WaitingMessage({&w1, &w2}, cpu, {"/ckpt/s/s-0", "/data2/set"}),
            "waiting: no connected worker's roots hold both its checkpoint_dir /ckpt/s/<job id> "
            "and its dataset /data2/set");
  EXPECT_EQ(WaitingMessage({&w1, &w2}, cpu, {"/ckpt2/s/s-0", "/data2/set"}), "");
  // No worker connected: nothing to judge paths by.
  EXPECT_EQ(WaitingMessage({}, cpu, {"/x/s/s-0", ""}),
            "waiting: needs 1 CPU slot; no worker is connected");
}

// Slots count only on workers whose roots hold the job's paths.
TEST(WaitingMessageTest, NamesTheSlotsOfWorkersWhoseRootsHoldThePaths) {
  const SlotNeed gpu{v1::DEVICE_KIND_CUDA, 1, 0};
  const v1::WorkerInfo cpu_only = Rooted("w1", 0, "/ckpt", "/data");
  const v1::WorkerInfo gpu_elsewhere = Rooted("w2", 1, "/ckpt2", "/data");
  EXPECT_EQ(WaitingMessage({&cpu_only, &gpu_elsewhere}, gpu, {"/ckpt/s/s-0", ""}),
            "waiting: needs 1 CUDA slot; connected workers whose roots hold its paths have 1 CPU "
            "slot");
  const v1::WorkerInfo older = Worker(1, 0, 0);  // reports no roots: may take any path
  EXPECT_EQ(WaitingMessage({&cpu_only, &older}, gpu, {"/ckpt/s/s-0", ""}), "");
}

}  // namespace
}  // namespace ablate::coordinator
