#include "trainer_lib/train/job_file.h"

#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/train_config.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ablate::train {
namespace {

using google::protobuf::FieldDescriptor;

// The TrainConfig fields a JSON object writes out, by proto or JSON name. Proto3 scalars carry
// no presence, so this is the only way to tell "weight_decay": 0 from a missing weight_decay.
std::vector<const FieldDescriptor*> GivenFields(const google::protobuf::Struct& object) {
  std::set<const FieldDescriptor*> fields;
  const google::protobuf::Descriptor* descriptor = v1::TrainConfig::descriptor();
  for (const auto& [key, value] : object.fields()) {
    if (value.kind_case() == google::protobuf::Value::kNullValue) continue;  // JSON's "unset"
    const FieldDescriptor* field = descriptor->FindFieldByName(key);
    if (field == nullptr) field = descriptor->FindFieldByCamelcaseName(key);
    if (field != nullptr) fields.insert(field);
  }
  return {fields.begin(), fields.end()};
}

}  // namespace

absl::StatusOr<v1::JobSpec> ParseJobJson(const std::string& json) {
  namespace util = google::protobuf::util;
  google::protobuf::Struct object;
  if (util::Status s = util::JsonStringToMessage(json, &object); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON object: ", std::string(s.message())));
  }
  v1::JobSpec job;
  v1::TrainConfig given;
  const google::protobuf::Struct* config_object = &object;
  if (util::Status as_job = util::JsonStringToMessage(json, &job); as_job.ok()) {
    given = job.config();
    auto it = object.fields().find("config");
    config_object = it != object.fields().end() && it->second.has_struct_value()
                        ? &it->second.struct_value()
                        : nullptr;
  } else if (util::Status as_config = util::JsonStringToMessage(json, &given);
             !as_config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "neither a JobSpec (", std::string(as_job.message()), ") nor a TrainConfig (",
        std::string(as_config.message()), ")"));
  }

  v1::TrainConfig config = DefaultTrainConfig();
  if (!job.config_hash().empty()) {
    config = std::move(given);
  } else if (config_object != nullptr) {
    config.GetReflection()->SwapFields(&config, &given, GivenFields(*config_object));
  }
  if (absl::Status s = ValidateTrainConfig(config); !s.ok()) return s;
  *job.mutable_config() = std::move(config);
  return job;
}

absl::StatusOr<v1::JobSpec> ReadJobFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the job file"));
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<v1::JobSpec> job = ParseJobJson(text.str());
  if (!job.ok()) {
    return absl::Status(job.status().code(), absl::StrCat(path, ": ", job.status().message()));
  }
  return job;
}

}  // namespace ablate::train
