// Test hooks of FileIndex. Not for production use.

#ifndef FILEMESH_SRC_FS_INDEX_TESTING_H_
#define FILEMESH_SRC_FS_INDEX_TESTING_H_

namespace filemesh::internal {

// While paused, every FileIndex of the process leaves the kernel's change
// reports queued (so a test can make the queue overflow); searches still
// answer from what is indexed.
void PauseIndexFollowingForTesting(bool paused);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_INDEX_TESTING_H_
