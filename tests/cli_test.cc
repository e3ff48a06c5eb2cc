#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

Result RunCli(std::vector<std::string> args, const RunOptions& options = {}) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  Result r;
  r.code = Run(args, out, err, options);
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
  Result r = RunCli({"find", "--root", tree_.root(), "--sort", "*.h"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "src/a.h\ntop.h\n");
  r = RunCli({"find", "--root", tree_.root(), "--path", "src", "-i", "--substring", "B."});
  EXPECT_EQ(r.out, "src/b.cc\n");
  r = RunCli(
      {"find", "--root", tree_.root(), "--regex", "^[ab]\\.", "--type", "f", "-0", "--sort"});
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

TEST_F(CliTest, FindAnswersFromAnIndexDirectory) {
  testing::TestTree index_dir;
  // No snapshot yet: an index is built, answers, and is saved.
  Result r = RunCli({"find", "--root", tree_.root(), "--index-dir", index_dir.root(), "*.h"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "src/a.h\ntop.h\n");
  EXPECT_THAT(r.err, HasSubstr("from the index built now as of"));
  // A file made since: the snapshot (younger than an hour) does not know it,
  // and says how old it is; --index-max-age 0s builds anew.
  tree_.File("src/new.h");
  r = RunCli({"find", "--root", tree_.root(), "--index-dir", index_dir.root(), "*.h"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "src/a.h\ntop.h\n");
  EXPECT_THAT(r.err, HasSubstr("from the index snapshot as of"));
  r = RunCli({"find", "--root", tree_.root(), "--index-dir", index_dir.root(), "--index-max-age",
              "0s", "--json", "*.h"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  v1::SearchResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok()) << r.out;
  ASSERT_EQ(parsed.matches_size(), 3);
  EXPECT_EQ(parsed.matches(1).path(), "src/new.h");
  EXPECT_TRUE(parsed.has_index_as_of());

  EXPECT_EQ(RunCli({"find", "--index-dir", index_dir.root(), "--index-max-age", "soon", "x"}).code,
            kExitUsage);
  EXPECT_EQ(RunCli({"find", "--index-dir", index_dir.root(), "--max-results", "100001", "x"}).code,
            kExitUsage);
  r = RunCli({"find", "--root", tree_.root(), "--index-dir", tree_.Abs("nowhere"), "*.h"});
  EXPECT_EQ(r.code, kExitOk) << r.err;  // answered; the snapshot could not be saved, and it says so
  EXPECT_THAT(r.err, HasSubstr("the index could not be saved"));
}

TEST(CliOneFileSystemTest, DashXStaysOffOtherFilesystems) {
  struct stat root_st, proc_st;
  if (::stat("/", &root_st) != 0 || ::stat("/proc", &proc_st) != 0 ||
      proc_st.st_dev == root_st.st_dev) {
    GTEST_SKIP() << "/proc is not a filesystem of its own here";
  }
  Result r = RunCli({"find", "--root", "/", "--max-depth", "2", "--sort", "cpuinfo"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("proc/cpuinfo\n"));
  for (const char* flag : {"-x", "--one-file-system"}) {
    r = RunCli({"find", "--root", "/", "--max-depth", "2", flag, "--sort", "cpuinfo"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("proc/cpuinfo"))) << flag;
    EXPECT_EQ(r.err, "") << flag;  // asked for: nothing to report
  }
}

TEST_F(CliTest, TruncationIsReportedOnStderr) {
  const Result r = RunCli({"find", "--root", tree_.root(), "--max-results", "1", "*.h"});
  EXPECT_EQ(r.code, kExitOk);
  // Which match is kept when the walk stops early depends on thread timing.
  EXPECT_THAT(r.out, ::testing::AnyOf("src/a.h\n", "top.h\n"));
  const std::string note = "filemesh: results truncated (--max-results reached): 1 matches shown\n";
  EXPECT_EQ(r.err, note);
  // The same words with --sort and with --json (whose answer says it too).
  for (const char* mode : {"--sort", "--json"}) {
    const Result sorted =
        RunCli({"find", "--root", tree_.root(), "--max-results", "1", mode, "*.h"});
    EXPECT_EQ(sorted.code, kExitOk) << mode;
    EXPECT_EQ(sorted.err, note) << mode;
  }
  EXPECT_THAT(RunCli({"find", "--root", tree_.root(), "--max-results", "1", "--json", "*.h"}).out,
              HasSubstr("\"truncation_reason\": \"TRUNCATION_REASON_MAX_RESULTS\""));
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

// `filemesh ls /usr/include` is a habit from ls: the answer says how to do
// what was meant (--root), and with a gateway that paths are below its root.
TEST_F(CliTest, AnAbsolutePathSaysToUseRoot) {
  Result r = RunCli({"ls", tree_.Abs("src")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("is absolute, but paths are relative to the root"));
  EXPECT_THAT(r.err, HasSubstr("run: filemesh ls --root " + tree_.Abs("src") + "\n"));
  // The suggestion does what was meant.
  EXPECT_EQ(RunCli({"ls", "--root", tree_.Abs("src")}).code, kExitOk);
  r = RunCli({"find", "--path", tree_.Abs("src"), "*.h"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("run: filemesh find --root " + tree_.Abs("src") + " PATTERN"));
  // A path the shell would need quoted: no command, the advice only.
  r = RunCli({"ls", "/tmp/a b"});
  EXPECT_THAT(r.err, HasSubstr("give that directory as --root instead"));
  r = RunCli({"ls", "--gateway", "http://127.0.0.1:1", "/etc"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("relative to the root the gateway's services serve"));
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
      {"find", "--max-results", "0", "x"},
      {"find", "--max-results", "4294967296", "x"},
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

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

TEST(CliStreamTest, FindStreamsEveryMatchAndSortGivesTheSameSetInOrder) {
  // 100 directories of 1,000 entries: 100,000 matches, more than one answer
  // of the SDK's Search may hold, all printed (no cap without --max-results).
  testing::TestTree tree;
  for (int d = 0; d < 100; ++d) {
    const std::string dir = absl::StrCat("d", d);
    tree.Dir(dir);
    for (int f = 0; f < 1000; ++f) tree.File(absl::StrCat(dir, "/f", f, ".txt"));
  }
  const Result streamed = RunCli({"find", "--root", tree.root(), "*.txt"});
  ASSERT_EQ(streamed.code, kExitOk) << streamed.err;
  EXPECT_EQ(streamed.err, "");
  const Result sorted = RunCli({"find", "--root", tree.root(), "--sort", "*.txt"});
  ASSERT_EQ(sorted.code, kExitOk) << sorted.err;
  std::vector<std::string> lines = Lines(streamed.out);
  const std::vector<std::string> sorted_lines = Lines(sorted.out);
  EXPECT_EQ(sorted_lines.size(), 100000u);
  EXPECT_TRUE(std::is_sorted(sorted_lines.begin(), sorted_lines.end()));
  EXPECT_EQ(lines.size(), 100000u);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, sorted_lines);
  // A cap when asked, reported on stderr.
  const Result capped = RunCli({"find", "--root", tree.root(), "--max-results", "500", "*.txt"});
  EXPECT_EQ(Lines(capped.out).size(), 500u);
  EXPECT_THAT(capped.err, HasSubstr("--max-results reached"));
}

TEST_F(CliTest, AClosedPipeEndsQuietlyWithZero) {
  // As `filemesh find ... | head -1` once head has exited: main ignores
  // SIGPIPE, so the write fails with EPIPE.
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < 1000; ++i) tree_.File(absl::StrCat("src/gen", i, ".h"));
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  std::FILE* out = ::fdopen(fds[1], "w");
  std::FILE* err = std::tmpfile();
  const int code = cli::Run({"find", "--root", tree_.root(), "*.h"}, out, err);
  std::fclose(out);
  EXPECT_EQ(code, kExitOk);
  EXPECT_EQ(Slurp(err), "");
}

TEST_F(CliTest, AnInterruptStopsTheSearchWith130) {
  std::atomic<bool> interrupted{true};
  RunOptions options;
  options.interrupted = &interrupted;
  const Result r = RunCli({"find", "--root", tree_.root(), "*.h"}, options);
  EXPECT_EQ(r.code, kExitInterrupted);
  EXPECT_EQ(r.err, "");
  interrupted = false;
  EXPECT_EQ(RunCli({"find", "--root", tree_.root(), "*.h"}, options).code, kExitOk);
}

// Runs `run` with a terminal (a pty) it may write to, and returns what the
// terminal got: "<failed>" if `run` did not return kExitOk.
std::string OnPty(const std::function<int(std::FILE* tty)>& run) {
  int master = -1;
  int slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return "<no pty>";
  std::FILE* tty = ::fdopen(slave, "w");
  const int code = run(tty);
  std::fflush(tty);
  std::string seen;
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  char buf[4096];
  for (ssize_t n; (n = ::read(master, buf, sizeof(buf))) > 0;) seen.append(buf, n);
  std::fclose(tty);
  ::close(master);
  return code == kExitOk ? seen : "<failed>";
}

// What `filemesh find` writes to a terminal (a pty) as stderr, with stdout a
// terminal too or not.
std::string ProgressOnPty(const std::string& root, bool stdout_on_pty) {
  return OnPty([&](std::FILE* tty) {
    std::FILE* file = std::tmpfile();
    RunOptions options;
    options.progress_after = absl::ZeroDuration();  // at once, not after a second
    const int code = cli::Run({"find", "--root", root, "--threads", "1", "*.txt"},
                              stdout_on_pty ? tty : file, tty, options);
    std::fclose(file);
    return code;
  });
}

// What a command writes to stdout when stdout is a terminal (a pty).
std::string StdoutOnPty(const std::vector<std::string>& args) {
  return OnPty([&](std::FILE* tty) {
    std::FILE* err = std::tmpfile();
    const int code = cli::Run(args, tty, err, RunOptions());
    std::fclose(err);
    return code;
  });
}

// A file name cannot command the terminal: on one, control characters (C0,
// DEL, C1) and bytes that are not UTF-8 are escaped; a pipe gets the exact
// bytes, as ls and fd do.
TEST_F(CliTest, ControlCharactersInNamesAreEscapedOnATerminalOnly) {
  tree_.File("src/evil\x1b]0;owned\x07.txt");
  tree_.File(
      "src/c1\xc2\x9b"
      "2J.txt");
  tree_.File("src/bad\xff.txt");
  tree_.File("src/caf\xc3\xa9.txt");  // valid UTF-8 stays as it is
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"ls", "--root", tree_.root(), "src"},
        std::vector<std::string>{"find", "--root", tree_.root(), "*.txt"},
        std::vector<std::string>{"find", "--root", tree_.root(), "--sort", "*.txt"}}) {
    SCOPED_TRACE(args[0] + " " + args[3]);
    const std::string shown = StdoutOnPty(args);
    EXPECT_THAT(shown, HasSubstr("src/evil\\x1b]0;owned\\x07.txt"));
    EXPECT_THAT(shown, HasSubstr("src/c1\\u009b2J.txt"));
    EXPECT_THAT(shown, HasSubstr("src/bad\\xff.txt"));
    EXPECT_THAT(shown, HasSubstr("src/caf\xc3\xa9.txt"));
    EXPECT_EQ(shown.find('\x1b'), std::string::npos);
    EXPECT_EQ(shown.find('\x07'), std::string::npos);
    EXPECT_EQ(shown.find("\xc2\x9b"), std::string::npos);
  }
  const Result piped = RunCli({"ls", "--root", tree_.root(), "src"});
  EXPECT_THAT(piped.out, HasSubstr("src/evil\x1b]0;owned\x07.txt\n"));
  EXPECT_THAT(piped.out, HasSubstr("src/bad\xff.txt\n"));
}

TEST_F(CliTest, ProgressOnlyWhenStdoutAndStderrAreTerminals) {
  for (int i = 0; i < 200; ++i) tree_.File(absl::StrCat("src/n", i, ".txt"));
  const std::string both = ProgressOnPty(tree_.root(), true);
  EXPECT_THAT(both, HasSubstr("scanned "));
  EXPECT_THAT(both, HasSubstr(" matches"));
  // Cleared at the end: the last thing written is the erase sequence.
  EXPECT_THAT(both, ::testing::EndsWith("\r\033[K"));
  EXPECT_THAT(ProgressOnPty(tree_.root(), false), ::testing::Not(HasSubstr("scanned")));
  // Not on files (the other tests' stderr is a file).
  EXPECT_EQ(RunCli({"find", "--root", tree_.root(), "*.txt"}).err, "");
}

}  // namespace
// Remote mode goes through RunOptions::connect_gateway: a program without
// one refuses --gateway as a usage error, and one with it gets the options
// the command line gave.
class FakeGateway : public RemoteGateway {
 public:
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request) override {
    v1::ListResponse response;
    response.add_entries()->set_path("remote/" + request.path());
    return response;
  }
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest&) override {
    return absl::UnavailableError("not in this test");
  }
};

TEST(CliRemoteModeTest, GatewayNeedsAConnectorAndGetsTheCommandLinesOptions) {
  const Result refused = RunCli({"ls", "--gateway", "http://127.0.0.1:1", "dir"});
  EXPECT_EQ(refused.code, kExitUsage);
  EXPECT_NE(refused.err.find("--gateway is not available"), std::string::npos) << refused.err;

  GatewayOptions seen;
  RunOptions options;
  options.connect_gateway =
      [&seen](GatewayOptions o) -> absl::StatusOr<std::unique_ptr<RemoteGateway>> {
    seen = std::move(o);
    return std::make_unique<FakeGateway>();
  };
  const Result listed =
      RunCli({"ls", "--gateway", "http://127.0.0.1:1", "--api-key", "k", "dir"}, options);
  EXPECT_EQ(listed.code, kExitOk) << listed.err;
  EXPECT_EQ(listed.out, "remote/dir\n");
  EXPECT_EQ(seen.url, "http://127.0.0.1:1");
  EXPECT_EQ(seen.api_key, "k");

  // A connector that cannot start remote mode (the helper missing) is a
  // failure, not a usage error.
  options.connect_gateway = [](GatewayOptions) -> absl::StatusOr<std::unique_ptr<RemoteGateway>> {
    return absl::UnavailableError("no helper");
  };
  const Result failed = RunCli({"ls", "--gateway", "http://127.0.0.1:1"}, options);
  EXPECT_EQ(failed.code, kExitFailure);
  EXPECT_NE(failed.err.find("no helper"), std::string::npos) << failed.err;
}

}  // namespace filemesh::cli
