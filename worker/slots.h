// The slots a worker advertises: one per CUDA device when the machine has any, otherwise a
// number of CPU slots. Detection runs `nvidia-smi` (the worker links no CUDA library) and
// falls back to the driver's /proc entries. Each slot says how much memory a job placed on it
// may use (Slot.memory_bytes): a CUDA slot its device's memory as nvidia-smi reports it (0,
// unknown, from the /proc fallback, which does not say); a CPU slot the memory it is given, by
// default the machine's MemTotal (/proc/meminfo), or the worker's cgroup memory limit where
// lower (a container's: common/host_memory.h), divided evenly among the CPU slots.
// Stateless; safe from any thread.
#ifndef ABLATE_WORKER_SLOTS_H_
#define ABLATE_WORKER_SLOTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ablate/v1/worker.pb.h"

namespace ablate::worker {

// `count` CPU slots, indexed 0..count-1, each offering `memory_bytes` (0: unknown).
std::vector<v1::Slot> CpuSlots(uint32_t count, uint64_t memory_bytes = 0);

// This machine's CUDA devices that the worker may use, indexed in PCI bus order (the order CUDA
// uses when CUDA_DEVICE_ORDER=PCI_BUS_ID, which the worker sets for its trainers): those its
// environment makes visible (VisibleSlots with CUDA_VISIBLE_DEVICES, else
// NVIDIA_VISIBLE_DEVICES), as a Slurm step or a container runtime sets them. Empty when there is
// no NVIDIA driver.
std::vector<v1::Slot> DetectCudaSlots();

// The slots of `devices` that `visible` (a CUDA_VISIBLE_DEVICES-style value) lets through, in
// its order: nullptr or "all" keeps every device; "", "none", "void", "NoDevFiles" or a
// negative index keep none (CUDA stops at the first invalid entry, and so does this); a list
// of indices ("2,3") keeps those. Entries that are not indices (GPU UUIDs) keep every device:
// slots are matched by index only.
std::vector<v1::Slot> VisibleSlots(const std::vector<v1::Slot>& devices, const char* visible);

// The slots a worker offers: `cpu_slots` CPU slots when given (> 0), else its CUDA devices,
// else one CPU slot. CPU slots offer `cpu_slot_memory_bytes` each when given (> 0), else an
// even share of the machine's memory.
std::vector<v1::Slot> DefaultSlots(uint32_t cpu_slots, uint64_t cpu_slot_memory_bytes = 0);

// Parses `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`
// ("0, NVIDIA H100 80GB HBM3, 81559" per line, memory in MiB). Lines that do not parse are
// skipped.
std::vector<v1::Slot> ParseNvidiaSmiQuery(std::string_view csv);

// The model name from a /proc/driver/nvidia/gpus/<bus>/information file ("Model: \t NVIDIA
// H100 80GB HBM3"), or an empty string.
std::string ParseProcGpuModel(std::string_view information);

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_SLOTS_H_
