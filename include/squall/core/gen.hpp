// gen: Tornado's tornado.gen for squall: sleep, moment, multi, with_timeout
// and the timeout() deadline scope, WaitIterator, and the bridge from
// callback-style code (gen_task, convert, chain_future). Loop-affine: call
// everything on the thread of IOLoop::current() and use the Futures there.
//
// Every waiting operation here is cancellable (asyncio's semantics): cancel()
// on the returned Future, or on a coroutine that awaits it, stops the wait,
// removes its timer, and frees whatever it held.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"

namespace squall {

// --- sleep and moment ------------------------------------------------------------

/// A Future that resolves after `delay` of loop time (Tornado's gen.sleep).
/// Cancelling it removes its timer at once.
///
///   co_await squall::sleep(250ms);
Future<void> sleep(Duration delay);

/// Like sleep(), until a deadline in loop time (IOLoop::time()).
Future<void> sleep_until(TimePoint deadline);

/// A Future that resolves on the loop's next iteration, after the file
/// descriptors have been polled (Tornado's gen.moment): a long computation
/// that awaits it now and then lets I/O and other callbacks run.
/// Cancellable (the scheduled callback then does nothing).
Future<void> moment();

// --- quiet exceptions -------------------------------------------------------------

/// Says whether a failure is expected enough not to be logged (the role of
/// Tornado's `quiet_exceptions` tuple). Called on the loop's thread with a
/// non-null exception; a filter that throws counts as "not quiet".
using ExceptionFilter = std::function<bool(const std::exception_ptr&)>;

namespace detail {
template <class E, class... Rest>
bool exception_is(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
  }
  if constexpr (sizeof...(Rest) > 0) {
    return exception_is<Rest...>(e);
  } else {
    return false;
  }
}
}  // namespace detail

/// A filter matching exceptions of the types `Es` or types derived from them:
///
///   MultiOptions{.quiet_exceptions = squall::exception_types<TimeoutError>()}
template <class... Es>
ExceptionFilter exception_types() {
  static_assert(sizeof...(Es) > 0, "name at least one exception type");
  return [](const std::exception_ptr& e) { return e && detail::exception_is<Es...>(e); };
}

// --- type-erased cores (gen.cpp) ------------------------------------------------------

namespace detail {

/// Moves or copies `from`'s outcome into `to` (both FutureState<T>): the
/// value, the exception, or a cancellation (as `to.cancel()`). Does nothing
/// if `to` is already done.
template <class T, bool kMove>
void transfer_outcome(FutureStateBase& from_base, FutureStateBase& to_base) {
  auto& from = static_cast<FutureState<T>&>(from_base);
  auto& to = static_cast<FutureState<T>&>(to_base);
  if (to.done()) return;
  if (from.cancelled()) {
    (void)from.exception();  // retrieved: it is being passed on
    to.cancel();
    return;
  }
  if (std::exception_ptr e = from.exception()) {
    to.set_exception(std::move(e));
  } else if constexpr (std::is_void_v<T>) {
    to.set_result();
  } else if constexpr (kMove) {
    to.set_result(std::move(from.value()));
  } else {
    to.set_result(from.value());
  }
}
using TransferFn = void (*)(FutureStateBase& from, FutureStateBase& to);

/// Something told when each of several child futures finishes. Each child
/// holds a callback that keeps the observer alive; the observer holds
/// pending children only by raw pointer, so no reference cycle can keep
/// abandoned futures (and the coroutines waiting on them) alive.
class ChildObserver : public std::enable_shared_from_this<ChildObserver> {
 public:
  ChildObserver() = default;
  ChildObserver(const ChildObserver&) = delete;
  ChildObserver& operator=(const ChildObserver&) = delete;
  virtual ~ChildObserver() = default;

  /// Calls child_done(index, child) when `child` is done (at once if it is).
  void watch(std::size_t index, FutureStateBase& child);

  virtual void child_done(std::size_t index, FutureStateBase& child) = 0;
  /// The child was destroyed (or its loop closed) before it could report:
  /// it never will.
  virtual void child_lost(std::size_t index) noexcept = 0;
};

/// The T-independent part of multi(): counting, the first failure, logging
/// later ones, cancelling the children.
class MultiCore : public ChildObserver {
 public:
  MultiCore(std::size_t size, ExceptionFilter quiet, FutureStateBase& out);
  ~MultiCore() override;

  /// Registers child `index`; call for every index, then start().
  void add_child(std::size_t index, FutureStateBase& child);
  /// Resolves the output if there was nothing to wait for.
  void start();

  void child_done(std::size_t index, FutureStateBase& child) override;
  void child_lost(std::size_t index) noexcept override;

 protected:
  /// Takes child `index`'s value (the child succeeded).
  virtual void store(std::size_t index, FutureStateBase& child) = 0;
  /// Every child succeeded: resolve `out`.
  virtual void deliver(FutureStateBase& out) = 0;

 private:
  void finish_if_complete();
  void cancel_children();

  std::vector<FutureStateBase*> children_;  // null once done or lost
  std::size_t pending_;
  ExceptionFilter quiet_;
  StateRef<FutureStateBase> out_;
  bool cancelling_ = false;
};

template <class T>
class VectorMulti final : public MultiCore {
 public:
  VectorMulti(std::size_t size, ExceptionFilter quiet, FutureStateBase& out)
      : MultiCore(size, std::move(quiet), out), values_(size) {}

 private:
  void store(std::size_t index, FutureStateBase& child) override {
    values_[index].emplace(std::move(static_cast<FutureState<T>&>(child).value()));
  }
  void deliver(FutureStateBase& out) override {
    std::vector<T> result;
    result.reserve(values_.size());
    for (auto& v : values_) result.push_back(std::move(*v));
    static_cast<FutureState<std::vector<T>>&>(out).set_result(std::move(result));
  }
  std::vector<std::optional<T>> values_;
};

template <class Map>
class MapMulti final : public MultiCore {
 public:
  using Key = typename Map::key_type;
  using T = typename Map::mapped_type;
  MapMulti(std::vector<Key> keys, ExceptionFilter quiet, FutureStateBase& out)
      : MultiCore(keys.size(), std::move(quiet), out), keys_(std::move(keys)), values_(keys_.size()) {}

 private:
  void store(std::size_t index, FutureStateBase& child) override {
    values_[index].emplace(std::move(static_cast<FutureState<T>&>(child).value()));
  }
  void deliver(FutureStateBase& out) override {
    Map result;
    for (std::size_t i = 0; i < keys_.size(); ++i) result.emplace(std::move(keys_[i]), std::move(*values_[i]));
    static_cast<FutureState<Map>&>(out).set_result(std::move(result));
  }
  std::vector<Key> keys_;
  std::vector<std::optional<T>> values_;
};

/// multi() over Future<void> children.
Future<void> multi_void(std::span<FutureStateBase* const> children, ExceptionFilter quiet);

template <class F>
FutureStateBase* checked_state(const F& f, const char* who) {
  if (!f.valid()) throw std::invalid_argument(std::string(who) + ": a moved-from Future");
  return f.state();
}

template <class Core>
void start_multi(Core& core, std::span<FutureStateBase* const> children) {
  for (std::size_t i = 0; i < children.size(); ++i) core.add_child(i, *children[i]);
  core.start();
}

/// with_timeout()'s machinery: arms the timer, mirrors `inner` into `out`.
void start_with_timeout(FutureStateBase& out, FutureStateBase& inner, TimePoint deadline, TransferFn transfer,
                        ExceptionFilter quiet, bool cancel_on_timeout);
/// IOLoop::current().time() + timeout.
TimePoint deadline_after(Duration timeout);

/// WaitIterator's T-independent part.
class WaitCore final : public ChildObserver {
 public:
  WaitCore(std::size_t size, TransferFn transfer) : size_(size), alive_(size), transfer_(transfer) {}

  bool done() const noexcept { return returned_ == size_; }
  /// Makes `next` the Future the next finished child resolves.
  void arm(FutureStateBase& next);
  /// Throws InvalidStateError before the first result.
  std::size_t current_index() const;
  FutureStateBase* current_state() const;

  void child_done(std::size_t index, FutureStateBase& child) override;
  void child_lost(std::size_t index) noexcept override;

 private:
  struct Finished {
    std::size_t index;
    StateRef<FutureStateBase> state;
  };
  void deliver();
  void abandon_if_hopeless() noexcept;

  std::size_t size_;
  std::size_t alive_;  // children that may still report
  std::size_t returned_ = 0;
  TransferFn transfer_;
  std::vector<Finished> finished_;  // a FIFO: read from finished_head_
  std::size_t finished_head_ = 0;
  StateRef<FutureStateBase> waiting_;
  std::size_t current_index_ = 0;
  StateRef<FutureStateBase> current_;
};

/// gen_task(): `fn` threw `e` synchronously.
void task_threw(FutureStateBase& future, std::exception_ptr e) noexcept;

}  // namespace detail

// --- multi -----------------------------------------------------------------------

struct MultiOptions {
  /// Failures after the first are logged to squall.application ("Multiple
  /// exceptions in yield list"), except those this filter accepts.
  /// Default: log them all. The first failure is always propagated.
  ExceptionFilter quiet_exceptions = nullptr;
};

/// Waits for every future and resolves with their values, in input order
/// (Tornado's gen.multi). The values are moved out of the children, so pass
/// each future once and read the values from the result.
///
/// - Empty input: the result is ready at once.
/// - The first child to fail fails the result at once with its exception
///   (a cancelled child fails it with CancelledError, as asyncio.gather);
///   the other children keep running, and their later failures are logged
///   unless `options.quiet_exceptions` accepts them. CancelledError is never
///   logged.
/// - Cancelling the result cancels every child still pending (asyncio's
///   gather semantics), so cancelling a coroutine that awaits multi() stops
///   all the work it waits for.
///
///   std::vector<Future<Response>> fetches;
///   for (auto& url : urls) fetches.push_back(client.fetch(url));
///   std::vector<Response> responses = co_await squall::multi(std::move(fetches));
template <class T>
  requires(!std::is_void_v<T>)
Future<std::vector<T>> multi(std::vector<Future<T>> children, MultiOptions options = {}) {
  std::vector<detail::FutureStateBase*> states;
  states.reserve(children.size());
  for (auto& f : children) states.push_back(detail::checked_state(f, "multi"));
  Future<std::vector<T>> out;
  auto core = std::make_shared<detail::VectorMulti<T>>(states.size(), std::move(options.quiet_exceptions), *out.state());
  detail::start_multi(*core, states);
  return out;
}

/// Waits for every Future<void>; the same rules as above.
Future<void> multi(std::vector<Future<void>> children, MultiOptions options = {});

/// `multi({a, b, c})`: a braced list of futures of one type. GCC 12 rejects
/// a braced list inside a co_await expression ("array used as
/// initializer"): name the Future first, `auto all = multi({a, b});`.
template <class T>
  requires(!std::is_void_v<T>)
Future<std::vector<T>> multi(std::initializer_list<Future<T>> children, MultiOptions options = {}) {
  return multi(std::vector<Future<T>>(children), std::move(options));
}
Future<void> multi(std::initializer_list<Future<void>> children, MultiOptions options = {});

/// The keyed form: resolves with a map from each key to its future's value.
/// Same rules as the vector form.
///
///   std::map<std::string, Future<int>> counts{{"a", count("a")}, {"b", count("b")}};
///   std::map<std::string, int> got = co_await squall::multi(std::move(counts));
template <class K, class T, class C, class A>
  requires(!std::is_void_v<T>)
Future<std::map<K, T, C>> multi(std::map<K, Future<T>, C, A> children, MultiOptions options = {}) {
  std::vector<K> keys;
  std::vector<detail::FutureStateBase*> states;
  keys.reserve(children.size());
  states.reserve(children.size());
  for (auto& [key, f] : children) {
    states.push_back(detail::checked_state(f, "multi"));
    keys.push_back(key);
  }
  Future<std::map<K, T, C>> out;
  auto core = std::make_shared<detail::MapMulti<std::map<K, T, C>>>(std::move(keys), std::move(options.quiet_exceptions),
                                                                     *out.state());
  detail::start_multi(*core, states);
  return out;
}

template <class K, class T, class H, class E, class A>
  requires(!std::is_void_v<T>)
Future<std::unordered_map<K, T, H, E>> multi(std::unordered_map<K, Future<T>, H, E, A> children,
                                             MultiOptions options = {}) {
  using Map = std::unordered_map<K, T, H, E>;
  std::vector<K> keys;
  std::vector<detail::FutureStateBase*> states;
  keys.reserve(children.size());
  states.reserve(children.size());
  for (auto& [key, f] : children) {
    states.push_back(detail::checked_state(f, "multi"));
    keys.push_back(key);
  }
  Future<Map> out;
  auto core = std::make_shared<detail::MapMulti<Map>>(std::move(keys), std::move(options.quiet_exceptions), *out.state());
  detail::start_multi(*core, states);
  return out;
}

/// Keyed Future<void> children: resolves when all are done.
template <class K, class C, class A>
Future<void> multi(std::map<K, Future<void>, C, A> children, MultiOptions options = {}) {
  std::vector<detail::FutureStateBase*> states;
  states.reserve(children.size());
  for (auto& entry : children) states.push_back(detail::checked_state(entry.second, "multi"));
  return detail::multi_void(states, std::move(options.quiet_exceptions));
}
template <class K, class H, class E, class A>
Future<void> multi(std::unordered_map<K, Future<void>, H, E, A> children, MultiOptions options = {}) {
  std::vector<detail::FutureStateBase*> states;
  states.reserve(children.size());
  for (auto& entry : children) states.push_back(detail::checked_state(entry.second, "multi"));
  return detail::multi_void(states, std::move(options.quiet_exceptions));
}

// --- with_timeout and timeout ----------------------------------------------------

struct WithTimeoutOptions {
  /// If the future fails after the timeout fired (nobody is left to see
  /// it), the failure is logged to squall.application ("Exception in Future
  /// after timeout") unless this filter accepts it. CancelledError is never
  /// logged. Default: log every such failure.
  ExceptionFilter quiet_exceptions = nullptr;
  /// false (Tornado's behaviour): on expiry the TimeoutError is raised at
  /// once and the future keeps running. true: the future is cancelled, and
  /// the TimeoutError is raised when it has stopped (see timeout()).
  bool cancel_on_timeout = false;
};

/// Resolves like `future`, or fails with TimeoutError at `deadline` (loop
/// time, IOLoop::time()) if `future` is still pending then (Tornado's
/// gen.with_timeout). The value is moved out of `future`.
///
/// Cancelling the result cancels `future` and removes the timer. A future
/// that is already done gives a result that is done at once, with no timer.
template <class T>
Future<T> with_timeout(TimePoint deadline, Future<T> future, WithTimeoutOptions options = {}) {
  detail::FutureStateBase* inner = detail::checked_state(future, "with_timeout");
  Future<T> out;
  detail::start_with_timeout(*out.state(), *inner, deadline, &detail::transfer_outcome<T, true>,
                             std::move(options.quiet_exceptions), options.cancel_on_timeout);
  return out;
}

/// with_timeout() after `timeout` of loop time.
///
///   auto response = co_await squall::with_timeout(5s, client.fetch(url));
template <class T>
Future<T> with_timeout(Duration timeout, Future<T> future, WithTimeoutOptions options = {}) {
  return with_timeout(detail::deadline_after(timeout), std::move(future), std::move(options));
}

/// A deadline scope (asyncio.timeout): if `work` is not done within
/// `timeout`, it is cancelled (CancelledError is thrown at the coroutine's
/// current co_await) and, once it has stopped, the result fails with
/// TimeoutError. Nothing of the work outlives the scope.
///
///   co_await squall::timeout(2s, handshake(stream));
///
/// As in asyncio, the work decides when it stops: squall's operations stop
/// at once; a coroutine that catches CancelledError to clean up is waited
/// for; one that swallows the cancellation and returns a value makes the
/// scope return that value; one that ends with another exception propagates
/// it. Cancelling the result cancels the work.
template <class T>
Future<T> timeout(Duration timeout, Future<T> work) {
  return with_timeout(timeout, std::move(work), WithTimeoutOptions{.cancel_on_timeout = true});
}

/// timeout() with a deadline in loop time (asyncio.timeout_at).
template <class T>
Future<T> timeout_at(TimePoint deadline, Future<T> work) {
  return with_timeout(deadline, std::move(work), WithTimeoutOptions{.cancel_on_timeout = true});
}

// --- WaitIterator ----------------------------------------------------------------

/// Hands out the results of several futures in the order they finish
/// (Tornado's gen.WaitIterator), with the index (vector form) or key (map
/// form) of each. Loop thread only; move-only.
///
///   WaitIterator it(std::move(futures));
///   while (!it.done()) {
///     try {
///       int r = co_await it.next();
///       use(it.current_index(), r);
///     } catch (const std::exception& e) {
///       log_failure(it.current_index(), e);   // the iterator goes on
///     }
///   }
///
/// Futures already done when the iterator is made come out first, in input
/// order. next()'s Future takes the value (moved) or exception of the
/// future that finished. Cancelling that Future does not lose the result:
/// the next call to next() returns it. The iterator never cancels the
/// futures it watches; futures it never handed out keep running, and
/// their failures are logged as never retrieved.
template <class T, class Key = std::size_t>
class WaitIterator {
 public:
  /// Vector form: keys are the indexes 0..n-1.
  explicit WaitIterator(std::vector<Future<T>> futures)
    requires std::same_as<Key, std::size_t>
  {
    keys_.reserve(futures.size());
    for (std::size_t i = 0; i < futures.size(); ++i) keys_.push_back(i);
    start(futures);
  }
  /// Map forms: current_key() is the finished future's key.
  template <class C, class A>
  explicit WaitIterator(const std::map<Key, Future<T>, C, A>& futures) {
    start_map(futures);
  }
  template <class H, class E, class A>
  explicit WaitIterator(const std::unordered_map<Key, Future<T>, H, E, A>& futures) {
    start_map(futures);
  }

  WaitIterator(WaitIterator&&) noexcept = default;
  WaitIterator& operator=(WaitIterator&&) noexcept = default;

  /// True once next() has handed out every future.
  bool done() const noexcept { return core_->done(); }

  /// A Future for the next future to finish. InvalidStateError if done(),
  /// or if the previous next() Future is still pending.
  Future<T> next() {
    Future<T> f;
    core_->arm(*f.state());
    return f;
  }

  /// The position, in the input, of the future the last next() returned.
  /// InvalidStateError before the first result.
  std::size_t current_index() const { return core_->current_index(); }
  /// Its key (map form), or its index (vector form).
  const Key& current_key() const { return keys_[core_->current_index()]; }
  /// The future itself (its value has moved into next()'s result).
  Future<T> current_future() const {
    auto* s = static_cast<detail::FutureState<T>*>(core_->current_state());
    return Future<T>(detail::StateRef<detail::FutureState<T>>::share(s));
  }

 private:
  template <class Map>
  void start_map(const Map& futures) {
    std::vector<Future<T>> ordered;
    ordered.reserve(futures.size());
    keys_.reserve(futures.size());
    for (const auto& [key, f] : futures) {
      keys_.push_back(key);
      ordered.push_back(f);
    }
    start(ordered);
  }
  void start(const std::vector<Future<T>>& futures) {
    for (const auto& f : futures) (void)detail::checked_state(f, "WaitIterator");
    core_ = std::make_shared<detail::WaitCore>(futures.size(), &detail::transfer_outcome<T, true>);
    for (std::size_t i = 0; i < futures.size(); ++i) core_->watch(i, *futures[i].state());
  }

  std::vector<Key> keys_;
  std::shared_ptr<detail::WaitCore> core_;
};

template <class T>
WaitIterator(std::vector<Future<T>>) -> WaitIterator<T, std::size_t>;
template <class K, class T, class C, class A>
WaitIterator(std::map<K, Future<T>, C, A>) -> WaitIterator<T, K>;
template <class K, class T, class H, class E, class A>
WaitIterator(std::unordered_map<K, Future<T>, H, E, A>) -> WaitIterator<T, K>;

// --- from callbacks to Futures ---------------------------------------------------

namespace detail {

/// The callback gen_task() hands to a callback-style function. Copyable, so
/// it converts to std::function. Resolves the Future on its first call;
/// later calls, and calls after the Future was cancelled, do nothing.
template <class T>
class TaskCallback {
 public:
  explicit TaskCallback(Future<T> future) noexcept : future_(std::move(future)) {}
  void operator()(T value) const {
    if (!future_.done()) future_.set_result(std::move(value));
  }

 private:
  // A handle, not the state: calling a const callback still resolves it.
  mutable Future<T> future_;
};

template <>
class TaskCallback<void> {
 public:
  explicit TaskCallback(Future<void> future) noexcept : future_(std::move(future)) {}
  void operator()() const {
    if (!future_.done()) future_.set_result();
  }

 private:
  mutable Future<void> future_;
};

}  // namespace detail

/// Calls a callback-style function and returns a Future for its result
/// (Tornado's gen.Task): `fn(args..., callback)`, where the callback takes
/// a T (or nothing for T = void) and converts to std::function<void(T)>.
///
///   void legacy_lookup(std::string name, std::function<void(int)> done);
///   int id = co_await squall::gen_task<int>(legacy_lookup, "alice");
///
/// - If `fn` throws before calling the callback, the Future fails with that
///   exception (if it throws after, the exception is logged).
/// - Only the first call of the callback counts; later calls are ignored.
/// - Call, copy and destroy the callback on this loop's thread only (it
///   holds a Future); moving it through another thread is fine, so a
///   library that calls back elsewhere can move it into
///   IOLoop::add_callback.
/// - If every copy of the callback is destroyed uncalled, the Future can
///   never resolve, and a coroutine awaiting it is freed, not leaked.
/// - Cancelling the Future abandons the result: the operation itself runs
///   on (a callback API offers no way to stop it), and its callback is
///   ignored.
template <class T, class F, class... Args>
Future<T> gen_task(F&& fn, Args&&... args) {
  Future<T> future;
  try {
    std::invoke(std::forward<F>(fn), std::forward<Args>(args)..., detail::TaskCallback<T>(future));
  } catch (...) {
    detail::task_threw(*future.state(), std::current_exception());
  }
  return future;
}

/// Turns a callback-style function into a Future-returning one:
/// `convert<T>(fn)(args...)` is `gen_task<T>(fn, args...)`. `fn` is copied
/// into the result and called as a const object.
///
///   auto lookup = squall::convert<int>(legacy_lookup);
///   int id = co_await lookup("alice");
template <class T, class F>
auto convert(F fn) {
  return [fn = std::move(fn)](auto&&... args) -> Future<T> {
    return gen_task<T>(fn, std::forward<decltype(args)>(args)...);
  };
}

/// When `a` is done, copies its outcome into `b` (Tornado's chain_future):
/// its value, its exception, or its cancellation (as `b.cancel()`). If `b`
/// is done by then (cancelled, say), does nothing. The value is copied, so
/// `a` stays readable (moved for move-only T). Cancelling `b` does not
/// cancel `a`. `b` must be a plain Future, not a coroutine's.
template <class T>
void chain_future(Future<T> a, Future<T> b) {
  if (b.state()->producer) throw InvalidStateError("chain_future: a coroutine's Future is set by its coroutine");
  constexpr bool kMove = !std::is_void_v<T> && !std::is_copy_constructible_v<T>;
  a.add_done_callback([b = std::move(b)](Future<T> done) mutable {
    detail::transfer_outcome<T, kMove>(*done.state(), *b.state());
  });
}

}  // namespace squall
