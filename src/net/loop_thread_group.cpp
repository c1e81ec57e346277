#include "squall/net/loop_thread_group.hpp"

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <mutex>

#include "squall/core/errors.hpp"

namespace squall::net {

struct LoopThreadGroup::Slot {
  /// Made on the loop's thread (so it is that thread's current loop) and
  /// closed there; the object itself lives as long as the group, so loop()
  /// references stay valid.
  std::unique_ptr<IOLoop> loop;
  std::thread thread;
  /// run_on_each's objects. Loop thread only.
  std::vector<std::shared_ptr<void>> kept;

  /// Guards `exited`, and makes posting and the loop's close() exclusive:
  /// add_callback on a loop that its thread is closing would race with
  /// close() and leave the callback queued forever.
  std::mutex mutex;
  bool exited = false;

  /// Queues `cb` on the loop; false (and `cb` destroyed here) if the loop's
  /// thread has finished.
  bool post(Callback cb) {
    std::lock_guard lock(mutex);
    if (exited) return false;
    loop->add_callback(std::move(cb));
    return true;
  }
};

namespace {

std::size_t cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

void drop_kept(std::vector<std::shared_ptr<void>>& kept) {
  while (!kept.empty()) kept.pop_back();  // last made, first destroyed
}

/// Waits for a batch of tasks posted to loops.
struct Batch {
  std::mutex mutex;
  std::condition_variable done;
  std::size_t remaining = 0;
  std::exception_ptr error;

  void finish(std::exception_ptr e) {
    std::lock_guard lock(mutex);
    if (e && !error) error = std::move(e);
    --remaining;
    done.notify_all();
  }
};

/// Reports a task to its Batch exactly once: when it ran, or when its loop
/// dropped it unrun (the loop was stopped from inside, and closing it
/// destroyed pending callbacks), so the waiting thread never hangs.
class BatchTicket {
 public:
  explicit BatchTicket(std::shared_ptr<Batch> batch) noexcept : batch_(std::move(batch)) {}
  BatchTicket(BatchTicket&&) noexcept = default;
  BatchTicket& operator=(BatchTicket&&) = delete;
  BatchTicket(const BatchTicket&) = delete;
  ~BatchTicket() {
    if (batch_) batch_->finish(std::make_exception_ptr(InvalidStateError("LoopThreadGroup: the loop stopped first")));
  }
  void ran(std::exception_ptr e) { std::exchange(batch_, nullptr)->finish(std::move(e)); }

 private:
  std::shared_ptr<Batch> batch_;
};

}  // namespace

LoopThreadGroup::LoopThreadGroup(LoopThreadGroupOptions options) {
  const std::size_t n = options.threads ? options.threads : cpu_count();
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t ready = 0;
  slots_.reserve(n);
  try {
    for (std::size_t i = 0; i < n; ++i) {
      slots_.push_back(std::make_unique<Slot>());
      Slot* slot = slots_.back().get();
      std::string name = (options.name + "-" + std::to_string(i)).substr(0, 15);
      slot->thread = std::thread([slot, name, &mutex, &cv, &ready] {
        ::pthread_setname_np(::pthread_self(), name.c_str());
        slot->loop = std::make_unique<IOLoop>();
        {
          std::lock_guard lock(mutex);
          ++ready;
          cv.notify_all();
        }
        slot->loop->start();
        drop_kept(slot->kept);
        {
          std::lock_guard lock(slot->mutex);
          slot->exited = true;
        }
        // Destroys whatever was posted meanwhile: a run_on_each task reports
        // that its loop stopped first.
        slot->loop->close();
      });
    }
  } catch (...) {
    // Could not start a thread: wind down those that did, once their loops
    // exist (stop() posts to them).
    if (!slots_.empty() && !slots_.back()->thread.joinable()) slots_.pop_back();
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return ready == slots_.size(); });
    }
    stop();
    throw;
  }
  std::unique_lock lock(mutex);
  cv.wait(lock, [&] { return ready == n; });
}

LoopThreadGroup::~LoopThreadGroup() { stop(); }

IOLoop& LoopThreadGroup::loop(std::size_t index) const {
  if (index >= slots_.size()) throw std::out_of_range("LoopThreadGroup::loop: no such loop");
  return *slots_[index]->loop;
}

void LoopThreadGroup::check_caller(const char* what) const {
  IOLoop* current = IOLoop::current_or_null();
  for (const auto& slot : slots_) {
    if (current && current == slot->loop.get()) {
      throw InvalidStateError(std::string("LoopThreadGroup::") + what + " called from one of the group's loops");
    }
  }
}

void LoopThreadGroup::run(std::size_t first, std::size_t last, Task task) {
  check_caller("run_on_each");
  if (stopped_) throw InvalidStateError("LoopThreadGroup: stopped");
  auto batch = std::make_shared<Batch>();
  batch->remaining = last - first;
  for (std::size_t i = first; i < last; ++i) {
    Slot* slot = slots_[i].get();
    slot->post([slot, i, task, ticket = BatchTicket(batch)]() mutable {
      std::exception_ptr error;
      try {
        if (std::shared_ptr<void> object = task(*slot->loop, i)) slot->kept.push_back(std::move(object));
      } catch (...) {
        error = std::current_exception();
      }
      ticket.ran(std::move(error));
    });
  }
  std::unique_lock lock(batch->mutex);
  batch->done.wait(lock, [&] { return batch->remaining == 0; });
  if (batch->error) std::rethrow_exception(batch->error);
}

int LoopThreadGroup::serve(std::function<std::unique_ptr<TCPServer>(IOLoop&, std::size_t)> make_server, int port,
                           const std::string& address, BindOptions options) {
  options.reuse_port = true;
  // The first loop binds first, so that with port 0 the others know which
  // port to join. `bound` is written on loop 0's thread and read here after
  // run_on() returned, which synchronises through the batch's mutex.
  int bound = port;
  run_on(0, [&](IOLoop& loop, std::size_t index) {
    std::unique_ptr<TCPServer> server = make_server(loop, index);
    bound = server->listen(port, address, options);
    return server;
  });
  run(1, size(), make_task([&make_server, bound, &address, &options](IOLoop& loop, std::size_t index) {
        std::unique_ptr<TCPServer> server = make_server(loop, index);
        server->listen(bound, address, options);
        return server;
      }));
  return bound;
}

void LoopThreadGroup::stop() {
  if (stopped_) return;
  check_caller("stop");
  stopped_ = true;
  for (auto& slot : slots_) {
    Slot* s = slot.get();
    if (!s->loop) continue;
    s->post([s] {
      drop_kept(s->kept);
      s->loop->stop();
    });
  }
  for (auto& slot : slots_) {
    if (slot->thread.joinable()) slot->thread.join();
  }
}

}  // namespace squall::net
