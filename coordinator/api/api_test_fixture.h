// The GoogleTest fixture SweepApi's tests share: a real SQLite store in a scratch directory
// publishing to a real change feed, the scheduler and telemetry the api needs, and the api
// over them, all on the real clock. Header-only; for tests only.
#ifndef ABLATE_COORDINATOR_API_API_TEST_FIXTURE_H_
#define ABLATE_COORDINATOR_API_API_TEST_FIXTURE_H_

#include <memory>

#include "coordinator/api/sweep_api.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator::testing {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.feed = &feed_;
    absl::StatusOr<std::unique_ptr<Store>> store =
        Store::Open(dir_.File("ablate.db"), RealClock(), options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    scheduler_ = std::make_unique<Scheduler>(*store_, RealClock(), SchedulerOptions{});
    telemetry_ = std::make_unique<Telemetry>(*store_);
    api_ = std::make_unique<SweepApi>(*store_, feed_, *scheduler_, *telemetry_, RealClock());
  }

  // Declared in the order they are built, so they are destroyed users first.
  TempDir dir_;
  ChangeFeed feed_{RealClock()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Telemetry> telemetry_;
  std::unique_ptr<SweepApi> api_;
};

}  // namespace ablate::coordinator::testing

#endif  // ABLATE_COORDINATOR_API_API_TEST_FIXTURE_H_
