#include "rest/json.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "base/quoted_escape.h"
#include "filemesh/names.hpp"
#include "google/protobuf/util/json_util.h"
#include "rest/proto_json.h"

namespace filemesh::internal {
namespace {

void AppendEscaped(std::string_view utf8, std::string* out) {
  for (const char c : utf8) {
    const auto byte = static_cast<unsigned char>(c);
    if (AppendNamedEscape(c, out)) continue;
    if (byte < 0x20) {
      absl::StrAppend(out, "\\u", absl::Hex(byte, absl::kZeroPad4));
    } else {
      out->push_back(c);
    }
  }
}

}  // namespace

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  if (IsValidUtf8(text)) {
    AppendEscaped(text, out);
  } else {
    AppendEscaped(DisplayForm(text), out);
  }
  out->push_back('"');
}

void JsonObjectWriter::Key(std::string_view key) {
  if (out_.size() > 1) out_.push_back(',');
  AppendJsonString(key, &out_);
  out_.push_back(':');
}

JsonObjectWriter& JsonObjectWriter::String(std::string_view key, std::string_view value) {
  Key(key);
  AppendJsonString(value, &out_);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Bool(std::string_view key, bool value) {
  Key(key);
  out_.append(value ? "true" : "false");
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Int(std::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&out_, value);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Raw(std::string_view key, std::string_view json) {
  Key(key);
  out_.append(json);
  return *this;
}

std::string JsonObjectWriter::Finish() {
  out_.push_back('}');
  return std::move(out_);
}

absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message) {
  std::string json;
  if (AppendProtoJson(message, &json)) return json;
  // Shapes and values the direct writer leaves to protobuf's own printer.
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot write ", message.GetTypeName(), " as JSON: ", status.ToString()));
  }
  return json;
}

std::string AppendStringMember(std::string object_json, std::string_view key,
                               std::string_view value) {
  // An object from MessageToJson: "{}" or "{...}", closing brace last.
  if (object_json.size() < 2 || object_json.back() != '}') return object_json;
  object_json.pop_back();
  if (object_json.size() > 1) object_json.push_back(',');
  AppendJsonString(key, &object_json);
  object_json.push_back(':');
  AppendJsonString(value, &object_json);
  object_json.push_back('}');
  return object_json;
}

}  // namespace filemesh::internal
