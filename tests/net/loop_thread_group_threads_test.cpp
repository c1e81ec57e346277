// LoopThreadGroup: loops on their own threads, run_on_each and its kept
// objects, errors, stop(), and two loops serving one port through their own
// SO_REUSEPORT listeners. The test's own thread talks to them with blocking
// sockets over 127.0.0.1.
#include "squall/net/loop_thread_group.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "squall/core/errors.hpp"

namespace squall::net {
namespace {

TEST(LoopThreadGroupTest, EachLoopRunsOnItsOwnThreadAndIsThatThreadsCurrentLoop) {
  LoopThreadGroup group({.threads = 3});
  ASSERT_EQ(group.size(), 3u);
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::set<IOLoop*> loops;
  std::vector<bool> current(3, false);
  group.run_on_each([&](IOLoop& loop, std::size_t index) {
    std::lock_guard lock(mutex);
    threads.insert(std::this_thread::get_id());
    loops.insert(&loop);
    current[index] = IOLoop::current_or_null() == &loop && &group.loop(index) == &loop && loop.running();
  });
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(loops.size(), 3u);
  EXPECT_EQ(current, std::vector<bool>(3, true));
}

TEST(LoopThreadGroupTest, ThreadsAreNamedAfterTheGroup) {
  LoopThreadGroup group({.threads = 2, .name = "echo"});
  std::mutex mutex;
  std::set<std::string> names;
  group.run_on_each([&](IOLoop&) {
    char name[16] = {};
    ::pthread_getname_np(::pthread_self(), name, sizeof name);
    std::lock_guard lock(mutex);
    names.insert(name);
  });
  EXPECT_EQ(names, (std::set<std::string>{"echo-0", "echo-1"}));
}

TEST(LoopThreadGroupTest, RunOnRunsOnOneLoopOnly) {
  LoopThreadGroup group({.threads = 2});
  std::atomic<int> calls{0};
  IOLoop* where = nullptr;
  group.run_on(1, [&](IOLoop& loop) {
    ++calls;
    where = IOLoop::current_or_null();
    (void)loop;
  });
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(where, &group.loop(1));
  EXPECT_THROW(group.run_on(2, [](IOLoop&) {}), std::out_of_range);
}

TEST(LoopThreadGroupTest, TheFirstExceptionIsRethrownToTheCaller) {
  LoopThreadGroup group({.threads = 2});
  EXPECT_THROW(group.run_on_each([](IOLoop&, std::size_t index) {
    if (index == 1) throw std::runtime_error("setup failed");
  }),
               std::runtime_error);
  // The group still works.
  std::atomic<int> calls{0};
  group.run_on_each([&](IOLoop&) { ++calls; });
  EXPECT_EQ(calls.load(), 2);
}

/// Records, when destroyed, on which thread and loop that happened.
struct Witness {
  static inline std::mutex mutex;
  static inline std::vector<std::pair<std::thread::id, IOLoop*>> destroyed;
  std::thread::id made_on = std::this_thread::get_id();
  IOLoop* made_in = IOLoop::current_or_null();
  ~Witness() {
    std::lock_guard lock(mutex);
    destroyed.emplace_back(std::this_thread::get_id(), IOLoop::current_or_null());
    EXPECT_EQ(std::this_thread::get_id(), made_on);
    EXPECT_EQ(IOLoop::current_or_null(), made_in);
  }
};

TEST(LoopThreadGroupTest, KeptObjectsAreDestroyedOnTheirOwnLoopThreadAtStop) {
  Witness::destroyed.clear();
  LoopThreadGroup group({.threads = 2});
  group.run_on_each([](IOLoop&) { return std::make_unique<Witness>(); });
  EXPECT_TRUE(Witness::destroyed.empty());
  group.stop();
  group.stop();  // idempotent
  std::lock_guard lock(Witness::mutex);
  ASSERT_EQ(Witness::destroyed.size(), 2u);
  EXPECT_NE(Witness::destroyed[0].first, Witness::destroyed[1].first);
  EXPECT_NE(Witness::destroyed[0].second, nullptr);
}

TEST(LoopThreadGroupTest, TheGroupCannotBeDrivenFromItsOwnLoops) {
  LoopThreadGroup group({.threads = 1});
  bool refused_run = false;
  bool refused_stop = false;
  group.run_on_each([&](IOLoop&) {
    try {
      group.run_on_each([](IOLoop&) {});
    } catch (const InvalidStateError&) {
      refused_run = true;
    }
    try {
      group.stop();
    } catch (const InvalidStateError&) {
      refused_stop = true;
    }
  });
  EXPECT_TRUE(refused_run);
  EXPECT_TRUE(refused_stop);
}

TEST(LoopThreadGroupTest, RunningAfterStopIsAnError) {
  LoopThreadGroup group({.threads = 1});
  group.stop();
  EXPECT_THROW(group.run_on_each([](IOLoop&) {}), InvalidStateError);
}

TEST(LoopThreadGroupTest, ALoopStoppedFromInsideFailsLaterTasksInsteadOfHanging) {
  LoopThreadGroup group({.threads = 2});
  group.run_on(0, [](IOLoop& loop) { loop.stop(); });
  // Loop 0 ends after the iteration that ran the stop, so a task posted now
  // never runs: it is refused, or dropped when the loop closes, and either
  // way reported instead of waited for forever.
  EXPECT_THROW(group.run_on(0, [](IOLoop&) {}), InvalidStateError);
  // The other loop is unaffected.
  std::atomic<int> calls{0};
  group.run_on(1, [&](IOLoop&) { ++calls; });
  EXPECT_EQ(calls.load(), 1);
}

// --- serving with SO_REUSEPORT -------------------------------------------------------------------

/// Answers each connection with the index of the loop that accepted it.
class IndexServer : public TCPServer {
 public:
  IndexServer(std::size_t index, std::atomic<int>* served) : index_(index), served_(served) {}

 protected:
  Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string) override {
    served_[index_].fetch_add(1);
    co_await stream->write(std::to_string(index_));
  }

 private:
  std::size_t index_;
  std::atomic<int>* served_;
};

std::string ask(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "connect failed";
  std::string out;
  char buf[16];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

TEST(LoopThreadGroupTest, TwoLoopsWithReusePortListenersBothServeOnePort) {
  std::atomic<int> served[2] = {0, 0};
  LoopThreadGroup group({.threads = 2});
  int port = group.serve(
      [&](IOLoop&, std::size_t index) { return std::make_unique<IndexServer>(index, served); }, 0, "127.0.0.1");
  ASSERT_GT(port, 0);
  // The kernel picks a listener by a hash of each connection's addresses;
  // new source ports make both loops get some soon. Bounded: 2^-400 odds
  // of a false failure.
  std::set<std::string> answers;
  for (int i = 0; i < 400 && answers.size() < 2; ++i) {
    std::string answer = ask(port);
    ASSERT_TRUE(answer == "0" || answer == "1") << answer;
    answers.insert(answer);
  }
  EXPECT_EQ(answers, (std::set<std::string>{"0", "1"}));
  group.stop();
  EXPECT_EQ(ask(port), "connect failed");  // the listeners went with the servers
  EXPECT_GT(served[0].load(), 0);
  EXPECT_GT(served[1].load(), 0);
}

}  // namespace
}  // namespace squall::net
