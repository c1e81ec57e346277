#include "squall/core/ioloop.hpp"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <system_error>

#include "core/fd_table.hpp"
#include "core/signal_set.hpp"
#include "core/timer_queue.hpp"
#include "squall/core/executor.hpp"
#include "squall/core/log.hpp"

namespace squall {

namespace {

constinit thread_local IOLoop* tls_current = nullptr;
thread_local std::unique_ptr<IOLoop> tls_owned;  // the loop current() created

constexpr std::uint64_t kWakeToken = ~std::uint64_t{0};
constexpr int kMaxEvents = 256;
// While callbacks are ready the loop may skip the non-blocking epoll_wait
// (a syscall, 200 ns on a VM: more than a callback hand-off) until this many
// callbacks ran since the last poll. Tokio polls its I/O driver every 61
// tasks for the same reason; a batch of this size or more polls every time.
constexpr std::size_t kCallbacksPerPoll = 64;
// Destroying pending callbacks at close can queue more; give up after this.
constexpr int kMaxCloseRounds = 64;

std::uint32_t to_epoll(std::uint32_t events) noexcept {
  std::uint32_t out = 0;
  if (events & IOLoop::READ) out |= EPOLLIN;
  if (events & IOLoop::WRITE) out |= EPOLLOUT;
  if (events & IOLoop::EDGE) out |= EPOLLET;
  if (events & IOLoop::PEER_CLOSED) out |= EPOLLRDHUP;
  return out;  // EPOLLERR and EPOLLHUP are always reported
}

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

IOLoop::IOLoop() : IOLoop(Options{}) {}

IOLoop::IOLoop(Options options)
    : clock_(std::move(options.clock)),
      fds_(std::make_unique<FdTable>()),
      timers_(std::make_unique<TimerQueue>()),
      owner_(std::this_thread::get_id()) {
  epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_) throw_errno("epoll_create1");
  wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) throw_errno("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeToken;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev) != 0) throw_errno("epoll_ctl(eventfd)");
  ready_.reserve(64);
  running_callbacks_.reserve(64);
  if (options.make_current && tls_current == nullptr) tls_current = this;
}

IOLoop::~IOLoop() {
  if (!closed_) close();
  if (tls_current == this) tls_current = nullptr;
}

IOLoop& IOLoop::current() {
  if (tls_current) return *tls_current;
  tls_owned = std::make_unique<IOLoop>();
  tls_current = tls_owned.get();
  return *tls_current;
}

IOLoop* IOLoop::current_or_null() noexcept { return tls_current; }
void IOLoop::make_current() noexcept { tls_current = this; }
void IOLoop::clear_current() noexcept {
  if (tls_current == this) tls_current = nullptr;
}

TimePoint IOLoop::time() const noexcept { return clock_ ? clock_->now() : SteadyClock::now(); }

void IOLoop::abort_not_in_loop_thread() const noexcept {
  std::ostringstream msg;
  msg << "squall: IOLoop " << static_cast<const void*>(this) << " belongs to thread "
      << owner_.load(std::memory_order_relaxed) << " but was called from thread " << std::this_thread::get_id();
  std::fprintf(stderr, "%s\n", msg.str().c_str());
  std::abort();
}

// --- running ---------------------------------------------------------------------

void IOLoop::start() {
  if (closed_) throw InvalidStateError("IOLoop is closed");
  if (running_) throw InvalidStateError("IOLoop is already running");
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  IOLoop* previous = tls_current;
  tls_current = this;
  running_ = true;
  running_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  struct Reset {
    IOLoop* loop;
    IOLoop* previous;
    ~Reset() {
      loop->running_thread_.store(std::thread::id(), std::memory_order_relaxed);
      loop->running_ = false;
      loop->callback_time_valid_ = false;
      loop->stopping_ = false;
      tls_current = previous ? previous : loop;
    }
  } reset{this, previous};
  for (;;) {
    run_iteration(true);
    if (stopping_) break;
  }
}

void IOLoop::stop() {
  assert_in_loop_thread();
  stopping_ = true;
}

void IOLoop::run_iteration(bool may_block) {
  TimePoint deadline{};
  bool has_timer = timers_->next_deadline(deadline);
  bool is_virtual = clock_ && clock_->is_virtual();
  int timeout_ms = -1;
  if (!ready_.empty() || stopping_ || !may_block) {
    timeout_ms = 0;
  } else if (has_timer) {
    if (is_virtual) {
      timeout_ms = 0;
    } else {
      auto wait = deadline - time();
      if (wait <= Duration::zero()) {
        timeout_ms = 0;
      } else {
        // Round up: waking early would spin until the deadline.
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
        timeout_ms = ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
      }
    }
  }

  epoll_event events[kMaxEvents];
  int n = 0;
  if (ready_.empty() || callbacks_since_poll_ >= kCallbacksPerPoll) {
    callbacks_since_poll_ = 0;
    n = ::epoll_wait(epoll_fd_.get(), events, kMaxEvents, timeout_ms);
    if (n < 0) {
      if (errno != EINTR) throw_errno("epoll_wait");
      n = 0;
    }
  }
  if (n > 0) {
    for (int i = 0; i < n; ++i) {
      std::uint64_t data = events[i].data.u64;
      if (data == kWakeToken) {
        drain_remote();
        continue;
      }
      FdTable::Entry* entry = fds_->find_live(data);
      if (!entry) continue;  // removed by an earlier handler in this batch
      int fd = static_cast<int>(data & 0xffffffffu);
      std::uint32_t generation = entry->generation;
      // Out of the table for the call, so the handler may remove itself
      // (fd_table.hpp); `entry` is not used after it.
      Handler handler = FdTable::take_for_dispatch(*entry);
      if (!handler) continue;  // already running (a nested loop)
      callback_time_valid_ = false;
      try {
        handler(fd, events[i].events);
      } catch (...) {
        log::app().error("Exception in I/O handler for fd {}: {}", fd, describe_current_exception());
      }
      fds_->restore_after_dispatch(fd, generation, handler);
    }
  }

  if (is_virtual && n == 0 && ready_.empty() && has_timer) clock_->advance_to(deadline);

  std::vector<Callback> due;
  if (timers_->live() > 0) timers_->pop_due(time(), due);

  running_callbacks_.swap(ready_);
  callbacks_since_poll_ += running_callbacks_.size() + due.size();
  if (blocking_threshold_ == Duration::zero()) {
    // The common case, inline: no call and no clock reads around each
    // callback (run_callback is for the blocking-time check).
    for (auto& cb : running_callbacks_) {
      callback_time_valid_ = false;
      try {
        cb();
      } catch (...) {
        log::app().error("Exception in callback: {}", describe_current_exception());
      }
      cb = nullptr;
    }
  } else {
    for (auto& cb : running_callbacks_) run_callback(cb, "callback");
  }
  running_callbacks_.clear();
  for (auto& cb : due) run_callback(cb, "timer callback");
}

void IOLoop::run_callback(Callback& cb, const char* what) noexcept {
  callback_time_valid_ = false;
  TimePoint started{};
  bool timed = blocking_threshold_ > Duration::zero();
  if (timed) started = SteadyClock::now();
  try {
    cb();
  } catch (...) {
    log::app().error("Exception in {}: {}", what, describe_current_exception());
  }
  if (timed) {
    auto took = SteadyClock::now() - started;
    if (took > blocking_threshold_) {
      log::general().warn("Blocking {} took {:.3f} ms", what,
                             std::chrono::duration<double, std::milli>(took).count());
    }
  }
  cb = nullptr;
}

void IOLoop::log_if_failed(std::exception_ptr e) noexcept {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
  } catch (...) {
    log::app().error("Exception in callback: {}", describe_current_exception());
  }
}

// --- callbacks --------------------------------------------------------------------

void IOLoop::add_callback(Callback cb) {
  // Only the thread inside start() may skip the lock: a loop built on one
  // thread and started on another must not share ready_ unlocked.
  if (running_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    ready_.push_back(std::move(cb));
    return;
  }
  std::lock_guard lock(remote_mutex_);
  bool was_empty = remote_.empty();
  remote_.push_back(std::move(cb));
  // Only a callback that finds the queue empty wakes the loop; later ones
  // ride on its wake-up, because drain_remote reads the eventfd before it
  // takes the whole queue under the lock (libuv's and asio's scheme). The
  // wake happens under the lock: once the loop can take the callback (a
  // stop(), after which the loop may be destroyed), this thread is done.
  if (was_empty) wake();
}

void IOLoop::wake() noexcept {
  std::uint64_t one = 1;
  waking_.store(true, std::memory_order_relaxed);
  // A full counter (EAGAIN) still leaves the fd readable: nothing is lost.
  [[maybe_unused]] auto rc = ::write(wake_fd_.get(), &one, sizeof one);
  waking_.store(false, std::memory_order_relaxed);
}

void IOLoop::drain_remote() {
  std::uint64_t count;
  // Read before taking the queue: a producer that pushes after the swap
  // finds it empty and wakes us again.
  [[maybe_unused]] auto rc = ::read(wake_fd_.get(), &count, sizeof count);
  // The waker is still inside write(): our wake-up preempted it on a shared
  // CPU, and draining now would take one callback per pair of context
  // switches. Let it finish its burst first, as libuv's loop does when it
  // finds a uv_async_send half done (uv__async_spin). Only a hint: nothing
  // depends on it for correctness.
  if (waking_.load(std::memory_order_relaxed)) sched_yield();
  std::lock_guard lock(remote_mutex_);
  if (ready_.empty()) {
    ready_.swap(remote_);
  } else {
    for (auto& cb : remote_) ready_.push_back(std::move(cb));
    remote_.clear();
  }
}

// --- fds ------------------------------------------------------------------------------

void IOLoop::add_handler(int fd, std::uint32_t events, Handler handler) {
  assert_in_loop_thread();
  if (fds_->find(fd)) throw std::invalid_argument("add_handler: fd " + std::to_string(fd) + " already has a handler");
  FdTable::Entry& entry = fds_->add(fd, events, std::move(handler));
  epoll_event ev{};
  ev.events = to_epoll(events);
  ev.data.u64 = FdTable::user_data(fd, entry);
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    fds_->remove(fd);
    throw std::system_error(err, std::generic_category(), "epoll_ctl(ADD)");
  }
}

void IOLoop::update_handler(int fd, std::uint32_t events) {
  assert_in_loop_thread();
  FdTable::Entry* entry = fds_->find(fd);
  if (!entry) throw std::invalid_argument("update_handler: fd " + std::to_string(fd) + " has no handler");
  if (entry->events == events) return;
  epoll_event ev{};
  ev.events = to_epoll(events);
  ev.data.u64 = FdTable::user_data(fd, *entry);
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) throw_errno("epoll_ctl(MOD)");
  entry->events = events;
}

void IOLoop::remove_handler(int fd) {
  assert_in_loop_thread();
  if (!fds_->find(fd)) return;
  // Fails harmlessly (EBADF) when the fd was closed first.
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  fds_->remove(fd);
}

// --- timers ---------------------------------------------------------------------------

TimeoutHandle IOLoop::call_at(TimePoint when, Callback cb) {
  assert_in_loop_thread();
  return timers_->add(when, std::move(cb));
}

TimeoutHandle IOLoop::call_later(Duration delay, Callback cb) {
  assert_in_loop_thread();
  return timers_->add(callback_time() + delay, std::move(cb));
}

TimePoint IOLoop::callback_time() noexcept {
  // A clock read costs 20 ns on a VM, as much as the rest of arming a timer.
  // Only the steady clock is cached: a test's virtual clock may be moved by
  // the callback itself, and outside the loop there is no callback to bound
  // the staleness.
  if (clock_ || !running_) return time();
  if (!callback_time_valid_) {
    callback_time_ = SteadyClock::now();
    callback_time_valid_ = true;
  }
  return callback_time_;
}

void IOLoop::remove_timeout(TimeoutHandle handle) noexcept {
  assert_in_loop_thread();
  if (handle.valid()) timers_->remove(handle);
}

// --- signals ---------------------------------------------------------------------------

void IOLoop::add_signal_handler(int signo, UniqueFunction<void(int)> fn) {
  assert_in_loop_thread();
  bool fresh = !signals_;
  if (fresh) signals_ = std::make_unique<SignalSet>();
  signals_->add(signo, std::move(fn));
  if (fresh) {
    add_handler(signals_->fd(), READ, [this](int, std::uint32_t) {
      signals_->drain([this](int s) {
        if (auto* handler = signals_ ? signals_->find(s) : nullptr) {
          try {
            (*handler)(s);
          } catch (...) {
            log::app().error("Exception in signal handler for {}: {}", s, describe_current_exception());
          }
        }
      });
    });
  }
}

void IOLoop::remove_signal_handler(int signo) {
  assert_in_loop_thread();
  if (!signals_) return;
  signals_->remove(signo);
  if (signals_->empty()) {
    remove_handler(signals_->fd());
    signals_.reset();
  }
}

// --- executors ---------------------------------------------------------------------------

Executor& IOLoop::default_executor() {
  if (!default_executor_) {
    unsigned cpus = std::thread::hardware_concurrency();
    // Python's default: min(32, cpus + 4).
    default_executor_ = std::make_unique<ThreadPoolExecutor>(std::min(32u, (cpus ? cpus : 1) + 4));
  }
  return *default_executor_;
}

void IOLoop::execute_on(Executor* executor, Callback job) {
  assert_in_loop_thread();
  (executor ? *executor : default_executor()).execute(std::move(job));
}

// --- run_sync -----------------------------------------------------------------------------

void IOLoop::begin_run_sync() {
  if (running_) throw InvalidStateError("run_sync: the IOLoop is already running");
  if (closed_) throw InvalidStateError("run_sync: the IOLoop is closed");
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

void IOLoop::end_run_sync_unfinished(bool timed_out, Duration timeout) {
  if (timed_out) {
    throw TimeoutError("Operation timed out after " +
                       std::to_string(std::chrono::duration<double>(timeout).count()) + " seconds");
  }
  throw InvalidStateError("Event loop stopped before Future completed");
}

// --- closing ------------------------------------------------------------------------------

void IOLoop::add_close_callback(UniqueFunction<void()> fn) {
  assert_in_loop_thread();
  close_callbacks_.push_back(std::move(fn));
}

void IOLoop::close(bool all_fds) {
  if (closed_) return;
  if (running_) throw InvalidStateError("close: the IOLoop is running");
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  // Per-loop singletons go first, while their fds and timers can still be
  // removed properly. A callback may add another; each runs once.
  for (std::size_t i = 0; i < close_callbacks_.size(); ++i) {
    auto fn = std::move(close_callbacks_[i]);
    run_callback(fn, "a close callback");
  }
  close_callbacks_.clear();
  closed_ = true;
  if (default_executor_) default_executor_->shutdown(true);
  if (signals_) {
    remove_handler(signals_->fd());
    signals_.reset();
  }
  if (all_fds) {
    for (int fd : fds_->fds()) ::close(fd);
  }
  // Destroying a pending callback or timer can free a coroutine whose
  // cleanup schedules more work; repeat until nothing is left.
  for (int round = 0; round < kMaxCloseRounds; ++round) {
    timers_->clear();
    std::vector<Callback> dead;
    dead.swap(ready_);
    {
      std::lock_guard lock(remote_mutex_);
      for (auto& cb : remote_) dead.push_back(std::move(cb));
      remote_.clear();
    }
    if (dead.empty() && timers_->live() == 0) break;
    dead.clear();
  }
  fds_->clear();
  default_executor_.reset();
  if (tls_current == this) tls_current = nullptr;
}

}  // namespace squall
