// Reading JSON response bodies in tests through protobuf's JSON parser.
//
// Under ThreadSanitizer these helpers cannot be used: protobuf's map fields
// (google::protobuf::Struct holds one) change layout with -fsanitize=thread,
// and Debian's libprotobuf is not built with it, so a Struct the library
// fills cannot be read by instrumented code. Tests that read JSON skip
// themselves there (kProtobufMapsUsable); the release and ASan runs cover
// them.

#ifndef FILEMESH_TESTS_JSON_TEST_UTIL_H_
#define FILEMESH_TESTS_JSON_TEST_UTIL_H_

#include <string>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace filemesh::testing {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kProtobufMapsUsable = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kProtobufMapsUsable = false;
#else
inline constexpr bool kProtobufMapsUsable = true;
#endif
#else
inline constexpr bool kProtobufMapsUsable = true;
#endif

// `body` as a JSON object; a parse failure fails the test.
inline google::protobuf::Struct ParseJsonObject(const std::string& body) {
  google::protobuf::Struct object;
  const auto status = google::protobuf::util::JsonStringToMessage(body, &object);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << body;
  return object;
}

// `json` as a Message, ignoring members the message does not have.
template <typename Message>
Message ParseJsonMessage(const std::string& json) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return message;
}

// The string member `name` of `object`, or "<missing>".
inline std::string StringMember(const google::protobuf::Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? "<missing>" : it->second.string_value();
}

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_JSON_TEST_UTIL_H_
