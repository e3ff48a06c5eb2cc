#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "base/absl_compat.h"
#include "base/utf8.h"
#include "cli/remote_failure.h"
#include "filemesh/file_index.hpp"
#include "filemesh/file_lister.hpp"
#include "filemesh/file_searcher.hpp"
#include "filemesh/names.hpp"
#include "filemesh/version.hpp"
#include "google/protobuf/util/json_util.h"

namespace filemesh::cli {
namespace {

constexpr char kMainHelp[] = R"(filemesh - list and search files under a root directory

Usage:
  filemesh ls   [--root DIR | --gateway URL] [PATH] [options]   list one directory
  filemesh find [--root DIR | --gateway URL] [--path PATH] PATTERN [options]
                                                               search a tree
  filemesh --version

Paths are relative to the root (default: the current directory) and can never
leave it. With --gateway (or FILEMESH_GATEWAY), the commands ask a filemesh
gateway's REST API instead, about the root its services serve. Run
`filemesh ls --help` or `filemesh find --help` for the options.
)";

constexpr char kLsHelp[] = R"(Usage: filemesh ls [--root DIR] [PATH] [options]

Lists the directory PATH (relative to the root; default: the root itself), one
path per line, relative to the root.

Options:
  --root DIR           directory to serve as the root (default: .)
  --gateway URL        ask the gateway at http(s)://HOST:PORT instead
                       (default: $FILEMESH_GATEWAY; --root is then refused)
  --api-key KEY        the gateway's API key (default: $FILEMESH_API_KEY)
  --ca FILE            an https:// gateway's CA certificate, PEM (default:
                       $FILEMESH_CA, else the system's trusted CAs)
  --sort FIELD         name (byte order, default), size or modified
  --desc               largest, newest or last name first
  --hidden             include entries whose name starts with '.'
  --page-size N        print one page of N entries (1..10000) and, on stderr,
                       the token for the next page; default: print every page
  --page-token TOKEN   continue from a previous page
  --json               print the ListResponse as JSON (protobuf JSON mapping)
  -0, --print0         end each path with NUL instead of a newline
  -h, --help           this text
)";

constexpr char kFindHelp[] = R"(Usage: filemesh find [--root DIR] [--path PATH] PATTERN [options]

Prints the path (relative to the root) of every entry under PATH whose name
matches PATTERN, as it is found (several threads walk, so in no set order;
--sort for byte order). A glob with '/' matches the path relative to PATH, and
there '**' spans directories. Symbolic links are reported, never followed. On
a terminal, a search that takes over a second shows its progress on stderr.

Options:
  --root DIR           directory to serve as the root (default: .)
  --gateway URL        ask the gateway at http(s)://HOST:PORT instead
                       (default: $FILEMESH_GATEWAY; --root and --threads are
                       then refused; matches come sorted, 100000 at most)
  --api-key KEY        the gateway's API key (default: $FILEMESH_API_KEY)
  --ca FILE            an https:// gateway's CA certificate, PEM (default:
                       $FILEMESH_CA, else the system's trusted CAs)
  --path PATH          where to search, relative to the root (default: the root)
  --glob               PATTERN is a shell glob (default)
  --substring          PATTERN occurs anywhere in the name
  --regex              PATTERN is an RE2 regular expression (unanchored)
  -i, --ignore-case    match case-insensitively
  --type T             f (file), d (directory), l (symlink) or o (other)
  --max-depth N        descend at most N levels (1: entries directly in PATH)
  --min-size BYTES     only regular files of at least BYTES
  --max-size BYTES     only regular files of at most BYTES
  --hidden             include and descend into entries starting with '.'
  -x, --one-file-system
                       do not descend into directories on other filesystems
                       (with --gateway: the services' default is on anyway)
  --max-results N      stop after N matches (default: no limit)
  --timeout SECONDS    stop after this long and print what was found (with
                       --gateway: give up waiting after this long)
  --threads N          walker threads (default: one per core)
  --index-dir DIR      answer from an index of the root kept in DIR: its
                       snapshot when younger than --index-max-age, else one
                       built now and saved there (sorted, 100000 at most;
                       stderr says how old the answer is)
  --index-max-age D    how old a snapshot may be: 30s, 10m, 2h (default: 1h;
                       0s: always build)
  --sort               collect every match, then print them sorted by path
  --json               print the SearchResponse as JSON (protobuf JSON mapping;
                       collects and sorts like --sort)
  -0, --print0         end each path with NUL instead of a newline
  -h, --help           this text
)";

// A small, strict argument parser: every option is declared, unknown ones and
// missing values are usage errors.
class Args {
 public:
  Args(std::string command, std::FILE* err) : command_(std::move(command)), err_(err) {}

  void Flag(std::string name, bool* target) { flags_[std::move(name)] = target; }
  void Value(std::string name, std::string* target) { values_[std::move(name)] = target; }

  // Fills the declared targets; positionals in order. False on a usage error
  // (already reported).
  bool Parse(const std::vector<std::string>& args, std::vector<std::string>* positionals) {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "--") {
        positionals->insert(positionals->end(), args.begin() + static_cast<long>(i) + 1,
                            args.end());
        return true;
      }
      if (arg.size() < 2 || arg[0] != '-') {
        positionals->push_back(arg);
        continue;
      }
      std::string name = arg;
      std::optional<std::string> inline_value;
      if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = arg.substr(0, eq);
        inline_value = arg.substr(eq + 1);
      }
      if (auto f = flags_.find(name); f != flags_.end() && !inline_value) {
        *f->second = true;
        continue;
      }
      if (auto v = values_.find(name); v != values_.end()) {
        if (inline_value) {
          *v->second = *inline_value;
        } else if (i + 1 < args.size()) {
          *v->second = args[++i];
        } else {
          return Usage(absl::StrCat("option ", name, " needs a value"));
        }
        continue;
      }
      return Usage(absl::StrCat("unknown option ", arg));
    }
    return true;
  }

  bool Usage(std::string_view message) {
    absl::FPrintF(err_, "filemesh %s: %s (see filemesh %s --help)\n", command_, message, command_);
    return false;
  }

  std::FILE* err() const { return err_; }

 private:
  std::string command_;
  std::FILE* err_;
  std::map<std::string, bool*> flags_;
  std::map<std::string, std::string*> values_;
};

// Parses a whole unsigned number in [min, max]; "" leaves `out` unset.
template <typename T>
bool ParseNumber(Args& args, std::string_view option, const std::string& text, T min, T max,
                 std::optional<T>* out) {
  if (text.empty()) return true;
  uint64_t value;
  if (!absl::SimpleAtoi(text, &value) || text[0] == '-' || text[0] == '+' || value < min ||
      value > max) {
    return args.Usage(absl::StrCat(internal::AbslView(option), " takes a whole number from ", min,
                                   " to ", max, ", not \"", text, "\""));
  }
  *out = static_cast<T>(value);
  return true;
}

int Fail(std::FILE* err, const absl::Status& status) {
  absl::FPrintF(err, "filemesh: %s: %s\n", absl::StatusCodeToString(status.code()),
                status.message());
  return kExitFailure;
}

// `filemesh ls /usr/include` is a habit from ls: here paths are relative to
// the root, so an absolute one is refused with the command that does what was
// meant (`--root`). `command_line` is that command with DIR for the
// directory, e.g. "filemesh ls --root DIR". OK for a relative path.
absl::Status CheckRelative(std::string_view path, bool remote, std::string_view command_line) {
  if (path.empty() || path.front() != '/') return absl::OkStatus();
  std::string message = "path \"";
  internal::AppendTerminalForm(path, &message);
  message += "\" is absolute, but paths are relative to the root";
  if (remote) {
    absl::StrAppend(&message, " the gateway's services serve: ask for the path below it");
    return absl::InvalidArgumentError(message);
  }
  // Shown as a command only when the path needs no shell quoting.
  const bool plain = std::all_of(path.begin(), path.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' ||
           c == '-' || c == '+' || c == ',' || c == '@' || c == ':';
  });
  if (plain) {
    absl::StrAppend(
        &message, " (--root, default: the current directory); for that directory run: ",
        absl::StrReplaceAll(internal::AbslView(command_line), {{"DIR", internal::AbslView(path)}}));
  } else {
    absl::StrAppend(&message,
                    " (--root, default: the current directory): give that directory "
                    "as --root instead");
  }
  return absl::InvalidArgumentError(message);
}

int PrintJson(const google::protobuf::Message& message, std::FILE* out, std::FILE* err) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return Fail(err, absl::InternalError(status.ToString()));
  std::fwrite(json.data(), 1, json.size(), out);
  return kExitOk;
}

// The progress line of a long search on a terminal: entries scanned and
// matches, redrawn at most every 100 ms from one second on, and cleared
// before matches are printed and at the end.
class ProgressLine {
 public:
  ProgressLine(std::FILE* err, bool enabled, absl::Duration after)
      : err_(err), enabled_(enabled), after_(after) {}
  ~ProgressLine() { Clear(); }

  void Update(uint64_t scanned, uint64_t matches) {
    if (Due()) Draw(absl::StrFormat("scanned %d entries, %d matches", scanned, matches));
  }

  // A queued remote call: how long it has waited.
  void Waiting(absl::Duration waited) {
    if (Due()) {
      Draw(absl::StrFormat("queued on the gateway's broker, waiting for a service (%d s)",
                           absl::ToInt64Seconds(waited)));
    }
  }

  bool Due() const {
    const absl::Time now = absl::Now();
    return enabled_ && now - start_ >= after_ && now - drawn_ >= absl::Milliseconds(100);
  }

  void Draw(const std::string& text) {
    absl::FPrintF(err_, "\r\033[K%s", text);
    std::fflush(err_);
    drawn_ = absl::Now();
    shown_ = true;
  }

  void Clear() {
    if (!shown_) return;
    std::fputs("\r\033[K", err_);
    std::fflush(err_);
    shown_ = false;
  }

 private:
  std::FILE* const err_;
  const bool enabled_;
  const absl::Duration after_;
  const absl::Time start_ = absl::Now();
  absl::Time drawn_ = absl::InfinitePast();
  bool shown_ = false;
};

bool IsTerminal(std::FILE* f) { return ::isatty(::fileno(f)) == 1; }

// A path as it goes out: its exact bytes to a pipe or a file (like ls and
// fd), and to a terminal with control characters and bytes that are not
// UTF-8 escaped (\xHH), so that a file name cannot move the cursor, retitle
// the window or hide other lines.
void AppendShownPath(const v1::FileEntry& entry, bool terminal, std::string* text) {
  const std::string& path = ExactPath(entry);
  if (terminal) {
    internal::AppendTerminalForm(path, text);
  } else {
    text->append(path);
  }
}

void PrintPath(const v1::FileEntry& entry, bool print0, bool terminal, std::FILE* out) {
  if (!terminal) {
    const std::string& path = ExactPath(entry);
    std::fwrite(path.data(), 1, path.size(), out);
  } else {
    std::string text;
    AppendShownPath(entry, terminal, &text);
    std::fwrite(text.data(), 1, text.size(), out);
  }
  std::fputc(print0 ? '\0' : '\n', out);
}

// PrintPath for a batch of a streamed search (a few thousand at most), in
// one write to `out`: stdio locks the stream for each call.
void PrintPaths(const std::vector<v1::FileEntry>& entries, bool print0, bool terminal,
                std::string* text, std::FILE* out) {
  text->clear();
  for (const v1::FileEntry& e : entries) {
    AppendShownPath(e, terminal, text);
    text->push_back(print0 ? '\0' : '\n');
  }
  std::fwrite(text->data(), 1, text->size(), out);
}

// A failure of remote mode: its one line, its exit code (130 when it was an
// interrupt).
int FailRemote(std::FILE* err, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kCancelled) return kExitInterrupted;
  const RemoteFailure failure = RemoteFailureOf(status);
  // The gateway's words: escaped on a terminal like paths.
  std::string line;
  if (IsTerminal(err)) {
    internal::AppendTerminalForm(failure.line, &line);
  } else {
    line = failure.line;
  }
  absl::FPrintF(err, "%s\n", line);
  return failure.exit_code;
}

// --gateway, else $FILEMESH_GATEWAY; the same for the key.
std::string FlagOrEnv(const std::string& flag, const char* variable) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(variable);
  return value != nullptr ? value : "";
}

// The client for remote mode; null (and `*exit_code` set) on a bad URL or
// when this program has no remote mode.
std::unique_ptr<RemoteGateway> Connect(Args& args, const std::string& gateway,
                                       const std::string& api_key, const std::string& ca,
                                       absl::Duration timeout, const RunOptions& run,
                                       ProgressLine* progress, int* exit_code) {
  if (!run.connect_gateway) {
    args.Usage("--gateway is not available in this program");
    *exit_code = kExitUsage;
    return nullptr;
  }
  GatewayOptions options;
  options.url = gateway;
  options.api_key = FlagOrEnv(api_key, "FILEMESH_API_KEY");
  options.ca_file = FlagOrEnv(ca, "FILEMESH_CA");
  options.timeout = timeout;
  options.interrupted = run.interrupted;
  options.on_wait = [progress](absl::Duration waited) {
    if (waited < absl::ZeroDuration()) {
      progress->Clear();
    } else {
      progress->Waiting(waited);
    }
  };
  absl::StatusOr<std::unique_ptr<RemoteGateway>> client = run.connect_gateway(std::move(options));
  if (!client.ok()) {
    // A malformed URL is a usage error; a remote mode that could not start
    // (the helper missing) is not.
    if (client.status().code() != absl::StatusCode::kInvalidArgument) {
      *exit_code = Fail(args.err(), client.status());
      return nullptr;
    }
    args.Usage(internal::StdView(client.status().message()));
    *exit_code = kExitUsage;
    return nullptr;
  }
  return *std::move(client);
}

struct LsFlags {
  bool help = false, desc = false, hidden = false, json = false, print0 = false;
  std::string root, sort = "name", page_size_text, page_token, gateway_flag, api_key, ca;
  std::vector<std::string> positionals;
};

// The ListRequest `flags` ask for and the page size when one was given;
// nullopt after a usage message.
std::optional<v1::ListRequest> LsRequest(Args& args, const LsFlags& flags,
                                         std::optional<uint32_t>* page_size) {
  if (flags.positionals.size() > 1) return args.Usage("takes at most one PATH"), std::nullopt;
  if (!ParseNumber<uint32_t>(args, "--page-size", flags.page_size_text, 1, FileLister::kMaxPageSize,
                             page_size)) {
    return std::nullopt;
  }
  v1::ListRequest request;
  if (!flags.positionals.empty()) request.set_path(flags.positionals[0]);
  if (flags.sort == "name") {
    request.set_sort(v1::SORT_FIELD_NAME);
  } else if (flags.sort == "size") {
    request.set_sort(v1::SORT_FIELD_SIZE);
  } else if (flags.sort == "modified") {
    request.set_sort(v1::SORT_FIELD_MODIFIED);
  } else {
    args.Usage(absl::StrCat("--sort takes name, size or modified, not \"", flags.sort, "\""));
    return std::nullopt;
  }
  request.set_descending(flags.desc);
  request.set_include_hidden(flags.hidden);
  request.set_page_token(flags.page_token);
  request.set_page_size(page_size->value_or(1000));
  return request;
}

using ListFunction = std::function<absl::StatusOr<v1::ListResponse>(const v1::ListRequest&)>;

// Prints the listing: one page when --page-size was given (and where the
// next starts), else every page.
int PrintListing(const ListFunction& list, v1::ListRequest request, bool one_page,
                 const LsFlags& flags, const std::function<int(const absl::Status&)>& fail,
                 std::FILE* out, std::FILE* err) {
  const bool terminal = IsTerminal(out);
  v1::ListResponse all;
  for (;;) {
    absl::StatusOr<v1::ListResponse> page = list(request);
    if (!page.ok()) return fail(page.status());
    if (!flags.json) {
      for (const v1::FileEntry& e : page->entries()) PrintPath(e, flags.print0, terminal, out);
    }
    if (one_page) {
      if (flags.json) return PrintJson(*page, out, err);
      if (!page->next_page_token().empty()) {
        absl::FPrintF(err, "next page: --page-token %s\n", page->next_page_token());
      }
      return kExitOk;
    }
    if (flags.json) all.mutable_entries()->MergeFrom(page->entries());
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  return flags.json ? PrintJson(all, out, err) : kExitOk;
}

int RunLs(const std::vector<std::string>& argv, std::FILE* out, std::FILE* err,
          const RunOptions& run) {
  Args args("ls", err);
  LsFlags flags;
  args.Flag("--help", &flags.help);
  args.Flag("-h", &flags.help);
  args.Flag("--desc", &flags.desc);
  args.Flag("--hidden", &flags.hidden);
  args.Flag("--json", &flags.json);
  args.Flag("--print0", &flags.print0);
  args.Flag("-0", &flags.print0);
  args.Value("--root", &flags.root);
  args.Value("--sort", &flags.sort);
  args.Value("--page-size", &flags.page_size_text);
  args.Value("--page-token", &flags.page_token);
  args.Value("--gateway", &flags.gateway_flag);
  args.Value("--api-key", &flags.api_key);
  args.Value("--ca", &flags.ca);
  if (!args.Parse(argv, &flags.positionals)) return kExitUsage;
  if (flags.help) {
    std::fputs(kLsHelp, out);
    return kExitOk;
  }
  std::optional<uint32_t> page_size;
  std::optional<v1::ListRequest> request = LsRequest(args, flags, &page_size);
  if (!request.has_value()) return kExitUsage;
  const bool remote = !FlagOrEnv(flags.gateway_flag, "FILEMESH_GATEWAY").empty();
  if (absl::Status relative = CheckRelative(request->path(), remote, "filemesh ls --root DIR");
      !relative.ok()) {
    return Fail(err, relative);
  }

  // Local: a FileLister on the root. Remote: the gateway's /api/v1/files.
  ListFunction list;
  std::function<int(const absl::Status&)> fail = [err](const absl::Status& status) {
    return Fail(err, status);
  };
  std::unique_ptr<FileLister> lister;
  std::unique_ptr<RemoteGateway> gateway;
  ProgressLine progress(err, IsTerminal(out) && IsTerminal(err), run.progress_after);
  if (const std::string url = FlagOrEnv(flags.gateway_flag, "FILEMESH_GATEWAY"); !url.empty()) {
    if (!flags.root.empty()) {
      return args.Usage(
                 "--root and --gateway exclude each other (the gateway's services have "
                 "their own root)"),
             kExitUsage;
    }
    int code = kExitOk;
    gateway = Connect(args, url, flags.api_key, flags.ca, absl::InfiniteDuration(), run, &progress,
                      &code);
    if (gateway == nullptr) return code;
    list = [&gateway](const v1::ListRequest& r) { return gateway->List(r); };
    fail = [err](const absl::Status& status) { return FailRemote(err, status); };
  } else {
    lister = std::make_unique<FileLister>(flags.root.empty() ? "." : flags.root);
    list = [&lister](const v1::ListRequest& r) { return lister->List(r); };
  }
  return PrintListing(list, *std::move(request), page_size.has_value(), flags, fail, out, err);
}

// What a search's summary says on stderr: truncation, skipped directories,
// and mount points left out when the user did not ask for that (a gateway's
// services stay on one filesystem by default).
// `shown` matches were printed, in whatever form (paths, or --json). The
// same words in every mode: streamed, --sort, --json, local or remote.
void ReportSummary(const v1::SearchResponse& summary, uint64_t shown, bool asked_one_file_system,
                   std::FILE* err) {
  if (summary.truncated()) {
    const char* why = summary.truncation_reason() == v1::TRUNCATION_REASON_DEADLINE
                          ? "--timeout reached"
                      : summary.truncation_reason() == v1::TRUNCATION_REASON_MAX_BYTES
                          ? "the answer's size limit reached"
                          : "--max-results reached";
    absl::FPrintF(err, "filemesh: results truncated (%s): %d matches shown\n", why, shown);
  }
  if (summary.skipped_directories() > 0) {
    absl::FPrintF(err, "filemesh: %d directories could not be read and were skipped\n",
                  summary.skipped_directories());
  }
  if (summary.other_filesystem_directories() > 0 && !asked_one_file_system) {
    absl::FPrintF(err,
                  "filemesh: %d directories on other filesystems were not searched (the "
                  "service's one-filesystem default)\n",
                  summary.other_filesystem_directories());
  }
}

// `find` through a gateway: one sorted answer of at most 100,000 matches
// (the request asks for that many unless --max-results says fewer).
int FindRemote(Args& args, const std::string& url, const std::string& api_key,
               const std::string& ca, std::optional<uint32_t> timeout, v1::SearchRequest request,
               bool json, bool print0, const RunOptions& run, std::FILE* out, std::FILE* err) {
  if (request.max_results() == 0) request.set_max_results(FileSearcher::kMaxResults);
  ProgressLine progress(err, IsTerminal(out) && IsTerminal(err), run.progress_after);
  int code = kExitOk;
  std::unique_ptr<RemoteGateway> gateway =
      Connect(args, url, api_key, ca, timeout ? absl::Seconds(*timeout) : absl::InfiniteDuration(),
              run, &progress, &code);
  if (gateway == nullptr) return code;
  absl::StatusOr<v1::SearchResponse> response = gateway->Search(request);
  progress.Clear();
  if (!response.ok()) return FailRemote(err, response.status());
  if (json) {
    if (const int printed = PrintJson(*response, out, err); printed != kExitOk) return printed;
  } else {
    const bool terminal = IsTerminal(out);
    for (const v1::FileEntry& e : response->matches()) PrintPath(e, print0, terminal, out);
  }
  ReportSummary(*response, static_cast<uint64_t>(response->matches_size()),
                request.has_one_file_system(), err);
  return kExitOk;
}

struct FindFlags {
  bool help = false, glob = false, substring = false, regex = false, icase = false, hidden = false,
       json = false, print0 = false, sort = false, one_file_system = false;
  std::string root, path, type, max_depth_text, min_size_text, max_size_text, max_results_text,
      timeout_text, threads_text, gateway_flag, api_key, ca, index_dir, index_max_age_text;
  std::vector<std::string> positionals;
  // Parsed from the texts above by FindRequest.
  std::optional<uint32_t> max_results, threads, timeout;
  absl::Duration index_max_age = absl::Hours(1);
};

void DeclareFindFlags(Args& args, FindFlags* f) {
  args.Flag("--help", &f->help);
  args.Flag("-h", &f->help);
  args.Flag("--glob", &f->glob);
  args.Flag("--substring", &f->substring);
  args.Flag("--regex", &f->regex);
  args.Flag("-i", &f->icase);
  args.Flag("--ignore-case", &f->icase);
  args.Flag("--hidden", &f->hidden);
  args.Flag("-x", &f->one_file_system);
  args.Flag("--one-file-system", &f->one_file_system);
  args.Flag("--json", &f->json);
  args.Flag("--sort", &f->sort);
  args.Flag("--print0", &f->print0);
  args.Flag("-0", &f->print0);
  args.Value("--root", &f->root);
  args.Value("--path", &f->path);
  args.Value("--type", &f->type);
  args.Value("--max-depth", &f->max_depth_text);
  args.Value("--min-size", &f->min_size_text);
  args.Value("--max-size", &f->max_size_text);
  args.Value("--max-results", &f->max_results_text);
  args.Value("--timeout", &f->timeout_text);
  args.Value("--threads", &f->threads_text);
  args.Value("--index-dir", &f->index_dir);
  args.Value("--index-max-age", &f->index_max_age_text);
  args.Value("--gateway", &f->gateway_flag);
  args.Value("--api-key", &f->api_key);
  args.Value("--ca", &f->ca);
}

// The SearchRequest `flags` ask for (and their parsed numbers); nullopt
// after a usage message.
std::optional<v1::SearchRequest> FindRequest(Args& args, FindFlags* flags) {
  if (flags->positionals.size() != 1) return args.Usage("takes exactly one PATTERN"), std::nullopt;
  if (flags->glob + flags->substring + flags->regex > 1) {
    return args.Usage("--glob, --substring and --regex exclude each other"), std::nullopt;
  }
  v1::SearchRequest request;
  request.set_path(flags->path);
  request.set_pattern(flags->positionals[0]);
  request.set_syntax(flags->regex       ? v1::PATTERN_SYNTAX_REGEX
                     : flags->substring ? v1::PATTERN_SYNTAX_SUBSTRING
                                        : v1::PATTERN_SYNTAX_GLOB);
  request.set_case_insensitive(flags->icase);
  request.set_include_hidden(flags->hidden);
  if (flags->one_file_system) request.set_one_file_system(true);
  static const std::map<std::string, v1::FileType> kTypes = {{"", v1::FILE_TYPE_UNSPECIFIED},
                                                             {"f", v1::FILE_TYPE_FILE},
                                                             {"d", v1::FILE_TYPE_DIRECTORY},
                                                             {"l", v1::FILE_TYPE_SYMLINK},
                                                             {"o", v1::FILE_TYPE_OTHER}};
  const auto t = kTypes.find(flags->type);
  if (t == kTypes.end()) {
    args.Usage(absl::StrCat("--type takes f, d, l or o, not \"", flags->type, "\""));
    return std::nullopt;
  }
  request.set_type(t->second);
  constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
  constexpr uint32_t kMax32 = std::numeric_limits<uint32_t>::max();
  std::optional<uint32_t> max_depth;
  std::optional<uint64_t> min_size, max_size;
  if (!ParseNumber<uint32_t>(args, "--max-depth", flags->max_depth_text, 1, kMax32, &max_depth) ||
      !ParseNumber<uint64_t>(args, "--min-size", flags->min_size_text, 0, kMax64, &min_size) ||
      !ParseNumber<uint64_t>(args, "--max-size", flags->max_size_text, 0, kMax64, &max_size) ||
      !ParseNumber<uint32_t>(args, "--max-results", flags->max_results_text, 1, kMax32,
                             &flags->max_results) ||
      !ParseNumber<uint32_t>(args, "--timeout", flags->timeout_text, 1, 86400, &flags->timeout) ||
      !ParseNumber<uint32_t>(args, "--threads", flags->threads_text, 1, 256, &flags->threads)) {
    return std::nullopt;
  }
  if (!flags->index_max_age_text.empty() &&
      (!absl::ParseDuration(flags->index_max_age_text, &flags->index_max_age) ||
       flags->index_max_age < absl::ZeroDuration())) {
    args.Usage(absl::StrCat("--index-max-age takes a duration such as 30m or 0s, not \"",
                            flags->index_max_age_text, "\""));
    return std::nullopt;
  }
  if (max_depth) request.set_max_depth(*max_depth);
  if (min_size) request.set_min_size(*min_size);
  if (max_size) request.set_max_size(*max_size);
  if (flags->max_results) request.set_max_results(*flags->max_results);
  return request;
}

// Prints what a streamed search collected for --sort or --json, then the
// summary.
// `streamed` matches were printed as they came; with `collect` they are in
// `collected`, to print sorted now.
int PrintCollected(std::vector<v1::FileEntry> collected, v1::SearchResponse summary, bool collect,
                   uint64_t streamed, const FindFlags& flags, bool asked_one_file_system,
                   std::FILE* out, std::FILE* err) {
  uint64_t shown = streamed;
  if (collect) {
    std::sort(
        collected.begin(), collected.end(),
        [](const v1::FileEntry& a, const v1::FileEntry& b) { return ExactPath(a) < ExactPath(b); });
    shown = collected.size();
    if (flags.json) {
      summary.mutable_matches()->Reserve(static_cast<int>(collected.size()));
      for (v1::FileEntry& e : collected) summary.add_matches()->Swap(&e);
      if (const int code = PrintJson(summary, out, err); code != kExitOk) return code;
    } else {
      const bool terminal = IsTerminal(out);
      for (const v1::FileEntry& e : collected) PrintPath(e, flags.print0, terminal, out);
    }
  }
  ReportSummary(summary, shown, asked_one_file_system, err);
  return kExitOk;
}

// `find` on this machine: each batch printed as it comes (or kept, for
// --sort and --json), until the walk ends, the reader goes away or Ctrl-C.
int FindLocal(const FindFlags& flags, const v1::SearchRequest& request, const RunOptions& run,
              std::FILE* out, std::FILE* err) {
  const std::atomic<bool>* const interrupted = run.interrupted;
  FileSearcherOptions options;
  options.threads = static_cast<int>(flags.threads.value_or(0));
  options.stream_paths_only = !flags.json;  // only --json shows more than the path
  FileSearcher searcher(flags.root.empty() ? "." : flags.root, options);
  const absl::Time deadline =
      flags.timeout ? absl::Now() + absl::Seconds(*flags.timeout) : absl::InfiniteFuture();
  const bool collect = flags.sort || flags.json;
  std::vector<v1::FileEntry> collected;
  uint64_t streamed = 0;
  std::string text;  // a batch's paths, reused
  const bool terminal = IsTerminal(out);
  ProgressLine progress(err, terminal && IsTerminal(err), run.progress_after);
  int write_error = 0;
  absl::StatusOr<v1::SearchResponse> summary = searcher.SearchStream(
      request,
      [&](SearchBatch& batch) {
        if (interrupted != nullptr && interrupted->load()) return false;
        if (collect) {
          for (v1::FileEntry& e : batch.matches) collected.push_back(std::move(e));
        } else if (!batch.matches.empty()) {
          progress.Clear();
          PrintPaths(batch.matches, flags.print0, terminal, &text, out);
          streamed += batch.matches.size();
          if (std::fflush(out) != 0) {
            write_error = errno;
            return false;
          }
        }
        progress.Update(batch.scanned_entries, batch.matches_so_far);
        return true;
      },
      deadline);
  progress.Clear();
  // Ctrl-C first: a write it interrupted fails with EINTR.
  if (interrupted != nullptr && interrupted->load()) return kExitInterrupted;
  if (write_error == EPIPE) return kExitOk;  // the reader has all it wanted
  if (write_error != 0) {
    return Fail(err, absl::UnavailableError(
                         absl::StrCat("writing the results: ", std::strerror(write_error))));
  }
  if (!summary.ok()) return Fail(err, summary.status());
  return PrintCollected(std::move(collected), *std::move(summary), collect, streamed, flags,
                        request.has_one_file_system(), out, err);
}

// `find --index-dir`: one sorted answer (100,000 matches at most) from a
// FileIndex whose snapshot lives in the directory: the snapshot when it is
// younger than --index-max-age, else an index built now (and saved there for
// the next time). Nothing is followed: the answer is as of the snapshot or
// the build, which stderr says.
int FindIndexed(const FindFlags& flags, v1::SearchRequest request, std::FILE* out, std::FILE* err) {
  FileIndexOptions options;
  options.search.threads = static_cast<int>(flags.threads.value_or(0));
  options.snapshot_dir = flags.index_dir;
  options.max_snapshot_age = flags.index_max_age;
  options.follow = false;
  FileIndex index(flags.root.empty() ? "." : flags.root, options);
  if (absl::Status started = index.Start(); !started.ok()) return Fail(err, started);
  if (!index.WaitUntilReady(absl::InfiniteFuture())) return Fail(err, index.status());
  if (request.max_results() == 0) request.set_max_results(FileSearcher::kMaxResults);
  const absl::Time deadline =
      flags.timeout ? absl::Now() + absl::Seconds(*flags.timeout) : absl::InfiniteFuture();
  absl::StatusOr<v1::SearchResponse> answer = index.Search(request, deadline);
  if (!answer.ok()) return Fail(err, answer.status());
  const FileIndexStats stats = index.stats();
  if (!stats.snapshot_error.empty()) {
    absl::FPrintF(err, "filemesh: the index could not be saved: %s\n", stats.snapshot_error);
  }
  if (answer->has_index_as_of()) {
    const absl::Time as_of = absl::FromUnixSeconds(answer->index_as_of().seconds()) +
                             absl::Nanoseconds(answer->index_as_of().nanos());
    absl::FPrintF(err, "filemesh: from the index %s as of %s (%d s ago)\n",
                  stats.from_snapshot ? "snapshot" : "built now",
                  absl::FormatTime("%Y-%m-%d %H:%M:%S", as_of, absl::LocalTimeZone()),
                  absl::ToInt64Seconds(absl::Now() - as_of));
  }
  std::vector<v1::FileEntry> matches(answer->matches().begin(), answer->matches().end());
  answer->clear_matches();
  return PrintCollected(std::move(matches), *std::move(answer), /*collect=*/true, 0, flags,
                        request.has_one_file_system(), out, err);
}

int RunFind(const std::vector<std::string>& argv, std::FILE* out, std::FILE* err,
            const RunOptions& run) {
  Args args("find", err);
  FindFlags flags;
  DeclareFindFlags(args, &flags);
  if (!args.Parse(argv, &flags.positionals)) return kExitUsage;
  if (flags.help) {
    std::fputs(kFindHelp, out);
    return kExitOk;
  }
  std::optional<v1::SearchRequest> request = FindRequest(args, &flags);
  if (!request.has_value()) return kExitUsage;
  const std::string url = FlagOrEnv(flags.gateway_flag, "FILEMESH_GATEWAY");
  if (absl::Status relative =
          CheckRelative(request->path(), !url.empty(), "filemesh find --root DIR PATTERN");
      !relative.ok()) {
    return Fail(err, relative);
  }
  if (url.empty() && !flags.index_dir.empty()) {
    if (flags.max_results.value_or(0) > FileSearcher::kMaxResults) {
      return args.Usage(absl::StrCat("with --index-dir, --max-results takes at most ",
                                     FileSearcher::kMaxResults)),
             kExitUsage;
    }
    return FindIndexed(flags, *std::move(request), out, err);
  }
  if (url.empty()) return FindLocal(flags, *request, run, out, err);
  if (!flags.index_dir.empty() || !flags.index_max_age_text.empty()) {
    return args.Usage(
               "--index-dir and --index-max-age apply to local searches, not with --gateway"),
           kExitUsage;
  }
  if (!flags.root.empty() || flags.threads) {
    return args.Usage("--root and --threads apply to local searches, not with --gateway"),
           kExitUsage;
  }
  if (flags.max_results.value_or(0) > FileSearcher::kMaxResults) {
    return args.Usage(absl::StrCat("with --gateway, --max-results takes at most ",
                                   FileSearcher::kMaxResults)),
           kExitUsage;
  }
  return FindRemote(args, url, flags.api_key, flags.ca, flags.timeout, *std::move(request),
                    flags.json, flags.print0, run, out, err);
}

}  // namespace

int Run(const std::vector<std::string>& args, std::FILE* out, std::FILE* err,
        const RunOptions& options) {
  if (args.empty()) {
    std::fputs(kMainHelp, err);
    return kExitUsage;
  }
  const std::string& command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "ls") return RunLs(rest, out, err, options);
  if (command == "find") return RunFind(rest, out, err, options);
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kMainHelp, out);
    return kExitOk;
  }
  if (command == "--version") {
    absl::FPrintF(out, "filemesh %s\n", FILEMESH_VERSION_STRING);
    return kExitOk;
  }
  absl::FPrintF(err, "filemesh: unknown command \"%s\" (see filemesh --help)\n", command);
  return kExitUsage;
}

}  // namespace filemesh::cli
