#include "fs/matcher.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl_compat.h"
#include "filemesh/names.hpp"
#include "fs/utf8.h"
#include "re2/re2.h"

namespace filemesh::internal {
namespace {

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

bool HasGlobMeta(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

// Appends `c` to an RE2 pattern as a literal.
void AppendLiteral(std::string* out, char c) {
  if (std::strchr("\\.+*?()|[]{}^$", c) != nullptr && c != '\0') {
    *out += '\\';
    *out += c;
  } else if (c == '\0') {
    *out += "\\x00";
  } else {
    *out += c;
  }
}

// Appends a character of a bracket expression, escaped for an RE2 class.
void AppendClassChar(std::string* out, char c) {
  if (c == '\\' || c == ']' || c == '[' || c == '^' || c == '-') *out += '\\';
  *out += c;
}

absl::Status GlobError(std::string_view glob, size_t at, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("glob \"", absl::CHexEscape(AbslView(glob)),
                                                 "\": ", AbslView(why), " at offset ", at));
}

bool EqualsFolded(std::string_view subject, std::string_view lower_literal) {
  if (subject.size() != lower_literal.size()) return false;
  for (size_t i = 0; i < subject.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(subject[i])) != lower_literal[i]) {
      return false;
    }
  }
  return true;
}

bool ContainsFolded(std::string_view subject, std::string_view lower_literal) {
  if (lower_literal.size() > subject.size()) return false;
  const size_t last = subject.size() - lower_literal.size();
  for (size_t i = 0; i <= last; ++i) {
    if (EqualsFolded(subject.substr(i, lower_literal.size()), lower_literal)) return true;
  }
  return false;
}

// RE2 reads its subject as UTF-8. A name that is not UTF-8 is matched with
// each stray byte replaced by U+FFFD: one character that only wildcards match,
// while the valid parts keep Unicode case folding.
std::string_view Utf8Subject(std::string_view subject) {
  if (IsValidUtf8(subject)) return subject;
  thread_local std::string scratch;
  scratch.clear();
  ReplaceInvalidUtf8(subject, "\xef\xbf\xbd", &scratch);
  return scratch;
}

}  // namespace

absl::StatusOr<std::string> GlobToRegex(std::string_view glob, bool path_mode) {
  const char* any_char = path_mode ? "[^/]" : "(?s:.)";
  const char* any_run = path_mode ? "[^/]*" : "(?s:.*)";
  std::string re;
  re.reserve(glob.size() * 2);
  size_t i = 0;
  while (i < glob.size()) {
    const char c = glob[i];
    if (c == '*') {
      size_t run = i;
      while (run < glob.size() && glob[run] == '*') ++run;
      const bool whole_component = run - i == 2 && (i == 0 || glob[i - 1] == '/') &&
                                   (run == glob.size() || glob[run] == '/');
      if (path_mode && whole_component) {
        if (run < glob.size()) {
          re += "(?s:.*/)?";  // "**/": zero or more directories
          i = run + 1;
        } else {
          re += "(?s:.*)";  // trailing "**": everything below
          i = run;
        }
      } else {
        re += any_run;
        i = run;
      }
      continue;
    }
    if (c == '?') {
      re += any_char;
      ++i;
      continue;
    }
    if (c == '\\') {
      if (i + 1 == glob.size()) return GlobError(glob, i, "trailing backslash");
      AppendLiteral(&re, glob[i + 1]);
      i += 2;
      continue;
    }
    if (c == '[') {
      size_t j = i + 1;
      bool negate = false;
      if (j < glob.size() && (glob[j] == '!' || glob[j] == '^')) {
        negate = true;
        ++j;
      }
      std::string cls = negate ? "[^" : "[";
      bool first = true;
      bool closed = false;
      while (j < glob.size()) {
        char m = glob[j];
        if (m == ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        if (m == '\\') {
          if (j + 1 == glob.size()) break;
          m = glob[++j];
        }
        if (j + 2 < glob.size() && glob[j + 1] == '-' && glob[j + 2] != ']') {
          char hi = glob[j + 2];
          size_t consumed = 3;
          if (hi == '\\' && j + 3 < glob.size()) {
            hi = glob[j + 3];
            consumed = 4;
          }
          if (static_cast<uint8_t>(hi) < static_cast<uint8_t>(m)) {
            return GlobError(glob, j, "reversed range in '[...]'");
          }
          AppendClassChar(&cls, m);
          cls += '-';
          AppendClassChar(&cls, hi);
          j += consumed;
          continue;
        }
        AppendClassChar(&cls, m);
        ++j;
      }
      if (!closed) return GlobError(glob, i, "'[' without a closing ']'");
      if (path_mode && negate) cls += '/';  // a class never matches a separator
      cls += ']';
      re += cls;
      i = j + 1;
      continue;
    }
    AppendLiteral(&re, c);
    ++i;
  }
  return re;
}

Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;
Matcher::~Matcher() = default;

absl::StatusOr<Matcher> Matcher::Create(std::string_view pattern, v1::PatternSyntax syntax,
                                        bool case_insensitive, const MatcherLimits& limits) {
  if (pattern.empty()) return absl::InvalidArgumentError("pattern is empty");
  if (pattern.size() > limits.max_pattern_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pattern is ", pattern.size(), " bytes long; the limit is ", limits.max_pattern_bytes));
  }
  if (syntax == v1::PATTERN_SYNTAX_UNSPECIFIED) syntax = v1::PATTERN_SYNTAX_GLOB;

  Matcher m;
  // Literal fast paths fold ASCII only; a non-ASCII case-insensitive pattern
  // goes through RE2, which folds Unicode, so all syntaxes agree.
  const bool literal_ok = !case_insensitive || IsAscii(pattern);
  const auto set_literal = [&](Kind kind, std::string_view literal) {
    m.kind_ = kind;
    m.fold_ascii_ = case_insensitive;
    m.literal_ = case_insensitive ? absl::AsciiStrToLower(AbslView(literal)) : std::string(literal);
  };

  std::string regex;
  Kind regex_kind = Kind::kRegexFull;
  switch (syntax) {
    case v1::PATTERN_SYNTAX_SUBSTRING:
      if (literal_ok) {
        set_literal(Kind::kContains, pattern);
        return m;
      }
      regex = RE2::QuoteMeta(pattern);
      regex_kind = Kind::kRegexPartial;
      break;
    case v1::PATTERN_SYNTAX_GLOB: {
      m.matches_path_ = pattern.find('/') != std::string_view::npos;
      if (m.matches_path_ && pattern.front() == '/') {
        return absl::InvalidArgumentError(
            "a glob must not start with '/': it is matched against paths relative to the "
            "search path");
      }
      if (!m.matches_path_ && literal_ok) {
        size_t lead = 0;
        while (lead < pattern.size() && pattern[lead] == '*') ++lead;
        size_t trail = 0;
        while (trail < pattern.size() - lead && pattern[pattern.size() - 1 - trail] == '*') {
          ++trail;
        }
        const std::string_view core = pattern.substr(lead, pattern.size() - lead - trail);
        if (!HasGlobMeta(core)) {
          if (core.empty()) {
            m.kind_ = Kind::kAll;
          } else if (lead && trail) {
            set_literal(Kind::kContains, core);
          } else if (lead) {
            set_literal(Kind::kSuffix, core);
          } else if (trail) {
            set_literal(Kind::kPrefix, core);
          } else {
            set_literal(Kind::kExact, core);
          }
          return m;
        }
      }
      absl::StatusOr<std::string> translated = GlobToRegex(pattern, m.matches_path_);
      if (!translated.ok()) return translated.status();
      regex = *std::move(translated);
      regex_kind = Kind::kRegexFull;
      break;
    }
    case v1::PATTERN_SYNTAX_REGEX:
      regex = std::string(pattern);
      regex_kind = Kind::kRegexPartial;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("syntax ", static_cast<int>(syntax), " is unknown"));
  }

  RE2::Options options;
  options.set_log_errors(false);
  options.set_case_sensitive(!case_insensitive);
  options.set_max_mem(limits.max_regex_memory);
  auto re = std::make_unique<RE2>(regex, options);
  if (!re->ok()) {
    const bool too_big = re->error_code() == RE2::ErrorPatternTooLarge;
    return absl::InvalidArgumentError(
        absl::StrCat(syntax == v1::PATTERN_SYNTAX_REGEX ? "regular expression" : "pattern", " \"",
                     absl::CHexEscape(AbslView(pattern)), "\" ",
                     too_big ? "needs more memory than allowed" : "is invalid", ": ", re->error()));
  }
  m.kind_ = regex_kind;
  m.regex_ = std::move(re);
  return m;
}

bool Matcher::Match(std::string_view subject) const {
  switch (kind_) {
    case Kind::kAll:
      return true;
    case Kind::kExact:
      return fold_ascii_ ? EqualsFolded(subject, literal_) : subject == literal_;
    case Kind::kPrefix:
      return subject.size() >= literal_.size() &&
             (fold_ascii_ ? EqualsFolded(subject.substr(0, literal_.size()), literal_)
                          : subject.compare(0, literal_.size(), literal_) == 0);
    case Kind::kSuffix:
      return subject.size() >= literal_.size() &&
             (fold_ascii_ ? EqualsFolded(subject.substr(subject.size() - literal_.size()), literal_)
                          : subject.compare(subject.size() - literal_.size(), literal_.size(),
                                            literal_) == 0);
    case Kind::kContains:
      return fold_ascii_ ? ContainsFolded(subject, literal_)
                         : subject.find(literal_) != std::string_view::npos;
    case Kind::kRegexFull:
      return RE2::FullMatch(Utf8Subject(subject), *regex_);
    case Kind::kRegexPartial:
      return RE2::PartialMatch(Utf8Subject(subject), *regex_);
  }
  return false;
}

}  // namespace filemesh::internal
