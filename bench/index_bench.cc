// filemesh_index_bench: FileIndex on a tree (issue 22's figures).
//
//   filemesh_index_bench ROOT [RUNS [--build-only]]
//
// Builds a FileIndex of ROOT and prints: the build time, the entries, the
// memory the index says it holds and the growth of the process's resident
// set over the build, each per entry; the same once the index has read every
// entry's attributes, and the time that took; then, for a glob, a
// substring, a regular expression, a full scan, a 100,000-match answer and a
// size bound over every file, the p50 and p90 of RUNS searches (default 30)
// on the index and, as the reference of the same run, of FileSearcher's walk
// (5 runs). Then freshness: a writer makes and removes files in ROOT/.fresh at
// 1,000 changes a second for 10 s while a reader searches that directory
// through the index every 2 ms; the figure is, for each file made, the time
// from its creation to the first search that shows it (p50, p99, max).
// bench/index_bench.sh runs it on the generated 2-million-entry tree with
// the parallel floor and plocate beside it.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "filemesh/file_index.hpp"
#include "filemesh/file_searcher.hpp"

namespace {

// Resident set of the process, in bytes (/proc/self/statm).
uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Seconds one thread takes to touch `bytes` of fresh memory for the first
// time, in 2 MiB blocks with the huge-page advice, as NameTree takes its
// memory: the kernel's share of a build (it zeroes every page it hands out;
// on a virtual machine the host may have to back it as well).
double FirstTouchSeconds(uint64_t bytes) {
  constexpr size_t kBlock = size_t{2} << 20;
  std::vector<char*> blocks;
  const absl::Time start = absl::Now();
  for (uint64_t done = 0; done < bytes; done += kBlock) {
    char* block = static_cast<char*>(std::aligned_alloc(kBlock, kBlock));
    if (block == nullptr) break;
    ::madvise(block, kBlock, MADV_HUGEPAGE);
    for (size_t at = 0; at < kBlock; at += 4096) block[at] = 1;
    blocks.push_back(block);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (char* block : blocks) std::free(block);
  return seconds;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t at =
      std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  return values[at];
}

struct Query {
  const char* label;
  filemesh::v1::SearchRequest request;
};

std::vector<Query> Queries() {
  std::vector<Query> queries(6);
  queries[5].label = "glob * min_size 4990";  // every file's size
  queries[5].request.set_pattern("*");
  queries[5].request.set_min_size(4990);
  queries[5].request.set_max_results(100000);
  queries[5].request.set_syntax(filemesh::v1::PATTERN_SYNTAX_GLOB);
  queries[3].label = "glob nothing.h";
  queries[3].request.set_pattern("nothing.h");
  queries[3].request.set_syntax(filemesh::v1::PATTERN_SYNTAX_GLOB);
  queries[4].label = "glob *.h (100,000 results)";
  queries[4].request.set_pattern("*.h");
  queries[4].request.set_max_results(100000);
  queries[4].request.set_syntax(filemesh::v1::PATTERN_SYNTAX_GLOB);
  queries[0].label = "glob *.h";
  queries[0].request.set_pattern("*.h");
  queries[0].request.set_syntax(filemesh::v1::PATTERN_SYNTAX_GLOB);
  queries[1].label = "substring util_7";
  queries[1].request.set_pattern("util_7");
  queries[1].request.set_syntax(filemesh::v1::PATTERN_SYNTAX_SUBSTRING);
  queries[2].label = "regex ^lexer_9[0-9]\\.cc$";
  queries[2].request.set_pattern("^lexer_9[0-9]\\.cc$");
  queries[2].request.set_syntax(filemesh::v1::PATTERN_SYNTAX_REGEX);
  return queries;
}

// Milliseconds of each of `runs` searches.
std::vector<double> Time(const filemesh::FileSearcherInterface& searcher,
                         const filemesh::v1::SearchRequest& request, int runs, int* matches,
                         bool* indexed) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<filemesh::v1::SearchResponse> answer = searcher.Search(request);
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (!answer.ok()) {
      std::fprintf(stderr, "search failed: %s\n", answer.status().ToString().c_str());
      std::exit(1);
    }
    *matches = answer->matches_size();
    *indexed = answer->has_index_as_of();
  }
  return ms;
}

void Freshness(const std::string& root, const filemesh::FileIndex& index) {
  const std::string dir = root + "/.fresh";
  ::mkdir(dir.c_str(), 0755);
  if (!index.WaitUntilCurrent(absl::Now() + absl::Seconds(30))) {
    std::fprintf(stderr, "the index did not catch up\n");
    std::exit(1);
  }
  constexpr int kFiles = 5000;  // made at 500/s and removed at 500/s: 1,000 changes/s
  std::vector<absl::Time> made(kFiles);
  std::vector<double> seen_after(kFiles, -1);
  std::atomic<int> made_count{0};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    const absl::Time start = absl::Now();
    for (int i = 0; i < kFiles; ++i) {
      // Paced: change 2i at start + 2i ms, change 2i+1 one ms later.
      const absl::Time due = start + absl::Milliseconds(2 * i);
      while (absl::Now() < due) std::this_thread::sleep_for(std::chrono::microseconds(200));
      const std::string name = absl::StrCat(dir, "/f", i);
      made[i] = absl::Now();
      const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
      made_count.store(i + 1);
      if (i >= 200) ::unlink(absl::StrCat(dir, "/f", i - 200).c_str());
    }
    done.store(true);
  });
  filemesh::v1::SearchRequest request;
  request.set_path(".fresh");
  request.set_pattern("f*");
  request.set_include_hidden(true);
  request.set_max_results(100000);
  // One look: every file it shows for the first time was seen now.
  const auto look = [&](int upto) {
    absl::StatusOr<filemesh::v1::SearchResponse> answer = index.Search(request);
    const absl::Time now = absl::Now();
    if (!answer.ok()) return;
    for (const auto& match : answer->matches()) {
      const int i = std::atoi(match.name().c_str() + 1);
      if (i >= 0 && i < upto && seen_after[i] < 0) {
        seen_after[i] = absl::ToDoubleMilliseconds(now - made[i]);
      }
    }
  };
  while (!done.load()) {
    look(made_count.load());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  writer.join();
  // The last files, made just before the reader's last look: one more, once
  // the index holds every change.
  if (index.WaitUntilCurrent(absl::Now() + absl::Seconds(30))) look(kFiles);
  std::vector<double> latencies;
  int missed = 0;
  for (int i = 0; i < kFiles; ++i) {
    if (seen_after[i] >= 0) {
      latencies.push_back(seen_after[i]);
    } else if (i < kFiles - 200) {
      ++missed;  // removed before a search saw it
    }
  }
  std::printf(
      "freshness at 1,000 changes/s: %zu files seen, p50 %.1f ms  p99 %.1f ms  max %.1f ms"
      "  (%d removed unseen)\n",
      latencies.size(), Percentile(latencies, 0.5), Percentile(latencies, 0.99),
      Percentile(latencies, 1.0), missed);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: filemesh_index_bench ROOT [RUNS]\n");
    return 2;
  }
  const std::string root = argv[1];
  const int runs = argc > 2 ? std::atoi(argv[2]) : 30;

  const uint64_t rss_before = ResidentBytes();
  filemesh::FileIndexOptions options;
  options.verify_interval = absl::ZeroDuration();
  filemesh::FileIndex index(root, options);
  if (absl::Status started = index.Start(); !started.ok()) {
    std::fprintf(stderr, "%s\n", started.ToString().c_str());
    return 1;
  }
  if (!index.WaitUntilCurrent(absl::Now() + absl::Minutes(10))) {
    std::fprintf(stderr, "the index was not built: %s\n", index.status().ToString().c_str());
    return 1;
  }
  const uint64_t rss_after = ResidentBytes();
  const filemesh::FileIndexStats stats = index.stats();
  const double entries = static_cast<double>(stats.entries);
  std::printf("index of %s (%s): %llu entries, %llu directories, built in %.3f s\n", root.c_str(),
              stats.watch_mode.c_str(), static_cast<unsigned long long>(stats.entries),
              static_cast<unsigned long long>(stats.directories),
              absl::ToDoubleSeconds(stats.build_time));
  std::printf("memory: %.1f bytes/entry held by the index, %.1f bytes/entry RSS growth\n",
              static_cast<double>(stats.memory_bytes) / entries,
              static_cast<double>(rss_after - rss_before) / entries);

  std::printf("first touch of %.1f MB in 2 MiB blocks, one thread: %.3f s\n",
              static_cast<double>(stats.memory_bytes) / 1e6, FirstTouchSeconds(stats.memory_bytes));
  if (argc > 3 && std::string(argv[3]) == "--build-only") return 0;
  // Searches are timed once the attributes are read (the index's thread
  // reads them after the build, on one core).
  if (!index.WaitUntilAttributesKept(absl::Now() + absl::Minutes(10))) {
    std::fprintf(stderr, "the attributes were not read: %s\n", index.status().ToString().c_str());
    return 1;
  }
  const filemesh::FileIndexStats kept = index.stats();
  std::printf(
      "attributes of every entry read in %.3f s after the build; memory: %.1f bytes/entry held, "
      "%.1f bytes/entry RSS growth\n",
      absl::ToDoubleSeconds(kept.attributes_time), static_cast<double>(kept.memory_bytes) / entries,
      static_cast<double>(ResidentBytes() - rss_before) / entries);
  filemesh::FileSearcher walker(root);
  for (const Query& q : Queries()) {
    int index_matches = 0, walk_matches = 0;
    bool indexed = false, walked_indexed = false;
    const std::vector<double> on_index = Time(index, q.request, runs, &index_matches, &indexed);
    const std::vector<double> on_walk = Time(walker, q.request, 5, &walk_matches, &walked_indexed);
    std::printf(
        "%-28s index p50 %7.2f ms  p90 %7.2f ms  (%d matches%s) | walk p50 %7.1f ms (%d matches)\n",
        q.label, Percentile(on_index, 0.5), Percentile(on_index, 0.9), index_matches,
        indexed ? "" : ", NOT FROM THE INDEX", Percentile(on_walk, 0.5), walk_matches);
  }
  Freshness(root, index);
  return 0;
}
