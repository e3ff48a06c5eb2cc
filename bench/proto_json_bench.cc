// The gateway's JSON encoding of a ListResponse: protobuf's
// MessageToJsonString (binary round trip through a TypeResolver) against
// the direct reflection writer (rest/proto_json.h) that produces the same
// bytes, on a 10-entry and a 1,000-entry page. bytes_per_second is JSON
// written; compare the two Time columns for the speed-up.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "filemesh/v1/filemesh.pb.h"
#include "google/protobuf/util/json_util.h"
#include "rest/proto_json.h"

namespace filemesh {
namespace {

// A page like FileLister returns: regular files with sizes, modes and
// nanosecond modification times; every tenth name not UTF-8 (display form
// plus raw bytes).
v1::ListResponse Page(int entries) {
  v1::ListResponse page;
  for (int i = 0; i < entries; ++i) {
    v1::FileEntry* entry = page.add_entries();
    std::string name = "report-" + std::to_string(i) + ".csv";
    if (i % 10 == 9) {
      entry->set_raw_name("caf\xe9-" + name);
      entry->set_raw_path("data/caf\xe9-" + name);
      name.insert(0, "caf\\xe9-");
    }
    entry->set_name(name);
    entry->set_path("data/" + name);
    entry->set_type(v1::FILE_TYPE_FILE);
    entry->set_size(static_cast<uint64_t>(i) * 4099);
    entry->set_mode(0100644);
    entry->mutable_modified()->set_seconds(1767225600 + i);
    entry->mutable_modified()->set_nanos(123456789);
  }
  page.set_next_page_token("CAESBnJlcG9ydA");
  return page;
}

void ProtobufPrinter(benchmark::State& state) {
  const v1::ListResponse page = Page(static_cast<int>(state.range(0)));
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  size_t bytes = 0;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(page, &json, options).ok()) std::abort();
    bytes += json.size();
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(ProtobufPrinter)->Arg(10)->Arg(1000);

void DirectWriter(benchmark::State& state) {
  const v1::ListResponse page = Page(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    std::string json;
    if (!internal::AppendProtoJson(page, &json)) std::abort();
    bytes += json.size();
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(DirectWriter)->Arg(10)->Arg(1000);

}  // namespace
}  // namespace filemesh
