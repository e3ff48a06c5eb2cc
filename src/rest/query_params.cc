#include "rest/query_params.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "filemesh/names.hpp"

namespace filemesh::internal {

std::string QuoteClientText(std::string_view text) {
  constexpr size_t kMax = 64;
  const std::string_view shown = text.substr(0, kMax);
  return absl::StrCat("\"", absl::CHexEscape(AbslView(shown)), text.size() > kMax ? "...\"" : "\"");
}

namespace {

template <typename Names>
std::string JoinNames(const Names& names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out.append(", ");
    out.append(name);
  }
  return out;
}

absl::Status Malformed(std::string_view name, std::string_view expected, std::string_view value) {
  return absl::InvalidArgumentError(absl::StrCat("query parameter \"", AbslView(name),
                                                 "\" must be ", AbslView(expected), ", not ",
                                                 QuoteClientText(value)));
}

}  // namespace

absl::StatusOr<QueryParams> QueryParams::Parse(
    const std::vector<std::pair<std::string, std::string>>& query,
    std::initializer_list<std::string_view> accepted) {
  QueryParams params;
  for (const auto& [name, value] : query) {
    if (std::find(accepted.begin(), accepted.end(), name) == accepted.end()) {
      if (accepted.size() == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown query parameter ", QuoteClientText(name), ": this route takes no parameters"));
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown query parameter ", QuoteClientText(name), "; accepted: ", JoinNames(accepted)));
    }
    if (!params.values_.emplace(name, value).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter \"", AbslView(name), "\" is given more than once"));
    }
  }
  return params;
}

absl::Status QueryParams::GetBytes(std::string_view name, std::string* out) const {
  auto it = values_.find(name);
  if (it != values_.end()) *out = it->second;
  return absl::OkStatus();
}

absl::Status QueryParams::GetUtf8(std::string_view name, std::string* out) const {
  auto it = values_.find(name);
  if (it == values_.end()) return absl::OkStatus();
  if (!IsValidUtf8(it->second)) return Malformed(name, "valid UTF-8", it->second);
  *out = it->second;
  return absl::OkStatus();
}

absl::Status QueryParams::GetBool(std::string_view name, bool* out) const {
  std::optional<bool> value;
  absl::Status status = GetBool(name, &value);
  if (value.has_value()) *out = *value;
  return status;
}

absl::Status QueryParams::GetBool(std::string_view name, std::optional<bool>* out) const {
  auto it = values_.find(name);
  if (it == values_.end()) return absl::OkStatus();
  const std::string& v = it->second;
  if (v == "true" || v == "1") {
    *out = true;
  } else if (v == "false" || v == "0") {
    *out = false;
  } else {
    return Malformed(name, "true, false, 1 or 0", v);
  }
  return absl::OkStatus();
}

absl::Status QueryParams::GetUint(std::string_view name, uint64_t min, uint64_t max,
                                  std::optional<uint64_t>* out) const {
  auto it = values_.find(name);
  if (it == values_.end()) return absl::OkStatus();
  const std::string& v = it->second;
  const std::string expected = absl::StrCat("a whole number from ", min, " to ", max);
  if (v.empty() || v.size() > 20) return Malformed(name, expected, v);
  uint64_t value = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return Malformed(name, expected, v);
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return Malformed(name, expected, v);
    value = value * 10 + digit;
  }
  if (value < min || value > max) return Malformed(name, expected, v);
  *out = value;
  return absl::OkStatus();
}

absl::StatusOr<size_t> QueryParams::ChoiceIndex(std::string_view name, const std::string& value,
                                                const std::vector<std::string_view>& choices) {
  for (size_t i = 0; i < choices.size(); ++i) {
    if (value == choices[i]) return i;
  }
  return Malformed(name, absl::StrCat("one of ", JoinNames(choices)), value);
}

}  // namespace filemesh::internal
