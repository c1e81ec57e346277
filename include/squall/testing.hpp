// GoogleTest support for code that runs on an IOLoop (Tornado's testing
// module): a fixture with a fresh loop per test, a macro for coroutine test
// bodies, ExpectLog, and bind_unused_port. Fixtures run on the test's thread.
//
//   class SleepTest : public squall::testing::AsyncTest {};
//   SQUALL_ASYNC_TEST(SleepTest, WakesUpAfterTheDelay) {
//     auto start = io_loop().time();
//     co_await squall::sleep(10ms);
//     EXPECT_GE(io_loop().time() - start, 10ms);
//   }
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"
#include "squall/core/unique_fd.hpp"

namespace squall::testing {

/// A fixture with a fresh IOLoop per test, made current, and closed (with
/// all its fds) after the test. A warning or error logged by squall's
/// loggers during the test fails it, unless an ExpectLog accepted it.
class AsyncTest : public ::testing::Test {
 protected:
  AsyncTest();
  ~AsyncTest() override;
  void SetUp() override;
  void TearDown() override;

  /// Override to return true to run the test on a VirtualClock: idle time
  /// jumps to the next timer, so long timeouts are instant and exact.
  virtual bool use_virtual_clock() const { return false; }
  /// The timeout SQUALL_ASYNC_TEST bodies run under; the environment
  /// variable SQUALL_ASYNC_TEST_TIMEOUT (seconds) overrides the 5 s default.
  virtual Duration async_test_timeout() const;

  IOLoop& io_loop() { return *loop_; }
  /// The virtual clock, or null on a real-time test.
  VirtualClock* virtual_clock() { return clock_.get(); }

  /// Runs `body()` to completion on the loop under async_test_timeout().
  void run_coroutine_test(UniqueFunction<Future<void>()> body);

 private:
  std::shared_ptr<VirtualClock> clock_;
  std::unique_ptr<IOLoop> loop_;
};

/// Declares that a log record is expected while the guard lives (Tornado's
/// ExpectLog). A record of at least `level` from `logger` whose message
/// matches `regex` (std::regex_search) is accepted instead of failing the
/// test; with `required`, the guard fails the test if none was seen.
///
///   { squall::testing::ExpectLog expect("squall.application", "Exception in callback");
///     ... }
class ExpectLog {
 public:
  ExpectLog(std::string logger, std::string regex, bool required = true, log::Level level = log::Level::warning);
  ~ExpectLog();
  ExpectLog(const ExpectLog&) = delete;
  ExpectLog& operator=(const ExpectLog&) = delete;
  /// How many records this guard accepted so far.
  int matched() const;

 private:
  int id_;
  bool required_;
  std::string description_;
};

/// A listening TCP socket on 127.0.0.1 (or ::1) at a port the OS chose.
std::pair<UniqueFd, int> bind_unused_port(bool ipv6 = false);

}  // namespace squall::testing

/// Defines a test whose body is a coroutine (`co_await` allowed), run with
/// run_sync under the fixture's async_test_timeout(). Use EXPECT_* freely;
/// inside the body use CO_ASSERT_* instead of ASSERT_* (which `return`).
#define SQUALL_ASYNC_TEST(fixture, name)                                                              \
  class fixture##_##name##_AsyncBody : public fixture {                                               \
   public:                                                                                            \
    void TestBody() override {                                                                        \
      this->run_coroutine_test([this] { return this->CoroutineBody(); });                             \
    }                                                                                                 \
    ::squall::Future<void> CoroutineBody();                                                           \
  };                                                                                                  \
  /* GoogleTest's registration API takes ownership of the raw pointer. */                             \
  [[maybe_unused]] static ::testing::TestInfo* const fixture##_##name##_async_registered =            \
      ::testing::RegisterTest(#fixture, #name, nullptr, nullptr, __FILE__, __LINE__,                  \
                              []() -> fixture* { return new fixture##_##name##_AsyncBody(); });       \
  ::squall::Future<void> fixture##_##name##_AsyncBody::CoroutineBody()

/// A fatal failure inside a coroutine: records it and co_returns.
#define SQUALL_CO_FATAL_FAILURE_(message) \
  co_return GTEST_MESSAGE_(message, ::testing::TestPartResult::kFatalFailure)
#define CO_ASSERT_TRUE(condition) \
  GTEST_TEST_BOOLEAN_(condition, #condition, false, true, SQUALL_CO_FATAL_FAILURE_)
#define CO_ASSERT_FALSE(condition) \
  GTEST_TEST_BOOLEAN_(!(condition), #condition, true, false, SQUALL_CO_FATAL_FAILURE_)
#define CO_ASSERT_EQ(a, b) \
  GTEST_PRED_FORMAT2_(::testing::internal::EqHelper::Compare, a, b, SQUALL_CO_FATAL_FAILURE_)
#define CO_ASSERT_NE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperNE, a, b, SQUALL_CO_FATAL_FAILURE_)
