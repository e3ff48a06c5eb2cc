// Problem documents with an HTTP status that no absl::StatusCode maps to
// (405 Method Not Allowed); ProblemResponse (filemesh/rest/http.hpp) is built on it.

#ifndef FILEMESH_SRC_REST_PROBLEM_H_
#define FILEMESH_SRC_REST_PROBLEM_H_

#include <string_view>

#include "absl/status/status.h"
#include "filemesh/rest/http.hpp"

namespace filemesh::internal {

// As ProblemResponse, with `http_status` (and its title) instead of the one
// HttpStatusFromStatusCode gives; "code" still names `status`'s code.
HttpResponse ProblemWithHttpStatus(int http_status, const absl::Status& status,
                                   std::string_view instance);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_PROBLEM_H_
