// A process that cleans up after a test binary that dies without doing so
// itself (crash, abort, ctest's timeout kill): for servers a test starts
// (a RabbitMQ node, a PostgreSQL server) that must not outlive it.

#ifndef FILEMESH_TESTS_CLEANUP_WATCHDOG_H_
#define FILEMESH_TESTS_CLEANUP_WATCHDOG_H_

#include <string>
#include <vector>

namespace filemesh::testing {

// Starts a watchdog that runs `/bin/sh -c command` with `args` as $0, $1, ...
// once this process is gone, unless DismissCleanupWatchdog was called.
// It is forked twice, so it is no descendant of this process (ctest kills a
// timed-out test's whole process tree, and the watchdog must survive that).
// Returns the descriptor that keeps it waiting; -1 if it could not start.
int StartCleanupWatchdog(const std::string& command, const std::vector<std::string>& args);

// All is cleaned up: the watchdog exits without running its command.
void DismissCleanupWatchdog(int fd);

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_CLEANUP_WATCHDOG_H_
