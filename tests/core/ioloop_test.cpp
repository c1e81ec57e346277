// IOLoop on one thread: callbacks, timers, fd handlers, signals, run_sync,
// virtual time. (Cross-thread behaviour: ioloop_threads_test.cpp.)
#include "squall/core/ioloop.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall {
namespace {

class IOLoopTest : public testing::AsyncTest {};

class VirtualIOLoopTest : public testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }
};

/// A connected socket pair whose ends close with the test.
struct SocketPair {
  UniqueFd a, b;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

TEST_F(IOLoopTest, CurrentIsTheFixturesLoopAndIsPerThread) {
  EXPECT_EQ(&IOLoop::current(), &io_loop());
  EXPECT_EQ(IOLoop::current_or_null(), &io_loop());
}

TEST_F(IOLoopTest, CallbacksAddedWhileCallbacksRunWaitForTheNextIteration) {
  std::vector<std::string> log;
  int iteration_marker = 0;
  io_loop().add_callback([&] {
    log.push_back("a");
    io_loop().add_callback([&] { log.push_back("c@" + std::to_string(iteration_marker)); });
  });
  io_loop().add_callback([&] {
    log.push_back("b");
    ++iteration_marker;
  });
  io_loop().add_callback([&] { io_loop().add_callback([&] { io_loop().stop(); }); });
  io_loop().start();
  // c was queued during the first pass and saw b's increment: it ran after the
  // whole first pass, in a later iteration.
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c@1"}));
}

TEST_F(IOLoopTest, IOIsPolledAtLeastEverySixtyFourCallbacks) {
  // A callback that keeps re-adding itself must not starve a ready fd: the
  // loop may skip the non-blocking poll for up to 64 callbacks in a row
  // (kCallbacksPerPoll in ioloop.cpp), never more.
  SocketPair pair;
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  bool fd_seen = false;
  int spins = 0;
  std::function<void()> spin = [&] {
    if (fd_seen || ++spins > 1000) {
      io_loop().stop();
      return;
    }
    io_loop().add_callback([&] { spin(); });
  };
  io_loop().add_handler(pair.a.get(), IOLoop::READ, [&](int, std::uint32_t) { fd_seen = true; });
  io_loop().add_callback([&] { spin(); });
  io_loop().start();
  io_loop().remove_handler(pair.a.get());
  EXPECT_TRUE(fd_seen);
  EXPECT_LE(spins, 65);
}

TEST_F(IOLoopTest, ACallbackThatThrowsIsLoggedAndTheLoopGoesOn) {
  testing::ExpectLog expect("squall.application", "Exception in callback: callback failed");
  bool after = false;
  io_loop().add_callback([] { throw std::runtime_error("callback failed"); });
  io_loop().add_callback([&] {
    after = true;
    io_loop().stop();
  });
  io_loop().start();
  EXPECT_TRUE(after);
}

TEST_F(IOLoopTest, StopBeforeStartRunsOneIterationAndReturns) {
  bool ran = false;
  io_loop().add_callback([&] { ran = true; });
  io_loop().stop();
  io_loop().start();
  EXPECT_TRUE(ran);
}

TEST_F(IOLoopTest, StartingARunningLoopIsAnError) {
  io_loop().add_callback([&] {
    EXPECT_THROW(io_loop().start(), InvalidStateError);
    io_loop().stop();
  });
  io_loop().start();
}

// --- timers ------------------------------------------------------------------------

TEST_F(VirtualIOLoopTest, TimersFireInDeadlineOrderAndTiesInInsertionOrder) {
  std::vector<int> order;
  auto now = io_loop().time();
  io_loop().call_at(now + 30ms, [&] { order.push_back(3); });
  io_loop().call_at(now + 10ms, [&] { order.push_back(1); });
  io_loop().call_at(now + 20ms, [&] { order.push_back(2); });
  for (int i = 4; i < 10; ++i) io_loop().call_at(now + 40ms, [&order, i] { order.push_back(i); });
  io_loop().call_at(now + 50ms, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(VirtualIOLoopTest, ARemovedTimerNeverFires) {
  bool fired = false;
  auto handle = io_loop().call_later(10ms, [&] { fired = true; });
  io_loop().call_later(20ms, [&] { io_loop().stop(); });
  io_loop().remove_timeout(handle);
  io_loop().remove_timeout(handle);  // twice is harmless
  io_loop().start();
  EXPECT_FALSE(fired);
}

TEST_F(VirtualIOLoopTest, AStaleHandleDoesNotCancelALaterTimerInTheSameSlot) {
  int fired = 0;
  auto first = io_loop().call_later(1ms, [&] { ++fired; });
  io_loop().call_later(2ms, [&] { io_loop().stop(); });
  io_loop().start();
  io_loop().call_later(1ms, [&] { ++fired; });  // may reuse first's slot
  io_loop().call_later(2ms, [&] { io_loop().stop(); });
  io_loop().remove_timeout(first);
  io_loop().start();
  EXPECT_EQ(fired, 2);
}

TEST_F(VirtualIOLoopTest, ManyCancelledTimersAreDroppedAndTheRestStillFire) {
  std::vector<TimeoutHandle> handles;
  int fired = 0;
  for (int i = 0; i < 10'000; ++i) handles.push_back(io_loop().call_later(1s + i * 1ms, [&] { ++fired; }));
  for (int i = 0; i < 10'000; ++i) {
    if (i % 100 != 0) io_loop().remove_timeout(handles[i]);
  }
  io_loop().call_later(20s, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(fired, 100);
}

TEST_F(VirtualIOLoopTest, ATimerCallbackThatThrowsIsLoggedAndLaterTimersRun) {
  testing::ExpectLog expect("squall.application", "Exception in timer callback: timer failed");
  bool later = false;
  io_loop().call_later(1ms, [] { throw std::runtime_error("timer failed"); });
  io_loop().call_later(2ms, [&] {
    later = true;
    io_loop().stop();
  });
  io_loop().start();
  EXPECT_TRUE(later);
}

TEST_F(VirtualIOLoopTest, AnHourOfVirtualTimePassesInstantly) {
  auto started_real = SteadyClock::now();
  auto started = io_loop().time();
  io_loop().call_later(1h, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_GE(io_loop().time() - started, 1h);
  EXPECT_LT(SteadyClock::now() - started_real, 5s);
}

TEST_F(VirtualIOLoopTest, ReadyFdsAreServedBeforeTimeJumps) {
  SocketPair pair;
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  std::vector<std::string> order;
  io_loop().add_handler(pair.a.get(), IOLoop::READ, [&](int fd, std::uint32_t) {
    char c;
    ASSERT_EQ(::read(fd, &c, 1), 1);
    order.push_back("fd");
  });
  io_loop().call_later(30s, [&] {
    order.push_back("timer");
    io_loop().stop();
  });
  io_loop().start();
  io_loop().remove_handler(pair.a.get());
  EXPECT_EQ(order, (std::vector<std::string>{"fd", "timer"}));
}

TEST_F(IOLoopTest, ARealTimerWaitsAtLeastItsDelay) {
  auto start = io_loop().time();
  io_loop().call_later(20ms, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_GE(io_loop().time() - start, 20ms);
}

TEST_F(IOLoopTest, ASlowCallbackIsReportedWhenABlockingThresholdIsSet) {
  testing::ExpectLog expect("squall.general", "Blocking callback took");
  io_loop().set_blocking_log_threshold(1ms);
  io_loop().add_callback([&] {
    auto until = SteadyClock::now() + 5ms;
    while (SteadyClock::now() < until) {
    }
    io_loop().stop();
  });
  io_loop().start();
}

// --- fd handlers -----------------------------------------------------------------------

TEST_F(IOLoopTest, AHandlerSeesReadAndWriteReadiness) {
  SocketPair pair;
  std::uint32_t seen = 0;
  io_loop().add_handler(pair.a.get(), IOLoop::WRITE, [&](int, std::uint32_t events) {
    seen |= events;
    io_loop().stop();
  });
  io_loop().start();
  EXPECT_TRUE(seen & IOLoop::WRITE);
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  io_loop().update_handler(pair.a.get(), IOLoop::READ);
  seen = 0;
  io_loop().start();
  EXPECT_TRUE(seen & IOLoop::READ);
  EXPECT_FALSE(seen & IOLoop::WRITE);
  io_loop().remove_handler(pair.a.get());
}

TEST_F(IOLoopTest, AHandlerCanRemoveItselfWhileRunning) {
  SocketPair pair;
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  int calls = 0;
  auto owned = std::make_shared<int>(5);  // captured state must survive the call
  io_loop().add_handler(pair.a.get(), IOLoop::READ, [&, owned](int fd, std::uint32_t) {
    ++calls;
    io_loop().remove_handler(fd);
    EXPECT_EQ(*owned, 5);
    io_loop().add_callback([&] { io_loop().stop(); });
  });
  io_loop().start();
  EXPECT_EQ(calls, 1);
}

TEST_F(IOLoopTest, AHandlerRemovedByAnotherHandlerInTheSameBatchIsNotCalled) {
  SocketPair p1, p2;
  ASSERT_EQ(::write(p1.b.get(), "x", 1), 1);
  ASSERT_EQ(::write(p2.b.get(), "x", 1), 1);
  int calls = 0;
  int fd1 = p1.a.get(), fd2 = p2.a.get();
  // Whichever runs first removes the other: exactly one is called.
  io_loop().add_handler(fd1, IOLoop::READ, [&](int, std::uint32_t) {
    ++calls;
    io_loop().remove_handler(fd2);
    io_loop().remove_handler(fd1);
  });
  io_loop().add_handler(fd2, IOLoop::READ, [&](int, std::uint32_t) {
    ++calls;
    io_loop().remove_handler(fd1);
    io_loop().remove_handler(fd2);
  });
  io_loop().call_later(20ms, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(calls, 1);
}

TEST_F(IOLoopTest, AddingTwoHandlersForOneFdIsAnError) {
  SocketPair pair;
  io_loop().add_handler(pair.a.get(), IOLoop::READ, [](int, std::uint32_t) {});
  EXPECT_THROW(io_loop().add_handler(pair.a.get(), IOLoop::READ, [](int, std::uint32_t) {}), std::invalid_argument);
  io_loop().remove_handler(pair.a.get());
}

TEST_F(IOLoopTest, AHandlerThatThrowsIsLoggedAndTheLoopGoesOn) {
  testing::ExpectLog expect("squall.application", "Exception in I/O handler for fd");
  SocketPair pair;
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  io_loop().add_handler(pair.a.get(), IOLoop::READ, [&](int fd, std::uint32_t) {
    io_loop().remove_handler(fd);
    io_loop().add_callback([&] { io_loop().stop(); });
    throw std::runtime_error("handler failed");
  });
  io_loop().start();
}

TEST_F(IOLoopTest, CloseWithAllFdsClosesRegisteredDescriptors) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  io_loop().add_handler(fds[0], IOLoop::READ, [](int, std::uint32_t) {});
  io_loop().close(true);
  EXPECT_EQ(::fcntl(fds[0], F_GETFD), -1);  // closed by the loop
  ::close(fds[1]);
}

// --- signals ------------------------------------------------------------------------------

TEST_F(IOLoopTest, ASignalRaisedToSelfIsDeliveredAsALoopCallback) {
  int got = 0;
  io_loop().add_signal_handler(SIGUSR1, [&](int signo) {
    got = signo;
    io_loop().stop();
  });
  io_loop().add_callback([] { ::raise(SIGUSR1); });
  io_loop().start();
  io_loop().remove_signal_handler(SIGUSR1);
  EXPECT_EQ(got, SIGUSR1);
}

// --- futures and run_sync --------------------------------------------------------------

TEST_F(IOLoopTest, RunSyncReturnsTheCoroutinesResult) {
  int v = io_loop().run_sync([]() -> Future<int> {
    Future<int> f;
    IOLoop::current().call_later(1ms, [f]() mutable { f.set_result(42); });
    co_return co_await f;
  });
  EXPECT_EQ(v, 42);
}

TEST_F(IOLoopTest, RunSyncAcceptsPlainFunctions) {
  EXPECT_EQ(io_loop().run_sync([] { return 3; }), 3);
  bool ran = false;
  io_loop().run_sync([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST_F(IOLoopTest, RunSyncRethrowsTheCoroutinesException) {
  EXPECT_THROW(io_loop().run_sync([]() -> Future<void> {
                 co_await Future<void>(make_ready_future());
                 throw std::logic_error("failed");
               }),
               std::logic_error);
}

TEST_F(VirtualIOLoopTest, RunSyncThrowsTimeoutErrorAndCancelsTheWork) {
  bool saw_cancel = false;
  Future<void> never;
  auto work = [&]() -> Future<void> {
    try {
      co_await never;
    } catch (const CancelledError&) {
      saw_cancel = true;
      throw;
    }
  };
  EXPECT_THROW(io_loop().run_sync(work, 30s), TimeoutError);
  EXPECT_TRUE(saw_cancel);
}

TEST_F(IOLoopTest, AddFutureSchedulesTheCallbackOnTheLoop) {
  Future<int> f;
  int seen = 0;
  io_loop().add_future(f, [&](Future<int> done) {
    seen = done.result();
    io_loop().stop();
  });
  f.set_result(6);
  EXPECT_EQ(seen, 0);  // not inline: on the next iteration
  io_loop().start();
  EXPECT_EQ(seen, 6);
}

TEST_F(IOLoopTest, SpawnCallbackLogsTheFailureOfACoroutine) {
  testing::ExpectLog expect("squall.application", "spawned failure");
  io_loop().spawn_callback([]() -> Future<void> {
    co_await Future<void>(make_ready_future());
    throw std::runtime_error("spawned failure");
  });
  io_loop().add_callback([&] { io_loop().add_callback([&] { io_loop().stop(); }); });
  io_loop().start();
}

}  // namespace
}  // namespace squall
