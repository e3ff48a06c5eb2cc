#include "fs/matcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

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
        MatchCase{"\xc3\xa9t\xc3\xa9*", G, true, "\xc3\x89T\xc3\x89.md", true},  // Unicode folding
        MatchCase{"*", G, false,
                  "bad\xff"
                  "name",
                  true},
        MatchCase{"bad?name", G, false,
                  "bad\xff"
                  "name",
                  true},  // one byte, one character
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
      {"", v1::PATTERN_SYNTAX_GLOB},           {"", v1::PATTERN_SYNTAX_REGEX},
      {"[abc", v1::PATTERN_SYNTAX_GLOB},       {"abc\\", v1::PATTERN_SYNTAX_GLOB},
      {"[z-a]", v1::PATTERN_SYNTAX_GLOB},      {"/etc/*.conf", v1::PATTERN_SYNTAX_GLOB},
      {"(unclosed", v1::PATTERN_SYNTAX_REGEX}, {"a{2000}", v1::PATTERN_SYNTAX_REGEX},
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

TEST(GlobToRegexTest, TranslatesComponents) {
  EXPECT_EQ(*GlobToRegex("*.h", false), "(?s:.*)\\.h");
  EXPECT_EQ(*GlobToRegex("a/*.h", true), "a/[^/]*\\.h");
  EXPECT_EQ(*GlobToRegex("a/**/b", true), "a/(?s:.*/)?b");
  EXPECT_EQ(*GlobToRegex("a/**", true), "a/(?s:.*)");
  EXPECT_EQ(*GlobToRegex("a**b", true), "a[^/]*b");
  EXPECT_EQ(*GlobToRegex("[!a-c]", true), "[^a-c/]");
}

}  // namespace
}  // namespace filemesh::internal
