#include "trainer_lib/model/hf_adapter.h"

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/hf_config.h"

namespace ablate::train {
namespace {

constexpr char kHeadName[] = "lm_head.weight";

std::string ShapeText(c10::IntArrayRef shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

}  // namespace

std::string HfTensorName(const std::string& parameter_name) {
  if (parameter_name == kHeadName) return parameter_name;
  return absl::StrCat("model.", parameter_name);
}

absl::Status LoadHfWeights(const std::filesystem::path& dir, Qwen3Impl& model) {
  // The weights lie beside config.json, so a path to that file (which hf:PATH may be) names none.
  if (std::error_code error; std::filesystem::is_regular_file(dir, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir.string(), " is a file; give the model's directory (config.json beside "
                      "model.safetensors, or its shards and model.safetensors.index.json)"));
  }
  absl::StatusOr<v1::ModelConfig> config =
      ReadHfConfig(dir.string(), absl::StrCat(kHfModelPrefix, dir.string()));
  if (!config.ok()) return config.status();
  if (std::string differences = ModelConfigDifferences(*config, model.config());
      !differences.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir.string(), " holds another model than ", model.config().name(), " (",
                     differences, ")"));
  }
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(dir);
  if (!reader.ok()) return reader.status();
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    torch::Tensor& parameter = item.value();
    const std::string hf_name = HfTensorName(item.key());
    if (!(*reader)->Contains(hf_name)) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir.string(), ": the weights hold no ", hf_name));
    }
    absl::StatusOr<torch::Tensor> weight = (*reader)->Read(hf_name);
    if (!weight.ok()) return weight.status();
    if (weight->sizes() != parameter.sizes()) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir.string(), ": ", hf_name, " has shape ", ShapeText(weight->sizes()),
                       ", the model expects ", ShapeText(parameter.sizes())));
    }
    parameter.copy_(*weight);
  }
  return absl::OkStatus();
}

absl::StatusOr<Qwen3> LoadHfModel(const std::filesystem::path& dir) {
  absl::StatusOr<v1::ModelConfig> config = ModelByName(absl::StrCat(kHfModelPrefix, dir.string()));
  if (!config.ok()) return config.status();
  absl::StatusOr<Qwen3> model = BuildQwen3(*config, "dense");
  if (!model.ok()) return model.status();
  if (absl::Status s = LoadHfWeights(dir, **model); !s.ok()) return s;
  return model;
}

absl::Status SaveHfModel(const std::filesystem::path& dir, Qwen3Impl& model,
                         int64_t shard_bytes) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters()) {
    tensors.emplace_back(HfTensorName(item.key()), item.value());
  }
  if (absl::Status s = WriteSafetensors(dir, tensors, shard_bytes); !s.ok()) return s;
  const std::filesystem::path config_path = dir / "config.json";
  std::ofstream out(config_path);
  out << HfConfigJson(model.config());
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("write ", config_path.string(), " failed"));
  return absl::OkStatus();
}

}  // namespace ablate::train
