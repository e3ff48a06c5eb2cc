#ifndef FILEMESH_TESTS_CAPTURED_LOG_H_
#define FILEMESH_TESTS_CAPTURED_LOG_H_

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "filemesh/service/log.hpp"

namespace filemesh {

// Collects the lines LogEvent writes while it lives (through SetLogSink).
class CapturedLog {
 public:
  CapturedLog() {
    SetLogSink([this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(line);
    });
  }
  ~CapturedLog() { SetLogSink(nullptr); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

  // The lines whose event is `event`.
  std::vector<std::string> Events(const std::string& event) const {
    std::vector<std::string> out;
    const std::string needle = absl::StrCat(" event=", event, " ");
    const std::string at_end = absl::StrCat(" event=", event);
    for (const std::string& line : lines()) {
      if (absl::StrContains(line, needle) || absl::EndsWith(line, at_end)) out.push_back(line);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace filemesh

#endif  // FILEMESH_TESTS_CAPTURED_LOG_H_
