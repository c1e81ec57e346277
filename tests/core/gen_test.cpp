#include "squall/core/gen.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/core/unique_fd.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall {
namespace {

using testing::ExpectLog;

/// Counts live instances: a coroutine holding one is proven freed when the
/// count drops (cppcoro's counted.hpp).
struct Counted {
  static inline int live = 0;
  Counted() { ++live; }
  Counted(const Counted&) { ++live; }
  ~Counted() { --live; }
};

class GenTest : public testing::AsyncTest {
 protected:
  void SetUp() override {
    AsyncTest::SetUp();
    Counted::live = 0;
  }
  void TearDown() override {
    EXPECT_EQ(Counted::live, 0) << "a coroutine frame outlived the test";
    AsyncTest::TearDown();
  }

  /// Runs `start` with a private loop current, closes that loop, and
  /// returns how many Counted are still alive: the coroutines `start`
  /// began must all have been freed by the close.
  int live_after_closing_a_loop(UniqueFunction<Future<void>()> start) {
    {
      IOLoop loop(IOLoop::Options{.make_current = false});
      loop.make_current();
      Future<void> task = start();
      EXPECT_FALSE(task.done());
      loop.close();
    }
    io_loop().make_current();
    return Counted::live;
  }
};

/// Idle time jumps to the next timer: long timeouts take no real time and
/// elapsed loop time is exact.
class GenVirtualTest : public GenTest {
 protected:
  bool use_virtual_clock() const override { return true; }
  // Virtual time too: a test that hangs jumps straight to this deadline.
  Duration async_test_timeout() const override { return 24h; }
};

/// Awaits `f`; records whether CancelledError was thrown at the co_await.
template <class T>
Future<void> await_recording(Future<T> f, bool& saw_cancel) {
  Counted frame;
  try {
    co_await std::move(f);
  } catch (const CancelledError&) {
    saw_cancel = true;
    throw;
  }
}

Future<int> delayed(int value, Duration delay) {
  Counted frame;
  co_await sleep(delay);
  co_return value;
}

Future<int> fail_after(Duration delay, std::string message) {
  Counted frame;
  co_await sleep(delay);
  throw std::runtime_error(message);
}

/// Catches its cancellation, then fails with another exception.
Future<void> fails_when_cancelled() {
  Counted frame;
  try {
    co_await sleep(1h);
  } catch (const CancelledError&) {
  }
  throw std::runtime_error("cleanup failed");
}

std::string message_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

// --- sleep ---------------------------------------------------------------------------

SQUALL_ASYNC_TEST(GenVirtualTest, SleepResumesAfterExactlyItsDelay) {
  auto start = io_loop().time();
  co_await sleep(10s);
  EXPECT_EQ(io_loop().time() - start, 10s);
}

SQUALL_ASYNC_TEST(GenVirtualTest, SleepUntilResumesAtItsDeadline) {
  auto deadline = io_loop().time() + 3s;
  co_await sleep_until(deadline);
  EXPECT_EQ(io_loop().time(), deadline);
}

SQUALL_ASYNC_TEST(GenTest, SleepOfZeroResolvesOnALaterIteration) {
  Future<void> f = sleep(0s);
  EXPECT_FALSE(f.done());
  co_await f;
}

TEST_F(GenTest, CancellingASleepRemovesItsTimer) {
  Future<void> f = sleep(1h);
  EXPECT_EQ(f.state()->ref_count(), 2u);  // ours and the timer's
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(f.state()->ref_count(), 1u);  // the timer callback is gone
  EXPECT_THROW(f.result(), CancelledError);
}

SQUALL_ASYNC_TEST(GenVirtualTest, CancellingACoroutineAsleepThrowsCancelledErrorAtTheSleep) {
  auto start = io_loop().time();
  bool saw_cancel = false;
  Future<void> task = await_recording(sleep(1h), saw_cancel);
  io_loop().call_later(1s, [task]() mutable { task.cancel(); });
  try {
    co_await task;
    ADD_FAILURE() << "the task was not cancelled";
  } catch (const CancelledError&) {
  }
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(task.cancelled());
  EXPECT_EQ(io_loop().time() - start, 1s);
}

TEST_F(GenTest, ACoroutineAsleepWhenItsLoopClosesIsFreed) {
  bool saw_cancel = false;
  EXPECT_EQ(live_after_closing_a_loop([&] { return await_recording(sleep(1h), saw_cancel); }), 0);
  EXPECT_FALSE(saw_cancel);
}

TEST_F(GenTest, CancellingASleepAfterItsLoopWasDestroyedIsHarmless) {
  Future<void> f = make_ready_future();
  {
    IOLoop loop(IOLoop::Options{.make_current = false});
    loop.make_current();
    f = sleep(1h);
    loop.close();
  }
  io_loop().make_current();
  // The cancel handler names the destroyed loop: it must have been dropped.
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
}

// --- moment ---------------------------------------------------------------------------

SQUALL_ASYNC_TEST(GenTest, MomentResolvesAfterTheCallbacksAlreadyScheduled) {
  bool ran = false;
  io_loop().add_callback([&ran] { ran = true; });
  Future<void> m = moment();
  EXPECT_FALSE(m.done());
  co_await m;
  EXPECT_TRUE(ran);
}

SQUALL_ASYNC_TEST(GenTest, MomentLetsReadyIoRunBeforeItResolves) {
  int fds[2];
  CO_ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  UniqueFd reader(fds[0]);
  UniqueFd writer(fds[1]);
  bool readable = false;
  io_loop().add_handler(reader.get(), IOLoop::READ, [&](int fd, std::uint32_t) {
    readable = true;
    io_loop().remove_handler(fd);
  });
  CO_ASSERT_EQ(::write(writer.get(), "x", 1), 1);
  co_await moment();
  EXPECT_TRUE(readable);
  io_loop().remove_handler(reader.get());
}

SQUALL_ASYNC_TEST(GenTest, CancellingACoroutineAwaitingMomentThrowsCancelledError) {
  bool saw_cancel = false;
  Future<void> task = await_recording(moment(), saw_cancel);
  EXPECT_TRUE(task.cancel());
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(task.cancelled());
  co_await moment();  // the abandoned moment's callback runs and does nothing
}

// --- multi ------------------------------------------------------------------------------

TEST_F(GenTest, MultiOfNothingIsDoneAtOnce) {
  auto v = multi(std::vector<Future<int>>{});
  ASSERT_TRUE(v.done());
  EXPECT_TRUE(v.result().empty());
  auto m = multi(std::map<std::string, Future<int>>{});
  ASSERT_TRUE(m.done());
  EXPECT_TRUE(m.result().empty());
  auto u = multi(std::unordered_map<int, Future<int>>{});
  ASSERT_TRUE(u.done());
  EXPECT_TRUE(u.result().empty());
  Future<void> w = multi(std::vector<Future<void>>{});
  EXPECT_TRUE(w.done());
  Future<void> wm = multi(std::map<int, Future<void>>{});
  EXPECT_TRUE(wm.done());
}

SQUALL_ASYNC_TEST(GenVirtualTest, MultiKeepsInputOrderWhateverTheCompletionOrder) {
  auto start = io_loop().time();
  // GCC 12 rejects a braced list in the same expression as co_await
  // ("array used as initializer"): name the future first.
  auto all = multi({delayed(1, 3s), delayed(2, 1s), delayed(3, 2s)});
  std::vector<int> got = co_await std::move(all);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(io_loop().time() - start, 3s);
}

TEST_F(GenTest, MultiOfFuturesAlreadyDoneIsDoneAtOnce) {
  auto all = multi({make_ready_future(1), make_ready_future(2)});
  ASSERT_TRUE(all.done());
  EXPECT_EQ(all.result(), (std::vector<int>{1, 2}));

  Future<int> pending;
  auto failed = multi({pending, make_exception_future<int>(std::make_exception_ptr(std::runtime_error("early")))});
  ASSERT_TRUE(failed.done());
  EXPECT_EQ(message_of(failed.exception()), "early");
  pending.set_result(3);  // ignored: the result is already decided
}

SQUALL_ASYNC_TEST(GenVirtualTest, MultiOfVoidFuturesWaitsForAllOfThem) {
  auto start = io_loop().time();
  auto all = multi({sleep(2s), sleep(1s), moment()});
  co_await std::move(all);
  EXPECT_EQ(io_loop().time() - start, 2s);
  std::vector<Future<void>> one;
  one.push_back(sleep(1s));
  co_await multi(std::move(one));
  EXPECT_EQ(io_loop().time() - start, 3s);
}

SQUALL_ASYNC_TEST(GenVirtualTest, MultiOfAMapGivesEachKeyItsValue) {
  std::map<std::string, Future<int>> children;
  children.emplace("slow", delayed(1, 2s));
  children.emplace("fast", delayed(2, 1s));
  std::map<std::string, int> got = co_await multi(std::move(children));
  EXPECT_EQ(got, (std::map<std::string, int>{{"slow", 1}, {"fast", 2}}));

  std::unordered_map<int, Future<int>> by_id;
  by_id.emplace(7, delayed(70, 1s));
  by_id.emplace(8, delayed(80, 2s));
  std::unordered_map<int, int> ids = co_await multi(std::move(by_id));
  EXPECT_EQ(ids, (std::unordered_map<int, int>{{7, 70}, {8, 80}}));

  std::map<int, Future<void>> sleeps;
  sleeps.emplace(1, sleep(1s));
  sleeps.emplace(2, sleep(2s));
  auto start = io_loop().time();
  co_await multi(std::move(sleeps));
  EXPECT_EQ(io_loop().time() - start, 2s);
}

TEST_F(GenTest, MultiMovesMoveOnlyValues) {
  Future<std::unique_ptr<int>> a;
  Future<std::unique_ptr<int>> b;
  auto all = multi({a, b});
  b.set_result(std::make_unique<int>(2));
  a.set_result(std::make_unique<int>(1));
  ASSERT_TRUE(all.done());
  auto& got = all.result();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(*got[0], 1);
  EXPECT_EQ(*got[1], 2);
}

TEST_F(GenTest, MultiFailsAtOnceWithTheFirstExceptionAndLogsTheLaterOnes) {
  Future<int> a, b, c;
  auto all = multi({a, b, c});
  b.set_exception(std::runtime_error("first"));
  ASSERT_TRUE(all.done());  // a and c are still pending
  EXPECT_FALSE(a.done());
  {
    ExpectLog expect("squall.application", "Multiple exceptions in yield list: second");
    c.set_exception(std::runtime_error("second"));
  }
  a.set_result(1);
  EXPECT_FALSE(a.cancelled());  // the others were not cancelled
  EXPECT_EQ(message_of(all.exception()), "first");
}

TEST_F(GenTest, MultiDoesNotLogQuietExceptions) {
  Future<int> a, b, c;
  auto all = multi({a, b, c}, MultiOptions{.quiet_exceptions = exception_types<TimeoutError, std::logic_error>()});
  a.set_exception(TimeoutError("first"));
  b.set_exception(std::invalid_argument("quiet: derives from logic_error"));
  {
    ExpectLog expect("squall.application", "Multiple exceptions in yield list: loud");
    c.set_exception(std::runtime_error("loud"));
  }
  EXPECT_THROW(all.result(), TimeoutError);  // quiet only affects logging
}

TEST_F(GenTest, MultiFailsWithCancelledErrorButIsNotCancelledWhenAChildIsCancelled) {
  Future<int> a, b;
  auto all = multi({a, b});
  a.cancel();
  ASSERT_TRUE(all.done());
  EXPECT_FALSE(all.cancelled());
  EXPECT_THROW(all.result(), CancelledError);
  EXPECT_FALSE(b.done());
}

TEST_F(GenTest, CancellingMultiCancelsEveryPendingChild) {
  bool saw_cancel = false;
  Future<void> sleeper = await_recording(sleep(1h), saw_cancel);
  Future<void> plain;
  Future<void> finished = make_ready_future();
  auto all = multi({sleeper, plain, finished});
  EXPECT_EQ(all.state()->ref_count(), 2u);  // ours and multi's
  EXPECT_TRUE(all.cancel());
  EXPECT_TRUE(all.cancelled());
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(sleeper.cancelled());
  EXPECT_TRUE(plain.cancelled());
  EXPECT_FALSE(finished.cancelled());
  EXPECT_EQ(all.state()->ref_count(), 1u);  // multi's machinery is gone
}

TEST_F(GenTest, CancellingACoroutineAwaitingMultiCancelsTheChildren) {
  bool child_saw = false, parent_saw = false;
  Future<void> child = await_recording(sleep(1h), child_saw);
  Future<void> parent = await_recording(multi({child, sleep(1h)}), parent_saw);
  EXPECT_TRUE(parent.cancel());
  EXPECT_TRUE(parent_saw);
  EXPECT_TRUE(child_saw);
  EXPECT_TRUE(parent.cancelled());
}

TEST_F(GenTest, AChildFailingAfterMultiWasCancelledIsLogged) {
  auto all = multi({fails_when_cancelled()});
  ExpectLog expect("squall.application", R"(after multi\(\) was cancelled: cleanup failed)");
  EXPECT_TRUE(all.cancel());
  EXPECT_TRUE(all.cancelled());
}

TEST_F(GenTest, ACoroutineAwaitingMultiWhenItsLoopClosesIsFreed) {
  bool saw_cancel = false;
  int live = live_after_closing_a_loop([&] {
    return await_recording(multi({delayed(1, 1h), delayed(2, 2h)}), saw_cancel);
  });
  EXPECT_EQ(live, 0);
}

TEST_F(GenTest, CancellingMultiAfterAChildWasDestroyedUnfinishedCancelsTheRest) {
  Future<int> kept;
  auto all = [&] {
    Future<int> doomed;  // dies pending when this returns: it can never report
    return multi({kept, doomed});
  }();
  EXPECT_TRUE(all.cancel());
  EXPECT_TRUE(kept.cancelled());
}

TEST_F(GenTest, MultiRejectsAMovedFromFuture) {
  Future<int> a;
  Future<int> moved = std::move(a);
  std::vector<Future<int>> children;
  children.push_back(std::move(a));  // NOLINT: testing the moved-from case
  EXPECT_THROW(multi(std::move(children)), std::invalid_argument);
}

// --- with_timeout ------------------------------------------------------------------------

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutGivesTheValueWhenInTime) {
  auto start = io_loop().time();
  int v = co_await with_timeout(2s, delayed(7, 1s));
  EXPECT_EQ(v, 7);
  EXPECT_EQ(io_loop().time() - start, 1s);
}

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutPassesOnTheFuturesException) {
  try {
    co_await with_timeout(2s, fail_after(1s, "inner failed"));
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "inner failed");
  }
}

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutThrowsTimeoutErrorAndLeavesTheFutureRunning) {
  auto start = io_loop().time();
  Future<int> slow = delayed(7, 10s);
  bool timed_out = false;
  try {
    co_await with_timeout(1s, slow);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(io_loop().time() - start, 1s);
  EXPECT_FALSE(slow.done());
  EXPECT_EQ(co_await slow, 7);
  EXPECT_EQ(io_loop().time() - start, 10s);
}

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutOfThirtySecondsExpiresInstantlyOnAVirtualClock) {
  auto real_start = SteadyClock::now();
  auto start = io_loop().time();
  Future<void> never;
  bool timed_out = false;
  try {
    co_await with_timeout(30s, never);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(io_loop().time() - start, 30s);
  EXPECT_LT(SteadyClock::now() - real_start, 5s);
}

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutAcceptsADeadline) {
  auto deadline = io_loop().time() + 2s;
  bool timed_out = false;
  try {
    co_await with_timeout(deadline, delayed(1, 5s));
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(io_loop().time(), deadline);
  co_await sleep(3s);  // let the abandoned coroutine finish
}

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutCanCancelTheFutureOnTimeout) {
  bool saw_cancel = false;
  Future<void> work = await_recording(sleep(1h), saw_cancel);
  bool timed_out = false;
  try {
    co_await with_timeout(1s, work, WithTimeoutOptions{.cancel_on_timeout = true});
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(work.cancelled());
}

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutLogsAFailureThatArrivesAfterTheTimeout) {
  Future<int> inner;
  bool timed_out = false;
  try {
    co_await with_timeout(1s, inner);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  ExpectLog expect("squall.application", "Exception in Future after timeout: late failure");
  inner.set_exception(std::runtime_error("late failure"));
}

SQUALL_ASYNC_TEST(GenVirtualTest, WithTimeoutDoesNotLogALateQuietFailure) {
  Future<int> inner;
  bool timed_out = false;
  try {
    co_await with_timeout(1s, inner, WithTimeoutOptions{.quiet_exceptions = exception_types<std::runtime_error>()});
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  // Neither logged here nor, when `inner` dies, as never retrieved.
  inner.set_exception(std::runtime_error("expected late failure"));
}

TEST_F(GenTest, WithTimeoutOfADoneFutureIsDoneAtOnceWithoutATimer) {
  auto ok = with_timeout(1h, make_ready_future(5));
  ASSERT_TRUE(ok.done());
  EXPECT_EQ(ok.result(), 5);
  EXPECT_EQ(ok.state()->ref_count(), 1u);  // no timer holds it

  auto failed = with_timeout(1h, make_exception_future<int>(std::make_exception_ptr(std::runtime_error("x"))));
  ASSERT_TRUE(failed.done());
  EXPECT_THROW(failed.result(), std::runtime_error);

  Future<int> cancelled;
  cancelled.cancel();
  auto mirrored = with_timeout(1h, cancelled);
  EXPECT_TRUE(mirrored.cancelled());
}

TEST_F(GenTest, CancellingWithTimeoutCancelsTheFutureAndRemovesTheTimer) {
  bool saw_cancel = false;
  Future<void> work = await_recording(sleep(1h), saw_cancel);
  auto out = with_timeout(1h, work);
  EXPECT_EQ(out.state()->ref_count(), 2u);  // ours and with_timeout's
  EXPECT_TRUE(out.cancel());
  EXPECT_TRUE(out.cancelled());
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(work.cancelled());
  EXPECT_EQ(out.state()->ref_count(), 1u);  // the timer is gone with the rest
}

TEST_F(GenTest, CancellingWithTimeoutAfterItsLoopWasDestroyedIsHarmless) {
  Future<int> inner;
  Future<int> out = make_ready_future(0);
  {
    IOLoop loop(IOLoop::Options{.make_current = false});
    loop.make_current();
    out = with_timeout(1h, inner);
    loop.close();
  }
  io_loop().make_current();
  // `inner` keeps with_timeout's machinery alive; its timer went with the
  // loop and must not be removed from the destroyed loop now.
  EXPECT_TRUE(out.cancel());
  EXPECT_TRUE(inner.cancelled());
}

SQUALL_ASYNC_TEST(GenVirtualTest, TimeoutOfAFutureDestroyedUnfinishedStillExpires) {
  auto out = [] {
    Future<int> doomed;  // dies pending when this returns
    return timeout(1s, doomed);
  }();
  bool timed_out = false;
  try {
    co_await std::move(out);
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
}

TEST_F(GenTest, CancellingACoroutineAwaitingWithTimeoutCancelsTheFuture) {
  bool child_saw = false, parent_saw = false;
  Future<void> child = await_recording(sleep(1h), child_saw);
  Future<void> parent = await_recording(with_timeout(1h, child), parent_saw);
  EXPECT_TRUE(parent.cancel());
  EXPECT_TRUE(parent_saw);
  EXPECT_TRUE(child_saw);
}

TEST_F(GenTest, ACoroutineAwaitingWithTimeoutWhenItsLoopClosesIsFreed) {
  bool saw_cancel = false;
  EXPECT_EQ(live_after_closing_a_loop([&] { return await_recording(with_timeout(1h, delayed(1, 2h)), saw_cancel); }),
            0);
}

// --- timeout -------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(GenVirtualTest, TimeoutCancelsTheWorkAndThrowsTimeoutError) {
  auto start = io_loop().time();
  bool saw_cancel = false;
  bool timed_out = false;
  try {
    co_await timeout(5s, await_recording(sleep(1h), saw_cancel));
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(io_loop().time() - start, 5s);
}

SQUALL_ASYNC_TEST(GenVirtualTest, TimeoutGivesTheValueOfWorkDoneInTime) {
  EXPECT_EQ(co_await timeout(5s, delayed(3, 1s)), 3);
  auto deadline = io_loop().time() + 5s;
  EXPECT_EQ(co_await timeout_at(deadline, delayed(4, 1s)), 4);
}

Future<void> cleans_up_slowly(bool& cleaned) {
  Counted frame;
  bool cancelled = false;
  try {
    co_await sleep(1h);
  } catch (const CancelledError&) {
    cancelled = true;  // co_await is not allowed in a handler: clean up below
  }
  if (cancelled) {
    co_await sleep(1s);
    cleaned = true;
    throw CancelledError();
  }
}

SQUALL_ASYNC_TEST(GenVirtualTest, TimeoutWaitsForTheWorkToFinishCleaningUp) {
  auto start = io_loop().time();
  bool cleaned = false;
  bool timed_out = false;
  try {
    co_await timeout(5s, cleans_up_slowly(cleaned));
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(cleaned);
  EXPECT_EQ(io_loop().time() - start, 6s);
}

Future<int> swallows_cancellation() {
  Counted frame;
  try {
    co_await sleep(1h);
  } catch (const CancelledError&) {
  }
  co_return 42;
}

SQUALL_ASYNC_TEST(GenVirtualTest, TimeoutGivesTheValueOfWorkThatSwallowsItsCancellation) {
  EXPECT_EQ(co_await timeout(1s, swallows_cancellation()), 42);
}

SQUALL_ASYNC_TEST(GenVirtualTest, TimeoutPassesOnAnotherExceptionRaisedByTheCancelledWork) {
  try {
    co_await timeout(1s, fails_when_cancelled());
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "cleanup failed");
  }
}

Future<int> two_steps(Duration step_deadline, bool& saw_cancel) {
  Counted frame;
  co_await timeout(step_deadline, await_recording(sleep(1h), saw_cancel));
  co_return 1;
}

SQUALL_ASYNC_TEST(GenVirtualTest, NestedTimeoutsTheEarlierDeadlineWins) {
  auto start = io_loop().time();
  bool saw_cancel = false;
  bool timed_out = false;
  try {
    co_await timeout(10s, two_steps(5s, saw_cancel));  // the inner deadline fires
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out && saw_cancel);
  EXPECT_EQ(io_loop().time() - start, 5s);

  start = io_loop().time();
  saw_cancel = timed_out = false;
  try {
    co_await timeout(3s, two_steps(5s, saw_cancel));  // the outer one does
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out && saw_cancel);
  EXPECT_EQ(io_loop().time() - start, 3s);
}

TEST_F(GenTest, CancellingACoroutineAwaitingTimeoutCancelsTheWork) {
  bool child_saw = false, parent_saw = false;
  Future<void> parent = await_recording(timeout(1h, await_recording(sleep(2h), child_saw)), parent_saw);
  EXPECT_TRUE(parent.cancel());
  EXPECT_TRUE(parent.cancelled());
  EXPECT_TRUE(parent_saw);
  EXPECT_TRUE(child_saw);
}

// --- WaitIterator ---------------------------------------------------------------------------

SQUALL_ASYNC_TEST(GenVirtualTest, WaitIteratorYieldsResultsInCompletionOrderWithTheirIndex) {
  WaitIterator it(std::vector<Future<int>>{delayed(10, 3s), delayed(20, 1s), delayed(30, 2s)});
  std::vector<std::pair<std::size_t, int>> got;
  while (!it.done()) {
    int r = co_await it.next();
    got.emplace_back(it.current_index(), r);
    EXPECT_EQ(it.current_key(), it.current_index());
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::size_t, int>>{{1, 20}, {2, 30}, {0, 10}}));
  EXPECT_THROW(it.next(), InvalidStateError);
}

SQUALL_ASYNC_TEST(GenVirtualTest, WaitIteratorOverAMapReportsKeys) {
  std::map<std::string, Future<int>> children;
  children.emplace("slow", delayed(1, 2s));
  children.emplace("fast", delayed(2, 1s));
  WaitIterator it(children);
  std::vector<std::pair<std::string, int>> got;
  while (!it.done()) {
    int r = co_await it.next();
    got.emplace_back(it.current_key(), r);
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int>>{{"fast", 2}, {"slow", 1}}));

  std::unordered_map<int, Future<void>> sleeps;
  sleeps.emplace(5, sleep(2s));
  sleeps.emplace(6, sleep(1s));
  WaitIterator voids(sleeps);
  std::vector<int> keys;
  while (!voids.done()) {
    co_await voids.next();
    keys.push_back(voids.current_key());
  }
  EXPECT_EQ(keys, (std::vector<int>{6, 5}));
}

SQUALL_ASYNC_TEST(GenVirtualTest, WaitIteratorRethrowsAFailureAndCarriesOn) {
  WaitIterator it(std::vector<Future<int>>{delayed(1, 2s), fail_after(1s, "boom")});
  bool failed = false;
  try {
    co_await it.next();
  } catch (const std::runtime_error& e) {
    failed = true;
    EXPECT_STREQ(e.what(), "boom");
    EXPECT_EQ(it.current_index(), 1u);
  }
  EXPECT_TRUE(failed);
  CO_ASSERT_FALSE(it.done());
  EXPECT_EQ(co_await it.next(), 1);
  EXPECT_EQ(it.current_index(), 0u);
  EXPECT_TRUE(it.done());
}

TEST_F(GenTest, WaitIteratorOverNothingIsDoneAtOnce) {
  WaitIterator it(std::vector<Future<int>>{});
  EXPECT_TRUE(it.done());
  EXPECT_THROW(it.next(), InvalidStateError);
  EXPECT_THROW(it.current_index(), InvalidStateError);
}

TEST_F(GenTest, WaitIteratorHandsOutFuturesAlreadyDoneFirstInInputOrder) {
  Future<int> pending;
  WaitIterator it(std::vector<Future<int>>{pending, make_ready_future(2), make_ready_future(3)});
  auto first = it.next();
  ASSERT_TRUE(first.done());
  EXPECT_EQ(first.result(), 2);
  EXPECT_EQ(it.current_index(), 1u);
  auto second = it.next();
  ASSERT_TRUE(second.done());
  EXPECT_EQ(second.result(), 3);
  auto third = it.next();
  EXPECT_FALSE(third.done());
  pending.set_result(1);
  ASSERT_TRUE(third.done());
  EXPECT_EQ(third.result(), 1);
  EXPECT_EQ(it.current_index(), 0u);
  EXPECT_TRUE(it.done());
}

TEST_F(GenTest, WaitIteratorCurrentFutureIsTheFutureThatFinished) {
  Future<int> a, b;
  WaitIterator it(std::vector<Future<int>>{a, b});
  auto n = it.next();
  b.set_exception(std::runtime_error("b failed"));
  ASSERT_TRUE(n.done());
  EXPECT_THROW(n.result(), std::runtime_error);
  EXPECT_TRUE(it.current_future() == b);
  EXPECT_TRUE(it.current_future().done());
}

TEST_F(GenTest, WaitIteratorRejectsNextWhileThePreviousIsPending) {
  Future<int> a;
  WaitIterator it(std::vector<Future<int>>{a});
  auto n = it.next();
  EXPECT_THROW(it.next(), InvalidStateError);
  a.set_result(1);
  EXPECT_EQ(n.result(), 1);
}

TEST_F(GenTest, CancellingNextDoesNotLoseTheResult) {
  Future<int> a;
  WaitIterator it(std::vector<Future<int>>{a});
  auto n = it.next();
  EXPECT_TRUE(n.cancel());
  a.set_result(5);
  EXPECT_FALSE(it.done());
  auto again = it.next();
  ASSERT_TRUE(again.done());
  EXPECT_EQ(again.result(), 5);
  EXPECT_TRUE(it.done());
}

TEST_F(GenTest, CancellingACoroutineAwaitingNextThrowsCancelledError) {
  Future<int> a;
  WaitIterator it(std::vector<Future<int>>{a});
  bool saw_cancel = false;
  Future<void> task = await_recording(it.next(), saw_cancel);
  EXPECT_TRUE(task.cancel());
  EXPECT_TRUE(saw_cancel);
  EXPECT_FALSE(a.cancelled());  // the iterator never cancels what it watches
  a.set_result(9);
  auto n = it.next();
  ASSERT_TRUE(n.done());
  EXPECT_EQ(n.result(), 9);
}

Future<void> drain(std::vector<Future<void>> futures) {
  Counted frame;
  WaitIterator it(std::move(futures));
  while (!it.done()) co_await it.next();
}

TEST_F(GenTest, ACoroutineIteratingFuturesThatCanNeverFinishIsFreed) {
  EXPECT_EQ(live_after_closing_a_loop([] { return drain({sleep(1h), sleep(2h)}); }), 0);
}

// --- gen_task and convert ---------------------------------------------------------------------

/// A callback-style API: answers later, on the loop.
void legacy_double(IOLoop* loop, int x, std::function<void(int)> callback) {
  loop->add_callback([callback = std::move(callback), x] { callback(x * 2); });
}

SQUALL_ASYNC_TEST(GenTest, GenTaskResolvesWithTheValueGivenToTheCallback) {
  int v = co_await gen_task<int>(legacy_double, &io_loop(), 21);
  EXPECT_EQ(v, 42);
}

SQUALL_ASYNC_TEST(GenTest, GenTaskOfACallbackTakingNothing) {
  bool called = false;
  auto legacy = [&](std::function<void()> done) {
    called = true;
    io_loop().add_callback(std::move(done));
  };
  co_await gen_task<void>(legacy);
  EXPECT_TRUE(called);
}

TEST_F(GenTest, GenTaskWorksWithConstReferenceCallbackParameters) {
  auto legacy = [](const std::string& name, const std::function<void(const std::string&)>& callback) {
    callback("hello " + name);
  };
  auto f = gen_task<std::string>(legacy, "alice");
  ASSERT_TRUE(f.done());
  EXPECT_EQ(f.result(), "hello alice");
}

TEST_F(GenTest, GenTaskFailsWithWhatTheFunctionThrows) {
  auto legacy = [](std::function<void(int)>) { throw std::runtime_error("refused"); };
  auto f = gen_task<int>(legacy);
  ASSERT_TRUE(f.done());
  EXPECT_EQ(message_of(f.exception()), "refused");
}

TEST_F(GenTest, GenTaskLogsAnExceptionThrownAfterTheCallbackRan) {
  auto legacy = [](std::function<void(int)> callback) {
    callback(1);
    throw std::runtime_error("after the fact");
  };
  ExpectLog expect("squall.application", "after it called its callback: after the fact");
  auto f = gen_task<int>(legacy);
  EXPECT_EQ(f.result(), 1);
}

TEST_F(GenTest, GenTaskIgnoresASecondCallbackCall) {
  auto legacy = [](std::function<void(int)> callback) {
    callback(1);
    callback(2);
  };
  auto f = gen_task<int>(legacy);
  EXPECT_EQ(f.result(), 1);
}

TEST_F(GenTest, CancellingACoroutineAwaitingGenTaskAbandonsTheCallback) {
  std::function<void(int)> stored;
  auto legacy = [&](std::function<void(int)> callback) { stored = std::move(callback); };
  bool saw_cancel = false;
  Future<void> task = await_recording(gen_task<int>(legacy), saw_cancel);
  EXPECT_TRUE(task.cancel());
  EXPECT_TRUE(saw_cancel);
  stored(5);  // ignored: nobody waits any more
  stored(6);
}

TEST_F(GenTest, ACoroutineAwaitingACallbackThatIsDroppedIsFreed) {
  std::function<void(int)> stored;
  auto legacy = [&](std::function<void(int)> callback) { stored = std::move(callback); };
  bool saw_cancel = false;
  Future<void> task = await_recording(gen_task<int>(legacy), saw_cancel);
  EXPECT_EQ(Counted::live, 1);
  stored = nullptr;  // the API lost its callback: nothing can resolve the task
  EXPECT_EQ(Counted::live, 0);
  EXPECT_FALSE(task.done());
}

struct LegacyClient {
  std::string prefix;
  void fetch(const std::string& path, std::function<void(std::string)> callback) const { callback(prefix + path); }
};

SQUALL_ASYNC_TEST(GenTest, ConvertMakesAFutureReturningFunction) {
  auto doubled = convert<int>(legacy_double);
  EXPECT_EQ(co_await doubled(&io_loop(), 4), 8);

  LegacyClient client{"http://example.com"};
  auto fetch = convert<std::string>(&LegacyClient::fetch);
  EXPECT_EQ(co_await fetch(&client, "/index"), "http://example.com/index");
}

// --- chain_future ------------------------------------------------------------------------------

TEST_F(GenTest, ChainFutureCopiesTheResultAndLeavesTheSourceReadable) {
  Future<std::string> a, b;
  chain_future(a, b);
  EXPECT_FALSE(b.done());
  a.set_result(std::string("value"));
  EXPECT_EQ(b.result(), "value");
  EXPECT_EQ(a.result(), "value");
}

TEST_F(GenTest, ChainFutureCopiesTheException) {
  Future<void> a, b;
  chain_future(a, b);
  a.set_exception(std::runtime_error("broken"));
  EXPECT_EQ(message_of(b.exception()), "broken");
  EXPECT_EQ(message_of(a.exception()), "broken");
}

TEST_F(GenTest, ChainFuturePassesOnACancellation) {
  Future<int> a, b;
  chain_future(a, b);
  a.cancel();
  EXPECT_TRUE(b.cancelled());
}

TEST_F(GenTest, ChainFutureLeavesATargetThatIsAlreadyDoneAlone) {
  Future<int> a, b;
  chain_future(a, b);
  b.cancel();
  a.set_result(1);
  EXPECT_TRUE(b.cancelled());
  EXPECT_FALSE(a.cancelled());
}

TEST_F(GenTest, ChainFutureFromADoneFutureCopiesAtOnce) {
  Future<std::unique_ptr<int>> b;
  chain_future(make_ready_future(std::make_unique<int>(3)), b);
  ASSERT_TRUE(b.done());
  EXPECT_EQ(*b.result(), 3);
}

TEST_F(GenTest, ChainFutureRefusesACoroutinesFuture) {
  Future<void> a;
  bool saw_cancel = false;
  Future<void> coroutine = await_recording(sleep(1h), saw_cancel);
  EXPECT_THROW(chain_future(a, coroutine), InvalidStateError);
  coroutine.cancel();
}

// --- exception_types -------------------------------------------------------------------------------

TEST_F(GenTest, ExceptionTypesMatchesTheTypesAndTheirSubclasses) {
  ExceptionFilter filter = exception_types<Error, std::logic_error>();
  EXPECT_TRUE(filter(std::make_exception_ptr(TimeoutError())));
  EXPECT_TRUE(filter(std::make_exception_ptr(std::out_of_range("x"))));
  EXPECT_FALSE(filter(std::make_exception_ptr(std::runtime_error("x"))));
  EXPECT_FALSE(filter(std::make_exception_ptr(42)));
  EXPECT_FALSE(filter(nullptr));
}

}  // namespace
}  // namespace squall
