// ProducerThread: the other thread of every cross_thread_post benchmark,
// shared by squall and its peers so each side is driven the same way.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

namespace bench {

// Runs `post_batch` on its own thread once per request(), so that starting
// and joining the thread stay outside the timed loop. The destructor stops
// and joins the thread; no batch is posted after that.
class ProducerThread {
 public:
  explicit ProducerThread(std::function<void()> post_batch)
      : post_batch_(std::move(post_batch)), thread_([this] { run(); }) {}
  ~ProducerThread() {
    stop_.store(true);
    requested_.fetch_add(1);
    requested_.notify_one();
    thread_.join();
  }
  ProducerThread(const ProducerThread&) = delete;
  ProducerThread& operator=(const ProducerThread&) = delete;

  // Asks for one more batch; returns at once.
  void request() {
    requested_.fetch_add(1);
    requested_.notify_one();
  }

 private:
  void run() {
    std::uint64_t served = 0;
    for (;;) {
      requested_.wait(served);  // until a request() or the destructor
      if (stop_.load()) return;
      ++served;
      post_batch_();
    }
  }

  std::function<void()> post_batch_;
  std::atomic<std::uint64_t> requested_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts after the members it reads
};

}  // namespace bench
