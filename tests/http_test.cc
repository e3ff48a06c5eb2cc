// The status mapping and problem documents of filemesh/rest/http.hpp: every code's HTTP
// status, and problem bodies that stay valid JSON whatever the detail holds.

#include "filemesh/rest/http.hpp"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "json_test_util.h"

namespace filemesh {
namespace {

// The body parsed as a JSON object; fails the test when it is not one.
google::protobuf::Struct ParseObject(const std::string& body) {
  // JSON forbids raw control characters inside strings; nothing else in the
  // body needs them either.
  for (const char c : body) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control byte in " << body;
  }
  return testing::ParseJsonObject(body);
}

std::string StringField(const google::protobuf::Struct& object, const std::string& name) {
  return testing::StringMember(object, name);
}

// Problem bodies are read as JSON through protobuf (see json_test_util.h).
class ProblemResponseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::kProtobufMapsUsable) {
      GTEST_SKIP() << "protobuf's Struct is unusable under ThreadSanitizer here";
    }
  }
};

TEST(HttpStatusTest, EveryStatusCodeMapsAsDocumented) {
  const std::vector<std::pair<absl::StatusCode, int>> table = {
      {absl::StatusCode::kOk, 200},
      {absl::StatusCode::kCancelled, 499},
      {absl::StatusCode::kUnknown, 500},
      {absl::StatusCode::kInvalidArgument, 400},
      {absl::StatusCode::kDeadlineExceeded, 504},
      {absl::StatusCode::kNotFound, 404},
      {absl::StatusCode::kAlreadyExists, 409},
      {absl::StatusCode::kPermissionDenied, 403},
      {absl::StatusCode::kResourceExhausted, 503},
      {absl::StatusCode::kFailedPrecondition, 400},
      {absl::StatusCode::kAborted, 409},
      {absl::StatusCode::kOutOfRange, 400},
      {absl::StatusCode::kUnimplemented, 501},
      {absl::StatusCode::kInternal, 500},
      {absl::StatusCode::kUnavailable, 503},
      {absl::StatusCode::kDataLoss, 500},
      {absl::StatusCode::kUnauthenticated, 401},
  };
  for (const auto& [code, http] : table) {
    EXPECT_EQ(HttpStatusFromStatusCode(code), http) << absl::StatusCodeToString(code);
  }
  EXPECT_EQ(HttpStatusFromStatusCode(static_cast<absl::StatusCode>(1234)), 500);
}

TEST(HttpStatusTest, ReasonPhrases) {
  EXPECT_EQ(HttpReasonPhrase(200), "OK");
  EXPECT_EQ(HttpReasonPhrase(202), "Accepted");
  EXPECT_EQ(HttpReasonPhrase(400), "Bad Request");
  EXPECT_EQ(HttpReasonPhrase(401), "Unauthorized");
  EXPECT_EQ(HttpReasonPhrase(404), "Not Found");
  EXPECT_EQ(HttpReasonPhrase(405), "Method Not Allowed");
  EXPECT_EQ(HttpReasonPhrase(429), "Too Many Requests");
  EXPECT_EQ(HttpReasonPhrase(503), "Service Unavailable");
  EXPECT_EQ(HttpReasonPhrase(504), "Gateway Timeout");
  // The ones HttpServer answers itself for requests it cannot take.
  EXPECT_EQ(HttpReasonPhrase(413), "Content Too Large");
  EXPECT_EQ(HttpReasonPhrase(414), "URI Too Long");
  EXPECT_EQ(HttpReasonPhrase(416), "Range Not Satisfiable");
  EXPECT_EQ(HttpReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(HttpReasonPhrase(299), "Unknown");
  EXPECT_EQ(HttpReasonPhrase(99), "Unknown");
  EXPECT_EQ(HttpReasonPhrase(100), "Continue");
  EXPECT_EQ(HttpReasonPhrase(422), "Unprocessable Content");
  EXPECT_EQ(HttpReasonPhrase(499), "Client Closed Request");
}

TEST(HttpRequestTest, HeaderFindsTheFirstFieldOfThatName) {
  HttpRequest request;
  request.headers = {{"accept", "a"}, {"x-request-id", "one"}, {"x-request-id", "two"}};
  ASSERT_NE(request.Header("x-request-id"), nullptr);
  EXPECT_EQ(*request.Header("x-request-id"), "one");
  EXPECT_EQ(request.Header("authorization"), nullptr);
}

TEST_F(ProblemResponseTest, CarriesStatusTitleDetailCodeAndInstance) {
  const HttpResponse r =
      ProblemResponse(absl::NotFoundError("no such directory: docs"), "/api/v1/files");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/problem+json");
  const google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_EQ(StringField(body, "type"), "about:blank");
  EXPECT_EQ(StringField(body, "title"), "Not Found");
  EXPECT_EQ(body.fields().at("status").number_value(), 404);
  EXPECT_EQ(StringField(body, "detail"), "no such directory: docs");
  EXPECT_EQ(StringField(body, "code"), "NOT_FOUND");
  EXPECT_EQ(StringField(body, "instance"), "/api/v1/files");
}

TEST_F(ProblemResponseTest, InstanceLeftOutWhenEmpty) {
  const HttpResponse r = ProblemResponse(absl::UnavailableError("down"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(ParseObject(r.body).fields().count("instance"), 0u);
}

TEST_F(ProblemResponseTest, StatusFollowsTheMapping) {
  EXPECT_EQ(ProblemResponse(absl::FailedPreconditionError("x")).status, 400);
  const HttpResponse busy = ProblemResponse(absl::ResourceExhaustedError("x"));
  EXPECT_EQ(busy.status, 503);
  EXPECT_THAT(busy.headers,
              ::testing::Contains(std::make_pair(std::string("Retry-After"), std::string("1"))));
  EXPECT_TRUE(ProblemResponse(absl::UnavailableError("x")).headers.empty());
  EXPECT_EQ(ProblemResponse(absl::DeadlineExceededError("x")).status, 504);
  EXPECT_EQ(ProblemResponse(absl::UnauthenticatedError("x")).status, 401);
  EXPECT_EQ(ProblemResponse(absl::PermissionDeniedError("x")).status, 403);
}

TEST_F(ProblemResponseTest, OkStatusIsAnInternalError) {
  const HttpResponse r = ProblemResponse(absl::OkStatus());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(StringField(ParseObject(r.body), "code"), "INTERNAL");
}

TEST_F(ProblemResponseTest, HostileValidUtf8DetailRoundTripsExactly) {
  const std::string detail = std::string(
                                 "quote \" backslash \\ slash / newline \n return \r tab \t "
                                 "bell \x07 escape \x1b del \x7f nul ") +
                             std::string(1, '\0') + " line-sep \u2028 emoji \U0001F600 }{\",";
  const HttpResponse r = ProblemResponse(absl::InvalidArgumentError(detail), "/x\"y\n");
  const google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_EQ(StringField(body, "detail"), detail);
  EXPECT_EQ(StringField(body, "instance"), "/x\"y\n");
}

TEST_F(ProblemResponseTest, InvalidUtf8DetailComesOutInDisplayForm) {
  const std::string detail = "bad \xff\xfe name \xc3 and \xed\xa0\x80 surrogate \"q\"";
  const HttpResponse r = ProblemResponse(absl::NotFoundError(detail), "/api/\xff");
  const google::protobuf::Struct body = ParseObject(r.body);
  EXPECT_EQ(StringField(body, "detail"),
            "bad \\xff\\xfe name \\xc3 and \\xed\\xa0\\x80 surrogate \"q\"");
  EXPECT_EQ(StringField(body, "instance"), "/api/\\xff");
}

}  // namespace
}  // namespace filemesh
