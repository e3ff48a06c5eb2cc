// The query parameters of one REST request, checked against the names its
// route accepts: nothing unknown, nothing repeated, every value well-formed.

#ifndef FILEMESH_SRC_REST_QUERY_PARAMS_H_
#define FILEMESH_SRC_REST_QUERY_PARAMS_H_

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace filemesh::internal {

// `text` from a client, quoted with C escapes and cut to a readable length,
// for an error message.
std::string QuoteClientText(std::string_view text);

class QueryParams {
 public:
  // InvalidArgument when a name is not in `accepted` or appears twice.
  static absl::StatusOr<QueryParams> Parse(
      const std::vector<std::pair<std::string, std::string>>& query,
      std::initializer_list<std::string_view> accepted);

  // Each getter leaves `*out` as it is when the parameter is absent, and
  // fails with InvalidArgument naming the parameter and what it accepts when
  // the value is malformed.

  // Any bytes (possibly empty).
  absl::Status GetBytes(std::string_view name, std::string* out) const;
  // Valid UTF-8 (possibly empty).
  absl::Status GetUtf8(std::string_view name, std::string* out) const;
  // "true", "false", "1" or "0".
  absl::Status GetBool(std::string_view name, bool* out) const;
  absl::Status GetBool(std::string_view name, std::optional<bool>* out) const;
  // Plain decimal digits with a value in [min, max].
  absl::Status GetUint(std::string_view name, uint64_t min, uint64_t max,
                       std::optional<uint64_t>* out) const;
  // One of the names in `choices`, exactly.
  template <typename Enum>
  absl::Status GetChoice(std::string_view name,
                         std::initializer_list<std::pair<std::string_view, Enum>> choices,
                         Enum* out) const;

 private:
  // Index into `choices`, or an error listing them.
  static absl::StatusOr<size_t> ChoiceIndex(std::string_view name, const std::string& value,
                                            const std::vector<std::string_view>& choices);

  std::map<std::string, std::string, std::less<>> values_;
};

template <typename Enum>
absl::Status QueryParams::GetChoice(
    std::string_view name, std::initializer_list<std::pair<std::string_view, Enum>> choices,
    Enum* out) const {
  auto it = values_.find(name);
  if (it == values_.end()) return absl::OkStatus();
  std::vector<std::string_view> names;
  names.reserve(choices.size());
  for (const auto& choice : choices) names.push_back(choice.first);
  absl::StatusOr<size_t> index = ChoiceIndex(name, it->second, names);
  if (!index.ok()) return index.status();
  *out = (choices.begin() + *index)->second;
  return absl::OkStatus();
}

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_QUERY_PARAMS_H_
