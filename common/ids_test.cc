#include "common/ids.h"

#include "ablate/v1/config.pb.h"
#include "gtest/gtest.h"

namespace ablate {
namespace {

TEST(IdsTest, HashIsTheFnv1aReferenceValue) {
  EXPECT_EQ(StableHash64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(StableHash64("a"), 0xaf63dc4c8601ec8cULL);
}

TEST(IdsTest, EqualMessagesHashEquallyWhateverTheMapOrder) {
  v1::TrainConfig a;
  (*a.mutable_optimizer_args())["beta1"] = 0.9;
  (*a.mutable_optimizer_args())["beta2"] = 0.95;
  v1::TrainConfig b;
  (*b.mutable_optimizer_args())["beta2"] = 0.95;
  (*b.mutable_optimizer_args())["beta1"] = 0.9;
  EXPECT_EQ(MessageHash(a), MessageHash(b));
  EXPECT_EQ(MessageHash(a).size(), 16u);
  b.set_seed(2);
  EXPECT_NE(MessageHash(a), MessageHash(b));
}

TEST(IdsTest, SlugKeepsLettersAndDigits) {
  EXPECT_EQ(Slug("Tiny Grid!"), "tiny-grid");
  EXPECT_EQ(Slug("  --Qwen3 0.6B / NSA--  "), "qwen3-0-6b-nsa");
  EXPECT_EQ(Slug("!!!"), "sweep");
  EXPECT_LE(Slug(std::string(100, 'x')).size(), 40u);
}

}  // namespace
}  // namespace ablate
