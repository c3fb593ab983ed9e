#include "worker/gpu_monitor.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ablate::worker {
namespace {

// The few declarations of nvml.h used here, as NVML's API reference gives them (the header is
// not on machines without the CUDA toolkit, where the worker must build too).
using NvmlReturn = int;  // nvmlReturn_t; NVML_SUCCESS is 0
using NvmlDevice = struct NvmlDeviceOpaque*;
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr NvmlReturn kNvmlErrorInvalidArgument = 2;
constexpr NvmlReturn kNvmlErrorNotFound = 6;
constexpr int kNvmlTemperatureGpu = 0;  // NVML_TEMPERATURE_GPU
struct NvmlUtilization {                // nvmlUtilization_t
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlMemory {  // nvmlMemory_t
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

class Nvml final : public GpuMonitor {
 public:
  static absl::StatusOr<std::unique_ptr<GpuMonitor>> Open() {
    void* library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      return absl::NotFoundError(absl::StrCat("NVML not loaded: ", dlerror()));
    }
    auto nvml = std::unique_ptr<Nvml>(new Nvml(library));
    bool complete = true;
    auto bind = [&](auto& function, const char* name) {
      function =
          reinterpret_cast<std::remove_reference_t<decltype(function)>>(dlsym(library, name));
      complete = complete && function != nullptr;
    };
    bind(nvml->init_, "nvmlInit_v2");
    bind(nvml->shutdown_, "nvmlShutdown");
    bind(nvml->error_string_, "nvmlErrorString");
    bind(nvml->handle_by_index_, "nvmlDeviceGetHandleByIndex_v2");
    bind(nvml->utilization_, "nvmlDeviceGetUtilizationRates");
    bind(nvml->memory_, "nvmlDeviceGetMemoryInfo");
    bind(nvml->temperature_, "nvmlDeviceGetTemperature");
    if (!complete) return absl::NotFoundError("NVML lacks a function the worker uses");
    if (NvmlReturn status = nvml->init_(); status != kNvmlSuccess) {
      return absl::InternalError(
          absl::StrCat("NVML will not start: ", nvml->error_string_(status)));
    }
    nvml->initialised_ = true;
    return nvml;
  }

  ~Nvml() override {
    if (initialised_) shutdown_();
    dlclose(library_);
  }

  absl::StatusOr<GpuSample> Sample(uint32_t index) override {
    NvmlDevice device = nullptr;
    if (NvmlReturn status = handle_by_index_(index, &device); status != kNvmlSuccess) {
      return Error(status, absl::StrCat("GPU ", index));
    }
    NvmlUtilization utilization = {};
    NvmlMemory memory = {};
    unsigned int temperature = 0;
    if (NvmlReturn status = utilization_(device, &utilization); status != kNvmlSuccess) {
      return Error(status, absl::StrCat("utilization of GPU ", index));
    }
    if (NvmlReturn status = memory_(device, &memory); status != kNvmlSuccess) {
      return Error(status, absl::StrCat("memory of GPU ", index));
    }
    if (NvmlReturn status = temperature_(device, kNvmlTemperatureGpu, &temperature);
        status != kNvmlSuccess) {
      return Error(status, absl::StrCat("temperature of GPU ", index));
    }
    return GpuSample{.utilization_percent = static_cast<double>(utilization.gpu),
                     .memory_used_bytes = memory.used,
                     .memory_total_bytes = memory.total,
                     .temperature_celsius = static_cast<double>(temperature)};
  }

 private:
  explicit Nvml(void* library) : library_(library) {}

  absl::Status Error(NvmlReturn status, const std::string& what) const {
    const std::string text = absl::StrCat(what, ": ", error_string_(status));
    return status == kNvmlErrorNotFound || status == kNvmlErrorInvalidArgument
               ? absl::NotFoundError(text)
               : absl::InternalError(text);
  }

  void* const library_;
  bool initialised_ = false;
  NvmlReturn (*init_)() = nullptr;
  NvmlReturn (*shutdown_)() = nullptr;
  const char* (*error_string_)(NvmlReturn) = nullptr;
  NvmlReturn (*handle_by_index_)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*utilization_)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*memory_)(NvmlDevice, NvmlMemory*) = nullptr;
  NvmlReturn (*temperature_)(NvmlDevice, int, unsigned int*) = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GpuMonitor>> OpenNvml() { return Nvml::Open(); }

std::vector<v1::MetricPoint> GpuMetricPoints(const std::vector<GpuSample>& samples, int64_t step,
                                             double wall_time) {
  std::vector<v1::MetricPoint> points;
  for (size_t r = 0; r < samples.size(); ++r) {
    for (const auto& [quantity, value] :
         {std::pair{"utilization_percent", samples[r].utilization_percent},
          std::pair{"memory_used_bytes", static_cast<double>(samples[r].memory_used_bytes)},
          std::pair{"temperature_celsius", samples[r].temperature_celsius}}) {
      v1::MetricPoint& point = points.emplace_back();
      point.set_name(absl::StrCat("gpu/", r, "/", quantity));
      point.set_step(step);
      point.set_value(value);
      point.set_wall_time(wall_time);
    }
  }
  return points;
}

}  // namespace ablate::worker
