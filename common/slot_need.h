// What a job needs of a worker's slots: the one rule that placement (coordinator/scheduler),
// the free-slot count of ListWorkers (coordinator/store) and a worker picking slots for an
// assignment that names none (worker/) share, so the three cannot drift.
//
// A job holds one slot per rank (WorldSize, common/train_config.h): one CUDA slot per GPU it
// asks for, or one CPU slot per CPU rank when it asks for none. Each slot it holds must have at
// least the job's planned memory per rank (JobSpec.memory_bytes, 0 = unknown: fits anywhere); a
// slot that advertises no memory (Slot.memory_bytes 0, an older worker) is taken to fit any job.
// A job that pins host memory (JobSpec.host_memory_bytes per rank) also needs a worker that can
// still pin that much for all its ranks (WorkerInfo.pinned_memory_bytes, less what the jobs it
// runs pin; 0 = unknown: fits any job).
//
// Pure functions; safe from any thread.
#ifndef ABLATE_COMMON_SLOT_NEED_H_
#define ABLATE_COMMON_SLOT_NEED_H_

#include <cstdint>
#include <string>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/worker.pb.h"

namespace ablate {

struct SlotNeed {
  v1::DeviceKind kind = v1::DEVICE_KIND_CPU;
  uint32_t count = 1;              // slots held, >= 1
  uint64_t memory_bytes = 0;       // per slot; 0 = any
  uint64_t host_memory_bytes = 0;  // pinned host memory per slot (rank); 0 = none

  bool operator==(const SlotNeed&) const = default;
};

SlotNeed SlotNeedOf(const v1::JobSpec& spec);

// Whether `slot` can be one of the slots of a job with `need` (kind and memory; not whether it
// is free).
bool SlotFits(const v1::Slot& slot, const SlotNeed& need);

// The pinned host memory a job of `need` takes on its worker: count x host_memory_bytes.
uint64_t PinnedBytesOf(const SlotNeed& need);

// Whether a worker offering `pinnable_bytes` of host memory to pin in all
// (WorkerInfo.pinned_memory_bytes; 0: unknown) could ever hold a job of `need`'s pinned memory.
bool PinnedMemoryFits(uint64_t pinnable_bytes, const SlotNeed& need);

// `bytes` in binary units, as plans, trainers and the worker's flags count memory: "74.5 GiB",
// "476.8 MiB", "1676.4 GiB" (never an exponent).
std::string MemoryText(uint64_t bytes);

// "1 CUDA slot with 74.5 GiB", "2 CUDA slots", "1 CPU slot", "1 CUDA slot with 139.7 GiB and
// 80.0 GiB of pinned host memory" (MemoryText): for messages a user reads.
std::string DescribeNeed(const SlotNeed& need);

}  // namespace ablate

#endif  // ABLATE_COMMON_SLOT_NEED_H_
