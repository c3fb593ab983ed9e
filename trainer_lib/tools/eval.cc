#include "trainer_lib/tools/eval.h"

#include <algorithm>
#include <filesystem>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "trainer_lib/data/manifest.h"
#include "trainer_lib/data/token_file.h"
#include "trainer_lib/model/hf_adapter.h"
#include "trainer_lib/model/qwen3.h"

namespace ablate::train {

absl::StatusOr<EvalResult> EvaluateTokenFile(Qwen3Impl& model, const EvalOptions& options) {
  // A prepared dataset's split knows its own width: the manifest beside it says, whatever the
  // model's vocabulary would suggest.
  int token_bytes = options.token_bytes;
  if (token_bytes == 0) {
    const std::filesystem::path dir = std::filesystem::path(options.tokens_path).parent_path();
    if (absl::StatusOr<DatasetManifest> manifest = ReadManifest(dir.empty() ? "." : dir);
        manifest.ok()) {
      token_bytes = manifest->token_bytes;
    }
  }
  absl::StatusOr<TokenFile> file =
      TokenFile::Open(options.tokens_path, token_bytes, model.config().vocab_size());
  if (!file.ok()) return file.status();
  const int64_t n = file->size();
  if (n < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.tokens_path, ": ", n, " tokens; at least 2 are needed"));
  }
  const int64_t context = std::min(options.context, n - 1);
  int64_t windows = (n - 1) / context;
  if (options.max_windows > 0) windows = std::min(windows, options.max_windows);

  const torch::Device device = model.parameters().front().device();
  model.eval();
  torch::NoGradGuard no_grad;
  double total = 0;
  for (int64_t w = 0; w < windows; ++w) {
    absl::StatusOr<torch::Tensor> window = file->Read(w * context, context + 1);
    if (!window.ok()) return window.status();
    const torch::Tensor ids = window->to(device);
    torch::Tensor inputs = ids.narrow(0, 0, context).unsqueeze(0);  // [1, T]
    torch::Tensor targets = ids.narrow(0, 1, context);              // [T]
    torch::Tensor logits = model.forward(inputs).squeeze(0);        // [T, V]
    total += torch::nn::functional::cross_entropy(
                 logits.to(torch::kFloat32), targets,
                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                 .item<double>();
  }
  return EvalResult{total / static_cast<double>(windows * context), windows * context};
}

absl::StatusOr<EvalResult> EvaluateModelDir(const std::string& model_dir,
                                            const EvalOptions& options) {
  absl::StatusOr<Qwen3> model = LoadHfModel(model_dir);
  if (!model.ok()) return model.status();
  return EvaluateTokenFile(**model, options);
}

}  // namespace ablate::train
