// A FileLister stand-in for the transport tests: "/filemesh.v1.FileLister/List"
// answers from its request (so a test can tell every answer apart), run by a
// Dispatcher on a small thread pool as ServiceHost would.

#ifndef FILEMESH_TESTS_RABBITMQ_ECHO_SERVICE_H_
#define FILEMESH_TESTS_RABBITMQ_ECHO_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "filemesh/file_service.hpp"
#include "filemesh/v1/filemesh.pb.h"
#include "rpc/handler_registry.h"

namespace filemesh::testing {

using filemesh::kListMethod;  // the public name, not a second copy
inline constexpr char kListerService[] = "filemesh.v1.FileLister";

// The request for `path` (and `page_size`), serialized.
std::string ListRequestBytes(const std::string& path, uint32_t page_size = 7);

// What the echo handler answers to ListRequestBytes(path, page_size):
// one entry "echo/<path>" named <path> of size page_size, and next_page_token
// "after:<path>". Requests with path "missing" fail with NotFound.
std::string ExpectedListResponse(const std::string& path, uint32_t page_size = 7);

class EchoService {
 public:
  explicit EchoService(int threads = 4);
  ~EchoService();  // joins the pool (handlers still held are released)

  EchoService(const EchoService&) = delete;
  EchoService& operator=(const EchoService&) = delete;

  // Runs registered handlers on the pool; Unimplemented for others.
  internal::Dispatcher dispatcher();

  // Requests with path "hold" block in their handler until ReleaseHeld().
  void ReleaseHeld();
  // Waits (at most `timeout`) until `count` "hold" requests are blocked.
  bool WaitUntilHeld(int count, absl::Duration timeout);

  // Handler runs finished so far.
  int handled() const { return handled_.load(); }

  // For each call dispatched so far, in order: its deadline less the time
  // it was dispatched (how long the server let it run).
  std::vector<absl::Duration> budgets() {
    std::lock_guard<std::mutex> lock(mu_);
    return budgets_;
  }

 private:
  absl::StatusOr<std::string> List(const std::string& request);
  void Worker();

  internal::HandlerRegistry registry_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // work queued, or stopping
  std::condition_variable held_cv_;  // held_ or released_ changed
  std::deque<std::function<void()>> work_;
  bool stopping_ = false;
  bool released_ = false;
  int held_ = 0;
  std::vector<absl::Duration> budgets_;
  std::atomic<int> handled_{0};
  std::vector<std::thread> threads_;
};

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_RABBITMQ_ECHO_SERVICE_H_
