// The mean next-token cross-entropy of a model on a token file: what `ablate-train eval`
// prints, and what transformers' Qwen3ForCausalLM(labels=...) computes on the same windows.
//
// The file is cut into consecutive windows of context + 1 tokens that overlap by one token:
// window i holds tokens [i * context, (i + 1) * context], predicts its last `context` tokens
// from the ones before each, and every token after the first is predicted exactly once.
// Tokens past the last whole window are not used; a file shorter than context + 1 tokens is
// one window of all its tokens. The loss is the mean over all predicted tokens, summed in fp64.
//
// Thread-safety: uses the model passed in; one call at a time per model. This header does not
// include LibTorch, so that ablate-train's main compiles without it.
#ifndef ABLATE_TRAINER_LIB_TOOLS_EVAL_H_
#define ABLATE_TRAINER_LIB_TOOLS_EVAL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ablate::train {

class Qwen3Impl;  // trainer_lib/model/qwen3.h; declared here so this header needs no LibTorch

struct EvalOptions {
  std::string tokens_path;  // little-endian uint16 or uint32 ids, nothing else (nanoGPT's .bin)
  // 2 or 4; 0: the token_bytes of the dataset.json beside the file (a prepared dataset's
  // split), else 2 when the model's vocab_size <= 65536, else 4.
  int token_bytes = 0;
  int64_t context = 1024;   // tokens predicted per window
  int64_t max_windows = 0;  // 0: every whole window of the file
};

struct EvalResult {
  double loss = 0;     // mean cross-entropy in nats per predicted token
  int64_t tokens = 0;  // tokens predicted
};

// Evaluates `model` (in eval mode, without gradients, on its device). Fails as TokenFile's
// Open and Read do (naming the file: missing, a size that is not whole tokens, an id not below
// vocab_size), and with InvalidArgument when the file holds fewer than two tokens.
absl::StatusOr<EvalResult> EvaluateTokenFile(Qwen3Impl& model, const EvalOptions& options);

// The same for the Hugging Face model directory `model_dir` (saved by transformers or by
// `ablate-train export`), loaded on the CPU in float32. Fails also as LoadHfModel does.
absl::StatusOr<EvalResult> EvaluateModelDir(const std::string& model_dir,
                                            const EvalOptions& options);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TOOLS_EVAL_H_
