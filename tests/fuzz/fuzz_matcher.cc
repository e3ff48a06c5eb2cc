// Patterns and names: glob, substring and regex compilation within the
// searcher's limits, then matching. The first byte picks the syntax and case
// folding; the rest is the pattern, a NUL, then names separated by '\n'.
// Globs made only of letters, digits, '.', '-', '*' and '?' are also matched
// by a slow reference (dynamic programming over pattern and name): the
// answers must agree.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fs/matcher.h"

namespace {

char Fold(char c, bool fold) {
  return fold && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool SimpleGlob(std::string_view pattern) {
  if (pattern.empty() || pattern.size() > 64) return false;
  for (const char c : pattern) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '*' || c == '?';
    if (!ok) return false;
  }
  return true;
}

// Whole-name match of '*' (any run of bytes) and '?' (one byte).
bool ReferenceGlob(std::string_view p, std::string_view s, bool fold) {
  std::vector<std::vector<char>> m(p.size() + 1, std::vector<char>(s.size() + 1, 0));
  m[0][0] = 1;
  for (size_t i = 1; i <= p.size(); ++i) {
    m[i][0] = p[i - 1] == '*' && m[i - 1][0];
    for (size_t j = 1; j <= s.size(); ++j) {
      if (p[i - 1] == '*') {
        m[i][j] = m[i - 1][j] || m[i][j - 1];
      } else if (p[i - 1] == '?' || Fold(p[i - 1], fold) == Fold(s[j - 1], fold)) {
        m[i][j] = m[i - 1][j - 1];
      }
    }
  }
  return m[p.size()][s.size()] != 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nul = rest.find('\0');
  const std::string_view pattern = rest.substr(0, nul);
  std::string_view names = nul == std::string_view::npos ? "" : rest.substr(nul + 1);
  const auto syntax = static_cast<filemesh::v1::PatternSyntax>(mode % 4);
  const bool fold = (mode & 4) != 0;
  filemesh::internal::MatcherLimits limits;
  limits.max_pattern_bytes = 4096;
  limits.max_regex_memory = 1 << 20;
  auto matcher = filemesh::internal::Matcher::Create(pattern, syntax, fold, limits);
  if (!matcher.ok()) return 0;
  const bool glob = syntax == filemesh::v1::PATTERN_SYNTAX_GLOB ||
                    syntax == filemesh::v1::PATTERN_SYNTAX_UNSPECIFIED;
  const bool compare = glob && SimpleGlob(pattern);
  for (int i = 0; i < 32 && !names.empty(); ++i) {
    const size_t nl = names.find('\n');
    const std::string_view name = names.substr(0, nl);
    const bool got = matcher->Match(name);
    if (compare && name.size() <= 64 && name.find('/') == std::string_view::npos &&
        got != ReferenceGlob(pattern, name, fold)) {
      std::fprintf(stderr, "glob \"%.*s\" (fold %d) on \"%.*s\": matcher %d, reference %d\n",
                   static_cast<int>(pattern.size()), pattern.data(), fold ? 1 : 0,
                   static_cast<int>(name.size()), name.data(), got ? 1 : 0, got ? 0 : 1);
      std::abort();
    }
    names = nl == std::string_view::npos ? "" : names.substr(nl + 1);
  }
  return 0;
}
