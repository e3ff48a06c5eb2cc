#include "rpc/amqp_url.h"

#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace filemesh::internal {
namespace {

struct GoodUrl {
  std::string url;
  std::string user, password, host;
  int port;
  std::string vhost;
};

TEST(AmqpUrlTest, ParsesWellFormedUrls) {
  const GoodUrl cases[] = {
      {"amqp://u:p@h:1234/v", "u", "p", "h", 1234, "v"},
      {"amqp://localhost", "guest", "guest", "localhost", 5672, "/"},
      {"amqp://localhost/", "guest", "guest", "localhost", 5672, "/"},
      {"amqp://127.0.0.1:5673/%2f", "guest", "guest", "127.0.0.1", 5673, "/"},
      {"amqp://app@broker.example", "app", "", "broker.example", 5672, "/"},
      {"amqp://a%40b:p%3Aw%2Fd@h/prod%2Fv1", "a@b", "p:w/d", "h", 5672, "prod/v1"},
      {"amqp://u:@h", "u", "", "h", 5672, "/"},
      {"amqp://u:p@[::1]:5680/x", "u", "p", "::1", 5680, "x"},
      {"amqp://[fe80::1]", "guest", "guest", "fe80::1", 5672, "/"},
      {"amqp://u:p:q@h", "u", "p:q", "h", 5672, "/"},  // the first ':' splits
      {"amqp://h:65535", "guest", "guest", "h", 65535, "/"},
  };
  for (const GoodUrl& c : cases) {
    SCOPED_TRACE(c.url);
    auto url = ParseAmqpUrl(c.url);
    ASSERT_TRUE(url.ok()) << url.status();
    EXPECT_EQ(url->user, c.user);
    EXPECT_EQ(url->password, c.password);
    EXPECT_EQ(url->host, c.host);
    EXPECT_EQ(url->port, c.port);
    EXPECT_EQ(url->vhost, c.vhost);
  }
}

TEST(AmqpUrlTest, RejectsMalformedUrlsNamingThePart) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "amqp://"},
      {"http://h", "amqp://"},
      {"amqps:/h", "amqps://"},
      {"amqp://h?auth_mechanism=external", "needs amqps"},
      {"amqps://h?auth_mechanism=amqplain", "auth_mechanism"},
      {"amqp://", "host"},
      {"amqp://:5672", "host"},
      {"amqp://u:p@", "host"},
      {"amqp://h:", "port"},
      {"amqp://h:0", "port"},
      {"amqp://h:65536", "port"},
      {"amqp://h:99999999999999999999", "port"},
      {"amqp://h:12ab", "port"},
      {"amqp://h:-1", "port"},
      {"amqp://[::1", "'['"},
      {"amqp://[::1]x", "IPv6"},
      {"amqp://[zz]", "IPv6"},
      {"amqp://h/a/b", "vhost"},
      {"amqp://h/%zz", "vhost"},
      {"amqp://h/%2", "vhost"},
      {"amqp://%zz@h", "user"},
      {"amqp://@h", "user"},
      {"amqp://h?heartbeat=5", "query"},
      {"amqp://h#x", "fragments"},
      {"amqp://h st", "space"},
      {"amqp://h$t", "host"},
  };
  for (const auto& [text, part] : cases) {
    SCOPED_TRACE(text);
    auto url = ParseAmqpUrl(text);
    ASSERT_FALSE(url.ok());
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(url.status().message().find(part), absl::string_view::npos) << url.status();
  }
}

TEST(AmqpUrlTest, AmqpsIsTlsOnPort5671AndMayAskForExternalAuth) {
  auto url = ParseAmqpUrl("amqps://u:p@broker.example/v");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->tls);
  EXPECT_FALSE(url->external_auth);
  EXPECT_EQ(url->port, 5671);
  EXPECT_EQ(url->Redacted(), "amqps://u:***@broker.example:5671/v");

  auto external = ParseAmqpUrl("amqps://broker.example:5679/v?auth_mechanism=external");
  ASSERT_TRUE(external.ok()) << external.status();
  EXPECT_TRUE(external->external_auth);
  EXPECT_EQ(external->port, 5679);
  EXPECT_EQ(external->vhost, "v");
  auto again = ParseAmqpUrl(external->ToString());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->tls);
  EXPECT_TRUE(again->external_auth);

  auto plain = ParseAmqpUrl("amqp://h?auth_mechanism=plain");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->port, 5672);
}

TEST(AmqpUrlTest, ErrorsNeverShowThePassword) {
  auto url = ParseAmqpUrl("amqp://user:s3cr%zzet@h");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().message().find("s3cr"), absl::string_view::npos) << url.status();
  url = ParseAmqpUrl("amqp://user:s3cret@h:bad");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().message().find("s3cret"), absl::string_view::npos) << url.status();
}

TEST(AmqpUrlTest, RedactedHidesThePasswordAndRoundTrips) {
  auto url = ParseAmqpUrl("amqp://a%40b:s3cret@h:1234/prod%2Fv1");
  ASSERT_TRUE(url.ok()) << url.status();
  const std::string redacted = url->Redacted();
  EXPECT_EQ(redacted, "amqp://a%40b:***@h:1234/prod%2Fv1");
  EXPECT_EQ(redacted.find("s3cret"), std::string::npos);

  auto v6 = ParseAmqpUrl("amqp://u@[::1]");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->Redacted(), "amqp://u@[::1]:5672/%2F");
  // The redacted form parses back to the same place.
  auto again = ParseAmqpUrl(v6->Redacted());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->host, "::1");
  EXPECT_EQ(again->vhost, "/");
}

TEST(AmqpUrlTest, ParsesAClustersList) {
  auto one = ParseAmqpUrls("amqp://u:p@h1:5672/v");
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(one->front().host, "h1");

  auto three = ParseAmqpUrls("amqp://u:p@h1:5672/v, amqp://u:p@h2:5673/v ,amqp://u:p@[::1]/v");
  ASSERT_TRUE(three.ok()) << three.status();
  ASSERT_EQ(three->size(), 3u);
  EXPECT_EQ((*three)[0].port, 5672);
  EXPECT_EQ((*three)[1].host, "h2");
  EXPECT_EQ((*three)[1].port, 5673);
  EXPECT_EQ((*three)[2].host, "::1");
  EXPECT_EQ(RedactedUrls(*three),
            "amqp://u:***@h1:5672/v, amqp://u:***@h2:5673/v, amqp://u:***@[::1]:5672/v");
  // A comma inside a password is written %2C.
  auto encoded = ParseAmqpUrls("amqp://u:a%2Cb@h1,amqp://u:a%2Cb@h2");
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ((*encoded)[1].password, "a,b");
}

TEST(AmqpUrlTest, RefusesListsThatAreNotOneCluster) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty"},
      {"amqp://h1,", "URL 2 of the list is empty"},
      {"amqp://h1,,amqp://h2", "URL 2 of the list is empty"},
      {"amqp://h1,http://h2", "URL 2 of the list: invalid AMQP URL: must start with"},
      {"amqp://u:p@h1,amqp://v:p@h2", "URL 2 of the list differs from the first"},
      {"amqp://u:p@h1,amqp://u:q@h2", "URL 2 of the list differs from the first"},
      {"amqp://h1/a,amqp://h2/b", "URL 2 of the list differs from the first"},
      {"amqp://h1,amqps://h2", "URL 2 of the list differs from the first"},
      {"amqp://h1:5672,amqp://h1", "URL 2 of the list names h1:5672 again"},
      {"amqp://u:secret@h1,amqp://u:secret@h2:bad", "URL 2 of the list: invalid AMQP URL"},
  };
  for (const auto& [list, want] : cases) {
    auto urls = ParseAmqpUrls(list);
    ASSERT_FALSE(urls.ok()) << list;
    EXPECT_EQ(urls.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(urls.status().message().find(want), absl::string_view::npos)
        << list << ": " << urls.status();
    EXPECT_EQ(urls.status().message().find("secret"), absl::string_view::npos) << urls.status();
  }
  // At most kMaxAmqpUrls brokers.
  std::string many;
  for (size_t i = 0; i <= kMaxAmqpUrls; ++i) {
    many += (i == 0 ? "" : ",") + std::string("amqp://h") + std::to_string(i);
  }
  auto too_many = ParseAmqpUrls(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("at most 16"), absl::string_view::npos)
      << too_many.status();
  many = many.substr(0, many.rfind(','));
  EXPECT_TRUE(ParseAmqpUrls(many).ok()) << "16 brokers are taken";
}

}  // namespace
}  // namespace filemesh::internal
