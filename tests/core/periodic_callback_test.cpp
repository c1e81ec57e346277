#include "squall/core/periodic_callback.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall {
namespace {

/// Every test runs on a virtual clock, so schedules are exact to the
/// nanosecond and long waits take no real time.
class PeriodicCallbackTest : public testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }
};

/// Resolves after `delay` of loop time.
Future<void> sleep_for(Duration delay) {
  Future<void> f;
  IOLoop::current().call_later(delay, [f]() mutable { f.set_result(); });
  return f;
}

/// Loop time since `start`, in whole milliseconds (readable failures).
long ms_since(TimePoint start) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(IOLoop::current().time() - start).count());
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, RunsOncePerPeriodStartingOnePeriodAfterStart) {
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  Future<void> third;
  PeriodicCallback pc(
      [&] {
        runs.push_back(ms_since(start));
        if (runs.size() == 3) third.set_result();
      },
      10ms);
  EXPECT_FALSE(pc.is_running());
  pc.start();
  EXPECT_TRUE(pc.is_running());
  EXPECT_EQ(pc.period(), 10ms);
  co_await third;
  EXPECT_EQ(runs, (std::vector<long>{10, 20, 30}));
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, SkipsTheTicksMissedWhileTheCallbackOverruns) {
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  Future<void> done;
  PeriodicCallback pc(
      [&] {
        runs.push_back(ms_since(start));
        // The first run blocks for three and a half periods: the ticks at
        // 20, 30 and 40 ms are skipped, not run back to back.
        if (runs.size() == 1) virtual_clock()->advance(35ms);
        if (runs.size() == 3) done.set_result();
      },
      10ms);
  pc.start();
  co_await done;
  EXPECT_EQ(runs, (std::vector<long>{10, 50, 60}));
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, ARunEndingExactlyOnATickSkipsThatTick) {
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  Future<void> done;
  PeriodicCallback pc(
      [&] {
        runs.push_back(ms_since(start));
        if (runs.size() == 1) virtual_clock()->advance(30ms);  // ends at 40 ms
        if (runs.size() == 2) done.set_result();
      },
      10ms);
  pc.start();
  co_await done;
  EXPECT_EQ(runs, (std::vector<long>{10, 50}));
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, AnExceptionIsLoggedAndTheScheduleGoesOn) {
  testing::ExpectLog expect("squall.application", "Exception in PeriodicCallback: boom");
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  Future<void> done;
  PeriodicCallback pc(
      [&] {
        runs.push_back(ms_since(start));
        if (runs.size() == 1) throw std::runtime_error("boom");
        if (runs.size() == 3) done.set_result();
      },
      10ms);
  pc.start();
  co_await done;
  EXPECT_EQ(runs, (std::vector<long>{10, 20, 30}));
  EXPECT_EQ(expect.matched(), 1);
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, ACoroutineFailureIsLoggedAndTheScheduleGoesOn) {
  testing::ExpectLog expect("squall.application", "Exception in PeriodicCallback: async boom");
  int runs = 0;
  Future<void> done;
  PeriodicCallback pc(
      [&]() -> Future<void> {
        int n = ++runs;
        co_await sleep_for(1ms);
        if (n == 1) throw std::runtime_error("async boom");
        if (n == 3) done.set_result();
      },
      10ms);
  pc.start();
  co_await done;
  EXPECT_EQ(expect.matched(), 1);
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, ACancelledRunIsNotLogged) {
  int runs = 0;
  Future<void> done;
  PeriodicCallback pc(
      [&] {
        if (++runs == 2) done.set_result();
        throw CancelledError();
      },
      10ms);
  pc.start();
  co_await done;
  EXPECT_TRUE(pc.is_running());
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, StopInsideTheCallbackEndsTheSchedule) {
  int runs = 0;
  std::optional<PeriodicCallback> pc;
  pc.emplace(
      [&] {
        if (++runs == 2) pc->stop();
      },
      10ms);
  pc->start();
  co_await sleep_for(100ms);
  EXPECT_EQ(runs, 2);
  EXPECT_FALSE(pc->is_running());
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, StopAndStartInsideTheCallbackKeepOneSchedule) {
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  std::optional<PeriodicCallback> pc;
  pc.emplace(
      [&] {
        runs.push_back(ms_since(start));
        if (runs.size() == 1) {
          pc->stop();
          pc->start();
        }
      },
      10ms);
  pc->start();
  co_await sleep_for(35ms);
  // A second timer armed by the restart would escape this stop() and run
  // off the new schedule below (at 40 ms).
  pc->stop();
  pc->start();
  co_await sleep_for(25ms);
  EXPECT_EQ(runs, (std::vector<long>{10, 20, 30, 45, 55}));
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, CoroutineRunsNeverOverlap) {
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  int active = 0;
  int most_active = 0;
  Future<void> done;
  PeriodicCallback pc(
      [&]() -> Future<void> {
        runs.push_back(ms_since(start));
        most_active = std::max(most_active, ++active);
        co_await sleep_for(25ms);  // two and a half periods
        --active;
        if (runs.size() == 3) done.set_result();
      },
      10ms);
  pc.start();
  co_await done;
  EXPECT_EQ(most_active, 1);
  // Each run ends 25 ms after it starts; the next is the following tick of
  // the original 10 ms grid.
  EXPECT_EQ(runs, (std::vector<long>{10, 40, 70}));
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, StopAndStartDuringACoroutineRunKeepOneSchedule) {
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  std::optional<PeriodicCallback> pc;
  pc.emplace(
      [&]() -> Future<void> {
        runs.push_back(ms_since(start));
        if (runs.size() == 1) {
          pc->stop();
          pc->start();
          co_await sleep_for(25ms);
        }
      },
      10ms);
  pc->start();
  co_await sleep_for(65ms);
  // The restart is scheduled when the run in flight ends (at 35 ms), once.
  EXPECT_EQ(runs, (std::vector<long>{10, 40, 50, 60}));
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, ACallbackReturningAReadyFutureRunsEveryPeriod) {
  int runs = 0;
  PeriodicCallback pc(
      [&] {
        ++runs;
        return make_ready_future();
      },
      10ms);
  pc.start();
  co_await sleep_for(45ms);
  EXPECT_EQ(runs, 4);
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, JitterKeepsEachPeriodWithinItsRange) {
  constexpr int kRuns = 200;
  std::vector<Duration> gaps;
  TimePoint last = io_loop().time();
  Future<void> done;
  PeriodicCallback pc(
      [&] {
        gaps.push_back(io_loop().time() - last);
        last = io_loop().time();
        if (gaps.size() == kRuns) done.set_result();
      },
      10ms, 0.5);
  EXPECT_EQ(pc.jitter(), 0.5);
  pc.start();
  co_await done;
  auto [lo, hi] = std::minmax_element(gaps.begin(), gaps.end());
  // 10 ms × [0.75, 1.25).
  EXPECT_GE(*lo, 7500us);
  EXPECT_LT(*hi, 12500us);
  // And it does vary: 200 draws all within ±0.5 ms of 10 ms has
  // probability 0.08^200.
  EXPECT_GT(*hi - *lo, 1ms);
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, StartAfterStopRunsAgainOnePeriodLater) {
  TimePoint start = io_loop().time();
  std::vector<long> runs;
  Future<void> second;
  PeriodicCallback pc(
      [&] {
        runs.push_back(ms_since(start));
        if (runs.size() == 2) second.set_result();
      },
      10ms);
  pc.start();
  co_await second;
  pc.stop();
  EXPECT_FALSE(pc.is_running());
  co_await sleep_for(55ms);  // now at 75 ms
  EXPECT_EQ(runs.size(), 2u);

  pc.start();
  co_await sleep_for(25ms);
  EXPECT_EQ(runs, (std::vector<long>{10, 20, 85, 95}));
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, StartWhileRunningChangesNothing) {
  int runs = 0;
  PeriodicCallback pc([&] { ++runs; }, 10ms);
  pc.start();
  co_await sleep_for(5ms);
  pc.start();
  co_await sleep_for(30ms);
  EXPECT_EQ(runs, 3);  // 10, 20, 30 ms: one schedule, not two
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, DestroyingARunningPeriodicCallbackRemovesItsTimer) {
  int runs = 0;
  auto pc = std::make_unique<PeriodicCallback>([&] { ++runs; }, 10ms);
  pc->start();
  co_await sleep_for(15ms);
  pc.reset();
  co_await sleep_for(50ms);
  EXPECT_EQ(runs, 1);
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, TheCallbackMayDestroyItsOwnPeriodicCallback) {
  int runs = 0;
  std::optional<PeriodicCallback> pc;
  // The captured string lives in the callable, which must survive the
  // destruction of its owner until the call returns.
  pc.emplace(
      [&, tag = std::string(64, 'x')] {
        ++runs;
        pc.reset();
        EXPECT_EQ(tag.size(), 64u);
      },
      10ms);
  pc->start();
  co_await sleep_for(50ms);
  EXPECT_EQ(runs, 1);
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, ARunInFlightKeepsItsCapturesAliveAfterItsOwnerIsDestroyed) {
  int runs = 0;
  std::string seen;
  auto pc = std::make_unique<PeriodicCallback>(
      [&runs, &seen, text = std::string("captured by value")]() -> Future<void> {
        ++runs;
        co_await sleep_for(20ms);
        seen = text;  // the lambda object holding `text` must still exist
      },
      10ms);
  pc->start();
  co_await sleep_for(15ms);  // the first run is in flight
  pc.reset();
  co_await sleep_for(50ms);
  EXPECT_EQ(seen, "captured by value");
  EXPECT_EQ(runs, 1);
}

SQUALL_ASYNC_TEST(PeriodicCallbackTest, MovingCarriesTheSchedule) {
  int runs = 0;
  PeriodicCallback first([&] { ++runs; }, 10ms);
  first.start();
  PeriodicCallback second(std::move(first));
  EXPECT_TRUE(second.is_running());
  co_await sleep_for(25ms);
  EXPECT_EQ(runs, 2);

  int other_runs = 0;
  PeriodicCallback other([&] { ++other_runs; }, 10ms);
  other.start();
  other = std::move(second);  // stops `other`'s own schedule
  co_await sleep_for(20ms);
  EXPECT_EQ(runs, 4);
  EXPECT_EQ(other_runs, 0);
}

TEST_F(PeriodicCallbackTest, RejectsANonPositivePeriodAndJitterOutsideItsRange) {
  auto noop = [] {};
  EXPECT_THROW(PeriodicCallback(noop, 0ms), std::invalid_argument);
  EXPECT_THROW(PeriodicCallback(noop, -1ms), std::invalid_argument);
  EXPECT_THROW(PeriodicCallback(noop, 10ms, -0.1), std::invalid_argument);
  EXPECT_THROW(PeriodicCallback(noop, 10ms, 2.0), std::invalid_argument);
  EXPECT_THROW(PeriodicCallback(noop, 10ms, std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  EXPECT_NO_THROW(PeriodicCallback(noop, 1ns, 1.99));
}

// Runs `loop` (current, on a virtual clock) for `duration` of loop time.
void run_for(IOLoop& loop, Duration duration) {
  loop.run_sync([&loop, duration] {
    Future<void> f;
    loop.call_later(duration, [f]() mutable { f.set_result(); });
    return f;
  });
}

TEST_F(PeriodicCallbackTest, ClosingTheLoopStopsItAndItMayOutliveTheLoop) {
  int runs = 0;
  std::optional<PeriodicCallback> pc;
  {
    IOLoop loop(IOLoop::Options{.clock = std::make_shared<VirtualClock>(), .make_current = false});
    loop.make_current();
    pc.emplace([&runs] { ++runs; }, 10ms);
    pc->start();
    run_for(loop, 35ms);
    EXPECT_EQ(runs, 3);
    loop.clear_current();
  }  // the loop's destructor closes it and drops the armed timer
  io_loop().make_current();
  EXPECT_FALSE(pc->is_running());
  pc.reset();  // must not touch the destroyed loop (AddressSanitizer checks)
}

TEST_F(PeriodicCallbackTest, ClosingTheLoopDuringACoroutineRunStopsIt) {
  int runs = 0;
  std::optional<PeriodicCallback> pc;
  {
    IOLoop loop(IOLoop::Options{.clock = std::make_shared<VirtualClock>(), .make_current = false});
    loop.make_current();
    pc.emplace(
        [&runs]() -> Future<void> {
          ++runs;
          co_await sleep_for(1h);  // still waiting when the loop closes
        },
        10ms);
    pc->start();
    run_for(loop, 15ms);
    EXPECT_EQ(runs, 1);
    loop.clear_current();
    // Closing destroys the sleep's timer, which frees the suspended run.
  }
  io_loop().make_current();
  EXPECT_FALSE(pc->is_running());
  pc.reset();
}

}  // namespace
}  // namespace squall
