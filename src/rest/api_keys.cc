#include "rest/api_keys.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/absl_compat.h"
#include "filemesh/service/log.hpp"
#include "fs/beneath.h"

namespace filemesh::internal {
namespace {

bool IsKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '@') {
      return false;
    }
  }
  return true;
}

bool IsHex(std::string_view text) {
  for (const char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string Sha256(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return std::string();  // matches no stored digest
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

absl::StatusOr<ApiKeys> ApiKeys::Parse(std::string_view text, std::string_view source) {
  ApiKeys keys;
  absl::flat_hash_map<std::string, int> names;  // name -> line
  int number = 0;
  for (const absl::string_view raw : absl::StrSplit(AbslView(text), '\n')) {
    ++number;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line.front() == '#') continue;
    const auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(AbslView(source), " line ", number, ": ", AbslView(why)));
    };
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() < 2 || fields.size() > 3) {
      return bad("expected NAME SHA256 [SCOPE] (the key's SHA-256 in hex, not the key)");
    }
    const std::string name(fields[0]);
    if (!IsKeyName(name)) return bad("a key name is 1 to 64 of A-Z a-z 0-9 . _ @ -");
    if (fields[1].size() != 64 || !IsHex(StdView(fields[1]))) {
      return bad(absl::StrCat("the key \"", name,
                              "\" needs its SHA-256 as 64 hex digits (printf %s \"$KEY\" | "
                              "sha256sum)"));
    }
    ApiKey key;
    key.name = name;
    if (fields.size() == 3) {
      absl::StatusOr<std::string> scope = CleanRelativePath(StdView(fields[2]));
      if (!scope.ok()) {
        return bad(absl::StrCat("the scope of \"", name, "\": ", scope.status().message()));
      }
      key.scope = *std::move(scope);
    }
    if (auto [it, added] = names.emplace(name, number); !added) {
      return bad(absl::StrCat("the name \"", name, "\" is already used on line ", it->second));
    }
    const std::string digest = absl::HexStringToBytes(fields[1]);
    if (!keys.by_digest_.emplace(digest, std::move(key)).second) {
      return bad(absl::StrCat("the key of \"", name, "\" is another key's too"));
    }
  }
  return keys;
}

absl::Status ApiKeys::AddKey(std::string_view name, std::string_view key) {
  for (const auto& [digest, existing] : by_digest_) {
    if (existing.name == name) {
      return absl::InvalidArgumentError(
          absl::StrCat("the key name \"", AbslView(name), "\" is used in the keys file"));
    }
  }
  if (!by_digest_.emplace(Sha256(key), ApiKey{std::string(name), ""}).second) {
    return absl::InvalidArgumentError("--api_key is also a key of the keys file");
  }
  return absl::OkStatus();
}

const ApiKey* ApiKeys::Find(std::string_view presented) const {
  const auto it = by_digest_.find(Sha256(presented));
  return it == by_digest_.end() ? nullptr : &it->second;
}

absl::StatusOr<std::shared_ptr<const ApiKeys>> ApiKeySource::Load(FileStamp* stamp) const {
  ApiKeys keys;
  if (!file_.empty()) {
    *stamp = FileStamp::Of(file_);  // before the read: a change during it is seen next time
    std::ifstream in(file_, std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("the API keys file \"", file_, "\" cannot be read: ", std::strerror(errno)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    absl::StatusOr<ApiKeys> parsed = ApiKeys::Parse(text.str(), file_);
    if (!parsed.ok()) return parsed.status();
    keys = *std::move(parsed);
  }
  if (!plain_key_.empty()) {
    if (absl::Status added = keys.AddKey("api_key", plain_key_); !added.ok()) return added;
  }
  return std::make_shared<const ApiKeys>(std::move(keys));
}

absl::StatusOr<std::unique_ptr<ApiKeySource>> ApiKeySource::Create(std::string file,
                                                                   std::string plain_key) {
  std::unique_ptr<ApiKeySource> source(new ApiKeySource(std::move(file), std::move(plain_key)));
  FileStamp stamp;
  absl::StatusOr<std::shared_ptr<const ApiKeys>> keys = source->Load(&stamp);
  if (!keys.ok()) return keys.status();
  MutexLock lock(&source->mu_);
  source->current_ = *std::move(keys);
  source->stamp_ = stamp;
  source->next_check_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  return source;
}

std::shared_ptr<const ApiKeys> ApiKeySource::Current() {
  MutexLock lock(&mu_);
  if (file_.empty()) return current_;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return current_;
  next_check_ = now + std::chrono::seconds(1);
  FileStamp stamp = FileStamp::Of(file_);
  if (stamp == stamp_) return current_;
  absl::StatusOr<std::shared_ptr<const ApiKeys>> keys = Load(&stamp);
  if (!keys.ok()) {
    LogEvent(LogLevel::kWarning, "api_keys_reload_failed",
             {{"file", file_}, {"error", StdView(keys.status().message())}});
    return current_;
  }
  current_ = *std::move(keys);
  stamp_ = stamp;
  LogEvent("api_keys_loaded", {{"file", file_}, {"keys", absl::StrCat(current_->size())}});
  return current_;
}

bool WithinScope(std::string_view path, std::string_view scope) {
  if (scope.empty()) return true;
  absl::StatusOr<std::string> clean = CleanRelativePath(path);
  if (!clean.ok()) return false;
  return *clean == scope ||
         (clean->size() > scope.size() && clean->compare(0, scope.size(), scope) == 0 &&
          (*clean)[scope.size()] == '/');
}

}  // namespace filemesh::internal
