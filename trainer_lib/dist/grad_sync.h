// Data parallelism's gradient exchange: sums every parameter's gradient over the ranks of a
// ProcessGroup while the backward pass that completes them still runs.
//
// The parameters are cut into buckets of about `bucket_bytes` (25 MB by default, PyTorch
// DDP's bucket_cap_mb; Li et al., "PyTorch Distributed", VLDB 2020), taken in reverse order of
// the module's parameter list, which is roughly the order backward finishes them. Each
// parameter carries a post-accumulate-grad hook, which copies the finished gradient into its
// slot of the bucket's buffer; when the last parameter of a bucket has its
// gradient, the buffer is all-reduced asynchronously, so the exchange of late layers overlaps
// the backward pass of early ones. Afterwards each .grad is a view of its slot, so the sums
// are never copied back (DDP's gradient_as_bucket_view). Buckets are launched in
// index order on every rank (a ready bucket waits for its predecessors), because the
// backends require every rank to issue collectives in the same order.
//
// The exchange sums (it does not average): the trainer divides each rank's loss by the real
// token count of the whole global batch, so the sum over ranks is exactly the gradient one
// process computes on the combined batch, up to the order of floating-point additions.
//
// Gradient accumulation: hooks act only while armed. The trainer arms the sync before the
// backward pass of its last micro-batch, so earlier micro-batches accumulate locally with no
// communication; Finish then launches what no hook launched (parameters that got no
// gradient: they contribute zeros), waits, and points each .grad at its sum.
//
// Thread-safety: hooks run on autograd's threads during backward; Arm and Finish are called
// by the training thread before and after it. Not for concurrent backward passes.
#ifndef ABLATE_TRAINER_LIB_DIST_GRAD_SYNC_H_
#define ABLATE_TRAINER_LIB_DIST_GRAD_SYNC_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer_lib/dist/process_group.h"

namespace ablate::train::dist {

class GradientSync {
 public:
  // Borrows `group`, which must outlive it. `parameters`: the model's trainable parameters,
  // in module order, fp32 or bf16, on the group's device; each gets a hook, removed by the
  // destructor. `bucket_bytes` > 0 (a config's grad_bucket_mb, common/train_config.h's
  // kDefaultGradBucketMb unless set); a parameter larger than it gets a bucket of its own.
  GradientSync(ProcessGroup& group, std::vector<at::Tensor> parameters, int64_t bucket_bytes);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Hooks launch their buckets during the next backward pass.
  void Arm();
  // After that backward pass: every bucket launched and awaited; disarms. Afterwards every
  // parameter has a defined .grad equal to the sum over ranks: a view of the bucket's buffer,
  // valid until the next armed backward pass overwrites it.
  void Finish();

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }

  // Called by a parameter's hook: its gradient is complete.
  void MarkReady(int64_t parameter);

 private:
  struct Bucket {
    std::vector<int64_t> parameters;  // indices into parameters_
    int64_t pending = 0;              // parameters not yet ready this step
    at::Tensor flat;                  // armed: the bucket's gradients, concatenated; all-reduced
    std::vector<int64_t> offsets;     // per parameter of the bucket: its slot's start in flat
    std::optional<ProcessGroup::Work> work;
  };

  // The slot of `parameter` (of bucket `bucket`) in its buffer, shaped as the parameter.
  at::Tensor Slot(const Bucket& bucket, int64_t parameter) const;
  void Launch(Bucket& bucket);
  void LaunchReadyInOrder();

  ProcessGroup& group_;
  const std::vector<at::Tensor> parameters_;
  std::vector<Bucket> buckets_;
  std::vector<int64_t> bucket_of_;  // parameter index -> bucket index
  std::vector<int64_t> slot_of_;    // parameter index -> its position in its bucket
  std::vector<char> ready_;         // per parameter: its gradient is complete this step
  int64_t next_launch_ = 0;         // buckets before it have been launched this step
  bool armed_ = false;
};

}  // namespace ablate::train::dist

#endif  // ABLATE_TRAINER_LIB_DIST_GRAD_SYNC_H_
