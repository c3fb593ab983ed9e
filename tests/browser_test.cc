// The dashboard as a browser shows it: a real coordinator serving web/, a sweep submitted with
// the real CLI (no worker, so its jobs stay pending), and headless Chromium dumping the DOM
// the app built for #/sweeps/<id>.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;

// $ABLATE_CHROMIUM, or Debian's chromium.
std::string ChromiumPath() {
  const char* path = std::getenv("ABLATE_CHROMIUM");
  return path != nullptr && *path != '\0' ? path : "/usr/bin/chromium";
}

constexpr char kTwoJobSweep[] = R"(name: browser-test
description: two seeds of the tiny model, never run
grid:
  seed: [1, 2]
fixed:
  steps: 10
)";

// CI services (GitHub Actions, GitLab, Buildkite, ...) set CI=true.
bool RunningInCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && absl::AsciiStrToLower(ci) == "true";
}

// Every first capture of `pattern` in `text`, in order.
std::vector<std::string> Captures(const std::string& text, const std::regex& pattern) {
  std::vector<std::string> found;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    found.push_back((*it)[1].str());
  }
  return found;
}

// The markup of <table id="jobs">, or "" when the DOM has none.
std::string JobsTable(const std::string& dom) {
  const size_t begin = dom.find(R"(<table id="jobs")");
  const size_t end = dom.find("</table>", begin);
  return begin == std::string::npos || end == std::string::npos
             ? ""
             : dom.substr(begin, end - begin);
}

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The CLI processes the test starts send the user token.
    setenv("ABLATE_TOKEN", test::kUserToken, 1);
    chromium_ = ChromiumPath();
    if (!std::filesystem::exists(chromium_)) {
      // On a developer's machine a missing browser skips; in CI it must not pass unseen.
      if (RunningInCi()) FAIL() << chromium_ << " is not installed, and CI=true";
      GTEST_SKIP() << chromium_ << " is not installed";
    }
    absl::StatusOr<std::string> bin_dir = test::BinDir();
    ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
    bin_dir_ = *bin_dir;
    absl::StatusOr<std::string> dir = test::MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    absl::StatusOr<std::unique_ptr<test::TestCoordinator>> coordinator =
        test::TestCoordinator::Start(bin_dir_, dir_);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  void TearDown() override {
    if (coordinator_ != nullptr) {
      absl::StatusOr<int> code = coordinator_->Stop();
      EXPECT_TRUE(code.ok()) << code.status();
      if (code.ok()) {
        EXPECT_EQ(*code, 0) << "coordinator stderr:\n" << coordinator_->process().Stderr();
      }
      coordinator_.reset();
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Submits the two-job sweep with `ablate submit` and returns its id.
  std::string SubmitTwoJobSweep() {
    const std::string path = absl::StrCat(dir_, "/sweep.yaml");
    std::ofstream(path) << kTwoJobSweep;
    absl::StatusOr<std::unique_ptr<test::Subprocess>> cli = test::Subprocess::Start(
        {absl::StrCat(bin_dir_, "/ablate"), "--coordinator", coordinator_->grpc_address(),
         "submit", path});
    EXPECT_TRUE(cli.ok()) << cli.status();
    if (!cli.ok()) return "";
    absl::StatusOr<int> code = (*cli)->WaitFor(absl::Seconds(30));
    EXPECT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(code.value_or(-1), 0) << (*cli)->Stderr();
    std::smatch match;
    const std::string out = (*cli)->Stdout();
    static const std::regex kSubmitted(R"((?:^|\n)submitted sweep (\S+): 2 jobs)");
    EXPECT_TRUE(std::regex_search(out, match, kSubmitted)) << out;
    return match.size() > 1 ? match[1].str() : "";
  }

  // The DOM headless Chromium builds for `url` after up to 5 s of the page's virtual time.
  // The page gets the viewer token through the address, as a link from `make demo` gives it.
  std::string DumpDom(std::string url) {
    absl::StrAppend(&url, url.find('#') == std::string::npos ? "#" : "&", "token=",
                    test::kViewerToken);
    const std::string profile = absl::StrCat(dir_, "/chromium-profile");
    std::filesystem::create_directories(profile);
    absl::StatusOr<std::unique_ptr<test::Subprocess>> browser = test::Subprocess::Start(
        {chromium_, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", absl::StrCat("--user-data-dir=", profile),
         "--virtual-time-budget=5000", "--dump-dom", url},
        {{"HOME", dir_}});
    EXPECT_TRUE(browser.ok()) << browser.status();
    if (!browser.ok()) return "";
    absl::StatusOr<int> code = (*browser)->WaitFor(absl::Seconds(90));
    EXPECT_TRUE(code.ok()) << code.status() << "\nchromium stderr:\n" << (*browser)->Stderr();
    EXPECT_EQ(code.value_or(-1), 0) << (*browser)->Stderr();
    return (*browser)->Stdout();
  }

  std::string chromium_;
  std::string bin_dir_;
  std::string dir_;
  std::unique_ptr<test::TestCoordinator> coordinator_;
};

TEST_F(BrowserTest, SweepPageShowsItsPendingJobs) {
  const std::string sweep_id = SubmitTwoJobSweep();
  ASSERT_FALSE(sweep_id.empty());

  // ?poll=1: the pending sweep's event stream would stay open, and headless Chromium's virtual
  // clock stands still while a request is open.
  const std::string dom = DumpDom(absl::StrCat("http://127.0.0.1:", coordinator_->http_port(),
                                               "/?poll=1#/sweeps/", sweep_id));

  EXPECT_THAT(dom, HasSubstr(absl::StrCat(R"(<span id="sweep-id">)", sweep_id, "</span>")));
  EXPECT_THAT(dom, HasSubstr(R"(data-source="poll")"));
  const std::string jobs = JobsTable(dom);
  const std::vector<std::string> job_ids =
      Captures(jobs, std::regex(R"re(<tr data-job-id="([^"]+)")re"));
  ASSERT_EQ(job_ids.size(), 2u) << dom;
  for (const std::string& id : job_ids) EXPECT_THAT(id, ::testing::StartsWith(sweep_id));

  const std::vector<std::string> states =
      Captures(jobs, std::regex(R"(<td class="state"[^>]*>(.*?)</td>)"));
  ASSERT_EQ(states.size(), 2u) << dom;
  for (const std::string& cell : states) EXPECT_THAT(cell, HasSubstr(">pending<"));
  // The header counts workers from the API, so the app got past its first refresh.
  EXPECT_THAT(dom, HasSubstr("0 workers connected"));
  EXPECT_THAT(dom, ::testing::ContainsRegex(R"(<span id="connection"[^>]* hidden)"));
}

TEST_F(BrowserTest, SweepPageFollowsTheEventStream) {
  const std::string sweep_id = SubmitTwoJobSweep();
  ASSERT_FALSE(sweep_id.empty());
  // A sweep whose jobs all ended: its stream sends the whole sweep and closes, so the page
  // settles and the browser can dump it.
  absl::StatusOr<std::unique_ptr<test::Subprocess>> cancel = test::Subprocess::Start(
      {absl::StrCat(bin_dir_, "/ablate"), "--coordinator", coordinator_->grpc_address(),
       "cancel", sweep_id});
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  ASSERT_EQ((*cancel)->WaitFor(absl::Seconds(30)).value_or(-1), 0) << (*cancel)->Stderr();

  const std::string dom = DumpDom(
      absl::StrCat("http://127.0.0.1:", coordinator_->http_port(), "/#/sweeps/", sweep_id));

  EXPECT_THAT(dom, HasSubstr(R"(data-source="stream")"));
  const std::vector<std::string> states =
      Captures(JobsTable(dom), std::regex(R"(<td class="state"[^>]*>(.*?)</td>)"));
  ASSERT_EQ(states.size(), 2u) << dom;
  for (const std::string& cell : states) EXPECT_THAT(cell, HasSubstr(">cancelled<"));
  EXPECT_THAT(dom, ::testing::ContainsRegex(R"(<span id="connection"[^>]* hidden)"));
}

TEST_F(BrowserTest, SweepsListLinksToTheSweep) {
  const std::string sweep_id = SubmitTwoJobSweep();
  ASSERT_FALSE(sweep_id.empty());

  const std::string dom =
      DumpDom(absl::StrCat("http://127.0.0.1:", coordinator_->http_port(), "/"));

  EXPECT_THAT(dom, HasSubstr(absl::StrCat(R"(<tr data-sweep-id=")", sweep_id, R"(")")));
  EXPECT_THAT(dom, HasSubstr(absl::StrCat(R"(href="#/sweeps/)", sweep_id, R"(")")));
  EXPECT_THAT(dom, HasSubstr(">0/2<"));
}

}  // namespace
}  // namespace ablate
