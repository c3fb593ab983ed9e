#include "common/catalog.h"

#include "gtest/gtest.h"

namespace ablate {
namespace {

TEST(CatalogTest, UnknownModelNamesTheKnownOnes) {
  auto config = ModelByName("qwen3-1b");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("qwen3-0.6b"), std::string::npos);
}

}  // namespace
}  // namespace ablate
