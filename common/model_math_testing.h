// The model configurations model_math's tests plan for, by catalog name.
#ifndef ABLATE_COMMON_MODEL_MATH_TESTING_H_
#define ABLATE_COMMON_MODEL_MATH_TESTING_H_

#include "absl/strings/string_view.h"
#include "common/catalog.h"
#include "gtest/gtest.h"

namespace ablate {

// The catalog's configuration `name`; a test failure where the catalog has none.
inline v1::ModelConfig Model(absl::string_view name) {
  absl::StatusOr<v1::ModelConfig> config = ModelByName(name);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

}  // namespace ablate

#endif  // ABLATE_COMMON_MODEL_MATH_TESTING_H_
