#include "fs/matcher.h"

#include <iterator>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "gtest/gtest.h"
#include "re2/re2.h"

namespace filemesh::internal {
namespace {

struct MatchCase {
  std::string pattern;
  v1::PatternSyntax syntax;
  bool case_insensitive;
  std::string subject;
  bool expected;
};

void PrintTo(const MatchCase& c, std::ostream* os) {
  *os << "{" << ::testing::PrintToString(c.pattern) << " syntax " << c.syntax
      << (c.case_insensitive ? " -i" : "") << " on " << ::testing::PrintToString(c.subject)
      << " -> " << c.expected << "}";
}

class MatcherTableTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(MatcherTableTest, MatchesAsDocumented) {
  const MatchCase& c = GetParam();
  absl::StatusOr<Matcher> m = Matcher::Create(c.pattern, c.syntax, c.case_insensitive);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->Match(c.subject), c.expected)
      << "pattern '" << c.pattern << "' subject '" << c.subject << "'";
}

constexpr auto G = v1::PATTERN_SYNTAX_GLOB;
constexpr auto S = v1::PATTERN_SYNTAX_SUBSTRING;
constexpr auto R = v1::PATTERN_SYNTAX_REGEX;

INSTANTIATE_TEST_SUITE_P(
    Table, MatcherTableTest,
    ::testing::Values(
        // Glob fast paths: exact, prefix, suffix, contains, everything.
        MatchCase{"*.h", G, false, "stdio.h", true}, MatchCase{"*.h", G, false, "stdio.hpp", false},
        MatchCase{"*.H", G, true, "stdio.h", true}, MatchCase{"*.h", G, false, "STDIO.H", false},
        MatchCase{"Make*", G, false, "Makefile", true},
        MatchCase{"make*", G, true, "Makefile", true},
        MatchCase{"*log*", G, false, "syslog.1", true},
        MatchCase{"README", G, false, "README", true},
        MatchCase{"README", G, false, "README.md", false},
        MatchCase{"readme", G, true, "ReadMe", true}, MatchCase{"*", G, false, "anything", true},
        MatchCase{"**", G, false, "x", true},
        // Globs through RE2.
        MatchCase{"*.[ch]", G, false, "a.c", true}, MatchCase{"*.[ch]", G, false, "a.o", false},
        MatchCase{"*.[!ch]", G, false, "a.o", true}, MatchCase{"*.[^ch]", G, false, "a.c", false},
        MatchCase{"file?.txt", G, false, "file1.txt", true},
        MatchCase{"file?.txt", G, false, "file10.txt", false},
        MatchCase{"[a-c]*", G, false, "beta", true}, MatchCase{"[a-c]*", G, false, "delta", false},
        MatchCase{"[]]x", G, false, "]x", true}, MatchCase{"\\*x", G, false, "*x", true},
        MatchCase{"\\*x", G, false, "ax", false}, MatchCase{"a.b", G, false, "axb", false},
        MatchCase{"(x)+", G, false, "(x)+", true}, MatchCase{"*.TXT", G, true, "a.txt", true},
        MatchCase{"\xc3\xa9t\xc3\xa9*", G, true, "\xc3\x89T\xc3\x89.md", false},  // ASCII folding
        MatchCase{"\xc3\xa9t\xc3\xa9*", G, true, "\xc3\xa9T\xc3\xa9.md", true},
        MatchCase{"*", G, false,
                  "bad\xff"
                  "name",
                  true},
        MatchCase{"bad?name", G, false,
                  "bad\xff"
                  "name",
                  true},  // one byte
        MatchCase{"*.[ch]", G, false, "\xff.c", true},
        MatchCase{"^\\xff", R, false,
                  "\xff"
                  "x",
                  false},  // an escape in the pattern, not a byte
        MatchCase{"x$", R, false, "\xe9x", true},
        MatchCase{"\xc3\xa9", S, true, "\xc3\x89\xff", true},  // folding survives a stray byte
        // Path globs: '*' stops at '/', "**" spans directories.
        MatchCase{"src/*.h", G, false, "src/a.h", true},
        MatchCase{"src/*.h", G, false, "src/x/a.h", false},
        MatchCase{"src/**/*.h", G, false, "src/a.h", true},
        MatchCase{"src/**/*.h", G, false, "src/x/y/a.h", true},
        MatchCase{"src/**/*.h", G, false, "lib/src/a.h", false},
        MatchCase{"**/*.h", G, false, "a.h", true}, MatchCase{"**/*.h", G, false, "d/e/a.h", true},
        MatchCase{"src/**", G, false, "src/x/y", true}, MatchCase{"a/?", G, false, "a//", false},
        MatchCase{"a/[!x]", G, false, "a//", false}, MatchCase{"SRC/*.H", G, true, "src/a.h", true},
        // Substring.
        MatchCase{"conf", S, false, "nginx.conf", true},
        MatchCase{"CONF", S, true, "nginx.conf", true},
        MatchCase{"CONF", S, false, "nginx.conf", false}, MatchCase{"*", S, false, "a*b", true},
        MatchCase{"*", S, false, "ab", false}, MatchCase{"\xc3\x89", S, true, "caf\xc3\xa9", true},
        // Regex: unanchored unless anchored.
        MatchCase{"^lib.*\\.so(\\.\\d+)*$", R, false, "libc.so.6", true},
        MatchCase{"^lib.*\\.so$", R, false, "libc.so.6", false},
        MatchCase{"\\d{3}", R, false, "img_123.png", true},
        MatchCase{"^IMG", R, true, "img_1.png", true}));

TEST(MatcherTest, PathGlobsAskForThePath) {
  EXPECT_TRUE(Matcher::Create("src/*.h", v1::PATTERN_SYNTAX_GLOB, false)->matches_path());
  EXPECT_FALSE(Matcher::Create("*.h", v1::PATTERN_SYNTAX_GLOB, false)->matches_path());
  EXPECT_FALSE(Matcher::Create("a/b", v1::PATTERN_SYNTAX_SUBSTRING, false)->matches_path());
}

TEST(MatcherTest, UnspecifiedSyntaxIsGlob) {
  absl::StatusOr<Matcher> m = Matcher::Create("*.h", v1::PATTERN_SYNTAX_UNSPECIFIED, false);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->Match("a.h"));
  EXPECT_FALSE(m->Match("a.c"));
}

TEST(MatcherTest, MalformedPatternsAreInvalidArgument) {
  const struct {
    std::string pattern;
    v1::PatternSyntax syntax;
  } cases[] = {
      {"", v1::PATTERN_SYNTAX_GLOB},
      {"", v1::PATTERN_SYNTAX_REGEX},
      {"[abc", v1::PATTERN_SYNTAX_GLOB},
      {"abc\\", v1::PATTERN_SYNTAX_GLOB},
      {"/etc/*.conf", v1::PATTERN_SYNTAX_GLOB},
      {"(unclosed", v1::PATTERN_SYNTAX_REGEX},
      {"a{2000}", v1::PATTERN_SYNTAX_REGEX},
      {"*", v1::PATTERN_SYNTAX_REGEX},
  };
  for (const auto& c : cases) {
    absl::StatusOr<Matcher> m = Matcher::Create(c.pattern, c.syntax, false);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << c.pattern;
  }
  EXPECT_EQ(Matcher::Create("x", static_cast<v1::PatternSyntax>(42), false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MatcherTest, RegexOverMemoryBudgetIsRejectedNotRun) {
  MatcherLimits limits;
  limits.max_regex_memory = 64 << 10;
  // A thousand copies of a Unicode class: far beyond 64 KiB of program.
  absl::StatusOr<Matcher> m =
      Matcher::Create("\\pL{1000}", v1::PATTERN_SYNTAX_REGEX, false, limits);
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("memory"), absl::string_view::npos) << m.status();
}

TEST(MatcherTest, PatternLengthIsCapped) {
  MatcherLimits limits;
  limits.max_pattern_bytes = 16;
  EXPECT_EQ(
      Matcher::Create(std::string(17, 'a'), v1::PATTERN_SYNTAX_GLOB, false, limits).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Matcher::Create(std::string(16, 'a'), v1::PATTERN_SYNTAX_GLOB, false, limits).ok());
}

TEST(MatcherTest, PathologicalRegexRunsInLinearTime) {
  // Catastrophic for a backtracking engine; RE2 answers at once.
  absl::StatusOr<Matcher> m = Matcher::Create("^(a+)+$", v1::PATTERN_SYNTAX_REGEX, false);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->Match(std::string(5000, 'a') + "!"));
}

TEST(MatcherTest, AnchoredAtStartIsConservative) {
  EXPECT_TRUE(AnchoredAtStart("^lexer_9[0-9]\\.cc$"));
  EXPECT_TRUE(AnchoredAtStart("(?i)^abc"));
  EXPECT_TRUE(AnchoredAtStart("(?s)(?U)^a.*b"));
  EXPECT_TRUE(AnchoredAtStart("^"));
  EXPECT_FALSE(AnchoredAtStart("abc"));
  EXPECT_FALSE(AnchoredAtStart("^a|b"));    // "xb" matches
  EXPECT_FALSE(AnchoredAtStart("^(a|b)"));  // any '|' at all
  EXPECT_FALSE(AnchoredAtStart("^*a"));     // "xa" matches
  EXPECT_FALSE(AnchoredAtStart("^?a"));
  EXPECT_FALSE(AnchoredAtStart("(?m)^a"));  // after a newline too
  EXPECT_FALSE(AnchoredAtStart("(?im)^a"));
  EXPECT_FALSE(AnchoredAtStart("(?i:^a)b"));
  EXPECT_FALSE(AnchoredAtStart("(?i"));
  EXPECT_FALSE(AnchoredAtStart("\\^a"));
  EXPECT_FALSE(AnchoredAtStart(""));
}

// The range test before RE2 (Matcher::InPossibleRange) never changes an
// answer: every pattern on every subject answers as RE2 alone does.
TEST(MatcherTest, ThePossibleRangeNeverChangesAnAnswer) {
  const std::vector<std::string> regexes = {"^lexer_9[0-9]\\.cc$",
                                            "^a",
                                            "^ab*c",
                                            "(?i)^abc",
                                            "(?i)^k",
                                            "^[a-c]+$",
                                            "^\xe2\x84\xaa",
                                            "^.",
                                            "^a.c$",
                                            "^$",
                                            "(?s)^a.b",
                                            "^\\x{fffd}",
                                            "^z{2,3}",
                                            "^abc|z",
                                            "(?m)^b",
                                            "^*b",
                                            "^a\\B",
                                            "^a(b\\B)?",
                                            "^a\\b",
                                            "^ab\\B."};
  const std::vector<std::string> globs = {"a*",    "lexer_9[0-9].cc", "[a-c]*", "?b*",  "*",
                                          "ab\\*", "[!a]*c",          "k*",     "x/*/y"};
  const std::string alphabet[] = {"a",
                                  "b",
                                  "c",
                                  "A",
                                  "B",
                                  "K",
                                  "k",
                                  "z",
                                  "\n",
                                  "\xff",
                                  "\xe2\x84\xaa",
                                  ".",
                                  "9",
                                  "lexer_9",
                                  "/",
                                  "\xef\xbf\xbd",
                                  "-"};
  std::vector<std::string> subjects = {""};
  uint64_t x = 0x9e3779b97f4a7c15u;  // a fixed sequence: failures reproduce
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const int length = 1 + static_cast<int>(x % 6);
    for (int j = 0; j < length; ++j) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      s += alphabet[x % std::size(alphabet)];
    }
    subjects.push_back(s);
  }
  subjects.push_back("lexer_95.cc");
  subjects.push_back("LEXER_95.CC");
  int matched = 0;
  for (bool fold : {false, true}) {
    RE2::Options options;
    options.set_case_sensitive(!fold);
    options.set_log_errors(false);
    for (const std::string& regex : regexes) {
      absl::StatusOr<Matcher> m = Matcher::Create(regex, v1::PATTERN_SYNTAX_REGEX, fold);
      ASSERT_TRUE(m.ok()) << m.status();
      const RE2 re(regex, options);
      for (const std::string& subject : subjects) {
        std::string utf8;
        ReplaceInvalidUtf8(subject, "\xef\xbf\xbd", &utf8);
        const bool expected = RE2::PartialMatch(utf8, re);
        matched += expected;
        ASSERT_EQ(m->Match(subject), expected)
            << "regex " << ::testing::PrintToString(regex) << (fold ? " -i" : "") << " on "
            << ::testing::PrintToString(subject);
      }
    }
    RE2::Options latin1;
    latin1.set_encoding(RE2::Options::EncodingLatin1);
    for (const std::string& glob : globs) {
      absl::StatusOr<Matcher> m = Matcher::Create(glob, v1::PATTERN_SYNTAX_GLOB, fold);
      ASSERT_TRUE(m.ok()) << m.status();
      const RE2 re(*GlobToRegex(glob, m->matches_path(), fold), latin1);
      for (const std::string& subject : subjects) {
        const bool expected = RE2::FullMatch(subject, re);
        matched += expected;
        ASSERT_EQ(m->Match(subject), expected)
            << "glob " << ::testing::PrintToString(glob) << (fold ? " -i" : "") << " on "
            << ::testing::PrintToString(subject);
      }
    }
  }
  EXPECT_GT(matched, 1000);  // the subjects do reach the matches
}

TEST(GlobToRegexTest, TranslatesToByteClasses) {
  EXPECT_EQ(*GlobToRegex("*.h", false, false), "[\\x00-\\xff]*\\x2eh");
  EXPECT_EQ(*GlobToRegex("a/*.h", true, false), "a/[^/]*\\x2eh");
  EXPECT_EQ(*GlobToRegex("a/**/b", true, false), "a/(?:[\\x00-\\xff]*/)?b");
  EXPECT_EQ(*GlobToRegex("a/**", true, false), "a/[\\x00-\\xff]*");
  EXPECT_EQ(*GlobToRegex("a**b", true, false), "a[^/]*b");
  EXPECT_EQ(*GlobToRegex("a/?", true, false), "a/[\\x00-\\x2e0-\\xff]");
  EXPECT_EQ(*GlobToRegex("[!a-c]", false, false), "[\\x00-\\x2e0-\\x60d-\\xff]");
  EXPECT_EQ(*GlobToRegex("x[[:digit:]]", false, true), "[Xx][0-9]");
  EXPECT_EQ(*GlobToRegex("[z-a]", false, false), "z");
  EXPECT_EQ(*GlobToRegex("x/[/]", true, false), "x/[^\\x00-\\xff]");
}

// Git's wildmatch, as docs/cli.md ("Glob syntax") states it: each row is a
// glob, a subject (the name, or the relative path when the glob has a '/'),
// and whether it matches case-sensitively and with -i.
struct GlobCase {
  std::string glob;
  std::string subject;
  bool match;
  bool match_folded;
};

void PrintTo(const GlobCase& c, std::ostream* os) {
  *os << ::testing::PrintToString(c.glob) << " on " << ::testing::PrintToString(c.subject);
}

class GlobTableTest : public ::testing::TestWithParam<GlobCase> {};

TEST_P(GlobTableTest, MatchesLikeGitWildmatch) {
  const GlobCase& c = GetParam();
  for (const bool fold : {false, true}) {
    absl::StatusOr<Matcher> m = Matcher::Create(c.glob, v1::PATTERN_SYNTAX_GLOB, fold);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->matches_path(), c.glob.find('/') != std::string::npos);
    EXPECT_EQ(m->Match(c.subject), fold ? c.match_folded : c.match) << (fold ? "with -i" : "");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Wildmatch, GlobTableTest,
    ::testing::Values(
        // Literals, '?' and '*'.
        GlobCase{"foo", "foo", true, true}, GlobCase{"foo", "bar", false, false},
        GlobCase{"foo", "FOO", false, true}, GlobCase{"???", "foo", true, true},
        GlobCase{"??", "foo", false, false}, GlobCase{"??*", "a", false, false},
        GlobCase{"a?c", "abc", true, true}, GlobCase{"a?c", "ac", false, false},
        GlobCase{"*", "foo", true, true}, GlobCase{"**", "foo", true, true},
        GlobCase{"f*", "foo", true, true}, GlobCase{"*f", "foo", false, false},
        GlobCase{"*foo*", "foo", true, true}, GlobCase{"*ob*a*r*", "foobar", true, true},
        GlobCase{"*ab", "aaaaaaabababab", true, true}, GlobCase{"*a*b", "xaxbxb", true, true},
        GlobCase{"*a*b", "xbxa", false, false}, GlobCase{"a*b*c", "axbyc", true, true},
        GlobCase{"-*", "-rf", true, true}, GlobCase{"*.TXT", "a.txt", false, true},
        // Escapes.
        GlobCase{"foo\\*", "foo*", true, true}, GlobCase{"foo\\*bar", "foobar", false, false},
        GlobCase{"f\\\\oo", "f\\oo", true, true}, GlobCase{"\\a", "a", true, true},
        GlobCase{"\\A", "a", false, true}, GlobCase{"\\[x]", "[x]", true, true},
        GlobCase{"\\[x]", "x", false, false}, GlobCase{"\\?", "?", true, true},
        GlobCase{"\\?", "a", false, false},
        // Bracket expressions: members, ranges, negation.
        GlobCase{"*[al]?", "ball", true, true}, GlobCase{"[ten]", "ten", false, false},
        GlobCase{"**[!te]", "ten", true, true}, GlobCase{"**[!ten]", "ten", false, false},
        GlobCase{"t[a-g]n", "ten", true, true}, GlobCase{"t[!a-g]n", "ten", false, false},
        GlobCase{"t[!a-g]n", "ton", true, true}, GlobCase{"t[^a-g]n", "ton", true, true},
        GlobCase{"[x]", "x", true, true}, GlobCase{"[x]", "[x]", false, false},
        GlobCase{"*.[ch]", "a.c", true, true}, GlobCase{"*.[ch]", "a.o", false, false},
        // ']' first is a member; '-' first or last is a member.
        GlobCase{"a[]]b", "a]b", true, true}, GlobCase{"a[]-]b", "a-b", true, true},
        GlobCase{"a[]-]b", "a]b", true, true}, GlobCase{"a[]-]b", "aab", false, false},
        GlobCase{"a[]a-]b", "aab", true, true}, GlobCase{"]", "]", true, true},
        GlobCase{"[]a]", "a", true, true}, GlobCase{"[!]a]", "b", true, true},
        GlobCase{"[!]a]", "]", false, false}, GlobCase{"[!]-]", "]", false, false},
        GlobCase{"[!]-]", "a", true, true}, GlobCase{"[-a]", "-", true, true},
        GlobCase{"[a-]", "-", true, true}, GlobCase{"[--0]", ".", true, true},
        // After a range, '-' is a member again; a reversed range holds only its
        // first end (a member before the '-' is read).
        GlobCase{"[a-c-e]", "d", false, false}, GlobCase{"[a-c-e]", "-", true, true},
        GlobCase{"[a-c-e]", "e", true, true}, GlobCase{"[z-a]", "m", false, false},
        GlobCase{"[z-a]", "z", true, true}, GlobCase{"[z-ab]", "b", true, true},
        // Escapes inside brackets.
        GlobCase{"[\\-_]", "-", true, true}, GlobCase{"[\\-_]", "_", true, true},
        GlobCase{"[\\-_]", ".", false, false}, GlobCase{"[\\]]", "]", true, true},
        GlobCase{"[\\]]", "\\", false, false}, GlobCase{"[\\\\]", "\\", true, true},
        GlobCase{"[!\\\\]", "\\", false, false}, GlobCase{"[A-\\\\]", "G", true, true},
        GlobCase{"[A-\\\\]", "g", false, true}, GlobCase{"[a-\\z]", "m", true, true},
        // POSIX classes (the C locale's, ASCII only).
        GlobCase{"[[:alpha:]]", "a", true, true}, GlobCase{"[[:alpha:]]", "1", false, false},
        GlobCase{"[[:alpha:]]", "\xc3", false, false},
        GlobCase{"[[:digit:]][[:digit:]]", "42", true, true},
        GlobCase{"[[:upper:]]", "A", true, true}, GlobCase{"[[:upper:]]", "a", false, true},
        GlobCase{"[[:lower:]]", "A", false, true}, GlobCase{"[[:lower:]]", "a", true, true},
        GlobCase{"[[:space:]]", " ", true, true}, GlobCase{"[[:space:]]", "\t", true, true},
        GlobCase{"[[:space:]]", "\v", true, true}, GlobCase{"[[:space:]]", "x", false, false},
        GlobCase{"[[:blank:]]", "\t", true, true}, GlobCase{"[[:blank:]]", "\n", false, false},
        GlobCase{"[[:xdigit:]]", "F", true, true}, GlobCase{"[[:xdigit:]]", "g", false, false},
        GlobCase{"[[:punct:]]", "!", true, true}, GlobCase{"[[:punct:]]", "a", false, false},
        GlobCase{"[[:alnum:]]", "_", false, false}, GlobCase{"[[:alnum:]]", "7", true, true},
        GlobCase{"[[:cntrl:]]", "\x01", true, true}, GlobCase{"[[:cntrl:]]", "\x7f", true, true},
        GlobCase{"[[:graph:]]", " ", false, false}, GlobCase{"[[:print:]]", " ", true, true},
        GlobCase{"[![:digit:]]", "a", true, true}, GlobCase{"[![:digit:]]", "5", false, false},
        GlobCase{"[[:digit:][:upper:]]", "Z", true, true},
        GlobCase{"[[:digit:][:upper:]]", "z", false, true},
        GlobCase{"[[:digit:]a-c]", "b", true, true}, GlobCase{"[a-c[:digit:]x]", "x", true, true},
        GlobCase{"[[:digit:]-z]", "-", true, true}, GlobCase{"[[:digit:]-z]", "m", false, false},
        GlobCase{"*[[:digit:]]*", "file7.txt", true, true},
        GlobCase{"*[[:digit:]]*", "file.txt", false, false},
        GlobCase{"[[:alpha:]][[:alnum:]_]*", "abc_1", true, true},
        GlobCase{"[[:alpha:]][[:alnum:]_]*", "_a", false, false},
        // "[:" without ":]" before the first ']' is an ordinary '['.
        GlobCase{"[[:alpha]", "a", true, true}, GlobCase{"[[:alpha]", "[", true, true},
        GlobCase{"[[:alpha]", "x", false, false}, GlobCase{"[[:]", ":", true, true},
        // ASCII folding: letters, ranges and classes; bytes above 0x7f never.
        GlobCase{"[A-Z]", "a", false, true}, GlobCase{"[a-z]", "A", false, true},
        GlobCase{"[B-Za]", "A", false, true}, GlobCase{"[Z-y]", "z", false, true},
        GlobCase{"[Z-y]", "Z", true, true}, GlobCase{"[Z-y]", "_", true, true},
        GlobCase{"[!a]", "A", true, false}, GlobCase{"[A]", "a", false, true},
        GlobCase{"\xc3\x89*", "\xc3\xa9t\xc3\xa9", false, false},
        GlobCase{"\xc3\x89*", "\xc3\x89t\xc3\xa9", true, true},
        // Bytes: '?' and brackets match one byte, whatever the encoding.
        GlobCase{"?", "\xc3\xa9", false, false}, GlobCase{"??", "\xc3\xa9", true, true},
        GlobCase{"caf?", "caf\xff", true, true}, GlobCase{"[\xc3][\xa9]", "\xc3\xa9", true, true},
        GlobCase{"[!a]", "\xff", true, true}, GlobCase{"*\xa9", "caf\xc3\xa9", true, true},
        GlobCase{"bad[!x]name", "bad\xffname", true, true},
        // Paths: '*', '?' and brackets never match '/'.
        GlobCase{"foo/bar", "foo/bar", true, true}, GlobCase{"a/b*c", "a/bxc", true, true},
        GlobCase{"a/*", "a/b/c", false, false}, GlobCase{"a/*/c", "a/b/c", true, true},
        GlobCase{"foo/*/bar", "foo/x/y/bar", false, false}, GlobCase{"a/?/c", "a/b/c", true, true},
        GlobCase{"x/a?b", "x/a/b", false, false}, GlobCase{"x/a[/]b", "x/a/b", false, false},
        GlobCase{"x/a[!b]c", "x/a/c", false, false}, GlobCase{"x/a[--0]b", "x/a/b", false, false},
        GlobCase{"x/\\*", "x/*", true, true}, GlobCase{"x/\\*", "x/a", false, false},
        GlobCase{"x/[*]", "x/*", true, true}, GlobCase{"A/*.C", "a/x.c", false, true},
        GlobCase{"x/[[:upper:]]*", "x/Abc", true, true},
        GlobCase{"x/[[:upper:]]*", "x/abc", false, true},
        // "**" as a whole component spans directories; elsewhere it is '*'.
        GlobCase{"**/foo", "foo", true, true}, GlobCase{"**/foo", "x/foo", true, true},
        GlobCase{"**/foo", "x/y/foo", true, true}, GlobCase{"**/foo", "xfoo", false, false},
        GlobCase{"foo/**", "foo/x", true, true}, GlobCase{"foo/**", "foo/x/y", true, true},
        GlobCase{"foo/**", "foo", false, false}, GlobCase{"a/**/b", "a/b", true, true},
        GlobCase{"a/**/b", "a/x/b", true, true}, GlobCase{"a/**/b", "a/x/y/b", true, true},
        GlobCase{"a/**/b", "a/xb", false, false}, GlobCase{"a/**b", "a/x/b", false, false},
        GlobCase{"a/**b", "a/xb", true, true}, GlobCase{"a**/b", "ax/b", true, true},
        GlobCase{"a**/b", "a/x/b", false, false}, GlobCase{"***/foo", "x/y/foo", true, true},
        GlobCase{"a/***", "a/x/y", true, true}, GlobCase{"a/**/**/b", "a/b", true, true},
        GlobCase{"a/**/**/b", "a/x/y/b", true, true}, GlobCase{"a/**\\/b", "a/x/b", true, true},
        GlobCase{"a/**\\/b", "a/b", false, false}, GlobCase{"**/*.h", "a.h", true, true},
        GlobCase{"src/**/*.h", "lib/src/a.h", false, false},
        GlobCase{"SRC/**/*.H", "src/x/y/a.h", false, true}));

TEST(GlobTableTest, MalformedGlobsAreInvalidArgumentAndSayWhere) {
  const struct {
    std::string glob;
    std::string why;
  } cases[] = {
      {"[abc", "'[' without a closing ']' at offset 0"},
      {"x[", "'[' without a closing ']' at offset 1"},
      {"[]", "'[' without a closing ']'"},
      {"[!]", "'[' without a closing ']'"},
      {"[[:alpha:]", "'[' without a closing ']'"},
      {"[[:alpha:", "'[' without a closing ']'"},
      {"a\\", "trailing backslash at offset 1"},
      {"[\\", "trailing backslash in '[...]'"},
      {"[a-\\", "trailing backslash in '[...]'"},
      {"[[:foo:]]", "unknown character class \"[:foo:]\""},
      {"[[::]]", "unknown character class \"[::]\""},
      {"x/[[:Alpha:]]", "unknown character class \"[:Alpha:]\""},
  };
  for (const auto& c : cases) {
    for (const bool fold : {false, true}) {
      absl::StatusOr<Matcher> m = Matcher::Create(c.glob, v1::PATTERN_SYNTAX_GLOB, fold);
      ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << c.glob;
      EXPECT_NE(m.status().message().find(c.why), absl::string_view::npos) << m.status();
    }
  }
}

}  // namespace
}  // namespace filemesh::internal
