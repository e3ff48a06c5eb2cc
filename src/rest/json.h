// Small JSON writing helpers for the REST layer's own documents (problems,
// readiness, operations). Messages go through protobuf's JSON mapping; these
// only wrap them and write short objects whose strings may come from outside.

#ifndef FILEMESH_SRC_REST_JSON_H_
#define FILEMESH_SRC_REST_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace filemesh::internal {

// Appends `text` to `out` as a JSON string literal, quotes included. Bytes
// that are not well-formed UTF-8 are written in display form (the text
// `\xHH`, see names.hpp), so the result is valid JSON whatever `text` holds.
void AppendJsonString(std::string_view text, std::string* out);

// Writes one JSON object, member by member, in the order given.
class JsonObjectWriter {
 public:
  JsonObjectWriter& String(std::string_view key, std::string_view value);
  JsonObjectWriter& Bool(std::string_view key, bool value);
  JsonObjectWriter& Int(std::string_view key, int64_t value);
  // `json` must be one complete JSON value (an object written elsewhere).
  JsonObjectWriter& Raw(std::string_view key, std::string_view json);
  // The object; the writer is spent.
  std::string Finish();

 private:
  void Key(std::string_view key);

  std::string out_ = "{";
};

// `message` in protobuf's JSON mapping with the REST API's options:
// snake_case field names and every primitive field printed. The bytes are
// MessageToJsonString's; supported shapes are written directly
// (proto_json.h), the rest by protobuf.
absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message);

// `object_json` (a JSON object) with one more member `key` = the string
// `value` at its end.
std::string AppendStringMember(std::string object_json, std::string_view key,
                               std::string_view value);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_JSON_H_
