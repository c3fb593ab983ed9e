// Qwen3's weights in Hugging Face's format: the state-dict adapter between this model's
// parameter names and transformers' Qwen3ForCausalLM names, and whole model directories
// (config.json + safetensors) read into and written from a Qwen3.
//
// Names: every parameter P of Qwen3 is "model.P" in Hugging Face's state dict
// (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, model.norm.weight), except
// lm_head.weight, which keeps its name. With tied embeddings the model has no lm_head; a file's
// lm_head.weight is then ignored, and none is written (transformers ties it on load).
//
// Thread-safety: the functions use the model passed to them; one thread at a time per model.
#ifndef ABLATE_TRAINER_LIB_MODEL_HF_ADAPTER_H_
#define ABLATE_TRAINER_LIB_MODEL_HF_ADAPTER_H_

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "trainer_lib/hf/safetensors.h"
#include "trainer_lib/model/qwen3.h"

namespace ablate::train {

// The Hugging Face name of one of Qwen3's parameters.
std::string HfTensorName(const std::string& parameter_name);

// Copies the weights of the model directory `dir` into `model`, converting dtype and device
// to the model's. FailedPrecondition when `dir` is a file (config.json, say), and naming the
// differing fields when dir's config.json
// describes another shape than model->config(); NotFound or DataLoss (naming the file) when
// config.json or the safetensors are missing or corrupt; FailedPrecondition naming the tensor
// when one is missing or has another shape.
absl::Status LoadHfWeights(const std::filesystem::path& dir, Qwen3Impl& model);

// A Qwen3 built from dir/config.json (named "hf:<dir>", dense attention) holding dir's weights,
// on the CPU in float32. Fails as ReadHfConfig and LoadHfWeights do.
absl::StatusOr<Qwen3> LoadHfModel(const std::filesystem::path& dir);

// Writes `model` to `dir` as transformers' save_pretrained would: config.json and the weights
// in their current dtype, sharded above `shard_bytes`. Internal naming the path on a failed
// write.
absl::Status SaveHfModel(const std::filesystem::path& dir, Qwen3Impl& model,
                         int64_t shard_bytes = kDefaultShardBytes);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_HF_ADAPTER_H_
