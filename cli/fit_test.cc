#include "cli/fit.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

using ::testing::ElementsAre;

v1::JobSpec Job(const std::string& model, uint32_t gpus, uint64_t memory) {
  v1::JobSpec job;
  v1::CellValue* value = job.add_cell();
  value->set_dimension("model");
  value->set_value(model);
  job.mutable_config()->set_gpus(gpus);
  job.set_memory_bytes(memory);
  return job;
}

v1::Worker Worker(const std::string& id, int cuda_slots, uint64_t memory) {
  v1::Worker worker;
  worker.mutable_info()->set_worker_id(id);
  v1::Slot* cpu = worker.mutable_info()->add_slots();
  cpu->set_kind(v1::DEVICE_KIND_CPU);
  for (int i = 0; i < cuda_slots; ++i) {
    v1::Slot* slot = worker.mutable_info()->add_slots();
    slot->set_kind(v1::DEVICE_KIND_CUDA);
    slot->set_memory_bytes(memory);
  }
  return worker;
}

TEST(FitTest, JobsNoWorkerCouldHoldAreGroupedByNeedWithTheReason) {
  v1::ListWorkersResponse workers;
  *workers.add_workers() = Worker("n1", 4, 80'000'000'000);
  *workers.add_workers() = Worker("n2", 8, 40'000'000'000);
  const std::vector<v1::JobSpec> jobs = {Job("tiny", 0, 0),            // a CPU slot: both have one
                                         Job("a", 4, 60'000'000'000),  // n1's four 80 GB slots
                                         Job("b", 8, 60'000'000'000),  // 8 slots of 60 GB: nobody
                                         Job("c", 8, 60'000'000'000),
                                         Job("d", 2, 100'000'000'000)};  // no slot has 100 GB
  EXPECT_THAT(UnfitJobs(jobs, workers),
              ElementsAre("2 jobs need 8 CUDA slots with 55.9 GiB (first: model=b); the most any "
                          "known worker has is 4 (n1)",
                          "1 job needs 2 CUDA slots with 93.1 GiB (first: model=d); no known "
                          "worker has such a slot"));
  EXPECT_TRUE(UnfitJobs({jobs[0], jobs[1]}, workers).empty());
  EXPECT_THAT(UnfitJobs(jobs, v1::ListWorkersResponse()),
              ElementsAre("no worker has registered with the coordinator yet: the jobs wait "
                          "until one does"));
}

// A job that pins host memory (checkpoint_offload_layers) needs a worker that can pin it for all
// its ranks; a worker that does not say how much it can pin is not ruled out.
TEST(FitTest, JobsThatPinMoreHostMemoryThanAWorkerOffersDoNotFit) {
  v1::ListWorkersResponse workers;
  *workers.add_workers() = Worker("n1", 2, 150'000'000'000);
  workers.mutable_workers(0)->mutable_info()->set_pinned_memory_bytes(uint64_t{64} << 30);
  v1::JobSpec one = Job("nsa-1m", 1, 140'000'000'000);
  one.set_host_memory_bytes(uint64_t{40} << 30);
  v1::JobSpec two = one;
  two.mutable_config()->set_gpus(2);
  two.mutable_cell(0)->set_value("nsa-1m-2gpus");
  EXPECT_THAT(UnfitJobs({one, two}, workers),
              ElementsAre("1 job needs 2 CUDA slots with 130.4 GiB and 80.0 GiB of pinned host "
                          "memory (first: model=nsa-1m-2gpus); the most host memory a known "
                          "worker with such slots can pin is 64.0 GiB (n1)"));
  workers.mutable_workers(0)->mutable_info()->set_pinned_memory_bytes(0);
  EXPECT_TRUE(UnfitJobs({one, two}, workers).empty());
}

}  // namespace
}  // namespace ablate::cli
