// Patterns and names: glob, substring and regex compilation within the
// searcher's limits, then matching. The first byte picks the syntax and case
// folding; the rest is the pattern, a NUL, then names separated by '\n'.
// Every glob of at most 64 bytes is also judged by a slow reference written
// from docs/cli.md ("Glob syntax"): a backtracking matcher over the pattern
// text itself, memoized on (pattern offset, subject offset), with none of the
// matcher's machinery (no RE2 translation, no literal fast paths). The two
// must agree on whether the glob is well-formed and on every match, of the
// names given and of every byte in one place. Every regular expression is
// judged by RE2 alone on the same names (repaired to UTF-8 as the matcher
// documents), which checks the matcher's shortcuts (the range test before
// RE2).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "fs/matcher.h"
#include "re2/re2.h"

namespace {

bool IsLetter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

unsigned char SwapCase(unsigned char c) {
  return IsLetter(c) ? static_cast<unsigned char>(c ^ 0x20) : c;
}

// The C locale's classes, ASCII only; false for an unknown name.
bool InClass(std::string_view name, unsigned char c, bool* known) {
  *known = true;
  const int i = c < 0x80 ? c : 0;  // bytes above 0x7f are in no class
  const bool ascii = c < 0x80;
  if (name == "alnum") return ascii && std::isalnum(i);
  if (name == "alpha") return ascii && std::isalpha(i);
  if (name == "blank") return c == ' ' || c == '\t';
  if (name == "cntrl") return ascii && std::iscntrl(i);
  if (name == "digit") return ascii && std::isdigit(i);
  if (name == "graph") return ascii && std::isgraph(i);
  if (name == "lower") return ascii && std::islower(i);
  if (name == "print") return ascii && std::isprint(i);
  if (name == "punct") return ascii && std::ispunct(i);
  if (name == "space") return ascii && std::isspace(i);
  if (name == "upper") return ascii && std::isupper(i);
  if (name == "xdigit") return ascii && std::isxdigit(i);
  *known = false;
  return false;
}

class ReferenceGlob {
 public:
  ReferenceGlob(std::string_view pattern, bool fold)
      : p_(pattern), fold_(fold), path_(pattern.find('/') != std::string_view::npos) {}

  // Whether the glob is well-formed: every '[' closed, no trailing
  // backslash, known classes only.
  bool WellFormed() const {
    for (size_t i = 0; i < p_.size();) {
      if (p_[i] == '\\') {
        if (i + 1 == p_.size()) return false;
        i += 2;
      } else if (p_[i] == '[') {
        bool member = false;
        const long end = Bracket(i, 'x', &member);
        if (end < 0) return false;
        i = static_cast<size_t>(end);
      } else {
        ++i;
      }
    }
    return true;
  }

  bool Matches(std::string_view subject) {
    s_ = subject;
    memo_.assign((p_.size() + 1) * (s_.size() + 1), -1);
    return Match(0, 0);
  }

 private:
  // Whether byte `t` is in the bracket expression that opens at p_[at];
  // returns the offset past its ']', or -1 when it is malformed.
  long Bracket(size_t at, unsigned char t, bool* in) const {
    size_t j = at + 1;
    bool negate = false;
    if (j < p_.size() && (p_[j] == '!' || p_[j] == '^')) {
      negate = true;
      ++j;
    }
    bool member = false;
    int prev = -1;  // a single member just read: a '-' after it makes a range
    for (bool first = true;; first = false) {
      if (j >= p_.size()) return -1;
      auto c = static_cast<unsigned char>(p_[j]);
      if (c == ']' && !first) break;
      if (c == '\\') {
        if (j + 1 >= p_.size()) return -1;
        c = static_cast<unsigned char>(p_[j + 1]);
        member |= Same(t, c);
        prev = c;
        j += 2;
      } else if (c == '-' && prev >= 0 && j + 1 < p_.size() && p_[j + 1] != ']') {
        size_t hi_at = j + 1;
        if (p_[hi_at] == '\\') {
          if (++hi_at >= p_.size()) return -1;
        }
        const auto hi = static_cast<unsigned char>(p_[hi_at]);
        const auto lo = static_cast<unsigned char>(prev);
        member |= (t >= lo && t <= hi) ||
                  (fold_ && IsLetter(t) && SwapCase(t) >= lo && SwapCase(t) <= hi);
        prev = -1;
        j = hi_at + 1;
      } else if (c == '[' && j + 1 < p_.size() && p_[j + 1] == ':') {
        // "[:name:]" up to the first ']' after it is a class; with no ":]"
        // there the '[' is a member; with no ']' at all, nothing closes.
        const size_t close = p_.find(']', j + 2);
        if (close == std::string_view::npos) return -1;
        if (close > j + 2 && p_[close - 1] == ':') {
          bool known = false;
          const std::string_view name = p_.substr(j + 2, close - 1 - (j + 2));
          member |= InClass(name, t, &known) || (fold_ && InClass(name, SwapCase(t), &known));
          if (!known) return -1;
          prev = -1;
          j = close + 1;
        } else {
          member |= Same(t, c);
          prev = c;
          ++j;
        }
      } else {
        member |= Same(t, c);
        prev = c;
        ++j;
      }
    }
    *in = member != negate && t != '/';
    return static_cast<long>(j + 1);
  }

  bool Same(unsigned char t, unsigned char c) const {
    return t == c || (fold_ && IsLetter(t) && SwapCase(t) == c);
  }

  bool Match(size_t pi, size_t si) {
    int8_t& memo = memo_[pi * (s_.size() + 1) + si];
    if (memo < 0) memo = MatchUncached(pi, si) ? 1 : 0;
    return memo == 1;
  }

  bool MatchUncached(size_t pi, size_t si) {
    if (pi == p_.size()) return si == s_.size();
    const auto c = static_cast<unsigned char>(p_[pi]);
    if (c == '*') {
      size_t run = pi;
      while (run < p_.size() && p_[run] == '*') ++run;
      const bool whole = path_ && run - pi >= 2 && (pi == 0 || p_[pi - 1] == '/') &&
                         (run == p_.size() || p_[run] == '/' ||
                          (p_[run] == '\\' && run + 1 < p_.size() && p_[run + 1] == '/'));
      if (whole && run < p_.size() && p_[run] == '/') {
        // "**/": nothing, or any run of bytes that ends with a '/'.
        if (Match(run + 1, si)) return true;
        for (size_t k = si; k < s_.size(); ++k) {
          if (s_[k] == '/' && Match(run + 1, k + 1)) return true;
        }
        return false;
      }
      // A whole "**" spans '/', a '*' does not (in a path).
      for (size_t k = si;; ++k) {
        if (Match(run, k)) return true;
        if (k == s_.size() || (!whole && path_ && s_[k] == '/')) return false;
      }
    }
    if (si == s_.size()) return false;
    const auto t = static_cast<unsigned char>(s_[si]);
    if (c == '?') return (!path_ || t != '/') && Match(pi + 1, si + 1);
    if (c == '[') {
      bool in = false;
      const long end = Bracket(pi, t, &in);
      return end >= 0 && in && Match(static_cast<size_t>(end), si + 1);
    }
    if (c == '\\') {
      return pi + 1 < p_.size() && Same(t, static_cast<unsigned char>(p_[pi + 1])) &&
             Match(pi + 2, si + 1);
    }
    return Same(t, c) && Match(pi + 1, si + 1);
  }

  const std::string_view p_;
  const bool fold_;
  const bool path_;
  std::string_view s_;
  std::vector<int8_t> memo_;
};

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
  const bool glob = syntax == filemesh::v1::PATTERN_SYNTAX_GLOB ||
                    syntax == filemesh::v1::PATTERN_SYNTAX_UNSPECIFIED;
  // Globs the reference judges: not empty, not absolute, short enough for
  // its quadratic memo.
  const bool compare = glob && !pattern.empty() && pattern.size() <= 64 && pattern[0] != '/';
  ReferenceGlob reference(pattern, fold);
  if (compare && matcher.ok() != reference.WellFormed()) {
    std::fprintf(stderr, "glob \"%.*s\": matcher %s, reference %s\n",
                 static_cast<int>(pattern.size()), pattern.data(),
                 matcher.ok() ? "accepts" : "refuses", matcher.ok() ? "refuses" : "accepts");
    std::abort();
  }
  if (!matcher.ok()) return 0;
  std::unique_ptr<RE2> regex;  // the reference for regular expressions
  if (syntax == filemesh::v1::PATTERN_SYNTAX_REGEX) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_case_sensitive(!fold);
    options.set_max_mem(limits.max_regex_memory);
    regex = std::make_unique<RE2>(std::string(pattern), options);
    if (!regex->ok()) regex.reset();
  }
  const bool path = pattern.find('/') != std::string_view::npos;
  auto check = [&](std::string_view name) {
    const bool got = matcher->Match(name);
    // A name holds no '/'; a path may.
    if (compare && name.size() <= 64 && (path || name.find('/') == std::string_view::npos) &&
        got != reference.Matches(name)) {
      std::fprintf(stderr, "glob \"%.*s\" (fold %d) on \"%.*s\": matcher %d, reference %d\n",
                   static_cast<int>(pattern.size()), pattern.data(), fold ? 1 : 0,
                   static_cast<int>(name.size()), name.data(), got ? 1 : 0, got ? 0 : 1);
      std::abort();
    }
    if (regex != nullptr) {
      std::string utf8;
      filemesh::internal::ReplaceInvalidUtf8(name, "\xef\xbf\xbd", &utf8);
      if (got != RE2::PartialMatch(utf8, *regex)) {
        std::fprintf(stderr, "regex \"%.*s\" (fold %d) on \"%.*s\": matcher %d, RE2 %d\n",
                     static_cast<int>(pattern.size()), pattern.data(), fold ? 1 : 0,
                     static_cast<int>(name.size()), name.data(), got ? 1 : 0, got ? 0 : 1);
        std::abort();
      }
    }
  };
  std::string first;
  for (int i = 0; i < 32 && !names.empty(); ++i) {
    const size_t nl = names.find('\n');
    const std::string_view name = names.substr(0, nl);
    if (i == 0) first = std::string(name);
    check(name);
    names = nl == std::string_view::npos ? "" : names.substr(nl + 1);
  }
  if (compare || regex != nullptr) {
    // Every byte in one place: the one-byte names, and the first name with
    // each byte at the position the mode's high bits pick (so a bracket
    // expression or a class is judged on all 256 bytes, which mutations
    // alone seldom reach: a tab for [:blank:]).
    std::string one(1, '\0');
    const size_t at = first.empty() ? 0 : (mode >> 3) % first.size();
    for (int b = 0; b < 256; ++b) {
      one[0] = static_cast<char>(b);
      check(one);
      if (!first.empty()) {
        std::string variant = first;
        variant[at] = static_cast<char>(b);
        check(variant);
      }
    }
  }
  return 0;
}
