#include "squall/core/executor.hpp"

#include <spdlog/spdlog.h>

#include "squall/core/errors.hpp"
#include "squall/core/log.hpp"

namespace squall {

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers) : max_workers_(max_workers == 0 ? 1 : max_workers) {}

ThreadPoolExecutor::~ThreadPoolExecutor() { shutdown(true); }

void ThreadPoolExecutor::execute(Callback job) {
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) throw InvalidStateError("cannot schedule new work after shutdown");
    jobs_.push_back(std::move(job));
    // Threads start lazily, as in Python: one more only when the queued jobs
    // outnumber the idle workers that will take them. (Testing idle_ == 0
    // would let one idle worker absorb a burst of jobs, serialising jobs
    // that wait for each other.)
    if (jobs_.size() > idle_ && workers_.size() < max_workers_) workers_.emplace_back([this] { worker_main(); });
  }
  ready_.notify_one();
}

void ThreadPoolExecutor::worker_main() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    ready_.wait(lock, [this] { return shutting_down_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) return;  // shutting down and drained
    Callback job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    try {
      job();
    } catch (const std::exception& e) {
      log::app().error("Exception in executor job: {}", e.what());
    } catch (...) {
      log::app().error("Exception in executor job: unknown exception");
    }
    job = nullptr;  // destroy captures outside the lock
    lock.lock();
  }
}

void ThreadPoolExecutor::shutdown(bool wait) {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    // Without `wait` the workers finish the queue on their own; the
    // destructor joins them, since they use this object.
    if (wait) workers.swap(workers_);
  }
  ready_.notify_all();
  for (auto& t : workers) t.join();
}

}  // namespace squall
