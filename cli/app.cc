#include "cli/app.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/export.h"
#include "cli/job_log.h"
#include "cli/slurm.h"
#include "common/auth/client_token.h"
#include "common/auth/tls.h"
#include "common/did_you_mean.h"

namespace ablate::cli {
namespace {

constexpr char kDefaultCoordinator[] = "127.0.0.1:7070";

// HOST:PORT with a port in 1..65535; HOST may be a bracketed IPv6 address.
bool IsHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int port = 0;
  return absl::SimpleAtoi(address.substr(colon + 1), &port) && port > 0 && port < 65536;
}

// The word where `ablate` expected its command, when no command parsed: the first argument that
// is neither an option nor the value of an option of `app`'s own ("ablate --coordinator X
// sumbit" gives "sumbit"); "" when there is none.
std::string CommandWord(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (!absl::StartsWith(arg, "-")) return std::string(arg);
    if (absl::StrContains(arg, '=')) continue;
    const CLI::Option* option = app.get_option_no_throw(std::string(arg));
    if (option != nullptr && option->get_type_size() > 0) ++i;  // its value
  }
  return "";
}

bool StdoutIsInteractive() {
  const char* term = std::getenv("TERM");
  return isatty(STDOUT_FILENO) == 1 && (term == nullptr || absl::string_view(term) != "dumb");
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app("Runs ablation sweeps of LLM training on an Ablate coordinator.", "ablate");
  app.require_subcommand(1);
  app.set_version_flag("--version", ABLATE_VERSION);

  std::string coordinator = kDefaultCoordinator;
  app.add_option("--coordinator", coordinator, "the coordinator's gRPC address, HOST:PORT")
      ->envname("ABLATE_COORDINATOR")
      ->capture_default_str();
  std::string token_file;
  app.add_option("--token-file", token_file,
                 "file whose first line is your bearer token. The token sent is the first set "
                 "of: --token-file, else $ABLATE_TOKEN_FILE, else $ABLATE_TOKEN (a token file "
                 "given either way wins over $ABLATE_TOKEN)")
      ->envname("ABLATE_TOKEN_FILE");
  std::string tls_ca;
  app.add_option("--tls-ca", tls_ca,
                 "PEM file of the CA that signed the coordinator's certificate: speak TLS "
                 "(for mutual TLS, $ABLATE_TLS_CERT and $ABLATE_TLS_KEY name yours)")
      ->envname(auth::kTlsCaEnv);

  std::string file;
  SubmitChoice submit_choice;
  CLI::App* submit = app.add_subcommand("submit", "validate a sweep file and submit it");
  submit->footer(
      "It validates the file first (`ablate validate --help` says what a sweep file holds) and "
      "prints the plan (see `ablate plan --help`). With tuning, the coordinator queues "
      "only the first rung's trials at once; each later rung, and each cell's final jobs, "
      "follow as rungs end, so the job count printed is an upper bound.");
  submit->add_option("FILE", file, "the sweep file (YAML)")->required();
  submit->add_flag("--watch", submit_choice.watch, "follow the sweep until every job ended");
  CLI::Option* update =
      submit->add_flag("--update", submit_choice.update,
                       "update the sweep of the file's name: keep its cells whose config is "
                       "unchanged, run only new or changed ones");
  submit
      ->add_option("--sweep", submit_choice.update_sweep,
                   "with --update, where several sweeps have the file's name: the id of the one "
                   "to update")
      ->needs(update);
  submit
      ->add_flag("--new", submit_choice.new_sweep,
                 "add a sweep beside those of the file's name: without it (or --update), a file "
                 "whose name another sweep has is refused, since most often it is that sweep's "
                 "file edited")
      ->excludes(update);

  CLI::App* validate = app.add_subcommand(
      "validate", "check a sweep file and every cell of its grid, without a coordinator");
  validate->footer(
      "A sweep file has a `name:`, a `grid:` of dimensions, each a list of values (model: "
      "[qwen3-0.6b, qwen3-4b], attention: [dense, nsa], optimizer: [adamw, muon, soap], "
      "context_length: [32K, 128K, 1M]), and the settings every cell shares under `fixed:`; "
      "optional are `description:`, `constraints:`, `derived:`, `overrides:`, `cells:` (named "
      "cells instead of the cross product), `baseline:`, `sample:` (a random subset), "
      "`repeats:` (seeds per cell), `priority:`, `max_attempts:`, `checkpoint_root:`, "
      "`throughput:` and `tuning:` (per-cell search by successive halving: `parameters:`, "
      "`min_steps:`, `reduction_factor:`, `metric:`, `method: successive_halving`). "
      "Settings are TrainConfig's fields (proto/ablate/v1/config.proto). `attention: nsa` is "
      "Native Sparse Attention, set by `attention_args:` (block_size 64, selected_blocks 16, "
      "window 512, learned_compression, compression_kernel 32, compression_stride 16, "
      "paper_selection); dense attention takes contexts up to 128K, NSA up to 1M. The README's "
      "\"Sweep files\" and examples/ (tiny-grid.yaml, nsa-vs-dense.yaml, research-nsa.yaml) "
      "show whole files; an error names the file, line, column and setting.");
  validate->add_option("FILE", file, "the sweep file (YAML)")->required();

  bool plan_json = false;
  CLI::App* plan = app.add_subcommand(
      "plan", "expand a sweep file and show each job's size and cost, without submitting");
  plan->footer(
      "PARAMS, FLOPS (forward and backward, all steps) and MEMORY (one GPU's peak) follow each "
      "cell's model, context and attention_args. "
      "With a `tuning:` section it shows the search each cell runs, each cell's rungs (trials x "
      "steps) and their cost, and the final jobs, whose LR reads \"tuned\" (in --json: "
      "learningRate 0 and tunedParameters, the search space). The search's points: without "
      "`samples`, every combination of the parameters' values (a list's, or a log_grid's "
      "`points` values spaced evenly in log, both ends included); with `samples: N`, N points "
      "drawn at random, seeded by `seed`, log-uniform within a log_uniform range or uniformly "
      "from a list. The job count is an upper bound: a rung promotes only trials that "
      "succeeded, and a cell whose every point failed has no final jobs.");
  plan->add_option("FILE", file, "the sweep file (YAML)")->required();
  plan->add_flag("--json", plan_json, "print the plan as one line of JSON");

  CLI::App* ls = app.add_subcommand("ls", "list sweeps, newest first");
  ls->footer(
      "DONE counts the jobs that ended, however they ended (succeeded, failed or cancelled, "
      "jobs an update dropped included), of all the sweep's jobs; STATE says how the sweep "
      "ended, and `ablate status SWEEP` counts its jobs by state.");

  bool workers_json = false;
  CLI::App* workers = app.add_subcommand("workers", "list the workers, their slots and jobs");
  workers->add_flag("--json", workers_json, "print the workers as one line of JSON");
  workers->footer(
      "STATE is connected, backing off (trainers failed to start there: a line below the "
      "table says why and when it is tried again), or gone with when the worker was last "
      "seen; SLOTS groups alike slots (GPU model or CPU, and the memory a job placed on one "
      "may use); FREE counts the slots a new job could take; JOBS, how many jobs it runs.");

  std::string sweep_id;
  bool json = false;
  bool all = false;
  CLI::App* status =
      app.add_subcommand("status", "show a sweep's jobs, or a summary of a sweep of more than 50");
  status->add_option("SWEEP", sweep_id, "the sweep's id or unique name")->required();
  status->add_flag("--all", all, "one row per job, however many");
  status->add_flag("--json", json, "print {\"sweep\": ..., \"jobs\": [...]} as JSON");
  status->footer(
      "Columns: a grid dimension each; STATE (\"*\": a result of other code than the newest "
      "result's; \"(dropped)\": an update left its cell out of the file, and it does not run); "
      "ATTEMPTS, the attempts counted against the job's max_attempts, then \"(+K not "
      "counted)\" for the job's other attempts: those its worker interrupted (a shutdown or "
      "drain, or a refusal to start that another worker may not meet), which are given back, "
      "and those before an `ablate retry`, which grants max_attempts afresh; STEP, the last "
      "the trainer reported; LOSS, the training loss last logged (every log_every steps, so "
      "maybe of a step before STEP); EVAL LOSS, the final evaluation's, else the last one so "
      "far; OPT B/PARAM, the optimizer's state in bytes per parameter, once reported; MESSAGE, "
      "why a job failed, waits or was retried. MESSAGE's \"attempt N of M\" counts as ATTEMPTS "
      "does: the Nth counted attempt of the job's max_attempts M (--json gives maxAttempts, "
      "attempts, every one, and K as uncountedAttempts; its keys are proto3 JSON's "
      "lowerCamelCase, as the HTTP API's). A worker keeps an attempt's files in "
      "<its "
      "--work-dir>/JOB/attempt-ID/, ID being the attempt's id, unique across the coordinator, "
      "not its number among the job's attempts (`ablate log JOB` names it).");

  CLI::App* watch = app.add_subcommand("watch", "follow a sweep live until every job ended");
  watch->add_option("SWEEP", sweep_id, "the sweep's id or unique name")->required();
  watch->footer(
      "Exits 0 when the sweep ended COMPLETED, 1 otherwise. A tuned sweep completes when each "
      "cell's final jobs succeeded: trials that failed or diverged only rank last.");

  std::string log_job;
  LogChoice log_choice;
  CLI::App* log = app.add_subcommand("log", "print the end of a job's log (rank 0's trainer.log)");
  log->add_option(
         "JOB", log_job,
         "a job's id (whole, or the short id after the sweep's id, as `ablate plan` prints it)")
      ->required();
  log->add_flag("--follow,-f", log_choice.follow,
                "keep printing new lines, a retry's included, until the job ended; exit 0 if it "
                "succeeded, 1 if not");
  log->add_option("--attempt", log_choice.attempt,
                  "print the last lines of the job's Nth attempt instead of its newest's (1 its "
                  "first, as the notes number them)")
      ->check(CLI::Validator(
          [](const std::string& value) -> std::string {
            uint32_t n = 0;
            if (absl::SimpleAtoi(value, &n) && n >= 1) return "";
            return "takes an attempt's number, 1 or more (1: the job's first attempt), not '" +
                   value + "'";
          },
          "N"))
      ->excludes("--follow");
  log->footer(
      "The log's lines go to stdout; notes (where the whole log is, an attempt starting) to "
      "stderr. The coordinator keeps the last 200 lines of each job's newest attempt in memory "
      "while the attempt runs, and of each of its 8 newest ended attempts in its database, so "
      "a failed attempt's lines are still shown (--attempt) after a retry replaced it or the "
      "coordinator restarted. The whole log stays on "
      "the worker, in <its --work-dir>/JOB/attempt-ID/trainer.log, ID being the attempt's id, "
      "unique across the coordinator, not its number among the job's attempts (the notes say "
      "\"attempt 2 (id 9)\" for the one in attempt-9/). An attempt the worker refused before "
      "starting a trainer (\"not started: ...\", such as a checkpoint_dir outside its "
      "--checkpoint-root) has no log, and the notes say why.");

  std::string metric = "eval/loss";
  bool csv = false;
  bool results_json = false;
  CLI::App* results = app.add_subcommand(
      "results", "a sweep's metric per cell: mean, 95% interval over seeds, vs the baseline");
  results->footer(
      "With tuning, each cell also shows its trials (\"(N failed)\" when some failed; trials "
      "are left out of the runs and the metric) and the learning rate and weight decay its "
      "tuning chose: \"tuning\" until it has, \"failed: N of M trials\" when every point of "
      "its search failed (the cell then has no final jobs and no result, and counts as failed), "
      "\"cancelled: retry --cancelled\" when a cancelled trial holds its tuning back. "
      "Jobs an update of the sweep dropped (`ablate status` marks them \"(dropped)\") are "
      "left out: their runs are of cells its file no longer has. "
      "When no job has the metric, a note says so on stderr, with the series the succeeded "
      "jobs did log and the nearest name among them; the exit status is 1 once no job is left "
      "to run, since no value will come.");
  results->add_option("SWEEP", sweep_id, "the sweep's id or unique name")->required();
  results
      ->add_option(
          "--metric", metric,
          "eval/loss, train/loss, or another series the jobs report (train/tokens_per_sec, "
          "eval/perplexity, ...: its last point, read job by job)")
      ->capture_default_str();
  results->add_flag("--csv", csv, "print CSV");
  results->add_flag("--json", results_json, "print the results as one line of JSON");
  results->get_option("--csv")->excludes(results->get_option("--json"));

  std::string rows;
  std::string cols;
  CLI::App* compare = app.add_subcommand(
      "compare", "a sweep's metric as a heatmap of two dimensions, a panel per other value");
  compare->add_option("SWEEP", sweep_id, "the sweep's id or unique name")->required();
  compare->add_option("--rows", rows, "the grid dimension down the side (left out: the first)");
  compare->add_option("--cols", cols,
                      "the grid dimension across the top (left out: the next one, or on a grid "
                      "of one dimension the metric as the one column)");
  compare
      ->add_option(
          "--metric", metric,
          "eval/loss, train/loss, or another series the jobs report (train/tokens_per_sec, "
          "eval/perplexity, ...: its last point, read job by job)")
      ->capture_default_str();
  compare->footer(
      "When no job has the metric, a note says so on stderr; the exit status is 1 once no job "
      "is left to run, as for results.");

  std::string cancel_id;
  CLI::App* cancel = app.add_subcommand("cancel", "cancel a sweep's unfinished jobs, or one job");
  cancel
      ->add_option("ID", cancel_id,
                   "a sweep's id or unique name, or a job's id (whole, or the short id "
                   "after the sweep's id)")
      ->required();

  RetryChoice retry_choice;
  CLI::App* retry = app.add_subcommand(
      "retry", "run a sweep's failed or cancelled jobs again, each as a new attempt");
  retry->add_option("SWEEP", sweep_id, "the sweep's id or unique name")->required();
  retry->add_option("JOB", retry_choice.job_ids,
                    "jobs of the sweep to run again: whole ids, or their part after the "
                    "sweep's id (as plan prints them)");
  retry->add_flag("--failed", retry_choice.failed, "every failed job of the sweep");
  retry->add_flag("--cancelled", retry_choice.cancelled, "every cancelled job of the sweep");

  ExportChoice export_choice;
  CLI::App* export_command = app.add_subcommand(
      "export", "write a sweep's results as csv, parquet, tensorboard or wandb (offline) files");
  export_command->add_option("SWEEP", sweep_id, "the sweep's id or unique name")->required();
  export_command
      ->add_option("--format", export_choice.format, "csv | parquet | tensorboard | wandb")
      ->required()
      ->check(CLI::IsMember(kExportFormats));
  export_command->add_option("--out", export_choice.out, "the folder to write")->required();
  export_command->add_flag("--include-dropped", export_choice.include_dropped,
                           "also the jobs an update of the sweep dropped, marked: true in the "
                           "results' `dropped` column (csv, parquet), a `dropped` HParam "
                           "(tensorboard), config value and tag (wandb)");
  export_command->footer(
      "One row (or run) per job, with its grid values, state, final metrics and provenance, "
      "and every metric point. Jobs an update of the sweep dropped (`ablate submit --update` "
      "of a file without their cells; `ablate status` marks them \"(dropped)\") are left "
      "out, as `ablate results` leaves them out; --include-dropped writes them too.");

  SlurmUpOptions slurm_up;
  CLI::App* slurm_up_command = AddSlurmCommands(app, slurm_up);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version requests are "errors" that exit 0 and print to stdout.
    if (e.get_exit_code() == 0) return app.exit(e);
    if (app.get_subcommands().empty()) {
      // No command parsed: a misspelt one reads better named, with the nearest known one.
      if (const std::string word = CommandWord(app, argc, argv); !word.empty()) {
        std::vector<std::string> known;
        for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
          known.push_back(command->get_name());
        }
        std::cerr << "ablate: unknown command '" << word << "'" << DidYouMean(word, known)
                  << " (see ablate --help)\n";
        return kExitUsage;
      }
    }
    std::string message = absl::StrReplaceAll(e.what(), {{"\n", " "}});
    absl::StripTrailingAsciiWhitespace(&message);
    // The help of the command the error is in: that of its deepest subcommand parsed.
    std::string command = "ablate";
    for (CLI::App* at = &app; !at->get_subcommands().empty();) {
      at = at->get_subcommands().front();
      command += " " + at->get_name();
    }
    std::cerr << "ablate: " << message << " (see " << command << " --help)\n";
    return kExitUsage;
  }
  // NO_COLOR (no-color.org): present and not empty turns colors off.
  const char* no_color = std::getenv("NO_COLOR");
  const bool interactive = StdoutIsInteractive();
  const Io io{std::cout, std::cerr, interactive, absl::LocalTimeZone(),
              interactive && (no_color == nullptr || *no_color == '\0')};
  if (*validate) return ValidateCommand(file, io);
  if (*plan) return PlanCommand(file, plan_json, io);
  if (absl::StrContains(coordinator, "://")) {
    std::cerr << "ablate: --coordinator: expected HOST:PORT without a scheme (the address of "
                 "the coordinator's gRPC --listen), got '"
              << coordinator << "'\n";
    return kExitUsage;
  }
  if (!IsHostPort(coordinator)) {
    std::cerr << "ablate: --coordinator: expected HOST:PORT, got '" << coordinator << "'\n";
    return kExitUsage;
  }
  if (*slurm_up_command) return SlurmUpCommand(slurm_up, coordinator, io);

  absl::StatusOr<std::string> token = auth::ClientToken(token_file);
  if (!token.ok()) {
    std::cerr << "ablate: --token-file: " << token.status().message() << "\n";
    return kExitUsage;
  }
  if (*export_command) {
    return ExportCommand(coordinator, *token, sweep_id, export_choice, io);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      auth::GrpcChannelCredentials(tls_ca);
  if (!credentials.ok()) {
    std::cerr << "ablate: " << credentials.status().message() << "\n";
    return kExitUsage;
  }
  Client client(coordinator, *token, *credentials, /*tls=*/!tls_ca.empty());
  if (*submit) return SubmitCommand(client, file, submit_choice, io);
  if (*ls) return ListCommand(client, io);
  if (*workers) return WorkersCommand(client, workers_json, io);
  if (*status) {
    const StatusForm form =
        json ? StatusForm::kJson : (all ? StatusForm::kAll : StatusForm::kDefault);
    return StatusCommand(client, sweep_id, form, io);
  }
  if (*watch) return WatchCommand(client, sweep_id, io);
  if (*log) return LogCommand(client, log_job, log_choice, io);
  if (*results) {
    const ResultsForm form =
        csv ? ResultsForm::kCsv : (results_json ? ResultsForm::kJson : ResultsForm::kTable);
    return ResultsCommand(client, sweep_id, metric, form, io);
  }
  if (*compare) return CompareCommand(client, sweep_id, rows, cols, metric, io);
  if (*retry) return RetryCommand(client, sweep_id, retry_choice, io);
  return CancelCommand(client, cancel_id, io);
}

}  // namespace ablate::cli
