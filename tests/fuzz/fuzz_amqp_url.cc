// AMQP URLs as an operator (or an environment variable) gives them: one URL
// or a broker cluster's comma-separated list, parsed or refused with a
// status; a parsed URL's redacted form holds no password, and RedactUrl
// (which log lines pass every URL through) takes any text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "filemesh/service/log.hpp"
#include "rpc/amqp_url.h"

namespace {

// The password's place holds *** whatever the password is.
void CheckRedacted(const filemesh::internal::AmqpUrl& url) {
  const std::string redacted = url.Redacted();
  if (!url.password.empty() && url.password != "***" &&
      redacted.find(":" + url.password + "@") != std::string::npos) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)filemesh::RedactUrl(text);
  if (auto url = filemesh::internal::ParseAmqpUrl(text); url.ok()) CheckRedacted(*url);
  if (auto urls = filemesh::internal::ParseAmqpUrls(text); urls.ok()) {
    for (const filemesh::internal::AmqpUrl& url : *urls) CheckRedacted(url);
  }
  return 0;
}
