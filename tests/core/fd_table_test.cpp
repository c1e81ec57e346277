// The loop's fd table (src/core/fd_table.hpp), through IOLoop's handler API:
// handlers stored inline in pages, moved out of their entry while they run,
// and destroyed only after their call when they removed themselves.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/testing.hpp"

namespace squall {
namespace {

class FdTableTest : public testing::AsyncTest {};

/// A pipe whose read end sits at fd `at_least` or above.
struct Pipe {
  explicit Pipe(int at_least = 0) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2");
    if (at_least > 0) {
      int high = ::fcntl(fds[0], F_DUPFD_CLOEXEC, at_least);
      if (high < 0) throw std::runtime_error("F_DUPFD_CLOEXEC");
      ::close(fds[0]);
      fds[0] = high;
    }
    read_end = UniqueFd(fds[0]);
    write_end = UniqueFd(fds[1]);
  }
  void poke() const {
    if (::write(write_end.get(), "x", 1) != 1) throw std::runtime_error("write");
  }
  void drain() const {
    char buf[64];
    while (::read(read_end.get(), buf, sizeof buf) > 0) {
    }
  }
  UniqueFd read_end;
  UniqueFd write_end;
};

/// Sets a flag when destroyed: shows when the loop destroys a handler.
struct DestroyFlag {
  explicit DestroyFlag(bool* f) : flag(f) {}
  DestroyFlag(const DestroyFlag&) = delete;
  DestroyFlag& operator=(const DestroyFlag&) = delete;
  ~DestroyFlag() { *flag = true; }
  bool* flag;
};

TEST_F(FdTableTest, AHandlerThatRemovesItselfIsDestroyedOnlyAfterItsCallReturns) {
  Pipe pipe;
  pipe.poke();
  bool destroyed = false;
  bool destroyed_during_call = true;
  auto token = std::make_shared<DestroyFlag>(&destroyed);
  io_loop().add_handler(pipe.read_end.get(), IOLoop::READ, [&, token](int fd, std::uint32_t) {
    io_loop().remove_handler(fd);
    destroyed_during_call = destroyed;  // still running: must be alive
    io_loop().add_callback([&] { io_loop().stop(); });
  });
  token.reset();  // the handler holds the only reference now
  io_loop().start();
  EXPECT_FALSE(destroyed_during_call);
  EXPECT_TRUE(destroyed);
}

TEST_F(FdTableTest, AHandlerMayReplaceItselfOnTheSameFdWhileRunning) {
  Pipe pipe;
  pipe.poke();
  int fd = pipe.read_end.get();
  bool first_destroyed = false;
  int first_calls = 0, second_calls = 0;
  auto token = std::make_shared<DestroyFlag>(&first_destroyed);
  io_loop().add_handler(fd, IOLoop::READ, [&, token](int ready, std::uint32_t) {
    ++first_calls;
    pipe.drain();
    io_loop().remove_handler(ready);
    // The fd (number) is registered again while the old handler runs, as
    // when a handler closes its socket and a new one gets the same number.
    io_loop().add_handler(ready, IOLoop::READ, [&](int, std::uint32_t) {
      ++second_calls;
      pipe.drain();
      io_loop().stop();
    });
    pipe.poke();
  });
  token.reset();
  io_loop().start();
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(second_calls, 1);
  EXPECT_TRUE(first_destroyed);  // replaced: destroyed after its call, not kept
  io_loop().remove_handler(fd);
}

TEST_F(FdTableTest, FdsFarApartReachTheirOwnHandlers) {
  // Entries live in pages of 256 fds: these three sit in different pages.
  std::vector<std::unique_ptr<Pipe>> pipes;
  pipes.push_back(std::make_unique<Pipe>());
  pipes.push_back(std::make_unique<Pipe>(300));
  pipes.push_back(std::make_unique<Pipe>(600));
  std::vector<int> seen;
  for (std::size_t i = 0; i < pipes.size(); ++i) {
    io_loop().add_handler(pipes[i]->read_end.get(), IOLoop::READ, [&, i](int fd, std::uint32_t) {
      EXPECT_EQ(fd, pipes[i]->read_end.get());
      seen.push_back(static_cast<int>(i));
      pipes[i]->drain();
      if (seen.size() == pipes.size()) io_loop().stop();
    });
  }
  for (auto& p : pipes) p->poke();
  io_loop().start();
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
  for (auto& p : pipes) io_loop().remove_handler(p->read_end.get());
}

TEST_F(FdTableTest, AHandlerRemovedAndAddedAgainOutsideDispatchIsTheNewOne) {
  Pipe pipe;
  int fd = pipe.read_end.get();
  int old_calls = 0, new_calls = 0;
  io_loop().add_handler(fd, IOLoop::READ, [&](int, std::uint32_t) { ++old_calls; });
  io_loop().remove_handler(fd);
  io_loop().add_handler(fd, IOLoop::READ, [&](int, std::uint32_t) {
    ++new_calls;
    pipe.drain();
    io_loop().stop();
  });
  pipe.poke();
  io_loop().start();
  EXPECT_EQ(old_calls, 0);
  EXPECT_EQ(new_calls, 1);
  io_loop().remove_handler(fd);
}

}  // namespace
}  // namespace squall
