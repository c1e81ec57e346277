// Subprocess (pipes, exit statuses through SIGCHLD, spawn errors, options)
// and fork_processes. fork_processes is exercised in a forked copy of the
// test process, so the test process itself never turns into a supervisor.
#include "squall/net/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::net {
namespace {

class SubprocessTest : public testing::AsyncTest {};

/// pidfd_open(2), through syscall(2): glibc 2.36's <sys/pidfd.h> lacks
/// extern "C", so its wrapper cannot be linked from C++.
UniqueFd open_pidfd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

int count_open_fds() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  while (::readdir(dir) != nullptr) ++n;
  ::closedir(dir);
  return n;
}

/// A directory under $TMPDIR (or /tmp), removed with everything in it
/// (one level deep) when the test ends.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/squall-process-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    char resolved[PATH_MAX];
    path_ = ::realpath(pattern.c_str(), resolved) ? std::string(resolved) : pattern;
  }
  ~TempDir() {
    if (DIR* dir = ::opendir(path_.c_str())) {
      while (dirent* e = ::readdir(dir)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") ::unlink((path_ + "/" + name).c_str());
      }
      ::closedir(dir);
    }
    ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- Subprocess: pipes -------------------------------------------------------------------

SQUALL_ASYNC_TEST(SubprocessTest, CatEchoesWhatIsWrittenToItsStdin) {
  Subprocess proc({"cat"}, {.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream});
  CO_ASSERT_TRUE(proc.stdin_stream() != nullptr);
  CO_ASSERT_TRUE(proc.stdout_stream() != nullptr);
  EXPECT_EQ(proc.stderr_stream(), nullptr);
  EXPECT_GT(proc.pid(), 0);
  co_await proc.stdin_stream()->write("hello, squall\n");
  proc.stdin_stream()->close();
  std::string out = co_await proc.stdout_stream()->read_until_close();
  EXPECT_EQ(out, "hello, squall\n");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
  EXPECT_EQ(proc.returncode(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, OneMebibyteThroughCatDoesNotDeadlockWhenWritingAndReadingConcurrently) {
  // Far more than a pipe holds (64 KiB): writing it all before reading
  // would block both processes.
  std::string input(1024 * 1024, '\0');
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>('a' + i % 23);
  Subprocess proc({"cat"}, {.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream});
  auto output = proc.stdout_stream()->read_until_close();
  co_await proc.stdin_stream()->write(input);
  proc.stdin_stream()->close();
  std::string out = co_await std::move(output);
  EXPECT_EQ(out.size(), input.size());
  EXPECT_TRUE(out == input);
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, StderrIsCapturedApartFromStdout) {
  Subprocess proc({"sh", "-c", "echo to-out; echo to-err >&2"},
                  {.stdout_mode = Stdio::Stream, .stderr_mode = Stdio::Stream});
  auto err = proc.stderr_stream()->read_until_close();
  std::string out = co_await proc.stdout_stream()->read_until_close();
  EXPECT_EQ(out, "to-out\n");
  EXPECT_EQ(co_await std::move(err), "to-err\n");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, DevNullStdinReadsAsImmediateEndOfFile) {
  Subprocess proc({"cat"}, {.stdin_mode = Stdio::DevNull, .stdout_mode = Stdio::Stream});
  EXPECT_EQ(proc.stdin_stream(), nullptr);
  EXPECT_EQ(co_await proc.stdout_stream()->read_until_close(), "");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, DevNullStdoutSwallowsOutput) {
  Subprocess proc({"sh", "-c", "echo lost; echo kept >&2"},
                  {.stdout_mode = Stdio::DevNull, .stderr_mode = Stdio::Stream});
  EXPECT_EQ(co_await proc.stderr_stream()->read_until_close(), "kept\n");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

// --- Subprocess: exit statuses --------------------------------------------------------------

SQUALL_ASYNC_TEST(SubprocessTest, WaitForExitWithoutRaisingReturnsTheExitCode) {
  Subprocess proc({"sh", "-c", "exit 3"});
  EXPECT_EQ(co_await proc.wait_for_exit(false), 3);
  EXPECT_EQ(proc.returncode(), 3);
}

SQUALL_ASYNC_TEST(SubprocessTest, WaitForExitRaisesCalledProcessErrorCarryingANonZeroCode) {
  Subprocess proc({"sh", "-c", "exit 3"});
  int code = 0;
  std::string what;
  try {
    co_await proc.wait_for_exit();
  } catch (const CalledProcessError& e) {
    code = e.returncode();
    what = e.what();
  }
  EXPECT_EQ(code, 3);
  EXPECT_NE(what.find("exit status 3"), std::string::npos) << what;
  // Once the exit is known, a new wait resolves at once, the same way.
  auto again = proc.wait_for_exit();
  CO_ASSERT_TRUE(again.done());
  EXPECT_THROW(again.result(), CalledProcessError);
  EXPECT_EQ(co_await proc.wait_for_exit(false), 3);
}

SQUALL_ASYNC_TEST(SubprocessTest, DeathBySignalIsReportedAsMinusTheSignalNumber) {
  Subprocess proc({"sh", "-c", "kill -9 $$"});
  int code = 0;
  try {
    co_await proc.wait_for_exit();
  } catch (const CalledProcessError& e) {
    code = e.returncode();
  }
  EXPECT_EQ(code, -SIGKILL);
  EXPECT_EQ(co_await proc.wait_for_exit(false), -SIGKILL);
}

SQUALL_ASYNC_TEST(SubprocessTest, SendSignalTerminatesARunningChildAndIsIgnoredOnceItIsReaped) {
  Subprocess proc({"sleep", "30"});
  proc.send_signal(SIGTERM);
  EXPECT_EQ(co_await proc.wait_for_exit(false), -SIGTERM);
  proc.send_signal(SIGTERM);  // reaped: its pid may belong to someone else now
}

SQUALL_ASYNC_TEST(SubprocessTest, TheExitCallbackRunsOnceWithTheReturnCode) {
  Subprocess proc({"sh", "-c", "exit 5"});
  std::vector<int> calls;
  Future<void> called;
  proc.set_exit_callback([&](int code) {
    calls.push_back(code);
    called.set_result();
  });
  co_await called;
  EXPECT_EQ(calls, std::vector<int>{5});
  // Set after the exit: runs at once.
  int late = 0;
  proc.set_exit_callback([&](int code) { late = code; });
  EXPECT_EQ(late, 5);
  EXPECT_EQ(calls, std::vector<int>{5});
}

SQUALL_ASYNC_TEST(SubprocessTest, CancellingOneWaitStopsOnlyThatWait) {
  Subprocess proc({"cat"}, {.stdin_mode = Stdio::Stream});
  auto first = proc.wait_for_exit();
  auto second = proc.wait_for_exit();
  EXPECT_TRUE(first.cancel());
  EXPECT_TRUE(first.cancelled());
  EXPECT_FALSE(second.done());
  proc.stdin_stream()->close();  // cat sees EOF and exits
  EXPECT_EQ(co_await second, 0);
  EXPECT_TRUE(first.cancelled());
}

SQUALL_ASYNC_TEST(SubprocessTest, DestroyingTheSubprocessCancelsPendingWaitsButNotTheChild) {
  auto proc = std::make_unique<Subprocess>(std::vector<std::string>{"cat"},
                                           SubprocessOptions{.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream});
  // Keep a second way to the child's stdout: a pipe it inherits would be
  // closed on destruction, so watch its exit through a foreign pidfd.
  UniqueFd pidfd = open_pidfd(proc->pid());
  CO_ASSERT_TRUE(static_cast<bool>(pidfd));
  auto wait = proc->wait_for_exit();
  proc.reset();
  EXPECT_TRUE(wait.cancelled());
  // The child outlived the object; closing our end of its stdin (done by
  // the destructor) lets cat finish on its own.
  pollfd p{pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
}

// --- Subprocess: spawning -------------------------------------------------------------------

SQUALL_ASYNC_TEST(SubprocessTest, AProgramThatDoesNotExistThrowsSpawnErrorNamingIt) {
  int before = count_open_fds();
  std::string what;
  std::error_code code;
  try {
    Subprocess proc({"squall-no-such-program", "x"}, {.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream});
  } catch (const SpawnError& e) {
    what = e.what();
    code = e.code();
  }
  EXPECT_NE(what.find("squall-no-such-program"), std::string::npos) << what;
  EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
  EXPECT_EQ(code.value(), ENOENT);
  EXPECT_EQ(count_open_fds(), before);  // the pipes did not leak
  co_return;
}

SQUALL_ASYNC_TEST(SubprocessTest, AFileThatIsNotExecutableThrowsSpawnErrorWithEacces) {
  TempDir dir;
  std::string path = dir.path() + "/plain.txt";
  UniqueFd file(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  CO_ASSERT_TRUE(static_cast<bool>(file));
  int err = 0;
  try {
    Subprocess proc({path});
  } catch (const SpawnError& e) {
    err = e.code().value();
  }
  EXPECT_EQ(err, EACCES);
}

SQUALL_ASYNC_TEST(SubprocessTest, AWorkingDirectoryThatDoesNotExistThrowsSpawnErrorNamingIt) {
  std::string what;
  try {
    Subprocess proc({"true"}, {.cwd = "/squall/no/such/dir"});
  } catch (const SpawnError& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("/squall/no/such/dir"), std::string::npos) << what;
  co_return;
}

SQUALL_ASYNC_TEST(SubprocessTest, TheCwdOptionSetsTheChildsWorkingDirectory) {
  TempDir dir;
  Subprocess proc({"pwd", "-P"}, {.stdout_mode = Stdio::Stream, .cwd = dir.path()});
  EXPECT_EQ(co_await proc.stdout_stream()->read_until_close(), dir.path() + "\n");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, TheEnvOptionReplacesTheWholeEnvironment) {
  ::setenv("SQUALL_PROCESS_TEST_PARENT_ONLY", "parent", 1);
  const char* path = std::getenv("PATH");
  Subprocess proc({"sh", "-c", "echo \"$SQUALL_GREETING:${SQUALL_PROCESS_TEST_PARENT_ONLY-unset}\""},
                  {.stdout_mode = Stdio::Stream,
                   .env = Environment{{"SQUALL_GREETING", "hello"}, {"PATH", path ? path : "/bin:/usr/bin"}}});
  EXPECT_EQ(co_await proc.stdout_stream()->read_until_close(), "hello:unset\n");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
  ::unsetenv("SQUALL_PROCESS_TEST_PARENT_ONLY");
}

SQUALL_ASYNC_TEST(SubprocessTest, CurrentEnvironmentExtendedIsPassedOn) {
  Environment env = current_environment();
  EXPECT_TRUE(env.contains("PATH"));
  env["SQUALL_EXTRA"] = "x=y";
  Subprocess proc({"sh", "-c", "echo \"$SQUALL_EXTRA\""}, {.stdout_mode = Stdio::Stream, .env = env});
  EXPECT_EQ(co_await proc.stdout_stream()->read_until_close(), "x=y\n");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, FdsOtherThanStdioAreNotInherited) {
  int fds[2];
  CO_ASSERT_EQ(::pipe(fds), 0);  // deliberately without O_CLOEXEC
  UniqueFd a(fds[0]), b(fds[1]);
  UniqueFd high(::dup2(a.get(), 57));
  CO_ASSERT_EQ(high.get(), 57);
  Subprocess proc({"sh", "-c", "if [ -e /proc/self/fd/57 ]; then echo open; else echo closed; fi"},
                  {.stdout_mode = Stdio::Stream});
  EXPECT_EQ(co_await proc.stdout_stream()->read_until_close(), "closed\n");
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, TheChildStartsWithNoBlockedSignalsAndDefaultSigpipe) {
  // The loop blocks SIGCHLD (its signalfd), and we ignore SIGPIPE here: a
  // program must inherit neither.
  Subprocess::initialize();
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  Subprocess proc({"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}, {.stdout_mode = Stdio::Stream});
  ::sigaction(SIGPIPE, &old, nullptr);
  std::string out = co_await proc.stdout_stream()->read_until_close();
  EXPECT_NE(out.find("SigBlk:\t0000000000000000"), std::string::npos) << out;
  auto ign = out.find("SigIgn:\t");
  CO_ASSERT_NE(ign, std::string::npos);
  unsigned long long ignored = std::strtoull(out.c_str() + ign + 8, nullptr, 16);
  EXPECT_EQ(ignored & (1ULL << (SIGPIPE - 1)), 0ULL) << out;
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
}

SQUALL_ASYNC_TEST(SubprocessTest, ASubprocessLeavesNoFdBehind) {
  int before = count_open_fds();
  {
    Subprocess proc({"sh", "-c", "cat; echo done >&2"},
                    {.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream, .stderr_mode = Stdio::Stream});
    proc.stdin_stream()->close();
    EXPECT_EQ(co_await proc.stderr_stream()->read_until_close(), "done\n");
    EXPECT_EQ(co_await proc.wait_for_exit(), 0);
  }
  // The loop's own signalfd for SIGCHLD stays until the loop closes.
  Subprocess::uninitialize();
  EXPECT_EQ(count_open_fds(), before);
}

// --- Subprocess: SIGCHLD handling -------------------------------------------------------------

SQUALL_ASYNC_TEST(SubprocessTest, SeveralSubprocessesRunConcurrentlyAndEachGetsItsOwnStatus) {
  constexpr int kCount = 6;
  std::vector<std::unique_ptr<Subprocess>> procs;
  for (int i = 0; i < kCount; ++i) {
    procs.push_back(std::make_unique<Subprocess>(std::vector<std::string>{"sh", "-c", "read x; echo \"$x\"; exit $x"},
                                                 SubprocessOptions{.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream}));
  }
  std::vector<Future<int>> exits;
  std::vector<Future<std::string>> outputs;
  for (auto& p : procs) {
    exits.push_back(p->wait_for_exit(false));
    outputs.push_back(p->stdout_stream()->read_until_close());
  }
  // Feed them in reverse so they exit in the opposite order of their start.
  for (int i = kCount - 1; i >= 0; --i) {
    co_await procs[i]->stdin_stream()->write(std::to_string(i) + "\n");
  }
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(co_await outputs[i], std::to_string(i) + "\n");
    EXPECT_EQ(co_await exits[i], i);
  }
}

SQUALL_ASYNC_TEST(SubprocessTest, AChildThatExitedBeforeSigchldWasHandledIsStillSeen) {
  Subprocess::uninitialize();
  Subprocess proc({"sh", "-c", "exit 4"});
  // Wait for the exit without reaping: nothing blocks SIGCHLD yet, so the
  // kernel discarded it, and only a look at the child can find the exit.
  // (ESRCH: the constructor's own look already reaped it, which is fine.)
  UniqueFd pidfd = open_pidfd(proc.pid());
  if (pidfd) {
    pollfd p{pidfd.get(), POLLIN, 0};
    CO_ASSERT_EQ(::poll(&p, 1, 5000), 1);
  }
  EXPECT_EQ(co_await proc.wait_for_exit(false), 4);
}

SQUALL_ASYNC_TEST(SubprocessTest, OtherChildrenOfTheProcessAreNotReaped) {
  // A child that is not a Subprocess: its status belongs to whoever forked it.
  pid_t foreign = ::fork();
  if (foreign == 0) ::_exit(7);
  CO_ASSERT_TRUE(foreign > 0);
  Subprocess proc({"true"});
  EXPECT_EQ(co_await proc.wait_for_exit(), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(foreign, &status, 0), foreign);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

SQUALL_ASYNC_TEST(SubprocessTest, UninitializeOnALoopThatDoesNotHandleSigchldIsRefused) {
  Subprocess::initialize();
  IOLoop other(IOLoop::Options{.make_current = false});
  other.make_current();
  EXPECT_THROW(Subprocess::uninitialize(), InvalidStateError);
  other.clear_current();
  io_loop().make_current();
  Subprocess::uninitialize();
  Subprocess::uninitialize();  // nothing left to do
  co_return;
}

TEST(SubprocessLoopLifetimeTest, ALoopThatClosedNoLongerCountsAsHandlingSigchld) {
  // A second loop must install its own handler: the first one's is gone.
  for (int round = 0; round < 2; ++round) {
    IOLoop loop;
    int code = loop.run_sync(
        []() -> Future<int> {
          Subprocess proc({"sh", "-c", "exit 2"});
          co_return co_await proc.wait_for_exit(false);
        },
        5s);
    EXPECT_EQ(code, 2) << "round " << round;
  }
}

// --- fork_processes ---------------------------------------------------------------------

TEST(ForkProcessesTest, TheTaskIdIsMinusOneInAProcessThatNeverForked) { EXPECT_EQ(task_id(), -1); }

SQUALL_ASYNC_TEST(SubprocessTest, ForkProcessesRefusesToRunOnceAnIOLoopExists) {
  EXPECT_THROW(fork_processes(2), InvalidStateError);
  EXPECT_EQ(task_id(), -1);
  co_return;
}

/// A pipe whose ends close with the test.
struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

/// A forked copy of the test process that runs `body` and _exits with its
/// result. fork_processes runs in there, never in the test process.
class Forked {
 public:
  explicit Forked(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid_ == 0) {
      ::alarm(60);  // a hung supervisor dies instead of hanging the test
      int code = 99;
      try {
        code = body();
      } catch (...) {
        code = 98;
      }
      ::_exit(code);
    }
    pidfd_ = open_pidfd(pid_);
  }
  ~Forked() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Forked(const Forked&) = delete;
  Forked& operator=(const Forked&) = delete;
  pid_t pid() const { return pid_; }

  /// The wait status, or -1 if the process is still running after `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    pollfd p{pidfd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return -1;
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool reaped_ = false;
};

/// Reads until EOF or until `timeout` passes; `eof` tells which.
std::string read_until_eof(int fd, std::chrono::milliseconds timeout, bool* eof, std::size_t stop_after = SIZE_MAX) {
  std::string out;
  *eof = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < stop_after) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
    char buf[256];
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, stop_after - out.size()));
    if (n == 0) {
      *eof = true;
      break;
    }
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

TEST(ForkProcessesTest, ACrashedChildIsRestartedWithItsTaskIdAndTheParentExitsZeroWhenAllSucceed) {
  TempDir dir;
  std::string marker = dir.path() + "/crashed-once";
  Pipe report;
  Forked supervisor([&]() -> int {
    report.read.reset();
    int id = fork_processes(3, 5);
    // In a child from here on.
    bool ok = id == task_id() && id >= 0 && id < 3;
    try {
      fork_processes(2);
      ok = false;
    } catch (const InvalidStateError&) {
    }
    char c = ok ? static_cast<char>('a' + id) : 'X';
    [[maybe_unused]] ssize_t n = ::write(report.write.get(), &c, 1);
    if (id == 1 && ::access(marker.c_str(), F_OK) != 0) {
      UniqueFd created(::open(marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
      ::raise(SIGKILL);  // the first run of task 1 crashes
    }
    ::_exit(0);
  });
  report.write.reset();
  bool eof = false;
  std::string starts = read_until_eof(report.read.get(), 30s, &eof);
  EXPECT_TRUE(eof) << "children still running";
  std::sort(starts.begin(), starts.end());
  EXPECT_EQ(starts, "abbc");  // task 1 ran twice
  int status = supervisor.wait(30s);
  ASSERT_NE(status, -1) << "the supervisor did not exit";
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ForkProcessesTest, TheParentGivesUpAfterMaxRestarts) {
  Pipe report;
  Forked supervisor([&]() -> int {
    report.read.reset();
    try {
      fork_processes(1, 2);
    } catch (const squall::Error& e) {
      return std::string(e.what()).find("Too many child restarts") != std::string::npos ? 42 : 43;
    }
    [[maybe_unused]] ssize_t n = ::write(report.write.get(), "s", 1);
    ::_exit(1);  // every run fails
  });
  report.write.reset();
  bool eof = false;
  std::string starts = read_until_eof(report.read.get(), 30s, &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(starts, "sss");  // the first run and two restarts
  int status = supervisor.wait(30s);
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 42);
}

TEST(ForkProcessesTest, SigtermToTheParentIsForwardedToTheChildrenAndNobodyIsRestarted) {
  Pipe report;
  Pipe hold;  // children block reading it; it closes with the test at the latest
  Forked supervisor([&]() -> int {
    report.read.reset();
    hold.write.reset();
    int id = fork_processes(2, 10);
    char c = static_cast<char>('a' + id);
    [[maybe_unused]] ssize_t n = ::write(report.write.get(), &c, 1);
    char buf;
    [[maybe_unused]] ssize_t got = ::read(hold.read.get(), &buf, 1);
    ::_exit(0);
  });
  report.write.reset();
  hold.read.reset();
  bool eof = false;
  std::string started = read_until_eof(report.read.get(), 30s, &eof, 2);
  std::sort(started.begin(), started.end());
  ASSERT_EQ(started, "ab");
  ASSERT_EQ(::kill(supervisor.pid(), SIGTERM), 0);
  int status = supervisor.wait(30s);
  ASSERT_NE(status, -1) << "the supervisor did not exit";
  // The children died of SIGTERM, so the parent dies of it too.
  EXPECT_TRUE(WIFSIGNALED(status)) << status;
  if (WIFSIGNALED(status)) {
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
  }
  // Every child is gone (EOF on the report pipe) and none was restarted.
  std::string rest = read_until_eof(report.read.get(), 30s, &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(rest, "");
}

TEST(ForkProcessesTest, ASignalTheCallerIgnoresIsNeitherWaitedForNorForwarded) {
  Pipe report;
  Pipe hold;
  Forked supervisor([&]() -> int {
    report.read.reset();
    hold.write.reset();
    ::signal(SIGINT, SIG_IGN);
    int id = fork_processes(1, 10);
    char c = static_cast<char>('a' + id);
    [[maybe_unused]] ssize_t n = ::write(report.write.get(), &c, 1);
    char buf;
    [[maybe_unused]] ssize_t got = ::read(hold.read.get(), &buf, 1);
    ::_exit(0);
  });
  report.write.reset();
  hold.read.reset();
  bool eof = false;
  ASSERT_EQ(read_until_eof(report.read.get(), 30s, &eof, 1), "a");
  // Had SIGINT been waited for, sigwaitinfo would take it first (the lower
  // number) and the parent would end up dying of SIGINT.
  ASSERT_EQ(::kill(supervisor.pid(), SIGINT), 0);
  ASSERT_EQ(::kill(supervisor.pid(), SIGTERM), 0);
  int status = supervisor.wait(30s);
  ASSERT_NE(status, -1) << "the supervisor did not exit";
  EXPECT_TRUE(WIFSIGNALED(status)) << status;
  if (WIFSIGNALED(status)) {
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
  }
}

TEST(ForkProcessesTest, ZeroProcessesMeansOnePerCpu) {
  cpu_set_t set;
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  int cpus = CPU_COUNT(&set);
  Pipe report;
  Forked supervisor([&]() -> int {
    report.read.reset();
    int id = fork_processes(0);
    char c = static_cast<char>(id);
    [[maybe_unused]] ssize_t n = ::write(report.write.get(), &c, 1);
    ::_exit(0);
  });
  report.write.reset();
  bool eof = false;
  std::string ids = read_until_eof(report.read.get(), 30s, &eof);
  EXPECT_TRUE(eof);
  std::string expected;
  for (int i = 0; i < cpus; ++i) expected.push_back(static_cast<char>(i));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, expected);
  int status = supervisor.wait(30s);
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace squall::net
