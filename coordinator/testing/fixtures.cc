#include "coordinator/testing/fixtures.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace ablate::coordinator::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ablate-test-XXXXXX").string();
  path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

v1::Sweep MakeSweep(const std::string& id) {
  v1::Sweep sweep;
  sweep.set_id(id);
  sweep.mutable_spec()->set_name(id);
  return sweep;
}

std::vector<v1::JobSpec> MakeJobs(const std::string& sweep_id, int n) {
  std::vector<v1::JobSpec> jobs(n);
  for (int i = 0; i < n; ++i) {
    jobs[i].set_sweep_id(sweep_id);
    jobs[i].set_job_id(absl::StrCat(sweep_id, "-j", i));
    jobs[i].set_index(i);
    jobs[i].mutable_config()->set_steps(100 + i);
  }
  return jobs;
}

v1::SweepSpec TinySweepSpec(const std::string& name, int cells) {
  v1::SweepSpec spec;
  spec.set_name(name);
  v1::Dimension* lr = spec.add_grid();
  lr->set_name("learning_rate");
  for (int i = 1; i <= cells; ++i) lr->add_values(absl::StrFormat("%g", 0.001 * i));
  (*spec.mutable_fixed())["steps"] = "20";
  spec.set_max_attempts(2);
  return spec;
}

v1::SweepSpec SeedSweepSpec(const std::string& name, int cells) {
  v1::SweepSpec spec = TinySweepSpec(name, 1);
  v1::Dimension* seeds = spec.add_grid();
  seeds->set_name("seed");
  for (int i = 0; i < cells; ++i) seeds->add_values(absl::StrFormat("%d", i));
  return spec;
}

v1::MetricPoint Point(const std::string& name, int64_t step, double value) {
  v1::MetricPoint point;
  point.set_name(name);
  point.set_step(step);
  point.set_value(value);
  return point;
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

double ResidentMiB(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    double kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &kib)) return kib / 1024.0;
  }
  return 0;
}

}  // namespace ablate::coordinator::testing
