// Per-GPU health of the devices a worker's jobs run on: utilization, memory in use and
// temperature, read through NVML (NVIDIA's management library, the one nvidia-smi uses).
//
// NVML is loaded at run time (dlopen of libnvidia-ml.so.1, which the NVIDIA driver installs),
// so the worker links no NVIDIA library and runs unchanged on machines without one; there
// OpenNvml() says NotFound and the worker reports no GPU metrics. NVML numbers devices in PCI
// bus order, as slots are numbered (slots.h), so a slot's index is its NVML index.
//
// The points a job gets (GpuMetricPoints) are named gpu/<r>/<quantity>, r being the job's
// r-th GPU (its rank's device):
//   gpu/<r>/utilization_percent  percent of the last sample period a kernel ran (NVML's
//                                nvmlUtilization_t.gpu)
//   gpu/<r>/memory_used_bytes    device memory in use by every process
//   gpu/<r>/temperature_celsius  the GPU die's temperature
//
// Thread-safety: Sample() may be called from any thread (NVML is thread-safe).
#ifndef ABLATE_WORKER_GPU_MONITOR_H_
#define ABLATE_WORKER_GPU_MONITOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "ablate/v1/metrics.pb.h"
#include "absl/status/statusor.h"

namespace ablate::worker {

struct GpuSample {
  double utilization_percent = 0;  // 0..100
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  double temperature_celsius = 0;
};

class GpuMonitor {
 public:
  virtual ~GpuMonitor() = default;
  // The device with NVML index `index` now. NotFound for an index NVML does not know;
  // Internal with NVML's error text for any other failure.
  virtual absl::StatusOr<GpuSample> Sample(uint32_t index) = 0;
};

// NVML, initialised. NotFound when libnvidia-ml.so.1 cannot be loaded (no NVIDIA driver) or
// lacks a function used here; Internal with NVML's error text when it will not initialise.
absl::StatusOr<std::unique_ptr<GpuMonitor>> OpenNvml();

// The metric points of one job's GPUs, `samples[r]` being its r-th GPU's, at the trainer's
// latest `step` and `wall_time` (seconds since the Unix epoch).
std::vector<v1::MetricPoint> GpuMetricPoints(const std::vector<GpuSample>& samples, int64_t step,
                                             double wall_time);

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_GPU_MONITOR_H_
