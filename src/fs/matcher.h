// Compiled search patterns: glob, substring or RE2 regular expression.
//
// Globs follow git's wildmatch over bytes (docs/cli.md, "Glob syntax").
// Simple globs (`*.h`, `foo*`, `*log*`, `Makefile`) and substrings match with
// plain byte comparisons; everything else is compiled to one RE2 program (a
// glob to a Latin-1 one: one rune per byte), so matching is linear in the
// subject whatever the pattern.

#ifndef FILEMESH_SRC_FS_MATCHER_H_
#define FILEMESH_SRC_FS_MATCHER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "filemesh/v1/filemesh.pb.h"

namespace re2 {
class RE2;
}

namespace filemesh::internal {

struct MatcherLimits {
  size_t max_pattern_bytes = 4096;
  int64_t max_regex_memory = 8 << 20;
};

class Matcher {
 public:
  // InvalidArgument for an empty or too long pattern, a malformed glob or
  // regular expression, or one whose program exceeds the memory limit.
  static absl::StatusOr<Matcher> Create(std::string_view pattern, v1::PatternSyntax syntax,
                                        bool case_insensitive, const MatcherLimits& limits = {});

  Matcher(Matcher&&) noexcept;
  Matcher& operator=(Matcher&&) noexcept;
  ~Matcher();

  // True if the subject is the path relative to the search start (a glob with
  // '/'); otherwise it is the entry name.
  bool matches_path() const { return matches_path_; }

  // Thread-safe.
  bool Match(std::string_view subject) const;

 private:
  enum class Kind { kAll, kExact, kPrefix, kSuffix, kContains, kGlob, kRegexPartial };
  Matcher() = default;

  // Create's steps.
  void SetLiteral(Kind kind, std::string_view literal, bool case_insensitive);
  // A glob without '/' whose only metacharacters are leading or trailing
  // stars becomes a literal comparison; true when it did.
  bool TryLiteralGlob(std::string_view glob, bool case_insensitive);
  absl::Status CompileRegex(const std::string& regex, Kind kind, std::string_view pattern,
                            v1::PatternSyntax syntax, bool case_insensitive,
                            const MatcherLimits& limits);

  // A cheap test before RE2 where RE2 can give one (most names of a tree
  // fail it with a comparison or two instead of a run of RE2: the regex
  // query of bench/index_bench.sh over 2M names). RE2::PossibleMatchRange
  // bounds the subjects a pattern matches whole, from their start: a glob's
  // subject lies in [range_min_, range_max_]; a subject a start-anchored
  // regex matches in part has a prefix in it, so it is at least range_min_
  // and begins with the bounds' common prefix.
  void SetPossibleRange();
  bool InPossibleRange(std::string_view subject) const;

  Kind kind_ = Kind::kAll;
  bool matches_path_ = false;
  bool fold_ascii_ = false;  // literal kinds: compare ASCII case-insensitively
  std::string literal_;      // lower-cased when fold_ascii_
  std::unique_ptr<re2::RE2> regex_;
  bool has_range_ = false;
  std::string range_min_, range_max_;
  std::string range_prefix_;  // what range_min_ and range_max_ begin with
  bool range_prefix_ascii_ = false;
};

// True when every match of the RE2 regular expression `regex` starts at the
// subject's start: it opens with '^' (after flag groups without 'm'), not
// repeated, and holds no '|' at all (`^a|b` matches "xb"). Conservative:
// false says nothing. Exposed for tests.
bool AnchoredAtStart(std::string_view regex);

// Translates a glob to an RE2 pattern for the Latin-1 encoding, where every
// byte is one rune (exposed for tests). `path_mode`: the subject is a path, so
// '*' and '?' stop at '/', and a whole-component "**" spans directories.
// `fold_ascii`: letters match either case (ASCII only, as git's wildmatch).
// InvalidArgument for a '[' without its ']', a trailing backslash, or an
// unknown "[:class:]".
absl::StatusOr<std::string> GlobToRegex(std::string_view glob, bool path_mode, bool fold_ascii);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_MATCHER_H_
