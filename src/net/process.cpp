#include "squall/net/process.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "squall/core/log.hpp"
#include "squall/core/unique_fd.hpp"

extern "C" char** environ;  // environ(7)

namespace squall::net {

namespace detail {

struct ChildRecord {
  pid_t pid = -1;
  /// The Subprocess's loop; null once the Subprocess is gone (then the
  /// reaper only reaps). Guarded by the registry's mutex.
  IOLoop* loop = nullptr;
  /// Touched only on `loop`'s thread.
  Subprocess* owner = nullptr;
};

}  // namespace detail

namespace {

// --- process-wide state ---------------------------------------------------------------

std::atomic<int> g_task_id{-1};

/// Every unreaped child of every Subprocess in the process, and the loop
/// whose SIGCHLD handler reaps them. Any thread, under `mutex`.
struct Registry {
  std::mutex mutex;
  std::unordered_map<pid_t, std::shared_ptr<detail::ChildRecord>> children;
  IOLoop* signal_loop = nullptr;
};

Registry& registry() {
  static Registry r;
  return r;
}

/// Lives inside the SIGCHLD handler registered with a loop, so whatever
/// ends that handler (uninitialize, another SIGCHLD handler replacing it,
/// the loop closing) also forgets that this loop handles SIGCHLD.
class SignalLoopClaim {
 public:
  explicit SignalLoopClaim(IOLoop* loop) noexcept : loop_(loop) {}
  SignalLoopClaim(const SignalLoopClaim&) = delete;
  SignalLoopClaim& operator=(const SignalLoopClaim&) = delete;
  ~SignalLoopClaim() {
    if (!armed_) return;
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    if (r.signal_loop == loop_) r.signal_loop = nullptr;
  }
  /// Records the loop as the one handling SIGCHLD, unless one already is.
  bool claim() {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    if (r.signal_loop) return false;
    r.signal_loop = loop_;
    armed_ = true;
    return true;
  }

 private:
  IOLoop* loop_;
  bool armed_ = false;
};

/// A wait status as Python reports it: the exit code, or minus the signal.
int returncode_of(int status) noexcept { return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status); }

pid_t waitpid_retrying(pid_t pid, int* status, int flags) noexcept {
  pid_t got;
  do {
    got = ::waitpid(pid, status, flags);
  } while (got < 0 && errno == EINTR);
  return got;
}

std::string errno_text(int err) { return std::system_category().message(err); }

// --- spawning ---------------------------------------------------------------------------

/// Where a failure in the child happened, sent back with its errno.
enum ChildStage : int { kStdio = 1, kChdir = 2, kExec = 3 };

/// Everything the child needs, prepared before fork(2): in a process with
/// other threads the child may call only async-signal-safe functions until
/// it execs (signal-safety(7)), so it must not allocate or lock.
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<std::string> env_strings;
  std::vector<char*> envp;  // empty: inherit environ
  std::vector<std::string> candidates;
  const char* cwd = nullptr;
  int stdio[3] = {-1, -1, -1};  // fd to become 0, 1, 2; -1: inherit
  int reset_signals[NSIG] = {};
  int reset_count = 0;
  int fd_limit = 0;  // for the fallback when close_range(2) is unavailable
};

/// The directories to try for `program`: itself if it names a path, else
/// each entry of PATH (the child's PATH when an environment is given, as in
/// Python's os.get_exec_path; confstr(_CS_PATH) when there is none).
std::vector<std::string> exec_candidates(const std::string& program, const std::optional<Environment>& env) {
  if (program.find('/') != std::string::npos) return {program};
  std::string path;
  bool have_path = false;
  if (env) {
    if (auto it = env->find("PATH"); it != env->end()) {
      path = it->second;
      have_path = true;
    }
  } else if (const char* p = ::getenv("PATH")) {
    path = p;
    have_path = true;
  }
  if (!have_path) {
    char buf[256];
    std::size_t n = ::confstr(_CS_PATH, buf, sizeof buf);
    path = (n > 0 && n <= sizeof buf) ? std::string(buf) : std::string("/bin:/usr/bin");
  }
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t colon = path.find(':', start);
    std::string_view dir(path.data() + start, (colon == std::string::npos ? path.size() : colon) - start);
    // An empty entry means the current directory (execvp(3)).
    out.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + program);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

/// Runs in the child between fork and exec. Async-signal-safe calls only.
[[noreturn]] void run_child(ChildPlan& plan, int error_fd) noexcept {
  auto fail = [error_fd](int stage, int err) {
    int report[2] = {stage, err};
    // If the parent is gone there is nobody to tell; nothing else to do.
    [[maybe_unused]] ssize_t n = ::write(error_fd, report, sizeof report);
    ::_exit(127);
  };

  // Every signal is blocked (the parent blocked them around fork). Give the
  // parent's handlers back to the kernel before lifting the mask, so none
  // of them runs in this copy of the process; exec would reset them anyway.
  // SIGPIPE and SIGXFSZ may be ignored by the parent; a program expects the
  // default (Python's restore_signals).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int i = 0; i < plan.reset_count; ++i) ::sigaction(plan.reset_signals[i], &dfl, nullptr);

  // Standard streams. A source fd below 3 (the parent had closed its own
  // stdio) is moved out of the way first so no dup2 clobbers another source.
  for (int& src : plan.stdio) {
    if (src >= 0 && src < 3) {
      src = ::fcntl(src, F_DUPFD_CLOEXEC, 3);
      if (src < 0) fail(kStdio, errno);
    }
  }
  for (int target = 0; target < 3; ++target) {
    // dup2(2) clears FD_CLOEXEC on the new descriptor.
    if (plan.stdio[target] >= 0 && ::dup2(plan.stdio[target], target) < 0) fail(kStdio, errno);
  }

  if (plan.cwd && ::chdir(plan.cwd) != 0) fail(kChdir, errno);

  // Nothing but 0..2 may reach the program (Python's close_fds=True); the
  // error pipe, already close-on-exec, stays open until exec succeeds.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < plan.fd_limit; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }

  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  char** envp = plan.envp.empty() ? environ : plan.envp.data();
  // Try every candidate, as Python's subprocess does, and report the first
  // error other than ENOENT/ENOTDIR: a file found but not executable
  // (EACCES) says more than the "not found" of the directories after it.
  int saved = 0;
  int last = ENOENT;
  for (auto& candidate : plan.candidates) {
    ::execve(candidate.c_str(), plan.argv.data(), envp);
    last = errno;
    if (last != ENOENT && last != ENOTDIR && saved == 0) saved = last;
  }
  fail(kExec, saved ? saved : last);
  ::_exit(127);  // not reached
}

struct PipeEnds {
  UniqueFd read;
  UniqueFd write;
};

PipeEnds make_pipe(const std::string& program) {
  int fds[2];
  // Close-on-exec from birth: another thread's fork+exec must not inherit it.
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    int err = errno;
    throw SpawnError(err, "cannot start '" + program + "': pipe2: " + errno_text(err));
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

// --- fork_processes -----------------------------------------------------------------

namespace {

int cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  // The CPUs we may run on (taskset, cgroup cpusets), not all the machine has.
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

/// The parent's signal setup while it supervises; restored on the way out
/// and in every child, so children start as the caller left things.
class SupervisorSignals {
 public:
  explicit SupervisorSignals(const sigset_t& wait_set) {
    // Blocked before the first fork, so a signal arriving before the parent
    // waits stays pending for sigwaitinfo(2).
    pthread_sigmask(SIG_BLOCK, &wait_set, &old_mask_);
    ::sigaction(SIGCHLD, nullptr, &old_chld_);
    // With SIGCHLD ignored (or SA_NOCLDWAIT) the kernel reaps children
    // itself and waitpid(2) fails with ECHILD (waitpid(2), NOTES).
    if (old_chld_.sa_handler == SIG_IGN || (old_chld_.sa_flags & SA_NOCLDWAIT)) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      ::sigaction(SIGCHLD, &dfl, nullptr);
      chld_changed_ = true;
    }
  }
  SupervisorSignals(const SupervisorSignals&) = delete;
  SupervisorSignals& operator=(const SupervisorSignals&) = delete;
  ~SupervisorSignals() {
    if (chld_changed_) ::sigaction(SIGCHLD, &old_chld_, nullptr);
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  sigset_t old_mask_;
  struct sigaction old_chld_ {};
  bool chld_changed_ = false;
};

/// Per-process state a child must not inherit.
void reset_after_fork() noexcept {
  // The parent's Subprocess children are not this process's children.
  // Single-threaded here (a precondition), so the mutex is free.
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.children.clear();
  r.signal_loop = nullptr;
}

[[noreturn]] void die_of(int signo) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(signo, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(signo);
  std::_Exit(128 + signo);  // only if the signal did not kill us
}

}  // namespace

int task_id() noexcept { return g_task_id.load(std::memory_order_relaxed); }

int fork_processes(int num_processes, int max_restarts) {
  if (IOLoop::current_or_null() != nullptr) {
    throw InvalidStateError("fork_processes() must be called before an IOLoop exists; each child creates its own");
  }
  if (task_id() != -1) throw InvalidStateError("fork_processes() was already called in this process");
  if (num_processes <= 0) num_processes = cpu_count();
  log::general().info("Starting {} processes", num_processes);

  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGCHLD);
  for (int signo : {SIGTERM, SIGINT}) {
    // An ignored signal stays ignored (a background job of a shell script
    // has SIGINT ignored): a blocked signal is kept even when ignored, so
    // it must not be waited for (signal(7)).
    struct sigaction current {};
    ::sigaction(signo, nullptr, &current);
    if (current.sa_handler != SIG_IGN) sigaddset(&wait_set, signo);
  }
  SupervisorSignals supervisor(wait_set);

  std::unordered_map<pid_t, int> children;  // pid -> task id
  // Returns true in the new child.
  auto start_child = [&](int id) {
    pid_t pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      g_task_id.store(id, std::memory_order_relaxed);
      reset_after_fork();
      return true;  // `supervisor` restores the caller's signal setup
    }
    children.emplace(pid, id);
    return false;
  };

  for (int id = 0; id < num_processes; ++id) {
    if (start_child(id)) return id;
  }

  int restarts = 0;
  int stop_signal = 0;  // SIGTERM or SIGINT once one was forwarded
  bool all_clean = true;
  while (!children.empty()) {
    siginfo_t info;
    int signo = ::sigwaitinfo(&wait_set, &info);
    if (signo < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "sigwaitinfo");
    }
    if (signo == SIGTERM || signo == SIGINT) {
      if (stop_signal == 0) {
        stop_signal = signo;
        log::general().info("Got signal {}: forwarding it to {} children, restarting none", signo, children.size());
      }
      for (const auto& [pid, id] : children) ::kill(pid, signo);
      continue;
    }

    // SIGCHLD. Standard signals do not queue (signal(7)): one may stand for
    // several exits, so look at every child.
    struct Exit {
      pid_t pid;
      int id;
      int status;
    };
    std::vector<Exit> exits;
    for (auto it = children.begin(); it != children.end();) {
      int status = 0;
      pid_t got = waitpid_retrying(it->first, &status, WNOHANG);
      if (got == 0) {
        ++it;
        continue;
      }
      if (got < 0) {
        // Someone else reaped it; its status is lost and it cannot be restarted.
        log::general().warn("child {} (pid {}) vanished: {}", it->second, it->first, errno_text(errno));
        all_clean = false;
      } else {
        exits.push_back({it->first, it->second, status});
      }
      it = children.erase(it);
    }

    for (const auto& e : exits) {
      const char* then = stop_signal ? "" : ", restarting";
      if (WIFSIGNALED(e.status)) {
        log::general().warn("child {} (pid {}) killed by signal {}{}", e.id, e.pid, WTERMSIG(e.status), then);
      } else if (WEXITSTATUS(e.status) != 0) {
        log::general().warn("child {} (pid {}) exited with status {}{}", e.id, e.pid, WEXITSTATUS(e.status), then);
      } else {
        log::general().info("child {} (pid {}) exited normally", e.id, e.pid);
        continue;
      }
      if (stop_signal) {
        all_clean = false;
        continue;
      }
      if (++restarts > max_restarts) throw Error("Too many child restarts, giving up");
      if (start_child(e.id)) return e.id;
    }
  }

  if (stop_signal != 0 && !all_clean) die_of(stop_signal);
  // Every child is done. Exiting here (Tornado calls sys.exit(0)) keeps the
  // parent from running on into code meant for a child.
  std::exit(0);
}

// --- errors -----------------------------------------------------------------------------

SpawnError::SpawnError(int err, const std::string& what) : Error(what), code_(err, std::generic_category()) {}

namespace {
std::string describe_exit(int returncode, const std::string& cmd) {
  if (returncode < 0) return "Command '" + cmd + "' died with signal " + std::to_string(-returncode);
  return "Command '" + cmd + "' returned non-zero exit status " + std::to_string(returncode);
}
}  // namespace

CalledProcessError::CalledProcessError(int returncode, std::string cmd)
    : Error(describe_exit(returncode, cmd)), returncode_(returncode), cmd_(std::move(cmd)) {}

// --- Subprocess -------------------------------------------------------------------------

Environment current_environment() {
  Environment env;
  for (char** p = environ; p && *p; ++p) {
    std::string_view entry(*p);
    std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

Subprocess::Subprocess(std::vector<std::string> argv, SubprocessOptions options) : loop_(&IOLoop::current()) {
  loop_->assert_in_loop_thread();
  if (argv.empty()) throw std::invalid_argument("Subprocess: argv is empty");
  program_ = argv[0];

  ChildPlan plan;
  for (auto& arg : argv) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  if (options.env) {
    for (const auto& [name, value] : *options.env) plan.env_strings.push_back(name + "=" + value);
    for (auto& s : plan.env_strings) plan.envp.push_back(s.data());
    plan.envp.push_back(nullptr);
  }
  plan.candidates = exec_candidates(program_, options.env);
  if (!options.cwd.empty()) plan.cwd = options.cwd.c_str();
  for (int signo = 1; signo < NSIG; ++signo) {
    struct sigaction current {};
    if (::sigaction(signo, nullptr, &current) != 0) continue;  // glibc's reserved signals
    bool has_handler = current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
    if (has_handler || signo == SIGPIPE || signo == SIGXFSZ) plan.reset_signals[plan.reset_count++] = signo;
  }
  long open_max = ::sysconf(_SC_OPEN_MAX);
  plan.fd_limit = open_max > 0 && open_max < (1 << 20) ? static_cast<int>(open_max) : (1 << 20);

  // The parent's ends of the pipes, and what the child gets as 0, 1, 2.
  PipeEnds in, out, err;
  UniqueFd dev_null;
  const Stdio modes[3] = {options.stdin_mode, options.stdout_mode, options.stderr_mode};
  for (Stdio m : modes) {
    if (m == Stdio::DevNull && !dev_null) {
      dev_null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!dev_null) {
        int e = errno;
        throw SpawnError(e, "cannot start '" + program_ + "': /dev/null: " + errno_text(e));
      }
    }
  }
  PipeEnds* pipes[3] = {&in, &out, &err};
  for (int i = 0; i < 3; ++i) {
    if (modes[i] == Stdio::Stream) {
      *pipes[i] = make_pipe(program_);
      plan.stdio[i] = i == 0 ? pipes[i]->read.get() : pipes[i]->write.get();
    } else if (modes[i] == Stdio::DevNull) {
      plan.stdio[i] = dev_null.get();
    }
  }
  PipeEnds report = make_pipe(program_);

  // Block every signal across fork so none of our handlers runs in the
  // child before it resets them (glibc's posix_spawn does the same).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) run_child(plan, report.write.get());
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) throw SpawnError(fork_errno, "cannot start '" + program_ + "': fork: " + errno_text(fork_errno));

  // Close our copies of the child's ends, or we would never see EOF.
  in.read.reset();
  out.write.reset();
  err.write.reset();
  dev_null.reset();
  report.write.reset();

  // EOF: exec succeeded and closed the report pipe. Anything else: the
  // child's stage and errno. This waits only for the child to reach exec.
  int message[2] = {0, 0};
  std::size_t got = 0;
  while (got < sizeof message) {
    ssize_t n = ::read(report.read.get(), reinterpret_cast<char*>(message) + got, sizeof message - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  if (got != 0) {
    int status = 0;
    waitpid_retrying(pid, &status, 0);  // it has _exit'ed or is about to
    int e = got == sizeof message ? message[1] : EIO;
    switch (got == sizeof message ? message[0] : 0) {
      case kChdir:
        throw SpawnError(e, "cannot start '" + program_ + "': cannot change directory to '" + options.cwd +
                                "': " + errno_text(e));
      case kExec:
        throw SpawnError(e, "cannot run '" + program_ + "': " + errno_text(e));
      default:
        throw SpawnError(e, "cannot start '" + program_ + "': setting up its standard streams: " + errno_text(e));
    }
  }
  pid_ = pid;

  child_ = std::make_shared<detail::ChildRecord>();
  child_->pid = pid;
  child_->owner = this;
  try {
    if (in.write) stdin_ = std::make_unique<PipeIOStream>(std::move(in.write), options.stream_options);
    if (out.read) stdout_ = std::make_unique<PipeIOStream>(std::move(out.read), options.stream_options);
    if (err.read) stderr_ = std::make_unique<PipeIOStream>(std::move(err.read), options.stream_options);
  } catch (...) {
    // No Subprocess will exist, but the running child must still be reaped.
    child_->owner = nullptr;
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    r.children.emplace(pid, child_);
    throw;
  }
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    child_->loop = loop_;
    r.children.emplace(pid, child_);
  }
  // The child may already be gone, before anything blocked SIGCHLD.
  reap_children(pid_);
}

Subprocess::~Subprocess() {
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    child_->loop = nullptr;  // the reaper still reaps it, and tells nobody
  }
  child_->owner = nullptr;
  stdin_.reset();
  stdout_.reset();
  stderr_.reset();
  // Last: cancelling resumes waiting coroutines, which must find nothing of
  // this object still to be torn down.
  auto waiters = std::move(waiters_);
  for (auto& w : waiters) w.future.clear_cancel_handler();
  for (auto& w : waiters) w.future.cancel();
}

Future<int> Subprocess::wait_for_exit(bool raise_error) {
  loop_->assert_in_loop_thread();
  Future<int> future;
  if (returncode_) {
    if (raise_error && *returncode_ != 0) {
      future.set_exception(CalledProcessError(*returncode_, program_));
    } else {
      future.set_result(*returncode_);
    }
    return future;
  }
  waiters_.push_back({future, raise_error});
  future.set_cancel_handler([this, state = future.state()] {
    std::erase_if(waiters_, [state](const Waiter& w) { return w.future.state() == state; });
  });
  ensure_reaping();
  return future;
}

void Subprocess::set_exit_callback(UniqueFunction<void(int)> callback) {
  loop_->assert_in_loop_thread();
  if (returncode_) {
    callback(*returncode_);
    return;
  }
  exit_callback_ = std::move(callback);
  ensure_reaping();
}

void Subprocess::send_signal(int signo) {
  auto& r = registry();
  // Holding the lock keeps the reaper from reaping the child (and the pid
  // from being reused) between the check and the kill.
  std::lock_guard lock(r.mutex);
  auto it = r.children.find(pid_);
  if (it == r.children.end() || it->second != child_) return;
  if (::kill(pid_, signo) != 0) throw std::system_error(errno, std::generic_category(), "kill");
}

void Subprocess::ensure_reaping() {
  initialize();
  reap_children(pid_);
}

void Subprocess::exited(int returncode) {
  loop_->assert_in_loop_thread();
  returncode_ = returncode;
  auto callback = std::move(exit_callback_);
  exit_callback_ = nullptr;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  std::string cmd = program_;
  for (auto& w : waiters) w.future.clear_cancel_handler();
  // The callback and the waiters may destroy this Subprocess: nothing below
  // touches `this`.
  if (callback) callback(returncode);
  for (auto& w : waiters) {
    if (w.raise_error && returncode != 0) {
      w.future.set_exception(CalledProcessError(returncode, cmd));
    } else {
      w.future.set_result(returncode);
    }
  }
}

void Subprocess::reap_children(pid_t only) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  // Returns whether the child is gone (and its exit handed on).
  auto reap = [](const std::shared_ptr<detail::ChildRecord>& record) {
    int status = 0;
    pid_t got = waitpid_retrying(record->pid, &status, WNOHANG);
    if (got == 0) return false;
    int code;
    if (got < 0) {
      // ECHILD: reaped by someone else's waitpid(-1), or SIGCHLD is set to
      // SIG_IGN and the kernel reaped it. Report 0 as Python's subprocess
      // does rather than wait forever.
      log::general().warn("pid {} was reaped elsewhere ({}); its exit status is lost, reporting 0",
                             record->pid, errno_text(errno));
      code = 0;
    } else {
      code = returncode_of(status);
    }
    // Still under the lock, so the Subprocess (and its loop) cannot go away
    // between the check and add_callback, which any thread may call.
    if (record->loop) {
      record->loop->add_callback([record, code] {
        if (record->owner) record->owner->exited(code);
      });
    }
    return true;
  };
  if (only != -1) {
    auto it = r.children.find(only);
    if (it != r.children.end() && reap(it->second)) r.children.erase(it);
    return;
  }
  std::erase_if(r.children, [&](const auto& entry) { return reap(entry.second); });
}

void Subprocess::initialize() {
  IOLoop& loop = IOLoop::current();
  auto claim = std::make_unique<SignalLoopClaim>(&loop);
  if (!claim->claim()) return;
  // Destroying the handler, even when add_signal_handler throws, destroys
  // the claim, which forgets the loop.
  loop.add_signal_handler(SIGCHLD, [claim = std::move(claim)](int) { reap_children(); });
  // Children that exited before SIGCHLD was blocked raised a signal nobody kept.
  reap_children();
}

void Subprocess::uninitialize() {
  IOLoop* loop = IOLoop::current_or_null();
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    if (r.signal_loop == nullptr) return;
    if (r.signal_loop != loop) {
      throw InvalidStateError("Subprocess::uninitialize() must run on the thread of the loop that handles SIGCHLD");
    }
  }
  // Destroys the handler, whose claim forgets the loop.
  loop->remove_signal_handler(SIGCHLD);
}

}  // namespace squall::net
