#include "trainer_lib/data/tokenizer.h"

#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

TEST(TokenizerTest, BytesRoundTrip) {
  const std::string text = "seven plus two is nine.\n\xff\x01";
  at::Tensor tokens = EncodeBytes(text);
  EXPECT_EQ(tokens.numel(), static_cast<int64_t>(text.size()));
  EXPECT_EQ(tokens[0].item<int64_t>(), 's');
  EXPECT_EQ(DecodeBytes(tokens), text);
  EXPECT_EQ(DecodeBytes(tokens.to(torch::kInt64)), text);
}

}  // namespace
}  // namespace ablate::train
