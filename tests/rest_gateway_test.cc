// RestGateway::Handle over real FileLister/FileSearcher on a temporary tree,
// behind in-memory transports: every route and parameter, the status
// mapping, authentication, request ids, queued operations, readiness,
// metrics and the access log.

#include "filemesh/rest/rest_gateway.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "captured_log.h"
#include "filemesh/file_lister.hpp"
#include "filemesh/file_searcher.hpp"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/service/log.hpp"
#include "filemesh/testing/in_memory_transport.hpp"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "json_test_util.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "test_tree.h"
#include "wait_for.h"

namespace filemesh {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::InMemoryTransport;
using ::testing::UnorderedElementsAre;
using Pairs = std::vector<std::pair<std::string, std::string>>;

google::protobuf::Struct ParseObject(const std::string& body) {
  return testing::ParseJsonObject(body);
}

template <typename Message>
Message ParseMessage(const std::string& json) {
  return testing::ParseJsonMessage<Message>(json);
}

std::string Str(const google::protobuf::Struct& object, const std::string& name) {
  return testing::StringMember(object, name);
}

const std::string* FindHeader(const HttpResponse& r, const std::string& name) {
  for (const auto& [key, value] : r.headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::string HeaderOr(const HttpResponse& r, const std::string& name) {
  const std::string* value = FindHeader(r, name);
  return value == nullptr ? "<missing>" : *value;
}

// The names of a listing or search answer, in order.
template <typename Entries>
std::vector<std::string> Names(const Entries& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.raw_name().empty() ? e.name() : e.raw_name());
  return names;
}

// One backend: an in-memory primary and, optionally, an in-memory fallback.
struct Backend {
  InMemoryTransport* primary = nullptr;
  InMemoryTransport* fallback = nullptr;
  std::shared_ptr<FailoverChannel> channel;
};

Backend MakeBackend(bool with_fallback, const std::function<void(InMemoryTransport&)>& serve) {
  Backend b;
  auto primary = std::make_unique<InMemoryTransport>();
  serve(*primary);
  b.primary = primary.get();
  std::unique_ptr<InMemoryTransport> fallback;
  if (with_fallback) {
    fallback = std::make_unique<InMemoryTransport>();
    serve(*fallback);
    b.fallback = fallback.get();
  }
  FailoverPolicy policy;
  policy.breaker_failure_threshold = 3;
  policy.breaker_cooldown = absl::Hours(1);  // stays open for the whole test
  policy.breaker_max_cooldown = absl::Hours(1);
  b.channel = std::make_shared<FailoverChannel>(std::move(primary), std::move(fallback), policy);
  return b;
}

class RestGatewayTest : public ::testing::Test {
 protected:
  RestGatewayTest() {
    tree_.Dir("docs");
    tree_.File("docs/a.txt", 10);
    tree_.File("docs/b.csv", 2000);
    tree_.File("docs/C.TXT", 5);
    tree_.File("docs/.secret", 1);
    tree_.SetMtime("docs/a.txt", 1000);
    tree_.SetMtime("docs/b.csv", 3000);
    tree_.SetMtime("docs/C.TXT", 2000);
    tree_.Dir("docs/sub");
    tree_.File("docs/sub/deep.txt", 7);
    tree_.File("plain.txt", 3);
    tree_.Symlink("/etc", "outside");
    tree_.Dir("bin\xff");
    tree_.File("bin\xff/inner", 1);
    lister_ = std::make_unique<FileLister>(tree_.root());
    searcher_ = std::make_unique<FileSearcher>(tree_.root());
    list_backend_ =
        MakeBackend(true, [this](InMemoryTransport& t) { t.ServeFileLister(*lister_); });
    search_backend_ =
        MakeBackend(true, [this](InMemoryTransport& t) { t.ServeFileSearcher(*searcher_); });
    lister_client_ = std::make_shared<FileListerClient>(list_backend_.channel);
    searcher_client_ = std::make_shared<FileSearcherClient>(search_backend_.channel);
    options_.access_log = false;
    Rebuild();
  }

  void SetUp() override {
    if (!testing::kProtobufMapsUsable && ReadsJson()) {
      GTEST_SKIP() << "reads JSON through protobuf's Struct, unusable under ThreadSanitizer here";
    }
  }
  // Whether the test reads response bodies as JSON (see json_test_util.h).
  virtual bool ReadsJson() const { return true; }

  void Rebuild() {
    gateway_ = std::make_unique<RestGateway>(options_, lister_client_, searcher_client_);
  }

  HttpResponse Call(const std::string& method, const std::string& path, const Pairs& query = {},
                    const Pairs& headers = {}) {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.query = query;
    request.headers = headers;
    request.remote_address = "127.0.0.1:40000";
    return gateway_->Handle(request);
  }
  HttpResponse Get(const std::string& path, const Pairs& query = {}, const Pairs& headers = {}) {
    return Call("GET", path, query, headers);
  }

  // A 400 whose problem names `parameter`.
  void ExpectBadParameter(const std::string& path, const Pairs& query,
                          const std::string& parameter) {
    const HttpResponse r = Get(path, query);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.content_type, "application/problem+json");
    const google::protobuf::Struct problem = ParseObject(r.body);
    EXPECT_EQ(Str(problem, "code"), "INVALID_ARGUMENT");
    EXPECT_THAT(Str(problem, "detail"), HasSubstr("\"" + parameter + "\"")) << r.body;
  }

  // The status and problem code of a response.
  std::pair<int, std::string> StatusAndCode(const HttpResponse& r) {
    return {r.status, Str(ParseObject(r.body), "code")};
  }

  testing::TestTree tree_;
  std::unique_ptr<FileLister> lister_;
  std::unique_ptr<FileSearcher> searcher_;
  Backend list_backend_;
  Backend search_backend_;
  std::shared_ptr<FileListerClient> lister_client_;
  std::shared_ptr<FileSearcherClient> searcher_client_;
  RestGatewayOptions options_;
  std::unique_ptr<RestGateway> gateway_;
};

// --- /api/v1/files ---------------------------------------------------------

TEST_F(RestGatewayTest, ListAnswersProtobufJsonWithServedBy) {
  const HttpResponse r = Get("/api/v1/files", {{"path", "docs"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const auto list = ParseMessage<v1::ListResponse>(r.body);
  EXPECT_THAT(Names(list.entries()), ElementsAre("C.TXT", "a.txt", "b.csv", "sub"));
  const google::protobuf::Struct object = ParseObject(r.body);
  EXPECT_EQ(Str(object, "served_by"), "in-memory");
  // snake_case names, and primitive fields printed even when empty.
  EXPECT_EQ(object.fields().count("next_page_token"), 1u);
  const google::protobuf::Struct& entry =
      object.fields().at("entries").list_value().values(0).struct_value();
  EXPECT_EQ(entry.fields().count("symlink_target"), 1u);
  EXPECT_EQ(Str(entry, "type"), "FILE_TYPE_FILE");
  EXPECT_EQ(Str(entry, "size"), "5");  // uint64 as a JSON string
}

TEST_F(RestGatewayTest, ListSortOrderAndHidden) {
  auto names = [this](const Pairs& query) {
    const HttpResponse r = Get("/api/v1/files", query);
    EXPECT_EQ(r.status, 200) << r.body;
    return Names(ParseMessage<v1::ListResponse>(r.body).entries());
  };
  EXPECT_THAT(names({{"path", "docs"}, {"sort", "name"}, {"order", "desc"}}),
              ElementsAre("sub", "b.csv", "a.txt", "C.TXT"));
  EXPECT_THAT(names({{"path", "docs"}, {"sort", "modified"}, {"order", "asc"}}),
              ElementsAre("a.txt", "C.TXT", "b.csv", "sub"));
  // The directory's own size depends on the filesystem: check the files' order.
  const std::vector<std::string> by_size = names({{"path", "docs"}, {"sort", "size"}});
  auto position = [&by_size](const std::string& name) {
    return std::find(by_size.begin(), by_size.end(), name) - by_size.begin();
  };
  EXPECT_LT(position("C.TXT"), position("a.txt"));
  EXPECT_LT(position("a.txt"), position("b.csv"));
  EXPECT_EQ(by_size.size(), 4u);
  EXPECT_THAT(names({{"path", "docs"}, {"hidden", "true"}}),
              ElementsAre(".secret", "C.TXT", "a.txt", "b.csv", "sub"));
  EXPECT_THAT(names({{"path", "docs"}, {"hidden", "1"}}),
              ElementsAre(".secret", "C.TXT", "a.txt", "b.csv", "sub"));
  EXPECT_THAT(names({{"path", "docs"}, {"hidden", "0"}}),
              ElementsAre("C.TXT", "a.txt", "b.csv", "sub"));
  EXPECT_THAT(names({{"path", "docs"}, {"hidden", "false"}}),
              ElementsAre("C.TXT", "a.txt", "b.csv", "sub"));
  EXPECT_THAT(names({}), ElementsAre("bin\xff", "docs", "outside", "plain.txt"));
  EXPECT_THAT(names({{"path", ""}}), ElementsAre("bin\xff", "docs", "outside", "plain.txt"));
}

TEST_F(RestGatewayTest, ListPagesWithTokens) {
  const HttpResponse first = Get("/api/v1/files", {{"path", "docs"}, {"page_size", "3"}});
  ASSERT_EQ(first.status, 200) << first.body;
  const auto page1 = ParseMessage<v1::ListResponse>(first.body);
  EXPECT_THAT(Names(page1.entries()), ElementsAre("C.TXT", "a.txt", "b.csv"));
  ASSERT_FALSE(page1.next_page_token().empty());
  const HttpResponse second =
      Get("/api/v1/files",
          {{"path", "docs"}, {"page_size", "3"}, {"page_token", page1.next_page_token()}});
  ASSERT_EQ(second.status, 200) << second.body;
  const auto page2 = ParseMessage<v1::ListResponse>(second.body);
  EXPECT_THAT(Names(page2.entries()), ElementsAre("sub"));
  EXPECT_TRUE(page2.next_page_token().empty());
  // A token from another request is the service's InvalidArgument.
  EXPECT_EQ(StatusAndCode(
                Get("/api/v1/files",
                    {{"path", "docs"}, {"sort", "size"}, {"page_token", page1.next_page_token()}})),
            std::make_pair(400, std::string("INVALID_ARGUMENT")));
  EXPECT_EQ(Get("/api/v1/files", {{"page_size", "10000"}}).status, 200);
  EXPECT_EQ(Get("/api/v1/files", {{"page_size", "1"}}).status, 200);
}

TEST_F(RestGatewayTest, ListPathThatIsNotUtf8TravelsExactly) {
  const HttpResponse r = Get("/api/v1/files", {{"path", "bin\xff"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto list = ParseMessage<v1::ListResponse>(r.body);
  ASSERT_EQ(list.entries_size(), 1);
  EXPECT_EQ(list.entries(0).raw_path(), "bin\xff/inner");
  EXPECT_EQ(list.entries(0).path(), "bin\\xff/inner");
}

TEST_F(RestGatewayTest, ListRejectsEveryMalformedParameter) {
  const std::string files = "/api/v1/files";
  ExpectBadParameter(files, {{"page_size", "0"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "10001"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "abc"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "-1"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "+5"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", " 5"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "5.0"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "0x10"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", ""}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "99999999999999999999999"}}, "page_size");
  ExpectBadParameter(files, {{"page_size", "18446744073709551616"}}, "page_size");
  ExpectBadParameter(files, {{"sort", "date"}}, "sort");
  ExpectBadParameter(files, {{"sort", "NAME"}}, "sort");
  ExpectBadParameter(files, {{"sort", ""}}, "sort");
  ExpectBadParameter(files, {{"order", "up"}}, "order");
  ExpectBadParameter(files, {{"hidden", "yes"}}, "hidden");
  ExpectBadParameter(files, {{"hidden", "TRUE"}}, "hidden");
  ExpectBadParameter(files, {{"hidden", ""}}, "hidden");
  ExpectBadParameter(files, {{"page_token", "\xff"}}, "page_token");
  ExpectBadParameter(files, {{"pagesize", "5"}}, "pagesize");
  ExpectBadParameter(files, {{"q", "x"}}, "q");
  ExpectBadParameter(files, {{"path", "docs"}, {"path", "docs"}}, "path");
  ExpectBadParameter(files, {{"hidden", "1"}, {"hidden", "0"}}, "hidden");
  // The problem says what is accepted.
  EXPECT_THAT(Str(ParseObject(Get(files, {{"sort", "x"}}).body), "detail"),
              HasSubstr("name, size, modified"));
  EXPECT_THAT(Str(ParseObject(Get(files, {{"order", "x"}}).body), "detail"),
              HasSubstr("asc, desc"));
  EXPECT_THAT(Str(ParseObject(Get(files, {{"hidden", "x"}}).body), "detail"),
              HasSubstr("true, false, 1 or 0"));
  EXPECT_THAT(Str(ParseObject(Get(files, {{"page_size", "x"}}).body), "detail"),
              HasSubstr("from 1 to 10000"));
  EXPECT_THAT(Str(ParseObject(Get(files, {{"bogus", "1"}}).body), "detail"),
              HasSubstr("path, page_size, page_token, sort, order, hidden"));
}

TEST_F(RestGatewayTest, HostileParameterNamesAndValuesGiveValidProblems) {
  const std::string hostile = std::string("a\"b\\c\nd\xff") + std::string(1, '\0') + "e";
  for (const Pairs& query : {Pairs{{hostile, "1"}}, Pairs{{"sort", hostile}},
                             Pairs{{"page_size", std::string(5000, '9')}}}) {
    const HttpResponse r = Get("/api/v1/files", query);
    EXPECT_EQ(r.status, 400);
    const google::protobuf::Struct problem = ParseObject(r.body);
    EXPECT_LT(Str(problem, "detail").size(), 300u);
  }
}

// --- /api/v1/search --------------------------------------------------------

TEST_F(RestGatewayTest, SearchAnswersProtobufJsonWithServedBy) {
  const HttpResponse r = Get("/api/v1/search", {{"q", "*.txt"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const auto found = ParseMessage<v1::SearchResponse>(r.body);
  EXPECT_THAT(testing::Paths(found.matches()),
              UnorderedElementsAre("docs/a.txt", "docs/sub/deep.txt", "plain.txt"));
  const google::protobuf::Struct object = ParseObject(r.body);
  EXPECT_EQ(Str(object, "served_by"), "in-memory");
  EXPECT_FALSE(object.fields().at("truncated").bool_value());
  EXPECT_EQ(Str(object, "truncation_reason"), "TRUNCATION_REASON_UNSPECIFIED");
  EXPECT_EQ(object.fields().count("scanned_entries"), 1u);
}

TEST_F(RestGatewayTest, SearchParameters) {
  auto paths = [this](const Pairs& query) {
    const HttpResponse r = Get("/api/v1/search", query);
    EXPECT_EQ(r.status, 200) << r.body;
    return testing::Paths(ParseMessage<v1::SearchResponse>(r.body).matches());
  };
  EXPECT_THAT(paths({{"q", "*.txt"}, {"case_insensitive", "true"}}),
              UnorderedElementsAre("docs/a.txt", "docs/C.TXT", "docs/sub/deep.txt", "plain.txt"));
  EXPECT_THAT(paths({{"q", "*.txt"}, {"case_insensitive", "0"}}),
              UnorderedElementsAre("docs/a.txt", "docs/sub/deep.txt", "plain.txt"));
  EXPECT_THAT(paths({{"q", "eep"}, {"syntax", "substring"}}), ElementsAre("docs/sub/deep.txt"));
  EXPECT_THAT(paths({{"q", "^[ab]\\."}, {"syntax", "regex"}}),
              UnorderedElementsAre("docs/a.txt", "docs/b.csv"));
  EXPECT_THAT(paths({{"q", "*"}, {"syntax", "glob"}, {"path", "docs"}, {"max_depth", "1"}}),
              UnorderedElementsAre("docs/a.txt", "docs/b.csv", "docs/C.TXT", "docs/sub"));
  EXPECT_THAT(paths({{"q", "*"}, {"type", "directory"}}),
              UnorderedElementsAre("docs", "docs/sub", "bin\xff"));
  EXPECT_THAT(paths({{"q", "*"}, {"type", "symlink"}}), ElementsAre("outside"));
  EXPECT_THAT(paths({{"q", "*"}, {"type", "file"}, {"path", "docs/sub"}}),
              ElementsAre("docs/sub/deep.txt"));
  EXPECT_THAT(paths({{"q", "*"}, {"type", "other"}}), ElementsAre());
  EXPECT_THAT(paths({{"q", ".s*"}, {"hidden", "true"}}), ElementsAre("docs/.secret"));
  EXPECT_THAT(paths({{"q", ".s*"}, {"hidden", "false"}}), ElementsAre());
  EXPECT_THAT(paths({{"q", "*"}, {"min_size", "10"}}),
              UnorderedElementsAre("docs/a.txt", "docs/b.csv"));
  EXPECT_THAT(paths({{"q", "*"}, {"max_size", "5"}}),
              UnorderedElementsAre("docs/C.TXT", "plain.txt", "bin\xff/inner"));
  EXPECT_THAT(paths({{"q", "*"}, {"min_size", "5"}, {"max_size", "10"}}),
              UnorderedElementsAre("docs/a.txt", "docs/C.TXT", "docs/sub/deep.txt"));
  EXPECT_THAT(paths({{"q", "*"}, {"path", "bin\xff"}}), ElementsAre("bin\xff/inner"));
  // The tree has no mount point: the same answer either way.
  EXPECT_THAT(paths({{"q", "*.txt"}, {"one_file_system", "true"}}),
              UnorderedElementsAre("docs/a.txt", "docs/sub/deep.txt", "plain.txt"));
  EXPECT_THAT(paths({{"q", "*.txt"}, {"one_file_system", "0"}}),
              UnorderedElementsAre("docs/a.txt", "docs/sub/deep.txt", "plain.txt"));

  const HttpResponse limited = Get("/api/v1/search", {{"q", "*.txt"}, {"max_results", "1"}});
  ASSERT_EQ(limited.status, 200) << limited.body;
  const auto truncated = ParseMessage<v1::SearchResponse>(limited.body);
  EXPECT_EQ(truncated.matches_size(), 1);
  EXPECT_TRUE(truncated.truncated());
  EXPECT_EQ(truncated.truncation_reason(), v1::TRUNCATION_REASON_MAX_RESULTS);
  EXPECT_EQ(Get("/api/v1/search", {{"q", "*"}, {"max_results", "100000"}}).status, 200);
  EXPECT_EQ(Get("/api/v1/search", {{"q", "*"}, {"max_depth", "4294967295"}}).status, 200);
}

TEST_F(RestGatewayTest, SearchRejectsEveryMalformedParameter) {
  const std::string search = "/api/v1/search";
  ExpectBadParameter(search, {}, "q");
  ExpectBadParameter(search, {{"q", ""}}, "q");
  ExpectBadParameter(search, {{"q", "\xff*"}}, "q");
  ExpectBadParameter(search, {{"q", "a"}, {"q", "b"}}, "q");
  ExpectBadParameter(search, {{"q", "a"}, {"syntax", "wildcard"}}, "syntax");
  ExpectBadParameter(search, {{"q", "a"}, {"type", "dir"}}, "type");
  ExpectBadParameter(search, {{"q", "a"}, {"type", "any"}}, "type");
  ExpectBadParameter(search, {{"q", "a"}, {"case_insensitive", "no"}}, "case_insensitive");
  ExpectBadParameter(search, {{"q", "a"}, {"hidden", "2"}}, "hidden");
  ExpectBadParameter(search, {{"q", "a"}, {"one_file_system", "yes"}}, "one_file_system");
  ExpectBadParameter(search, {{"q", "a"}, {"max_depth", "0"}}, "max_depth");
  ExpectBadParameter(search, {{"q", "a"}, {"max_depth", "4294967296"}}, "max_depth");
  ExpectBadParameter(search, {{"q", "a"}, {"max_results", "0"}}, "max_results");
  ExpectBadParameter(search, {{"q", "a"}, {"max_results", "100001"}}, "max_results");
  ExpectBadParameter(search, {{"q", "a"}, {"min_size", "-1"}}, "min_size");
  ExpectBadParameter(search, {{"q", "a"}, {"max_size", "1k"}}, "max_size");
  ExpectBadParameter(search, {{"q", "a"}, {"max_size", "18446744073709551616"}}, "max_size");
  ExpectBadParameter(search, {{"q", "a"}, {"page_size", "1"}}, "page_size");
  ExpectBadParameter(search, {{"q", "a"}, {"pattern", "a"}}, "pattern");
  EXPECT_EQ(Get(search, {{"q", "a"}, {"max_size", "18446744073709551615"}}).status, 200);
  EXPECT_THAT(Str(ParseObject(Get(search, {{"q", "a"}, {"type", "x"}}).body), "detail"),
              HasSubstr("file, directory, symlink, other"));
  EXPECT_THAT(Str(ParseObject(Get(search, {{"q", "a"}, {"syntax", "x"}}).body), "detail"),
              HasSubstr("glob, substring, regex"));
  // Checked by the service, answered with its status.
  EXPECT_EQ(StatusAndCode(Get(search, {{"q", "a"}, {"min_size", "9"}, {"max_size", "1"}})),
            std::make_pair(400, std::string("INVALID_ARGUMENT")));
  EXPECT_EQ(StatusAndCode(Get(search, {{"q", "(unclosed"}, {"syntax", "regex"}})),
            std::make_pair(400, std::string("INVALID_ARGUMENT")));
}

// --- status mapping ----------------------------------------------------------

TEST_F(RestGatewayTest, ServiceErrorsMapToTheirHttpStatus) {
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files", {{"path", "missing"}})),
            std::make_pair(404, std::string("NOT_FOUND")));
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files", {{"path", "plain.txt"}})),
            std::make_pair(400, std::string("FAILED_PRECONDITION")));
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files", {{"path", "../etc"}})),
            std::make_pair(400, std::string("INVALID_ARGUMENT")));
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files", {{"path", "/etc"}})),
            std::make_pair(400, std::string("INVALID_ARGUMENT")));
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files", {{"path", std::string("a\0b", 3)}})),
            std::make_pair(400, std::string("INVALID_ARGUMENT")));
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files", {{"path", "outside"}})),
            std::make_pair(403, std::string("PERMISSION_DENIED")));
  EXPECT_EQ(StatusAndCode(Get("/api/v1/search", {{"q", "*"}, {"path", "missing"}})),
            std::make_pair(404, std::string("NOT_FOUND")));
  const HttpResponse r = Get("/api/v1/files", {{"path", "missing"}});
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_EQ(Str(ParseObject(r.body), "instance"), "/api/v1/files");
  EXPECT_EQ(Str(ParseObject(r.body), "title"), "Not Found");
}

TEST_F(RestGatewayTest, TransportAndHandlerStatusesMapToo) {
  // Handlers that answer with a given status, or with bytes that do not parse.
  auto serve = [](absl::Status status) {
    return [status](InMemoryTransport& t) {
      t.Register(kListMethod, [status](const std::string&, absl::Time) {
        return absl::StatusOr<std::string>(status);
      });
    };
  };
  const std::vector<std::pair<absl::Status, std::pair<int, std::string>>> cases = {
      {absl::ResourceExhaustedError("too busy"), {503, "RESOURCE_EXHAUSTED"}},
      {absl::UnauthenticatedError("who"), {401, "UNAUTHENTICATED"}},
      {absl::InternalError("bug"), {500, "INTERNAL"}},
      {absl::AlreadyExistsError("dup"), {409, "ALREADY_EXISTS"}},
  };
  for (const auto& [status, expected] : cases) {
    Backend b = MakeBackend(false, serve(status));
    lister_client_ = std::make_shared<FileListerClient>(b.channel);
    Rebuild();
    EXPECT_EQ(StatusAndCode(Get("/api/v1/files")), expected) << status;
  }

  Backend garbage = MakeBackend(false, [](InMemoryTransport& t) {
    t.Register(kListMethod, [](const std::string&, absl::Time) {
      return absl::StatusOr<std::string>(std::string("\xff\xff\xff", 3));
    });
  });
  lister_client_ = std::make_shared<FileListerClient>(garbage.channel);
  Rebuild();
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files")), std::make_pair(500, std::string("INTERNAL")));

  Backend unserved = MakeBackend(false, [](InMemoryTransport&) {});
  lister_client_ = std::make_shared<FileListerClient>(unserved.channel);
  Rebuild();
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files")), std::make_pair(501, std::string("UNIMPLEMENTED")));

  Backend down = MakeBackend(false, [this](InMemoryTransport& t) { t.ServeFileLister(*lister_); });
  down.primary->SetUnavailable(true);
  lister_client_ = std::make_shared<FileListerClient>(down.channel);
  Rebuild();
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files")), std::make_pair(503, std::string("UNAVAILABLE")));
}

// A client is told what failed in words it can act on, with the request id;
// peer addresses and broker details go to the log only. A service's own
// answer goes out as it is.
TEST_F(RestGatewayTest, BackendFailuresKeepTransportInternalsOutOfTheProblem) {
  const std::string internals =
      "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:10.1.2.3:50051: "
      "Socket closed; AMQP broker amqp://mserv1:***@broker.internal:5672/prod not connected";
  auto serve = [](absl::Status status) {
    return [status](InMemoryTransport& t) {
      t.Register(kListMethod, [status](const std::string&, absl::Time) {
        return absl::StatusOr<std::string>(status);
      });
    };
  };
  for (const absl::Status& failure :
       {absl::UnavailableError(internals), absl::InternalError(internals),
        absl::DeadlineExceededError(internals), absl::AbortedError(internals)}) {
    SCOPED_TRACE(failure.ToString());
    Backend b = MakeBackend(false, serve(failure));
    lister_client_ = std::make_shared<FileListerClient>(b.channel);
    Rebuild();
    CapturedLog log;
    const HttpResponse r = Get("/api/v1/files", {}, {{"x-request-id", "req-42"}});
    EXPECT_EQ(Str(ParseObject(r.body), "code"), absl::StatusCodeToString(failure.code()));
    const std::string detail = Str(ParseObject(r.body), "detail");
    EXPECT_THAT(detail, HasSubstr("the list service"));
    EXPECT_THAT(detail, HasSubstr("request req-42"));
    for (const char* secret : {"10.1.2.3", "broker.internal", "mserv1", "prod"}) {
      EXPECT_THAT(r.body, ::testing::Not(HasSubstr(secret)));
    }
    ASSERT_EQ(log.Events("backend_failed").size(), 1u);
    EXPECT_THAT(log.Events("backend_failed")[0], HasSubstr("request_id=req-42"));
    EXPECT_THAT(log.Events("backend_failed")[0], HasSubstr("10.1.2.3"));
  }
  Backend b = MakeBackend(false, serve(absl::NotFoundError("no directory \"docs/x\"")));
  lister_client_ = std::make_shared<FileListerClient>(b.channel);
  Rebuild();
  EXPECT_EQ(Str(ParseObject(Get("/api/v1/files").body), "detail"), "no directory \"docs/x\"");
}

TEST_F(RestGatewayTest, DeadlineThatPassesIs504) {
  options_.request_timeout = absl::ZeroDuration();
  Rebuild();
  EXPECT_EQ(StatusAndCode(Get("/api/v1/search", {{"q", "*"}})),
            std::make_pair(504, std::string("DEADLINE_EXCEEDED")));
}

TEST_F(RestGatewayTest, MissingBackendIs503) {
  lister_client_ = nullptr;
  Rebuild();
  const HttpResponse r = Get("/api/v1/files");
  EXPECT_EQ(StatusAndCode(r), std::make_pair(503, std::string("UNAVAILABLE")));
  EXPECT_EQ(Str(ParseObject(r.body), "detail"), "no lister configured");
  EXPECT_EQ(Get("/api/v1/search", {{"q", "*"}}).status, 200);

  lister_client_ = std::make_shared<FileListerClient>(list_backend_.channel);
  searcher_client_ = nullptr;
  Rebuild();
  EXPECT_EQ(Str(ParseObject(Get("/api/v1/search", {{"q", "*"}}).body), "detail"),
            "no searcher configured");
  EXPECT_EQ(Get("/api/v1/files").status, 200);
}

TEST_F(RestGatewayTest, FailedOverCallsSayWhichTransportServed) {
  list_backend_.primary->SetUnavailable(true);
  const HttpResponse r = Get("/api/v1/files", {{"path", "docs"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(list_backend_.fallback->calls(), 1u);
  EXPECT_EQ(Str(ParseObject(r.body), "served_by"), "in-memory");
}

// --- routing -----------------------------------------------------------------

TEST_F(RestGatewayTest, UnknownPathsAre404) {
  for (const std::string path :
       {"/api", "/api/v1/openapi.yaml/", "/api/v1/openapi.json", "/api/v1", "/api/v1/files/",
        "/api/v1/Files", "/api/v2/files", "/healthz/", "/nope", "", "api/v1/files"}) {
    const HttpResponse r = Get(path);
    EXPECT_EQ(StatusAndCode(r), std::make_pair(404, std::string("NOT_FOUND"))) << path;
    EXPECT_EQ(FindHeader(r, "Allow"), nullptr);
  }
}

TEST_F(RestGatewayTest, OtherMethodsAre405WithAllow) {
  for (const std::string method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "BREW"}) {
    for (const std::string path : {"/api/v1/files", "/api/v1/search", "/healthz", "/readyz",
                                   "/metrics", "/api/v1/operations/x"}) {
      const HttpResponse r = Call(method, path);
      EXPECT_EQ(r.status, 405) << method << " " << path;
      EXPECT_EQ(HeaderOr(r, "Allow"), "GET, HEAD");
      const google::protobuf::Struct problem = ParseObject(r.body);
      EXPECT_EQ(problem.fields().at("status").number_value(), 405);
      EXPECT_EQ(Str(problem, "title"), "Method Not Allowed");
    }
  }
  EXPECT_EQ(list_backend_.primary->calls(), 0u);
}

TEST_F(RestGatewayTest, HeadIsAnsweredAsGet) {
  const HttpResponse head = Call("HEAD", "/api/v1/files", {{"path", "docs"}});
  const HttpResponse get = Get("/api/v1/files", {{"path", "docs"}});
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.content_type, get.content_type);
  EXPECT_EQ(head.body, get.body);
  EXPECT_EQ(Call("HEAD", "/healthz").status, 200);
}

// --- /healthz, /readyz -------------------------------------------------------

// The page, its assets and the OpenAPI document come from the binary.
std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(FILEMESH_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void ExpectSecurityHeaders(const HttpResponse& r) {
  EXPECT_THAT(HeaderOr(r, "Content-Security-Policy"), ::testing::StartsWith("default-src 'self'"));
  EXPECT_THAT(HeaderOr(r, "Content-Security-Policy"), HasSubstr("frame-ancestors 'none'"));
  EXPECT_EQ(HeaderOr(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_NE(FindHeader(r, "X-Request-Id"), nullptr);
}

TEST_F(RestGatewayTest, ThePageAndItsAssetsAreTheFilesCompiledIn) {
  const struct {
    std::string route;
    std::string file;
    std::string content_type;
  } assets[] = {
      {"/", "src/rest/ui/index.html", "text/html; charset=utf-8"},
      {"/ui/app.js", "src/rest/ui/app.js", "text/javascript; charset=utf-8"},
      {"/ui/style.css", "src/rest/ui/style.css", "text/css; charset=utf-8"},
      {"/ui/icon.svg", "src/rest/ui/icon.svg", "image/svg+xml"},
  };
  size_t total = 0;
  for (const auto& asset : assets) {
    SCOPED_TRACE(asset.route);
    const HttpResponse r = Get(asset.route);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, asset.content_type);
    const std::string file = ReadSourceFile(asset.file);
    ASSERT_FALSE(file.empty());
    EXPECT_EQ(r.body, file);
    EXPECT_EQ(HeaderOr(r, "Cache-Control"), "no-cache");
    ExpectSecurityHeaders(r);
    total += r.body.size();
    // Strict like every route: no parameters, GET and HEAD only.
    ExpectBadParameter(asset.route, {{"path", "docs"}}, "path");
    EXPECT_EQ(Call("POST", asset.route).status, 405);
    EXPECT_EQ(Call("HEAD", asset.route).status, 200);
  }
  EXPECT_LT(total, 100U * 1024) << "the page should stay small";
}

TEST_F(RestGatewayTest, ThePageRunsNoInlineCode) {
  // Content-Security-Policy: default-src 'self' forbids inline script and
  // style; the page must work under it, so it has none.
  const std::string page = Get("/").body;
  EXPECT_THAT(page, HasSubstr("<script src=\"/ui/app.js\""));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("<script>")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("<style")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr(" style=")));
  EXPECT_THAT(page, ::testing::Not(::testing::ContainsRegex(" on[a-z]+=")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("http://")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("https://")));
  // The script builds the page from text only.
  const std::string script = Get("/ui/app.js").body;
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                           "eval(", "new Function"}) {
    EXPECT_THAT(script, ::testing::Not(HasSubstr(sink))) << sink;
  }
}

TEST_F(RestGatewayTest, UnknownAssetsAndOtherPathsAre404) {
  for (const std::string path : {"/ui/", "/ui", "/ui/nope.js", "/ui/app.js/", "/index.html",
                                 "/favicon.ico", "/ui/../ui/app.js", "/UI/app.js"}) {
    SCOPED_TRACE(path);
    const HttpResponse r = Get(path);
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.content_type, "application/problem+json");
    ExpectSecurityHeaders(r);
  }
}

TEST_F(RestGatewayTest, TheOpenApiDocumentIsServedAsWritten) {
  const HttpResponse r = Get("/api/v1/openapi.yaml");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/yaml");
  const std::string file = ReadSourceFile("docs/openapi.yaml");
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(r.body, file);
  EXPECT_THAT(r.body, ::testing::StartsWith("openapi: 3.1"));
  ExpectSecurityHeaders(r);
  ExpectBadParameter("/api/v1/openapi.yaml", {{"format", "json"}}, "format");
}

TEST_F(RestGatewayTest, TheOpenApiDocumentNamesEveryRoute) {
  // Each route the gateway answers is a key of the document's `paths`.
  const std::string spec = Get("/api/v1/openapi.yaml").body;
  for (const char* route :
       {"/api/v1/files", "/api/v1/search", "/api/v1/operations/{id}", "/api/v1/openapi.yaml",
        "/healthz", "/readyz", "/metrics", "/", "/ui/app.js", "/ui/style.css", "/ui/icon.svg"}) {
    EXPECT_THAT(spec, HasSubstr(absl::StrCat("\n  ", route, ":\n"))) << route;
  }
}

TEST_F(RestGatewayTest, WithoutTheUiOnlyTheApiIsServed) {
  options_.serve_ui = false;
  Rebuild();
  EXPECT_EQ(Get("/").status, 404);
  EXPECT_EQ(Get("/ui/app.js").status, 404);
  EXPECT_EQ(Get("/api/v1/openapi.yaml").status, 200);
}

TEST_F(RestGatewayTest, ThePageIsOpenButTheApiDocumentNeedsTheKey) {
  options_.api_key = "s3cret";
  Rebuild();
  EXPECT_EQ(Get("/").status, 200);
  EXPECT_EQ(Get("/ui/app.js").status, 200);
  const HttpResponse denied = Get("/api/v1/openapi.yaml");
  EXPECT_EQ(denied.status, 401);
  ExpectSecurityHeaders(denied);
  EXPECT_EQ(Get("/api/v1/openapi.yaml", {}, {{"authorization", "Bearer s3cret"}}).status, 200);
}

TEST_F(RestGatewayTest, EveryResponseCarriesTheSecurityHeaders) {
  ExpectSecurityHeaders(Get("/api/v1/files", {{"path", "docs"}}));
  ExpectSecurityHeaders(Get("/api/v1/search", {{"q", "*.txt"}}));
  ExpectSecurityHeaders(Get("/api/v1/files", {{"page_size", "0"}}));
  ExpectSecurityHeaders(Get("/healthz"));
  ExpectSecurityHeaders(Get("/metrics"));
  ExpectSecurityHeaders(Call("DELETE", "/api/v1/files"));
}

TEST_F(RestGatewayTest, HealthzIsAlwaysOk) {
  list_backend_.primary->SetUnavailable(true);
  list_backend_.fallback->SetUnavailable(true);
  const HttpResponse r = Get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(Str(ParseObject(r.body), "status"), "ok");
  ExpectBadParameter("/healthz", {{"verbose", "1"}}, "verbose");
}

TEST_F(RestGatewayTest, ReadyzReportsEachBackend) {
  HttpResponse r = Get("/readyz");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(gateway_->Ready());
  google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_EQ(Str(body, "status"), "ready");
  const auto& lister = body.fields().at("backends").struct_value().fields().at("lister");
  const auto& fields = lister.struct_value().fields();
  EXPECT_TRUE(fields.at("configured").bool_value());
  EXPECT_TRUE(fields.at("ready").bool_value());
  EXPECT_TRUE(fields.at("grpc").struct_value().fields().at("configured").bool_value());
  EXPECT_TRUE(fields.at("grpc").struct_value().fields().at("available").bool_value());
  EXPECT_TRUE(fields.at("broker").struct_value().fields().at("configured").bool_value());
  EXPECT_TRUE(fields.at("broker").struct_value().fields().at("connected").bool_value());
  EXPECT_EQ(fields.at("breaker").string_value(), "closed");

  // The primary down: the fallback can still deliver.
  list_backend_.primary->SetUnavailable(true);
  r = Get("/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  body = ParseObject(r.body);
  const auto& down = body.fields().at("backends").struct_value().fields().at("lister");
  EXPECT_FALSE(
      down.struct_value().fields().at("grpc").struct_value().fields().at("available").bool_value());

  EXPECT_EQ(Str(body, "status"), "ready");
  EXPECT_EQ(body.fields().at("missing").list_value().values_size(), 0);

  // Both down: nothing can serve the lister, the searcher still answers:
  // degraded (200), and `missing` names the lister.
  list_backend_.fallback->SetUnavailable(true);
  r = Get("/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(gateway_->Ready());
  body = ParseObject(r.body);
  EXPECT_EQ(Str(body, "status"), "degraded");
  ASSERT_EQ(body.fields().at("missing").list_value().values_size(), 1);
  EXPECT_EQ(body.fields().at("missing").list_value().values(0).string_value(), "lister");
  EXPECT_FALSE(body.fields()
                   .at("backends")
                   .struct_value()
                   .fields()
                   .at("lister")
                   .struct_value()
                   .fields()
                   .at("ready")
                   .bool_value());
  EXPECT_TRUE(body.fields()
                  .at("backends")
                  .struct_value()
                  .fields()
                  .at("searcher")
                  .struct_value()
                  .fields()
                  .at("ready")
                  .bool_value());
  ExpectBadParameter("/readyz", {{"x", "1"}}, "x");
}

TEST_F(RestGatewayTest, ReadyzShowsAnOpenBreakerAndAMissingFallback) {
  Backend only_primary =
      MakeBackend(false, [this](InMemoryTransport& t) { t.ServeFileLister(*lister_); });
  lister_client_ = std::make_shared<FileListerClient>(only_primary.channel);
  searcher_client_ = nullptr;
  Rebuild();
  only_primary.primary->SetUnavailable(true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get("/api/v1/files").status, 503);
  only_primary.primary->SetUnavailable(false);
  const HttpResponse r = Get("/readyz");
  EXPECT_EQ(r.status, 503) << r.body;  // the breaker is open and there is no fallback
  const google::protobuf::Struct body = ParseObject(r.body);
  const auto& backends = body.fields().at("backends").struct_value().fields();
  const auto& lister = backends.at("lister").struct_value().fields();
  EXPECT_EQ(lister.at("breaker").string_value(), "open");
  EXPECT_FALSE(lister.at("broker").struct_value().fields().at("configured").bool_value());
  EXPECT_FALSE(backends.at("searcher").struct_value().fields().at("configured").bool_value());
}

TEST_F(RestGatewayTest, ReadyzWithoutAnyBackendIs503) {
  lister_client_ = nullptr;
  searcher_client_ = nullptr;
  Rebuild();
  const HttpResponse r = Get("/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(gateway_->Ready());
  const google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_EQ(Str(body, "status"), "unavailable");
  EXPECT_EQ(body.fields().at("missing").list_value().values_size(), 2);
}

// A gateway with a lister only (a newcomer's first start): /readyz is 200
// but says the searcher is missing, as the 503 of every search does.
TEST_F(RestGatewayTest, ReadyzNamesABackendThatIsNotConfigured) {
  searcher_client_ = nullptr;
  Rebuild();
  const HttpResponse r = Get("/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  const google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_EQ(Str(body, "status"), "degraded");
  ASSERT_EQ(body.fields().at("missing").list_value().values_size(), 1);
  EXPECT_EQ(body.fields().at("missing").list_value().values(0).string_value(), "searcher");
  EXPECT_EQ(Get("/api/v1/search", {{"q", "*"}}).status, 503);
}

// --- authentication ----------------------------------------------------------

TEST_F(RestGatewayTest, ApiKeyGuardsApiRoutesOnly) {
  options_.api_key = "s3cret-key";
  Rebuild();
  auto expect_401 = [this](const Pairs& headers, const std::string& path) {
    const HttpResponse r = Get(path, {}, headers);
    EXPECT_EQ(StatusAndCode(r), std::make_pair(401, std::string("UNAUTHENTICATED"))) << path;
    EXPECT_EQ(HeaderOr(r, "WWW-Authenticate"), "Bearer realm=\"filemesh\"");
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("s3cret")));
  };
  for (const std::string path :
       {"/api/v1/files", "/api/v1/search", "/api/v1/operations/x", "/api/unknown"}) {
    expect_401({}, path);
    expect_401({{"authorization", "Bearer wrong"}}, path);
    expect_401({{"authorization", "Bearer s3cret-ke"}}, path);
    expect_401({{"authorization", "Bearer s3cret-key2"}}, path);
    expect_401({{"authorization", "Bearer "}}, path);
    expect_401({{"authorization", "Basic s3cret-key"}}, path);
    expect_401({{"authorization", "s3cret-key"}}, path);
    expect_401({{"authorization", "Bearer  s3cret-key"}}, path);
  }
  EXPECT_EQ(list_backend_.primary->calls(), 0u);
  EXPECT_EQ(Get("/api/v1/files", {}, {{"authorization", "Bearer s3cret-key"}}).status, 200);
  EXPECT_EQ(Get("/api/v1/files", {}, {{"authorization", "bearer s3cret-key"}}).status, 200);
  EXPECT_EQ(Get("/api/v1/search", {{"q", "*"}}, {{"authorization", "Bearer s3cret-key"}}).status,
            200);
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/readyz").status, 200);
  EXPECT_EQ(Get("/metrics").status, 200);
}

// DNS rebinding: a page whose domain now resolves to the gateway sends its
// own name as Host.
TEST_F(RestGatewayTest, OtherHostsAre421ButHealthzAnswersAnyHost) {
  options_.allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};
  Rebuild();
  const HttpResponse rebound = Get("/api/v1/files", {}, {{"host", "evil.example:8080"}});
  EXPECT_EQ(StatusAndCode(rebound), std::make_pair(421, std::string("PERMISSION_DENIED")));
  EXPECT_THAT(rebound.body, HasSubstr("evil.example"));
  EXPECT_THAT(rebound.body, HasSubstr("Misdirected Request"));
  EXPECT_EQ(Get("/", {}, {{"host", "evil.example"}}).status, 421);
  EXPECT_EQ(Get("/healthz", {}, {{"host", "evil.example"}}).status, 200);
  for (const std::string host : {"localhost", "LocalHost:8080", "127.0.0.1:80", "[::1]:8080"}) {
    EXPECT_EQ(Get("/api/v1/files", {}, {{"host", host}}).status, 200) << host;
  }
  EXPECT_EQ(Get("/api/v1/files").status, 200);  // no Host at all (HTTP/1.0)
  options_.allowed_hosts = {"*"};
  Rebuild();
  EXPECT_EQ(Get("/api/v1/files", {}, {{"host", "evil.example"}}).status, 200);
}

TEST_F(RestGatewayTest, WithoutApiKeyNoAuthorizationIsNeeded) {
  EXPECT_EQ(Get("/api/v1/files", {}, {{"authorization", "Bearer anything"}}).status, 200);
  EXPECT_EQ(Get("/api/v1/files").status, 200);
}

// --- request ids -------------------------------------------------------------

TEST_F(RestGatewayTest, RequestIdIsEchoedOrGenerated) {
  const std::string given = "abc-123_X.y:z";
  EXPECT_EQ(HeaderOr(Get("/healthz", {}, {{"x-request-id", given}}), "X-Request-Id"), given);
  const std::string longest(128, 'a');
  EXPECT_EQ(HeaderOr(Get("/api/v1/files", {}, {{"x-request-id", longest}}), "X-Request-Id"),
            longest);
  // Also on errors.
  EXPECT_EQ(HeaderOr(Get("/nope", {}, {{"x-request-id", given}}), "X-Request-Id"), given);

  const std::string a = HeaderOr(Get("/healthz"), "X-Request-Id");
  const std::string b = HeaderOr(Get("/healthz"), "X-Request-Id");
  EXPECT_THAT(a, ::testing::MatchesRegex("[0-9a-f]{32}"));
  EXPECT_THAT(b, ::testing::MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(a, b);
}

TEST_F(RestGatewayTest, MalformedRequestIdIs400WithAGeneratedId) {
  for (const std::string& bad :
       {std::string(), std::string(129, 'a'), std::string("has space"), std::string("new\nline"),
        std::string("slash/"), std::string("\xff"), std::string("quote\"")}) {
    const HttpResponse r = Get("/api/v1/files", {}, {{"x-request-id", bad}});
    EXPECT_EQ(StatusAndCode(r), std::make_pair(400, std::string("INVALID_ARGUMENT")));
    EXPECT_THAT(Str(ParseObject(r.body), "detail"), HasSubstr("X-Request-Id"));
    EXPECT_THAT(HeaderOr(r, "X-Request-Id"), ::testing::MatchesRegex("[0-9a-f]{32}"));
  }
  EXPECT_EQ(list_backend_.primary->calls(), 0u);
}

// --- queued operations -------------------------------------------------------

class RestGatewayOperationTest : public RestGatewayTest {
 protected:
  // Every call fails over and ends queued on the fallback.
  void QueueEverything() {
    for (Backend* b : {&list_backend_, &search_backend_}) {
      b->primary->SetUnavailable(true);
      b->fallback->SetQueueing(true);
    }
  }

  // The operation path of a 202 (checked).
  std::string Accepted(const HttpResponse& r) {
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    const std::string location = HeaderOr(r, "Location");
    EXPECT_THAT(location, ::testing::MatchesRegex("/api/v1/operations/[0-9a-f]{32}"));
    EXPECT_EQ(Str(ParseObject(r.body), "operation"), location);
    return location;
  }
};

TEST_F(RestGatewayOperationTest, QueuedListCompletesLater) {
  QueueEverything();
  const std::string operation = Accepted(Get("/api/v1/files", {{"path", "docs"}}));

  HttpResponse r = Get(operation);
  ASSERT_EQ(r.status, 200) << r.body;
  google::protobuf::Struct body = ParseObject(r.body);
  // AIP-151: name, done, metadata; neither response nor error yet.
  EXPECT_EQ("/api/v1/" + Str(body, "name"), operation);
  EXPECT_FALSE(body.fields().at("done").bool_value());
  EXPECT_EQ(body.fields().count("response"), 0u);
  EXPECT_EQ(body.fields().count("error"), 0u);
  const google::protobuf::Struct pending = body.fields().at("metadata").struct_value();
  EXPECT_EQ(Str(pending, "kind"), "list");
  EXPECT_EQ(Str(pending, "served_by"), "in-memory");
  EXPECT_THAT(Str(pending, "create_time"),
              ::testing::MatchesRegex("20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:.]+Z"));
  EXPECT_EQ(Str(pending, "update_time"), Str(pending, "create_time"));

  list_backend_.fallback->DeliverQueued();
  r = Get(operation);
  ASSERT_EQ(r.status, 200) << r.body;
  body = ParseObject(r.body);
  EXPECT_TRUE(body.fields().at("done").bool_value());
  EXPECT_EQ(Str(body, "served_by"), "in-memory");
  const google::protobuf::Struct& done = body.fields().at("metadata").struct_value();
  EXPECT_EQ(Str(done, "create_time"), Str(pending, "create_time"));
  EXPECT_GE(Str(done, "update_time"), Str(done, "create_time"));
  std::string response_json;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(body.fields().at("response"), &response_json)
          .ok());
  EXPECT_THAT(Names(ParseMessage<v1::ListResponse>(response_json).entries()),
              ElementsAre("C.TXT", "a.txt", "b.csv", "sub"));

  // The finished answer stays the same (the channel's copy was taken).
  EXPECT_EQ(Get(operation).body, r.body);
  EXPECT_EQ(Get(operation).status, 200);
}

TEST_F(RestGatewayOperationTest, QueuedSearchCompletesLater) {
  QueueEverything();
  const std::string operation = Accepted(Get("/api/v1/search", {{"q", "*.csv"}}));
  EXPECT_FALSE(ParseObject(Get(operation).body).fields().at("done").bool_value());
  search_backend_.fallback->DeliverQueued();
  const HttpResponse r = Get(operation);
  ASSERT_EQ(r.status, 200) << r.body;
  const google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_TRUE(body.fields().at("done").bool_value());
  std::string response_json;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(body.fields().at("response"), &response_json)
          .ok());
  EXPECT_THAT(testing::Paths(ParseMessage<v1::SearchResponse>(response_json).matches()),
              ElementsAre("docs/b.csv"));
}

TEST_F(RestGatewayOperationTest, QueuedCallThatFailsAnswersItsError) {
  QueueEverything();
  const std::string operation = Accepted(Get("/api/v1/files", {{"path", "missing"}}));
  list_backend_.fallback->DeliverQueued();
  // The operation was found: 200, done, with the call's error (AIP-151's
  // google.rpc.Status: the code's number and name, and its message).
  const HttpResponse r = Get(operation);
  ASSERT_EQ(r.status, 200) << r.body;
  const google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_TRUE(body.fields().at("done").bool_value());
  EXPECT_EQ(body.fields().count("response"), 0u);
  const google::protobuf::Struct& error = body.fields().at("error").struct_value();
  EXPECT_EQ(error.fields().at("code").number_value(), 5);
  EXPECT_EQ(Str(error, "status"), "NOT_FOUND");
  EXPECT_THAT(Str(error, "message"), HasSubstr("missing"));
  EXPECT_EQ(Get(operation).body, r.body);
}

TEST_F(RestGatewayOperationTest, UnknownOrMalformedOperationsAre404) {
  QueueEverything();
  Accepted(Get("/api/v1/files"));
  for (const std::string& id :
       {std::string("0123456789abcdef0123456789abcdef"), std::string(), std::string("x"),
        std::string("0123456789ABCDEF0123456789ABCDEF"), std::string("../files"),
        std::string("0123456789abcdef0123456789abcdef/"), std::string("\xff\"\n")}) {
    const HttpResponse r = Get("/api/v1/operations/" + id);
    EXPECT_EQ(StatusAndCode(r), std::make_pair(404, std::string("NOT_FOUND"))) << id;
  }
}

TEST_F(RestGatewayOperationTest, OperationsTakeNoParameters) {
  QueueEverything();
  const std::string operation = Accepted(Get("/api/v1/files"));
  ExpectBadParameter(operation, {{"wait", "1"}}, "wait");
}

TEST_F(RestGatewayOperationTest, OperationsExpire) {
  options_.operation_ttl = absl::Nanoseconds(1);
  Rebuild();
  QueueEverything();
  const std::string operation = Accepted(Get("/api/v1/files"));
  EXPECT_EQ(Get(operation).status, 404);
}

// Finished answers are bounded in bytes too: past operation_max_bytes the
// oldest operation is forgotten, and counted.
TEST_F(RestGatewayOperationTest, OldestOperationIsForgottenPastTheByteBound) {
  QueueEverything();
  // The size of one finished answer (the reply message, as stored), with
  // the default bound.
  const std::string probe = Accepted(Get("/api/v1/files", {{"path", "docs"}}));
  list_backend_.fallback->DeliverQueued();
  std::string response_json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(
                  ParseObject(Get(probe).body).fields().at("response"), &response_json)
                  .ok());
  const size_t answer = ParseMessage<v1::ListResponse>(response_json).ByteSizeLong();
  ASSERT_GT(answer, 100u);
  options_.operation_max_bytes = answer + answer / 2;  // one fits, not two
  Rebuild();
  const std::string first = Accepted(Get("/api/v1/files", {{"path", "docs"}}));
  const std::string second = Accepted(Get("/api/v1/files", {{"path", "docs"}}));
  list_backend_.fallback->DeliverQueued();  // two answers stored: the first goes
  EXPECT_EQ(Get(first).status, 404);
  EXPECT_EQ(Get(second).status, 200);
  EXPECT_THAT(Get("/metrics").body, HasSubstr("filemesh_http_operations_evicted_total 1"));
}

TEST_F(RestGatewayOperationTest, OldestOperationIsForgottenPastTheCapacity) {
  options_.operation_capacity = 2;
  Rebuild();
  QueueEverything();
  const std::string first = Accepted(Get("/api/v1/files"));
  const std::string second = Accepted(Get("/api/v1/files", {{"path", "docs"}}));
  const std::string third = Accepted(Get("/api/v1/search", {{"q", "*"}}));
  EXPECT_EQ(Get(first).status, 404);
  EXPECT_EQ(Get(second).status, 200);
  EXPECT_EQ(Get(third).status, 200);
}

// --- operations in an SQLite file (operations_db) ------------------------------

class RestGatewayOperationsDbTest : public RestGatewayOperationTest {
 protected:
  RestGatewayOperationsDbTest() {
    options_.operations_db = db_dir_.Abs("operations.db");
    Rebuild();
  }

  // GET `path` from `gateway`.
  static HttpResponse GetFrom(RestGateway& gateway, const std::string& path) {
    HttpRequest request;
    request.method = "GET";
    request.path = path;
    request.remote_address = "127.0.0.1:40001";
    return gateway.Handle(request);
  }

  static bool Done(const HttpResponse& r) {
    return ParseObject(r.body).fields().at("done").bool_value();
  }

  testing::TestTree db_dir_;
};

// Gateway replicas on one database: the one whose channel takes the reply
// writes it, any other answers it.
TEST_F(RestGatewayOperationsDbTest, AnotherGatewayOnTheDatabaseAnswersTheOperation) {
  QueueEverything();
  const std::string operation = Accepted(Get("/api/v1/files", {{"path", "docs"}}));
  RestGateway other(options_, nullptr, nullptr);
  ASSERT_TRUE(other.status().ok()) << other.status();
  HttpResponse r = GetFrom(other, operation);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(Done(r));

  list_backend_.fallback->DeliverQueued();  // no GET on this gateway
  r = GetFrom(other, operation);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(Done(r)) << r.body;
  std::string response_json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(
                  ParseObject(r.body).fields().at("response"), &response_json)
                  .ok());
  EXPECT_THAT(Names(ParseMessage<v1::ListResponse>(response_json).entries()),
              ElementsAre("C.TXT", "a.txt", "b.csv", "sub"));
  EXPECT_EQ(Get(operation).body, r.body) << "both gateways answer the same";
}

// A gateway that restarts on its database keeps its operations: the
// finished ones, and the pending ones, whose reply its channel takes later.
TEST_F(RestGatewayOperationsDbTest, OperationsOutliveTheGatewayThatMadeThem) {
  QueueEverything();
  const std::string finished = Accepted(Get("/api/v1/files", {{"path", "docs"}}));
  list_backend_.fallback->DeliverQueued();
  const std::string pending = Accepted(Get("/api/v1/search", {{"q", "*.csv"}}));
  const std::string finished_body = Get(finished).body;
  ASSERT_TRUE(Done(Get(finished)));

  gateway_.reset();
  Rebuild();
  EXPECT_EQ(Get(finished).body, finished_body);
  EXPECT_FALSE(Done(Get(pending)));
  search_backend_.fallback->DeliverQueued();
  const HttpResponse r = Get(pending);
  ASSERT_TRUE(Done(r)) << r.body;
  EXPECT_THAT(r.body, HasSubstr("docs/b.csv"));
}

// A database that fails under the gateway (here: its table dropped by
// another program) is a 503 that says so, never a 404 or a crash.
TEST_F(RestGatewayOperationsDbTest, ADatabaseThatFailsIs503) {
  QueueEverything();
  const std::string operation = Accepted(Get("/api/v1/files", {{"path", "docs"}}));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(options_.operations_db.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE operations", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  HttpResponse r = Get(operation);
  EXPECT_EQ(StatusAndCode(r), std::make_pair(503, std::string("UNAVAILABLE")));
  EXPECT_THAT(r.body, HasSubstr("cannot read its operations"));
  r = Get("/api/v1/files", {{"path", "docs"}});
  EXPECT_EQ(StatusAndCode(r), std::make_pair(503, std::string("UNAVAILABLE")));
  EXPECT_THAT(r.body, HasSubstr("could not record its operation"));
}

TEST_F(RestGatewayOperationsDbTest, ADatabaseThatCannotBeOpenedIsSaidAndServesNothing) {
  options_.operations_db = db_dir_.Abs("no-such-dir/operations.db");
  Rebuild();
  EXPECT_EQ(gateway_->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(gateway_->status().message()),
              HasSubstr("cannot open the operations database"));
  const HttpResponse r = Get("/api/v1/files");
  EXPECT_EQ(StatusAndCode(r), std::make_pair(503, std::string("UNAVAILABLE")));
  EXPECT_THAT(r.body, HasSubstr("operations database"));
  EXPECT_EQ(Get("/healthz").status, 200);
}

// --- metrics, access log, concurrency ------------------------------------------

// These read only statuses, headers and text, so they also run under
// ThreadSanitizer.
class RestGatewayObservabilityTest : public RestGatewayTest {
 protected:
  bool ReadsJson() const override { return false; }
};

// The value of the sample line that starts with `series` ("name{labels}").
double SampleValue(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  size_t at = 0;
  while ((at = text.find(prefix, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      return std::stod(text.substr(at + prefix.size(), text.find('\n', at) - at - prefix.size()));
    }
    at += prefix.size();
  }
  return -1;
}

// filemesh_http_requests_total's series for one label set, its labels in
// the order prometheus-cpp writes them (sorted by name).
std::string RequestsSeries(const std::string& route, int code, const std::string& served_by) {
  return absl::StrCat("filemesh_http_requests_total{code=\"", code, "\",route=\"", route,
                      "\",served_by=\"", served_by, "\"}");
}

TEST_F(RestGatewayObservabilityTest, MetricsCountRequestsByRouteCodeAndTransport) {
  for (int i = 0; i < 3; ++i) Get("/api/v1/files");
  Get("/api/v1/files", {{"path", "missing"}});
  Get("/api/v1/files", {{"sort", "bad"}});
  Get("/api/v1/search", {{"q", "*"}});
  Get("/nope/1");
  Get("/nope/2");
  Get("/api/v1/operations/0123456789abcdef0123456789abcdef");
  Call("POST", "/healthz");

  const HttpResponse r = Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4");
  const std::string& text = r.body;
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/files", 200, "in-memory")), 3);
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/files", 404, "in-memory")), 1);
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/files", 400, "none")), 1);
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/search", 200, "in-memory")), 1);
  EXPECT_EQ(SampleValue(text, RequestsSeries("other", 404, "none")), 2);
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/operations/{id}", 404, "none")), 1);
  EXPECT_EQ(SampleValue(text, RequestsSeries("/healthz", 405, "none")), 1);
  EXPECT_EQ(text.find("/nope"), std::string::npos);  // raw paths never become labels
  EXPECT_EQ(SampleValue(text,
                        "filemesh_http_request_duration_seconds_count{route=\"/api/v1/"
                        "files\"}"),
            5);
  EXPECT_EQ(SampleValue(text,
                        "filemesh_http_request_duration_seconds_bucket{route=\"/api/v1/"
                        "files\",le=\"+Inf\"}"),
            5);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_calls_total{backend=\"lister\"}"), 4);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_calls_total{backend=\"searcher\"}"), 1);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_served_by_primary_total{backend=\"lister\"}"), 4);
  EXPECT_EQ(
      SampleValue(text, "filemesh_channel_breaker_state{backend=\"lister\",state=\"closed\"}"), 1);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_breaker_state{backend=\"lister\",state=\"open\"}"),
            0);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_outbox_refused_total{backend=\"lister\"}"), 0);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_resent_total{backend=\"lister\"}"), 0);
  EXPECT_EQ(SampleValue(text, "filemesh_http_operations"), 0);
  // Every line is a comment or "series value".
  for (const std::string& line : {std::string("# TYPE filemesh_http_requests_total counter"),
                                  std::string("# TYPE filemesh_http_request_duration_seconds "
                                              "histogram"),
                                  std::string("# TYPE filemesh_channel_breaker_state gauge")}) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line;
  }
}

TEST_F(RestGatewayObservabilityTest, MetricsFollowFailoversQueuesAndTheBreaker) {
  list_backend_.primary->SetUnavailable(true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get("/api/v1/files").status, 200);
  list_backend_.fallback->SetQueueing(true);
  EXPECT_EQ(Get("/api/v1/files").status, 202);
  const std::string text = Get("/metrics").body;
  EXPECT_EQ(SampleValue(text, "filemesh_channel_calls_total{backend=\"lister\"}"), 4);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_served_by_fallback_total{backend=\"lister\"}"), 3);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_queued_total{backend=\"lister\"}"), 1);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_breaker_opened_total{backend=\"lister\"}"), 1);
  EXPECT_EQ(SampleValue(text, "filemesh_channel_breaker_state{backend=\"lister\",state=\"open\"}"),
            1);
  EXPECT_EQ(
      SampleValue(text, "filemesh_channel_breaker_state{backend=\"lister\",state=\"closed\"}"), 0);
  EXPECT_EQ(SampleValue(text, "filemesh_http_operations"), 1);
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/files", 202, "in-memory")), 1);
}

TEST_F(RestGatewayObservabilityTest, ApplicationsCanAddMetrics) {
  prometheus::BuildCounter()
      .Name("app_custom_total")
      .Help("Custom.")
      .Register(gateway_->metrics())
      .Add({})
      .Increment(7);
  EXPECT_EQ(SampleValue(Get("/metrics").body, "app_custom_total"), 7);
}

TEST_F(RestGatewayObservabilityTest, AccessLogHasOneLinePerRequestWithoutCredentials) {
  options_.access_log = true;
  options_.api_key = "very-secret-key";
  Rebuild();
  CapturedLog log;
  Get("/api/v1/files", {{"path", "docs"}},
      {{"authorization", "Bearer very-secret-key"}, {"x-request-id", "req-42"}});
  Get("/api/v1/files", {}, {{"authorization", "Bearer wrong-guess"}});
  const std::vector<std::string> lines = log.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("event=http_request"));
  EXPECT_THAT(lines[0], HasSubstr("request_id=req-42"));
  EXPECT_THAT(lines[0], HasSubstr("method=GET"));
  EXPECT_THAT(lines[0], HasSubstr("route=/api/v1/files"));
  EXPECT_THAT(lines[0], HasSubstr("path=/api/v1/files"));
  EXPECT_THAT(lines[0], HasSubstr("status=200"));
  EXPECT_THAT(lines[0], HasSubstr("served_by=in-memory"));
  EXPECT_THAT(lines[0], ::testing::ContainsRegex("duration_ms=[0-9]+\\.[0-9]{3}"));
  EXPECT_THAT(lines[1], HasSubstr("status=401"));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("secret")));
    EXPECT_THAT(line, ::testing::Not(HasSubstr("wrong-guess")));
  }
}

TEST_F(RestGatewayObservabilityTest, AccessLogCanBeTurnedOff) {
  CapturedLog log;
  Get("/healthz");
  EXPECT_TRUE(log.lines().empty());
}

TEST_F(RestGatewayObservabilityTest, HostilePathStaysOneLogLine) {
  options_.access_log = true;
  Rebuild();
  CapturedLog log;
  const HttpResponse r = Get("/x\ny=\"z\" \xff");
  EXPECT_EQ(r.status, 404);
  const std::vector<std::string> lines = log.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
  EXPECT_THAT(lines[0], HasSubstr("route=other"));
}

TEST_F(RestGatewayObservabilityTest, ConcurrentRequestsAreAllAnsweredAndCounted) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &failures] {
      for (int i = 0; i < kPerThread; ++i) {
        const HttpResponse r = t % 2 == 0 ? Get("/api/v1/files", {{"path", "docs"}})
                                          : Get("/api/v1/search", {{"q", "*.txt"}});
        if (r.status != 200) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0);
  const std::string text = Get("/metrics").body;
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/files", 200, "in-memory")),
            kThreads / 2 * kPerThread);
  EXPECT_EQ(SampleValue(text, RequestsSeries("/api/v1/search", 200, "in-memory")),
            kThreads / 2 * kPerThread);
}

TEST_F(RestGatewayObservabilityTest, ConcurrentPollsOfOneOperationAllGetTheSameAnswer) {
  list_backend_.primary->SetUnavailable(true);
  list_backend_.fallback->SetQueueing(true);
  const HttpResponse accepted = Get("/api/v1/files", {{"path", "docs"}});
  ASSERT_EQ(accepted.status, 202);
  const std::string operation = HeaderOr(accepted, "Location");
  list_backend_.fallback->DeliverQueued();

  constexpr int kThreads = 4;
  constexpr int kPolls = 25;
  std::vector<std::vector<HttpResponse>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &seen, &operation] {
      for (int i = 0; i < kPolls; ++i) seen[t].push_back(Get(operation));
    });
  }
  for (std::thread& thread : threads) thread.join();
  // The reply is taken from the channel once; every poll gets the cached answer.
  const std::string& first = seen[0][0].body;
  EXPECT_THAT(first, HasSubstr("\"done\":true"));
  for (const auto& responses : seen) {
    for (const HttpResponse& r : responses) {
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, first);
    }
  }
}

// A backend of the caller's own, with no FailoverChannel under it: the
// gateway needs only the asynchronous interface.
class DirectLister : public AsyncFileListerInterface {
 public:
  explicit DirectLister(const FileLister& lister) : lister_(lister) {}
  void ListAsync(const v1::ListRequest& request, absl::Time deadline,
                 ClientCallback<v1::ListResponse> done) const override {
    CallInfo info;
    info.served_by = TransportKind::kInMemory;
    info.attempts = 1;
    done(lister_.List(request, deadline), info);
  }

 private:
  const FileLister& lister_;
};

TEST(RestGatewayOnInterfacesTest, ServesABackendThatHasNoFailoverChannel) {
  testing::TestTree tree;
  tree.File("only.txt", 4);
  FileLister lister(tree.root());
  RestGatewayOptions options;
  options.access_log = false;
  RestGateway gateway(options, std::make_shared<DirectLister>(lister), nullptr);

  HttpRequest list;
  list.method = "GET";
  list.path = "/api/v1/files";
  const HttpResponse files = gateway.Handle(list);
  EXPECT_EQ(files.status, 200) << files.body;
  EXPECT_THAT(files.body, HasSubstr("\"only.txt\""));
  EXPECT_THAT(files.body, HasSubstr("\"served_by\":\"in-memory\""));

  HttpRequest ready;
  ready.method = "GET";
  ready.path = "/readyz";
  const HttpResponse readiness = gateway.Handle(ready);
  EXPECT_EQ(readiness.status, 200) << readiness.body;
  EXPECT_THAT(readiness.body, HasSubstr("\"lister\":{\"configured\":true,\"ready\":true}"));
  EXPECT_THAT(readiness.body, HasSubstr("\"searcher\":{\"configured\":false}"));

  HttpRequest operation;
  operation.method = "GET";
  operation.path = "/api/v1/operations/0123456789abcdef0123456789abcdef";
  EXPECT_EQ(gateway.Handle(operation).status, 404);
}

// --- named keys, scopes and the audit trail ----------------------------------

// The SHA-256 of "k-whole" and "k-docs" (printf %s KEY | sha256sum).
constexpr char kWholeDigest[] = "453102748208c388929dff5cda4fc0ac9d84afaa60b2f35b9dc1563dc16470cc";
constexpr char kDocsDigest[] = "7108f9d98d3f03270fe08301eb91289be3cce8330428f6eb1542d650b71c1b72";

Pairs Bearer(const std::string& key) { return {{"authorization", "Bearer " + key}}; }

class ApiKeysTest : public RestGatewayOperationTest {
 protected:
  // Most of these tests read statuses and files only: they run under
  // ThreadSanitizer too; those reading JSON say so with SkipWithoutJson().
  bool ReadsJson() const override { return false; }
  static bool SkipWithoutJson() { return !testing::kProtobufMapsUsable; }

  void SetUp() override {
    RestGatewayOperationTest::SetUp();
    keys_file_ = files_.Abs("keys");
    WriteKeys(absl::StrCat("# name   sha256   scope\n\nwhole ", Digest("k-whole"),
                           "\n  docs-only\t", Digest("k-docs"), "  ./docs/\n"));
    options_.api_keys_file = keys_file_;
    Rebuild();
    ASSERT_TRUE(gateway_->status().ok()) << gateway_->status();
  }

  // The digest as the operator computes it; checked once against sha256sum's.
  static std::string Digest(const std::string& key) {
    const std::string command = "printf %s '" + key + "' | sha256sum";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    char out[65] = {};
    if (pipe == nullptr || std::fread(out, 1, 64, pipe) != 64) ADD_FAILURE() << "sha256sum";
    if (pipe != nullptr) ::pclose(pipe);
    return out;
  }

  // Replaces the keys file in one step (a new file renamed over it).
  void WriteKeys(const std::string& text) {
    const std::string temporary = keys_file_ + ".new";
    std::ofstream(temporary, std::ios::binary | std::ios::trunc) << text;
    ASSERT_EQ(std::rename(temporary.c_str(), keys_file_.c_str()), 0);
  }

  testing::TestTree files_;
  std::string keys_file_;
};

TEST_F(ApiKeysTest, TheOperatorsDigestsAreSha256) {
  EXPECT_EQ(Digest("k-whole"), kWholeDigest);
  EXPECT_EQ(Digest("k-docs"), kDocsDigest);
}

TEST_F(ApiKeysTest, ANamedKeyReadsTheWholeTreeAndAScopedKeyOnlyItsScope) {
  if (SkipWithoutJson()) GTEST_SKIP() << "reads JSON through protobuf's Struct";
  EXPECT_EQ(Get("/api/v1/files", {{"path", "bin\xff"}}, Bearer("k-whole")).status, 200);
  EXPECT_EQ(StatusAndCode(Get("/api/v1/files", {}, Bearer("k-nobody"))),
            std::make_pair(401, std::string("UNAUTHENTICATED")));
  // No path: the scope itself.
  HttpResponse r = Get("/api/v1/files", {}, Bearer("k-docs"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(Names(ParseMessage<v1::ListResponse>(r.body).entries()),
              ElementsAre("C.TXT", "a.txt", "b.csv", "sub"));
  EXPECT_EQ(Get("/api/v1/files", {{"path", "docs/sub"}}, Bearer("k-docs")).status, 200);
  for (const std::string path : {"bin\xff", "docs/../bin\xff", "docsx", "..", "/etc"}) {
    const HttpResponse refused = Get("/api/v1/files", {{"path", path}}, Bearer("k-docs"));
    EXPECT_EQ(StatusAndCode(refused), std::make_pair(403, std::string("PERMISSION_DENIED")))
        << path;
    EXPECT_THAT(Str(ParseObject(refused.body), "detail"), HasSubstr("docs-only"));
  }
  // A search: within the scope by default, refused beside it, and its
  // matches stay within it.
  r = Get("/api/v1/search", {{"q", "*"}}, Bearer("k-docs"));
  ASSERT_EQ(r.status, 200) << r.body;
  for (const std::string& path :
       testing::Paths(ParseMessage<v1::SearchResponse>(r.body).matches())) {
    EXPECT_EQ(path.rfind("docs/", 0), 0u) << path;
  }
  EXPECT_EQ(Get("/api/v1/search", {{"q", "*"}, {"path", "bin\xff"}}, Bearer("k-docs")).status, 403);
}

TEST_F(ApiKeysTest, ALinkInsideTheScopeDoesNotLeadOutOfIt) {
  if (SkipWithoutJson()) GTEST_SKIP() << "reads JSON through protobuf's Struct";
  tree_.Symlink("../bin\xff", "docs/up");
  EXPECT_EQ(Get("/api/v1/files", {{"path", "docs/up"}}, Bearer("k-whole")).status, 200);
  const HttpResponse refused = Get("/api/v1/files", {{"path", "docs/up"}}, Bearer("k-docs"));
  EXPECT_EQ(StatusAndCode(refused), std::make_pair(403, std::string("PERMISSION_DENIED")));
  EXPECT_THAT(Str(ParseObject(refused.body), "detail"), HasSubstr("scope"));
  EXPECT_EQ(Get("/api/v1/search", {{"q", "*"}, {"path", "docs/up"}}, Bearer("k-docs")).status, 403);
}

TEST_F(ApiKeysTest, OperationsAreReadOnlyWithinTheReadersScope) {
  if (SkipWithoutJson()) GTEST_SKIP() << "reads JSON through protobuf's Struct";
  QueueEverything();
  const std::string whole =
      Accepted(Get("/api/v1/files", {{"path", "bin\xff"}}, Bearer("k-whole")));
  const std::string docs = Accepted(Get("/api/v1/search", {{"q", "*.txt"}}, Bearer("k-docs")));
  list_backend_.fallback->DeliverQueued();
  search_backend_.fallback->DeliverQueued();
  EXPECT_EQ(StatusAndCode(Get(whole, {}, Bearer("k-docs"))),
            std::make_pair(403, std::string("PERMISSION_DENIED")));
  EXPECT_EQ(Get(whole, {}, Bearer("k-whole")).status, 200);
  const HttpResponse r = Get(docs, {}, Bearer("k-docs"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("docs/a.txt"));
  EXPECT_EQ(Get(docs, {}, Bearer("k-whole")).status, 200);
}

TEST_F(ApiKeysTest, TheFileIsReadAgainWhenItChangesAndABrokenVersionKeepsTheKeys) {
  CapturedLog log;
  WriteKeys(absl::StrCat("whole ", kWholeDigest, "\n"));  // docs-only revoked
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Get("/api/v1/files", {}, Bearer("k-docs")).status == 401; }, absl::Seconds(10)));
  EXPECT_EQ(Get("/api/v1/files", {}, Bearer("k-whole")).status, 200);
  WriteKeys("whole not-a-digest\n");
  // The file is looked at when a request needs the keys (at most once a second).
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        EXPECT_EQ(Get("/api/v1/files", {}, Bearer("k-whole")).status, 200);
        return !log.Events("api_keys_reload_failed").empty();
      },
      absl::Seconds(10)));
  EXPECT_THAT(log.Events("api_keys_reload_failed")[0], HasSubstr("line 1"));
  EXPECT_EQ(Get("/api/v1/files", {}, Bearer("k-whole")).status, 200);
}

TEST_F(ApiKeysTest, AFileThatDoesNotParseIsAnErrorNamingTheLineAndTheApiAnswers503) {
  const std::pair<std::string, std::string> cases[] = {
      {"whole\n", "line 1: expected NAME SHA256"},
      {absl::StrCat("whole ", kWholeDigest, "\nwhole ", kDocsDigest, "\n"), "line 2"},
      {absl::StrCat("a ", kWholeDigest, "\nb ", kWholeDigest, "\n"), "another key's"},
      {absl::StrCat("a ", kWholeDigest, " ../up\n"), "scope"},
      {absl::StrCat("a ", kWholeDigest, " /abs\n"), "scope"},
      {absl::StrCat("bad/name ", kWholeDigest, "\n"), "key name"},
      {absl::StrCat("a ", std::string(kWholeDigest).substr(1), "\n"), "64 hex"},
  };
  for (const auto& [text, expected] : cases) {
    WriteKeys(text);
    Rebuild();
    EXPECT_EQ(gateway_->status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(gateway_->status().message()), HasSubstr(expected)) << text;
    EXPECT_THAT(std::string(gateway_->status().message()), HasSubstr(keys_file_));
    EXPECT_EQ(Get("/api/v1/files", {}, Bearer("k-whole")).status, 503);
    EXPECT_EQ(Get("/healthz").status, 200);
  }
  options_.api_keys_file = files_.Abs("missing");
  Rebuild();
  EXPECT_THAT(std::string(gateway_->status().message()), HasSubstr("cannot be read"));
}

TEST_F(ApiKeysTest, TheSingleKeyWorksBesideTheFile) {
  options_.api_key = "k-plain";
  Rebuild();
  ASSERT_TRUE(gateway_->status().ok()) << gateway_->status();
  EXPECT_EQ(Get("/api/v1/files", {}, Bearer("k-plain")).status, 200);
  EXPECT_EQ(Get("/api/v1/files", {}, Bearer("k-whole")).status, 200);
  options_.api_key = "k-whole";  // the same key twice
  Rebuild();
  EXPECT_EQ(gateway_->status().code(), absl::StatusCode::kInvalidArgument);
}

// Each API request is one line of the audit file, field by field; other
// routes are not audited.
TEST_F(ApiKeysTest, EveryApiRequestIsOneAuditLineFieldByField) {
  options_.audit_log = files_.Abs("audit.log");
  Rebuild();
  ASSERT_TRUE(gateway_->status().ok()) << gateway_->status();
  const HttpResponse listed = Get("/api/v1/files", {{"path", "docs"}}, Bearer("k-whole"));
  const HttpResponse found =
      Get("/api/v1/search", {{"q", "a\"b\nc"}}, Bearer("k-docs"));  // a pattern with a newline
  const HttpResponse refused = Get("/api/v1/files", {}, Bearer("wrong"));
  EXPECT_EQ(Get("/healthz").status, 200);
  std::ifstream in(options_.audit_log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  const auto expect_fields = [](const std::string& line, const std::vector<std::string>& fields) {
    EXPECT_THAT(line, ::testing::MatchesRegex("ts=[-0-9T:.]+Z level=info event=api_request .*"));
    for (const std::string& field : fields) EXPECT_THAT(line, HasSubstr(" " + field)) << line;
    EXPECT_THAT(line, ::testing::ContainsRegex(" duration_ms=[0-9]+\\.[0-9]{3}$"));
  };
  expect_fields(lines[0], {"request_id=" + HeaderOr(listed, "X-Request-Id") + " ", "key=whole ",
                           "client=127.0.0.1:40000 ", "method=GET ", "route=/api/v1/files ",
                           "path=docs ", "pattern=\"\" ", "status=200 ", "served_by=in-memory ",
                           absl::StrCat("bytes=", listed.body.size(), " ")});
  expect_fields(lines[1], {"key=docs-only ", "route=/api/v1/search ", "path=docs ",
                           "pattern=\"a\\\"b\\nc\" ", absl::StrCat("status=", found.status, " ")});
  expect_fields(lines[2], {"key=\"\" ", "status=401 ", "served_by=none ",
                           absl::StrCat("bytes=", refused.body.size(), " ")});
  EXPECT_THAT(lines[2], ::testing::Not(HasSubstr("wrong")));  // never the key
}

}  // namespace
}  // namespace filemesh
