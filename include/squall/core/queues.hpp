// Queues for coroutines on one IOLoop, with Tornado's names and semantics
// (tornado.queues): Queue (FIFO), PriorityQueue (lowest first) and LifoQueue,
// plus asyncio's shutdown() so consumers can leave their loop. None of them
// is thread-safe: use a queue only on its loop's thread (debug builds abort
// otherwise). The waiting rules of locks.hpp apply: FIFO waiters, timeouts,
// cancellation, and FutureOr results.
//
// Tornado's producer/consumer example, in squall:
//
//   squall::Queue<int> q(2);
//
//   Future<void> consumer() {
//     while (auto item = co_await q.next()) {  // std::nullopt once shut down
//       std::printf("Doing work on %d\n", *item);
//       co_await sleep(10ms);
//       q.task_done();
//     }
//   }
//
//   Future<void> producer() {
//     for (int item = 0; item < 5; ++item) {
//       co_await q.put(item);
//       std::printf("Put %d\n", item);
//     }
//   }
//
//   Future<void> main_coro() {
//     // Start the consumer without waiting (it runs until the shutdown).
//     IOLoop::current().spawn_callback(consumer);
//     co_await producer();  // wait for the producer to put all tasks
//     co_await q.join();    // wait for the consumer to finish them all
//     std::printf("Done\n");
//     q.shutdown();         // ends the consumer's loop
//   }
//
// It prints Put 0, Put 1, Put 2, Doing work on 0, Put 3, Doing work on 1,
// Put 4, Doing work on 2, Doing work on 3, Doing work on 4, Done. Tornado
// prints "Put 2" after "Doing work on 0": in squall a hand-off resumes the
// other coroutine at once, so the consumer's first get() lets the blocked
// producer put item 2 before that get() returns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "squall/core/clock.hpp"
#include "squall/core/errors.hpp"
#include "squall/core/future.hpp"
#include "squall/core/locks.hpp"

namespace squall {

/// get_nowait() on an empty queue.
class QueueEmpty : public Error {
 public:
  QueueEmpty() : Error("Queue is empty") {}
};

/// put_nowait() on a full queue.
class QueueFull : public Error {
 public:
  QueueFull() : Error("Queue is full") {}
};

/// A put on a queue that was shut down, or a get on one that was shut down
/// and has no items left (asyncio's QueueShutDown).
class QueueShutDown : public Error {
 public:
  QueueShutDown() : Error("Queue is shut down") {}
};

namespace detail {

/// FIFO storage: a growable ring, so a steady put/get stream does not
/// allocate (std::deque allocates a block every few hundred items).
template <class T>
class FifoBuffer {
 public:
  std::size_t size() const noexcept { return size_; }
  void push(T&& item) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)].emplace(std::move(item));
    ++size_;
  }
  T pop() {
    std::optional<T>& slot = slots_[head_];
    T item(std::move(*slot));
    slot.reset();
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return item;
  }
  void clear() noexcept {
    while (size_ > 0) (void)pop();
  }

 private:
  void grow() {
    std::vector<std::optional<T>> bigger(slots_.empty() ? 8 : slots_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) {
      std::optional<T>& from = slots_[(head_ + i) & (slots_.size() - 1)];
      bigger[i].emplace(std::move(*from));
      from.reset();
    }
    slots_.swap(bigger);
    head_ = 0;
  }

  std::vector<std::optional<T>> slots_;  // size is a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

/// LIFO storage: a stack.
template <class T>
class LifoBuffer {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  void push(T&& item) { items_.push_back(std::move(item)); }
  T pop() {
    T item(std::move(items_.back()));
    items_.pop_back();
    return item;
  }
  void clear() noexcept { items_.clear(); }

 private:
  std::vector<T> items_;
};

/// Priority storage: a binary heap whose top is the item that `Compare`
/// orders first (the lowest, with std::less, as Python's heapq).
template <class T, class Compare>
class PriorityBuffer {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  void push(T&& item) {
    items_.push_back(std::move(item));
    std::push_heap(items_.begin(), items_.end(), Later{&compare_});
  }
  T pop() {
    std::pop_heap(items_.begin(), items_.end(), Later{&compare_});
    T item(std::move(items_.back()));
    items_.pop_back();
    return item;
  }
  void clear() noexcept { items_.clear(); }

 private:
  // std::*_heap keep the greatest on top; reversing the order keeps the
  // first under Compare there.
  struct Later {
    Compare* compare;
    bool operator()(const T& a, const T& b) const { return (*compare)(b, a); }
  };
  std::vector<T> items_;
  [[no_unique_address]] Compare compare_{};
};

/// The part of every queue that does not depend on the item type.
class QueueCore {
 public:
  /// Getter tags: which Future type a waiting getter holds.
  static constexpr std::uint8_t kGet = 0;   // FutureState<T>
  static constexpr std::uint8_t kNext = 1;  // FutureState<std::optional<T>>

  explicit QueueCore(std::size_t maxsize);

  /// Counts an item that entered the queue (Tornado's __put_internal).
  void item_added() noexcept {
    ++unfinished_;
    finished_.clear();
  }
  void task_done();
  /// Stops counting `drained` unfinished tasks (an immediate shutdown
  /// destroyed their items); the caller sets finished_ if none is left.
  void forget_tasks(std::size_t drained) noexcept { unfinished_ -= std::min(drained, unfinished_); }

  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  bool shut_down_ = false;
  Event finished_;
  WaiterList getters_;
  WaiterList putters_;
};

}  // namespace detail

/// Tornado's Queue: coordinates producer and consumer coroutines. With
/// `maxsize` 0 the queue is unbounded; otherwise put() waits while it holds
/// `maxsize` items. Items may be move-only. Loop thread only; a queue is
/// neither copyable nor movable (waiters point at it).
///
/// Every item put in counts as an unfinished task until a consumer calls
/// task_done(); join() waits until none is left.
///
/// To consume until the producers are done, loop on next() and call
/// shutdown() when there is nothing more to put:
///
///   while (auto item = co_await q.next()) { handle(*item); q.task_done(); }
template <class T, class Buffer = detail::FifoBuffer<T>>
class Queue {
 public:
  using value_type = T;

  explicit Queue(std::size_t maxsize = 0) : core_(maxsize) {
    core_.putters_.set_payload_dropper(this, &drop_put_item);
  }
  ~Queue() {
    // Abandon the waiters while put_items_ is still alive.
    core_.putters_.clear();
    core_.getters_.clear();
  }
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  /// 0 for an unbounded queue.
  std::size_t maxsize() const noexcept { return core_.maxsize_; }
  /// Items in the queue (not counting those of waiting put() calls).
  std::size_t qsize() const noexcept { return buffer_.size(); }
  bool empty() const noexcept { return buffer_.size() == 0; }
  bool full() const noexcept { return core_.maxsize_ != 0 && buffer_.size() >= core_.maxsize_; }

  /// Puts `item` in the queue, waiting while it is full: ready at once (no
  /// allocation) if there is room. TimeoutError if `timeout` (a delay) or
  /// `deadline` passes first, QueueShutDown if the queue is or gets shut down
  /// while waiting; the item is then destroyed. Unlike the other waits, a
  /// dropped, unawaited put() still puts its item when room frees up, as in
  /// Tornado.
  FutureOr<void> put(T item, std::optional<Duration> timeout = std::nullopt) {
    if (can_put_now()) {
      put_now(std::move(item));
      return FutureOr<void>(std::in_place);
    }
    return put_wait(std::move(item), detail::deadline_after(timeout));
  }
  FutureOr<void> put(T item, TimePoint deadline) {
    if (can_put_now()) {
      put_now(std::move(item));
      return FutureOr<void>(std::in_place);
    }
    return put_wait(std::move(item), deadline);
  }

  /// Puts `item` without waiting: QueueFull if the queue is full,
  /// QueueShutDown if it was shut down. When it throws, `item` is untouched.
  template <class U = T>
    requires std::is_constructible_v<T, U&&>
  void put_nowait(U&& item) {
    if (core_.shut_down_) throw QueueShutDown();
    if (!can_put_now()) throw QueueFull();
    put_now(T(std::forward<U>(item)));
  }

  /// Removes and returns an item, waiting while the queue is empty: ready at
  /// once (no allocation) if there is one. TimeoutError if `timeout` (a
  /// delay) or `deadline` passes first; QueueShutDown if the queue is shut
  /// down and empty.
  FutureOr<T> get(std::optional<Duration> timeout = std::nullopt) {
    if (can_get_now()) return FutureOr<T>(std::in_place, take_now());
    return get_wait<T>(detail::QueueCore::kGet, detail::deadline_after(timeout));
  }
  FutureOr<T> get(TimePoint deadline) {
    if (can_get_now()) return FutureOr<T>(std::in_place, take_now());
    return get_wait<T>(detail::QueueCore::kGet, deadline);
  }

  /// Removes and returns an item without waiting: QueueEmpty if there is
  /// none (QueueShutDown if the queue is also shut down).
  T get_nowait() {
    if (!can_get_now()) {
      if (core_.shut_down_) throw QueueShutDown();
      throw QueueEmpty();
    }
    return take_now();
  }

  /// get() for consuming loops: resolves to std::nullopt, rather than
  /// throwing QueueShutDown, once the queue is shut down and empty.
  ///   while (auto item = co_await q.next()) { ... }
  FutureOr<std::optional<T>> next(std::optional<Duration> timeout = std::nullopt) {
    if (can_get_now()) return FutureOr<std::optional<T>>(std::in_place, take_now());
    return get_wait<std::optional<T>>(detail::QueueCore::kNext, detail::deadline_after(timeout));
  }
  FutureOr<std::optional<T>> next(TimePoint deadline) {
    if (can_get_now()) return FutureOr<std::optional<T>>(std::in_place, take_now());
    return get_wait<std::optional<T>>(detail::QueueCore::kNext, deadline);
  }

  /// Marks one item taken out earlier as processed. InvalidStateError if
  /// called more times than items were put.
  void task_done() { core_.task_done(); }

  /// Waits until every item put in was marked done with task_done():
  /// ready at once if none is unfinished; TimeoutError if `timeout` (a delay)
  /// or `deadline` passes first.
  FutureOr<void> join(std::optional<Duration> timeout = std::nullopt) { return core_.finished_.wait(timeout); }
  FutureOr<void> join(TimePoint deadline) { return core_.finished_.wait(deadline); }

  /// Shuts the queue down (asyncio's Queue.shutdown): later puts throw
  /// QueueShutDown, and so do the puts waiting now (their items are
  /// destroyed). Consumers drain what is left, then get() throws
  /// QueueShutDown and next() resolves to std::nullopt, waiting ones
  /// included. With `immediate`, the items left are destroyed at once and no
  /// longer count as unfinished tasks, so join() can return.
  void shutdown(bool immediate = false) {
    core_.getters_.check_thread();
    core_.shut_down_ = true;
    std::size_t drained = 0;
    if (immediate) {
      drained = buffer_.size();
      buffer_.clear();
      core_.forget_tasks(drained);
    }
    // Each wake-up below resumes a coroutine, which may destroy the queue.
    detail::WaiterList::Watch watch(core_.getters_);
    fail_putters(watch);
    if (!watch.alive()) return;
    if (buffer_.size() == 0) wake_getters_at_shutdown(watch);
    if (!watch.alive()) return;
    if (immediate && core_.unfinished_ == 0) core_.finished_.set();  // resumes join() waiters: last
  }
  bool is_shut_down() const noexcept { return core_.shut_down_; }

  /// Unfinished tasks: items put in and not yet marked done.
  std::size_t unfinished_tasks() const noexcept { return core_.unfinished_; }

 private:
  bool can_put_now() const noexcept {
    core_.getters_.check_thread();
    return !core_.shut_down_ && (!core_.getters_.empty() || !full());
  }
  bool can_get_now() const noexcept {
    core_.getters_.check_thread();
    // Waiting putters mean the queue is full, so this is "has items".
    return buffer_.size() > 0 || !core_.putters_.empty();
  }

  /// Hands `item` to the oldest waiting getter, or stores it.
  /// Precondition: can_put_now().
  void put_now(T&& item) {
    while (!core_.getters_.empty()) {
      const std::uint8_t tag = core_.getters_.front_tag();
      detail::StateRef<detail::FutureStateBase> getter = core_.getters_.pop_front();
      if (getter->done()) continue;  // failed by hand: skip it
      core_.item_added();
      // Resumes the consumer, which may destroy the queue: last step.
      if (tag == detail::QueueCore::kNext) {
        static_cast<detail::FutureState<std::optional<T>>*>(getter.get())->set_result(std::move(item));
      } else {
        static_cast<detail::FutureState<T>*>(getter.get())->set_result(std::move(item));
      }
      return;
    }
    buffer_.push(std::move(item));
    core_.item_added();
  }

  /// Takes the next item; if producers wait (the queue is full), the oldest
  /// one's item enters first and that producer resumes before this returns.
  /// Precondition: can_get_now().
  T take_now() {
    detail::StateRef<detail::FutureStateBase> putter = admit_putter();
    T item = buffer_.pop();
    if (putter) static_cast<detail::FutureState<void>*>(putter.get())->set_result();  // may destroy *this
    return item;
  }

  detail::StateRef<detail::FutureStateBase> admit_putter() {
    while (!core_.putters_.empty()) {
      const std::uint32_t slot = core_.putters_.front_slot();
      std::optional<T> item(std::move(put_items_[slot]));
      put_items_[slot].reset();
      detail::StateRef<detail::FutureStateBase> putter = core_.putters_.pop_front();
      if (putter->done() || !item) continue;  // failed by hand: its item is dropped
      buffer_.push(std::move(*item));
      core_.item_added();
      return putter;
    }
    return {};
  }

  FutureOr<void> put_wait(T&& item, std::optional<TimePoint> deadline) {
    if (core_.shut_down_) return FutureOr<void>(make_exception_future<void>(std::make_exception_ptr(QueueShutDown())));
    Future<void> f;
    detail::WaiterTicket t = core_.putters_.push(f.state(), deadline);
    try {
      if (put_items_.size() < core_.putters_.slot_count()) put_items_.resize(core_.putters_.slot_count());
      put_items_[t.slot].emplace(std::move(item));
    } catch (...) {
      f.cancel();  // leaves the queue through its cancel handler
      (void)f.exception();
      throw;
    }
    return FutureOr<void>(std::move(f));
  }

  template <class R>
  FutureOr<R> get_wait(std::uint8_t tag, std::optional<TimePoint> deadline) {
    if (core_.shut_down_) {
      if constexpr (std::is_same_v<R, T>) {
        return FutureOr<R>(make_exception_future<R>(std::make_exception_ptr(QueueShutDown())));
      } else {
        return FutureOr<R>(std::in_place, std::nullopt);
      }
    }
    Future<R> f;
    core_.getters_.push(f.state(), deadline, tag);
    return FutureOr<R>(std::move(f), detail::kWithdrawIfDropped);
  }

  void fail_putters(const detail::WaiterList::Watch& watch) {
    while (!core_.putters_.empty()) {
      const std::uint32_t slot = core_.putters_.front_slot();
      put_items_[slot].reset();
      detail::StateRef<detail::FutureStateBase> putter = core_.putters_.pop_front();
      if (!putter->done()) putter->set_exception(std::make_exception_ptr(QueueShutDown()));
      putter = {};
      if (!watch.alive()) return;
    }
  }

  void wake_getters_at_shutdown(const detail::WaiterList::Watch& watch) {
    while (!core_.getters_.empty()) {
      const std::uint8_t tag = core_.getters_.front_tag();
      detail::StateRef<detail::FutureStateBase> getter = core_.getters_.pop_front();
      if (!getter->done()) {
        if (tag == detail::QueueCore::kNext) {
          static_cast<detail::FutureState<std::optional<T>>*>(getter.get())->set_result(std::nullopt);
        } else {
          getter->set_exception(std::make_exception_ptr(QueueShutDown()));
        }
      }
      getter = {};
      if (!watch.alive()) return;
    }
  }

  static void drop_put_item(void* owner, std::uint32_t slot) noexcept {
    auto* self = static_cast<Queue*>(owner);
    if (slot >= self->put_items_.size()) return;
    // Move out first: the item's destructor may put into this queue again.
    std::optional<T> dead(std::move(self->put_items_[slot]));
    self->put_items_[slot].reset();
  }

  Buffer buffer_;
  // The items of waiting put() calls, indexed by their waiter's slot.
  std::vector<std::optional<T>> put_items_;
  detail::QueueCore core_;
};

/// Tornado's PriorityQueue: get() returns the item `Compare` orders first,
/// the lowest with the default std::less (Python's heapq), e.g.
/// `PriorityQueue<std::pair<int, std::string>>` serves priority 0 before 1.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public Queue<T, detail::PriorityBuffer<T, Compare>> {
 public:
  using Queue<T, detail::PriorityBuffer<T, Compare>>::Queue;
};

/// Tornado's LifoQueue: get() returns the most recently put item.
template <class T>
class LifoQueue : public Queue<T, detail::LifoBuffer<T>> {
 public:
  using Queue<T, detail::LifoBuffer<T>>::Queue;
};

}  // namespace squall
