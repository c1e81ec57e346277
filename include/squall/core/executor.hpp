// Executors run blocking work off the loop thread. Results come back to the
// loop through IOLoop::add_callback, so Futures stay loop-affine.
// execute() and submit() may be called from any thread; submit()'s Future
// belongs to the calling thread's loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/ioloop.hpp"

namespace squall {

/// Something that runs jobs, usually on other threads.
class Executor {
 public:
  virtual ~Executor() = default;
  /// Queues `job`. Thread-safe. Throws InvalidStateError after shutdown.
  virtual void execute(Callback job) = 0;
  /// Stops taking jobs; with `wait`, returns once queued jobs have run.
  virtual void shutdown(bool wait = true) = 0;

  /// Runs `fn()` on this executor; the Future resolves on the calling
  /// thread's loop (which must outlive the work), like
  /// `IOLoop::current().run_in_executor(this, fn)`.
  template <class F>
  auto submit(F fn) {
    return IOLoop::current().run_in_executor(this, std::move(fn));
  }
};

/// A fixed pool of worker threads with a FIFO queue (Python's
/// concurrent.futures.ThreadPoolExecutor).
///
///   ThreadPoolExecutor pool(4);
///   std::string text = co_await pool.submit([] { return read_file("big.txt"); });
class ThreadPoolExecutor final : public Executor {
 public:
  explicit ThreadPoolExecutor(std::size_t max_workers);
  /// shutdown(true).
  ~ThreadPoolExecutor() override;

  void execute(Callback job) override;
  /// Queued jobs still run; with `wait`, joins the workers.
  void shutdown(bool wait = true) override;
  std::size_t max_workers() const noexcept { return max_workers_; }

 private:
  void worker_main();

  std::size_t max_workers_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Callback> jobs_;
  std::vector<std::thread> workers_;
  std::size_t idle_ = 0;
  bool shutting_down_ = false;
};

}  // namespace squall
