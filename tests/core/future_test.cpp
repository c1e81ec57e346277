#include "squall/core/future.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall {
namespace {

class FutureTest : public testing::AsyncTest {};

TEST_F(FutureTest, SetResultThenReadIt) {
  Future<int> f;
  EXPECT_FALSE(f.done());
  f.set_result(7);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 7);
  EXPECT_EQ(f.exception(), nullptr);
}

TEST_F(FutureTest, ResultOfAPendingFutureIsAnInvalidStateError) {
  Future<int> f;
  EXPECT_THROW(f.result(), InvalidStateError);
  EXPECT_THROW(f.exception(), InvalidStateError);
}

TEST_F(FutureTest, SettingAResultTwiceIsAnErrorWithAClearMessage) {
  Future<int> f;
  f.set_result(1);
  try {
    f.set_result(2);
    FAIL() << "expected InvalidStateError";
  } catch (const InvalidStateError& e) {
    EXPECT_NE(std::string(e.what()).find("already done"), std::string::npos);
  }
  EXPECT_THROW(f.set_exception(std::runtime_error("x")), InvalidStateError);
  EXPECT_EQ(f.result(), 1);
}

TEST_F(FutureTest, ResultRethrowsTheStoredException) {
  Future<void> f;
  f.set_exception(std::runtime_error("boom"));
  EXPECT_THROW(f.result(), std::runtime_error);
  EXPECT_NE(f.exception(), nullptr);
}

TEST_F(FutureTest, CallbackAddedToADoneFutureRunsAtOnce) {
  auto f = make_ready_future(3);
  int seen = 0;
  f.add_done_callback([&](Future<int> done) { seen = done.result(); });
  EXPECT_EQ(seen, 3);
}

TEST_F(FutureTest, CallbacksRunInTheOrderTheyWereAdded) {
  Future<void> f;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) f.add_done_callback([&order, i] { order.push_back(i); });
  EXPECT_TRUE(order.empty());
  f.set_result();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(FutureTest, ACallbackThatThrowsIsLoggedAndTheOthersStillRun) {
  testing::ExpectLog expect("squall.application", "Exception in a Future done callback: bad callback");
  Future<int> f;
  bool second_ran = false;
  f.add_done_callback([] { throw std::runtime_error("bad callback"); });
  f.add_done_callback([&] { second_ran = true; });
  f.set_result(1);
  EXPECT_TRUE(second_ran);
}

TEST_F(FutureTest, CancelAPendingFutureRunsItsCancelHandlerAndFailsWaiters) {
  Future<int> f;
  bool handler_ran = false;
  f.set_cancel_handler([&] { handler_ran = true; });
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(handler_ran);
  EXPECT_TRUE(f.done());
  EXPECT_TRUE(f.cancelled());
  EXPECT_THROW(f.result(), CancelledError);
}

TEST_F(FutureTest, CancellingADoneFutureDoesNothingAndReturnsFalse) {
  auto f = make_ready_future(1);
  EXPECT_FALSE(f.cancel());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 1);
}

TEST_F(FutureTest, SetResultOnACancelledFutureIsIgnored) {
  Future<int> f;
  f.cancel();
  f.set_result(5);  // the producer finished after its consumer went away
  EXPECT_TRUE(f.cancelled());
}

TEST_F(FutureTest, AnExceptionNobodyRetrievedIsLoggedWhenTheLastHandleDies) {
  testing::ExpectLog expect("squall.application", "never retrieved: lost error");
  {
    Future<int> f;
    f.set_exception(std::runtime_error("lost error"));
  }
  EXPECT_EQ(expect.matched(), 1);
}

TEST_F(FutureTest, ARetrievedExceptionIsNotLogged) {
  Future<int> f;
  f.set_exception(std::runtime_error("seen"));
  EXPECT_THROW(f.result(), std::runtime_error);
}

TEST_F(FutureTest, ACancelledFutureIsNotLoggedAsLost) {
  Future<int> f;
  f.cancel();
}

TEST_F(FutureTest, MoveOnlyResultsCanBeMovedOut) {
  Future<std::unique_ptr<int>> f;
  f.set_result(std::make_unique<int>(9));
  std::unique_ptr<int> p = std::move(f.result());
  EXPECT_EQ(*p, 9);
}

TEST_F(FutureTest, CopiesShareOneState) {
  Future<int> a;
  Future<int> b = a;
  EXPECT_TRUE(a == b);
  a.set_result(4);
  EXPECT_TRUE(b.done());
  EXPECT_EQ(b.result(), 4);
}

TEST_F(FutureTest, AFutureProducedByACoroutineCannotBeSetByHand) {
  Future<int> gate;
  auto coro = [](Future<int> g) -> Future<int> { co_return co_await g; }(gate);
  EXPECT_THROW(coro.set_result(1), InvalidStateError);
  gate.set_result(2);
  EXPECT_EQ(coro.result(), 2);
}

// --- size and storage of the state ---------------------------------------------------
// A pending read or sleep keeps one state alive per idle connection (the
// idle-memory budget in bench/README-net.md), and every co_await puts an
// awaiter in its coroutine's frame; these pin what they cost.

#ifdef NDEBUG
constexpr std::size_t kDebugOwner = 0;
#else
constexpr std::size_t kDebugOwner = sizeof(std::uintptr_t);  // the owning thread, checked in debug builds
#endif

TEST(FutureSizeTest, APendingStateIsSmall) {
  EXPECT_LE(sizeof(detail::FutureState<void>), 96 + kDebugOwner);
  EXPECT_LE(sizeof(detail::FutureState<std::string>), 96 + kDebugOwner + sizeof(std::string));
  EXPECT_LE(sizeof(detail::Continuation), 32u);
  EXPECT_LE(sizeof(detail::CancelHandler), 24u);
}

TEST(FutureSizeTest, AnAwaiterIsTwoPointers) {
  EXPECT_EQ((sizeof(detail::FutureAwaiter<std::string, true>)), 2 * sizeof(void*));
  EXPECT_EQ((sizeof(detail::FutureAwaiter<int, false>)), 2 * sizeof(void*));
}

TEST_F(FutureTest, ACallbackTooBigToStoreInlineStillRunsOnce) {
  Future<int> f;
  std::array<char, 200> big{};
  big[199] = 'z';
  int runs = 0;
  char seen = 0;
  f.add_done_callback([&runs, &seen, big](Future<int> done) {
    ++runs;
    seen = big[199];
    EXPECT_EQ(done.result(), 3);
  });
  f.set_result(3);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(seen, 'z');
}

TEST_F(FutureTest, ACancelHandlerTooBigToStoreInlineStillRuns) {
  Future<void> f;
  std::array<char, 100> big{};
  big[0] = 'q';
  char seen = 0;
  f.set_cancel_handler([&seen, big] { seen = big[0]; });
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(seen, 'q');
}

TEST_F(FutureTest, CallbacksOfAStateThatDiesPendingAreDestroyedUnrun) {
  auto token = std::make_shared<int>(0);
  {
    Future<int> f;
    // The first continuation is stored in the state, the others out of
    // line; small and large captures both.
    f.add_done_callback([token] { ++*token; });
    f.add_done_callback([token, pad = std::array<char, 64>{}] { ++*token; });
    f.set_cancel_handler([token] { ++*token; });
    EXPECT_EQ(token.use_count(), 4);
  }
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_EQ(*token, 0);
}

SQUALL_ASYNC_TEST(FutureTest, ACoroutineAndCallbacksWaitingOnOneStateAllResumeInOrder) {
  Future<int> gate;
  std::vector<std::string> order;
  gate.add_done_callback([&] { order.push_back("callback 1"); });
  auto waiter = [](Future<int> g, std::vector<std::string>& log) -> Future<void> {
    int v = co_await g;
    log.push_back("coroutine " + std::to_string(v));
  }(gate, order);
  gate.add_done_callback([&] { order.push_back("callback 2"); });
  gate.set_result(7);
  co_await waiter;
  EXPECT_EQ(order, (std::vector<std::string>{"callback 1", "coroutine 7", "callback 2"}));
}

SQUALL_ASYNC_TEST(FutureTest, CancellingACoroutineStillReachesTheFutureItAwaits) {
  // The cancel request travels through the promise's packed "awaiting"
  // word (promise.hpp); the awaited future's cancel handler must run.
  Future<void> inner;
  bool inner_cancelled = false;
  inner.set_cancel_handler([&] { inner_cancelled = true; });
  auto outer = [](Future<void> f) -> Future<void> { co_await f; }(inner);
  EXPECT_TRUE(outer.cancel());
  EXPECT_TRUE(inner_cancelled);
  bool cancelled = false;
  try {
    co_await outer;
  } catch (const CancelledError&) {
    cancelled = true;
  }
  EXPECT_TRUE(cancelled);
}

}  // namespace
}  // namespace squall
