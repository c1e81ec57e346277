// The shared state behind Future<T>: a loop-affine, intrusively reference-
// counted record of a result, an exception or a cancellation, plus the
// continuations to run when it is set. Touched only from its loop's thread.
//
// Lifetime rule that makes abandoned coroutines collectable: a coroutine
// suspended on a state is owned by that state. If the state dies while still
// pending (nobody can ever complete it), it destroys the suspended frames it
// owns, so a coroutine waiting on a future that nobody can resolve is freed
// instead of leaked.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/detail/inline_function.hpp"
#include "squall/core/errors.hpp"

namespace squall::detail {

class FutureStateBase;
class PromiseBase;

/// Thread-local free lists for futures and coroutine frames (plain
/// new/delete under AddressSanitizer so it keeps finding use-after-free).
void* pool_allocate(std::size_t size);
void pool_deallocate(void* p, std::size_t size) noexcept;

/// Past half of the thread's stack, resumptions and coroutine starts go
/// through the loop instead of nesting, so million-deep chains cannot
/// overflow the stack.
extern constinit thread_local const char* tls_stack_soft_limit;
const char* init_stack_soft_limit() noexcept;
inline bool stack_is_deep() noexcept {
  const char* limit = tls_stack_soft_limit;
  if (limit == nullptr) [[unlikely]] limit = init_stack_soft_limit();
  return static_cast<const char*>(__builtin_frame_address(0)) < limit;
}

/// Runs `cb` on the current thread's IOLoop in a later iteration.
void defer_to_loop(Callback cb);

#ifndef NDEBUG
void assert_owner_thread(const void* what, std::uintptr_t owner) noexcept;
std::uintptr_t current_thread_tag() noexcept;
#endif

void finish_coroutine_state(FutureStateBase* s, std::exception_ptr e) noexcept;

/// A suspended coroutine or a callback waiting for a state, in 32 bytes: a
/// coroutine handle, or a callable capturing up to 24 bytes (a pointer, a
/// shared_ptr and an index), kept inline; bigger callables are boxed.
using Continuation = InlineFunction<void(FutureStateBase&), 24>;

/// The continuation that resumes a suspended coroutine. Recognised by
/// FutureStateBase (Continuation::target_if), which resumes it through the
/// loop when the stack is deep and destroys the frame if the state dies
/// pending; never invoked as a callable.
struct ResumeWaiter {
  std::coroutine_handle<> handle;
  void operator()(FutureStateBase&) const noexcept { handle.resume(); }
};

/// What a pending plain state runs if it is cancelled; a capture of up to
/// 16 bytes (`this`, a weak_ptr) is kept inline.
using CancelHandler = InlineFunction<void(), 16>;

class FutureStateBase {
 public:
  enum class Status : std::uint8_t { kPending, kResult, kException, kCancelled };

  FutureStateBase(const FutureStateBase&) = delete;
  FutureStateBase& operator=(const FutureStateBase&) = delete;

  static void* operator new(std::size_t n) { return pool_allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { pool_deallocate(p, n); }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) destroy_self();
  }
  std::uint32_t ref_count() const noexcept { return refs_; }

  bool done() const noexcept { return status_ != Status::kPending; }
  bool cancelled() const noexcept { return status_ == Status::kCancelled; }
  Status status() const noexcept { return status_; }

  /// asyncio's Future.cancel(): false if already done. A coroutine's state
  /// forwards the request into the coroutine; a plain one becomes cancelled.
  bool cancel();

  /// Marks the state failed and runs continuations. Ignored on a cancelled
  /// state (the consumer is gone); InvalidStateError if already done.
  void set_exception(std::exception_ptr e);

  /// Throws the stored exception, if any; marks it retrieved.
  void rethrow_if_failed() {
    if (exception_) {
      retrieved_ = true;
      std::rethrow_exception(exception_);
    }
  }
  std::exception_ptr exception() noexcept {
    retrieved_ = true;
    return exception_;
  }

  /// Registers a suspended coroutine to resume when done. The state owns
  /// the frame from now until it resumes it (see the lifetime rule above).
  void add_waiter(std::coroutine_handle<> h) {
    check_thread();
    if (!first_) {
      first_ = ResumeWaiter{h};
    } else {
      add_more(ResumeWaiter{h});
    }
  }
  /// Runs `cb(state)` when done; at once if already done. A callable that
  /// is destroyed without being run (the state died pending, or the loop
  /// dropped a deferred run) is simply destroyed.
  template <class F>
  void add_callback(F&& cb) {
    add_continuation(Continuation(std::forward<F>(cb)));
  }

  /// Called once if a pending plain state is cancelled (a sleep removes its
  /// timer, a read gives up its slot). Replaces any earlier handler.
  template <class F>
  void set_cancel_handler(F&& cb) {
    on_cancel_ = CancelHandler(std::forward<F>(cb));
  }
  void clear_cancel_handler() noexcept { on_cancel_ = nullptr; }

  /// The coroutine computing this state, if any (cleared when it ends).
  PromiseBase* producer = nullptr;

 protected:
  FutureStateBase() noexcept
#ifndef NDEBUG
      : owner_(current_thread_tag())
#endif
  {
  }
  virtual ~FutureStateBase();

  /// Marks done with `status` and runs every continuation in order.
  void complete(Status status);
  void check_done_for_set();
  void check_thread() const noexcept {
#ifndef NDEBUG
    assert_owner_thread(this, owner_);
#endif
  }

 private:
  friend class PromiseBase;
  friend void finish_coroutine_state(FutureStateBase* s, std::exception_ptr e) noexcept;
  void destroy_self() noexcept { delete this; }
  void add_continuation(Continuation c);
  void add_more(Continuation c);
  void run(Continuation& c);

  // Laid out for size: a pending read or sleep keeps one of these alive per
  // connection (tests/core/future_test.cpp pins the size).
  std::exception_ptr exception_;
  std::uint32_t refs_ = 1;
  Status status_ = Status::kPending;
  bool retrieved_ = false;

 protected:
  /// FutureState<T>: whether its value slot holds a constructed T.
  bool has_value_ = false;

 private:
  Continuation first_;
  // Continuations after the first (a future awaited twice, a multi() and a
  // coroutine on one state): rare, so kept out of line.
  std::unique_ptr<std::vector<Continuation>> rest_;
  CancelHandler on_cancel_;
#ifndef NDEBUG
  std::uintptr_t owner_;
#endif
};

template <class T>
class FutureState final : public FutureStateBase {
 public:
  // User-provided, so `new FutureState<T>()` does not zero the whole object
  // before constructing it (value-initialisation of a class whose default
  // constructor is implicit does): every member has its own initialiser.
  FutureState() noexcept {}
  ~FutureState() override {
    if (has_value_) value_.~T();
  }

  template <class... A>
  void set_result(A&&... a) {
    check_done_for_set();
    if (cancelled()) return;
    emplace(std::forward<A>(a)...);
    complete(Status::kResult);
  }
  /// Stores the value without completing (a coroutine's co_return; its
  /// final suspend completes it).
  template <class... A>
  void emplace(A&&... a) {
    if (has_value_) {
      value_.~T();
      has_value_ = false;
    }
    ::new (static_cast<void*>(std::addressof(value_))) T(std::forward<A>(a)...);
    has_value_ = true;
  }
  T& value() noexcept { return value_; }
  void finish_with_value() { complete(Status::kResult); }

 private:
  // A union instead of std::optional: the flag lives in the base's padding.
  union {
    T value_;
  };
};

template <>
class FutureState<void> final : public FutureStateBase {
 public:
  FutureState() noexcept {}  // see FutureState<T>()
  void set_result() {
    check_done_for_set();
    if (cancelled()) return;
    complete(Status::kResult);
  }
  void emplace() noexcept {}
  void finish_with_value() { complete(Status::kResult); }
};

/// An owning pointer to a state: one reference.
template <class S>
class StateRef {
 public:
  StateRef() noexcept = default;
  explicit StateRef(S* adopt) noexcept : s_(adopt) {}
  StateRef(const StateRef& o) noexcept : s_(o.s_) {
    if (s_) s_->add_ref();
  }
  StateRef(StateRef&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  StateRef& operator=(StateRef o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~StateRef() {
    if (s_) s_->release();
  }
  static StateRef share(S* s) noexcept {
    s->add_ref();
    return StateRef(s);
  }
  S* get() const noexcept { return s_; }
  S* operator->() const noexcept { return s_; }
  S& operator*() const noexcept { return *s_; }
  explicit operator bool() const noexcept { return s_ != nullptr; }
  S* release() noexcept { return std::exchange(s_, nullptr); }

 private:
  S* s_ = nullptr;
};

}  // namespace squall::detail
