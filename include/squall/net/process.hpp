// Processes (Tornado's process module): fork_processes() runs one server in
// several processes, and Subprocess runs a program with non-blocking pipes
// and an exit status delivered through the IOLoop. fork_processes is for the
// main thread of a process with no IOLoop and no other thread yet; a
// Subprocess is loop-affine (create, use and destroy it on its loop's thread).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/errors.hpp"
#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/net/iostream.hpp"

namespace squall::net {

// --- fork_processes -----------------------------------------------------------------

/// Starts `num_processes` children (<= 0: one per CPU this process may run
/// on, from sched_getaffinity(2)) and returns, in each child, its task id
/// (0 .. num_processes-1). Tornado's fork_processes:
///
///   auto sockets = bind_sockets(8888);   // before forking: shared listeners
///   fork_processes(0);                   // from here on, in a child
///   IOLoop::current() ...                // each child makes its own loop
///
/// The parent never returns normally. It waits for its children and
/// restarts (with the same task id) one that was killed by a signal or
/// exited with a non-zero status, at most `max_restarts` times in all; one
/// more failure throws squall::Error("Too many child restarts, giving up"),
/// leaving the other children running. When every child has exited with
/// status 0, the parent calls std::exit(0) rather than returning into code
/// meant for a child.
///
/// Unlike Tornado, the parent forwards SIGTERM and SIGINT to its children
/// (so `kill <parent>` does not leave orphans serving on): after one of them
/// arrives it restarts nobody, waits for every child, then exits with status
/// 0 if they all exited with 0, or else dies of the signal it received. While
/// supervising, the parent takes these signals with sigwaitinfo(2), so a
/// handler the caller installed runs only in the children; a signal the
/// caller ignores stays ignored and is not forwarded. (A terminal's Ctrl-C
/// reaches the whole process group, so the children may see SIGINT twice; a
/// handler for it must tolerate that.)
///
/// Preconditions: the calling thread has no IOLoop (InvalidStateError
/// otherwise) and the process has no other thread: fork(2) copies only the
/// calling thread, so a lock another thread held (in malloc, in a logger)
/// would stay locked forever in the children. This is not checked.
/// Calling it again in a child is an InvalidStateError.
///
/// Each child starts with the caller's signal mask and SIGCHLD disposition
/// and no Subprocess bookkeeping from the parent. Seed random number
/// generators after this call, not before, or every child draws the same
/// numbers (OpenSSL's generator reseeds itself after fork).
int fork_processes(int num_processes, int max_restarts = 100);

/// The task id fork_processes returned in this process, or -1 in the parent
/// and in a process that never forked. Any thread.
int task_id() noexcept;

// --- Subprocess -------------------------------------------------------------------------

namespace detail {
/// What the SIGCHLD handler knows of one child (process.cpp).
struct ChildRecord;
}  // namespace detail

/// How a child's standard stream is connected.
enum class Stdio {
  Inherit,  ///< the parent's own fd (the default, as in Python)
  Stream,   ///< a pipe, exposed as a PipeIOStream (Tornado's Subprocess.STREAM)
  DevNull,  ///< /dev/null
};

/// A complete environment for a child, name -> value.
using Environment = std::map<std::string, std::string>;

/// This process's environment (environ(7)), to extend for a child. Not
/// safe against a concurrent setenv(3).
Environment current_environment();

struct SubprocessOptions {
  Stdio stdin_mode = Stdio::Inherit;
  Stdio stdout_mode = Stdio::Inherit;
  Stdio stderr_mode = Stdio::Inherit;
  /// The child's working directory; empty: the parent's. A relative program
  /// path containing '/' is resolved from here (as Python's subprocess does).
  std::string cwd = {};
  /// The child's whole environment; unset: the parent's. A program named
  /// without '/' is searched in this environment's PATH.
  std::optional<Environment> env = std::nullopt;
  /// Options of the pipes' streams.
  StreamOptions stream_options = {};
};

/// The program could not be started (no such file, not executable, bad
/// cwd, fork failed). what() names the program and the reason.
class SpawnError : public Error {
 public:
  SpawnError(int err, const std::string& what);
  std::error_code code() const noexcept { return code_; }

 private:
  std::error_code code_;
};

/// wait_for_exit(true) saw a non-zero exit (Python's CalledProcessError).
class CalledProcessError : public Error {
 public:
  CalledProcessError(int returncode, std::string cmd);
  /// The exit status, or minus the signal number that killed the child.
  int returncode() const noexcept { return returncode_; }
  const std::string& cmd() const noexcept { return cmd_; }

 private:
  int returncode_;
  std::string cmd_;
};

/// A child process running a program (Tornado's Subprocess):
///
///   Subprocess proc({"grep", "x"}, {.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream});
///   auto matches = proc.stdout_stream()->read_until_close();  // read while writing:
///   co_await proc.stdin_stream()->write(text);                 // a full pipe each way
///   proc.stdin_stream()->close();                              // would block both
///   std::string found = co_await std::move(matches);
///   int code = co_await proc.wait_for_exit(false);
///
/// The child is started with fork(2) and execve(2): standard streams as
/// options say, every other fd closed (close_range(2) with
/// CLOSE_RANGE_CLOEXEC), an empty signal mask (the loop blocks the signals
/// it reads through a signalfd, and a mask survives exec), SIGPIPE and
/// SIGXFSZ reset to their defaults (as Python does), and handlers reset to
/// SIG_DFL before the mask is lifted. A failure before or at exec travels
/// back through a close-on-exec pipe and is thrown by the constructor as a
/// SpawnError; the constructor blocks only until the child has called exec.
///
/// Exit statuses arrive through SIGCHLD: see initialize(). Destroying a
/// Subprocess closes its pipes but neither kills nor waits for the child;
/// the child is still reaped when it exits. Not movable (the SIGCHLD
/// handler refers to it); hold it in a unique_ptr to move it around.
class Subprocess {
 public:
  /// Starts `argv[0]` (searched in PATH unless it contains '/') with
  /// arguments `argv`. Registers the child with the current loop. Throws
  /// SpawnError, or std::invalid_argument for an empty argv.
  explicit Subprocess(std::vector<std::string> argv, SubprocessOptions options = {});
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  /// Closes the pipes; pending wait_for_exit futures are cancelled.
  ~Subprocess();

  /// The pipes to the child's stdin, from its stdout and stderr: null unless
  /// that stream's option is Stdio::Stream. They live as long as this object.
  PipeIOStream* stdin_stream() const noexcept { return stdin_.get(); }
  PipeIOStream* stdout_stream() const noexcept { return stdout_.get(); }
  PipeIOStream* stderr_stream() const noexcept { return stderr_.get(); }

  pid_t pid() const noexcept { return pid_; }
  /// The exit status once known: the code passed to exit, or minus the
  /// signal number that killed the child (Python's convention).
  std::optional<int> returncode() const noexcept { return returncode_; }

  /// Resolves with returncode() when the child exits; with `raise_error`, a
  /// non-zero code fails it with CalledProcessError instead. Calls
  /// initialize() on the current loop if nothing handles SIGCHLD yet. Any
  /// number of waits may be pending; cancelling one just stops that wait.
  Future<int> wait_for_exit(bool raise_error = true);

  /// Runs `callback(returncode)` on this Subprocess's loop when the child
  /// exits (at once if it already has), replacing an earlier callback.
  /// Calls initialize() like wait_for_exit.
  void set_exit_callback(UniqueFunction<void(int)> callback);

  /// kill(2)s the child with `signo`; does nothing once the child has been
  /// reaped (its pid may belong to another process by then). Throws
  /// std::system_error if kill fails.
  void send_signal(int signo);

  /// Makes the current thread's loop handle SIGCHLD for every Subprocess of
  /// the process (Tornado's Subprocess.initialize): its signal handler calls
  /// waitpid(pid, WNOHANG) for each known child, never waitpid(-1), so
  /// children started by other code are left to it. Exit statuses are
  /// handed to each Subprocess's own loop with add_callback. Does nothing if
  /// some loop already does this.
  ///
  /// A loop has one handler per signal: installing another SIGCHLD handler
  /// on this loop replaces this one (and a later wait_for_exit installs it
  /// again). SIGCHLD is blocked only in this loop's thread, so Subprocesses
  /// started on other threads need SIGCHLD blocked there too, or the kernel
  /// may discard the signal. Closing the loop ends the handling.
  static void initialize();
  /// Removes the handler. Call it on the handling loop's thread; from a
  /// thread whose loop does not handle SIGCHLD it throws InvalidStateError.
  /// Does nothing if no loop handles SIGCHLD.
  static void uninitialize();


 private:
  struct Waiter {
    Future<int> future;
    bool raise_error;
  };

  /// waitpid(WNOHANG) for every known child, or only `only`; hands each
  /// exit to its Subprocess's loop. Any thread.
  static void reap_children(pid_t only = -1);
  /// initialize(), then one look at this child (it may have exited before
  /// anything blocked SIGCHLD, and that signal is gone).
  void ensure_reaping();
  /// On loop_, once the child is reaped. Resolves waiters last.
  void exited(int returncode);

  IOLoop* loop_;
  std::string program_;
  pid_t pid_ = -1;
  std::unique_ptr<PipeIOStream> stdin_;
  std::unique_ptr<PipeIOStream> stdout_;
  std::unique_ptr<PipeIOStream> stderr_;
  std::shared_ptr<detail::ChildRecord> child_;
  std::optional<int> returncode_;
  UniqueFunction<void(int)> exit_callback_;
  std::vector<Waiter> waiters_;
};

}  // namespace squall::net
