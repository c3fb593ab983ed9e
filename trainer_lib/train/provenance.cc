#include "trainer_lib/train/provenance.h"

#include "google/protobuf/util/json_util.h"
#include "trainer_lib/train/build_info.h"

namespace ablate::train {

v1::TrainerEvent StartedEvent(const v1::TrainConfig& config, const StartFacts& facts) {
  v1::TrainerEvent event;
  v1::TrainerStarted* started = event.mutable_started();
  started->set_parameters(facts.parameters);
  started->set_device(facts.device);
  started->set_resumed_from_step(facts.resumed_from_step);
  started->set_total_steps(config.steps());
  v1::Provenance* provenance = started->mutable_provenance();
  provenance->set_code_version(kCodeVersion);
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  // Printing a message that is already in memory cannot fail.
  (void)google::protobuf::util::MessageToJsonString(config, &json, options);
  provenance->set_config_json(std::move(json));
  provenance->set_seed(config.seed());
  provenance->set_data_seed(config.data_seed());
  provenance->set_data_sha256(facts.data_sha256);
  provenance->set_device(facts.device);
  provenance->set_optimizer_state_bytes_per_parameter(facts.optimizer_state_bytes_per_parameter);
  return event;
}

}  // namespace ablate::train
