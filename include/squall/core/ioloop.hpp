// IOLoop: one epoll-based event loop per thread, Tornado's API in C++.
// Every method is for the loop's own thread only, except add_callback, which
// any thread may call (it wakes the loop through an eventfd). Debug builds
// abort when another thread calls a loop-affine method, naming both threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"
#include "squall/core/unique_fd.hpp"

namespace squall {

class Executor;
class TimerQueue;
class FdTable;
class SignalSet;

/// Names a scheduled timer; remove it with IOLoop::remove_timeout.
/// Stale handles (fired or removed) are ignored safely.
struct TimeoutHandle {
  std::uint32_t slot = UINT32_MAX;
  std::uint32_t generation = 0;
  bool valid() const noexcept { return slot != UINT32_MAX; }
};

class IOLoop {
 public:
  /// Event bits, with Tornado's (and epoll's) values.
  static constexpr std::uint32_t READ = 0x001;
  static constexpr std::uint32_t WRITE = 0x004;
  static constexpr std::uint32_t ERROR = 0x018;
  /// The peer shut its side down (EPOLLRDHUP): lets a stream notice a close
  /// without reading unrequested data.
  static constexpr std::uint32_t PEER_CLOSED = 0x2000;
  /// Edge-triggered registration (EPOLLET), for streams that read to EAGAIN.
  static constexpr std::uint32_t EDGE = 1u << 31;

  using Handler = UniqueFunction<void(int fd, std::uint32_t events)>;

  struct Options {
    /// Null: the steady clock. A VirtualClock makes idle time jump to the
    /// next timer (see clock.hpp).
    std::shared_ptr<LoopClock> clock = nullptr;
    /// Makes this loop the thread's current one if the thread has none.
    bool make_current = true;
  };

  IOLoop();
  explicit IOLoop(Options options);
  IOLoop(const IOLoop&) = delete;
  IOLoop& operator=(const IOLoop&) = delete;
  /// Closes the loop if close() was not called.
  ~IOLoop();

  /// The calling thread's loop, created on first use (thread-local).
  static IOLoop& current();
  /// The calling thread's loop or null; never creates one.
  static IOLoop* current_or_null() noexcept;
  /// Makes this loop current for the calling thread.
  void make_current() noexcept;
  /// Stops being the calling thread's current loop.
  void clear_current() noexcept;

  /// Runs until stop(). The calling thread becomes the loop's thread.
  /// If stop() was called before start(), runs one iteration and returns.
  void start();
  /// Makes start() return after the current iteration. Loop thread only;
  /// from another thread use add_callback([&loop] { loop.stop(); }).
  void stop();
  bool running() const noexcept { return running_; }

  /// Releases the epoll and eventfd descriptors, shuts the default executor
  /// down, and destroys pending callbacks and timers (which frees coroutines
  /// that waited on them). With `all_fds`, also closes every registered fd.
  void close(bool all_fds = false);
  bool closed() const noexcept { return closed_; }
  /// Runs `fn` once when the loop closes, at the start of close() while the
  /// loop still works (handlers and timers may be removed), in the order
  /// added. For per-loop singletons of higher layers, such as
  /// AsyncHTTPClient::instance(), which must not outlive their loop.
  /// Loop thread only.
  void add_close_callback(UniqueFunction<void()> fn);

  /// The loop's monotonic time (the clock given in Options).
  TimePoint time() const noexcept;

  // --- file descriptors ---------------------------------------------------
  /// Calls `handler(fd, events)` whenever `fd` is ready for `events`.
  /// A handler may remove itself or any other handler while running.
  void add_handler(int fd, std::uint32_t events, Handler handler);
  void update_handler(int fd, std::uint32_t events);
  void remove_handler(int fd);

  // --- callbacks ------------------------------------------------------------
  /// Runs `cb` on the loop's thread in the next iteration. Thread-safe.
  /// Callbacks added while callbacks run wait for the next iteration. While
  /// callbacks keep coming, file descriptors are polled at least once every
  /// 64 callbacks (as Tokio polls its driver every 61 tasks), so I/O is never
  /// starved and a chain of hand-offs does not pay a syscall per link.
  void add_callback(Callback cb);

  /// Calls `fn()` on the next iteration; if it returns a Future, a failure is
  /// logged rather than lost. Loop thread only.
  template <class F>
  void spawn_callback(F fn) {
    add_callback([fn = std::move(fn)]() mutable {
      if constexpr (FutureLike<std::invoke_result_t<F&>>) {
        auto f = fn();
        f.add_done_callback([](auto done) { log_if_failed(done.exception()); });
      } else {
        fn();
      }
    });
  }

  /// Runs `cb(future)` on the loop once `future` is done.
  template <class T, class F>
  void add_future(Future<T> future, F cb) {
    future.add_done_callback([this, cb = std::move(cb)](Future<T> done) mutable {
      add_callback([cb = std::move(cb), done = std::move(done)]() mutable { cb(std::move(done)); });
    });
  }

  // --- timers -----------------------------------------------------------------
  /// Runs `cb` at `when` (loop time). Equal deadlines run in the order added.
  TimeoutHandle call_at(TimePoint when, Callback cb);
  /// Runs `cb` after `delay`. On the loop's steady clock the delay counts
  /// from the clock's first reading in the running callback (one reading per
  /// callback, however many timers it arms; libuv reads it once per
  /// iteration), so it may start up to that callback's own run time early.
  TimeoutHandle call_later(Duration delay, Callback cb);
  /// Tornado's add_timeout: a deadline or a delay.
  TimeoutHandle add_timeout(TimePoint when, Callback cb) { return call_at(when, std::move(cb)); }
  TimeoutHandle add_timeout(Duration delay, Callback cb) { return call_later(delay, std::move(cb)); }
  /// Cancels a timer; a handle that already fired or was removed is ignored.
  void remove_timeout(TimeoutHandle handle) noexcept;

  // --- signals ----------------------------------------------------------------
  /// Runs `fn(signo)` as an ordinary loop callback when `signo` arrives.
  /// The signal is blocked in the calling thread and read from a signalfd;
  /// block it in every thread (before starting threads) so a process-directed
  /// signal cannot be delivered elsewhere.
  void add_signal_handler(int signo, UniqueFunction<void(int)> fn);
  void remove_signal_handler(int signo);

  // --- executors ----------------------------------------------------------
  /// Runs `fn()` on `executor` (null: the loop's default thread pool) and
  /// resolves the returned Future on this loop's thread. The work itself
  /// cannot be interrupted: cancel() abandons its result.
  /// The loop must outlive the work.
  template <class F>
  auto run_in_executor(Executor* executor, F fn) -> Future<std::invoke_result_t<F&>>;
  /// The default executor (created on first use, shut down by close()).
  Executor& default_executor();

  // --- running a coroutine to completion ----------------------------------
  /// Starts the loop, runs `fn()` (returning a Future or a value) to
  /// completion, stops the loop and returns its result or rethrows its
  /// exception. With a timeout, cancels the work and throws TimeoutError.
  template <class F>
  auto run_sync(F fn, std::optional<Duration> timeout = std::nullopt);

  /// Logs a warning naming the callback when one runs longer than
  /// `threshold` (zero turns the check off).
  void set_blocking_log_threshold(Duration threshold) noexcept { blocking_threshold_ = threshold; }

  /// Debug builds: aborts unless called on the loop's thread.
  void assert_in_loop_thread() const noexcept {
#ifndef NDEBUG
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) abort_not_in_loop_thread();
#endif
  }
  bool in_loop_thread() const noexcept { return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id(); }

  /// Logs an exception that escaped a callback (squall.application).
  static void log_if_failed(std::exception_ptr e) noexcept;

 private:
  template <class T>
  static Future<T> as_future(T&& value);
  void run_iteration(bool may_block);
  void run_callback(Callback& cb, const char* what) noexcept;
  TimePoint callback_time() noexcept;
  void drain_remote();
  void wake() noexcept;
  void execute_on(Executor* executor, Callback job);
  [[noreturn]] void abort_not_in_loop_thread() const noexcept;
  void begin_run_sync();
  [[noreturn]] void end_run_sync_unfinished(bool timed_out, Duration timeout);

  std::shared_ptr<LoopClock> clock_;
  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;
  std::unique_ptr<FdTable> fds_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<SignalSet> signals_;
  std::vector<Callback> ready_;
  std::vector<Callback> running_callbacks_;
  std::mutex remote_mutex_;
  std::vector<Callback> remote_;
  std::atomic<bool> waking_{false};  // a producer is inside wake()
  std::atomic<std::thread::id> owner_;
  /// The thread inside start(), if any: the only one that may queue a
  /// callback without taking remote_mutex_.
  std::atomic<std::thread::id> running_thread_{};
  std::unique_ptr<Executor> default_executor_;
  std::vector<UniqueFunction<void()>> close_callbacks_;  // add_close_callback
  Duration blocking_threshold_{};
  // Callbacks run since the last epoll_wait (see kCallbacksPerPoll).
  std::size_t callbacks_since_poll_ = 0;
  // call_later's "now": read at most once per callback (see call_later).
  TimePoint callback_time_{};
  bool callback_time_valid_ = false;
  bool running_ = false;
  bool stopping_ = false;
  bool closed_ = false;
};

// --- templates -----------------------------------------------------------------

template <class F>
auto IOLoop::run_in_executor(Executor* executor, F fn) -> Future<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  Future<R> future;
  // The worker never touches the future's (non-atomic) reference count: the
  // reference travels by move into the callback that comes back here.
  auto job = [this, fn = std::move(fn), target = detail::StateRef<detail::FutureState<R>>::share(future.state())]() mutable {
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        value.emplace(true);
      } else {
        value.emplace(fn());
      }
    } catch (...) {
      error = std::current_exception();
    }
    add_callback([target = std::move(target), value = std::move(value), error = std::move(error)]() mutable {
      if (target->done()) return;  // cancelled meanwhile
      if (error) {
        target->set_exception(std::move(error));
      } else if constexpr (std::is_void_v<R>) {
        target->set_result();
      } else {
        target->set_result(std::move(*value));
      }
    });
  };
  execute_on(executor, Callback(std::move(job)));
  return future;
}

template <class F>
auto IOLoop::run_sync(F fn, std::optional<Duration> timeout) {
  begin_run_sync();
  auto future = [&] {
    using R = std::invoke_result_t<F&>;
    if constexpr (FutureLike<R>) {
      return fn();
    } else if constexpr (std::is_void_v<R>) {
      fn();
      return make_ready_future();
    } else {
      return make_ready_future(fn());
    }
  }();
  bool timed_out = false;
  TimeoutHandle timer;
  if (!future.done()) {
    future.add_done_callback([this] { stop(); });
    if (timeout) {
      timer = call_later(*timeout, [this, &timed_out, f = future]() mutable {
        timed_out = !f.done();
        f.cancel();
        stop();
      });
    }
    start();
    remove_timeout(timer);
  }
  if (!future.done() || timed_out) {
    // Retrieve the cancellation so it is not logged as lost.
    if (future.done()) (void)future.exception();
    end_run_sync_unfinished(timed_out, timeout.value_or(Duration::zero()));
  }
  if constexpr (std::is_void_v<typename decltype(future)::value_type>) {
    future.result();
  } else {
    return std::move(future.result());
  }
}

}  // namespace squall
