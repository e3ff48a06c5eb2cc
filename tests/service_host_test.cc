// ServiceHost: start-up errors that depend on the operating system, and
// the limits it puts on calls (in flight, run time, message size), checked
// through a real gRPC server on loopback.

#include "filemesh/rpc/service_host.hpp"

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/grpc_transport.h"
#include "rpc/handler_registry.h"
#include "rpc_test_support.h"
#include "wait_for.h"

namespace filemesh {
namespace {

TEST(ServiceHostTest, AGrpcPortInUseIsUnavailable) {
  testing::SampleService service;
  auto first = testing::StartHost(service, testing::LoopbackListenAddress());
  ServiceHostOptions options;
  options.grpc_listen = absl::StrCat("127.0.0.1:", first->grpc_port());
  ServiceHost second(options);
  second.AddFileLister(*service.lister);
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(second.grpc_port(), 0);
}

constexpr char kEchoMethod[] = "/filemesh.test.Echo/Call";

// A gRPC client without failover, so what the host answers is what the test sees.
std::unique_ptr<internal::GrpcTransport> ClientOf(
    const ServiceHost& host, size_t max_message_bytes = kDefaultMaxMessageBytes) {
  internal::GrpcTransportOptions options;
  options.target = absl::StrCat("127.0.0.1:", host.grpc_port());
  options.max_message_bytes = max_message_bytes;
  auto client = internal::GrpcTransport::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

ServiceHostOptions GrpcOnly() {
  ServiceHostOptions options;
  options.grpc_listen = testing::LoopbackListenAddress();
  options.threads = 4;
  return options;
}

TEST(HandlerDeadlineTest, CallersDeadlineLessAMarginCappedByMaxCallTime) {
  const absl::Time t = absl::FromUnixSeconds(1000000);
  // 5 s left: the margin is 200 ms (a tenth would be 500 ms).
  EXPECT_EQ(internal::HandlerDeadline(t, t + absl::Seconds(5), absl::Seconds(30)),
            t + absl::Milliseconds(4800));
  // 1 s left: a tenth, 100 ms.
  EXPECT_EQ(internal::HandlerDeadline(t, t + absl::Seconds(1), absl::Seconds(30)),
            t + absl::Milliseconds(900));
  // Far or no deadline: max_call_time from arrival.
  EXPECT_EQ(internal::HandlerDeadline(t, t + absl::Hours(1), absl::Seconds(30)),
            t + absl::Seconds(30));
  EXPECT_EQ(internal::HandlerDeadline(t, absl::InfiniteFuture(), absl::Seconds(30)),
            t + absl::Seconds(30));
  // Already passed: stays passed.
  EXPECT_LE(internal::HandlerDeadline(t, t - absl::Seconds(1), absl::Seconds(30)), t);
}

TEST(ServiceHostLimitsTest, HandlersRunToTheCallersDeadlineButNoLongerThanMaxCallTime) {
  ServiceHostOptions options = GrpcOnly();
  options.max_call_time = absl::Seconds(3);
  ServiceHost host(options);
  std::mutex mu;
  std::vector<absl::Time> deadlines;  // what each handler got
  host.RegisterRaw(kEchoMethod, [&](const std::string& request, absl::Time deadline) {
    std::lock_guard<std::mutex> lock(mu);
    deadlines.push_back(deadline);
    return absl::StatusOr<std::string>(request);
  });
  ASSERT_TRUE(host.Start().ok());
  auto client = ClientOf(host);
  ASSERT_NE(client, nullptr);
  // 2 s given: the handler's deadline is the caller's less the 200 ms reply
  // margin. (gRPC sends the time left, which the server adds to the time the
  // call arrived: the transit, a few ms, is on top; 100 ms are allowed.)
  const absl::Time given = absl::Now() + absl::Seconds(2);
  ASSERT_TRUE(client->Call(kEchoMethod, "a", given).response.ok());
  // 60 s given: capped at max_call_time, 3 s from arrival.
  const absl::Time before = absl::Now();
  ASSERT_TRUE(client->Call(kEchoMethod, "b", absl::Now() + absl::Seconds(60)).response.ok());
  const absl::Time after = absl::Now();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(deadlines.size(), 2u);
  EXPECT_LE(deadlines[0], given - absl::Milliseconds(100)) << given - deadlines[0];
  EXPECT_GE(deadlines[0], given - absl::Milliseconds(300)) << given - deadlines[0];
  EXPECT_GE(deadlines[1], before + absl::Seconds(3));
  EXPECT_LE(deadlines[1], after + absl::Seconds(3));
}

TEST(ServiceHostLimitsTest, CallsPastMaxInflightAreRefusedAtOnce) {
  ServiceHostOptions options = GrpcOnly();
  options.max_inflight = 2;
  ServiceHost host(options);
  std::atomic<int> entered{0};
  absl::Notification release;
  host.RegisterRaw(kEchoMethod, [&](const std::string& request, absl::Time) {
    ++entered;
    release.WaitForNotification();
    return absl::StatusOr<std::string>(request);
  });
  ASSERT_TRUE(host.Start().ok());
  auto client = ClientOf(host);
  ASSERT_NE(client, nullptr);
  std::atomic<int> ok{0};
  std::atomic<int> finished{0};
  CallOptions call;
  call.deadline = absl::Now() + absl::Seconds(30);
  call.accept_deadline = call.deadline;
  for (int i = 0; i < 2; ++i) {
    client->CallAsync(kEchoMethod, "held", call, [&](TransportResult r) {
      if (r.response.ok()) ++ok;
      ++finished;
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return entered.load() == 2; }, absl::Seconds(10)));
  // Two calls hold both slots: the third is refused, at once, by the host.
  const TransportResult refused =
      client->Call(kEchoMethod, "third", absl::Now() + absl::Seconds(30));
  EXPECT_EQ(refused.response.status().code(), absl::StatusCode::kResourceExhausted)
      << refused.response.status();
  EXPECT_THAT(std::string(refused.response.status().message()),
              ::testing::HasSubstr("max_inflight"));
  EXPECT_EQ(entered.load(), 2);
  release.Notify();
  ASSERT_TRUE(testing::WaitFor([&] { return finished.load() == 2; }, absl::Seconds(10)));
  EXPECT_EQ(ok.load(), 2);
  // The slots are given back.
  EXPECT_TRUE(client->Call(kEchoMethod, "again", absl::Now() + absl::Seconds(10)).response.ok());
}

TEST(ServiceHostLimitsTest, MessagesAboveTheLimitAreResourceExhaustedBothWays) {
  ServiceHostOptions options = GrpcOnly();
  options.max_message_bytes = 64 * 1024;
  ServiceHost host(options);
  std::atomic<int> handled{0};
  host.RegisterRaw(kEchoMethod, [&](const std::string& request, absl::Time) {
    ++handled;
    // "grow:N" answers N bytes.
    if (request.rfind("grow:", 0) == 0) {
      return absl::StatusOr<std::string>(std::string(std::stoul(request.substr(5)), 'x'));
    }
    return absl::StatusOr<std::string>(request);
  });
  ASSERT_TRUE(host.Start().ok());
  auto client = ClientOf(host, /*max_message_bytes=*/1 << 20);
  ASSERT_NE(client, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  // At the limit: fine.
  EXPECT_EQ(client->Call(kEchoMethod, "grow:65536", deadline).response.value_or("").size(), 65536u);
  // A response over the host's limit is replaced by a clear error.
  const TransportResult big = client->Call(kEchoMethod, "grow:65537", deadline);
  EXPECT_EQ(big.response.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.response.status().message()),
              ::testing::HasSubstr("65537 bytes, above the limit of 65536"));
  // A request over it never reaches the handler.
  const int before = handled.load();
  const TransportResult large = client->Call(kEchoMethod, std::string(100000, 'r'), deadline);
  EXPECT_EQ(large.response.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(handled.load(), before);
  // A client with a smaller limit refuses a larger answer.
  auto strict = ClientOf(host, /*max_message_bytes=*/1000);
  ASSERT_NE(strict, nullptr);
  EXPECT_EQ(strict->Call(kEchoMethod, "grow:2000", deadline).response.status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(strict->Call(kEchoMethod, std::string(2000, 'r'), deadline).response.status().code(),
            absl::StatusCode::kResourceExhausted);
}

// Requests are small: max_request_bytes refuses a big one before any
// handler, apart from max_message_bytes (the responses' bound).
TEST(ServiceHostLimitsTest, RequestsAboveMaxRequestBytesNeverReachAHandler) {
  ServiceHostOptions options = GrpcOnly();
  options.max_request_bytes = 1000;
  ServiceHost host(options);
  std::atomic<int> handled{0};
  host.RegisterRaw(kEchoMethod, [&](const std::string& request, absl::Time) {
    ++handled;
    return absl::StatusOr<std::string>(std::string(request.size() * 100, 'x'));
  });
  ASSERT_TRUE(host.Start().ok());
  auto client = ClientOf(host);
  ASSERT_NE(client, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  // A small request with a response far above max_request_bytes: fine.
  EXPECT_EQ(
      client->Call(kEchoMethod, std::string(1000, 'r'), deadline).response.value_or("").size(),
      100000u);
  EXPECT_EQ(handled.load(), 1);
  const TransportResult large = client->Call(kEchoMethod, std::string(1001, 'r'), deadline);
  EXPECT_EQ(large.response.status().code(), absl::StatusCode::kResourceExhausted)
      << large.response.status();
  EXPECT_EQ(handled.load(), 1);
}

// One connection carries grpc_max_concurrent_streams calls at once: a
// second call waits for a stream instead of running beside the first.
TEST(ServiceHostLimitsTest, OneConnectionCarriesAtMostMaxConcurrentStreams) {
  ServiceHostOptions options = GrpcOnly();
  options.grpc_max_concurrent_streams = 1;
  ServiceHost host(options);
  std::mutex mu;
  std::condition_variable changed;
  int running = 0;
  int most = 0;
  bool release = false;
  host.RegisterRaw(kEchoMethod, [&](const std::string& request, absl::Time) {
    std::unique_lock<std::mutex> lock(mu);
    most = std::max(most, ++running);
    changed.notify_all();
    changed.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    --running;
    return absl::StatusOr<std::string>(request);
  });
  ASSERT_TRUE(host.Start().ok());
  auto client = ClientOf(host);
  ASSERT_NE(client, nullptr);
  TransportResult first;
  std::thread first_call(
      [&] { first = client->Call(kEchoMethod, "first", absl::Now() + absl::Seconds(20)); });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return running == 1; }));
  }
  // Without the bound this one would run at once, beside the first.
  const TransportResult second =
      client->Call(kEchoMethod, "second", absl::Now() + absl::Milliseconds(1500));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
    changed.notify_all();
  }
  first_call.join();
  EXPECT_TRUE(first.response.ok()) << first.response.status();
  EXPECT_EQ(second.response.status().code(), absl::StatusCode::kDeadlineExceeded);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(most, 1);
}

int ThreadsOfThisProcess() {
  int n = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(dir)) n += e->d_name[0] != '.';
    ::closedir(dir);
  }
  return n;
}

TEST(ServiceHostLimitsTest, AThousandConcurrentSearchesUseBoundedThreads) {
  testing::SampleService service;
  for (int i = 0; i < 200; ++i) service.tree.File(absl::StrCat("docs/f", i, ".txt"));
  ServiceHostOptions options = GrpcOnly();
  options.max_inflight = 64;
  ServiceHost host(options);
  host.AddFileSearcher(*service.searcher);
  ASSERT_TRUE(host.Start().ok());
  auto client = ClientOf(host);
  ASSERT_NE(client, nullptr);
  v1::SearchRequest request;
  request.set_pattern("*.txt");
  const std::string bytes = request.SerializeAsString();
  // One search first: every pool (host, walkers, gRPC's) exists.
  ASSERT_TRUE(client->Call(kSearchMethod, bytes, absl::Now() + absl::Seconds(30)).response.ok());
  const int before = ThreadsOfThisProcess();

  constexpr int kCalls = 1000;
  std::atomic<int> ok{0}, refused{0}, other{0}, finished{0};
  std::atomic<bool> done{false};
  int most = before;
  std::thread sampler([&] {
    const absl::Time until = absl::Now() + absl::Seconds(120);
    while (!done.load() && absl::Now() < until) {
      most = std::max(most, ThreadsOfThisProcess());
      std::this_thread::yield();
    }
  });
  CallOptions call;
  call.deadline = absl::Now() + absl::Seconds(60);
  call.accept_deadline = call.deadline;
  for (int i = 0; i < kCalls; ++i) {
    client->CallAsync(kSearchMethod, bytes, call, [&](TransportResult r) {
      v1::SearchResponse response;
      if (r.response.ok() && response.ParseFromString(*r.response) &&
          response.matches_size() == 201) {
        ++ok;
      } else if (r.response.status().code() == absl::StatusCode::kResourceExhausted) {
        ++refused;
      } else {
        ++other;
      }
      ++finished;
    });
  }
  EXPECT_TRUE(testing::WaitFor([&] { return finished.load() == kCalls; }, absl::Seconds(60)));
  done = true;
  sampler.join();
  EXPECT_EQ(ok.load() + refused.load(), kCalls) << "other outcomes: " << other.load();
  EXPECT_GT(ok.load(), 0);
  // The host's 4 handler threads and the one walker pool were there before;
  // the searches add none (gRPC may add a few of its own under load).
  EXPECT_LE(most - before, 16) << "threads before " << before << ", at most " << most;
  std::printf("1000 concurrent searches: %d served, %d refused, threads %d -> at most %d\n",
              ok.load(), refused.load(), before, most);
}

TEST(ServiceHostLimitsTest, BadLimitsAreInvalidArgument) {
  testing::SampleService service;
  for (int which = 0; which < 7; ++which) {
    ServiceHostOptions options = GrpcOnly();
    if (which == 0) options.max_inflight = 0;
    if (which == 1) options.max_call_time = absl::ZeroDuration();
    if (which == 2) options.max_message_bytes = 0;
    if (which == 3) options.grpc_max_connection_age = absl::Milliseconds(99);
    if (which == 4) options.max_request_bytes = 0;
    if (which == 5) options.grpc_max_concurrent_streams = 0;
    if (which == 6) options.grpc_memory_quota_bytes = 1000;
    ServiceHost host(options);
    host.AddFileLister(*service.lister);
    EXPECT_EQ(host.Start().code(), absl::StatusCode::kInvalidArgument) << which;
  }
}

}  // namespace
}  // namespace filemesh
