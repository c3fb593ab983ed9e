#include "coordinator/store/metric_table.h"

#include <memory>

#include "ablate/v1/trainer.pb.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator::internal {
namespace {

using ::testing::ElementsAre;

using ::ablate::coordinator::testing::Point;

class MetricTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = Db::Open(":memory:", true).value();
    ASSERT_TRUE(db_->Exec(MetricTable::kSchemaV1).ok());
    ASSERT_TRUE(db_->Exec(MetricTable::kSchemaV2).ok());
  }
  std::unique_ptr<Db> db_;
};

// Appends `points` as one report.
absl::Status Append(MetricTable& table, int64_t job, uint64_t attempt_id,
                    const std::vector<v1::MetricPoint>& points) {
  v1::MetricBatch batch;
  for (const v1::MetricPoint& point : points) *batch.add_points() = point;
  return table.Append(job, attempt_id, batch);
}

TEST(ThinEvenlyTest, KeepsFirstAndLastEvenlySpaced) {
  EXPECT_THAT(ThinEvenly(3, 10), ElementsAre(0, 1, 2));
  EXPECT_THAT(ThinEvenly(3, 0), ElementsAre(0, 1, 2));
  EXPECT_THAT(ThinEvenly(10, 4), ElementsAre(0, 3, 6, 9));
  EXPECT_THAT(ThinEvenly(10, 1), ElementsAre(9));
  EXPECT_THAT(ThinEvenly(0, 5), ElementsAre());
}

TEST_F(MetricTableTest, SeriesByNameAndStepNewestReportWins) {
  MetricTable table(*db_);
  ASSERT_TRUE(Append(table, 1, 1,
                     {Point("train/loss", 10, 4.0), Point("train/loss", 20, 3.0),
                      Point("eval/loss", 20, 3.3)})
                  .ok());
  // A retry resumed from the checkpoint at step 10 and reports step 20 again.
  ASSERT_TRUE(
      Append(table, 1, 2, {Point("train/loss", 20, 2.9), Point("train/loss", 30, 2.5)}).ok());
  ASSERT_TRUE(Append(table, 2, 3, {Point("train/loss", 10, 9.0)}).ok());  // another job

  std::vector<v1::MetricSeries> all = table.Read(1, {}, 0).value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name(), "eval/loss");
  EXPECT_EQ(all[1].name(), "train/loss");
  EXPECT_THAT(all[1].steps(), ElementsAre(10, 20, 30));
  EXPECT_THAT(all[1].values(), ElementsAre(4.0, 2.9, 2.5));

  std::vector<v1::MetricSeries> one = table.Read(1, {"train/loss", "missing"}, 1).value();
  ASSERT_EQ(one.size(), 1u);
  EXPECT_THAT(one[0].steps(), ElementsAre(30));
}

// Wall times travel beside values: the newest report's with its value, and thinning keeps
// each step's own.
TEST_F(MetricTableTest, WallTimesStayWithTheirValues) {
  auto at = [](v1::MetricPoint point, double wall_time) {
    point.set_wall_time(wall_time);
    return point;
  };
  MetricTable table(*db_);
  ASSERT_TRUE(
      Append(table, 1, 1,
             {at(Point("train/loss", 10, 4.0), 100.5), at(Point("train/loss", 20, 3.0), 200.5),
              at(Point("train/loss", 30, 2.0), 300.5)})
          .ok());
  ASSERT_TRUE(Append(table, 1, 2, {at(Point("train/loss", 20, 2.9), 250.25)}).ok());

  std::vector<v1::MetricSeries> all = table.Read(1, {}, 0).value();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_THAT(all[0].wall_times(), ElementsAre(100.5, 250.25, 300.5));
  std::vector<v1::MetricSeries> thinned = table.Read(1, {"train/loss"}, 2).value();
  ASSERT_EQ(thinned.size(), 1u);
  EXPECT_THAT(thinned[0].steps(), ElementsAre(10, 30));
  EXPECT_THAT(thinned[0].wall_times(), ElementsAre(100.5, 300.5));
}

// A file written before layout v2 keeps its points one per row; they are read beside the
// packed reports appended since, and are older: a step reported again after the upgrade takes
// the new value.
TEST_F(MetricTableTest, PointsOfLayoutV1AreReadBeforeThePackedReports) {
  ASSERT_TRUE(db_->Exec("INSERT INTO metrics (job, attempt_id, name, step, value, wall_time) "
                        "VALUES (1, 1, 'train/loss', 10, 4.0, 1.0), "
                        "(1, 1, 'train/loss', 20, 3.0, 2.0), (2, 9, 'train/loss', 10, 7.0, 1.0)")
                  .ok());
  MetricTable table(*db_);
  ASSERT_TRUE(
      Append(table, 1, 2, {Point("train/loss", 20, 2.9), Point("train/loss", 30, 2.5)}).ok());
  std::vector<v1::MetricSeries> all = table.Read(1, {}, 0).value();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_THAT(all[0].steps(), ElementsAre(10, 20, 30));
  EXPECT_THAT(all[0].values(), ElementsAre(4.0, 2.9, 2.5));
}

// The names of the job's series come with any read, from either layout and whichever series
// are asked: a caller tells a name never logged from one not asked for without a second read.
TEST_F(MetricTableTest, ReadNamesEverySeriesTheJobHas) {
  ASSERT_TRUE(db_->Exec("INSERT INTO metrics (job, attempt_id, name, step, value, wall_time) "
                        "VALUES (1, 1, 'val/acc', 10, 0.5, 1.0), (2, 9, 'other', 10, 7.0, 1.0)")
                  .ok());
  MetricTable table(*db_);
  ASSERT_TRUE(
      Append(table, 1, 2, {Point("train/loss", 20, 2.9), Point("eval/loss", 20, 3.1)}).ok());
  std::vector<std::string> logged = {"left from before"};
  std::vector<v1::MetricSeries> asked =
      table.Read(1, {"train/loss", "missing"}, 0, &logged).value();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].name(), "train/loss");
  EXPECT_THAT(logged, ElementsAre("eval/loss", "train/loss", "val/acc"));
  ASSERT_TRUE(table.Read(1, {}, 1, &logged).ok());
  EXPECT_THAT(logged, ElementsAre("eval/loss", "train/loss", "val/acc"));
  ASSERT_TRUE(table.Read(7, {"train/loss"}, 1, &logged).ok());  // a job with no point
  EXPECT_THAT(logged, ElementsAre());
}

// The encoding is MetricBatch's own: a reader of the column needs nothing but the proto.
TEST(EncodeMetricBatchTest, IsASerializedMetricBatch) {
  std::vector<v1::MetricPoint> points = {Point("train/loss", 3, 2.5),
                                         Point("train/learning_rate", 3, 1e-3)};
  points[1].set_wall_time(1.7e9);
  v1::MetricBatch batch;
  ASSERT_TRUE(batch.ParseFromString(EncodeMetricBatch(points)));
  ASSERT_EQ(batch.points_size(), 2);
  EXPECT_EQ(batch.points(0).SerializeAsString(), points[0].SerializeAsString());
  EXPECT_EQ(batch.points(1).SerializeAsString(), points[1].SerializeAsString());
  EXPECT_TRUE(EncodeMetricBatch({}).empty());
}

// A report that does not decode fails the read, naming the job, rather than being skipped.
TEST_F(MetricTableTest, ACorruptReportIsDataLoss) {
  ASSERT_TRUE(db_->Exec("INSERT INTO metric_reports (job, attempt_id, points) "
                        "VALUES (3, 1, x'0aff')")
                  .ok());
  absl::StatusOr<std::vector<v1::MetricSeries>> read = MetricTable(*db_).Read(3, {}, 0);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(read.status().message()), ::testing::HasSubstr("job 3"));
}

}  // namespace
}  // namespace ablate::coordinator::internal
