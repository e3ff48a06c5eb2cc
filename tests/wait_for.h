#ifndef FILEMESH_TESTS_WAIT_FOR_H_
#define FILEMESH_TESTS_WAIT_FOR_H_

#include <chrono>
#include <functional>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace filemesh::testing {

// Polls `condition` until it holds (true) or `timeout` passes (false). For
// state another process or thread reaches in its own time (a broker noticing
// a connection, a reconnect); the timeout only bounds a failure.
inline bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_WAIT_FOR_H_
