// The dashboard's JSON API under a large sweep, against httplib's own floor in the same run:
//   build/bin/http_benchmark [--jobs=10000] [--points=100] [--requests=300] [--watches=50]
//
// 1. Stores a sweep of --jobs running jobs holding --points train/loss points each (10,000 x
//    100 = 1M points by default), then starts a whole coordinator on that database.
// 2. Times --requests GETs of each request the dashboard makes (the sweep, its first page of
//    jobs, one job's curve thinned to 60 points, the workers), one kept-alive connection each,
//    and the same number of GETs of a minimal httplib server answering a fixed body as large as
//    the jobs page: the reference.
// 3. Times requests on one kept-alive connection with and without TCP_NODELAY on the minimal
//    server: the delayed-ACK stall the coordinator avoids.
// 4. Opens --watches WatchSweep streams and measures this process's CPU while jobs change
//    (cancelled one by one, 20 a second for 10 s), against the same changes with no watch.
// Prints one markdown table row per measurement.
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/server.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(int, jobs, 10'000, "jobs in the sweep");
ABSL_FLAG(int, points, 100, "train/loss points per job");
ABSL_FLAG(int, requests, 300, "timed requests per endpoint");
ABSL_FLAG(int, watches, 50, "WatchSweep streams open while jobs change");

namespace ablate::coordinator {
namespace {

[[noreturn]] void Die(const std::string& what) {
  absl::FPrintF(stderr, "http_benchmark: %s\n", what);
  std::exit(1);
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::ToDoubleSeconds(absl::DurationFromTimeval(usage.ru_utime) +
                               absl::DurationFromTimeval(usage.ru_stime));
}

struct Latency {
  double p50_ms = 0;
  double p99_ms = 0;
  size_t bytes = 0;
};

// GETs `path` `n` times on one kept-alive connection, after 10 untimed warm-up requests.
Latency Time(int port, const std::string& path, int n) {
  httplib::Client client("127.0.0.1", port);
  client.set_keep_alive(true);
  client.set_read_timeout(30);
  std::vector<double> ms;
  size_t bytes = 0;
  for (int i = -10; i < n; ++i) {
    const absl::Time start = absl::Now();
    httplib::Result result = client.Get(path);
    const absl::Duration took = absl::Now() - start;
    if (!result || result->status != 200) Die(absl::StrCat("GET ", path, " failed"));
    bytes = result->body.size();
    if (i >= 0) ms.push_back(absl::ToDoubleMilliseconds(took));
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], bytes};
}

// A minimal httplib server answering every GET with `body`; TCP_NODELAY as told.
class FixedServer {
 public:
  FixedServer(std::string body, bool nodelay) : body_(std::move(body)) {
    server_.set_tcp_nodelay(nodelay);
    server_.set_keep_alive_max_count(100'000);
    server_.Get(".*", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) absl::SleepFor(absl::Milliseconds(1));
  }
  ~FixedServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  const std::string body_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

void Row(const std::string& what, const Latency& ours, const Latency& reference) {
  std::printf("| %s | %zu B | p50 %.2f ms, p99 %.2f ms | p50 %.2f ms, p99 %.2f ms | %.1fx |\n",
              what.c_str(), ours.bytes, ours.p50_ms, ours.p99_ms, reference.p50_ms,
              reference.p99_ms, ours.p99_ms / std::max(reference.p99_ms, 1e-3));
}

// Stores the sweep: every job RUNNING on one worker, with its points.
std::vector<std::string> Fill(const std::string& db, int jobs, int points) {
  std::unique_ptr<Store> store = Store::Open(db, RealClock()).value();
  std::vector<v1::JobSpec> specs(jobs);
  std::vector<std::string> ids;
  for (int i = 0; i < jobs; ++i) {
    specs[i].set_job_id(absl::StrFormat("bench-%06d", i));
    specs[i].set_sweep_id("bench");
    specs[i].set_index(static_cast<uint32_t>(i));
    ids.push_back(specs[i].job_id());
  }
  if (!store->CreateSweep(testing::MakeSweep("bench"), specs, 3).ok()) Die("CreateSweep");
  // Reports go in asynchronously, as the worker service sends them, so the store's writer
  // commits many per transaction.
  std::atomic<int> pending{0};
  std::atomic<bool> failed{false};
  for (int i = 0; i < jobs; ++i) {
    absl::StatusOr<v1::Attempt> attempt = store->StartAttempt(ids[i], "bench-worker");
    if (!attempt.ok()) Die(attempt.status().ToString());
    std::vector<v1::MetricPoint> batch;
    batch.reserve(points);
    for (int step = 0; step < points; ++step) {
      batch.push_back(testing::Point("train/loss", step, 10.0 / (step + 1) + i * 1e-6));
    }
    ++pending;
    store->AppendMetricsAsync({ids[i], attempt->id(), 1}, std::move(batch),
                              [&](const absl::Status& s) {
                                if (!s.ok()) failed = true;
                                --pending;
                              });
  }
  while (pending > 0) absl::SleepFor(absl::Milliseconds(10));
  if (failed) Die("AppendMetricsAsync failed");
  return ids;
}

// CPU seconds this process spends while `changes` jobs are cancelled, 20 a second.
double CpuWhileCancelling(int http_port, const std::vector<std::string>& ids, size_t* next,
                          int changes) {
  httplib::Client client("127.0.0.1", http_port);
  const double before = CpuSeconds();
  const absl::Time start = absl::Now();
  for (int i = 0; i < changes; ++i) {
    absl::SleepFor(start + absl::Milliseconds(50) * i - absl::Now());
    const std::string body = absl::StrCat(R"({"id": ")", ids[(*next)++], R"("})");
    if (!client.Post("/api/v1/cancel", body, "application/json")) Die("cancel");
  }
  return CpuSeconds() - before;
}

void Run() {
  const int jobs = absl::GetFlag(FLAGS_jobs);
  const int n = absl::GetFlag(FLAGS_requests);
  testing::TempDir dir;
  const absl::Time fill_start = absl::Now();
  std::vector<std::string> ids = Fill(dir.File("ablate.db"), jobs, absl::GetFlag(FLAGS_points));
  absl::FPrintF(stderr, "filled %d jobs in %s\n", jobs,
                absl::FormatDuration(absl::Now() - fill_start));

  CoordinatorOptions options;
  options.grpc_address = "127.0.0.1:0";
  options.http_address = "127.0.0.1:0";
  options.db_path = dir.File("ablate.db");
  options.lease_timeout = absl::Hours(1);  // the jobs' worker never connects
  CoordinatorServer server(options);
  if (absl::Status s = server.Start(); !s.ok()) Die(s.ToString());
  const int port = server.http_port();

  const Latency page = Time(port, "/api/v1/sweeps/bench/jobs", n);
  FixedServer reference(std::string(page.bytes, 'x'), /*nodelay=*/true);
  const Latency floor = Time(reference.port(), "/", n);
  std::printf(
      "| request | body | coordinator | minimal httplib server, same body size | p99 ratio |\n");
  std::printf("| --- | --- | --- | --- | --- |\n");
  Row("jobs page (default page size)", page, floor);
  Row("the sweep", Time(port, "/api/v1/sweeps/bench", n), floor);
  Row("one job's train/loss, max_points=60",
      Time(port, absl::StrCat("/api/v1/jobs/", ids[jobs / 2], "?metrics=train/loss&max_points=60"),
           n),
      floor);
  Row("workers", Time(port, "/api/v1/workers", n), floor);

  FixedServer nagle("ok", /*nodelay=*/false);
  FixedServer no_nagle("ok", /*nodelay=*/true);
  const Latency with = Time(nagle.port(), "/", 40);
  const Latency without = Time(no_nagle.port(), "/", 40);
  const Latency ours = Time(port, "/healthz", 40);
  std::printf("\n| kept-alive GET | p50 | p99 |\n| --- | --- | --- |\n");
  std::printf("| httplib default (Nagle on) | %.2f ms | %.2f ms |\n", with.p50_ms, with.p99_ms);
  std::printf("| httplib, TCP_NODELAY | %.2f ms | %.2f ms |\n", without.p50_ms, without.p99_ms);
  std::printf("| coordinator /healthz | %.2f ms | %.2f ms |\n", ours.p50_ms, ours.p99_ms);

  const int watches = absl::GetFlag(FLAGS_watches);
  size_t next = 0;
  const double alone = CpuWhileCancelling(port, ids, &next, 200);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::SweepService::NewStub(channel);
  const double rss_before = testing::ResidentMiB(getpid());
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> readers;
  std::atomic<int> started{0};
  std::atomic<long> messages{0};
  for (int i = 0; i < watches; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.emplace_back([&, context = contexts.back().get()] {
      v1::WatchSweepRequest request;
      request.set_sweep_id("bench");
      auto reader = stub->WatchSweep(context, request);
      v1::SweepSnapshot snapshot;
      bool first = true;
      while (reader->Read(&snapshot)) {
        if (first) started++;
        first = false;
        messages++;
      }
      reader->Finish();
    });
  }
  while (started < watches) absl::SleepFor(absl::Milliseconds(10));
  const double rss_watching = testing::ResidentMiB(getpid());
  const long first_messages = messages;
  const double idle_before = CpuSeconds();
  absl::SleepFor(absl::Seconds(5));
  const double idle = CpuSeconds() - idle_before;
  const double watched = CpuWhileCancelling(port, ids, &next, 200);
  std::printf("\n| %d WatchSweep streams | CPU of this process (coordinator and readers) |\n",
              watches);
  std::printf("| --- | --- |\n");
  std::printf("| 200 jobs cancelled over 10 s, no watch | %.2f s (%.2f cores) |\n", alone,
              alone / 10);
  std::printf("| the same with %d watches open | %.2f s (%.2f cores); %ld deltas received |\n",
              watches, watched, watched / 10, messages - first_messages);
  std::printf("| %d watches open, nothing changing, 5 s | %.2f s (%.2f cores) |\n", watches, idle,
              idle / 5);
  std::printf(
      "| resident memory of this process: before the watches, with %d open, after "
      "their deltas | %.0f MiB, %.0f MiB, %.0f MiB |\n",
      watches, rss_before, rss_watching, testing::ResidentMiB(getpid()));
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& reader : readers) reader.join();
  server.Shutdown();
}

}  // namespace
}  // namespace ablate::coordinator

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  ablate::coordinator::Run();
  return 0;
}
