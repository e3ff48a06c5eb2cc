#include "cleanup_watchdog.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace filemesh::testing {

int StartCleanupWatchdog(const std::string& command, const std::vector<std::string>& args) {
  // Everything the child needs, made before the fork: after it, only
  // async-signal-safe calls.
  std::vector<const char*> argv = {"sh", "-c", command.c_str()};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    if (fork() != 0) _exit(0);
    setsid();
    const int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    dup2(fds[0], 3);
    close_range(4, ~0U, 0);  // nobody else's pipes stay open through us
    char c = 0;
    ssize_t n;
    do {
      n = read(3, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && c == 'q') _exit(0);
    execv("/bin/sh", const_cast<char* const*>(argv.data()));
    _exit(1);
  }
  close(fds[0]);
  if (pid < 0) {
    close(fds[1]);
    return -1;
  }
  waitpid(pid, nullptr, 0);  // the intermediate child, gone at once
  return fds[1];
}

void DismissCleanupWatchdog(int fd) {
  if (fd < 0) return;
  (void)!write(fd, "q", 1);
  close(fd);
}

}  // namespace filemesh::testing
