// The gateway's protobuf-to-JSON writer on any message the services could
// answer: its JSON parses back, with protobuf's own parser, to the same
// message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "filemesh/v1/filemesh.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "rest/proto_json.h"

namespace {

template <typename Message>
void RoundTrip(const std::string& bytes) {
  Message message;
  if (!message.ParseFromString(bytes)) return;
  message.DiscardUnknownFields();
  std::string json;
  if (!filemesh::internal::AppendProtoJson(message, &json)) return;
  Message back;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &back);
  if (!status.ok() || !google::protobuf::util::MessageDifferencer::Equals(message, back)) {
    std::fprintf(stderr, "JSON does not parse back (%s):\n%s\n", status.ToString().c_str(),
                 json.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Strings that are not UTF-8 are refused by the parser, which logs each.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  RoundTrip<filemesh::v1::ListResponse>(bytes);
  RoundTrip<filemesh::v1::SearchResponse>(bytes);
  return 0;
}
