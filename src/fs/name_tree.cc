#include "fs/name_tree.h"

#include <dirent.h>
#include <sys/mman.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <limits>
#include <new>

namespace filemesh::internal {
namespace {

// Compaction of the name arena waits until removed names are at least this
// many bytes and half of it: amortised, each byte is copied O(1) times.
constexpr size_t kMinDeadNameBytes = size_t{1} << 20;

const std::vector<NameTree::Id>& NoChildren() {
  static const std::vector<NameTree::Id>* const none = new std::vector<NameTree::Id>();
  return *none;
}

}  // namespace

Blocks::~Blocks() {
  for (char* block : blocks_) std::free(block);
}

Blocks& Blocks::operator=(Blocks&& other) noexcept {
  if (this != &other) {
    for (char* block : blocks_) std::free(block);
    blocks_ = std::move(other.blocks_);
    other.blocks_.clear();
  }
  return *this;
}

void Blocks::Add() {
  void* block = std::aligned_alloc(kBlockBytes, kBlockBytes);
  if (block == nullptr) throw std::bad_alloc();
  // Advice only: where huge pages are off it changes nothing.
  ::madvise(block, kBlockBytes, MADV_HUGEPAGE);
  blocks_.push_back(static_cast<char*>(block));
}

uint32_t NameArena::Append(std::string_view name) {
  if (end_ % Blocks::kBlockBytes + name.size() > Blocks::kBlockBytes) {
    end_ += Blocks::kBlockBytes - end_ % Blocks::kBlockBytes;  // the rest stays unused
  }
  if (end_ / Blocks::kBlockBytes >= blocks_.count()) blocks_.Add();
  const size_t offset = end_;
  std::copy(name.begin(), name.end(),
            blocks_.block(offset / Blocks::kBlockBytes) + offset % Blocks::kBlockBytes);
  end_ += name.size();
  used_ += name.size();
  return static_cast<uint32_t>(offset);
}

NameTree::NameTree() {
  Node root{};
  root.parent = kNone;
  root.slot_or_dir = 0;  // dirs_[0], whose slot is kNone
  root.type = DT_DIR;
  nodes_.push_back(root);
  dirs_.emplace_back();
}

const NameTree::Attributes NameTree::kUnknown{};

NameTree::Attributes NameTree::Attributes::Of(const struct stat& st) {
  constexpr int64_t kBillion = 1'000'000'000;
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / kBillion - 1;
  Attributes a;
  if (st.st_mtim.tv_sec > kMaxSeconds || st.st_mtim.tv_sec < -kMaxSeconds) return a;  // unknown
  a.size = static_cast<uint64_t>(st.st_size);
  a.mtime_ns = int64_t{st.st_mtim.tv_sec} * kBillion + st.st_mtim.tv_nsec;
  a.mode = st.st_mode;
  a.inode_hash = HashInode(st.st_ino);
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) a.mode |= kShared;
  return a;
}

struct stat NameTree::Attributes::ToStat() const {
  constexpr int64_t kBillion = 1'000'000'000;
  int64_t seconds = mtime_ns / kBillion;
  int64_t nanos = mtime_ns % kBillion;
  if (nanos < 0) {  // before the epoch: the seconds round down, as in a timespec
    nanos += kBillion;
    --seconds;
  }
  struct stat st {};
  st.st_mode = st_mode();
  st.st_size = static_cast<off_t>(size);
  st.st_mtim.tv_sec = static_cast<time_t>(seconds);
  st.st_mtim.tv_nsec = static_cast<long>(nanos);  // NOLINT(runtime/int): timespec's type
  return st;
}

void NameTree::ForgetAttributes() {
  for (size_t i = 0; i < attrs_.size(); ++i) attrs_[i] = Attributes{};
}

void NameTree::MarkShared(const std::vector<uint32_t>& inode_hashes) {
  if (inode_hashes.empty()) return;
  for (size_t i = 0; i < attrs_.size(); ++i) {
    Attributes& a = attrs_[i];
    if (a.known() && !a.shared() && !S_ISDIR(a.mode) &&
        std::binary_search(inode_hashes.begin(), inode_hashes.end(), a.inode_hash)) {
      a.mode |= Attributes::kShared;
    }
  }
}

size_t NameTree::MemoryBytes() const {
  size_t bytes = nodes_.bytes() + attrs_.bytes() + free_nodes_.capacity() * sizeof(Id) +
                 dirs_.capacity() * sizeof(Directory) + free_dirs_.capacity() * sizeof(Id) +
                 names_.bytes() + scratch_.capacity() * sizeof(Id);
  for (const Directory& d : dirs_) bytes += d.children.capacity() * sizeof(Id);
  // A flat_hash_map slot per bucket, plus a control byte each.
  bytes += by_identity_.bucket_count() * (sizeof(std::pair<std::pair<uint64_t, uint64_t>, Id>) + 1);
  return bytes;
}

const std::vector<NameTree::Id>& NameTree::children(Id id) const {
  const Id d = DirOf(id);
  return d == kNone ? NoChildren() : dirs_[d].children;
}

NameTree::Id NameTree::Child(Id dir, std::string_view wanted) const {
  for (Id child : children(dir)) {
    if (name(child) == wanted) return child;
  }
  return kNone;
}

std::pair<uint64_t, uint64_t> NameTree::identity(Id dir) const {
  const Directory& d = dirs_[DirOf(dir)];
  return {d.device, d.inode};
}

NameTree::Id NameTree::FindDirectory(uint64_t device, uint64_t inode) const {
  auto it = by_identity_.find(std::make_pair(device, inode));
  return it == by_identity_.end() ? kNone : it->second;
}

void NameTree::SetIdentity(Id dir, uint64_t device, uint64_t inode) {
  Directory& d = dirs_[DirOf(dir)];
  if (d.has_identity) {
    auto it = by_identity_.find(std::make_pair(d.device, d.inode));
    if (it != by_identity_.end() && it->second == dir) by_identity_.erase(it);
  }
  d.device = device;
  d.inode = inode;
  d.has_identity = true;
  // An inode reused by a directory made after another was removed, whose
  // node is still here (its removal not yet seen): the newest wins.
  by_identity_[std::make_pair(device, inode)] = dir;
}

NameTree::Id NameTree::NewNode() {
  if (!free_nodes_.empty()) {
    const Id id = free_nodes_.back();
    free_nodes_.pop_back();
    return id;
  }
  nodes_.push_back(Node{});
  return static_cast<Id>(nodes_.size() - 1);
}

NameTree::Id NameTree::Add(Id parent, std::string_view entry_name, uint8_t entry_type) {
  assert(!entry_name.empty() && entry_name.size() <= 255);
  const Id id = NewNode();
  Node& node = nodes_[id];
  node.parent = parent;
  node.name_offset = names_.Append(entry_name);
  node.name_size = static_cast<uint8_t>(entry_name.size());
  node.type = entry_type;
  node.flags = 0;
  node.slot_or_dir = kNone;
  if (id < attrs_.size()) attrs_[id] = Attributes{};
  if (entry_type == DT_DIR) {
    Id d;
    if (!free_dirs_.empty()) {
      d = free_dirs_.back();
      free_dirs_.pop_back();
    } else {
      dirs_.emplace_back();
      d = static_cast<Id>(dirs_.size() - 1);
    }
    dirs_[d] = Directory{};
    nodes_[id].slot_or_dir = d;
  }
  std::vector<Id>& siblings = dirs_[DirOf(parent)].children;
  SetSlot(id, static_cast<Id>(siblings.size()));
  siblings.push_back(id);
  return id;
}

void NameTree::Detach(Id id) {
  const Id parent = nodes_[id].parent;
  if (parent == kNone) return;
  std::vector<Id>& siblings = dirs_[DirOf(parent)].children;
  const Id slot = SlotOf(id);
  const Id last = siblings.back();
  siblings[slot] = last;
  SetSlot(last, slot);
  siblings.pop_back();
}

void NameTree::Free(Id id) {
  Node& node = nodes_[id];
  dead_name_bytes_ += node.name_size;
  if (node.type == DT_DIR) {
    Directory& d = dirs_[node.slot_or_dir];
    if (d.has_identity) {
      auto it = by_identity_.find(std::make_pair(d.device, d.inode));
      if (it != by_identity_.end() && it->second == id) by_identity_.erase(it);
    }
    d = Directory{};
    free_dirs_.push_back(node.slot_or_dir);
  }
  node.parent = kFree;
  node.slot_or_dir = kNone;
  node.type = DT_UNKNOWN;
  node.name_size = 0;
  free_nodes_.push_back(id);
}

void NameTree::MaybeCompactNames() {
  if (dead_name_bytes_ < kMinDeadNameBytes || dead_name_bytes_ * 2 < names_.used()) return;
  NameArena compact;
  for (size_t id = 0; id < nodes_.size(); ++id) {
    Node& node = nodes_[id];
    if (node.parent == kFree) continue;
    node.name_offset = compact.Append(names_.Get(node.name_offset, node.name_size));
  }
  names_ = std::move(compact);
  dead_name_bytes_ = 0;
}

bool NameTree::AppendPath(Id id, Id ancestor, std::string* out) const {
  // The total size first (and whether `ancestor` is above), then each name
  // at its place from the end.
  size_t total = 0;
  for (Id at = id; at != ancestor; at = nodes_[at].parent) {
    if (at == kNone) return false;
    total += nodes_[at].name_size + size_t{1};
  }
  if (total == 0) return true;
  const size_t start = out->size();
  out->resize(start + total - 1);
  size_t end = out->size();
  for (Id at = id; at != ancestor; at = nodes_[at].parent) {
    const std::string_view n = name(at);
    end -= n.size();
    std::copy(n.begin(), n.end(), out->begin() + static_cast<std::ptrdiff_t>(end));
    if (end > start) (*out)[--end] = '/';
  }
  return true;
}

void NameTree::Shrink() {
  for (Directory& d : dirs_) d.children.shrink_to_fit();
}

void NameTree::ReserveChildren(Id dir, size_t n) {
  std::vector<Id>& children = dirs_[DirOf(dir)].children;
  children.reserve(children.size() + n);
}

}  // namespace filemesh::internal
