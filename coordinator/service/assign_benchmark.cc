// Assignments per second from a real coordinator process to N simulated workers over loopback
// gRPC, and the coordinator's memory with N streams open, beside a minimal gRPC callback
// server measured the same way in the same run (the reference: what gRPC alone costs here).
//
//   build/bin/assign_benchmark [--workers=50,200,500] [--jobs_per_worker=20]
//                              [--points_per_job=0] [--max_report_points=4096]
//
// For each N, a fresh ablate-coordinator (the binary beside this one) gets a sweep of
// N * jobs_per_worker CPU jobs; N workers with one slot each connect (one connection each)
// and end every attempt as soon as it is assigned (AttemptEnded, succeeded), so each
// assignment is a full turn: placement, attempt commit, send, report, end commit. The figure
// is assignments received per second from the moment as many arrived as there are workers
// (all connected, roughly) to the last one. The minimal
// server answers each hello and each AttemptEnded with one prebuilt Assignment, so its figure
// is the ceiling gRPC itself puts on the same exchange. Memory is VmRSS of the server process
// with all N streams still open; CPU is the server's user and system time per assignment
// within the window (on a shared machine the rates are each server's share of it, the CPU
// time is what each needed).
//
// With --points_per_job=P, the same turn ingests metrics: before its AttemptEnded, each worker
// sends what a real worker sends for a trainer that logged P points as events of 4 (the
// trainer's train/* series, one event per logged step) faster than they could be sent: the
// events coalesced by the worker's own ReportBatcher (worker/report_batcher.h, its default
// bound of 4,096 points per report unless --max_report_points says otherwise; 4 sends each
// trainer event as its own report). The coordinator handles a stream's messages in order and
// assigns the next job only once the end is committed, so points/s = assignments/s * P is what
// it ingests end to end, committed; the minimal server reads the reports and drops them.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "ablate/v1/worker.grpc.pb.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/testing/fixtures.h"
#include "grpcpp/grpcpp.h"
#include "worker/report_batcher.h"

namespace ablate::coordinator {
namespace {

// --- The reference: a WorkerService that only answers --------------------------------------

class MinimalStream final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage> {
 public:
  explicit MinimalStream(const v1::CoordinatorMessage& reply) : reply_(reply) { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (in_.has_hello() || in_.has_attempt_ended()) {
      StartWrite(&reply_);  // the client waits for it before it sends again
    } else {
      StartRead(&in_);
    }
  }
  void OnWriteDone(bool ok) override {
    if (ok) {
      StartRead(&in_);
    } else {
      Finish(grpc::Status::CANCELLED);
    }
  }
  void OnDone() override { delete this; }

 private:
  const v1::CoordinatorMessage& reply_;
  v1::WorkerMessage in_;
};

class MinimalService final : public v1::WorkerService::CallbackService {
 public:
  MinimalService() {
    v1::Assignment* assign = reply_.mutable_assign();
    assign->set_attempt_id(1);
    *assign->mutable_job() = v1::JobSpec();
    assign->mutable_job()->set_job_id("minimal-0123456789abcdef");
    assign->mutable_job()->set_sweep_id("minimal");
    assign->add_slot_indices(0);
  }
  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext*) override {
    return new MinimalStream(reply_);
  }

 private:
  v1::CoordinatorMessage reply_;
};

int ServeMinimal(const std::string& ports_file) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  MinimalService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  std::ofstream(ports_file) << "grpc=" << port << "\n";
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  server->Shutdown(std::chrono::system_clock::now());
  return 0;
}

// --- A server process -----------------------------------------------------------------------

struct Child {
  pid_t pid = 0;
  int port = 0;
};

Child Spawn(const std::vector<std::string>& argv, const std::string& ports_file) {
  std::filesystem::remove(ports_file);
  // Built before fork, so that the child only calls async-signal-safe functions.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Child child;
  child.pid = fork();
  if (child.pid == 0) {
    // The server's log would interleave with the table; a server that keeps it still runs.
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) dup2(null_fd, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && child.port == 0) {
    std::ifstream in(ports_file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("grpc=", 0) == 0) (void)absl::SimpleAtoi(line.substr(5), &child.port);
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (child.port == 0) {
    (void)fprintf(stderr, "server %s did not start\n", argv[0].c_str());
    exit(1);
  }
  return child;
}

void Stop(const Child& child) {
  kill(child.pid, SIGTERM);
  waitpid(child.pid, nullptr, 0);
}

// --- The simulated workers ------------------------------------------------------------------

struct Run {
  double assignments_per_s = 0;
  double rss_mib = 0;
  // The server's CPU time (all its threads, user and system) per assignment in the window:
  // steadier than the rate on a shared machine, where the rate is the server's share of it.
  double cpu_ms_per_assignment = 0;
};

// User plus system CPU seconds process `pid` has used (/proc/<pid>/stat, fields 14 and 15).
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command, which is in parentheses and may hold spaces.
  const std::vector<std::string> fields =
      absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ', absl::SkipEmpty());
  double utime = 0;
  double stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return 0;
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// What each simulated worker sends for one assignment before it ends the attempt.
struct Turn {
  int points_per_job = 0;
  size_t max_report_points = worker::ReportBatcherOptions().max_points;
};

// The metric reports a worker sends for a trainer that logged `turn.points_per_job` points,
// 4 per step, as one event per step: the worker's ReportBatcher's output, the attempt's end
// closing the last batch. Job and attempt ids and sequences are filled in per assignment.
std::vector<v1::WorkerMessage> MetricReports(const Turn& turn) {
  static const char* const kNames[] = {"train/loss", "train/learning_rate", "train/grad_norm",
                                       "train/tokens_per_second"};
  worker::ReportBatcher batcher({.max_points = turn.max_report_points});
  const absl::Time now = absl::Now();
  std::vector<v1::WorkerMessage> reports;
  for (int step = 0; step * 4 < turn.points_per_job; ++step) {
    v1::WorkerMessage event;
    v1::MetricBatch* batch = event.mutable_job_event()->mutable_event()->mutable_metrics();
    for (int i = 0; i < 4 && step * 4 + i < turn.points_per_job; ++i) {
      v1::MetricPoint* point = batch->add_points();
      point->set_name(kNames[i]);
      point->set_step(step + 1);
      point->set_value(1.0 / (1 + step + i));
      point->set_wall_time(1.7e9 + 0.01 * step);
    }
    for (v1::WorkerMessage& report : batcher.Add(std::move(event), now)) {
      reports.push_back(std::move(report));
    }
  }
  v1::WorkerMessage ended;
  ended.mutable_attempt_ended();
  for (v1::WorkerMessage& report : batcher.Add(std::move(ended), now)) {
    if (report.has_job_event()) reports.push_back(std::move(report));
  }
  return reports;
}

// The token of simulated worker `i`; -1: the user's.
std::string BenchToken(int i) { return absl::StrCat("assign-benchmark-token-", i, "-0123456789"); }

// N workers with one slot each, each ending every attempt as soon as it is assigned, until
// `total` assignments arrived in all.
Run Drive(const Child& server, int workers, int total, const Turn& turn) {
  std::atomic<int> received{0};
  std::atomic<int> connected{0};
  absl::Mutex mu;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  for (int i = 0; i < workers; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->AddMetadata("authorization", absl::StrCat("Bearer ", BenchToken(i)));
  }
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      std::vector<v1::WorkerMessage> reports = MetricReports(turn);
      // One connection per worker, as real workers have: distinct arguments, distinct channels.
      grpc::ChannelArguments args;
      args.SetInt("ablate.bench.worker", i);
      auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server.port),
                                               grpc::InsecureChannelCredentials(), args);
      auto stub = v1::WorkerService::NewStub(channel);
      auto stream = stub->Connect(contexts[i].get());
      v1::WorkerMessage hello;
      hello.mutable_hello()->set_worker_id(absl::StrCat("bench-", i));
      v1::Slot* slot = hello.mutable_hello()->add_slots();
      slot->set_kind(v1::DEVICE_KIND_CPU);
      slot->set_name("cpu");
      if (!stream->Write(hello)) return;
      connected.fetch_add(1);
      v1::CoordinatorMessage message;
      while (stream->Read(&message)) {
        if (!message.has_assign()) continue;
        received.fetch_add(1);
        bool sent = true;
        uint64_t sequence = 0;
        for (v1::WorkerMessage& report : reports) {
          v1::JobEvent* event = report.mutable_job_event();
          event->set_job_id(message.assign().job().job_id());
          event->set_attempt_id(message.assign().attempt_id());
          event->set_sequence(++sequence);
          sent = sent && stream->Write(report);
        }
        if (!sent) break;
        v1::WorkerMessage ended;
        ended.mutable_attempt_ended()->set_job_id(message.assign().job().job_id());
        ended.mutable_attempt_ended()->set_attempt_id(message.assign().attempt_id());
        ended.mutable_attempt_ended()->set_succeeded(true);
        ended.mutable_attempt_ended()->set_sequence(sequence + 1);
        if (!stream->Write(ended)) break;
      }
      stream->Finish();
    });
  }
  // The window opens once as many assignments arrived as there are workers (connecting N
  // channels is not what is measured) and closes with the last one.
  absl::Time opened = absl::InfinitePast();
  int at_open = 0;
  double cpu_at_open = 0;
  while (received.load() < total) {
    absl::SleepFor(absl::Microseconds(200));
    if (opened == absl::InfinitePast() && received.load() >= workers) {
      opened = absl::Now();
      at_open = received.load();
      cpu_at_open = CpuSeconds(server.pid);
    }
    if (absl::Now() - start > absl::Minutes(5)) break;
  }
  Run run;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - opened);
  run.assignments_per_s = (received.load() - at_open) / seconds;
  run.cpu_ms_per_assignment =
      1e3 * (CpuSeconds(server.pid) - cpu_at_open) / std::max(1, received.load() - at_open);
  run.rss_mib = testing::ResidentMiB(server.pid);
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& t : threads) t.join();
  return run;
}

// The token file the coordinator reads: a user token and one worker token per simulated
// worker (the minimal server ignores them).
void WriteTokens(const std::string& path, int workers) {
  std::ofstream out(path);
  out << "user " << BenchToken(-1) << "\n";
  for (int i = 0; i < workers; ++i) out << "worker " << BenchToken(i) << " bench-" << i << "\n";
}

void Submit(const Child& coordinator, int jobs) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", coordinator.port),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::SweepService::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", BenchToken(-1)));
  v1::SubmitSweepRequest request;
  *request.mutable_spec() = testing::SeedSweepSpec("bench", jobs);
  v1::SubmitSweepResponse response;
  grpc::Status status = stub->SubmitSweep(&context, request, &response);
  if (!status.ok()) {
    (void)fprintf(stderr, "submit failed: %s\n", status.error_message().c_str());
    exit(1);
  }
}

int Main(int argc, char** argv) {
  std::vector<int> fleet = {50, 200, 500};
  int jobs_per_worker = 20;
  Turn turn;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--minimal_server" && i + 1 < argc) return ServeMinimal(argv[i + 1]);
    if (arg.rfind("--workers=", 0) == 0) {
      fleet.clear();
      for (absl::string_view n : absl::StrSplit(arg.substr(10), ',')) {
        int value = 0;
        if (absl::SimpleAtoi(n, &value)) fleet.push_back(value);
      }
    }
    if (arg.rfind("--jobs_per_worker=", 0) == 0) {
      (void)absl::SimpleAtoi(arg.substr(18), &jobs_per_worker);
    }
    if (arg.rfind("--points_per_job=", 0) == 0) {
      (void)absl::SimpleAtoi(arg.substr(17), &turn.points_per_job);
    }
    if (arg.rfind("--max_report_points=", 0) == 0) {
      (void)absl::SimpleAtoi(arg.substr(20), &turn.max_report_points);
    }
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string coordinator_bin =
      (std::filesystem::path(self).parent_path() / "ablate-coordinator").string();
  testing::TempDir dir;
  const int points_per_turn = turn.points_per_job;
  if (points_per_turn > 0) {
    printf("reports per job: %zu metric reports + the attempt's end, %d points in all\n",
           MetricReports(turn).size(), points_per_turn);
  }
  printf("%8s %8s %16s %16s %8s %12s %12s %16s %16s %14s %14s\n", "workers", "jobs",
         "coordinator/s", "minimal/s", "ratio", "coord_MiB", "minimal_MiB", "coord_points/s",
         "minimal_points/s", "coord_cpu_ms", "minimal_cpu_ms");
  for (int workers : fleet) {
    const int jobs = workers * jobs_per_worker;
    const std::string db = dir.File(absl::StrCat("bench-", workers, ".db"));
    WriteTokens(dir.File("tokens"), workers);
    Child coordinator = Spawn(
        {coordinator_bin, "--listen=127.0.0.1:0", "--http=127.0.0.1:0", absl::StrCat("--db=", db),
         "--lease-timeout-s=600", absl::StrCat("--token-file=", dir.File("tokens")),
         absl::StrCat("--ports-file=", dir.File("coordinator.ports"))},
        dir.File("coordinator.ports"));
    Submit(coordinator, jobs);
    Run ours = Drive(coordinator, workers, jobs, turn);
    Stop(coordinator);

    Child minimal =
        Spawn({self, "--minimal_server", dir.File("minimal.ports")}, dir.File("minimal.ports"));
    Run reference = Drive(minimal, workers, jobs, turn);
    Stop(minimal);

    printf("%8d %8d %16.0f %16.0f %8.2f %12.1f %12.1f %16.0f %16.0f %14.2f %14.2f\n", workers, jobs,
           ours.assignments_per_s, reference.assignments_per_s,
           ours.assignments_per_s / reference.assignments_per_s, ours.rss_mib, reference.rss_mib,
           ours.assignments_per_s * points_per_turn, reference.assignments_per_s * points_per_turn,
           ours.cpu_ms_per_assignment, reference.cpu_ms_per_assignment);
    (void)fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace ablate::coordinator

int main(int argc, char** argv) { return ablate::coordinator::Main(argc, argv); }
