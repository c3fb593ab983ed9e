// Optimizers by the name a sweep gives them (TrainConfig.optimizer), built over a model's
// parameters. Weight decay applies to matrices only: norm weights and biases (1-D parameters)
// are left undecayed, as in GPT-2 and llm.c. A checkpoint holds an optimizer through
// OptimizerState, the one place that knows how its state is stored.
//
// Thread-safety: the factory is safe from any thread; an optimizer is used by one thread.
#ifndef ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_H_
#define ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_H_

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "trainer_lib/state/stateful.h"

namespace ablate::train {

// A parameter as the model names it ("layers.0.mlp.up_proj.weight", "embed_tokens.weight",
// "norm.weight"); the optimizer borrows the tensor and updates it in place.
struct NamedParameter {
  std::string name;
  torch::Tensor tensor;
};

// Every parameter of `model` with its full dotted name, in the module's registration order.
std::vector<NamedParameter> NamedParameters(torch::nn::Module& model);

// A hidden matrix: a 2-D weight inside the network, neither the token embedding
// ("embed_tokens") nor the output head ("lm_head"), which are 2-D but act per token. Muon
// orthogonalizes exactly these (Jordan et al. 2024, "Muon: an optimizer for hidden layers").
bool IsHiddenMatrix(const NamedParameter& parameter);

// The optimizer config.optimizer names, with lr = config.learning_rate, config.weight_decay on
// matrices only, and its optimizer_args (declared, with defaults and their sources, in
// common/optimizer_args.h; the config was validated against them at the edge):
//   "adamw": AdamW (trainer_lib/optim/adamw.h), as torch.optim.AdamW.
//   "adamw8bit": AdamW with 8-bit moments (trainer_lib/optim/adamw8bit.h), as torchao's.
//   "muon":  Muon on the hidden matrices, AdamW (adam_* arguments) on the rest
//            (trainer_lib/optim/muon.h), as torch.optim.Muon.
//   "soap": SOAP (trainer_lib/optim/soap.h), as pytorch-optimizer's SOAP.
//   "soap4bit": SOAP with 4-bit bases and moments (trainer_lib/optim/soap4bit.h).
//   "shampoo": Shampoo grafted to RMSprop's norm (trainer_lib/optim/shampoo.h), as
//            pytorch-optimizer's ScalableShampoo.
// Unknown names fail with InvalidArgument.
absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::TrainConfig& config, const std::vector<NamedParameter>& parameters);
// The same over NamedParameters(model).
absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::TrainConfig& config, torch::nn::Module& model);

// The checkpoint piece "optimizer" of `optimizer`, which it borrows: torch's archive of its
// state (moments, step counts) in optimizer.pt, loaded with tensors on `device`. It loads only
// into an optimizer MakeOptimizer built from the same config over the same model; anything
// else fails with DataLoss rather than a LibTorch exception.
std::unique_ptr<Stateful> OptimizerState(torch::optim::Optimizer& optimizer,
                                         const torch::Device& device);

// Bytes of state `optimizer` (one MakeOptimizer built over float32 parameters) holds once every
// parameter has stepped (moments, momentum buffers, Kronecker factors and their bases or roots,
// quantization codes and scales; not step counters), divided by the number of parameter
// elements; for Shampoo the most it holds, m_graft included (shampoo.h). Each parameter counted
// by common/optimizer_state.h's OptimizerStateBytes with its group's options, the layouts the
// memory plan sums too; known before the first step, when the state is still empty; 0 without
// parameters.
double StateBytesPerParameter(const torch::optim::Optimizer& optimizer);

// Sets the learning rate of every parameter group, whatever the optimizer.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_H_
