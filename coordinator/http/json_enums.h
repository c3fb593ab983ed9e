// The JSON API's enum values by their short names. Protobuf's JSON mapping names an enum value
// in full ("JOB_STATE_FAILED", proto3's style of prefixing each value with its type); a person
// writing a request body by hand writes "failed". ExpandEnumShortNames rewrites each enum value
// of a request body that is a short name (the full name less the prefix all the type's values
// share, in any case) to its full name, before protobuf's parser reads the body.
//
// Pure functions; safe from any thread.
#ifndef ABLATE_COORDINATOR_HTTP_JSON_ENUMS_H_
#define ABLATE_COORDINATOR_HTTP_JSON_ENUMS_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"

namespace ablate::coordinator {

// `body` (JSON of a `type` message in protobuf's mapping) with each enum value given by its short
// name written in full, through nested messages and repeated fields (map values are left as
// they are). Fields, values and shapes it does not know are left for protobuf's parser to report;
// so is a body that is not JSON, returned unchanged. InvalidArgument for a string that is neither
// a value's full nor its short name, naming the field's path, the enum and its short names:
//   "states[0]: 'faild' is not a JobState: one of pending, assigned, running, succeeded,
//   failed, cancelled"
absl::StatusOr<std::string> ExpandEnumShortNames(const std::string& body,
                                                 const google::protobuf::Descriptor& type);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_JSON_ENUMS_H_
