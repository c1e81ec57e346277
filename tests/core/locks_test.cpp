#include "squall/core/locks.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"  // sleep(), for the guide's examples only
#include "../support/after.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

#include "../support/counting_new.hpp"

namespace squall {
namespace {

// Every test runs on a virtual clock: timeouts are instant and exact.
class LocksTest : public testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }
};

class ConditionTest : public LocksTest {};
class EventTest : public LocksTest {};
class SemaphoreTest : public LocksTest {};
class LockTest : public LocksTest {};
class WaiterListTest : public LocksTest {};

// The tests wait with after() rather than gen.hpp's sleep(), so they rest
// on the core loop alone; only the guide's examples at the end use gen.hpp.
using testing::after;

// Counts live instances, to prove coroutine frames are freed.
struct Counted {
  explicit Counted(int& live) : live_(&live) { ++*live_; }
  Counted(const Counted&) = delete;
  ~Counted() { --*live_; }
  int* live_;
};

// --- Condition ------------------------------------------------------------------

Future<void> wait_and_record(Condition& c, std::vector<std::string>& history, std::string name,
                             std::optional<Duration> timeout = std::nullopt) {
  bool notified = co_await c.wait(timeout);
  history.push_back(notified ? name : "timeout " + name);
}

SQUALL_ASYNC_TEST(ConditionTest, WaitResolvesToTrueWhenNotified) {
  Condition c;
  auto waiting = c.wait();
  EXPECT_FALSE(waiting.done());
  EXPECT_EQ(c.waiting(), 1u);
  c.notify();
  EXPECT_TRUE(waiting.done());
  EXPECT_TRUE(co_await waiting);
  EXPECT_EQ(c.waiting(), 0u);
}

SQUALL_ASYNC_TEST(ConditionTest, NotifyWakesTheOldestWaitersFirst) {
  Condition c;
  std::vector<std::string> history;
  std::vector<Future<void>> waiters;
  for (const char* name : {"a", "b", "c", "d"}) waiters.push_back(wait_and_record(c, history, name));
  c.notify(2);
  EXPECT_EQ(history, (std::vector<std::string>{"a", "b"}));
  c.notify();
  EXPECT_EQ(history, (std::vector<std::string>{"a", "b", "c"}));
  c.notify(10);  // more than wait: wakes the one left
  EXPECT_EQ(history, (std::vector<std::string>{"a", "b", "c", "d"}));
  for (auto& w : waiters) co_await w;
}

SQUALL_ASYNC_TEST(ConditionTest, NotifyWithNobodyWaitingIsForgotten) {
  Condition c;
  c.notify();
  c.notify_all();
  auto waiting = c.wait();
  EXPECT_FALSE(waiting.done());  // no notification was stored
  c.notify();
  EXPECT_TRUE(co_await waiting);
}

Future<void> wait_twice(Condition& c, int& wakeups) {
  co_await c.wait();
  ++wakeups;
  co_await c.wait();  // starts waiting again while notify_all() runs
  ++wakeups;
}

SQUALL_ASYNC_TEST(ConditionTest, NotifyAllWakesOnlyThoseWaitingWhenCalled) {
  Condition c;
  int wakeups = 0;
  auto first = wait_twice(c, wakeups);
  auto second = wait_twice(c, wakeups);
  c.notify_all();
  EXPECT_EQ(wakeups, 2);
  EXPECT_EQ(c.waiting(), 2u);
  c.notify_all();
  EXPECT_EQ(wakeups, 4);
  co_await first;
  co_await second;
}

SQUALL_ASYNC_TEST(ConditionTest, WaitResolvesToFalseWhenTheTimeoutPasses) {
  Condition c;
  TimePoint start = io_loop().time();
  bool notified = co_await c.wait(50ms);
  EXPECT_FALSE(notified);
  EXPECT_EQ(io_loop().time() - start, 50ms);
  EXPECT_EQ(c.waiting(), 0u);
}

SQUALL_ASYNC_TEST(ConditionTest, WaitResolvesToFalseAtTheDeadline) {
  Condition c;
  TimePoint deadline = io_loop().time() + 2s;
  bool notified = co_await c.wait(deadline);
  EXPECT_FALSE(notified);
  EXPECT_EQ(io_loop().time(), deadline);
}

SQUALL_ASYNC_TEST(ConditionTest, NotifyBeforeTheTimeoutResolvesToTrue) {
  Condition c;
  io_loop().call_later(10ms, [&c] { c.notify(); });
  TimePoint start = io_loop().time();
  EXPECT_TRUE(co_await c.wait(1h));
  EXPECT_EQ(io_loop().time() - start, 10ms);
}

// Tornado's test_notify_n_with_timeout: a timed-out waiter does not count
// against notify(n).
SQUALL_ASYNC_TEST(ConditionTest, TimedOutWaiterDoesNotCountAgainstNotify) {
  Condition c;
  std::vector<std::string> history;
  auto w0 = wait_and_record(c, history, "0");
  auto w1 = wait_and_record(c, history, "1", 10ms);
  auto w2 = wait_and_record(c, history, "2");
  auto w3 = wait_and_record(c, history, "3");
  co_await after(20ms);
  EXPECT_EQ(history, (std::vector<std::string>{"timeout 1"}));
  EXPECT_EQ(c.waiting(), 3u);  // left the list when it timed out, not later
  c.notify(2);
  EXPECT_EQ(history, (std::vector<std::string>{"timeout 1", "0", "2"}));
  c.notify();
  EXPECT_EQ(history, (std::vector<std::string>{"timeout 1", "0", "2", "3"}));
  co_await w0;
  co_await w1;
  co_await w2;
  co_await w3;
}

// Tornado's test_garbage_collection: timed-out waiters do not pile up.
SQUALL_ASYNC_TEST(ConditionTest, ManyTimedOutWaitersLeaveNothingBehind) {
  Condition c;
  std::vector<Future<bool>> timed;
  for (int i = 0; i < 100; ++i) timed.push_back(c.wait(1ms));
  auto last = c.wait();
  EXPECT_EQ(c.waiting(), 101u);
  co_await after(2ms);
  EXPECT_EQ(c.waiting(), 1u);
  for (auto& f : timed) EXPECT_FALSE(f.result());
  c.notify();
  EXPECT_TRUE(co_await last);
}

SQUALL_ASYNC_TEST(ConditionTest, CancelledWaitLeavesTheListAndMissesNotify) {
  Condition c;
  Future<bool> cancelled = c.wait();
  auto next = c.wait();
  EXPECT_TRUE(cancelled.cancel());
  EXPECT_EQ(c.waiting(), 1u);
  c.notify();
  EXPECT_TRUE(cancelled.cancelled());
  EXPECT_TRUE(co_await next);
}

SQUALL_ASYNC_TEST(ConditionTest, DroppedWaitDoesNotTakeANotification) {
  Condition c;
  { auto dropped = c.wait(); }
  EXPECT_EQ(c.waiting(), 0u);
  auto kept = c.wait();
  c.notify();
  EXPECT_TRUE(co_await kept);
}

Future<void> wait_for_condition(Condition& c, bool& saw_cancel) {
  try {
    co_await c.wait();
  } catch (const CancelledError&) {
    saw_cancel = true;
    throw;
  }
}

SQUALL_ASYNC_TEST(ConditionTest, CancellingTheWaitingCoroutineRemovesItsWaiter) {
  Condition c;
  bool saw_cancel = false;
  auto waiter = wait_for_condition(c, saw_cancel);
  EXPECT_EQ(c.waiting(), 1u);
  waiter.cancel();
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_EQ(c.waiting(), 0u);
  co_return;
}

// --- Event ------------------------------------------------------------------------

SQUALL_ASYNC_TEST(EventTest, StartsClearAndWaitsUntilSet) {
  Event e;
  EXPECT_FALSE(e.is_set());
  auto waiting = e.wait();
  EXPECT_FALSE(waiting.done());
  e.set();
  EXPECT_TRUE(e.is_set());
  EXPECT_TRUE(waiting.done());
  co_await waiting;
}

SQUALL_ASYNC_TEST(EventTest, WaitOnASetEventIsReadyAtOnce) {
  Event e;
  e.set();
  auto waiting = e.wait();
  EXPECT_TRUE(waiting.done());
  EXPECT_EQ(e.waiting(), 0u);
  co_await waiting;
}

Future<void> wait_for_event(Event& e, int& woken) {
  co_await e.wait();
  ++woken;
}

SQUALL_ASYNC_TEST(EventTest, SetWakesEveryWaiterOnce) {
  Event e;
  int woken = 0;
  std::vector<Future<void>> waiters;
  for (int i = 0; i < 10; ++i) waiters.push_back(wait_for_event(e, woken));
  e.set();
  EXPECT_EQ(woken, 10);
  e.set();  // already set: nothing to do
  EXPECT_EQ(woken, 10);
  for (auto& w : waiters) co_await w;
}

// Tornado's test_event_wait_clear.
SQUALL_ASYNC_TEST(EventTest, ClearBetweenWaitsDoesNotLoseEarlierWaiters) {
  Event e;
  Future<void> f0 = e.wait();
  e.clear();
  Future<void> f1 = e.wait();
  e.set();
  EXPECT_TRUE(f0.done());
  EXPECT_TRUE(f1.done());
  e.clear();
  auto f2 = e.wait();
  EXPECT_FALSE(f2.done());
  e.set();
  co_await f2;
}

Future<void> wait_clear_wait(Event& e, int& rounds) {
  co_await e.wait();
  ++rounds;
  e.clear();
  co_await e.wait();  // queued while set() runs: not woken by it
  ++rounds;
}

SQUALL_ASYNC_TEST(EventTest, WaiterThatClearsAndWaitsAgainIsNotWokenBySameSet) {
  Event e;
  int rounds = 0;
  auto waiter = wait_clear_wait(e, rounds);
  e.set();
  EXPECT_EQ(rounds, 1);
  EXPECT_FALSE(e.is_set());
  e.set();
  EXPECT_EQ(rounds, 2);
  co_await waiter;
}

SQUALL_ASYNC_TEST(EventTest, WaitThrowsTimeoutErrorWhenTheTimeoutPasses) {
  Event e;
  TimePoint start = io_loop().time();
  bool timed_out = false;
  try {
    co_await e.wait(30ms);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(io_loop().time() - start, 30ms);
  EXPECT_EQ(e.waiting(), 0u);
  e.set();  // nobody left to wake
}

SQUALL_ASYNC_TEST(EventTest, WaitWithADeadlineThrowsTimeoutErrorThere) {
  Event e;
  TimePoint deadline = io_loop().time() + 1s;
  Future<void> f = e.wait(deadline);
  co_await after(2s);
  EXPECT_TRUE(f.done());
  EXPECT_THROW(f.result(), TimeoutError);
}

SQUALL_ASYNC_TEST(EventTest, CancelledWaitLeavesTheList) {
  Event e;
  Future<void> f = e.wait();
  f.cancel();
  EXPECT_EQ(e.waiting(), 0u);
  e.set();
  EXPECT_TRUE(f.cancelled());
  co_return;
}

Future<void> own_event_and_wait(Event*& out, int& finished) {
  Event e;
  out = &e;
  co_await e.wait();
  ++finished;
}  // destroys `e` while its set() is still running

SQUALL_ASYNC_TEST(EventTest, SetSurvivesTheEventBeingDestroyedByAWaiterItWakes) {
  Event* e = nullptr;
  int finished = 0;
  auto owner = own_event_and_wait(e, finished);
  Future<void> second = e->wait();  // set() would wake it next
  e->set();
  EXPECT_EQ(finished, 1);
  co_await owner;
  // The event died with `second` queued: it is abandoned, never resolved.
  EXPECT_FALSE(second.done());
}

// --- Semaphore ------------------------------------------------------------------------

Future<void> acquire_and_record(Semaphore& sem, std::vector<int>& order, int id) {
  auto guard = co_await sem.acquire();
  order.push_back(id);
}

TEST_F(SemaphoreTest, NegativeInitialValueIsRejected) {
  EXPECT_THROW(Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(BoundedSemaphore(-1), std::invalid_argument);
}

SQUALL_ASYNC_TEST(SemaphoreTest, AcquireIsReadyAtOnceWhilePermitsRemain) {
  Semaphore sem(2);
  auto a = sem.acquire();
  auto b = sem.acquire();
  auto c = sem.acquire();
  EXPECT_TRUE(a.done());
  EXPECT_TRUE(b.done());
  EXPECT_FALSE(c.done());
  EXPECT_EQ(sem.value(), 0);
  EXPECT_EQ(sem.waiting(), 1u);
  auto guard_a = co_await a;
  guard_a.release();  // hands the permit to c
  EXPECT_TRUE(c.done());
  EXPECT_EQ(sem.value(), 0);
  auto guard_b = co_await b;
  auto guard_c = co_await c;
  EXPECT_TRUE(guard_c.owns());
}

SQUALL_ASYNC_TEST(SemaphoreTest, ReleaseHandsPermitsToWaitersInFifoOrder) {
  Semaphore sem(0);
  std::vector<int> order;
  std::vector<Future<void>> waiters;
  for (int i = 0; i < 5; ++i) waiters.push_back(acquire_and_record(sem, order, i));
  EXPECT_TRUE(order.empty());
  sem.release();
  // Each waiter releases at its scope exit, handing the permit on.
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(sem.value(), 1);
  for (auto& w : waiters) co_await w;
}

TEST_F(SemaphoreTest, ReleaseWithoutAcquireAddsAPermit) {
  Semaphore sem(0);
  sem.release();
  sem.release();
  EXPECT_EQ(sem.value(), 2);
}

TEST_F(SemaphoreTest, BoundedSemaphoreRejectsReleasePastItsInitialValue) {
  BoundedSemaphore sem(1);
  EXPECT_THROW(sem.release(), InvalidStateError);
  EXPECT_EQ(sem.value(), 1);
  {
    auto guard = sem.acquire();
    EXPECT_EQ(sem.value(), 0);
  }
  EXPECT_EQ(sem.value(), 1);
  EXPECT_THROW(sem.release(), InvalidStateError);
}

SQUALL_ASYNC_TEST(SemaphoreTest, AcquireTimesOutAndNeverTakesAPermit) {
  Semaphore sem(0);
  TimePoint start = io_loop().time();
  bool timed_out = false;
  try {
    auto guard = co_await sem.acquire(20ms);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(io_loop().time() - start, 20ms);
  EXPECT_EQ(sem.waiting(), 0u);
  sem.release();
  EXPECT_EQ(sem.value(), 1);
}

SQUALL_ASYNC_TEST(SemaphoreTest, AcquireWithADeadlineTimesOutThere) {
  Semaphore sem(0);
  TimePoint deadline = io_loop().time() + 5s;
  Future<Semaphore::Guard> f = sem.acquire(deadline);
  co_await after(5s);
  EXPECT_THROW(f.result(), TimeoutError);
}

SQUALL_ASYNC_TEST(SemaphoreTest, AcquireGrantedBeforeItsTimeoutSucceeds) {
  Semaphore sem(0);
  io_loop().call_later(10ms, [&sem] { sem.release(); });
  auto guard = co_await sem.acquire(1s);
  EXPECT_TRUE(guard.owns());
  co_await after(2s);  // the timer is gone: nothing fires
  EXPECT_TRUE(guard.owns());
}

SQUALL_ASYNC_TEST(SemaphoreTest, TimeoutsInTheMiddleOfTheWaiterListRemoveOnlyThoseWaiters) {
  Semaphore sem(0);
  std::vector<Future<Semaphore::Guard>> waiters;
  for (int i = 0; i < 10; ++i) {
    // The odd ones give up after 5 ms.
    waiters.push_back(i % 2 ? sem.acquire(5ms) : sem.acquire());
  }
  co_await after(10ms);
  EXPECT_EQ(sem.waiting(), 5u);
  std::vector<int> served;
  sem.release();  // one permit travels down the line as each holder lets go
  for (int i = 0; i < 10; ++i) {
    if (waiters[i].done() && !waiters[i].exception()) {
      served.push_back(i);
      waiters[i].result().release();
    }
  }
  EXPECT_EQ(served, (std::vector<int>{0, 2, 4, 6, 8}));
  for (int i = 1; i < 10; i += 2) EXPECT_THROW(waiters[i].result(), TimeoutError);
  EXPECT_EQ(sem.value(), 1);
}

Future<void> hold_then_throw(Semaphore& sem) {
  auto guard = co_await sem.acquire();
  co_await after(1ms);
  throw std::runtime_error("boom");
}

SQUALL_ASYNC_TEST(SemaphoreTest, GuardReleasesWhenAnExceptionUnwinds) {
  Semaphore sem(1);
  auto failing = hold_then_throw(sem);
  EXPECT_EQ(sem.value(), 0);
  std::vector<int> order;
  auto next = acquire_and_record(sem, order, 7);
  bool threw = false;
  try {
    co_await failing;
  } catch (const std::runtime_error&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(order, (std::vector<int>{7}));  // the unwinding guard handed it on
  co_await next;
  EXPECT_EQ(sem.value(), 1);
}

TEST_F(SemaphoreTest, GuardReleasesOnceAndMovesOwnership) {
  Semaphore sem(1);
  auto acquired = sem.acquire();
  Future<Semaphore::Guard> f = std::move(acquired).future();
  Semaphore::Guard guard = std::move(f.result());
  EXPECT_EQ(sem.value(), 0);
  Semaphore::Guard moved = std::move(guard);
  EXPECT_FALSE(guard.owns());
  EXPECT_TRUE(moved.owns());
  moved.release();
  moved.release();
  EXPECT_EQ(sem.value(), 1);
}

Future<void> hold_for(Semaphore& sem, Duration d, int& holders, int& max_holders) {
  auto guard = co_await sem.acquire();
  max_holders = std::max(max_holders, ++holders);
  co_await after(d);
  --holders;
}

SQUALL_ASYNC_TEST(SemaphoreTest, AdmitsAtMostItsValueAtOnce) {
  Semaphore sem(2);
  int holders = 0;
  int max_holders = 0;
  TimePoint start = io_loop().time();
  std::vector<Future<void>> workers;
  for (int i = 0; i < 6; ++i) workers.push_back(hold_for(sem, 10ms, holders, max_holders));
  for (auto& w : workers) co_await w;
  EXPECT_EQ(max_holders, 2);
  EXPECT_EQ(io_loop().time() - start, 30ms);
  EXPECT_EQ(sem.value(), 2);
}

SQUALL_ASYNC_TEST(SemaphoreTest, CancelledWaiterIsNeverGrantedAPermit) {
  Semaphore sem(0);
  Future<Semaphore::Guard> cancelled = sem.acquire();
  std::vector<int> order;
  auto next = acquire_and_record(sem, order, 1);
  cancelled.cancel();
  EXPECT_EQ(sem.waiting(), 1u);
  sem.release();
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_TRUE(cancelled.cancelled());
  co_await next;
  EXPECT_EQ(sem.value(), 1);
}

Future<void> acquire_expecting_cancel(Semaphore& sem, bool& saw_cancel) {
  try {
    auto guard = co_await sem.acquire();
  } catch (const CancelledError&) {
    saw_cancel = true;
    throw;
  }
}

SQUALL_ASYNC_TEST(SemaphoreTest, CancellingTheWaitingCoroutineWithdrawsItsAcquire) {
  Semaphore sem(0);
  bool saw_cancel = false;
  auto waiter = acquire_expecting_cancel(sem, saw_cancel);
  EXPECT_EQ(sem.waiting(), 1u);
  waiter.cancel();
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(waiter.cancelled());
  EXPECT_EQ(sem.waiting(), 0u);
  sem.release();
  EXPECT_EQ(sem.value(), 1);
  co_return;
}

SQUALL_ASYNC_TEST(SemaphoreTest, AbandonedFutureDoesNotDeadlockTheOthers) {
  Semaphore sem(0);
  {
    Future<Semaphore::Guard> abandoned = sem.acquire();  // converted, then dropped
  }
  EXPECT_EQ(sem.waiting(), 1u);  // a Future might still be watched: it stays
  std::vector<int> order;
  auto next = acquire_and_record(sem, order, 2);
  sem.release();  // the abandoned waiter's guard dies with its Future and hands on
  EXPECT_EQ(order, (std::vector<int>{2}));
  co_await next;
  EXPECT_EQ(sem.value(), 1);
}

SQUALL_ASYNC_TEST(SemaphoreTest, DroppedPendingAcquireIsWithdrawn) {
  Semaphore sem(0);
  { auto dropped = sem.acquire(); }
  EXPECT_EQ(sem.waiting(), 0u);
  sem.release();
  EXPECT_EQ(sem.value(), 1);
  co_return;
}

// --- Lock ---------------------------------------------------------------------------

Future<void> lock_and_record(Lock& lock, std::vector<int>& order, int id) {
  auto guard = co_await lock.acquire();
  order.push_back(id);
}

TEST_F(LockTest, AcquireAndReleaseToggleLocked) {
  Lock lock;
  EXPECT_FALSE(lock.locked());
  {
    auto guard = lock.acquire();
    EXPECT_TRUE(guard.done());
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
  Future<Lock::Guard> f = lock.acquire();
  f.result().release();
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, ReleasingAnUnlockedLockThrows) {
  Lock lock;
  EXPECT_THROW(lock.release(), InvalidStateError);
  EXPECT_FALSE(lock.locked());
}

TEST_F(LockTest, ManualReleaseThenGuardReleaseLogsAnError) {
  Lock lock;
  testing::ExpectLog expect("squall.application", "already released by hand", true, log::Level::error);
  {
    Future<Lock::Guard> f = lock.acquire();
    Lock::Guard guard = std::move(f.result());
    lock.release();
    EXPECT_FALSE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
}

// Tornado's test_acquire_fifo, with 1,000 waiters.
SQUALL_ASYNC_TEST(LockTest, ServesAThousandWaitersInFifoOrder) {
  Lock lock;
  std::vector<int> order;
  std::vector<Future<void>> waiters;
  {
    auto held = co_await lock.acquire();
    for (int i = 0; i < 1000; ++i) waiters.push_back(lock_and_record(lock, order, i));
    EXPECT_EQ(lock.waiting(), 1000u);
    EXPECT_TRUE(order.empty());
  }  // the release hands the lock down the whole line
  std::vector<int> expected(1000);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(order, expected);
  EXPECT_FALSE(lock.locked());
  for (auto& w : waiters) co_await w;
}

Future<void> lock_hold_and_record(Lock& lock, std::vector<std::string>& order, std::string name) {
  auto guard = co_await lock.acquire();
  order.push_back(name);
  co_await after(1ms);
}

SQUALL_ASYNC_TEST(LockTest, HolderThatReleasesAndAcquiresAgainGoesBehindTheWaiters) {
  Lock lock;
  std::vector<std::string> order;
  auto guard = co_await lock.acquire();
  auto a = lock_hold_and_record(lock, order, "a");
  auto b = lock_hold_and_record(lock, order, "b");
  guard.release();
  guard = co_await lock.acquire();
  order.push_back("holder");
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "holder"}));
  co_await a;
  co_await b;
}

SQUALL_ASYNC_TEST(LockTest, AcquireTimesOutWhileTheHolderKeepsTheLock) {
  Lock lock;
  auto guard = co_await lock.acquire();
  bool timed_out = false;
  try {
    auto second = co_await lock.acquire(10ms);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(lock.locked());
  EXPECT_EQ(lock.waiting(), 0u);
}

Future<void> lock_then_throw(Lock& lock) {
  auto guard = co_await lock.acquire();
  throw std::runtime_error("inside the critical section");
}

SQUALL_ASYNC_TEST(LockTest, GuardReleasesWhenAnExceptionUnwinds) {
  Lock lock;
  auto failing = lock_then_throw(lock);
  EXPECT_TRUE(failing.done());
  EXPECT_THROW(failing.result(), std::runtime_error);
  EXPECT_FALSE(lock.locked());
  auto guard = co_await lock.acquire();
  EXPECT_TRUE(lock.locked());
}

Future<void> wait_for_lock_holding(Lock& lock, int& live) {
  Counted counted(live);
  auto guard = co_await lock.acquire();
}

Future<void> own_lock_and_queue_behind(Lock*& out, Future<Lock::Guard>& outside, int& finished) {
  Lock lock;
  out = &lock;
  outside = lock.acquire();              // ready: held from outside this coroutine
  auto guard = co_await lock.acquire();  // queues behind it
  ++finished;
}  // destroys the guard, then the lock, inside the release that resumed it

SQUALL_ASYNC_TEST(LockTest, ReleaseSurvivesTheLockBeingDestroyedByTheWaiterItResumes) {
  Lock* lock = nullptr;
  Future<Lock::Guard> outside;
  int finished = 0;
  int live = 0;
  auto owner = own_lock_and_queue_behind(lock, outside, finished);
  auto behind = wait_for_lock_holding(*lock, live);  // would be served next
  EXPECT_EQ(lock->waiting(), 2u);
  EXPECT_EQ(live, 1);
  outside.result().release();
  EXPECT_EQ(finished, 1);
  EXPECT_EQ(live, 0);  // abandoned with the lock, and its frame freed
  EXPECT_FALSE(behind.done());
  co_await owner;
}

Future<void> wait_for_permit_holding(Semaphore& sem, int& live) {
  Counted counted(live);
  auto guard = co_await sem.acquire();
}

TEST_F(SemaphoreTest, DestroyingASemaphoreWithWaitersFreesTheirCoroutines) {
  int live = 0;
  std::vector<Future<void>> waiters;
  {
    Semaphore sem(0);
    for (int i = 0; i < 3; ++i) waiters.push_back(wait_for_permit_holding(sem, live));
    EXPECT_EQ(live, 3);
    EXPECT_EQ(sem.waiting(), 3u);
  }
  EXPECT_EQ(live, 0);
  for (auto& w : waiters) EXPECT_FALSE(w.done());
}

SQUALL_ASYNC_TEST(LockTest, FastPathsDoNotAllocate) {
  Lock lock;
  Semaphore sem(2);
  Event event;
  event.set();
  tls_allocations = 0;
  int held = 0;
  for (int i = 0; i < 100; ++i) {
    auto guard = co_await lock.acquire();
    auto permit = co_await sem.acquire();
    co_await event.wait();
    held += guard.owns() && permit.owns();
  }
  long counted = std::exchange(tls_allocations, -1);
  EXPECT_EQ(counted, 0);
  EXPECT_EQ(held, 100);
  // The counter does see allocations: a wait that must wait makes a Future.
  Semaphore empty(0);
  tls_allocations = 0;
  { auto waiting = empty.acquire(); }
  EXPECT_GT(std::exchange(tls_allocations, -1), 0);
}

// --- WaiterList -------------------------------------------------------------------------

TEST_F(WaiterListTest, ServingAWaiterRemovesItsTimer) {
  detail::WaiterList list;
  Future<void> f;
  list.push(f.state(), io_loop().time() + 1h);
  EXPECT_EQ(list.armed_timers(), 1u);
  auto state = list.pop_front();
  EXPECT_EQ(list.armed_timers(), 0u);
  EXPECT_TRUE(list.empty());
  static_cast<detail::FutureState<void>*>(state.get())->set_result();
  EXPECT_TRUE(f.done());
}

TEST_F(WaiterListTest, ATimedOutWaiterLeavesAtOnceAndFreesItsSlot) {
  detail::WaiterList list;
  Future<void> a;
  Future<void> b;
  Future<void> c;
  list.push(a.state(), std::nullopt);
  list.push(b.state(), io_loop().time() + 1ms);
  list.push(c.state(), std::nullopt);
  io_loop().run_sync([&] { return after(2ms); });
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.armed_timers(), 0u);
  EXPECT_THROW(b.result(), TimeoutError);
  // The freed slot is reused rather than growing the slab.
  Future<void> d;
  list.push(d.state(), std::nullopt);
  EXPECT_EQ(list.slot_count(), 3u);
  list.clear();
  EXPECT_TRUE(list.empty());
}

TEST_F(WaiterListTest, AListOutlivingItsLoopDoesNotTouchIt) {
  detail::WaiterList list;
  Future<void> f;
  {
    IOLoop other(IOLoop::Options{.make_current = false});
    other.make_current();
    list.push(f.state(), other.time() + 1h);
    EXPECT_EQ(list.armed_timers(), 1u);
    other.close();  // destroys the timer: the list hears of it
    EXPECT_EQ(list.armed_timers(), 0u);
    other.clear_current();
  }
  io_loop().make_current();
  list.clear();  // must not call remove_timeout on the dead loop
  EXPECT_FALSE(f.done());
}

}  // namespace
}  // namespace squall

// --- the examples of docs/guide/locks-and-queues.md ----------------------------------
// Written as an application would write them (outside namespace squall, with
// gen.hpp's sleep); the guide quotes them and the tests below run them.

namespace guide {

using namespace std::chrono_literals;

squall::Future<void> add_to_balance(squall::Lock& lock, int& balance, int amount) {
  auto guard = co_await lock.acquire();  // released at scope exit, also by an exception
  int read = balance;
  co_await squall::sleep(1ms);  // other coroutines run here...
  balance = read + amount;      // ...but none of them touched the balance
}

// At most two downloads at once; a download that waits more than 50 ms for
// a slot gives up.
squall::Future<bool> download(squall::Semaphore& slots, int& running, int& most_at_once) {
  try {
    auto slot = co_await slots.acquire(50ms);
    most_at_once = std::max(most_at_once, ++running);
    co_await squall::sleep(20ms);  // the download itself
    --running;
    co_return true;
  } catch (const squall::TimeoutError&) {
    co_return false;  // no free slot within 50 ms
  }
}

// Requests wait until the configuration is loaded.
struct Service {
  squall::Event ready;
  std::string config;

  squall::Future<void> load() {
    co_await squall::sleep(10ms);  // reading it takes a while
    config = "v2";
    ready.set();  // wakes every waiting request, now
  }

  squall::Future<std::string> handle(std::string request) {
    co_await ready.wait();  // ready at once when already set
    co_return request + " with config " + config;
  }
};

// A batch filled by producers; a consumer waits until it holds n items, or
// gives up at a deadline.
struct Batch {
  squall::Condition changed;
  std::vector<int> items;

  void add(int item) {
    items.push_back(item);
    changed.notify_all();
  }

  squall::Future<bool> wait_for(std::size_t n) {
    squall::TimePoint deadline = squall::IOLoop::current().time() + 1s;
    while (items.size() < n) {
      if (!co_await changed.wait(deadline)) co_return false;  // the deadline passed
    }
    co_return true;
  }
};

void lock_or_future(squall::Lock& lock) {
  auto acquiring = lock.acquire();  // a FutureOr<Lock::Guard>: ready here, no allocation
  squall::Future<squall::Lock::Guard> f = std::move(acquiring).future();  // a real Future
  f.add_done_callback([](squall::Future<squall::Lock::Guard> done) {
    squall::Lock::Guard guard = std::move(done.result());  // holds the lock until it dies
  });
}

}  // namespace guide

class LocksGuideTest : public squall::testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }
};

SQUALL_ASYNC_TEST(LocksGuideTest, LockKeepsConcurrentUpdatesFromLosingEachOther) {
  squall::Lock lock;
  int balance = 0;
  std::vector<squall::Future<void>> updates;
  for (int amount = 1; amount <= 10; ++amount) updates.push_back(guide::add_to_balance(lock, balance, amount));
  for (auto& u : updates) co_await u;
  EXPECT_EQ(balance, 55);
}

SQUALL_ASYNC_TEST(LocksGuideTest, SemaphoreBoundsDownloadsAndTimesOutTheLateOnes) {
  squall::Semaphore slots(2);
  int running = 0;
  int most_at_once = 0;
  std::vector<squall::Future<bool>> downloads;
  for (int i = 0; i < 8; ++i) downloads.push_back(guide::download(slots, running, most_at_once));
  std::vector<bool> done;
  for (auto& d : downloads) done.push_back(co_await d);
  // Slots free up at 20, 40 and 60 ms; the last two waited past 50 ms.
  EXPECT_EQ(done, (std::vector<bool>{true, true, true, true, true, true, false, false}));
  EXPECT_EQ(most_at_once, 2);
}

SQUALL_ASYNC_TEST(LocksGuideTest, EventHoldsRequestsUntilTheConfigurationIsLoaded) {
  guide::Service service;
  auto early = service.handle("early");
  auto loading = service.load();
  EXPECT_FALSE(early.done());
  EXPECT_EQ(co_await early, "early with config v2");
  auto late = service.handle("late");
  EXPECT_TRUE(late.done());
  EXPECT_EQ(co_await late, "late with config v2");
  co_await loading;
}

SQUALL_ASYNC_TEST(LocksGuideTest, ConditionWaitsForABatchOrItsDeadline) {
  guide::Batch batch;
  auto three = batch.wait_for(3);
  auto ten = batch.wait_for(10);
  for (int i = 0; i < 3; ++i) batch.add(i);
  EXPECT_TRUE(co_await three);
  squall::TimePoint start = io_loop().time();
  EXPECT_FALSE(co_await ten);
  EXPECT_LE(io_loop().time() - start, 1s);
}

TEST_F(LocksGuideTest, AcquireConvertsToAFuture) {
  squall::Lock lock;
  guide::lock_or_future(lock);
  EXPECT_FALSE(lock.locked());  // the callback ran at once and its guard died
}
