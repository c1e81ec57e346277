// The clock an IOLoop reads. Production loops use the steady clock; tests can
// give a loop a VirtualClock, which the loop moves forward to the next timer
// whenever nothing else is ready, so long timeouts take no real time.
// A clock belongs to one loop and is read on that loop's thread.
#pragma once

#include <chrono>

namespace squall {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using Duration = SteadyClock::duration;

class LoopClock {
 public:
  virtual ~LoopClock() = default;
  virtual TimePoint now() const noexcept = 0;
  /// True for clocks the loop may jump forward when idle.
  virtual bool is_virtual() const noexcept { return false; }
  /// Called by the loop with the next timer's deadline when it is idle.
  virtual void advance_to(TimePoint) noexcept {}
};

/// Time that only moves when the loop is idle (or when a test says so).
/// Starts at the steady clock's current reading, so deadlines look real.
class VirtualClock final : public LoopClock {
 public:
  VirtualClock() noexcept : now_(SteadyClock::now()) {}
  TimePoint now() const noexcept override { return now_; }
  bool is_virtual() const noexcept override { return true; }
  void advance_to(TimePoint t) noexcept override {
    if (t > now_) now_ = t;
  }
  /// Moves time forward by `d` (timers due by then fire on the next iteration).
  void advance(Duration d) noexcept { now_ += d; }

 private:
  TimePoint now_;
};

}  // namespace squall
