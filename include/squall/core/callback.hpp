// UniqueFunction: a move-only callable with small-buffer storage, so posting
// a callback, arming a timer or registering a continuation does not allocate
// when the callable is small (a lambda capturing up to 48 bytes).
// Not thread-affine by itself; whoever owns it decides.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace squall {

template <class Signature>
class UniqueFunction;

/// Like `std::move_only_function` (C++23): accepts move-only lambdas.
///
///   UniqueFunction<void()> f = [p = std::make_unique<int>(1)] { use(*p); };
///   f();
template <class R, class... Args>
class UniqueFunction<R(Args...)> {
 public:
  static constexpr std::size_t kInlineSize = 48;

  UniqueFunction() noexcept = default;
  UniqueFunction(std::nullptr_t) noexcept {}

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, UniqueFunction> &&
                                     std::is_invocable_r_v<R, D&, Args...>>>
  UniqueFunction(F&& f) {  // NOLINT: implicit like std::function
    if constexpr (fits_inline<D>()) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      auto heap = std::make_unique<D>(std::forward<F>(f));
      ::new (static_cast<void*>(storage_)) D*(heap.release());
      ops_ = &kHeapOps<D>;
    }
  }

  UniqueFunction(UniqueFunction&& other) noexcept { take(other); }
  UniqueFunction& operator=(UniqueFunction&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  UniqueFunction& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }
  UniqueFunction(const UniqueFunction&) = delete;
  UniqueFunction& operator=(const UniqueFunction&) = delete;
  ~UniqueFunction() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  R operator()(Args... args) { return ops_->invoke(storage_, std::forward<Args>(args)...); }

  void reset() noexcept {
    if (ops_) {
      if (ops_->destroy) ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct Ops {
    R (*invoke)(void*, Args&&...);
    // nullptr means "relocate with memcpy" (trivially copyable callables).
    void (*relocate)(void* from, void* to) noexcept;
    // nullptr means "nothing to destroy".
    void (*destroy)(void*) noexcept;
  };

  template <class D>
  static constexpr bool fits_inline() {
    return sizeof(D) <= kInlineSize && alignof(D) <= alignof(std::max_align_t) &&
           std::is_nothrow_move_constructible_v<D>;
  }

  template <class D>
  static constexpr Ops kInlineOps{
      [](void* s, Args&&... a) -> R { return std::invoke(*static_cast<D*>(s), std::forward<Args>(a)...); },
      std::is_trivially_copyable_v<D> ? nullptr
                                      : +[](void* from, void* to) noexcept {
                                          ::new (to) D(std::move(*static_cast<D*>(from)));
                                          static_cast<D*>(from)->~D();
                                        },
      std::is_trivially_destructible_v<D> ? nullptr
                                          : +[](void* s) noexcept { static_cast<D*>(s)->~D(); }};

  template <class D>
  static constexpr Ops kHeapOps{
      [](void* s, Args&&... a) -> R { return std::invoke(**static_cast<D**>(s), std::forward<Args>(a)...); },
      nullptr,  // the pointer itself relocates with memcpy
      +[](void* s) noexcept { std::unique_ptr<D> owner(*static_cast<D**>(s)); }};

  void take(UniqueFunction& other) noexcept {
    ops_ = other.ops_;
    if (!ops_) return;
    if (ops_->relocate) {
      ops_->relocate(other.storage_, storage_);
    } else {
      std::memcpy(storage_, other.storage_, kInlineSize);
    }
    other.ops_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char storage_[kInlineSize];
  const Ops* ops_ = nullptr;
};

/// What the loop runs: a callback taking nothing.
using Callback = UniqueFunction<void()>;

}  // namespace squall
