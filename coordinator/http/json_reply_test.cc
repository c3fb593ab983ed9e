#include "coordinator/http/json_reply.h"

#include <httplib.h>

#include <cstdint>
#include <limits>

#include "ablate/v1/sweep_service.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ablate::coordinator {
namespace {

// NaN and infinite points are stored as the trainer reported them; the JSON API prints them
// as protobuf's JSON mapping says ("NaN", "Infinity", "-Infinity" as strings), which every
// JSON parser reads, and absurd steps as the decimal strings the mapping gives 64-bit numbers.
TEST(JsonReplyTest, NonFiniteValuesAndHugeStepsAreValidJson) {
  v1::GetJobResponse reply;
  v1::MetricSeries& series = *reply.add_metrics();
  series.set_name("train/loss");
  for (double value :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), 2.5}) {
    series.add_values(value);
    series.add_wall_times(value);
  }
  for (int64_t step : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                       std::numeric_limits<int64_t>::max()}) {
    series.add_steps(step);
  }
  httplib::Response res;
  ReplyJson(reply, res);
  EXPECT_EQ(res.status, 200);
  const nlohmann::json json = nlohmann::json::parse(res.body);  // throws on invalid JSON
  const nlohmann::json& values = json["metrics"][0]["values"];
  EXPECT_EQ(values[0], "NaN");
  EXPECT_EQ(values[1], "Infinity");
  EXPECT_EQ(values[2], "-Infinity");
  EXPECT_EQ(values[3], 2.5);
  EXPECT_EQ(json["metrics"][0]["steps"][3], "9223372036854775807");
}

}  // namespace
}  // namespace ablate::coordinator
