#include "trainer_lib/dist/process_group.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/torch.h>
#ifdef ABLATE_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef ABLATE_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ablate::train::dist {
namespace {

// The integer in environment variable `name`, or `fallback` when it is unset.
absl::StatusOr<int> IntFromEnvironment(const char* name, std::optional<int> fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    if (fallback.has_value()) return *fallback;
    return absl::InvalidArgumentError(absl::StrCat(name, " is not set"));
  }
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "=", text, " is not a non-negative integer"));
  }
  return value;
}

absl::StatusOr<c10::intrusive_ptr<c10d::Backend>> MakeBackend(
    const c10::intrusive_ptr<c10d::Store>& store, const RankInfo& info, const c10::Device& device,
    std::chrono::milliseconds timeout) {
  if (device.is_cuda()) {
#ifdef ABLATE_WITH_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    return c10::intrusive_ptr<c10d::Backend>(
        c10::make_intrusive<c10d::ProcessGroupNCCL>(store, info.rank, info.world_size, options));
#else
    return absl::UnimplementedError(
        "data parallelism on CUDA needs NCCL, which this build of the trainer lacks");
#endif
  }
#ifdef ABLATE_WITH_GLOO
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // All ranks of a job run on one host; they meet on the address the launcher chose.
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(info.master_addr));
  return c10::intrusive_ptr<c10d::Backend>(
      c10::make_intrusive<c10d::ProcessGroupGloo>(store, info.rank, info.world_size, options));
#else
  // No backend: the collectives go through the store (ProcessGroup's header says why).
  return c10::intrusive_ptr<c10d::Backend>();
#endif
}

// Every rank's `bytes`, indexed by rank, through the store: each rank sets its own key, reads
// all of them, and the last reader removes them. Collective `sequence` names the keys, so
// every rank must call this in the same order.
std::vector<std::vector<uint8_t>> GatherThroughStore(c10d::Store& store, int rank, int size,
                                                     uint64_t sequence,
                                                     const std::vector<uint8_t>& bytes) {
  const std::string prefix = absl::StrCat("ablate/collective/", sequence, "/");
  store.set(absl::StrCat(prefix, rank), bytes);
  std::vector<std::vector<uint8_t>> all;
  for (int r = 0; r < size; ++r) all.push_back(store.get(absl::StrCat(prefix, r)));
  if (store.add(prefix + "read", 1) == size) {
    for (int r = 0; r < size; ++r) store.deleteKey(absl::StrCat(prefix, r));
    store.deleteKey(prefix + "read");
  }
  return all;
}

std::vector<uint8_t> BytesOf(const at::Tensor& tensor) {
  const at::Tensor contiguous = tensor.contiguous();
  const auto* data = static_cast<const uint8_t*>(contiguous.data_ptr());
  return std::vector<uint8_t>(data, data + contiguous.nbytes());
}

at::Tensor TensorOf(std::vector<uint8_t>& bytes, const at::Tensor& like) {
  return torch::from_blob(bytes.data(), like.sizes(), like.options().device(torch::kCPU)).clone();
}

}  // namespace

absl::StatusOr<RankInfo> RankInfoFromEnvironment(int expected_world_size) {
  RankInfo info;
  // Without a launcher the job runs as one process, whatever its rank count: batch_size is
  // global, so it computes the same run.
  const char* world_text = std::getenv("WORLD_SIZE");
  if (world_text == nullptr || *world_text == '\0') return info;
  absl::StatusOr<int> world = IntFromEnvironment("WORLD_SIZE", 1);
  if (!world.ok()) return world.status();
  if (*world != expected_world_size) {
    return absl::InvalidArgumentError(absl::StrCat("WORLD_SIZE=", *world, " but the job asks for ",
                                                   expected_world_size,
                                                   " ranks (gpus, or cpu_ranks on a CPU)"));
  }
  if (*world == 1) return info;
  info.world_size = *world;
  absl::StatusOr<int> rank = IntFromEnvironment("RANK", std::nullopt);
  if (!rank.ok()) return rank.status();
  if (*rank >= info.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("RANK=", *rank, " is not below WORLD_SIZE=", info.world_size));
  }
  info.rank = *rank;
  absl::StatusOr<int> local_rank = IntFromEnvironment("LOCAL_RANK", info.rank);
  if (!local_rank.ok()) return local_rank.status();
  info.local_rank = *local_rank;
  const char* addr = std::getenv("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0') {
    return absl::InvalidArgumentError("MASTER_ADDR is not set");
  }
  info.master_addr = addr;
  absl::StatusOr<int> port = IntFromEnvironment("MASTER_PORT", std::nullopt);
  if (!port.ok()) return port.status();
  if (*port == 0 || *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("MASTER_PORT=", *port, " is not a port"));
  }
  info.master_port = *port;
  return info;
}

ProcessGroup::Work::Work(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
ProcessGroup::Work::~Work() = default;
ProcessGroup::Work::Work(Work&&) noexcept = default;
ProcessGroup::Work& ProcessGroup::Work::operator=(Work&&) noexcept = default;

void ProcessGroup::Work::Wait() {
  if (work_) work_->wait();  // none: the collective went through the store, already done
}

absl::StatusOr<std::unique_ptr<ProcessGroup>> ProcessGroup::Connect(
    const RankInfo& info, const c10::Device& device, std::chrono::milliseconds timeout) {
  if (info.world_size == 1) return nullptr;
  // NCCL and CUDA's allocator work on the current device: make it this rank's, so that no
  // rank opens a context on another rank's GPU.
  if (device.is_cuda()) c10::impl::getDeviceGuardImpl(device.type())->setDevice(device);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(info.master_port);
    options.isServer = info.rank == 0;
    options.numWorkers = info.world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(info.master_addr, options);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", info.rank, ": rendezvous at ",
                                               info.master_addr, ":", info.master_port,
                                               " failed: ", e.what()));
  }
  absl::StatusOr<c10::intrusive_ptr<c10d::Backend>> backend;
  try {
    backend = MakeBackend(store, info, device, timeout);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("rank ", info.rank, ": starting the backend failed: ", e.what()));
  }
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<ProcessGroup>(
      new ProcessGroup(info.rank, info.world_size, device, std::move(store), *std::move(backend)));
}

ProcessGroup::ProcessGroup(int rank, int size, c10::Device device,
                           c10::intrusive_ptr<c10d::Store> store,
                           c10::intrusive_ptr<c10d::Backend> backend)
    : rank_(rank),
      size_(size),
      device_(device),
      store_(std::move(store)),
      backend_(std::move(backend)) {}

ProcessGroup::~ProcessGroup() {
  if (backend_) return;
  // Rank 0's store serves every collective: it must outlive the other ranks' last requests,
  // so each rank says it is done and rank 0 waits for all of them (bounded, in case one died).
  try {
    store_->add("ablate/finished", 1);
    if (rank_ != 0) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (store_->add("ablate/finished", 0) < size_ &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } catch (const std::exception&) {
    // A peer that has already gone away: nothing is left to wait for.
  }
}

std::vector<at::Tensor> ProcessGroup::GatherThroughStore(const at::Tensor& tensor) {
  std::vector<std::vector<uint8_t>> all = dist::GatherThroughStore(
      *store_, rank_, size_, store_sequence_++, BytesOf(tensor.to(torch::kCPU)));
  std::vector<at::Tensor> tensors;
  for (std::vector<uint8_t>& bytes : all) tensors.push_back(TensorOf(bytes, tensor));
  return tensors;
}

ProcessGroup::Work ProcessGroup::AllReduceSum(at::Tensor& tensor) {
  if (!backend_) {
    // Summed in rank order on every rank, so every rank gets the same bits.
    at::Tensor sum;
    for (const at::Tensor& part : GatherThroughStore(tensor)) {
      sum = sum.defined() ? sum.add_(part) : part;
    }
    tensor.copy_(sum);
    return Work(c10::intrusive_ptr<c10d::Work>());
  }
  std::vector<at::Tensor> tensors = {tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  return Work(backend_->allreduce(tensors, options));
}

int64_t ProcessGroup::Max(int64_t value) {
  if (!backend_) {
    const std::vector<int64_t> values = AllGather(value);
    return *std::max_element(values.begin(), values.end());
  }
  std::vector<at::Tensor> tensors = {
      torch::full({1}, value, torch::TensorOptions().dtype(torch::kInt64).device(device_))};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  backend_->allreduce(tensors, options)->wait();
  return tensors[0].item<int64_t>();
}

void ProcessGroup::Broadcast(at::Tensor& tensor, int root) {
  if (!backend_) {
    tensor.copy_(GatherThroughStore(tensor)[root]);
    return;
  }
  std::vector<at::Tensor> tensors = {tensor};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  backend_->broadcast(tensors, options)->wait();
}

std::vector<int64_t> ProcessGroup::AllGather(int64_t value) {
  const auto options = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  if (!backend_) {
    std::vector<int64_t> values;
    for (const at::Tensor& t : GatherThroughStore(torch::full({1}, value, options))) {
      values.push_back(t.item<int64_t>());
    }
    return values;
  }
  std::vector<at::Tensor> input = {torch::full({1}, value, options)};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty({1}, options));
  backend_->allgather(output, input)->wait();
  std::vector<int64_t> values;
  for (const at::Tensor& t : output[0]) values.push_back(t.item<int64_t>());
  return values;
}

void ProcessGroup::Barrier() {
  // A one-element all-reduce rather than the backend's barrier: NCCL's needs device ids
  // and Gloo's is the same thing underneath.
  at::Tensor token = torch::zeros({1}, torch::TensorOptions().device(device_));
  AllReduceSum(token).Wait();
  (void)token.item<float>();
}

}  // namespace ablate::train::dist
