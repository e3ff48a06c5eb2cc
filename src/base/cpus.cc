#include "base/cpus.h"

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace filemesh::internal {
namespace {

int AffinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
}

// quota / period rounded up, or 0 when there is no quota.
int64_t QuotaCpus(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return 0;
  return (quota + period - 1) / period;
}

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int UsableCpusFrom(int affinity, const char* cpu_max) {
  int cpus = std::max(1, affinity);
  if (cpu_max != nullptr && *cpu_max != '\0') {
    std::istringstream in(cpu_max);
    std::string quota;
    int64_t period = 0;
    if (in >> quota >> period && quota != "max") {
      try {
        const int64_t limit = QuotaCpus(std::stoll(quota), period);
        if (limit > 0 && limit < cpus) cpus = static_cast<int>(limit);
      } catch (const std::exception&) {
        // Not a number: no quota we can read.
      }
    }
  }
  return cpus;
}

int UsableCpus() {
  static const int cpus = [] {
    int n = AffinityCpus();
    // cgroup v2: the process's cgroup (the "0::" line of /proc/self/cgroup)
    // and each of its ancestors may have a cpu.max; the smallest one holds.
    std::istringstream groups(ReadFile("/proc/self/cgroup"));
    std::string line;
    while (std::getline(groups, line)) {
      if (line.rfind("0::", 0) != 0) continue;
      std::string group = line.substr(3);
      while (true) {
        const std::string file = "/sys/fs/cgroup" + (group == "/" ? "" : group) + "/cpu.max";
        n = UsableCpusFrom(n, ReadFile(file.c_str()).c_str());
        const size_t slash = group.rfind('/');
        if (slash == std::string::npos || group == "/") break;
        group = slash == 0 ? "/" : group.substr(0, slash);
      }
    }
    {
      // cgroup v1 (or a hybrid host): the cpu controller's quota.
      int64_t quota = 0, period = 0;
      std::istringstream(ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) >> quota;
      std::istringstream(ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us")) >> period;
      const int64_t limit = QuotaCpus(quota, period);
      if (limit > 0 && limit < n) n = static_cast<int>(limit);
    }
    return n;
  }();
  return cpus;
}

}  // namespace filemesh::internal
