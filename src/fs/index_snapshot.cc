#include "fs/index_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "fs/errno_status.h"
#include "fs/unique_fd.h"

namespace filemesh::internal {
namespace {

constexpr char kMagic[8] = {'F', 'M', 'I', 'N', 'D', 'E', 'X', '\n'};
constexpr size_t kHeaderBytes = 64;

// The header's fields, at their offsets.
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t one_file_system;
  uint64_t root_device;
  uint64_t root_inode;
  int64_t as_of_nanos;
  uint64_t entries;
  uint64_t payload_bytes;
  uint32_t payload_crc;
  uint32_t header_crc;  // of the 60 bytes before it
};
static_assert(sizeof(Header) == kHeaderBytes, "the header is 64 bytes");

uint32_t Crc32(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes lengths as uInt: feed it in pieces.
  while (!bytes.empty()) {
    const size_t n = std::min<size_t>(bytes.size(), size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(n));
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
void Put(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

// Reads the payload from the front of `in`.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool Get(T* value) {
    if (in_.size() < sizeof(T)) return false;
    std::memcpy(value, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool empty() const { return in_.empty(); }
  size_t left() const { return in_.size(); }

 private:
  std::string_view in_;
};

absl::Status Corrupt(std::string_view why) {
  return absl::DataLossError(absl::StrCat("the index snapshot is not usable: ", std::string(why)));
}

}  // namespace

std::string EncodeSnapshot(const NameTree& tree, const SnapshotInfo& info) {
  std::string payload;
  payload.reserve(tree.name_bytes() + tree.size() * 4 + tree.directories() * 28);
  uint64_t entries = 0;
  // Preorder on an explicit stack: an entry, then (a directory) its children.
  const auto put_directory = [&](NameTree::Id dir) {
    const auto [device, inode] = tree.identity(dir);
    Put<uint64_t>(&payload, device);
    Put<uint64_t>(&payload, inode);
    Put<uint64_t>(&payload, tree.entry_inode(dir));
    Put<uint32_t>(&payload, static_cast<uint32_t>(tree.children(dir).size()));
  };
  put_directory(NameTree::kRoot);
  std::vector<NameTree::Id> stack(tree.children(NameTree::kRoot).rbegin(),
                                  tree.children(NameTree::kRoot).rend());
  while (!stack.empty()) {
    const NameTree::Id id = stack.back();
    stack.pop_back();
    const std::string_view name = tree.name(id);
    Put<uint8_t>(&payload, tree.type(id));
    Put<uint8_t>(&payload, tree.is_directory(id) ? tree.flags(id) : 0);
    Put<uint8_t>(&payload, static_cast<uint8_t>(name.size()));
    payload.append(name);
    ++entries;
    if (tree.is_directory(id)) {
      put_directory(id);
      const std::vector<NameTree::Id>& children = tree.children(id);
      stack.insert(stack.end(), children.rbegin(), children.rend());
    }
  }

  return SealSnapshot(payload, info, entries);
}

std::string SealSnapshot(std::string_view payload, const SnapshotInfo& info, uint64_t entries) {
  Header header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kSnapshotVersion;
  header.one_file_system = info.one_file_system ? 1 : 0;
  header.root_device = info.root_device;
  header.root_inode = info.root_inode;
  header.as_of_nanos = absl::ToUnixNanos(info.as_of);
  header.entries = entries;
  header.payload_bytes = payload.size();
  header.payload_crc = Crc32(payload);
  header.header_crc =
      Crc32(std::string_view(reinterpret_cast<const char*>(&header), offsetof(Header, header_crc)));
  std::string out(reinterpret_cast<const char*>(&header), sizeof(header));
  out += payload;
  return out;
}

absl::StatusOr<SnapshotInfo> DecodeSnapshot(std::string_view bytes, NameTree* tree) {
  if (bytes.size() < kHeaderBytes) return Corrupt("shorter than its header");
  Header header;
  std::memcpy(&header, bytes.data(), sizeof(header));
  if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0) return Corrupt("not a snapshot");
  if (header.header_crc != Crc32(std::string_view(bytes.data(), offsetof(Header, header_crc)))) {
    return Corrupt("its header's checksum does not match");
  }
  if (header.version != kSnapshotVersion) {
    return Corrupt(
        absl::StrCat("format version ", header.version, ", this build reads ", kSnapshotVersion));
  }
  const std::string_view payload = bytes.substr(kHeaderBytes);
  if (payload.size() != header.payload_bytes) return Corrupt("cut short or too long");
  if (header.payload_crc != Crc32(payload)) return Corrupt("its checksum does not match");

  Reader in(payload);
  // Directories still to be filled: the node and how many children remain.
  std::vector<std::pair<NameTree::Id, uint32_t>> open;
  uint64_t promised = 0;  // children the directories read so far announced
  const auto read_directory = [&](NameTree::Id dir) {
    uint64_t device, inode, entry_inode;
    uint32_t children;
    if (!in.Get(&device) || !in.Get(&inode) || !in.Get(&entry_inode) || !in.Get(&children)) {
      return false;
    }
    // More children than the header's entries, or than the bytes left can
    // hold (4 at least each), is a lie: refused before anything is reserved.
    promised += children;
    if (promised > header.entries || children > in.left() / 4) return false;
    if (inode != 0) tree->SetIdentity(dir, device, inode);
    if (dir != NameTree::kRoot) tree->set_entry_inode(dir, entry_inode);
    if (children != 0) {
      tree->ReserveChildren(dir, children);
      open.emplace_back(dir, children);
    }
    return true;
  };
  if (!read_directory(NameTree::kRoot)) return Corrupt("the root's record is cut short");
  uint64_t entries = 0;
  while (!open.empty()) {
    const NameTree::Id parent = open.back().first;
    if (--open.back().second == 0) open.pop_back();
    uint8_t type, flags, size;
    std::string_view name;
    if (!in.Get(&type) || !in.Get(&flags) || !in.Get(&size) || !in.Bytes(size, &name)) {
      return Corrupt("an entry is cut short");
    }
    if (name.empty() || name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos ||
        name == "." || name == "..") {
      return Corrupt("an entry's name is not a name");
    }
    if (++entries > header.entries) return Corrupt("more entries than its header says");
    const NameTree::Id id = tree->Add(parent, name, type);
    if (type == DT_DIR) {
      tree->set_flags(id, flags & (NameTree::kUnreadable | NameTree::kNotWalked));
      if (!read_directory(id)) return Corrupt("a directory's record is cut short");
    }
  }
  if (!in.empty() || entries != header.entries) return Corrupt("its entries do not add up");

  SnapshotInfo info;
  info.root_device = header.root_device;
  info.root_inode = header.root_inode;
  info.one_file_system = header.one_file_system != 0;
  info.as_of = absl::FromUnixNanos(header.as_of_nanos);
  info.entries = entries;
  return info;
}

absl::Status WriteFileAtomically(const std::string& dir, const std::string& name,
                                 std::string_view bytes) {
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return ErrnoToStatus(errno, "open", dir);
  // A name of this process's own: writers in two processes never share one.
  const std::string temporary = absl::StrCat(".", name, ".", ::getpid(), ".tmp");
  UniqueFd fd(::openat(dir_fd.get(), temporary.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return ErrnoToStatus(errno, "create", absl::StrCat(dir, "/", temporary));
  const auto fail = [&](const char* what) {
    const int error = errno;
    ::unlinkat(dir_fd.get(), temporary.c_str(), 0);
    return ErrnoToStatus(error, what, absl::StrCat(dir, "/", temporary));
  };
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  fd.Reset();
  if (::renameat(dir_fd.get(), temporary.c_str(), dir_fd.get(), name.c_str()) != 0) {
    return fail("rename");
  }
  if (::fsync(dir_fd.get()) != 0) return ErrnoToStatus(errno, "fsync", dir);
  return absl::OkStatus();
}

void RemoveLeftovers(const std::string& dir, const std::string& name) {
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return;
  DIR* listing = ::fdopendir(::fcntl(dir_fd.get(), F_DUPFD_CLOEXEC, 0));
  if (listing == nullptr) return;
  const std::string prefix = absl::StrCat(".", name, ".");
  constexpr std::string_view kSuffix = ".tmp";
  std::vector<std::string> leftovers;
  while (dirent* e = ::readdir(listing)) {
    const std::string_view entry = e->d_name;
    if (entry.size() <= prefix.size() + kSuffix.size() ||
        entry.substr(0, prefix.size()) != prefix ||
        entry.substr(entry.size() - kSuffix.size()) != kSuffix) {
      continue;
    }
    // The writer's pid is in the name: a live writer (another process sharing
    // the directory, e.g. two `filemesh find --index-dir` at once) keeps its
    // file; only a dead one's is removed.
    int pid = 0;
    const std::string_view digits =
        entry.substr(prefix.size(), entry.size() - prefix.size() - kSuffix.size());
    if (!absl::SimpleAtoi(AbslView(digits), &pid) || pid <= 0) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) leftovers.emplace_back(entry);
  }
  ::closedir(listing);
  for (const std::string& leftover : leftovers) ::unlinkat(dir_fd.get(), leftover.c_str(), 0);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoToStatus(errno, "open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "stat", path);
  if (!S_ISREG(st.st_mode))
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a file"));
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is ", st.st_size, " bytes, more than ", max_bytes));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "read", path);
    }
    if (n == 0) {
      bytes.resize(done);  // shrank meanwhile: the checks will say
      break;
    }
    done += static_cast<size_t>(n);
  }
  return bytes;
}

}  // namespace filemesh::internal
