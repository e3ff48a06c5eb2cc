#include "fs/page_token.h"

#include <climits>
#include <cstring>

#include "absl/strings/escaping.h"
#include "base/absl_compat.h"

namespace filemesh::internal {
namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kMaxTokenChars = 1024;
// version, sort, flags, path digest, number, name length (u16), name, MAC.
constexpr size_t kFixedBytes = 1 + 1 + 1 + 8 + 8 + 2 + 8;

uint64_t LoadLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void StoreLE(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}

absl::Status Invalid() {
  return absl::InvalidArgumentError(
      "page_token is not valid: pass the next_page_token of the previous page unchanged");
}

}  // namespace

uint64_t SipHash24(uint64_t k0, uint64_t k1, std::string_view data) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
  uint64_t v3 = 0x7465646279746573ULL ^ k1;
  const size_t full = data.size() / 8 * 8;
  for (size_t i = 0; i < full; i += 8) {
    const uint64_t m = LoadLE(data.data() + i, 8);
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(data.size()) << 56;
  for (size_t i = full; i < data.size(); ++i) {
    last |= static_cast<uint64_t>(static_cast<uint8_t>(data[i])) << (8 * (i - full));
  }
  v3 ^= last;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

PageTokenCodec::PageTokenCodec(std::string_view secret) {
  // Built-in key; a secret is folded into it so replicas sharing a secret
  // accept each other's tokens.
  constexpr uint64_t kBase0 = 0x66696c656d657368ULL;  // "filemesh"
  constexpr uint64_t kBase1 = 0x70616765746f6b6eULL;  // "pagetokn"
  k0_ = SipHash24(kBase0, kBase1, secret);
  k1_ = SipHash24(kBase1, kBase0, secret);
}

uint64_t PageTokenCodec::PathDigest(std::string_view clean_path) const {
  return SipHash24(k1_, k0_, clean_path);
}

std::string PageTokenCodec::Encode(const PageKey& key) const {
  std::string raw;
  raw.reserve(kFixedBytes + key.name.size());
  raw += static_cast<char>(kVersion);
  raw += static_cast<char>(key.sort);
  raw += static_cast<char>((key.descending ? 1 : 0) | (key.include_hidden ? 2 : 0));
  StoreLE(&raw, key.path_digest, 8);
  StoreLE(&raw, key.number, 8);
  StoreLE(&raw, key.name.size(), 2);
  raw += key.name;
  StoreLE(&raw, SipHash24(k0_, k1_, raw), 8);
  std::string token;
  absl::WebSafeBase64Escape(raw, &token);
  return token;
}

absl::StatusOr<PageKey> PageTokenCodec::Decode(std::string_view token) const {
  if (token.size() > kMaxTokenChars) return Invalid();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(AbslView(token), &raw) || raw.size() < kFixedBytes)
    return Invalid();
  const std::string_view body(raw.data(), raw.size() - 8);
  if (SipHash24(k0_, k1_, body) != LoadLE(raw.data() + body.size(), 8)) {
    return Invalid();
  }
  const char* p = raw.data();
  PageKey key;
  if (static_cast<uint8_t>(p[0]) != kVersion) return Invalid();
  key.sort = static_cast<uint8_t>(p[1]);
  const auto flags = static_cast<uint8_t>(p[2]);
  if (flags > 3) return Invalid();
  key.descending = (flags & 1) != 0;
  key.include_hidden = (flags & 2) != 0;
  key.path_digest = LoadLE(p + 3, 8);
  key.number = LoadLE(p + 11, 8);
  const auto name_len = static_cast<size_t>(LoadLE(p + 19, 2));
  if (name_len > NAME_MAX || kFixedBytes + name_len != raw.size()) return Invalid();
  key.name.assign(p + 21, name_len);
  return key;
}

}  // namespace filemesh::internal
