// PeriodicCallback: calls a function every `period` on the current IOLoop
// (Tornado's PeriodicCallback). Loop-affine: construct it anywhere, but call
// start(), stop(), is_running() and destroy it on the thread of the loop it
// runs on (the loop current when start() was called).
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "squall/core/callback.hpp"
#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"

namespace squall {

/// Runs `callback` every `period`, the first time one period after start().
///
///   PeriodicCallback flush([&] { buffer.flush(); }, 500ms);
///   flush.start();
///
/// Scheduling follows Tornado 6:
/// - The period is measured from the start of one run to the start of the
///   next. A run that overruns skips the ticks it missed instead of bursting
///   to catch up: the next run is at the first tick of the original schedule
///   that is still in the future.
/// - A callback may return `Future<void>` (it may be a coroutine); the next
///   run is not scheduled before that future completes, so runs never
///   overlap. Stopping does not cancel a run in flight.
/// - With `jitter`, each period is multiplied by a random factor in
///   [1 - jitter/2, 1 + jitter/2), so many periodic tasks started together
///   drift apart (jitter 0.1 = up to 5% either way).
/// - An exception from the callback (or its future) is logged on
///   squall.application and the schedule goes on. CancelledError is not
///   logged.
///
/// Lifetimes: the callback (and so whatever a coroutine lambda captures) is
/// kept alive until a run in flight completes, even if the PeriodicCallback
/// is destroyed meanwhile. Destroying a running PeriodicCallback stops it.
/// The loop it runs on must not be destroyed before the PeriodicCallback is
/// stopped or destroyed, unless it was closed first: closing the loop stops
/// the PeriodicCallback (is_running() becomes false).
class PeriodicCallback {
 public:
  /// `callback` returns void or Future<void>. Throws std::invalid_argument
  /// unless period > 0 and 0 <= jitter < 2 (so every period stays positive).
  template <class F>
    requires std::invocable<F&>
  PeriodicCallback(F callback, Duration period, double jitter = 0)
      : PeriodicCallback(make_target(std::move(callback)), period, jitter) {}

  /// Stops the schedule (see the lifetime notes above).
  ~PeriodicCallback();
  /// Moving carries the schedule along; a moved-from object may only be
  /// destroyed or assigned to. Assigning stops the schedule it replaces.
  PeriodicCallback(PeriodicCallback&&) noexcept;
  PeriodicCallback& operator=(PeriodicCallback&&) noexcept;
  PeriodicCallback(const PeriodicCallback&) = delete;
  PeriodicCallback& operator=(const PeriodicCallback&) = delete;

  /// Starts running on IOLoop::current(); the first run is one period from
  /// now. No effect if already running. If a run is still in flight (after
  /// a stop() and start() inside it), the next run is scheduled when it
  /// completes, as usual.
  void start();
  /// Stops scheduling runs. Safe to call from inside the callback, and when
  /// not running. A run in flight is not interrupted.
  void stop();
  /// True between start() and stop() (or the loop's close()).
  bool is_running() const noexcept;

  Duration period() const noexcept;
  double jitter() const noexcept;

 private:
  class Core;
  /// The type-erased callback: exactly one of the two is set.
  struct Target {
    UniqueFunction<void()> plain;
    UniqueFunction<Future<void>()> async;
  };

  template <class F>
  static Target make_target(F callback) {
    using R = std::invoke_result_t<F&>;
    static_assert(std::is_void_v<R> || std::is_same_v<R, Future<void>>,
                  "a PeriodicCallback's callback must return void or Future<void>");
    Target target;
    if constexpr (std::is_void_v<R>) {
      target.plain = std::move(callback);
    } else {
      target.async = std::move(callback);
    }
    return target;
  }

  PeriodicCallback(Target target, Duration period, double jitter);

  std::shared_ptr<Core> core_;
};

}  // namespace squall
