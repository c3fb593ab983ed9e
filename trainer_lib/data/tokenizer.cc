#include "trainer_lib/data/tokenizer.h"

#include <torch/torch.h>

namespace ablate::train {

at::Tensor EncodeBytes(std::string_view text) {
  at::Tensor tokens = torch::empty({static_cast<int64_t>(text.size())}, torch::kUInt8);
  std::memcpy(tokens.data_ptr<uint8_t>(), text.data(), text.size());
  return tokens;
}

std::string DecodeBytes(const at::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 1, "DecodeBytes expects a 1-D tensor, got ", tokens.sizes());
  at::Tensor bytes = tokens.to(torch::kCPU, torch::kUInt8).contiguous();
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
}

}  // namespace ablate::train
