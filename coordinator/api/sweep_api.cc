#include "coordinator/api/sweep_api.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/attention_args.h"
#include "common/catalog.h"
#include "common/job_state.h"
#include "common/log.h"
#include "common/model_math.h"
#include "coordinator/api/root_check.h"
#include "coordinator/scheduler/pending_queue.h"
#include "google/protobuf/util/message_differencer.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"
#include "sweep/tuning.h"

namespace ablate::coordinator {
namespace {

// SweepSpec.max_attempts of 0 means this many.
constexpr uint32_t kDefaultMaxAttempts = 3;
constexpr char kCancelledByUser[] = "cancelled by user";

bool HasEnded(const v1::Sweep& sweep) {
  return sweep.state() == v1::SWEEP_STATE_COMPLETED || sweep.state() == v1::SWEEP_STATE_FAILED ||
         sweep.state() == v1::SWEEP_STATE_CANCELLED;
}

}  // namespace

absl::Status SweepApi::Require(const std::string& value, const char* field) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  return absl::OkStatus();
}

SweepApi::SweepApi(Store& store, ChangeFeed& feed, Scheduler& scheduler, Telemetry& telemetry,
                   Clock& clock, const LogTails* log_tails)
    : store_(store),
      feed_(feed),
      scheduler_(scheduler),
      telemetry_(telemetry),
      clock_(clock),
      log_tails_(log_tails) {}

// Sets each job's train_flops_per_token, computed once per model and attention shape: a sweep
// of 100,000 cells has a handful, and an hf: model is a file read per lookup. 0 for a model
// whose config cannot be read (validation accepted its name; its trainer says what is wrong).
void SweepApi::SetTrainFlops(std::vector<v1::JobSpec>& jobs) {
  absl::flat_hash_map<std::string, double> flops;
  for (v1::JobSpec& job : jobs) {
    const v1::TrainConfig& config = job.config();
    const NsaShape nsa = NsaShapeOf(config);
    const std::string key =
        absl::StrCat(config.model(), "|", config.context_length(), "|", config.attention(), "|",
                     nsa.block_size, "|", nsa.selected_blocks, "|", nsa.window, "|",
                     nsa.learned_compression, "|", nsa.kernel(), "|", nsa.stride());
    auto [it, inserted] = flops.try_emplace(key, 0.0);
    if (inserted) {
      if (absl::StatusOr<v1::ModelConfig> model = ModelByName(config.model()); model.ok()) {
        it->second =
            TrainingFlopsPerToken(*model, config.context_length(), config.attention(), nsa);
      }
    }
    job.set_train_flops_per_token(it->second);
  }
}

absl::StatusOr<v1::SubmitSweepResponse> SweepApi::SubmitSweep(
    const v1::SubmitSweepRequest& request) {
  if (!request.sweep_file().empty()) {
    if (request.has_spec()) {
      return absl::InvalidArgumentError("give a spec or a sweep_file, not both");
    }
    absl::StatusOr<v1::SweepSpec> spec = sweep::ParseSweepYaml(
        request.sweep_file(),
        request.sweep_file_name().empty() ? "sweep_file" : request.sweep_file_name());
    if (!spec.ok()) return spec.status();
    v1::SubmitSweepRequest parsed;
    *parsed.mutable_spec() = *std::move(spec);
    parsed.set_update(request.update());
    parsed.set_update_sweep(request.update_sweep());
    parsed.set_new_sweep(request.new_sweep());
    return SubmitSweep(parsed);
  }
  telemetry_.CountRpc("SubmitSweep");
  if (request.update() && request.new_sweep()) {
    return absl::InvalidArgumentError(
        "update and new_sweep: an update changes a sweep of the name, new_sweep adds one beside "
        "it; give one of them");
  }
  if (request.update()) {
    if (absl::Status valid = sweep::ValidateSweepSpec(request.spec()); !valid.ok()) return valid;
    absl::StatusOr<std::vector<std::string>> named = store_.SweepIdsNamed(request.spec().name());
    if (!named.ok()) return named.status();
    const std::string& chosen = request.update_sweep();
    if (!chosen.empty()) {
      if (std::find(named->begin(), named->end(), chosen) == named->end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "update_sweep: ", chosen, " is not a sweep named '", request.spec().name(), "'",
            named->empty() ? "" : absl::StrCat(" (those are: ", absl::StrJoin(*named, ", "), ")")));
      }
      return UpdateSweep(request.spec(), chosen);
    }
    if (named->size() > 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          named->size(), " sweeps are named '", request.spec().name(),
          "'; an update needs one: give its id as update_sweep (`ablate submit --update --sweep "
          "ID`): ",
          absl::StrJoin(*named, ", ")));
    }
    if (!named->empty()) return UpdateSweep(request.spec(), named->front());
  }
  // A resubmission is recognised by the spec's id alone, before expanding a grid of perhaps
  // 100,000 cells: a stored sweep's spec was valid when it was stored.
  v1::SubmitSweepResponse response;
  absl::StatusOr<v1::Sweep> stored = store_.GetSweep(sweep::SweepId(request.spec()));
  if (stored.ok()) {
    response.set_already_existed(true);
    if (!google::protobuf::util::MessageDifferencer::Equals(stored->spec(), request.spec())) {
      response.add_warnings(absl::StrCat(
          "an update has changed sweep ", stored->id(),
          " since this spec was submitted: it runs the updated spec's cells, not these; an "
          "update with update_sweep ",
          stored->id(), " (`ablate submit --update --sweep ", stored->id(),
          "`) makes it this spec's again"));
    }
    *response.mutable_sweep() = *std::move(stored);
    return response;
  }
  if (stored.status().code() != absl::StatusCode::kNotFound) return stored.status();
  if (!request.update() && !request.new_sweep()) {
    if (absl::Status unique = RefuseTwinName(request.spec().name()); !unique.ok()) return unique;
  }

  absl::StatusOr<sweep::Expansion> expansion = sweep::ExpandSweep(request.spec());
  if (!expansion.ok()) return expansion.status();
  SetTrainFlops(expansion->jobs);
  for (const v1::ExcludedCell& dropped : expansion->dropped) {
    response.add_dropped_cells(sweep::ExcludedLine(dropped));
  }
  WarnOfRoots(expansion->jobs, &response);

  v1::Sweep sweep;
  sweep.set_id(expansion->sweep_id);
  *sweep.mutable_spec() = request.spec();
  *sweep.mutable_created_at() = ToProto(clock_.Now());
  // The jobs' places in the pending queue are built while the store inserts them; they join
  // it only once stored, so none can be placed before its row exists.
  std::optional<PendingQueue::Staged> staged;
  absl::Status created = store_.CreateSweep(sweep, expansion->jobs, MaxAttemptsOf(request.spec()),
                                            [&] { staged.emplace(expansion->jobs); });
  if (created.code() == absl::StatusCode::kAlreadyExists) {
    // A concurrent submission of the same spec stored it first.
    response.set_already_existed(true);
  } else if (!created.ok()) {
    return created;
  } else if (!staged.has_value()) {
    // The jobs are stored but could not join the pending queue; a coordinator restart queues
    // them from the store.
    return absl::InternalError(absl::StrCat(
        "sweep ", sweep.id(),
        " was stored, but the store's CreateSweep succeeded without running "
        "its `meanwhile` hook (its contract in coordinator/store/store.h), so its jobs are not "
        "queued until the coordinator restarts"));
  } else {
    telemetry_.CountSweepSubmitted();
    WatchTuning(sweep.id(), sweep.spec());
    ABLATE_LOG(INFO) << "sweep submitted sweep_id=" << sweep.id()
                     << " jobs=" << expansion->jobs.size()
                     << " dropped=" << expansion->dropped.size();
    staged->Take(std::move(expansion->jobs));
    scheduler_.JobsQueued(*std::move(staged));
  }
  stored = store_.GetSweep(expansion->sweep_id);
  if (!stored.ok()) return stored.status();
  *response.mutable_sweep() = *std::move(stored);
  return response;
}

absl::Status SweepApi::RefuseTwinName(const std::string& name) {
  absl::StatusOr<std::vector<std::string>> named = store_.SweepIdsNamed(name);
  if (!named.ok()) return named.status();
  if (named->empty()) return absl::OkStatus();
  const bool one = named->size() == 1;
  return absl::AlreadyExistsError(absl::StrCat(
      one ? "sweep " : "sweeps ", absl::StrJoin(*named, ", "), one ? " is" : " are", " named '",
      name, "' too, with other cells or settings than this spec's: an update (update",
      one ? "" : " with update_sweep", "; `ablate submit --update", one ? "" : " --sweep ID",
      "`) changes ", one ? "it" : "one of them",
      " (only new or changed cells run); new_sweep (`ablate submit --new`) adds a sweep beside ",
      one ? "it" : "them", " (every cell runs again)"));
}

bool SweepApi::Ended(const v1::Sweep& sweep) {
  if (!HasEnded(sweep)) return false;
  // A delta's sweep has no spec; the spec never changes but by an update, read here.
  absl::StatusOr<v1::Sweep> stored = sweep;
  if (!sweep.has_spec()) stored = store_.GetSweep(sweep.id());
  if (!stored.ok() || !stored->spec().has_tuning()) return true;
  absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(sweep.id());
  if (!jobs.ok()) return true;
  const sweep::TuningStep step = sweep::NextTuningJobs(stored->spec(), *jobs);
  return step.done && step.add.empty() && step.revive.empty();
}

void SweepApi::WarnOfRoots(const std::vector<v1::JobSpec>& jobs,
                           v1::SubmitSweepResponse* response) {
  absl::StatusOr<std::vector<v1::Worker>> workers = store_.ListWorkers();
  if (!workers.ok()) {
    ABLATE_LOG(WARNING) << "workers unread, submission not checked against their roots error=\""
                        << workers.status().message() << "\"";
    return;
  }
  for (std::string& warning : RootWarnings(*workers, jobs)) {
    response->add_warnings(std::move(warning));
  }
}

void SweepApi::WatchTuning(const std::string& sweep_id, const v1::SweepSpec& spec) {
  if (tuning_ != nullptr && spec.has_tuning()) tuning_->Watch(sweep_id);
}

uint32_t SweepApi::MaxAttemptsOf(const v1::SweepSpec& spec) {
  return spec.max_attempts() == 0 ? kDefaultMaxAttempts : spec.max_attempts();
}

absl::StatusOr<std::string> SweepApi::SweepIdNamed(const std::string& name,
                                                   absl::Status not_found) {
  absl::StatusOr<std::vector<std::string>> ids = store_.SweepIdsNamed(name);
  if (!ids.ok()) return ids.status();
  if (ids->empty()) return not_found;
  if (ids->size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(ids->size(), " sweeps are named '", name,
                     "'; give one of their ids: ", absl::StrJoin(*ids, ", ")));
  }
  return ids->front();
}

absl::StatusOr<v1::Sweep> SweepApi::FindSweep(const std::string& name_or_id) {
  absl::StatusOr<v1::Sweep> sweep = store_.GetSweep(name_or_id);
  if (sweep.status().code() != absl::StatusCode::kNotFound) return sweep;
  absl::StatusOr<std::string> id = SweepIdNamed(name_or_id, sweep.status());
  if (!id.ok()) return id.status();
  return store_.GetSweep(*id);
}

absl::StatusOr<v1::Sweep> SweepApi::GetSweep(const v1::GetSweepRequest& request) {
  telemetry_.CountRpc("GetSweep");
  if (absl::Status s = Require(request.sweep_id(), "sweep_id"); !s.ok()) return s;
  return FindSweep(request.sweep_id());
}

absl::StatusOr<v1::ListSweepsResponse> SweepApi::ListSweeps(const v1::ListSweepsRequest&) {
  telemetry_.CountRpc("ListSweeps");
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_.ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  v1::ListSweepsResponse response;
  for (v1::Sweep& sweep : *sweeps) *response.add_sweeps() = std::move(sweep);
  return response;
}

absl::StatusOr<v1::Job> SweepApi::FindJob(const std::string& id) {
  absl::StatusOr<v1::Job> job = store_.GetJob(id);
  if (job.status().code() != absl::StatusCode::kNotFound) return job;
  constexpr int kNamed = 4;  // ids named when a short id is ambiguous
  absl::StatusOr<std::vector<std::string>> ids = store_.JobIdsEndingWith(id, kNamed);
  if (!ids.ok()) return ids.status();
  if (ids->empty()) return job;
  if (ids->size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the short id ", id, " ends the ids of several jobs (", absl::StrJoin(*ids, ", "),
        ids->size() == kNamed ? ", ..." : "", "); give the whole id"));
  }
  return store_.GetJob(ids->front());
}

absl::StatusOr<v1::JobLog> SweepApi::GetJobLog(const v1::GetJobLogRequest& request) {
  telemetry_.CountRpc("GetJobLog");
  if (absl::Status s = Require(request.job_id(), "job_id"); !s.ok()) return s;
  absl::StatusOr<v1::Job> job = FindJob(request.job_id());
  if (!job.ok()) return job.status();
  if (log_tails_ == nullptr) {
    v1::JobLog empty;
    empty.set_job_id(job->spec().job_id());
    return empty;
  }
  if (request.attempt_id() != 0) {
    absl::StatusOr<std::vector<v1::Attempt>> attempts = store_.ListAttempts(job->spec().job_id());
    if (!attempts.ok()) return attempts.status();
    std::vector<std::string> ids;
    for (const v1::Attempt& attempt : *attempts) {
      if (attempt.id() == request.attempt_id()) {
        return log_tails_->GetAttempt(job->spec().job_id(), request.attempt_id());
      }
      ids.push_back(absl::StrCat(attempt.id()));
    }
    return absl::NotFoundError(absl::StrCat(
        "job ", job->spec().job_id(), " has no attempt of id ", request.attempt_id(),
        ids.empty() ? " (it has none yet)"
                    : absl::StrCat(" (its attempts' ids: ", absl::StrJoin(ids, ", "), ")")));
  }
  return log_tails_->Get(job->spec().job_id(), job->current_attempt_id());
}

absl::StatusOr<v1::CancelResponse> SweepApi::Cancel(const v1::CancelRequest& request) {
  telemetry_.CountRpc("Cancel");
  if (absl::Status s = Require(request.id(), "id"); !s.ok()) return s;
  std::vector<std::string> job_ids;
  absl::StatusOr<v1::Sweep> sweep = FindSweep(request.id());
  if (sweep.ok()) {
    absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(sweep->id());
    if (!jobs.ok()) return jobs.status();
    for (const v1::Job& job : *jobs) {
      if (!JobStateHasEnded(job.state())) job_ids.push_back(job.spec().job_id());
    }
  } else if (sweep.status().code() == absl::StatusCode::kNotFound) {
    absl::StatusOr<v1::Job> job = FindJob(request.id());
    if (job.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat(
          "no sweep or job with id '", request.id(),
          "' (a job's id is its sweep's id, a dash and the short id `plan` and `retry` show: "
          "`ablate status SWEEP` lists them)"));
    }
    if (!job.ok()) return job.status();
    job_ids.push_back(job->spec().job_id());
  } else {
    return sweep.status();
  }

  v1::CancelResponse response;
  if (job_ids.empty()) return response;
  absl::StatusOr<std::vector<v1::Job>> before = store_.CancelJobs(job_ids, kCancelledByUser);
  if (!before.ok()) return before.status();
  scheduler_.StopAttempts(*before, kCancelledByUser);
  for (const v1::Job& job : *before) response.add_cancelled_job_ids(job.spec().job_id());
  ABLATE_LOG(INFO) << "cancelled id=" << request.id()
                   << " jobs=" << response.cancelled_job_ids_size();
  return response;
}

absl::StatusOr<v1::ListWorkersResponse> SweepApi::ListWorkers(const v1::ListWorkersRequest&) {
  telemetry_.CountRpc("ListWorkers");
  absl::StatusOr<std::vector<v1::Worker>> workers = store_.ListWorkers();
  if (!workers.ok()) return workers.status();
  absl::flat_hash_map<std::string, WorkerLoad> loads = scheduler_.Loads();
  v1::ListWorkersResponse response;
  for (v1::Worker& worker : *workers) {
    // What it held when it last connected, stale since; job_ids is what it runs now.
    worker.mutable_info()->clear_running();
    auto load = loads.find(worker.info().worker_id());
    if (worker.connected() && load != loads.end()) {
      worker.set_free_slots(load->second.free_slots);
      worker.clear_job_ids();
      for (const std::string& job_id : load->second.job_ids) worker.add_job_ids(job_id);
      if (load->second.backoff.has_value()) *worker.mutable_backoff() = *load->second.backoff;
    }
    *response.add_workers() = std::move(worker);
  }
  return response;
}

absl::Status SweepApi::Watch(const v1::WatchSweepRequest& request, const SnapshotSink& sink,
                             const StopCheck& stop, const WatchOptions& options) {
  telemetry_.CountRpc("WatchSweep");
  if (absl::Status s = Require(request.sweep_id(), "sweep_id"); !s.ok()) return s;
  std::string sweep_id = request.sweep_id();
  if (absl::Status known = store_.GetSweep(sweep_id).status(); absl::IsNotFound(known)) {
    absl::StatusOr<std::string> id = SweepIdNamed(sweep_id, known);
    if (!id.ok()) return id.status();
    sweep_id = *std::move(id);
  }

  std::unique_ptr<ChangeFeed::Subscription> subscription;
  bool ended = false;
  if (options.resume_after.has_value()) {
    absl::StatusOr<std::unique_ptr<ChangeFeed::Subscription>> resumed =
        feed_.Resume(sweep_id, *options.resume_after);
    if (resumed.ok()) {
      subscription = *std::move(resumed);
      // A sweep that ended while the client was away sends no more changes: send what the
      // feed replays, then finish, as a fresh watch of it would.
      absl::StatusOr<v1::Sweep> sweep = store_.GetSweep(sweep_id);
      if (!sweep.ok()) return sweep.status();
      if (Ended(*sweep)) {
        ChangeFeed::Delta delta;
        while (subscription->Next(&delta, absl::ZeroDuration()) ==
               ChangeFeed::Subscription::Result::kDelta) {
          if (!sink(*delta)) return absl::OkStatus();
        }
        return absl::OkStatus();
      }
    }
  }
  if (subscription == nullptr) {
    absl::StatusOr<std::unique_ptr<ChangeFeed::Subscription>> fresh =
        StartFresh(sweep_id, sink, &ended);
    if (!fresh.ok()) return fresh.status();
    subscription = *std::move(fresh);
  }

  while (subscription != nullptr && !ended) {
    if (stop()) return absl::OkStatus();
    ChangeFeed::Delta delta;
    switch (subscription->Next(&delta, options.poll)) {
      case ChangeFeed::Subscription::Result::kDelta:
        if (!sink(*delta)) return absl::OkStatus();
        ended = Ended(delta->sweep());
        break;
      case ChangeFeed::Subscription::Result::kTimeout:
        break;
      case ChangeFeed::Subscription::Result::kFellBehind: {
        subscription.reset();
        absl::StatusOr<std::unique_ptr<ChangeFeed::Subscription>> fresh =
            StartFresh(sweep_id, sink, &ended);
        if (!fresh.ok()) return fresh.status();
        subscription = *std::move(fresh);
        break;
      }
      case ChangeFeed::Subscription::Result::kClosed:
        return absl::UnavailableError("the coordinator is stopping");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChangeFeed::Subscription>> SweepApi::StartFresh(
    const std::string& sweep_id, const SnapshotSink& sink, bool* ended) {
  // Subscribing before reading keeps every change after the snapshot's version queued.
  std::unique_ptr<ChangeFeed::Subscription> subscription = feed_.Subscribe(sweep_id);
  absl::StatusOr<v1::SweepSnapshot> snapshot = store_.Snapshot(sweep_id, JobQuery());
  if (!snapshot.ok()) return snapshot.status();
  subscription->SkipThrough(snapshot->version());
  *ended = Ended(snapshot->sweep());
  // A watcher that left is told by a null subscription: nothing more is sent.
  if (!sink(*snapshot)) return std::unique_ptr<ChangeFeed::Subscription>();
  return subscription;
}

}  // namespace ablate::coordinator
