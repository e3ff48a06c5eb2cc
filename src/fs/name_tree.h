// NameTree: FileIndex's picture of a directory tree, compact enough for
// millions of entries. Each entry is a node (its parent, its name as exact
// bytes in one shared arena, its DT_* type); each directory also has its
// children and its identity on disk (device and inode), by which the index
// finds it again (a search's start directory, a changed directory). Each
// entry's size, modification time and mode are kept too, once read: FileIndex
// reads them after the names (reading them in the build would cost ten times
// the walk of names; bench/README.md, "index_bench.sh").
//
// Not thread-safe: FileIndex guards it (many readers or one writer).

#ifndef FILEMESH_SRC_FS_NAME_TREE_H_
#define FILEMESH_SRC_FS_NAME_TREE_H_

#include <dirent.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace filemesh::internal {

// Memory in blocks of 2 MiB that never move once made: growing copies
// nothing, and each block asks for transparent huge pages (MADV_HUGEPAGE),
// so that a build of millions of entries takes few page faults. Measured on
// the 2-million-entry tree: with std::vector and std::string, their doublings
// and page faults were half of the build's time (bench/README.md, index_bench).
class Blocks {
 public:
  static constexpr size_t kBlockBytes = size_t{2} << 20;

  Blocks() = default;
  ~Blocks();
  Blocks(Blocks&& other) noexcept : blocks_(std::move(other.blocks_)) { other.blocks_.clear(); }
  Blocks& operator=(Blocks&& other) noexcept;
  Blocks(const Blocks&) = delete;
  Blocks& operator=(const Blocks&) = delete;

  char* block(size_t i) const { return blocks_[i]; }
  size_t count() const { return blocks_.size(); }
  // Adds a block (aborts, as operator new does, when memory runs out).
  void Add();
  size_t bytes() const { return blocks_.size() * kBlockBytes; }

 private:
  std::vector<char*> blocks_;
};

// A growable array of trivially copyable T in Blocks.
template <typename T>
class BlockArray {
 public:
  static constexpr size_t kPerBlock = Blocks::kBlockBytes / sizeof(T);

  T& operator[](size_t i) { return At(i); }
  const T& operator[](size_t i) const { return At(i); }
  size_t size() const { return size_; }
  size_t bytes() const { return blocks_.bytes(); }
  void push_back(const T& value) {
    if (size_ == blocks_.count() * kPerBlock) blocks_.Add();
    At(size_++) = value;
  }

 private:
  T& At(size_t i) const {
    return reinterpret_cast<T*>(blocks_.block(i / kPerBlock))[i % kPerBlock];
  }
  Blocks blocks_;
  size_t size_ = 0;
};

// Names back to back in Blocks; a name never spans two blocks.
class NameArena {
 public:
  // Where `name` (at most 255 bytes) was put.
  uint32_t Append(std::string_view name);
  std::string_view Get(uint32_t offset, uint8_t size) const {
    return std::string_view(
        blocks_.block(offset / Blocks::kBlockBytes) + offset % Blocks::kBlockBytes, size);
  }
  // Bytes used, and held.
  size_t used() const { return used_; }
  size_t bytes() const { return blocks_.bytes(); }

 private:
  Blocks blocks_;
  size_t end_ = 0;   // offset of the next name
  size_t used_ = 0;  // bytes of names appended
};

class NameTree {
 public:
  using Id = uint32_t;
  static constexpr Id kNone = 0xffffffffu;
  static constexpr Id kRoot = 0;

  // Directory flags.
  static constexpr uint8_t kUnreadable = 1;  // could not be opened or read: no children
  static constexpr uint8_t kNotWalked = 2;   // another filesystem, left out (one_file_system)

  // What lstat says of an entry, as kept: 24 bytes. Unknown (mode 0) until
  // read, and for a time past what 64 bits of nanoseconds hold (years before
  // 1678 or after 2262). `shared` marks a non-directory with other hard
  // links: a change made through another of its names is reported under
  // that name only, so what is kept of it may be old. `inode_hash` finds the
  // other names of an inode that gains a link (MarkShared).
  struct Attributes {
    uint64_t size = 0;
    int64_t mtime_ns = 0;  // since the epoch
    uint32_t mode = 0;     // st_mode, and kShared
    uint32_t inode_hash = 0;

    static constexpr uint32_t kShared = 1u << 31;  // above every st_mode bit
    static Attributes Of(const struct stat& st);
    static uint32_t HashInode(uint64_t inode) {
      return static_cast<uint32_t>(inode ^ (inode >> 32));
    }
    bool known() const { return mode != 0; }
    bool shared() const { return (mode & kShared) != 0; }
    uint32_t st_mode() const { return mode & ~kShared; }
    // A struct stat with st_mode, st_size and st_mtim set (the rest zero).
    struct stat ToStat() const;
    bool operator==(const Attributes& o) const {
      return size == o.size && mtime_ns == o.mtime_ns && mode == o.mode &&
             inode_hash == o.inode_hash;
    }
    bool operator!=(const Attributes& o) const { return !(*this == o); }
  };
  static_assert(sizeof(Attributes) == 24, "attributes are 24 bytes");
  static const Attributes kUnknown;

  NameTree();

  // Entries, the root included.
  size_t size() const { return nodes_.size() - free_nodes_.size(); }
  size_t directories() const { return dirs_.size() - free_dirs_.size(); }
  // One past the highest id in use (ids of removed entries are reused).
  size_t capacity() const { return nodes_.size(); }
  // Bytes of names in the arena, those of removed entries included until
  // the arena is rewritten without them.
  size_t name_bytes() const { return names_.used(); }
  // Bytes held: nodes, names, children, directories and the identity map
  // (capacities, not sizes, so that it is what the process pays).
  size_t MemoryBytes() const;

  bool valid(Id id) const { return id < nodes_.size() && nodes_[id].parent != kFree; }
  Id parent(Id id) const { return nodes_[id].parent; }
  std::string_view name(Id id) const {
    return names_.Get(nodes_[id].name_offset, nodes_[id].name_size);
  }
  uint8_t type(Id id) const { return nodes_[id].type; }
  bool is_directory(Id id) const { return nodes_[id].type == DT_DIR; }
  uint8_t flags(Id id) const { return nodes_[id].flags; }
  void set_flags(Id id, uint8_t flags) { nodes_[id].flags = flags; }
  // Unknown for an entry just added. Their memory is taken when the first
  // are set, not in the build: a build of names touches no more pages than
  // it must.
  const Attributes& attributes(Id id) const { return id < attrs_.size() ? attrs_[id] : kUnknown; }
  void set_attributes(Id id, const Attributes& attributes) {
    while (attrs_.size() <= id) attrs_.push_back(Attributes{});
    attrs_[id] = attributes;
  }
  // Makes every entry's attributes unknown (reports of changes were lost).
  void ForgetAttributes();
  // Marks shared every non-directory whose inode hashes to one of
  // `inode_hashes` (sorted): names that an inode gained a link beside. A
  // pass over every entry.
  void MarkShared(const std::vector<uint32_t>& inode_hashes);

  // A directory's children (empty for other entries), in no set order.
  const std::vector<Id>& children(Id id) const;
  // The child of `dir` named `name`, or kNone. Linear in the children.
  Id Child(Id dir, std::string_view name) const;

  // A directory's identity, and the directory with an identity (or kNone).
  std::pair<uint64_t, uint64_t> identity(Id dir) const;
  Id FindDirectory(uint64_t device, uint64_t inode) const;
  // Sets `dir`'s identity (a directory made by Add has none until then).
  void SetIdentity(Id dir, uint64_t device, uint64_t inode);
  // The inode its parent's entry names (d_ino; for a mount point, the inode
  // it covers, not the identity of the directory mounted there).
  uint64_t entry_inode(Id dir) const { return dirs_[DirOf(dir)].entry_inode; }
  void set_entry_inode(Id dir, uint64_t inode) { dirs_[DirOf(dir)].entry_inode = inode; }

  // Adds an entry under `parent` (a directory). A DT_DIR entry gets room
  // for children. `name` must not be empty, hold '/' or NUL, nor be longer
  // than 255 bytes (NAME_MAX); the caller checks it is not there already.
  Id Add(Id parent, std::string_view name, uint8_t type);
  // Removes `id` and everything below it (not the root), calling
  // `on_directory(dir)` for each directory removed before it goes.
  template <typename F>
  void Remove(Id id, F&& on_directory);
  void Remove(Id id) {
    Remove(id, [](Id) {});
  }
  // Removes everything below directory `dir`.
  template <typename F>
  void RemoveChildren(Id dir, F&& on_directory);

  // The path of `id` relative to `ancestor` ("" for the ancestor itself),
  // appended to `out`; false if `ancestor` is not above it.
  bool AppendPath(Id id, Id ancestor, std::string* out) const;

  // Gives back memory after a build: children vectors to their size.
  void Shrink();
  // Room for `n` more children of `dir`, before adding them.
  void ReserveChildren(Id dir, size_t n);

 private:
  static constexpr Id kFree = 0xfffffffeu;  // parent of a node on the free list

  // 16 bytes: a whole number of them fills a block, and a search reads
  // every node it passes (bench/README.md, index_bench.sh).
  struct Node {
    Id parent;
    uint32_t name_offset;
    // A directory's index in dirs_ (its slot is in its Directory); for
    // other entries, their index among their parent's children.
    Id slot_or_dir;
    uint8_t name_size;
    uint8_t type;  // DT_*: DT_DIR for a directory, and only then
    uint8_t flags;
  };
  static_assert(sizeof(Node) == 16, "a node is 16 bytes");
  struct Directory {
    Id slot = kNone;  // index in the parent's children
    std::vector<Id> children;
    uint64_t device = 0;
    uint64_t inode = 0;
    uint64_t entry_inode = 0;
    bool has_identity = false;
  };
  struct IdentityHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& key) const {
      return absl::HashOf(key.first, key.second);
    }
  };

  // The index in dirs_ of directory `id`, kNone for other entries.
  Id DirOf(Id id) const { return is_directory(id) ? nodes_[id].slot_or_dir : kNone; }
  Id SlotOf(Id id) const {
    return is_directory(id) ? dirs_[nodes_[id].slot_or_dir].slot : nodes_[id].slot_or_dir;
  }
  void SetSlot(Id id, Id slot) {
    (is_directory(id) ? dirs_[nodes_[id].slot_or_dir].slot : nodes_[id].slot_or_dir) = slot;
  }

  Id NewNode();
  void Detach(Id id);
  // Frees one node (its children must be gone already).
  void Free(Id id);
  // Rewrites the arena without the names of removed nodes once they are
  // most of it.
  void MaybeCompactNames();

  BlockArray<Node> nodes_;
  BlockArray<Attributes> attrs_;  // by Id, up to the highest set
  std::vector<Id> free_nodes_;
  std::vector<Directory> dirs_;
  std::vector<Id> free_dirs_;
  NameArena names_;             // every name
  size_t dead_name_bytes_ = 0;  // of removed nodes, still in names_
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, Id, IdentityHash> by_identity_;
  std::vector<Id> scratch_;  // Remove's stack
};

template <typename F>
void NameTree::RemoveChildren(Id dir, F&& on_directory) {
  const Id d = DirOf(dir);
  if (d == kNone) return;
  // Depth-first, children before their parent, on an explicit stack.
  std::vector<Id> stack;
  stack.swap(scratch_);
  stack.clear();
  for (Id child : dirs_[d].children) stack.push_back(child);
  dirs_[d].children.clear();
  std::vector<Id> order;
  while (!stack.empty()) {
    const Id id = stack.back();
    stack.pop_back();
    order.push_back(id);
    if (is_directory(id)) {
      for (Id child : dirs_[DirOf(id)].children) stack.push_back(child);
      dirs_[DirOf(id)].children.clear();
    }
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (is_directory(*it)) on_directory(*it);
    Free(*it);
  }
  stack.swap(scratch_);
  MaybeCompactNames();
}

template <typename F>
void NameTree::Remove(Id id, F&& on_directory) {
  RemoveChildren(id, on_directory);
  Detach(id);
  if (is_directory(id)) on_directory(id);
  Free(id);
  MaybeCompactNames();
}

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_NAME_TREE_H_
