// The query parameters of the JSON API's GET endpoints. Each endpoint names the parameters it
// takes, each either single-valued (page_size, page_token, max_points, last_event_id) or a list
// (state, metrics). A list is given as repeated parameters, as comma-separated values, or both
// (?state=failed&state=cancelled is ?state=failed,cancelled). A parameter the endpoint does not
// take, or a single-valued one given two values, is refused by name: a misspelt filter, or one
// of two page sizes, answered as if the other were not there would read as an answer to the
// question asked.
// Stateless; safe from any thread.
#ifndef ABLATE_COORDINATOR_HTTP_QUERY_PARAMS_H_
#define ABLATE_COORDINATOR_HTTP_QUERY_PARAMS_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace httplib {
struct Request;
}  // namespace httplib

namespace ablate::coordinator {

struct QueryParam {
  absl::string_view name;
  bool list = false;  // takes several values, repeated or comma-separated
};

// InvalidArgument naming the first parameter of `req` that is not in `known` ("unknown query
// parameter 'stat' (/api/v1/sweeps/s/jobs takes page_size, page_token, state)"), or the first
// single-valued one given more than one value ("query parameter 'page_size' has 2 values (1,
// 2); it takes one"). OK otherwise.
absl::Status CheckQueryParams(const httplib::Request& req, std::initializer_list<QueryParam> known);

// Every value of the list parameter `name`: each occurrence split at commas, in order, empty
// items and repeats left out. Empty when the parameter is absent.
std::vector<std::string> ListParam(const httplib::Request& req, const std::string& name);

// ?name=N as an unsigned number; `*value` is left alone when the parameter is absent.
// InvalidArgument naming the parameter when it is not a non-negative integer.
absl::Status ParseUintParam(const httplib::Request& req, const std::string& name, uint32_t* value);
absl::Status ParseUintParam(const httplib::Request& req, const std::string& name, uint64_t* value);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_QUERY_PARAMS_H_
