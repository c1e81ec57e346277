#include "squall/core/future.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace squall
