// Runs a program to completion and captures its standard output, for tests
// that check interoperability with a real peer (Debian's python3-tornado).
// Blocking: for plain (non-loop) tests only; coroutine tests use
// Subprocess instead.
#pragma once

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace squall::testing {

struct ProgramResult {
  int status{-1};     // the exit code, or -1 if it did not exit normally
  std::string out{};  // everything it wrote to stdout
};

/// Runs `argv` (argv[0] a path) with stdin from /dev/null and stderr
/// inherited; nullopt if it could not be started.
inline std::optional<ProgramResult> run_program(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", 0, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return std::nullopt;
  }
  ProgramResult result;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      result.out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

/// Debian's python3 (not one first in PATH, which may lack tornado).
inline constexpr const char* kSystemPython = "/usr/bin/python3";

/// True when kSystemPython can import tornado.
inline bool tornado_available() {
  if (::access(kSystemPython, X_OK) != 0) return false;
  auto r = run_program({kSystemPython, "-c", "import tornado.web"});
  return r && r->status == 0;
}

/// Runs `script` with kSystemPython and `args` (sys.argv[1:]).
inline std::optional<ProgramResult> run_python(const std::string& script, const std::vector<std::string>& args = {}) {
  std::vector<std::string> argv = {kSystemPython, "-c", script};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

}  // namespace squall::testing
