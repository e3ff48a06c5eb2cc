// BlockingWait: the one way a blocking call waits for its asynchronous form.
//
//   internal::BlockingWait<CallResult> wait;
//   channel.CallAsync(method, request, deadline, wait.Callback());
//   CallResult result = wait.Take();
//
// The callback may run on any thread, before or after Take() starts waiting.

#ifndef FILEMESH_SRC_BASE_BLOCKING_WAIT_H_
#define FILEMESH_SRC_BASE_BLOCKING_WAIT_H_

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "filemesh/internal/mutex.hpp"

namespace filemesh::internal {

template <typename T>
class BlockingWait {
 public:
  BlockingWait() : state_(std::make_shared<State>()) {}

  // A callback that hands its argument to Take(). Call it once.
  std::function<void(T)> Callback() const {
    return [state = state_](T value) {
      MutexLock lock(&state->mu);
      state->value.emplace(std::move(value));
      state->cv.SignalAll();
    };
  }

  // Blocks until the callback has run, and returns what it was given.
  T Take() {
    MutexLock lock(&state_->mu);
    while (!state_->value.has_value()) state_->cv.Wait();
    return *std::move(state_->value);
  }

 private:
  // Shared with the callback, which may outlive the waiter by a moment (it
  // still holds the lock when Take returns).
  struct State {
    Mutex mu;
    CondVar cv{&mu};
    std::optional<T> value ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_BLOCKING_WAIT_H_
