// The byte-level tokenizer: a token is one byte of the text, so the vocabulary is the 256 byte
// values, nothing needs downloading and every text round-trips exactly. Pure functions, safe
// from any thread.
#ifndef ABLATE_TRAINER_LIB_DATA_TOKENIZER_H_
#define ABLATE_TRAINER_LIB_DATA_TOKENIZER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include <ATen/core/Tensor.h>

namespace ablate::train {

inline constexpr int64_t kByteVocabSize = 256;

// [N] uint8 token ids, one per byte of `text`.
at::Tensor EncodeBytes(std::string_view text);

// The text of a 1-D tensor of ids below 256, of any integer dtype.
std::string DecodeBytes(const at::Tensor& tokens);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DATA_TOKENIZER_H_
