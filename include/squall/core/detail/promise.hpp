// The coroutine side of Future<T>: any function returning Future<T> may use
// co_await / co_return. Like Tornado's @gen.coroutine, the body starts running
// when called and its Future is returned at the first suspension.
// Loop-affine like the Future it produces.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "squall/core/detail/future_state.hpp"

namespace squall {
template <class T>
class Future;
}

namespace squall::detail {

/// Owns a suspended frame scheduled through the loop: resumes it once, or
/// destroys it if the loop drops the callback unrun (the loop closed).
class ResumeTask {
 public:
  ResumeTask(std::coroutine_handle<> h, StateRef<FutureStateBase> keep) noexcept
      : h_(h), keep_(std::move(keep)) {}
  ResumeTask(ResumeTask&& o) noexcept : h_(std::exchange(o.h_, {})), keep_(std::move(o.keep_)) {}
  ResumeTask& operator=(ResumeTask&&) = delete;
  ~ResumeTask() {
    if (h_) h_.destroy();
  }
  void operator()() { std::exchange(h_, {}).resume(); }

 private:
  std::coroutine_handle<> h_;
  StateRef<FutureStateBase> keep_;  // the awaited state, read by await_resume
};

/// The part of every squall coroutine promise that cancellation needs.
class PromiseBase {
 public:
  /// asyncio's Task.cancel(): remembered, and forwarded to whatever the
  /// coroutine awaits now; CancelledError is thrown at that co_await.
  void request_cancel() {
    awaiting_ |= kCancelRequested;
    if (FutureStateBase* s = awaiting()) s->cancel();
  }
  void set_awaiting(FutureStateBase* s) noexcept {
    awaiting_ = reinterpret_cast<std::uintptr_t>(s) | (awaiting_ & kCancelRequested);
  }
  bool cancel_pending() const noexcept { return awaiting_ & kCancelRequested; }
  /// Called by await_resume: throws CancelledError if cancellation was asked.
  void resumed() {
    bool cancel = awaiting_ & kCancelRequested;
    awaiting_ = 0;
    if (cancel) [[unlikely]] {
      throw CancelledError();
    }
  }

  static void* operator new(std::size_t n) { return pool_allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { pool_deallocate(p, n); }

 protected:
  PromiseBase() = default;
  ~PromiseBase() {
    // Destroyed before reaching its end: the frame was abandoned (see
    // future_state.hpp); the Future stays pending without a producer.
    if (state_) {
      state_->producer = nullptr;
      state_->release();
    }
  }
  void store_exception(std::exception_ptr e) noexcept { exception_ = std::move(e); }

  struct InitialAwaiter {
    bool await_ready() const noexcept { return !stack_is_deep(); }
    void await_suspend(std::coroutine_handle<> h) { defer_to_loop(ResumeTask(h, {})); }
    void await_resume() const noexcept {}
  };

  FutureStateBase* state_ = nullptr;  // one reference, handed over at the end
  std::exception_ptr exception_;

 private:
  FutureStateBase* awaiting() const noexcept {
    return reinterpret_cast<FutureStateBase*>(awaiting_ & ~kCancelRequested);
  }

  // Every coroutine frame holds a promise, so it is kept to three pointers:
  // the state awaited now, with asyncio's "cancel requested" flag in its low
  // bit (states are at least 8-byte aligned).
  static constexpr std::uintptr_t kCancelRequested = 1;
  std::uintptr_t awaiting_ = 0;
};

template <class T>
class PromiseCommon : public PromiseBase {
 public:
  Future<T> get_return_object();
  InitialAwaiter initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      auto& promise = h.promise();
      auto* s = static_cast<FutureState<T>*>(std::exchange(promise.state_, nullptr));
      std::exception_ptr e = std::move(promise.exception_);
      // Free the frame before waking the awaiter, so it can reuse the memory.
      h.destroy();
      s->producer = nullptr;
      promise_finish(s, std::move(e));
      s->release();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept { store_exception(std::current_exception()); }

 protected:
  FutureState<T>* typed_state() const noexcept { return static_cast<FutureState<T>*>(state_); }

 private:
  static void promise_finish(FutureState<T>* s, std::exception_ptr e) noexcept;
};

template <class T>
class Promise : public PromiseCommon<T> {
 public:
  template <class U = T>
  void return_value(U&& v) {
    this->typed_state()->emplace(std::forward<U>(v));
  }
};

template <>
class Promise<void> : public PromiseCommon<void> {
 public:
  void return_void() const noexcept {}
};

/// Completes a coroutine's state. An exception leaving the body that is a
/// CancelledError marks the future cancelled, as asyncio does.
void finish_coroutine_state(FutureStateBase* s, std::exception_ptr e) noexcept;

template <class T>
void PromiseCommon<T>::promise_finish(FutureState<T>* s, std::exception_ptr e) noexcept {
  if (e) {
    finish_coroutine_state(s, std::move(e));
  } else {
    s->finish_with_value();
  }
}

}  // namespace squall::detail
