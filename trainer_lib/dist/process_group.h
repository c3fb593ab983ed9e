// The ranks of one data-parallel job and the collectives the trainer needs between them.
//
// A job of N ranks runs N copies of ablate-train, started by the worker with torchrun's
// environment: RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT. Rank 0 hosts c10d's
// TCPStore on MASTER_ADDR:MASTER_PORT (torch/csrc/distributed/c10d/TCPStore.hpp) and the others
// connect to it; the backend then meets through that store: Gloo for CPU tensors, NCCL for CUDA
// tensors (compiled only where LibTorch has it, USE_C10D_NCCL). LibTorch's wheel ships Gloo
// inside libtorch_cpu but not the headers ProcessGroupGloo.hpp includes; a build without them
// (scripts/gloo-headers.sh fetches them where the network allows) runs CPU ranks' collectives
// through the store itself: each rank sets its tensor under a key, reads every rank's and sums
// them in rank order. Correct and deterministic (every rank gets the same bits), but every
// byte passes through rank 0's store: fit for the tiny models CPU ranks exist for (tests of the
// multi-rank code paths), not for speed. No WORLD_SIZE, or WORLD_SIZE=1,
// means one process, and the trainer runs exactly as it does alone.
//
// Every collective must be called by every rank in the same order with tensors of the same
// shapes and dtypes (the backends' rule); the trainer keeps that by running the same loop on
// every rank. A rank that dies leaves the others blocked in a collective until `timeout`
// (then an exception, which the trainer's edge turns into an Internal status); the worker
// supervises the gang and stops the survivors sooner.
//
// Thread-safety: calls from one thread at a time, except that Work objects may be waited on
// from any thread.
#ifndef ABLATE_TRAINER_LIB_DIST_PROCESS_GROUP_H_
#define ABLATE_TRAINER_LIB_DIST_PROCESS_GROUP_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/intrusive_ptr.h>

#include "absl/status/statusor.h"

namespace c10d {
class Backend;
class Store;
class Work;
}  // namespace c10d

namespace ablate::train::dist {

// Where this process sits in its job, from the launcher's environment.
struct RankInfo {
  int rank = 0;        // RANK, in [0, world_size)
  int local_rank = 0;  // LOCAL_RANK: the CUDA device index among CUDA_VISIBLE_DEVICES
  int world_size = 1;  // WORLD_SIZE
  std::string master_addr;
  int master_port = 0;
};

// Reads RANK, LOCAL_RANK (default: RANK), WORLD_SIZE, MASTER_ADDR, MASTER_PORT. Returns a
// RankInfo of world_size 1 when WORLD_SIZE is unset (one process, whatever the job's rank
// count) or when it is 1 and so is `expected_world_size`. InvalidArgument when WORLD_SIZE
// differs from `expected_world_size` (common/train_config's WorldSize of the job), naming
// both, and naming the variable when one is malformed, missing (RANK, MASTER_ADDR,
// MASTER_PORT for a world of several) or out of range.
absl::StatusOr<RankInfo> RankInfoFromEnvironment(int expected_world_size);

class ProcessGroup {
 public:
  // An asynchronous collective in flight; Wait blocks until its result is in the tensors it
  // was given (and, on CUDA, orders the current stream after it).
  class Work {
   public:
    explicit Work(c10::intrusive_ptr<c10d::Work> work);
    ~Work();
    Work(Work&&) noexcept;
    Work& operator=(Work&&) noexcept;
    void Wait();

   private:
    c10::intrusive_ptr<c10d::Work> work_;
  };

  // Meets the other ranks of `info` (blocking until all have connected, at most `timeout`)
  // and builds the backend for `device`: Gloo for a CPU, NCCL for CUDA (device must be
  // cuda:info.local_rank), or the store's collectives on a CPU without Gloo. Null, and nothing
  // started, for a world of one. Unimplemented when this build lacks NCCL for a CUDA device;
  // Unavailable when the rendezvous fails or times out (another attempt
  // may succeed).
  static absl::StatusOr<std::unique_ptr<ProcessGroup>> Connect(
      const RankInfo& info, const c10::Device& device,
      std::chrono::milliseconds timeout = std::chrono::minutes(5));

  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Sums `tensor` over all ranks, in place, without waiting. Any dtype the backend reduces
  // (fp32, fp64, int64 here); tensor on the group's device and contiguous.
  Work AllReduceSum(at::Tensor& tensor);
  // The largest of the values the ranks pass; waits. For agreements: a stop flag, a failure.
  int64_t Max(int64_t value);
  // Copies rank `root`'s `tensor` into every rank's, in place; waits.
  void Broadcast(at::Tensor& tensor, int root);
  // The int64 values each rank passes, indexed by rank; waits. For small agreements
  // (a step, a stop flag, a digest word), not for tensors of size.
  std::vector<int64_t> AllGather(int64_t value);
  // Returns once every rank has called it.
  void Barrier();

 private:
  ProcessGroup(int rank, int size, c10::Device device, c10::intrusive_ptr<c10d::Store> store,
               c10::intrusive_ptr<c10d::Backend> backend);

  // Without a backend: every rank's `tensor` (same shape and dtype on every rank), by rank,
  // on the CPU.
  std::vector<at::Tensor> GatherThroughStore(const at::Tensor& tensor);

  const int rank_;
  const int size_;
  const c10::Device device_;
  const c10::intrusive_ptr<c10d::Store> store_;  // held for the backend's lifetime
  const c10::intrusive_ptr<c10d::Backend> backend_;  // null: collectives through store_
  uint64_t store_sequence_ = 0;  // numbers the store's collectives, the same on every rank
};

}  // namespace ablate::train::dist

#endif  // ABLATE_TRAINER_LIB_DIST_PROCESS_GROUP_H_
