#include "worker/gpu_monitor.h"

#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

TEST(GpuMonitorTest, PointsAreNamedByTheJobsGpuAndQuantity) {
  std::vector<v1::MetricPoint> points = GpuMetricPoints(
      {{.utilization_percent = 97, .memory_used_bytes = 5, .temperature_celsius = 61},
       {.utilization_percent = 12, .memory_used_bytes = 7, .temperature_celsius = 40}},
      /*step=*/120, /*wall_time=*/1.5e9);
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0].name(), "gpu/0/utilization_percent");
  EXPECT_EQ(points[0].value(), 97);
  EXPECT_EQ(points[1].name(), "gpu/0/memory_used_bytes");
  EXPECT_EQ(points[1].value(), 5);
  EXPECT_EQ(points[2].name(), "gpu/0/temperature_celsius");
  EXPECT_EQ(points[3].name(), "gpu/1/utilization_percent");
  EXPECT_EQ(points[3].value(), 12);
  EXPECT_EQ(points[5].value(), 40);
  for (const v1::MetricPoint& point : points) {
    EXPECT_EQ(point.step(), 120);
    EXPECT_EQ(point.wall_time(), 1.5e9);
  }
}

// On a machine without an NVIDIA driver NVML is missing, which is no error; with one, the
// first GPU reads sensibly and an index past the last is NotFound.
TEST(GpuMonitorTest, NvmlIsOptionalAndReadsRealDevices) {
  absl::StatusOr<std::unique_ptr<GpuMonitor>> nvml = OpenNvml();
  if (!nvml.ok()) {
    EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound) << nvml.status();
    GTEST_SKIP() << nvml.status();
  }
  absl::StatusOr<GpuSample> first = (*nvml)->Sample(0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(first->memory_total_bytes, 0u);
  EXPECT_LE(first->memory_used_bytes, first->memory_total_bytes);
  EXPECT_LE(first->utilization_percent, 100);
  EXPECT_GT(first->temperature_celsius, 0);
  EXPECT_EQ((*nvml)->Sample(4096).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ablate::worker
