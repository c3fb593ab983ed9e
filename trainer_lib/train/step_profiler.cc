#include "trainer_lib/train/step_profiler.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include <kineto/ActivityType.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ablate::train {
namespace {

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;

std::set<ActivityType> Activities(const c10::Device& device) {
  if (device.is_cuda()) return {ActivityType::CPU, ActivityType::CUDA};
  return {ActivityType::CPU};
}

profiler::ProfilerConfig Config() {
  return profiler::ProfilerConfig(torch::profiler::impl::ProfilerState::KINETO);
}

void WaitForDevice(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

struct KernelTotal {
  std::string kind;
  std::string name;
  int64_t calls = 0;
  double ms = 0;
};

// Device activity on a GPU; operators' inclusive times on a CPU (see the header).
std::vector<KernelTotal> Totals(const profiler::ProfilerResult& result, bool on_gpu) {
  std::map<std::string, KernelTotal> by_name;
  for (const profiler::KinetoEvent& event : result.events()) {
    const bool device_event = event.deviceType() != c10::DeviceType::CPU;
    if (device_event != on_gpu) continue;
    // Ranges drawn on the device's timeline around other activity (c10d's "nccl:all_reduce"
    // spans its kernel): counting them would count that activity twice.
    if (event.activityType() == static_cast<uint8_t>(libkineto::ActivityType::GPU_USER_ANNOTATION)) {
      continue;
    }
    KernelTotal& total = by_name[event.name()];
    total.name = event.name();
    total.calls += 1;
    total.ms += static_cast<double>(event.durationNs()) / 1e6;
  }
  std::vector<KernelTotal> totals;
  for (auto& [name, total] : by_name) {
    total.kind = KernelKind(name);
    totals.push_back(std::move(total));
  }
  std::sort(totals.begin(), totals.end(),
            [](const KernelTotal& a, const KernelTotal& b) { return a.ms > b.ms; });
  return totals;
}

// Kernel names can be long C++ template signatures; tabs and newlines would break the table.
std::string OneField(std::string text) {
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
  return text;
}

}  // namespace

std::string KernelKind(const std::string& name) {
  const std::string lower = absl::AsciiStrToLower(name);
  const auto any = [&lower](std::initializer_list<const char*> words) {
    for (const char* word : words) {
      if (absl::StrContains(lower, word)) return true;
    }
    return false;
  };
  // Order matters: flash kernels mention "gemm" in their templates, fused Adam "elementwise",
  // NCCL's all-reduce "reduce".
  if (any({"nccl"})) return "communication";
  if (any({"flash", "fmha", "attention", "sdpa", "cudnn_generated_fort_native_sdpa"})) {
    return "attention";
  }
  if (any({"adam", "multi_tensor", "foreach"})) return "optimizer";
  if (any({"gemm", "xmma", "cutlass", "nvjet", "cublas", "aten::mm", "aten::addmm",
           "aten::bmm", "aten::matmul", "aten::linear"})) {
    return "matmul";
  }
  if (any({"memcpy", "memset", "copy", "aten::to", "aten::_to_copy"})) return "copy";
  if (any({"reduce", "norm", "aten::sum", "aten::mean", "softmax", "logsumexp"})) {
    return "reduction";
  }
  if (any({"elementwise", "vectorized", "aten::"})) return "elementwise";
  return "other";
}

StepProfiler::StepProfiler(ProfileOptions options) : options_(std::move(options)) {}

StepProfiler::~StepProfiler() {
  if (running_) profiler::disableProfiler();
}

void StepProfiler::BeforeStep(int64_t steps_done, const c10::Device& device) {
  if (running_ || steps_done != options_.first_step) return;
  WaitForDevice(device);  // earlier steps' kernels stay out of the window
  const std::set<ActivityType> activities = Activities(device);
  profiler::prepareProfiler(Config(), activities);
  profiler::enableProfiler(Config(), activities);
  running_ = true;
}

absl::StatusOr<std::optional<std::string>> StepProfiler::AfterStep(int64_t steps_done,
                                                                   const c10::Device& device) {
  if (!running_ || steps_done != options_.first_step + options_.steps) return std::nullopt;
  WaitForDevice(device);
  std::unique_ptr<profiler::ProfilerResult> result = profiler::disableProfiler();
  running_ = false;

  std::error_code error;
  std::filesystem::create_directories(options_.dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("profile: create ", options_.dir.string(), ": ", error.message()));
  }
  const std::filesystem::path trace = options_.dir / "trace.json";
  result->save(trace.string());
  if (!std::filesystem::exists(trace)) {
    return absl::InternalError(absl::StrCat("profile: write ", trace.string(), " failed"));
  }

  const bool on_gpu = device.is_cuda();
  const std::vector<KernelTotal> totals = Totals(*result, on_gpu);
  double all_ms = 0;            // the compute stream's busy time
  double communication_ms = 0;  // on NCCL's stream, overlapping the rest
  std::map<std::string, double> by_kind;
  for (const KernelTotal& t : totals) {
    if (t.kind == "communication") {
      communication_ms += t.ms;
      continue;
    }
    all_ms += t.ms;
    by_kind[t.kind] += t.ms;
  }
  const double steps = static_cast<double>(options_.steps);
  const std::filesystem::path table = options_.dir / "kernels.tsv";
  std::ofstream out(table);
  out << "kind\tname\tcalls\ttotal_ms\tms_per_step\tshare\n";
  for (const KernelTotal& t : totals) {
    out << absl::StrFormat("%s\t%s\t%d\t%.3f\t%.3f\t%.4f\n", t.kind, OneField(t.name), t.calls,
                           t.ms, t.ms / steps, all_ms > 0 ? t.ms / all_ms : 0.0);
  }
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("profile: write ", table.string(), " failed"));

  std::vector<std::pair<double, std::string>> kinds;
  for (const auto& [kind, ms] : by_kind) kinds.emplace_back(ms, kind);
  std::sort(kinds.rbegin(), kinds.rend());
  std::vector<std::string> shares;
  for (const auto& [ms, kind] : kinds) {
    shares.push_back(absl::StrFormat("%s %.0f%%", kind, all_ms > 0 ? 100 * ms / all_ms : 0.0));
  }
  if (communication_ms > 0) {
    shares.push_back(absl::StrFormat("beside them communication %.1f ms", communication_ms / steps));
  }
  const int64_t first = options_.first_step + 1;
  return absl::StrFormat("profile of steps %d..%d: %s %.1f ms per step: %s; %s and %s written",
                         first, first + options_.steps - 1,
                         on_gpu ? "device busy" : "operators (inclusive)", all_ms / steps,
                         absl::StrJoin(shares, ", "), trace.string(), table.string());
}

}  // namespace ablate::train
