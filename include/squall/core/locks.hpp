// Coordination between coroutines on one IOLoop, with Tornado's names and
// semantics (tornado.locks): Condition, Event, Semaphore, BoundedSemaphore
// and Lock. None of them is thread-safe: use each object only on the thread
// of the loop whose coroutines share it (debug builds abort otherwise).
//
//   squall::Lock lock;
//   Future<void> update(Cache& cache) {
//     auto guard = co_await lock.acquire();  // released at scope exit
//     co_await cache.refresh();
//   }
//
// Shared rules:
// - Waiters are served in FIFO order.
// - A wait can end three ways besides success: its timeout fires (a delay, or
//   a deadline on the loop's clock, as Tornado accepts both), its Future is
//   cancelled, or the FutureOr returned for it is dropped without being
//   awaited or converted. In every case the waiter leaves the queue at once
//   (O(1)) and is never handed the resource; its timer is removed when it is
//   served or leaves.
// - Handing a resource to a waiter resumes the waiting coroutine at once,
//   inside the call that handed it over (squall's Futures run their
//   continuations when set). The object may even be destroyed by the code it
//   resumes; the call notices and returns without touching it again.
// - Destroying an object abandons its waiters: their Futures never complete,
//   and coroutines suspended on them are freed (see future_state.hpp).
//   Guards and FutureOr results must not outlive the object they came from.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "squall/core/clock.hpp"
#include "squall/core/errors.hpp"
#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"

namespace squall {

template <class T>
class FutureOr;

namespace detail {

/// Tag for the waits whose FutureOr cancels them when dropped unobserved.
struct WithdrawIfDropped {
  explicit WithdrawIfDropped() = default;
};
inline constexpr WithdrawIfDropped kWithdrawIfDropped{};

/// A ready value of FutureOr<T>; `bool` for void. Moving leaves the source empty.
template <class T>
struct ReadyValue {
  std::optional<T> value;

  ReadyValue() noexcept = default;
  ReadyValue(ReadyValue&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : value(std::move(o.value)) {
    o.value.reset();
  }
  ReadyValue& operator=(ReadyValue&&) = delete;
  bool has() const noexcept { return value.has_value(); }
  template <class... A>
  void emplace(A&&... a) {
    value.emplace(std::forward<A>(a)...);
  }
};

template <>
struct ReadyValue<void> {
  bool value = false;

  ReadyValue() noexcept = default;
  ReadyValue(ReadyValue&& o) noexcept : value(std::exchange(o.value, false)) {}
  ReadyValue& operator=(ReadyValue&&) = delete;
  bool has() const noexcept { return value; }
  void emplace() noexcept { value = true; }
};

/// What `co_await` on a FutureOr<T> does: hands over the ready value without
/// suspending, or awaits the pending Future<T> exactly as `co_await
/// std::move(future)` would (cancellation included).
template <class T>
class FutureOrAwaiter {
 public:
  explicit FutureOrAwaiter(ReadyValue<T>&& ready) noexcept(std::is_nothrow_move_constructible_v<ReadyValue<T>>)
      : ready_(std::move(ready)) {}
  explicit FutureOrAwaiter(FutureState<T>* adopt) noexcept { pending_.emplace(adopt); }

  bool await_ready() const noexcept { return !pending_ || pending_->await_ready(); }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    pending_->await_suspend(h);  // may destroy this frame: nothing after it
  }
  T await_resume() {
    if (pending_) return pending_->await_resume();
    if constexpr (!std::is_void_v<T>) return T(std::move(*ready_.value));
  }

 private:
  ReadyValue<T> ready_;
  std::optional<FutureAwaiter<T, true>> pending_;
};

}  // namespace detail

/// The result of an operation that often completes at once (an uncontended
/// acquire, a get from a non-empty queue): either the value itself, held
/// without allocating, or a Future<T> (Dart's FutureOr). Like a Future it
/// belongs to its loop's thread, and the operation has already started when
/// it is returned.
///
/// - `co_await` it exactly as a Future<T>: a ready value does not suspend;
///   a pending wait suspends, rethrows its exception, and is cancelled when
///   the awaiting coroutine is. Awaiting consumes the FutureOr.
/// - Convert it with `future()` (or implicitly) where a Future<T> is needed,
///   e.g. to add a done callback or to pass it to a combinator.
/// - Dropped without being awaited or converted while its wait is pending, it
///   cancels the wait, since nobody can see the outcome: a dropped
///   `lock.acquire()` does not take the lock later, a dropped `q.get()` does
///   not swallow an item. (`Queue::put` is the exception, documented there.)
template <class T>
class [[nodiscard]] FutureOr {
 public:
  using value_type = T;

  /// Ready with the value made from `args`; no allocation.
  template <class... A>
  explicit FutureOr(std::in_place_t, A&&... args) {
    ready_.emplace(std::forward<A>(args)...);
  }
  /// Wraps `future` (pending or done); dropping the FutureOr does not cancel it.
  FutureOr(Future<T> future) noexcept  // NOLINT: implicit, as a value converts to an optional
      : state_(detail::StateRef<detail::FutureState<T>>::share(future.state())) {}
  /// Wraps a pending wait that dropping this FutureOr unobserved cancels.
  FutureOr(Future<T> future, detail::WithdrawIfDropped) noexcept
      : state_(detail::StateRef<detail::FutureState<T>>::share(future.state())), withdraw_(true) {}

  FutureOr(FutureOr&& o) noexcept(std::is_nothrow_move_constructible_v<detail::ReadyValue<T>>)
      : ready_(std::move(o.ready_)), state_(std::move(o.state_)), withdraw_(o.withdraw_) {}
  FutureOr& operator=(FutureOr&&) = delete;
  FutureOr(const FutureOr&) = delete;
  FutureOr& operator=(const FutureOr&) = delete;

  ~FutureOr() {
    if (withdraw_ && state_ && !state_->done()) {
      try {
        state_->cancel();  // runs the waiter's cancel handler: it leaves the queue
      } catch (...) {
        // Only allocation can fail here; the waiter then stays queued and is
        // served into a Future nobody reads, which is what Tornado does.
      }
    }
  }

  /// True when the result is known: a ready value, or a done Future.
  bool done() const noexcept { return ready_.has() || (state_ && state_->done()); }
  /// False once awaited or converted.
  bool valid() const noexcept { return ready_.has() || static_cast<bool>(state_); }

  /// The result as a Future<T> (allocates one if the value was ready).
  /// Consumes the FutureOr; InvalidStateError if it was already consumed.
  Future<T> future() && {
    if (state_) return Future<T>(std::move(state_));
    if (!ready_.has()) throw InvalidStateError("FutureOr was already consumed");
    if constexpr (std::is_void_v<T>) {
      ready_.value = false;
      return make_ready_future();
    } else {
      Future<T> f;
      f.set_result(std::move(*ready_.value));
      ready_.value.reset();
      return f;
    }
  }
  operator Future<T>() && { return std::move(*this).future(); }  // NOLINT: implicit on purpose

  /// Awaiting consumes the FutureOr, also as an lvalue (await it once).
  detail::FutureOrAwaiter<T> operator co_await() && { return take_awaiter(); }
  detail::FutureOrAwaiter<T> operator co_await() & { return take_awaiter(); }

 private:
  detail::FutureOrAwaiter<T> take_awaiter() {
    if (state_) return detail::FutureOrAwaiter<T>(state_.release());
    if (!ready_.has()) throw InvalidStateError("FutureOr was already consumed");
    return detail::FutureOrAwaiter<T>(std::move(ready_));
  }

  detail::ReadyValue<T> ready_;
  detail::StateRef<detail::FutureState<T>> state_;
  bool withdraw_ = false;
};

namespace detail {

/// `timeout` from now on the current loop's clock, if any.
inline std::optional<TimePoint> deadline_after(std::optional<Duration> timeout) {
  if (!timeout) return std::nullopt;
  return IOLoop::current().time() + *timeout;
}

class WaiterList;

/// Names one waiter of a WaiterList. Stays harmless after the waiter is gone:
/// every use checks the slot's generation.
struct WaiterTicket {
  WaiterList* list = nullptr;
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
};

/// The waiters of one lock, event, condition or queue: a FIFO of pending
/// Futures (type-erased states) in a slab of nodes linked by index, so
/// removing a waiter from the middle is O(1) and a steady stream of waits
/// does not allocate once the slab has grown. Each node holds one reference
/// to its state, the state's cancel handler (which removes the node) and an
/// optional timer (which removes the node and fails or resolves the state).
/// Loop thread only.
class WaiterList {
 public:
  /// What a timed-out waiter receives: TimeoutError, or `false` for a
  /// Future<bool> (Condition::wait).
  enum class OnTimeout : std::uint8_t { kTimeoutError, kResolveFalse };
  /// Destroys the payload a typed owner keeps for `slot` (a queued put's
  /// item) when a waiter leaves without being served.
  using PayloadDropper = void (*)(void* owner, std::uint32_t slot) noexcept;
  static constexpr std::uint32_t kNone = UINT32_MAX;

  /// Detects, across a loop that resumes coroutines, that the list (and so
  /// its owner) was destroyed by the code it resumed. Stack objects only.
  class Watch {
   public:
// GCC 12+ sees the early return taken when the list died and warns that the
// list keeps this stack address; the list is gone on that path, so it keeps
// nothing.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
    explicit Watch(WaiterList& list) noexcept : list_(&list), prev_(list.watch_) { list.watch_ = this; }
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
    ~Watch() {
      if (alive_) list_->watch_ = prev_;
    }
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    bool alive() const noexcept { return alive_; }

   private:
    friend class WaiterList;
    WaiterList* list_;
    Watch* prev_;
    bool alive_ = true;
  };

  explicit WaiterList(OnTimeout on_timeout = OnTimeout::kTimeoutError);
  /// Abandons the waiters left (see the top of this file).
  ~WaiterList();
  WaiterList(const WaiterList&) = delete;
  WaiterList& operator=(const WaiterList&) = delete;

  bool empty() const noexcept { return head_ == kNone; }
  std::size_t size() const noexcept { return size_; }
  /// Slots in the slab (payload arrays index by slot and must be this long).
  std::size_t slot_count() const noexcept { return nodes_.size(); }
  /// Timers armed for waiters now in the list.
  std::size_t armed_timers() const noexcept { return armed_; }

  /// Appends a waiter holding a new reference to `state`. With a deadline,
  /// arms a timer on the current loop. `tag` is the owner's to interpret.
  WaiterTicket push(FutureStateBase* state, std::optional<TimePoint> deadline, std::uint8_t tag = 0);

  /// The oldest waiter's slot and tag. Precondition: !empty().
  std::uint32_t front_slot() const noexcept { return head_; }
  std::uint8_t front_tag() const noexcept { return nodes_[head_].tag; }
  /// True if the oldest waiter was pushed before `mark()` was read.
  std::uint64_t mark() const noexcept { return next_seq_; }
  bool front_before(std::uint64_t mark) const noexcept { return head_ != kNone && nodes_[head_].seq < mark; }

  /// Takes the oldest waiter out (its timer removed, its cancel handler
  /// cleared) and returns its state for the caller to resolve. The owner's
  /// payload for front_slot() is left for the caller. Precondition: !empty().
  StateRef<FutureStateBase> pop_front() noexcept;

  /// Removes a waiter without serving it (its payload dropped); a stale
  /// ticket is ignored. What the cancel handler calls.
  void remove(WaiterTicket t) noexcept;

  /// Abandons every waiter: they leave the list first, then their states are
  /// released (which may free coroutines, whose cleanup may call back in).
  void clear() noexcept;

  void set_payload_dropper(void* owner, PayloadDropper dropper) noexcept {
    payload_owner_ = owner;
    drop_payload_ = dropper;
  }

  /// Debug builds: binds the list to the first thread that uses it and
  /// aborts when another thread does.
  void check_thread() const noexcept {
#ifndef NDEBUG
    if (owner_thread_ != current_thread_tag()) [[unlikely]]
      bind_or_abort();
#endif
  }

 private:
  struct Node {
    FutureStateBase* state = nullptr;  // one reference while the node is live
    IOLoop* loop = nullptr;            // where `timer` is armed
    TimeoutHandle timer;
    std::uint64_t seq = 0;
    std::uint32_t prev = kNone;
    std::uint32_t next = kNone;  // also the free list's link
    std::uint32_t generation = 0;
    std::uint8_t tag = 0;
    bool live = false;
  };
  class TimerCallback;

  bool is_current(WaiterTicket t) const noexcept {
    return t.slot < nodes_.size() && nodes_[t.slot].live && nodes_[t.slot].generation == t.generation;
  }
  void expire(WaiterTicket t);
  void timer_dropped(WaiterTicket t) noexcept;
  /// Unlinks `slot`, removes its timer and frees it; returns its state
  /// reference (still counted) with its cancel handler cleared.
  FutureStateBase* detach(std::uint32_t slot) noexcept;
  void drop_payload(std::uint32_t slot) noexcept {
    if (drop_payload_) drop_payload_(payload_owner_, slot);
  }
#ifndef NDEBUG
  void bind_or_abort() const noexcept;
  mutable std::uintptr_t owner_thread_ = 0;
#endif

  std::vector<Node> nodes_;
  std::uint32_t head_ = kNone;
  std::uint32_t tail_ = kNone;
  std::uint32_t free_ = kNone;
  std::size_t size_ = 0;
  std::size_t armed_ = 0;
  std::uint64_t next_seq_ = 0;
  Watch* watch_ = nullptr;
  void* payload_owner_ = nullptr;
  PayloadDropper drop_payload_ = nullptr;
  OnTimeout on_timeout_;
};

class SemaphoreCore;

}  // namespace detail

/// What `co_await sem.acquire()` and `co_await lock.acquire()` give (Tornado's
/// _ReleasingContextManager): owns one permit and releases it when destroyed,
/// also when an exception unwinds. Move-only; the Semaphore or Lock must
/// outlive it. Loop thread only.
class [[nodiscard]] ReleasingGuard {
 public:
  /// Owns nothing.
  ReleasingGuard() noexcept = default;
  ReleasingGuard(ReleasingGuard&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  ReleasingGuard& operator=(ReleasingGuard&& o) noexcept {
    if (this != &o) {
      release();
      core_ = std::exchange(o.core_, nullptr);
    }
    return *this;
  }
  ~ReleasingGuard() { release(); }

  /// Releases the permit now (once; later calls do nothing). Never throws: a
  /// permit already given back by hand is logged to squall.application.
  void release() noexcept;
  /// True while the guard holds a permit.
  bool owns() const noexcept { return core_ != nullptr; }
  explicit operator bool() const noexcept { return owns(); }

 private:
  friend class Semaphore;
  friend class Lock;
  friend class detail::SemaphoreCore;
  explicit ReleasingGuard(detail::SemaphoreCore* core) noexcept : core_(core) {}

  detail::SemaphoreCore* core_ = nullptr;
};

namespace detail {

/// The counter and waiters behind Semaphore, BoundedSemaphore and Lock
/// (Tornado's Lock is a BoundedSemaphore(1) too).
class SemaphoreCore {
 public:
  enum class Kind : std::uint8_t { kSemaphore, kBounded, kLock };

  SemaphoreCore(int value, Kind kind);
  SemaphoreCore(const SemaphoreCore&) = delete;
  SemaphoreCore& operator=(const SemaphoreCore&) = delete;

  int value() const noexcept { return value_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

  /// Takes a permit if one is free and nobody queues for it (the fast path:
  /// no allocation). Queued waiters come first, so a holder that releases and
  /// acquires again goes behind them.
  bool try_acquire() noexcept {
    waiters_.check_thread();
    if (value_ > 0 && waiters_.empty()) {
      --value_;
      return true;
    }
    return false;
  }
  /// Queues a waiter (the slow path).
  FutureOr<ReleasingGuard> enqueue(std::optional<TimePoint> deadline);

  /// Gives a permit back and hands it to the oldest waiter, if any.
  /// InvalidStateError for a bounded semaphore or lock released too often.
  void release() {
    waiters_.check_thread();
    if (kind_ != Kind::kSemaphore && value_ >= initial_) throw_released_too_often();
    ++value_;
    if (!waiters_.empty()) dispatch();
  }
  /// release() for guards: logs instead of throwing.
  void release_from_guard() noexcept {
    waiters_.check_thread();
    if (kind_ != Kind::kSemaphore && value_ >= initial_) [[unlikely]] {
      log_released_too_often();
      return;
    }
    ++value_;
    if (!waiters_.empty()) dispatch();
  }

 private:
  void dispatch() noexcept;
  [[noreturn]] void throw_released_too_often() const;
  void log_released_too_often() const noexcept;

  int value_;
  int initial_;
  Kind kind_;
  bool dispatching_ = false;
  // Last, so it is destroyed first: waiters abandoned by the destructor may
  // release guards into the fields above while it runs.
  WaiterList waiters_;
};

}  // namespace detail

inline void ReleasingGuard::release() noexcept {
  if (detail::SemaphoreCore* core = std::exchange(core_, nullptr)) core->release_from_guard();
}

/// Tornado's Condition: coroutines wait until another one notifies them.
/// Loop thread only.
///
///   squall::Condition cond;
///   Future<void> waiter() { co_await cond.wait(); ... }
///   void notifier() { cond.notify(); }
class Condition {
 public:
  Condition();
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// Waits for notify(): resolves to true when notified, false if `timeout`
  /// (a delay from now) or `deadline` (the loop's clock) passes first.
  FutureOr<bool> wait(std::optional<Duration> timeout = std::nullopt) {
    return enqueue(detail::deadline_after(timeout));
  }
  FutureOr<bool> wait(TimePoint deadline) { return enqueue(deadline); }

  /// Wakes the `n` oldest waiters (fewer if fewer wait). Waiters that start
  /// waiting while this runs (a woken coroutine waiting again) are not woken
  /// by it.
  void notify(std::size_t n = 1);
  /// Wakes every waiter that waits now.
  void notify_all();
  /// How many coroutines wait.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  FutureOr<bool> enqueue(std::optional<TimePoint> deadline);

  detail::WaiterList waiters_;
};

/// Tornado's Event: a flag coroutines can wait for. Starts clear.
/// Loop thread only.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const noexcept { return value_; }
  /// Sets the flag and wakes every waiter. Does nothing if already set.
  void set();
  /// Clears the flag: later wait() calls wait again.
  void clear() noexcept { value_ = false; }

  /// Resolves when the flag is set (at once, without allocating, if it is);
  /// TimeoutError if `timeout` (a delay) or `deadline` passes first.
  FutureOr<void> wait(std::optional<Duration> timeout = std::nullopt) {
    waiters_.check_thread();
    if (value_) return FutureOr<void>(std::in_place);
    return enqueue(detail::deadline_after(timeout));
  }
  FutureOr<void> wait(TimePoint deadline) {
    waiters_.check_thread();
    if (value_) return FutureOr<void>(std::in_place);
    return enqueue(deadline);
  }
  /// How many coroutines wait.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  FutureOr<void> enqueue(std::optional<TimePoint> deadline);

  bool value_ = false;
  detail::WaiterList waiters_;
};

/// Tornado's Semaphore: a counter of permits. acquire() takes one, waiting
/// while there is none; release() gives one back. Releasing more than was
/// acquired simply adds permits (see BoundedSemaphore). Loop thread only.
///
///   squall::Semaphore sem(2);  // at most two fetches at a time
///   Future<void> fetch(std::string url) {
///     auto guard = co_await sem.acquire();
///     co_await do_fetch(url);
///   }                                  // the permit is released here
class Semaphore {
 public:
  using Guard = ReleasingGuard;

  /// std::invalid_argument if `value` is negative.
  explicit Semaphore(int value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes a permit: ready at once (no allocation) if one is free and nobody
  /// waits, else queued behind the other waiters. TimeoutError if `timeout`
  /// (a delay) or `deadline` passes first. The guard releases the permit.
  FutureOr<Guard> acquire(std::optional<Duration> timeout = std::nullopt) {
    if (core_.try_acquire()) return FutureOr<Guard>(std::in_place, Guard(&core_));
    return core_.enqueue(detail::deadline_after(timeout));
  }
  FutureOr<Guard> acquire(TimePoint deadline) {
    if (core_.try_acquire()) return FutureOr<Guard>(std::in_place, Guard(&core_));
    return core_.enqueue(deadline);
  }
  /// Gives a permit back (to the oldest waiter, if any). Prefer the guard.
  void release() { core_.release(); }

  /// Free permits now.
  int value() const noexcept { return core_.value(); }
  /// How many coroutines wait for a permit.
  std::size_t waiting() const noexcept { return core_.waiting(); }

 protected:
  Semaphore(int value, detail::SemaphoreCore::Kind kind);

 private:
  detail::SemaphoreCore core_;
};

/// Tornado's BoundedSemaphore: a Semaphore whose release() throws
/// InvalidStateError when it would exceed the initial value.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(int value = 1);
};

/// Tornado's Lock: one holder at a time, the others wait in FIFO order.
/// Not reentrant: a holder that acquires again waits for itself.
/// Loop thread only.
///
///   auto guard = co_await lock.acquire();  // released at scope exit
class Lock {
 public:
  using Guard = ReleasingGuard;

  Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  /// Takes the lock: ready at once (no allocation) if it is free, else
  /// queued. TimeoutError if `timeout` (a delay) or `deadline` passes first.
  FutureOr<Guard> acquire(std::optional<Duration> timeout = std::nullopt) {
    if (core_.try_acquire()) return FutureOr<Guard>(std::in_place, Guard(&core_));
    return core_.enqueue(detail::deadline_after(timeout));
  }
  FutureOr<Guard> acquire(TimePoint deadline) {
    if (core_.try_acquire()) return FutureOr<Guard>(std::in_place, Guard(&core_));
    return core_.enqueue(deadline);
  }
  /// Unlocks, handing the lock to the oldest waiter. InvalidStateError if it
  /// is not locked. Prefer the guard.
  void release() { core_.release(); }

  bool locked() const noexcept { return core_.value() == 0; }
  /// How many coroutines wait for the lock.
  std::size_t waiting() const noexcept { return core_.waiting(); }

 private:
  detail::SemaphoreCore core_;
};

}  // namespace squall
