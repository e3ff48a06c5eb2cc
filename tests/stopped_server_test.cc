// A server that stops answering after it accepted a call (SIGSTOP) is dead,
// not slow: the client notices through HTTP/2 keepalive pings within about
// two seconds and fails the call over. The server is a process of its own
// (held_server) so that it can be stopped.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "filemesh/file_service.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/testing/in_memory_transport.hpp"
#include "gtest/gtest.h"
#include "loopback_port.h"
#include "rpc/grpc_transport.h"

extern char** environ;

namespace filemesh {
namespace {

// held_server as a child process whose stdout the test reads line by line.
class HeldServer {
 public:
  HeldServer() {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    const std::string listen = testing::LoopbackListenAddress();
    const std::string path = HELD_SERVER_PATH;
    char* const args[] = {const_cast<char*>(path.c_str()), const_cast<char*>(listen.c_str()),
                          nullptr};
    if (posix_spawn(&pid_, path.c_str(), &actions, nullptr, args, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    out_ = out[0];
  }
  ~HeldServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);  // also ends a stopped process
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  HeldServer(const HeldServer&) = delete;
  HeldServer& operator=(const HeldServer&) = delete;

  pid_t pid() const { return pid_; }

  // The next line the server prints, without its newline; empty if none
  // comes within `timeout`.
  std::string ReadLine(absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    while (true) {
      const size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      const absl::Duration left = until - absl::Now();
      if (left <= absl::ZeroDuration()) return "";
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) return "";
      char chunk[256];
      const ssize_t n = ::read(out_, chunk, sizeof(chunk));
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

TEST(StoppedServerTest, ACallAcceptedByAServerThatStopsFailsOverWithinTwoAndAHalfSeconds) {
  HeldServer server;
  ASSERT_GT(server.pid(), 0) << "cannot start " << HELD_SERVER_PATH;
  const std::string listening = server.ReadLine(absl::Seconds(30));
  ASSERT_EQ(listening.rfind("listening ", 0), 0u) << listening;

  internal::GrpcTransportOptions grpc;
  grpc.target = absl::StrCat("127.0.0.1:", listening.substr(10));
  auto primary = internal::GrpcTransport::Create(grpc);
  ASSERT_TRUE(primary.ok()) << primary.status();
  auto fallback = std::make_unique<testing::InMemoryTransport>();
  fallback->Register(kListMethod, [](const std::string& request, absl::Time) {
    return absl::StatusOr<std::string>("fallback:" + request);
  });
  FailoverPolicy policy;
  policy.attempt_timeout = absl::Milliseconds(250);
  FailoverChannel channel(*std::move(primary), std::move(fallback), policy);

  CallResult result;
  absl::Time answered;
  std::thread caller([&] {
    result = channel.Call(kListMethod, "req", absl::Now() + absl::Seconds(20));
    answered = absl::Now();
  });
  // The server has the call (it acknowledged it on arrival, then printed
  // "held"): stop it there.
  const std::string held = server.ReadLine(absl::Seconds(30));
  const absl::Time stopped = absl::Now();
  if (held == "held") ::kill(server.pid(), SIGSTOP);
  caller.join();
  ASSERT_EQ(held, "held");
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(*result.response, "fallback:req");
  EXPECT_EQ(result.info.served_by, TransportKind::kInMemory);
  EXPECT_EQ(result.info.attempts, 2);
  // Keepalive: a ping each second, each answered within a second.
  EXPECT_LE(answered - stopped, absl::Milliseconds(2500)) << answered - stopped;
  // Not the 20 s deadline, and it counted as a failure of the primary.
  EXPECT_EQ(channel.stats().failovers, 1u);
}

}  // namespace
}  // namespace filemesh
