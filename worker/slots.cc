#include "worker/slots.h"

#include <stdio.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/host_memory.h"

namespace ablate::worker {
namespace {

constexpr char kProcGpus[] = "/proc/driver/nvidia/gpus";

// `timeout` bounds a driver that hangs, which would otherwise hang the worker's start; KILL
// because a caller may have blocked SIGTERM, and the mask survives exec.
constexpr char kNvidiaSmi[] =
    "timeout -s KILL 20 nvidia-smi --query-gpu=index,name,memory.total "
    "--format=csv,noheader,nounits "
    "2>/dev/null";

// The command's standard output, or nullopt when it could not run or exited non-zero.
std::optional<std::string> RunCommand(const char* command) {
  FILE* pipe = popen(command, "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  if (pclose(pipe) != 0) return std::nullopt;
  return out;
}

std::vector<v1::Slot> ProcGpuSlots() {
  std::error_code error;
  std::vector<std::filesystem::path> buses;
  for (const auto& entry : std::filesystem::directory_iterator(kProcGpus, error)) {
    buses.push_back(entry.path());
  }
  // Directory names are PCI addresses; sorted, they give PCI bus order.
  std::sort(buses.begin(), buses.end());
  std::vector<v1::Slot> slots;
  for (const auto& bus : buses) {
    std::ifstream file(bus / "information");
    std::stringstream text;
    text << file.rdbuf();
    v1::Slot& slot = slots.emplace_back();
    slot.set_kind(v1::DEVICE_KIND_CUDA);
    slot.set_index(static_cast<uint32_t>(slots.size() - 1));
    slot.set_name(ParseProcGpuModel(text.str()));
  }
  return slots;
}

}  // namespace

std::vector<v1::Slot> CpuSlots(uint32_t count, uint64_t memory_bytes) {
  std::vector<v1::Slot> slots(count);
  for (uint32_t i = 0; i < count; ++i) {
    slots[i].set_kind(v1::DEVICE_KIND_CPU);
    slots[i].set_index(i);
    slots[i].set_name("cpu");
    slots[i].set_memory_bytes(memory_bytes);
  }
  return slots;
}

std::vector<v1::Slot> ParseNvidiaSmiQuery(std::string_view csv) {
  std::vector<v1::Slot> slots;
  const absl::string_view text(csv.data(), csv.size());
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    uint32_t index = 0;
    uint64_t mib = 0;
    if (fields.size() != 3 || !absl::SimpleAtoi(fields[0], &index) ||
        !absl::SimpleAtoi(fields[2], &mib)) {
      continue;
    }
    v1::Slot& slot = slots.emplace_back();
    slot.set_kind(v1::DEVICE_KIND_CUDA);
    slot.set_index(index);
    slot.set_name(std::string(absl::StripAsciiWhitespace(fields[1])));
    slot.set_memory_bytes(mib << 20);
  }
  return slots;
}

std::string ParseProcGpuModel(std::string_view information) {
  const absl::string_view text(information.data(), information.size());
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "Model:")) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

std::vector<v1::Slot> VisibleSlots(const std::vector<v1::Slot>& devices, const char* visible) {
  if (visible == nullptr) return devices;
  const std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(visible));
  if (value == "all") return devices;
  std::vector<v1::Slot> kept;
  if (value.empty() || value == "none" || value == "void" || value == "nodevfiles") return kept;
  for (absl::string_view entry : absl::StrSplit(value, ',')) {
    int index = 0;
    if (!absl::SimpleAtoi(entry, &index)) return devices;  // a UUID: not matched here
    if (index < 0) break;
    for (const v1::Slot& slot : devices) {
      if (static_cast<int>(slot.index()) == index) kept.push_back(slot);
    }
  }
  return kept;
}

std::vector<v1::Slot> DetectCudaSlots() {
  std::vector<v1::Slot> devices;
  if (std::optional<std::string> out = RunCommand(kNvidiaSmi)) devices = ParseNvidiaSmiQuery(*out);
  if (devices.empty()) devices = ProcGpuSlots();
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (visible == nullptr) visible = std::getenv("NVIDIA_VISIBLE_DEVICES");
  return VisibleSlots(devices, visible);
}

std::vector<v1::Slot> DefaultSlots(uint32_t cpu_slots, uint64_t cpu_slot_memory_bytes) {
  if (cpu_slots == 0) {
    std::vector<v1::Slot> cuda = DetectCudaSlots();
    if (!cuda.empty()) return cuda;
    cpu_slots = 1;
  }
  if (cpu_slot_memory_bytes == 0) {
    cpu_slot_memory_bytes = ReadUsableMemoryBytes() / cpu_slots;
  }
  return CpuSlots(cpu_slots, cpu_slot_memory_bytes);
}

}  // namespace ablate::worker
