// Activation checkpointing: run a function of one tensor without keeping its intermediate
// activations, and run it again in backward to get them. LibTorch has no
// torch.utils.checkpoint, so this is its reentrant form: a custom autograd function keeps only
// the input, and its backward reruns `fn` with grad mode on and backpropagates through that
// rerun, which accumulates the parameters' gradients as the first pass would have.
//
// The rerun restores the autocast state the forward pass had, so a bf16 step recomputes the
// same bf16 values. `fn` must be deterministic: Qwen3 has no dropout, so no random generator
// state needs restoring.
//
// Offloaded, the input waits for backward in pinned host memory: copied out in forward and back
// in backward, both on the current stream without blocking the host. Stream order keeps both
// copies safe (the GPU tensor is not reused before the copy out has read it; backward's kernels
// run after the copy in), at the price of the copies' time on that stream: about 80 ms each
// way for 4 GiB at PCIe 5's ~50 GB/s. On a CPU tensor it is an ordinary copy, kept apart from
// the input.
//
// Thread-safety: as the module `fn` calls.
#ifndef ABLATE_TRAINER_LIB_MODEL_RECOMPUTE_H_
#define ABLATE_TRAINER_LIB_MODEL_RECOMPUTE_H_

#include <functional>

#include <ATen/core/Tensor.h>

namespace ablate::train {

// fn(x), holding for backward only x (and fn, which must stay callable until then: capture
// what it needs by value), on x's device or, with `offload`, in host memory. Same result and
// gradients as calling fn(x) directly, up to the nondeterminism of the kernels fn runs.
//
// By default the rerun's own backward accumulates into the parameters fn reads, one
// accumulation per node. `params` (tensors fn reads besides x) makes this node return their
// gradients instead, from autograd::grad on the rerun, so that the engine sums every node's
// gradient for a parameter before its one accumulation: needed where several nodes read the
// same parameters in one backward (a chunked MLP), since each accumulation fires the
// parameter's post-accumulate hooks, which data-parallel gradient sync allows once a backward.
at::Tensor RecomputeInBackward(std::function<at::Tensor(const at::Tensor&)> fn,
                               const at::Tensor& x, bool offload = false,
                               at::TensorList params = {});

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_RECOMPUTE_H_
