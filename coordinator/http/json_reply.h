// Answers of the JSON API: a message in protobuf's JSON mapping, or an error as
// {"error": "...", "code": "NOT_FOUND"} with the HTTP status Google's API design maps the
// canonical code to (NOT_FOUND 404, INVALID_ARGUMENT 400, UNAVAILABLE 503, ...). Stateless;
// safe from any thread.
#ifndef ABLATE_COORDINATOR_HTTP_JSON_REPLY_H_
#define ABLATE_COORDINATOR_HTTP_JSON_REPLY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace httplib {
struct Response;
}  // namespace httplib

namespace ablate::coordinator {

int HttpStatusOf(absl::StatusCode code);

// Reads a request body in protobuf's JSON mapping into `message`, its enum values by their full
// or short names (json_enums.h: "JOB_STATE_FAILED" or "failed"). InvalidArgument naming the
// message type and the parser's complaint when it is not one.
absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message& message);

// The status's HTTP code with v1::HttpError's body: {"error": ..., "code": ...}, in that order.
void ReplyError(const absl::Status& status, httplib::Response& res);

// 200 with every field printed, defaults included, so clients find every key.
void ReplyJson(const google::protobuf::Message& message, httplib::Response& res);

template <typename T>
void Reply(const absl::StatusOr<T>& result, httplib::Response& res) {
  if (result.ok()) {
    ReplyJson(*result, res);
  } else {
    ReplyError(result.status(), res);
  }
}

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_JSON_REPLY_H_
