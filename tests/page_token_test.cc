#include "fs/page_token.h"

#include <string>

#include "gtest/gtest.h"

namespace filemesh::internal {
namespace {

TEST(SipHashTest, MatchesReferenceVectors) {
  // From the SipHash paper: key 00..0f; messages 00, 00 01, ... .
  const uint64_t k0 = 0x0706050403020100ULL;
  const uint64_t k1 = 0x0f0e0d0c0b0a0908ULL;
  EXPECT_EQ(SipHash24(k0, k1, ""), 0x726fdb47dd0e0e31ULL);
  std::string fifteen;
  for (int i = 0; i < 15; ++i) fifteen += static_cast<char>(i);
  EXPECT_EQ(SipHash24(k0, k1, fifteen), 0xa129ca6149be45e5ULL);
}

PageKey SampleKey() {
  PageKey key;
  key.sort = 2;
  key.descending = true;
  key.include_hidden = false;
  key.path_digest = 0x1234;
  key.number = 987654321;
  key.name = std::string("n\xff\0me", 5);
  return key;
}

TEST(PageTokenTest, RoundTrips) {
  PageTokenCodec codec("");
  const PageKey key = SampleKey();
  absl::StatusOr<PageKey> back = codec.Decode(codec.Encode(key));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->sort, key.sort);
  EXPECT_EQ(back->descending, key.descending);
  EXPECT_EQ(back->include_hidden, key.include_hidden);
  EXPECT_EQ(back->path_digest, key.path_digest);
  EXPECT_EQ(back->number, key.number);
  EXPECT_EQ(back->name, key.name);
}

TEST(PageTokenTest, EveryAlteredCharacterIsRejected) {
  PageTokenCodec codec("");
  const std::string token = codec.Encode(SampleKey());
  for (size_t i = 0; i < token.size(); ++i) {
    std::string bad = token;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(codec.Decode(bad).status().code(), absl::StatusCode::kInvalidArgument) << i;
  }
  EXPECT_FALSE(codec.Decode(token.substr(0, token.size() - 1)).ok());
  EXPECT_FALSE(codec.Decode(token + "A").ok());
  EXPECT_FALSE(codec.Decode("").ok());
  EXPECT_FALSE(codec.Decode("not a token!").ok());
  EXPECT_FALSE(codec.Decode(std::string(5000, 'A')).ok());
}

TEST(PageTokenTest, SecretsSeparateReplicas) {
  PageTokenCodec a("secret-a");
  PageTokenCodec a2("secret-a");
  PageTokenCodec b("secret-b");
  const std::string token = a.Encode(SampleKey());
  EXPECT_TRUE(a2.Decode(token).ok());
  EXPECT_EQ(b.Decode(token).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.PathDigest("x"), b.PathDigest("x"));
}

}  // namespace
}  // namespace filemesh::internal
