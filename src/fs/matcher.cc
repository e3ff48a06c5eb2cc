#include "fs/matcher.h"

#include <algorithm>
#include <bitset>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/absl_compat.h"
#include "base/utf8.h"
#include "filemesh/names.hpp"
#include "re2/re2.h"

namespace filemesh::internal {
namespace {

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

bool HasGlobMeta(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

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

// A set of bytes: what one glob token matches at one position.
using ByteSet = std::bitset<256>;

bool IsAsciiLetter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Adds the other ASCII case of every letter in `set`.
void FoldAscii(ByteSet* set) {
  for (unsigned char c = 'a'; c <= 'z'; ++c) {
    const auto upper = static_cast<unsigned char>(c - 'a' + 'A');
    if ((*set)[c] || (*set)[upper]) {
      set->set(c);
      set->set(upper);
    }
  }
}

// The POSIX classes of the C locale (ASCII only, as git's wildmatch).
// False for an unknown name.
bool AddNamedClass(std::string_view name, ByteSet* set) {
  int (*test)(int) = nullptr;
  if (name == "alnum") test = [](int c) { return std::isalnum(c); };
  if (name == "alpha") test = [](int c) { return std::isalpha(c); };
  if (name == "blank") test = [](int c) { return static_cast<int>(c == ' ' || c == '\t'); };
  if (name == "cntrl") test = [](int c) { return std::iscntrl(c); };
  if (name == "digit") test = [](int c) { return std::isdigit(c); };
  if (name == "graph") test = [](int c) { return std::isgraph(c); };
  if (name == "lower") test = [](int c) { return std::islower(c); };
  if (name == "print") test = [](int c) { return std::isprint(c); };
  if (name == "punct") test = [](int c) { return std::ispunct(c); };
  if (name == "space") test = [](int c) { return std::isspace(c); };
  if (name == "upper") test = [](int c) { return std::isupper(c); };
  if (name == "xdigit") test = [](int c) { return std::isxdigit(c); };
  if (test == nullptr) return false;
  // The <cctype> tests are the C locale's until someone calls setlocale;
  // asking only for ASCII keeps them so either way.
  for (int c = 0; c < 0x80; ++c) {
    if (test(c) != 0) set->set(static_cast<size_t>(c));
  }
  return true;
}

// Appends `c` to an RE2 pattern (Latin-1 mode: one rune per byte).
void AppendByte(std::string* out, unsigned char c) {
  if (absl::ascii_isalnum(c) || c == '_' || c == '/') {
    *out += static_cast<char>(c);
  } else {
    absl::StrAppendFormat(out, "\\x%02x", c);
  }
}

// Appends a set of bytes as one RE2 class: a run of consecutive bytes
// becomes a range. An empty set matches nothing.
void AppendByteSet(std::string* out, const ByteSet& set) {
  if (set.count() == 1) {
    for (size_t c = 0; c < set.size(); ++c) {
      if (set[c]) AppendByte(out, static_cast<unsigned char>(c));
    }
    return;
  }
  if (set.none()) {
    *out += "[^\\x00-\\xff]";
    return;
  }
  *out += '[';
  size_t c = 0;
  while (c < set.size()) {
    if (!set[c]) {
      ++c;
      continue;
    }
    size_t last = c;
    while (last + 1 < set.size() && set[last + 1]) ++last;
    AppendByte(out, static_cast<unsigned char>(c));
    if (last > c) {
      *out += '-';
      AppendByte(out, static_cast<unsigned char>(last));
    }
    c = last + 1;
  }
  *out += ']';
}

// Parses the bracket expression that opens at glob[start] ('[') as git's
// wildmatch does, and returns the offset just past its closing ']'.
absl::StatusOr<size_t> ParseBracket(std::string_view glob, size_t start, bool fold_ascii,
                                    ByteSet* out) {
  ByteSet set;
  size_t j = start + 1;
  const bool negate = j < glob.size() && (glob[j] == '!' || glob[j] == '^');
  if (negate) ++j;
  int prev = -1;  // the last single member, which a following '-' extends
  bool first = true;
  for (;;) {
    if (j >= glob.size()) return GlobError(glob, start, "'[' without a closing ']'");
    auto c = static_cast<unsigned char>(glob[j]);
    if (c == ']' && !first) break;
    first = false;
    if (c == '\\') {
      if (++j == glob.size()) return GlobError(glob, j - 1, "trailing backslash in '[...]'");
      c = static_cast<unsigned char>(glob[j]);
      set.set(c);
      prev = c;
      ++j;
      continue;
    }
    if (c == '-' && prev >= 0 && j + 1 < glob.size() && glob[j + 1] != ']') {
      size_t hi_at = j + 1;
      if (glob[hi_at] == '\\' && ++hi_at == glob.size()) {
        return GlobError(glob, j + 1, "trailing backslash in '[...]'");
      }
      const auto hi = static_cast<unsigned char>(glob[hi_at]);
      // A reversed range adds nothing (its first end is in already), as in git.
      for (int b = prev; b <= hi; ++b) set.set(static_cast<size_t>(b));
      prev = -1;
      j = hi_at + 1;
      continue;
    }
    if (c == '[' && j + 1 < glob.size() && glob[j + 1] == ':') {
      const size_t name_at = j + 2;
      const size_t close = glob.find(']', name_at);
      if (close == std::string_view::npos) {
        return GlobError(glob, start, "'[' without a closing ']'");
      }
      if (close > name_at && glob[close - 1] == ':') {
        const std::string_view name = glob.substr(name_at, close - 1 - name_at);
        if (!AddNamedClass(name, &set)) {
          return GlobError(glob, j,
                           absl::StrCat("unknown character class \"[:", AbslView(name),
                                        ":]\" (known: alnum alpha blank cntrl digit graph lower "
                                        "print punct space upper xdigit)"));
        }
        prev = -1;
        j = close + 1;
        continue;
      }
      // No ":]" before the first ']': the '[' is an ordinary member.
    }
    set.set(c);
    prev = c;
    ++j;
  }
  if (fold_ascii) FoldAscii(&set);
  if (negate) set.flip();
  set.reset('/');  // never matches a separator (a name holds none)
  *out = set;
  return j + 1;
}

}  // namespace

absl::StatusOr<std::string> GlobToRegex(std::string_view glob, bool path_mode, bool fold_ascii) {
  constexpr const char* kAnyRun = "[\\x00-\\xff]*";
  ByteSet any_byte;
  any_byte.set();
  if (path_mode) any_byte.reset('/');
  std::string re;
  re.reserve(glob.size() * 2);
  size_t i = 0;
  while (i < glob.size()) {
    const auto c = static_cast<unsigned char>(glob[i]);
    if (c == '*') {
      size_t run = i;
      while (run < glob.size() && glob[run] == '*') ++run;
      // Two or more stars that make a whole path component (git also takes
      // an escaped slash after them) span directories.
      const bool whole_component =
          path_mode && run - i >= 2 && (i == 0 || glob[i - 1] == '/') &&
          (run == glob.size() || glob[run] == '/' ||
           (glob[run] == '\\' && run + 1 < glob.size() && glob[run + 1] == '/'));
      if (whole_component && run < glob.size() && glob[run] == '/') {
        re += "(?:[\\x00-\\xff]*/)?";  // "**/": zero or more directories
        i = run + 1;
      } else if (whole_component) {
        re += kAnyRun;  // trailing "/**": everything below
        i = run;
      } else {
        re += path_mode ? "[^/]*" : kAnyRun;
        i = run;
      }
      continue;
    }
    ByteSet set;
    if (c == '?') {
      set = any_byte;
      ++i;
    } else if (c == '[') {
      absl::StatusOr<size_t> end = ParseBracket(glob, i, fold_ascii, &set);
      if (!end.ok()) return end.status();
      i = *end;
    } else {
      unsigned char literal = c;
      if (c == '\\') {
        if (i + 1 == glob.size()) return GlobError(glob, i, "trailing backslash");
        literal = static_cast<unsigned char>(glob[++i]);
      }
      set.set(literal);
      if (fold_ascii && IsAsciiLetter(literal)) FoldAscii(&set);
      ++i;
    }
    AppendByteSet(&re, set);
  }
  return re;
}

Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;
Matcher::~Matcher() = default;

void Matcher::SetLiteral(Kind kind, std::string_view literal, bool case_insensitive) {
  kind_ = kind;
  fold_ascii_ = case_insensitive;
  literal_ = case_insensitive ? absl::AsciiStrToLower(AbslView(literal)) : std::string(literal);
}

bool Matcher::TryLiteralGlob(std::string_view glob, bool case_insensitive) {
  size_t lead = 0;
  while (lead < glob.size() && glob[lead] == '*') ++lead;
  size_t trail = 0;
  while (trail < glob.size() - lead && glob[glob.size() - 1 - trail] == '*') ++trail;
  const std::string_view core = glob.substr(lead, glob.size() - lead - trail);
  if (HasGlobMeta(core)) return false;
  if (core.empty()) {
    kind_ = Kind::kAll;
  } else if (lead && trail) {
    SetLiteral(Kind::kContains, core, case_insensitive);
  } else if (lead) {
    SetLiteral(Kind::kSuffix, core, case_insensitive);
  } else if (trail) {
    SetLiteral(Kind::kPrefix, core, case_insensitive);
  } else {
    SetLiteral(Kind::kExact, core, case_insensitive);
  }
  return true;
}

absl::Status Matcher::CompileRegex(const std::string& regex, Kind kind, std::string_view pattern,
                                   v1::PatternSyntax syntax, bool case_insensitive,
                                   const MatcherLimits& limits) {
  RE2::Options options;
  options.set_log_errors(false);
  if (kind == Kind::kGlob) {
    // Bytes, not characters; the translation folded case itself.
    options.set_encoding(RE2::Options::EncodingLatin1);
  } else {
    options.set_case_sensitive(!case_insensitive);
  }
  options.set_max_mem(limits.max_regex_memory);
  auto re = std::make_unique<RE2>(regex, options);
  if (!re->ok()) {
    const bool too_big = re->error_code() == RE2::ErrorPatternTooLarge;
    return absl::InvalidArgumentError(
        absl::StrCat(syntax == v1::PATTERN_SYNTAX_REGEX ? "regular expression" : "pattern", " \"",
                     absl::CHexEscape(AbslView(pattern)), "\" ",
                     too_big ? "needs more memory than allowed" : "is invalid", ": ", re->error()));
  }
  kind_ = kind;
  regex_ = std::move(re);
  // \b and \B look past the end of what they match: a partial match need
  // not be a whole match then, which the range is about.
  if (kind == Kind::kGlob || (AnchoredAtStart(regex) && regex.find("\\b") == std::string::npos &&
                              regex.find("\\B") == std::string::npos)) {
    SetPossibleRange();
  }
  return absl::OkStatus();
}

void Matcher::SetPossibleRange() {
  // Longer bounds cut more names but cost more to compare; names that share
  // a prefix this long are few.
  constexpr int kMaxRangeBytes = 32;
  has_range_ = regex_->PossibleMatchRange(&range_min_, &range_max_, kMaxRangeBytes);
  if (!has_range_) return;
  size_t common = 0;
  while (common < range_min_.size() && common < range_max_.size() &&
         range_min_[common] == range_max_[common]) {
    ++common;
  }
  range_prefix_ = range_min_.substr(0, common);
  range_prefix_ascii_ = !range_prefix_.empty() && IsAscii(range_prefix_);
}

bool Matcher::InPossibleRange(std::string_view subject) const {
  if (!has_range_) return true;
  if (kind_ == Kind::kGlob) return subject >= range_min_ && subject <= range_max_;
  // Partial: a prefix p of the subject is in [min, max], so p (and every
  // string between the bounds) begins with their common prefix, and the
  // subject is at least p, at least min.
  return subject.substr(0, range_prefix_.size()) == range_prefix_ && subject >= range_min_;
}

bool AnchoredAtStart(std::string_view regex) {
  size_t i = 0;
  // Flag groups first: "(?i)", "(?s-U)"; with 'm', '^' also matches after a
  // newline, which names may hold.
  while (regex.substr(i, 2) == "(?") {
    const size_t close = regex.find(')', i);
    if (close == std::string_view::npos) return false;
    const std::string_view flags = regex.substr(i + 2, close - i - 2);
    if (flags.find_first_not_of("isU-") != std::string_view::npos) return false;
    i = close + 1;
  }
  if (regex.substr(i, 1) != "^") return false;
  if (i + 1 < regex.size() &&
      std::string_view("*+?{").find(regex[i + 1]) != std::string_view::npos) {
    return false;
  }
  return regex.find('|') == std::string_view::npos;
}

absl::StatusOr<Matcher> Matcher::Create(std::string_view pattern, v1::PatternSyntax syntax,
                                        bool case_insensitive, const MatcherLimits& limits) {
  if (pattern.empty()) return absl::InvalidArgumentError("pattern is empty");
  if (pattern.size() > limits.max_pattern_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pattern is ", pattern.size(), " bytes long; the limit is ", limits.max_pattern_bytes));
  }
  if (syntax == v1::PATTERN_SYNTAX_UNSPECIFIED) syntax = v1::PATTERN_SYNTAX_GLOB;

  Matcher m;
  std::string regex;
  Kind regex_kind = Kind::kRegexPartial;
  switch (syntax) {
    case v1::PATTERN_SYNTAX_SUBSTRING:
      // The literal fast path folds ASCII only, so a non-ASCII
      // case-insensitive substring goes through RE2, which folds Unicode (as
      // regular expressions do).
      if (!case_insensitive || IsAscii(pattern)) {
        m.SetLiteral(Kind::kContains, pattern, case_insensitive);
        return m;
      }
      regex = RE2::QuoteMeta(pattern);
      break;
    case v1::PATTERN_SYNTAX_GLOB: {
      // Globs fold ASCII only, as git's wildmatch.
      m.matches_path_ = pattern.find('/') != std::string_view::npos;
      if (m.matches_path_ && pattern.front() == '/') {
        return absl::InvalidArgumentError(
            "a glob must not start with '/': it is matched against paths relative to the "
            "search path");
      }
      if (!m.matches_path_ && m.TryLiteralGlob(pattern, case_insensitive)) return m;
      absl::StatusOr<std::string> translated =
          GlobToRegex(pattern, m.matches_path_, case_insensitive);
      if (!translated.ok()) return translated.status();
      regex = *std::move(translated);
      regex_kind = Kind::kGlob;
      break;
    }
    case v1::PATTERN_SYNTAX_REGEX:
      regex = std::string(pattern);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("syntax ", static_cast<int>(syntax), " is unknown"));
  }
  absl::Status compiled =
      m.CompileRegex(regex, regex_kind, pattern, syntax, case_insensitive, limits);
  if (!compiled.ok()) return compiled;
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
    case Kind::kGlob:
      return InPossibleRange(subject) && RE2::FullMatch(subject, *regex_);
    case Kind::kRegexPartial: {
      // Before the UTF-8 check: the subject as RE2 sees it begins with an
      // ASCII prefix exactly when its raw bytes do (repairs only touch bytes
      // of 0x80 and up, and turn them into such bytes).
      // The first byte alone turns most names away, without a memcmp call.
      if (range_prefix_ascii_ &&
          (subject.size() < range_prefix_.size() || subject[0] != range_prefix_[0] ||
           subject.compare(0, range_prefix_.size(), range_prefix_) != 0)) {
        return false;
      }
      const std::string_view utf8 = Utf8Subject(subject);
      return InPossibleRange(utf8) && RE2::PartialMatch(utf8, *regex_);
    }
  }
  return false;
}

}  // namespace filemesh::internal
