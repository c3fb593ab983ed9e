// Host memory as Linux reports it in /proc/meminfo (proc(5)), and whether a job's pinned host
// memory fits in it. A trainer pins the inputs of the layers TrainConfig's
// checkpoint_offload_layers names (trainer_lib/model/recompute.h); pinned pages cannot be
// swapped out, so a job that pins more than the host has left fails partway into its first
// step, or has the kernel's out-of-memory killer end it or another process. The trainer checks
// before its first step instead.
//
// Thread-safety: pure functions, but for ReadMeminfoBytes, which reads the file.
#ifndef ABLATE_COMMON_HOST_MEMORY_H_
#define ABLATE_COMMON_HOST_MEMORY_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ablate {

// The bytes of `field` ("MemTotal", "MemAvailable") in a /proc/meminfo text, whose lines read
// "MemTotal:       16314432 kB" (KiB, labelled kB); 0 when the field is absent or malformed.
uint64_t MeminfoBytes(std::string_view meminfo, std::string_view field);

// MeminfoBytes of this host's /proc/meminfo now; 0 where it cannot be read.
uint64_t ReadMeminfoBytes(std::string_view field);

// The memory limit of the cgroup `self_cgroup` (the text of /proc/self/cgroup) names, read
// under `cgroup_root` (/sys/fs/cgroup): cgroup v2's memory.max ("0::PATH"), else v1's
// memory.limit_in_bytes (a "N:...memory...:PATH" line), at PATH under the root or, in a
// container's cgroup namespace where PATH is not there, at the root itself. 0 when there is
// no limit ("max", or v1's near-2^63 "unlimited") or nothing can be read. A container's memory
// limit (Kubernetes' resources.limits.memory) is this, not MemTotal, which is the host's.
uint64_t CgroupMemoryLimitBytes(const std::filesystem::path& cgroup_root,
                                std::string_view self_cgroup);

// This process's memory: MemTotal, or its cgroup's limit where that is lower.
uint64_t ReadUsableMemoryBytes();

// `bytes` in binary gigabytes with one decimal, as host memory is counted: "80.0 GiB".
std::string Gibibytes(double bytes);

// The share of a host's available memory (MemAvailable) that jobs' pinned buffers may take in
// all; the rest is left to the trainers' own host memory and the host's other work.
inline constexpr double kPinnableShare = 0.9;

// kPinnableShare of `available_bytes`, in bytes.
uint64_t PinnableBytes(uint64_t available_bytes);

// OK when `ranks` ranks on one host, each pinning `per_rank_bytes` for `offloaded_layers`
// offloaded layers, take at most PinnableBytes(`available_bytes`) (MemAvailable), or when
// either is 0 (nothing pinned, or unknown). Otherwise ResourceExhausted naming
// checkpoint_offload_layers, with the bytes needed and available and what to change.
absl::Status CheckPinnedHostMemory(int64_t per_rank_bytes, int64_t ranks, uint32_t offloaded_layers,
                                   uint64_t available_bytes);

}  // namespace ablate

#endif  // ABLATE_COMMON_HOST_MEMORY_H_
