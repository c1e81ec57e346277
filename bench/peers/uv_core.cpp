// libuv side of the core event-loop benchmark (bench/core_loop): what the
// four loop primitives cost on libuv, measured the way squall measures them.
// Every benchmark here runs on one thread (plus one producer thread for
// cross_thread_post) and owns a private uv_loop_t.
//
// Shape shared with the squall and asio sides: one benchmark iteration runs
// one batch of kBatch operations, and SetItemsProcessed counts operations, so
// bench/report.py reads ns/op as 1e9 / items_per_second. All use real time,
// because cross_thread_post spends its time blocked, not on the CPU.
//
// The libuv equivalents, and why they are the fair ones:
//
//  post_callback      libuv has no "run this soon" queue of its own, so the
//                     honest peer is the queue a real libuv user builds: a
//                     vector of callbacks drained by a uv_idle_t, which runs
//                     once per loop iteration and keeps the poll from
//                     blocking while work is queued. This is what Node does
//                     for setImmediate (a JS queue drained by a check handle,
//                     with an idle handle to keep the poll non-blocking). A
//                     0 ms uv_timer is not used: that measures the timer heap
//                     and is what timer_fire already measures.
//  timer_fire         uv_timer_start(timeout 0) on kBatch handles, then run
//                     until all fired. Handles are initialised once and
//                     reused, which is idiomatic libuv and its cheapest path.
//  timer_cancel       uv_timer_start(1 h) + uv_timer_stop on one handle.
//  cross_thread_post  what a real post-from-any-thread costs on libuv: a
//                     mutex-protected vector of callbacks plus uv_async_send.
//                     uv_async coalesces wake-ups, so the count is callbacks
//                     delivered and run, not wake-ups.

#include "../producer_thread.hpp"
#include <benchmark/benchmark.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace {

// Operations per benchmark iteration. Large enough that entering uv_run and
// the per-batch producer hand-off are noise; the same as the asio side.
constexpr int kBatch = 1000;

// A timer that must not fire while the benchmark is cancelling it.
constexpr std::uint64_t kFarTimeoutMs = 3'600'000;

// The callback type a real queue would hold. The lambdas below capture one
// pointer, so std::function keeps them in its small buffer: no allocation.
using Callback = std::function<void()>;

[[noreturn]] void die(const char* what, int rc) {
  std::fprintf(stderr, "uv_core: %s: %s\n", what, uv_strerror(rc));
  std::abort();
}

void check(int rc, const char* what) {
  if (rc != 0) die(what, rc);
}

// A private uv loop. Whoever owns a handle on it must close the handle (see
// close_handles) before this is destroyed; the destructor aborts otherwise,
// so a leaked handle cannot go unnoticed.
class UvLoop {
 public:
  UvLoop() { check(uv_loop_init(&loop_), "uv_loop_init"); }
  ~UvLoop() { check(uv_loop_close(&loop_), "uv_loop_close"); }
  UvLoop(const UvLoop&) = delete;
  UvLoop& operator=(const UvLoop&) = delete;

  uv_loop_t* get() { return &loop_; }

 private:
  uv_loop_t loop_;
};

// Closes the handles and runs the loop once so that libuv is done with their
// memory before the caller frees it (uv_close completes on the next
// iteration, in the closing-handles phase).
template <typename Handle>
void close_handles(uv_loop_t* loop, Handle* first, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    uv_close(reinterpret_cast<uv_handle_t*>(&first[i]), nullptr);
  }
  uv_run(loop, UV_RUN_NOWAIT);
}

// Loop-thread callback queue, drained once per loop iteration by a uv_idle_t
// (see post_callback above). Callbacks posted while draining run on the next
// iteration, as in Tornado's IOLoop. Loop thread only.
class UvPostQueue {
 public:
  explicit UvPostQueue(uv_loop_t* loop) {
    check(uv_idle_init(loop, &idle_), "uv_idle_init");
    idle_.data = this;
  }
  ~UvPostQueue() { close_handles(idle_.loop, &idle_, 1); }
  UvPostQueue(const UvPostQueue&) = delete;
  UvPostQueue& operator=(const UvPostQueue&) = delete;

  void post(Callback cb) {
    // The idle handle runs only while there is work, so an empty queue lets
    // uv_run return (or block in poll) like any idle loop.
    if (pending_.empty()) uv_idle_start(&idle_, &UvPostQueue::on_idle);
    pending_.push_back(std::move(cb));
  }

 private:
  static void on_idle(uv_idle_t* idle) {
    static_cast<UvPostQueue*>(idle->data)->drain();
  }

  void drain() {
    // Swap, so that callbacks posted from a callback wait for the next
    // iteration; both vectors keep their capacity, so this never allocates
    // once warm.
    running_.swap(pending_);
    for (Callback& cb : running_) cb();
    running_.clear();
    if (pending_.empty()) uv_idle_stop(&idle_);
  }

  uv_idle_t idle_;
  std::vector<Callback> pending_;
  std::vector<Callback> running_;
};

// Any-thread callback queue: a mutex-protected vector and a uv_async_t that
// wakes the loop to drain it (see cross_thread_post above).
class UvRemoteQueue {
 public:
  explicit UvRemoteQueue(uv_loop_t* loop) {
    check(uv_async_init(loop, &async_, &UvRemoteQueue::on_async), "uv_async_init");
    async_.data = this;
  }
  ~UvRemoteQueue() { close_handles(async_.loop, &async_, 1); }
  UvRemoteQueue(const UvRemoteQueue&) = delete;
  UvRemoteQueue& operator=(const UvRemoteQueue&) = delete;

  // Any thread.
  void post(Callback cb) {
    bool was_empty;
    {
      std::lock_guard lock(mutex_);
      was_empty = pending_.empty();
      pending_.push_back(std::move(cb));
    }
    // A non-empty queue already has a wake-up on its way: the drain takes the
    // whole queue under the lock, after the wake-up that the first post sent.
    if (was_empty) uv_async_send(&async_);
  }

 private:
  static void on_async(uv_async_t* async) {
    static_cast<UvRemoteQueue*>(async->data)->drain();
  }

  void drain() {
    {
      std::lock_guard lock(mutex_);
      running_.swap(pending_);
    }
    for (Callback& cb : running_) cb();
    running_.clear();
  }

  uv_async_t async_;
  std::mutex mutex_;
  std::vector<Callback> pending_;  // guarded by mutex_
  std::vector<Callback> running_;  // loop thread only
};

using bench::ProducerThread;

void report_batches(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Callback posted from the loop thread and run on the next iteration.
void uv_post_callback(benchmark::State& state) {
  UvLoop loop;
  UvPostQueue queue(loop.get());
  int ran = 0;
  const Callback count = [&ran] { ++ran; };
  // Posting happens inside a running loop, as it would in an application;
  // the seed itself is not counted.
  const Callback post_batch = [&] {
    for (int i = 0; i < kBatch; ++i) queue.post(count);
  };

  for (auto _ : state) {
    ran = 0;
    queue.post(post_batch);
    uv_run(loop.get(), UV_RUN_DEFAULT);  // returns when the queue is empty
    if (ran != kBatch) state.SkipWithError("not every callback ran");
  }
  report_batches(state);
}

// A timer started with a 0 ms timeout and fired by the loop.
void uv_timer_fire(benchmark::State& state) {
  UvLoop loop;
  // unique_ptr<[]> so the handles never move while libuv holds them.
  auto timers = std::make_unique<uv_timer_t[]>(kBatch);
  int fired = 0;
  for (int i = 0; i < kBatch; ++i) {
    check(uv_timer_init(loop.get(), &timers[i]), "uv_timer_init");
    timers[i].data = &fired;
  }
  const auto on_timer = [](uv_timer_t* timer) { ++*static_cast<int*>(timer->data); };

  for (auto _ : state) {
    fired = 0;
    // libuv has no loop-thread check, so starting timers before uv_run on
    // this thread takes the same path as starting them from a callback.
    for (int i = 0; i < kBatch; ++i) uv_timer_start(&timers[i], on_timer, 0, 0);
    uv_run(loop.get(), UV_RUN_DEFAULT);  // returns when no timer is active
    if (fired != kBatch) state.SkipWithError("not every timer fired");
  }
  report_batches(state);
  close_handles(loop.get(), timers.get(), kBatch);
}

// A timer started and stopped before it is due.
void uv_timer_cancel(benchmark::State& state) {
  UvLoop loop;
  uv_timer_t timer;
  check(uv_timer_init(loop.get(), &timer), "uv_timer_init");
  const auto never = [](uv_timer_t*) { std::abort(); };

  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      uv_timer_start(&timer, never, kFarTimeoutMs, 0);
      uv_timer_stop(&timer);
    }
  }
  report_batches(state);
  close_handles(loop.get(), &timer, 1);
}

// Callbacks posted from a producer thread and run on the loop thread.
void uv_cross_thread_post(benchmark::State& state) {
  UvLoop loop;
  UvRemoteQueue queue(loop.get());
  int ran = 0;  // loop thread only
  const Callback count = [&ran, &loop] {
    if (++ran == kBatch) uv_stop(loop.get());
  };
  ProducerThread producer([&] {
    for (int i = 0; i < kBatch; ++i) queue.post(count);
  });

  for (auto _ : state) {
    ran = 0;
    producer.request();
    // The async handle keeps the loop alive; the last callback stops it.
    uv_run(loop.get(), UV_RUN_DEFAULT);
  }
  report_batches(state);
}

}  // namespace

BENCHMARK(uv_post_callback)->Name("libuv/post_callback")->UseRealTime();
BENCHMARK(uv_timer_fire)->Name("libuv/timer_fire")->UseRealTime();
BENCHMARK(uv_timer_cancel)->Name("libuv/timer_cancel")->UseRealTime();
BENCHMARK(uv_cross_thread_post)->Name("libuv/cross_thread_post")->UseRealTime();
