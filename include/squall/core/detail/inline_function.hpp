// InlineFunction<R(Args...), N, Align>: a move-only callable with exactly N
// bytes of inline storage aligned to Align (callables that do not fit, or
// whose move may throw, live on the heap). UniqueFunction (callback.hpp) is
// the 48-byte one every callback uses; a record that exists once per pending
// operation (a Future's continuation and cancel handler) picks a smaller N
// and pays only for the captures it usually has: a pointer or two.
// Not thread-affine by itself; whoever owns it decides.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace squall::detail {

template <class Signature, std::size_t N, std::size_t Align = alignof(void*)>
class InlineFunction;

template <class R, class... Args, std::size_t N, std::size_t Align>
class InlineFunction<R(Args...), N, Align> {
  static_assert(N >= sizeof(void*), "room for at least the heap pointer");

 public:
  static constexpr std::size_t kInlineSize = N;

  InlineFunction() noexcept = default;
  InlineFunction(std::nullptr_t) noexcept {}  // NOLINT: implicit like std::function

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, InlineFunction> && std::is_invocable_r_v<R, D&, Args...>>>
  InlineFunction(F&& f) {  // NOLINT: implicit like std::function
    if constexpr (fits_inline<D>()) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      auto heap = std::make_unique<D>(std::forward<F>(f));
      ::new (static_cast<void*>(storage_)) D*(heap.release());
      ops_ = &kHeapOps<D>;
    }
  }

  InlineFunction(InlineFunction&& other) noexcept { take(other); }
  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  InlineFunction& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  R operator()(Args... args) { return ops_->invoke(storage_, std::forward<Args>(args)...); }

  void reset() noexcept {
    if (ops_) {
      if (ops_->destroy) ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

  /// The stored callable if it is a `D` kept inline, else null. Lets an
  /// owner recognise one special callable (a coroutine handle) without a
  /// separate tag.
  template <class D>
  D* target_if() noexcept {
    if constexpr (fits_inline<D>()) {
      return ops_ == &kInlineOps<D> ? std::launder(reinterpret_cast<D*>(storage_)) : nullptr;
    } else {
      return nullptr;
    }
  }

  template <class D>
  static constexpr bool fits_inline() {
    return sizeof(D) <= N && alignof(D) <= Align && std::is_nothrow_move_constructible_v<D>;
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
  static constexpr Ops kInlineOps{
      [](void* s, Args&&... a) -> R { return std::invoke(*static_cast<D*>(s), std::forward<Args>(a)...); },
      std::is_trivially_copyable_v<D> ? nullptr
                                      : +[](void* from, void* to) noexcept {
                                          ::new (to) D(std::move(*static_cast<D*>(from)));
                                          static_cast<D*>(from)->~D();
                                        },
      std::is_trivially_destructible_v<D> ? nullptr : +[](void* s) noexcept { static_cast<D*>(s)->~D(); }};

  template <class D>
  static constexpr Ops kHeapOps{
      [](void* s, Args&&... a) -> R { return std::invoke(**static_cast<D**>(s), std::forward<Args>(a)...); },
      nullptr,  // the pointer itself relocates with memcpy
      +[](void* s) noexcept { std::unique_ptr<D> owner(*static_cast<D**>(s)); }};

  void take(InlineFunction& other) noexcept {
    ops_ = other.ops_;
    if (!ops_) return;
    if (ops_->relocate) {
      ops_->relocate(other.storage_, storage_);
    } else {
      std::memcpy(storage_, other.storage_, N);
    }
    other.ops_ = nullptr;
  }

  const Ops* ops_ = nullptr;
  alignas(Align) unsigned char storage_[N];
};

}  // namespace squall::detail
