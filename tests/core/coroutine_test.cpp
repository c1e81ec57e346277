// Coroutines returning Future<T>: eager start, exceptions through co_await,
// cancellation, stack safety, and the lifetime of abandoned frames.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall {
namespace {

class CoroutineTest : public testing::AsyncTest {};

/// Counts live instances, to prove frames and their locals are destroyed.
struct Counted {
  static inline int alive = 0;
  Counted() { ++alive; }
  Counted(const Counted&) { ++alive; }
  ~Counted() { --alive; }
};

/// A future resolved on a later loop iteration.
Future<int> later(int value) {
  Future<int> f;
  IOLoop::current().add_callback([f, value]() mutable { f.set_result(value); });
  return f;
}

Future<int> immediate(int v) { co_return v; }

TEST_F(CoroutineTest, ACoroutineStartsRunningWhenCalled) {
  bool started = false;
  Future<void> gate;
  auto coro_body = [&]() -> Future<void> {
    started = true;
    co_await gate;
  };
  auto coro = coro_body();
  EXPECT_TRUE(started);
  EXPECT_FALSE(coro.done());
  gate.set_result();
  EXPECT_TRUE(coro.done());
}

TEST_F(CoroutineTest, ACoroutineThatNeverSuspendsIsDoneOnReturn) {
  auto f = immediate(5);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.result(), 5);
}

TEST_F(CoroutineTest, AwaitingAFinishedFutureDoesNotSuspend) {
  auto ready = make_ready_future(1);
  bool after = false;
  auto coro_body = [&]() -> Future<void> {
    co_await ready;
    after = true;
  };
  auto coro = coro_body();
  EXPECT_TRUE(after);
  EXPECT_TRUE(coro.done());
}

SQUALL_ASYNC_TEST(CoroutineTest, ExceptionsTravelThroughNestedCoroutines) {
  auto inner = []() -> Future<int> {
    co_await later(0);
    throw std::runtime_error("inner failed");
  };
  auto middle = [&]() -> Future<int> { co_return co_await inner() + 1; };
  try {
    co_await middle();
    ADD_FAILURE() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "inner failed");
  }
}

SQUALL_ASYNC_TEST(CoroutineTest, AwaitingAnLvalueKeepsTheResultForOtherReaders) {
  auto f = later(8);
  int& a = co_await f;
  EXPECT_EQ(a, 8);
  EXPECT_EQ(f.result(), 8);
}

SQUALL_ASYNC_TEST(CoroutineTest, AwaitingATemporaryMovesAMoveOnlyResultOut) {
  auto make = []() -> Future<std::unique_ptr<int>> {
    co_await later(0);
    co_return std::make_unique<int>(11);
  };
  std::unique_ptr<int> p = co_await make();
  EXPECT_EQ(*p, 11);
}

SQUALL_ASYNC_TEST(CoroutineTest, TwoCoroutinesCanAwaitTheSameFuture) {
  Future<int> shared;
  auto waiter = [](Future<int> f) -> Future<int> { co_return co_await f * 2; };
  auto a = waiter(shared);
  auto b = waiter(shared);
  shared.set_result(3);
  EXPECT_EQ(co_await a, 6);
  EXPECT_EQ(co_await b, 6);
}

// --- cancellation ---------------------------------------------------------------

SQUALL_ASYNC_TEST(CoroutineTest, CancelThrowsCancelledErrorAtTheCurrentAwait) {
  Future<int> never;
  bool handler_ran = false;
  never.set_cancel_handler([&] { handler_ran = true; });
  std::string seen;
  auto coro_body = [&]() -> Future<void> {
    try {
      co_await never;
    } catch (const CancelledError&) {
      seen = "cancelled";
      throw;
    }
  };
  auto coro = coro_body();
  EXPECT_TRUE(coro.cancel());
  EXPECT_EQ(seen, "cancelled");
  EXPECT_TRUE(handler_ran);  // the awaited operation was cancelled too
  EXPECT_TRUE(coro.cancelled());
  EXPECT_THROW(coro.result(), CancelledError);
  co_return;
}

SQUALL_ASYNC_TEST(CoroutineTest, CancellationReachesTheInnermostAwait) {
  Future<int> leaf;
  int unwound = 0;
  auto inner = [&]() -> Future<int> {
    try {
      co_return co_await leaf;
    } catch (const CancelledError&) {
      ++unwound;
      throw;
    }
  };
  auto outer_body = [&]() -> Future<int> {
    try {
      co_return co_await inner();
    } catch (const CancelledError&) {
      ++unwound;
      throw;
    }
  };
  auto outer = outer_body();
  outer.cancel();
  EXPECT_EQ(unwound, 2);
  EXPECT_TRUE(leaf.cancelled());
  EXPECT_TRUE(outer.cancelled());
  co_return;
}

SQUALL_ASYNC_TEST(CoroutineTest, ACoroutineMayCatchCancellationAndFinishNormally) {
  Future<int> never;
  auto coro_body = [&]() -> Future<int> {
    bool cancelled = false;
    try {
      co_await never;
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) co_return co_await later(99);  // cleanup that itself awaits
    co_return 0;
  };
  auto coro = coro_body();
  EXPECT_TRUE(coro.cancel());
  EXPECT_EQ(co_await coro, 99);
  EXPECT_FALSE(coro.cancelled());
}

SQUALL_ASYNC_TEST(CoroutineTest, CancellingAFinishedCoroutineReturnsFalse) {
  auto f = immediate(1);
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(co_await f, 1);
}

SQUALL_ASYNC_TEST(CoroutineTest, CancellationWhileResumptionIsPendingIsDeliveredOnResume) {
  // The awaited future is already resolved but the coroutine has not run yet:
  // cancel() can no longer cancel the operation, so the coroutine gets
  // CancelledError when it resumes (asyncio's Task semantics).
  Future<int> f;
  bool cancelled_inside = false;
  auto coro_body = [&]() -> Future<void> {
    try {
      co_await later(0);
      co_await f;
    } catch (const CancelledError&) {
      cancelled_inside = true;
      throw;
    }
  };
  auto coro = coro_body();
  co_await later(0);
  co_await later(0);
  f.set_result(1);  // resumes coro inline: it has finished
  EXPECT_TRUE(coro.done());
  EXPECT_FALSE(coro.cancel());
  EXPECT_FALSE(cancelled_inside);
}

SQUALL_ASYNC_TEST(CoroutineTest, CancelledCoroutinesLeaveNoFrameBehind) {
  Counted::alive = 0;
  std::vector<Future<void>> coros;
  for (int i = 0; i < 100; ++i) {
    coros.push_back([]() -> Future<void> {
      Counted c;
      co_await Future<int>();  // nobody else can ever complete it
    }());
  }
  EXPECT_EQ(Counted::alive, 0);  // so the frames were freed at once
  Future<int> gate;
  for (int i = 0; i < 100; ++i) {
    coros.push_back([](Future<int> g) -> Future<void> {
      Counted c;
      co_await g;
    }(gate));
  }
  EXPECT_EQ(Counted::alive, 100);
  for (auto& c : coros) c.cancel();
  EXPECT_EQ(Counted::alive, 0);
  co_return;
}

// --- lifetimes of abandoned coroutines -------------------------------------------

TEST_F(CoroutineTest, ACoroutineWaitingOnAFutureNobodyCanCompleteIsFreed) {
  Counted::alive = 0;
  Future<void> outer;
  {
    Future<int> orphan;
    outer = [](Future<int> f) -> Future<void> {
      Counted c;
      co_await std::move(f);
    }(std::move(orphan));
  }
  // The coroutine held the only reference to the future it awaited: nobody
  // can ever complete it, so the frame (and its locals) is destroyed.
  EXPECT_EQ(Counted::alive, 0);
  EXPECT_FALSE(outer.done());
}

TEST_F(CoroutineTest, ClosingTheLoopFreesCoroutinesWaitingOnTimers) {
  Counted::alive = 0;
  auto coro = []() -> Future<void> {
    Counted c;
    Future<void> tick;
    IOLoop::current().call_later(1h, [tick]() mutable { tick.set_result(); });
    co_await std::move(tick);
  }();
  EXPECT_EQ(Counted::alive, 1);
  io_loop().close();
  EXPECT_EQ(Counted::alive, 0);
}

// --- stack safety ------------------------------------------------------------------

Future<int> sync_chain(int depth) {
  if (depth == 0) co_return 0;
  co_return co_await sync_chain(depth - 1) + 1;
}

TEST_F(CoroutineTest, AMillionDeepChainOfSynchronousCoroutinesDoesNotOverflowTheStack) {
  constexpr int kDepth = 1'000'000;
  int result = io_loop().run_sync([] { return sync_chain(kDepth); }, 60s);
  EXPECT_EQ(result, kDepth);
}

TEST_F(CoroutineTest, AMillionCoroutinesResumedOneAfterAnotherDoNotOverflowTheStack) {
  constexpr int kCount = 1'000'000;
  // Each coroutine waits on the previous one's future; resolving the first
  // wakes the whole chain in one go.
  Future<int> first;
  std::vector<Future<int>> chain;
  chain.reserve(kCount);
  Future<int> prev = first;
  for (int i = 0; i < kCount; ++i) {
    Future<int> next = [](Future<int> p) -> Future<int> { co_return co_await p + 1; }(prev);
    chain.push_back(next);
    prev = next;
  }
  first.set_result(0);
  int result = io_loop().run_sync([&] { return chain.back(); }, 60s);
  EXPECT_EQ(result, kCount);
}

TEST_F(CoroutineTest, AMillionSequentialSynchronousAwaitsRunInOneCoroutine) {
  auto coro = []() -> Future<long> {
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i) sum += co_await immediate(1);
    co_return sum;
  };
  EXPECT_EQ(io_loop().run_sync(coro, 60s), 1'000'000);
}

}  // namespace
}  // namespace squall
