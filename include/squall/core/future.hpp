// Future<T>: the result of an asynchronous operation, and the return type of
// every squall coroutine. A cheap handle (one pointer) to a loop-affine,
// reference-counted state; use it only on the thread of the loop it belongs to.
//
//   Future<int> answer() { co_await squall::sleep(10ms); co_return 42; }
//   Future<void> main_coro() { int v = co_await answer(); }
//
// Semantics follow Tornado's and asyncio's Futures:
// - a callback added to a future that is already done runs at once;
// - awaiting a finished future does not suspend;
// - exceptions travel through co_await;
// - cancel() on a coroutine's future throws CancelledError at its current
//   co_await and cancels the operation it waits on;
// - an exception nobody retrieved is logged when the last handle goes away.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "squall/core/detail/future_state.hpp"
#include "squall/core/detail/promise.hpp"

namespace squall {

template <class T>
class Future;

namespace detail {

template <class T>
struct IsFuture : std::false_type {};
template <class T>
struct IsFuture<Future<T>> : std::true_type {};

/// What `co_await future` does. `Owning` awaiters came from an rvalue future:
/// they hold its only reference until suspension, then let the state own the
/// frame (future_state.hpp), and move the result out when resumed.
/// An awaiter lives in the awaiting coroutine's frame, one per co_await, so
/// it is kept to two pointers: the "still holds its reference" flag is the
/// low bit of the state pointer (states are at least 8-byte aligned).
template <class T, bool Owning>
class FutureAwaiter {
 public:
  explicit FutureAwaiter(FutureState<T>* s) noexcept : bits_(reinterpret_cast<std::uintptr_t>(s) | kInitialOwns) {}
  FutureAwaiter(FutureAwaiter&& o) noexcept : bits_(std::exchange(o.bits_, 0)), promise_(o.promise_) {}
  FutureAwaiter& operator=(FutureAwaiter&&) = delete;
  ~FutureAwaiter() {
    if constexpr (Owning) {
      if (bits_ & kOwns) state()->release();
    }
  }

  bool await_ready() const noexcept { return state()->done(); }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    FutureState<T>* s = state();
    if constexpr (std::is_base_of_v<PromiseBase, P>) {
      promise_ = &h.promise();
      // Cancelled while it was running (asyncio's _must_cancel): the new
      // wait is cancelled at once instead of running to completion.
      if (promise_->cancel_pending()) {
        s->cancel();
        if (s->done()) return false;  // await_resume throws CancelledError
      }
      promise_->set_awaiting(s);
    }
    s->add_waiter(h);
    if constexpr (Owning) {
      bits_ &= ~kOwns;
      // May destroy this very frame if nobody else can complete the state:
      // touch nothing after this line.
      s->release();
    }
    return true;
  }

  decltype(auto) await_resume() {
    if (promise_) promise_->resumed();
    FutureState<T>* s = state();
    s->rethrow_if_failed();
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (Owning) {
      return T(std::move(s->value()));
    } else {
      return static_cast<T&>(s->value());
    }
  }

 private:
  static constexpr std::uintptr_t kOwns = 1;
  static constexpr std::uintptr_t kInitialOwns = Owning ? kOwns : 0;
  static_assert(alignof(FutureState<T>) > kOwns);

  FutureState<T>* state() const noexcept { return reinterpret_cast<FutureState<T>*>(bits_ & ~kOwns); }

  std::uintptr_t bits_;
  PromiseBase* promise_ = nullptr;
};

/// The part of Future<T> that does not depend on T being void.
template <class T>
class FutureBase {
 public:
  using value_type = T;
  using promise_type = Promise<T>;

  /// A new pending future, as Tornado's `Future()`.
  FutureBase() : s_(new FutureState<T>()) {}
  /// An empty handle (valid() is false), for members assigned later.
  explicit FutureBase(std::nullptr_t) noexcept {}
  explicit FutureBase(StateRef<FutureState<T>> s) noexcept : s_(std::move(s)) {}

  /// False only for a moved-from handle.
  bool valid() const noexcept { return static_cast<bool>(s_); }
  bool done() const noexcept { return s_->done(); }
  bool cancelled() const noexcept { return s_->cancelled(); }

  /// Cancels the operation (asyncio's semantics). Returns false if already
  /// done. On a coroutine's future, CancelledError is thrown at its current
  /// co_await; on a plain future, the future becomes cancelled at once and
  /// its cancel handler runs.
  bool cancel() { return s_->cancel(); }

  /// The stored exception (CancelledError if cancelled), or null. Marks it
  /// retrieved. InvalidStateError while pending.
  std::exception_ptr exception() {
    require_done();
    return s_->exception();
  }

  void set_exception(std::exception_ptr e) {
    require_no_producer();
    s_->set_exception(std::move(e));
  }
  template <class E>
    requires std::derived_from<E, std::exception>
  void set_exception(E e) {
    set_exception(std::make_exception_ptr(std::move(e)));
  }

  /// Runs `fn(Future<T>)` (or `fn()`) when done; at once if already done.
  /// Exceptions thrown by `fn` are logged, not propagated.
  template <class F>
  void add_done_callback(F fn) {
    s_->add_callback([fn = std::move(fn)](FutureStateBase& base) mutable {
      auto& typed = static_cast<FutureState<T>&>(base);
      if constexpr (std::is_invocable_v<F&, Future<T>>) {
        fn(Future<T>(StateRef<FutureState<T>>::share(&typed)));
      } else {
        fn();
      }
    });
  }

  /// For producers: runs `fn()` if this pending future is cancelled, so the
  /// operation behind it can stop (remove a timer, give up a read slot).
  /// Captures of up to 16 bytes are stored without allocating.
  template <class F>
  void set_cancel_handler(F&& fn) {
    s_->set_cancel_handler(std::forward<F>(fn));
  }
  void clear_cancel_handler() { s_->clear_cancel_handler(); }

  auto operator co_await() & noexcept { return FutureAwaiter<T, false>(s_.get()); }
  auto operator co_await() && noexcept { return FutureAwaiter<T, true>(s_.release()); }

  /// The shared state (for squall's own adapters).
  FutureState<T>* state() const noexcept { return s_.get(); }

  friend bool operator==(const FutureBase& a, const FutureBase& b) noexcept { return a.s_.get() == b.s_.get(); }

 protected:
  void require_done() const {
    if (!s_->done()) throw InvalidStateError("Future is not done yet");
  }
  void require_no_producer() const {
    if (s_->producer) throw InvalidStateError("a coroutine's Future is set by its coroutine");
  }

  StateRef<FutureState<T>> s_;
};

}  // namespace detail

/// See the top of this file.
template <class T>
class Future : public detail::FutureBase<T> {
 public:
  using detail::FutureBase<T>::FutureBase;

  /// Resolves the future and runs its continuations now. Ignored if the
  /// future was cancelled; InvalidStateError if it is already done.
  template <class U = T>
  void set_result(U&& value) {
    this->require_no_producer();
    this->s_->set_result(std::forward<U>(value));
  }

  /// The value; rethrows the exception (CancelledError if cancelled);
  /// InvalidStateError while pending. The reference lives as long as the
  /// future's state.
  T& result() {
    this->require_done();
    this->s_->rethrow_if_failed();
    return this->s_->value();
  }
};

template <>
class Future<void> : public detail::FutureBase<void> {
 public:
  using detail::FutureBase<void>::FutureBase;

  void set_result() {
    require_no_producer();
    s_->set_result();
  }
  void result() {
    require_done();
    s_->rethrow_if_failed();
  }
};

/// A future that is already resolved.
template <class T>
Future<std::decay_t<T>> make_ready_future(T&& value) {
  Future<std::decay_t<T>> f;
  f.set_result(std::forward<T>(value));
  return f;
}
inline Future<void> make_ready_future() {
  Future<void> f;
  f.set_result();
  return f;
}

/// A future that already failed with `e`.
template <class T>
Future<T> make_exception_future(std::exception_ptr e) {
  Future<T> f;
  f.set_exception(std::move(e));
  return f;
}

template <class F>
concept FutureLike = detail::IsFuture<std::remove_cvref_t<F>>::value;

template <class T>
Future<T> detail::PromiseCommon<T>::get_return_object() {
  auto* s = new FutureState<T>();  // one reference: the frame's
  s->producer = this;
  state_ = s;
  return Future<T>(StateRef<FutureState<T>>::share(s));
}

}  // namespace squall
