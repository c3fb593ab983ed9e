#include "trainer_lib/train/event_sink.h"

#include <map>
#include <string>

#include "absl/strings/str_format.h"

namespace ablate::train {

absl::Status PipeEventSink::Send(const v1::TrainerEvent& event) { return writer_.Write(event); }

absl::Status TeeEventSink::Send(const v1::TrainerEvent& event) {
  absl::Status status = primary_.Send(event);
  // A log that cannot be written (a full disk) does not stop a run the worker still hears.
  copy_.Send(event).IgnoreError();
  return status;
}

absl::Status ProgressEventSink::Send(const v1::TrainerEvent& event) {
  last_ = absl::Now();
  return next_.Send(event);
}

absl::Status ProgressEventSink::Progress(int64_t step) {
  if (absl::Now() - last_ < every_) return absl::OkStatus();
  v1::TrainerEvent event;
  event.mutable_progress()->set_step(step);
  return Send(event);
}

absl::Status ConsoleEventSink::Send(const v1::TrainerEvent& event) {
  switch (event.event_case()) {
    case v1::TrainerEvent::kStarted: {
      const v1::TrainerStarted& s = event.started();
      total_steps_ = s.total_steps();
      out_ << absl::StrFormat("training %d parameters on %s for %d steps", s.parameters(),
                              s.device(), s.total_steps());
      if (s.resumed_from_step() > 0) out_ << ", resumed from step " << s.resumed_from_step();
      out_ << "\n";
      break;
    }
    case v1::TrainerEvent::kMetrics:
      PrintMetrics(event.metrics());
      break;
    case v1::TrainerEvent::kCheckpoint:
      out_ << "checkpoint step " << event.checkpoint().step() << " " << event.checkpoint().path()
           << "\n";
      break;
    case v1::TrainerEvent::kLog:
      out_ << event.log().level() << ": " << event.log().text() << "\n";
      break;
    case v1::TrainerEvent::kFinished: {
      const v1::TrainerFinished& f = event.finished();
      if (f.ok()) {
        out_ << absl::StrFormat("done after %d steps: final eval loss %.4f\n", f.steps(),
                                f.final_eval_loss());
      } else {
        out_ << "failed after " << f.steps() << " steps: " << f.error() << "\n";
      }
      break;
    }
    case v1::TrainerEvent::kProgress:  // for the worker's stall watch; the log has the steps
    case v1::TrainerEvent::EVENT_NOT_SET:
      break;
  }
  out_.flush();
  return out_ ? absl::OkStatus() : absl::UnavailableError("console output closed");
}

void ConsoleEventSink::PrintMetrics(const v1::MetricBatch& batch) {
  if (batch.points().empty()) return;
  std::map<std::string, double> value;
  for (const v1::MetricPoint& p : batch.points()) value[p.name()] = p.value();
  const int64_t step = batch.points(0).step();
  if (value.contains("train/loss")) {
    out_ << absl::StrFormat("step %d/%d loss %.3f lr %.1e tok/s %.0f", step, total_steps_,
                            value["train/loss"], value["train/lr"],
                            value["train/tokens_per_sec"]);
    if (value.contains("train/mfu")) {
      out_ << absl::StrFormat(" mfu %.1f%%", 100 * value["train/mfu"]);
    }
    if (value.contains("memory/peak_allocated_bytes")) {
      out_ << absl::StrFormat(" peak %.2f GiB planned %.2f GiB",
                              value["memory/peak_allocated_bytes"] / (1 << 30),
                              value["memory/planned_bytes"] / (1 << 30));
    }
    out_ << "\n";
  }
  if (value.contains("eval/loss")) {
    out_ << absl::StrFormat("eval step %d loss %.4f perplexity %.2f\n", step, value["eval/loss"],
                            value["eval/perplexity"]);
  }
}

}  // namespace ablate::train
