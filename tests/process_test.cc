// ParseFlags: FILEMESH_* variables set flags, the command line wins, bad
// values stop the program with a clear message; TerminationSignals.

#include "filemesh/service/process.hpp"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "filemesh/service/log.hpp"
#include "gtest/gtest.h"

ABSL_FLAG(int, test_threads, 4, "worker threads");
ABSL_FLAG(std::string, test_name, "default-name", "a name");
ABSL_FLAG(absl::Duration, test_timeout, absl::Seconds(5), "a timeout");
ABSL_FLAG(bool, test_verbose, false, "talk more");

namespace filemesh {
namespace {

// argv for ParseFlags, owning its strings.
class Args {
 public:
  Args(std::initializer_list<std::string> args) : storage_(args) {
    for (std::string& arg : storage_) pointers_.push_back(arg.data());
    pointers_.push_back(nullptr);
  }
  int argc() { return static_cast<int>(storage_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> storage_;
  std::vector<char*> pointers_;
};

std::vector<std::string> Parse(std::initializer_list<std::string> list) {
  Args args(list);
  std::vector<std::string> out;
  for (char* arg : ParseFlags(args.argc(), args.argv(), "process_test [ARGS]")) out.push_back(arg);
  return out;
}

// Sets the variables for one test and restores the flags' defaults.
class ProcessTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* name : {"FILEMESH_TEST_THREADS", "FILEMESH_TEST_NAME", "FILEMESH_TEST_TIMEOUT",
                             "FILEMESH_TEST_VERBOSE", "FILEMESH_FLAGFILE"}) {
      unsetenv(name);
    }
    absl::SetFlag(&FLAGS_test_threads, 4);
    absl::SetFlag(&FLAGS_test_name, "default-name");
    absl::SetFlag(&FLAGS_test_timeout, absl::Seconds(5));
    absl::SetFlag(&FLAGS_test_verbose, false);
  }
};

TEST_F(ProcessTest, VariableNameIsPrefixedAndUpperCase) {
  EXPECT_EQ(FlagEnvironmentVariable("grpc_listen"), "FILEMESH_GRPC_LISTEN");
  EXPECT_EQ(FlagEnvironmentVariable("root"), "FILEMESH_ROOT");
}

TEST_F(ProcessTest, WithoutVariablesFlagsKeepTheirDefaults) {
  Parse({"prog"});
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 4);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_name), "default-name");
}

TEST_F(ProcessTest, VariablesSetFlagsOfEveryType) {
  setenv("FILEMESH_TEST_THREADS", "7", 1);
  setenv("FILEMESH_TEST_NAME", "from env", 1);
  setenv("FILEMESH_TEST_TIMEOUT", "250ms", 1);
  setenv("FILEMESH_TEST_VERBOSE", "true", 1);
  Parse({"prog"});
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 7);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_name), "from env");
  // Read back as text: GetFlag of a Duration does not build under
  // ThreadSanitizer (GCC refuses its atomic_thread_fence).
  EXPECT_EQ(absl::FindCommandLineFlag("test_timeout")->CurrentValue(), "250ms");
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_verbose));
}

TEST_F(ProcessTest, AnEmptyVariableIsAnEmptyValue) {
  setenv("FILEMESH_TEST_NAME", "", 1);
  Parse({"prog"});
  EXPECT_EQ(absl::GetFlag(FLAGS_test_name), "");
}

TEST_F(ProcessTest, CommandLineWinsOverTheEnvironment) {
  setenv("FILEMESH_TEST_THREADS", "7", 1);
  setenv("FILEMESH_TEST_NAME", "from env", 1);
  Parse({"prog", "--test_threads=9"});
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 9);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_name), "from env");
}

TEST_F(ProcessTest, ReturnsProgramAndPositionalArguments) {
  EXPECT_EQ(Parse({"prog", "first", "--test_threads=2", "second", "--", "--third"}),
            (std::vector<std::string>{"prog", "first", "second", "--third"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 2);
}

TEST_F(ProcessTest, AbseilsOwnFlagsAreNotReadFromTheEnvironment) {
  // --flagfile naming a missing file would stop the program.
  setenv("FILEMESH_FLAGFILE", "/nonexistent/flags", 1);
  Parse({"prog"});
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 4);
}

TEST_F(ProcessTest, MalformedVariableExitsWithStatus2NamingIt) {
  setenv("FILEMESH_TEST_THREADS", "many", 1);
  EXPECT_EXIT(Parse({"prog"}), ::testing::ExitedWithCode(2),
              "prog: environment variable FILEMESH_TEST_THREADS \\(for --test_threads\\): .*many");
}

TEST_F(ProcessTest, MalformedDurationAndBoolVariablesExit) {
  setenv("FILEMESH_TEST_TIMEOUT", "5", 1);  // a duration needs its unit
  EXPECT_EXIT(Parse({"prog"}), ::testing::ExitedWithCode(2), "FILEMESH_TEST_TIMEOUT");
  unsetenv("FILEMESH_TEST_TIMEOUT");
  setenv("FILEMESH_TEST_VERBOSE", "maybe", 1);
  EXPECT_EXIT(Parse({"prog"}), ::testing::ExitedWithCode(2), "FILEMESH_TEST_VERBOSE");
}

TEST_F(ProcessTest, MalformedVariableIsAnErrorEvenWhenTheCommandLineSetsTheFlag) {
  setenv("FILEMESH_TEST_THREADS", "many", 1);
  EXPECT_EXIT(Parse({"prog", "--test_threads=3"}), ::testing::ExitedWithCode(2),
              "FILEMESH_TEST_THREADS");
}

TEST_F(ProcessTest, MalformedCommandLineValueExitsNonZero) {
  EXPECT_EXIT(Parse({"prog", "--test_threads=lots"}), ::testing::ExitedWithCode(1), "test_threads");
}

TEST_F(ProcessTest, HelpPrintsUsageFlagsAndVariablesAndExits0) {
  for (const char* help : {"--help", "-h", "--helpfull"}) {
    // The help goes to stdout; the death test reads stderr.
    EXPECT_EXIT(
        {
          dup2(STDERR_FILENO, STDOUT_FILENO);
          Parse({"prog", help});
        },
        ::testing::ExitedWithCode(0),
        "process_test \\[ARGS\\](.|\n)*default: \"default-name\"; env: FILEMESH_TEST_NAME\n"
        " *--test_threads  \\(worker threads\\)\n *default: 4; env: FILEMESH_TEST_THREADS");
  }
}

TEST_F(ProcessTest, HelpAfterDoubleDashIsAPositionalArgument) {
  EXPECT_EQ(Parse({"prog", "--", "--help"}), (std::vector<std::string>{"prog", "--help"}));
}

TEST(TerminationSignalsTest, WaitReturnsAndLogsTheSignal) {
  std::vector<std::string> lines;
  SetLogSink([&lines](std::string_view line) { lines.emplace_back(line); });
  TerminationSignals::Block();
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  EXPECT_EQ(TerminationSignals::Wait(), SIGTERM);
  SetLogSink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::EndsWith(lines[0], " level=info event=stopping signal=TERM")) << lines[0];
  EXPECT_EQ(TerminationSignals::Name(SIGTERM), "TERM");
  EXPECT_EQ(TerminationSignals::Name(SIGINT), "INT");
}

TEST(TerminationSignalsTest, AnIgnoredSigintIsStillTaken) {
  // What a shell does to a background job.
  std::signal(SIGINT, SIG_IGN);
  TerminationSignals::Block();
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  EXPECT_EQ(TerminationSignals::Wait(), SIGINT);
}

TEST(TerminationSignalsTest, SignalsStayPendingForThreadsStartedAfterBlock) {
  TerminationSignals::Block();
  sigset_t mask;
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, nullptr,
                [](void* out) -> void* {
                  pthread_sigmask(SIG_BLOCK, nullptr, static_cast<sigset_t*>(out));
                  return nullptr;
                },
                &mask),
            0);
  pthread_join(thread, nullptr);
  EXPECT_EQ(sigismember(&mask, SIGTERM), 1);
  EXPECT_EQ(sigismember(&mask, SIGINT), 1);
}

TEST(TerminationSignalsDeathTest, ASecondSignalEndsTheProcessAtOnce) {
  EXPECT_EXIT(
      {
        TerminationSignals::Block();
        kill(getpid(), SIGTERM);
        TerminationSignals::Wait();
        // A shutdown that hangs: the second signal must end it.
        kill(getpid(), SIGTERM);
        pause();
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace filemesh
