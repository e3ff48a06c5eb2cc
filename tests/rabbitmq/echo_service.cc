#include "rabbitmq/echo_service.h"

#include <chrono>
#include <utility>

namespace filemesh::testing {

std::string ListRequestBytes(const std::string& path, uint32_t page_size) {
  v1::ListRequest request;
  request.set_path(path);
  request.set_page_size(page_size);
  return request.SerializeAsString();
}

std::string ExpectedListResponse(const std::string& path, uint32_t page_size) {
  v1::ListResponse response;
  v1::FileEntry* entry = response.add_entries();
  entry->set_path("echo/" + path);
  entry->set_name(path);
  entry->set_size(page_size);
  response.set_next_page_token("after:" + path);
  return response.SerializeAsString();
}

EchoService::EchoService(int threads) {
  registry_.Add(kListMethod,
                [this](const std::string& request, absl::Time) { return List(request); });
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Worker(); });
}

EchoService::~EchoService() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    released_ = true;
  }
  work_cv_.notify_all();
  held_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

absl::StatusOr<std::string> EchoService::List(const std::string& bytes) {
  v1::ListRequest request;
  if (!request.ParseFromString(bytes)) return absl::InvalidArgumentError("bad ListRequest");
  if (request.path() == "missing") return absl::NotFoundError("no such directory: missing");
  if (request.path() == "hold") {
    std::unique_lock<std::mutex> lock(mu_);
    ++held_;
    held_cv_.notify_all();
    held_cv_.wait_for(lock, std::chrono::seconds(60), [this] { return released_; });
  }
  return ExpectedListResponse(request.path(), request.page_size());
}

internal::Dispatcher EchoService::dispatcher() {
  return [this](internal::IncomingCall call, std::string request, internal::ReplyCallback done) {
    const absl::Time deadline = call.deadline;
    const internal::RawHandler* handler = registry_.Find(call.method);
    if (handler == nullptr) {
      done(absl::UnimplementedError("unknown method " + call.method));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      budgets_.push_back(deadline - absl::Now());
      work_.push_back(
          [this, handler, request = std::move(request), deadline, done = std::move(done)] {
            absl::StatusOr<std::string> result = (*handler)(request, deadline);
            ++handled_;
            done(std::move(result));
          });
    }
    work_cv_.notify_one();
  };
}

void EchoService::ReleaseHeld() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  held_cv_.notify_all();
}

bool EchoService::WaitUntilHeld(int count, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return held_cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                           [this, count] { return held_ >= count; });
}

void EchoService::Worker() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [this] { return stopping_ || !work_.empty(); });
    if (work_.empty()) return;  // stopping, nothing left
    std::function<void()> job = std::move(work_.front());
    work_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

}  // namespace filemesh::testing
