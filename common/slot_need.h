// What a job needs of a worker's slots: the one rule that placement (coordinator/scheduler),
// the free-slot count of ListWorkers (coordinator/store) and a worker picking slots for an
// assignment that names none (worker/) share, so the three cannot drift.
//
// A job holds one slot per rank (WorldSize, common/train_config.h): one CUDA slot per GPU it
// asks for, or one CPU slot per CPU rank when it asks for none. Each slot it holds must have at
// least the job's planned memory per rank (JobSpec.memory_bytes, 0 = unknown: fits anywhere); a
// slot that advertises no memory (Slot.memory_bytes 0, an older worker) is taken to fit any job.
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
  uint32_t count = 1;         // slots held, >= 1
  uint64_t memory_bytes = 0;  // per slot; 0 = any

  bool operator==(const SlotNeed&) const = default;
};

SlotNeed SlotNeedOf(const v1::JobSpec& spec);

// Whether `slot` can be one of the slots of a job with `need` (kind and memory; not whether it
// is free).
bool SlotFits(const v1::Slot& slot, const SlotNeed& need);

// "1 CUDA slot with 80 GB", "2 CUDA slots", "1 CPU slot": for messages a user reads.
std::string DescribeNeed(const SlotNeed& need);

}  // namespace ablate

#endif  // ABLATE_COMMON_SLOT_NEED_H_
