#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "filemesh/v1/filemesh.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "test_tree.h"

namespace filemesh::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out;
  std::string err;
};

std::string Slurp(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

Result RunCli(std::vector<std::string> args) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  Result r;
  r.code = Run(args, out, err);
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.Dir("src");
    tree_.File("src/a.h", 5);
    tree_.File("src/b.cc", 50);
    tree_.File("src/.hidden.h");
    tree_.File("top.h", 500);
  }
  testing::TestTree tree_;
};

TEST_F(CliTest, LsPrintsOnePathPerLine) {
  const Result r = RunCli({"ls", "--root", tree_.root(), "src"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "src/a.h\nsrc/b.cc\n");
  EXPECT_EQ(RunCli({"ls", "--root=" + tree_.root(), "--hidden", "src"}).out,
            "src/.hidden.h\nsrc/a.h\nsrc/b.cc\n");
  EXPECT_EQ(RunCli({"ls", "--root", tree_.root(), "--sort", "size", "--desc", "src"}).out,
            "src/b.cc\nsrc/a.h\n");
}

TEST_F(CliTest, LsPagesThroughTokens) {
  const Result first = RunCli({"ls", "--root", tree_.root(), "--page-size", "1", "src"});
  EXPECT_EQ(first.out, "src/a.h\n");
  const std::string marker = "--page-token ";
  const size_t at = first.err.find(marker);
  ASSERT_NE(at, std::string::npos) << first.err;
  std::string token = first.err.substr(at + marker.size());
  token.pop_back();  // newline
  const Result second =
      RunCli({"ls", "--root", tree_.root(), "--page-size", "1", "--page-token", token, "src"});
  EXPECT_EQ(second.code, kExitOk) << second.err;
  EXPECT_EQ(second.out, "src/b.cc\n");
  EXPECT_EQ(second.err, "");
}

TEST_F(CliTest, FindPrintsSortedMatchesAndJson) {
  Result r = RunCli({"find", "--root", tree_.root(), "*.h"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "src/a.h\ntop.h\n");
  r = RunCli({"find", "--root", tree_.root(), "--path", "src", "-i", "--substring", "B."});
  EXPECT_EQ(r.out, "src/b.cc\n");
  r = RunCli({"find", "--root", tree_.root(), "--regex", "^[ab]\\.", "--type", "f", "-0"});
  EXPECT_EQ(r.out, std::string("src/a.h\0src/b.cc\0", 17));

  r = RunCli({"find", "--root", tree_.root(), "--json", "--min-size", "100", "*"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"scanned_entries\""));  // snake_case field names
  v1::SearchResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok()) << r.out;
  ASSERT_EQ(parsed.matches_size(), 1);
  EXPECT_EQ(parsed.matches(0).path(), "top.h");
  EXPECT_EQ(parsed.matches(0).size(), 500u);
}

TEST_F(CliTest, TruncationIsReportedOnStderr) {
  const Result r = RunCli({"find", "--root", tree_.root(), "--max-results", "1", "*.h"});
  EXPECT_EQ(r.code, kExitOk);
  // Which match is kept when the walk stops early depends on thread timing.
  EXPECT_THAT(r.out, ::testing::AnyOf("src/a.h\n", "top.h\n"));
  EXPECT_THAT(r.err, HasSubstr("truncated"));
}

TEST_F(CliTest, LibraryErrorsExitOneWithTheStatus) {
  Result r = RunCli({"ls", "--root", tree_.root(), "../"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_EQ(r.out, "");
  r = RunCli({"find", "--root", tree_.root(), "--regex", "("});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("regular expression"));
  r = RunCli({"ls", "--root", tree_.Abs("nope")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"ls", "--bogus"},
      {"ls", "a", "b"},
      {"ls", "--sort", "colour"},
      {"ls", "--page-size", "0"},
      {"ls", "--page-size", "10001"},
      {"ls", "--page-size", "-5"},
      {"ls", "--root"},
      {"find"},
      {"find", "a", "b"},
      {"find", "--regex", "--substring", "x"},
      {"find", "--type", "q", "x"},
      {"find", "--max-depth", "0", "x"},
      {"find", "--max-results", "100001", "x"},
      {"find", "--min-size", "lots", "x"},
  };
  for (const auto& args : bad) {
    const Result r = RunCli(args);
    EXPECT_EQ(r.code, kExitUsage) << ::testing::PrintToString(args);
    EXPECT_FALSE(r.err.empty());
  }
}

TEST_F(CliTest, HelpAndVersion) {
  EXPECT_THAT(RunCli({"ls", "--help"}).out, HasSubstr("Usage: filemesh ls"));
  EXPECT_THAT(RunCli({"find", "-h"}).out, HasSubstr("Usage: filemesh find"));
  EXPECT_THAT(RunCli({"--help"}).out, HasSubstr("filemesh ls"));
  EXPECT_THAT(RunCli({"--version"}).out, HasSubstr("filemesh 0."));
}

}  // namespace
}  // namespace filemesh::cli
