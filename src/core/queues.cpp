#include "squall/core/queues.hpp"

namespace squall::detail {

QueueCore::QueueCore(std::size_t maxsize) : maxsize_(maxsize) {
  finished_.set();  // nothing put yet: join() returns at once
}

void QueueCore::task_done() {
  getters_.check_thread();
  if (unfinished_ == 0) throw InvalidStateError("task_done() called too many times");
  // Setting the event resumes join() waiters, which may destroy the queue:
  // last step.
  if (--unfinished_ == 0) finished_.set();
}

}  // namespace squall::detail
