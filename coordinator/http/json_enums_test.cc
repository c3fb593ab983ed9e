#include "coordinator/http/json_enums.h"

#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "coordinator/http/json_reply.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

v1::RetryJobsRequest ParsedRetry(const std::string& body) {
  v1::RetryJobsRequest request;
  const absl::Status parsed = ParseJsonBody(body, request);
  EXPECT_TRUE(parsed.ok()) << parsed;
  return request;
}

// A retry's states as a person writes them, in any case, or in full as protobuf prints them.
TEST(JsonEnumsTest, ShortNamesInAnyCaseAndFullNamesAreRead) {
  const v1::RetryJobsRequest request =
      ParsedRetry(R"({"sweep": "s", "states": ["failed", "Cancelled", "JOB_STATE_FAILED"]})");
  ASSERT_EQ(request.states_size(), 3);
  EXPECT_EQ(request.states(0), v1::JOB_STATE_FAILED);
  EXPECT_EQ(request.states(1), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(request.states(2), v1::JOB_STATE_FAILED);
  EXPECT_EQ(request.sweep(), "s");
}

TEST(JsonEnumsTest, AnUnknownValueIsNamedWithTheShortNames) {
  absl::StatusOr<std::string> expanded = ExpandEnumShortNames(R"({"states": ["failed", "faild"]})",
                                                              *v1::RetryJobsRequest::descriptor());
  ASSERT_FALSE(expanded.ok());
  EXPECT_EQ(expanded.status().message(),
            "states[1]: 'faild' is not a JobState: one of pending, assigned, running, succeeded, "
            "failed, cancelled");
  v1::RetryJobsRequest request;
  EXPECT_EQ(ParseJsonBody(R"({"states": [""]})", request).message(),
            "the request body is not JSON of the message ablate.v1.RetryJobsRequest: states[0]: "
            "'' is not a JobState: one of pending, assigned, running, succeeded, failed, "
            "cancelled");
}

// What is not an enum value by name is left for protobuf's parser: numbers, other fields, and
// a body that is not JSON at all.
TEST(JsonEnumsTest, EverythingElseIsLeftToProtobuf) {
  EXPECT_EQ(ParsedRetry(R"({"states": [4]})").states(0), v1::JOB_STATE_SUCCEEDED);
  v1::RetryJobsRequest request;
  EXPECT_FALSE(ParseJsonBody("{not json", request).ok());
  EXPECT_EQ(*ExpandEnumShortNames("{not json", *v1::RetryJobsRequest::descriptor()), "{not json");
  EXPECT_FALSE(ParseJsonBody(R"({"no_such_field": "failed"})", request).ok());
  // Numbers pass through whole: a 64-bit count past a double's 53 bits keeps its last digit.
  v1::SubmitSweepRequest submit;
  ASSERT_TRUE(
      ParseJsonBody(R"({"spec": {"tokensPerStep": 18446744073709551615, "name": "x"}})", submit)
          .ok());
  EXPECT_EQ(submit.spec().tokens_per_step(), 18446744073709551615u);
}

}  // namespace
}  // namespace ablate::coordinator
