// IOLoop::add_callback is the loop's one thread-safe entry point: these tests
// drive it from other threads and check that every callback arrives once, in
// order per producer, on the loop's thread, and that it wakes a loop that is
// asleep in epoll_wait with nothing else to do.
#include "squall/core/ioloop.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "squall/core/unique_fd.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall {
namespace {

// How long a thread waits for something another thread must do before the
// test gives up and fails. Never a sleep: each wait ends when the event
// happens.
constexpr auto kEventTimeout = 10s;

/// An eventfd the loop watches. A helper thread that gives up waiting trips
/// it, which stops the loop even if the loop's own wake-up was lost, so a
/// lost wake-up fails the test instead of hanging it.
class Watchdog {
 public:
  explicit Watchdog(IOLoop& loop) : loop_(loop), fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    loop_.add_handler(fd_.get(), IOLoop::READ, [this](int, std::uint32_t) {
      tripped_ = true;
      loop_.stop();
    });
  }
  ~Watchdog() { loop_.remove_handler(fd_.get()); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  /// Any thread.
  void trip() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto rc = ::write(fd_.get(), &one, sizeof one);
  }
  /// Loop thread.
  bool tripped() const { return tripped_; }

 private:
  IOLoop& loop_;
  UniqueFd fd_;
  bool tripped_ = false;
};

class IOLoopThreadsTest : public testing::AsyncTest {
 protected:
  std::thread::id loop_thread_ = std::this_thread::get_id();
};

TEST_F(IOLoopThreadsTest, CallbacksFromFourThreadsArriveExactlyOnceInOrderPerProducer) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 100'000;
  constexpr long kTotal = long{kProducers} * kPerProducer;

  // Touched only on the loop thread.
  struct Tally {
    std::array<int, kProducers> next{};  // the sequence number expected next
    long delivered = 0;
    long out_of_order = 0;  // duplicates, gaps and reorderings all land here
    long off_loop = 0;
    std::thread::id loop_thread;
    Future<void> all_delivered;
  } tally;
  tally.loop_thread = loop_thread_;

  std::latch go(kProducers);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([this, p, &go, &tally] {
      go.arrive_and_wait();  // all four push at once, for contention
      for (int seq = 0; seq < kPerProducer; ++seq) {
        io_loop().add_callback([t = &tally, p, seq] {
          if (seq != t->next[p]) ++t->out_of_order;
          t->next[p] = seq + 1;
          if (std::this_thread::get_id() != t->loop_thread) ++t->off_loop;
          if (++t->delivered == kTotal) t->all_delivered.set_result();
        });
      }
    });
  }
  EXPECT_NO_THROW(io_loop().run_sync([&] { return tally.all_delivered; }, 60s));
  for (auto& t : producers) t.join();

  EXPECT_EQ(tally.delivered, kTotal);
  EXPECT_EQ(tally.out_of_order, 0);
  EXPECT_EQ(tally.off_loop, 0);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(tally.next[p], kPerProducer) << "producer " << p;
}

TEST_F(IOLoopThreadsTest, EachCallbackWakesALoopAsleepWithNoTimers) {
  constexpr int kRounds = 2000;
  Watchdog watchdog(io_loop());
  std::mutex mutex;
  std::condition_variable acked;
  int acks = 0;      // guarded by mutex
  int ran = 0;       // loop thread only
  bool lost = false;  // peer thread only until joined

  // No timers and no ready callbacks: between rounds the loop sleeps in
  // epoll_wait with no timeout, and only the wake-up eventfd can rouse it.
  std::thread peer([&] {
    for (int round = 0; round < kRounds; ++round) {
      io_loop().add_callback([&] {
        ++ran;
        {
          std::lock_guard lock(mutex);
          ++acks;
        }
        acked.notify_one();
      });
      std::unique_lock lock(mutex);
      if (!acked.wait_for(lock, kEventTimeout, [&] { return acks == round + 1; })) {
        lost = true;
        watchdog.trip();
        return;
      }
    }
    io_loop().add_callback([&] { io_loop().stop(); });
  });
  io_loop().start();
  peer.join();

  EXPECT_FALSE(lost) << "a wake-up was lost after " << ran << " rounds";
  EXPECT_FALSE(watchdog.tripped());
  EXPECT_EQ(ran, kRounds);
}

TEST_F(IOLoopThreadsTest, StopFromAnotherThreadThroughAddCallbackEndsStart) {
  Watchdog watchdog(io_loop());
  std::promise<void> running;
  std::thread::id stop_thread;
  io_loop().add_callback([&running] { running.set_value(); });
  std::thread peer([&] {
    if (running.get_future().wait_for(kEventTimeout) != std::future_status::ready) {
      watchdog.trip();
      return;
    }
    io_loop().add_callback([&] {
      stop_thread = std::this_thread::get_id();
      io_loop().stop();
    });
  });
  io_loop().start();  // returns once the peer's callback has stopped it
  peer.join();
  EXPECT_FALSE(watchdog.tripped());
  EXPECT_EQ(stop_thread, loop_thread_);
}

TEST_F(IOLoopThreadsTest, ALoopRunningOnAnotherThreadTakesCallbacksFromThisOne) {
  constexpr int kCallbacks = 10'000;
  std::promise<IOLoop*> started;
  std::promise<void> done_posting;
  int ran = 0;  // the loop thread's until it is joined
  std::thread::id loop_thread;
  std::thread::id ran_on;
  std::thread runner([&] {
    IOLoop loop;
    loop_thread = std::this_thread::get_id();
    loop.add_callback([&] { started.set_value(&loop); });
    loop.start();
    // add_callback touches the loop after queueing its callback: the loop
    // must outlive every call, including the one that stopped it.
    done_posting.get_future().wait();
  });
  auto ready = started.get_future();
  ASSERT_EQ(ready.wait_for(kEventTimeout), std::future_status::ready);
  IOLoop* loop = ready.get();
  for (int i = 0; i < kCallbacks; ++i) loop->add_callback([&ran] { ++ran; });
  loop->add_callback([&, loop] {
    ran_on = std::this_thread::get_id();
    loop->stop();
  });
  done_posting.set_value();
  runner.join();
  EXPECT_EQ(ran, kCallbacks);
  EXPECT_EQ(ran_on, loop_thread);
}

// Tornado's common shape: build the loop, hand it to a thread that runs it,
// and post work to it at once, while that thread may still be starting it.
// Until start() runs, the building thread is the loop's owner: it must still
// queue through the lock, or its callbacks race with the starting loop
// (ThreadSanitizer reports the race within a few rounds).
TEST_F(IOLoopThreadsTest, ALoopBuiltHereAndStartedOnAnotherThreadTakesCallbacksFromHere) {
  constexpr int kRounds = 20;
  constexpr int kCallbacks = 10'000;
  for (int round = 0; round < kRounds; ++round) {
    IOLoop loop(IOLoop::Options{.make_current = false});
    int ran = 0;  // the runner's until it is joined
    std::thread runner([&loop] { loop.start(); });
    for (int i = 0; i < kCallbacks; ++i) loop.add_callback([&ran] { ++ran; });
    loop.add_callback([&loop] { loop.stop(); });
    runner.join();
    EXPECT_EQ(ran, kCallbacks) << "in round " << round;
  }
}

}  // namespace
}  // namespace squall
