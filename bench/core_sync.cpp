// What coordinating coroutines costs (locks.hpp, queues.hpp): registers
// squall/lock_uncontended, squall/lock_handoff and squall/queue_put_get.
// There is no peer column: libuv has no coroutine locks, and asio's
// experimental channels are a different design; the targets are absolute.
//
// Shape shared with bench/core_loop: one benchmark iteration runs one batch
// of kBatch operations, SetItemsProcessed counts operations (so ns/op is
// 1e9 / items_per_second), and real time is used.
//
//  lock_uncontended  `auto guard = co_await lock.acquire();` then the guard's
//                    release, on a free lock: the fast path, which neither
//                    allocates nor suspends. Target: <= 20 ns.
//  lock_handoff      one contended hand-off between two coroutines: B queues
//                    for the lock A holds (a Future, a waiter node, a
//                    suspension), A releases, B resumes holding the lock and
//                    releases it, A takes it again uncontended. B is parked
//                    between rounds by a bare awaiter that A resumes by
//                    hand, so no loop iteration is measured.
//  queue_put_get     one item from a producer coroutine to a consumer
//                    coroutine that waits in get(): each put hands the item
//                    straight to the waiting getter and resumes it, which
//                    then waits again. Target: <= 100 ns.
//
// The coroutines finish within the batch without running the IOLoop (every
// hand-off resumes the other side at once), so the numbers are the
// primitives', not the loop's.

#include <benchmark/benchmark.h>

#include <coroutine>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/locks.hpp"
#include "squall/core/queues.hpp"

namespace {

// Operations per benchmark iteration, as in bench/core_loop.
constexpr int kBatch = 1000;

// --- lock_uncontended ------------------------------------------------------------

squall::Future<void> acquire_release(squall::Lock& lock, int n) {
  for (int i = 0; i < n; ++i) {
    auto guard = co_await lock.acquire();
    benchmark::DoNotOptimize(guard);
  }
}

void lock_uncontended(benchmark::State& state) {
  squall::IOLoop loop;
  squall::Lock lock;
  for (auto _ : state) {
    auto done = acquire_release(lock, kBatch);
    if (!done.done()) state.SkipWithError("the uncontended loop suspended");
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// --- lock_handoff ------------------------------------------------------------------

// Suspends the awaiting coroutine and leaves its handle for someone to
// resume by hand (only a benchmark does that: it bypasses cancellation).
struct Park {
  std::coroutine_handle<>* slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { *slot = h; }
  void await_resume() const noexcept {}
};

struct Handoff {
  squall::Lock lock;
  std::coroutine_handle<> parked;
  long handoffs = 0;
  bool stop = false;
};

// B: waits for its turn, then queues for the lock A holds.
squall::Future<void> contender(Handoff& h) {
  for (;;) {
    co_await Park{&h.parked};
    if (h.stop) co_return;
    auto guard = co_await h.lock.acquire();  // contended: A holds the lock
    ++h.handoffs;
  }  // releases the lock, free for A again
}

// A: holds the lock, lets B queue, hands the lock over.
squall::Future<void> holder(Handoff& h, int n) {
  for (int i = 0; i < n; ++i) {
    auto guard = co_await h.lock.acquire();  // uncontended: B released it
    h.parked.resume();                       // B queues behind A and suspends
    guard.release();                         // the hand-off: B runs, releases, parks
  }
}

void lock_handoff(benchmark::State& state) {
  squall::IOLoop loop;
  Handoff h;
  auto b = contender(h);  // parks at once
  for (auto _ : state) {
    auto done = holder(h, kBatch);
    if (!done.done()) state.SkipWithError("the hand-off loop suspended");
  }
  h.stop = true;
  h.parked.resume();
  if (!b.done() || h.handoffs != static_cast<long>(state.iterations()) * kBatch) {
    state.SkipWithError("hand-offs went missing");
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// --- queue_put_get --------------------------------------------------------------------

squall::Future<void> consumer(squall::Queue<int>& q, int n, long& sum) {
  for (int i = 0; i < n; ++i) sum += co_await q.get();
}

squall::Future<void> producer(squall::Queue<int>& q, int n) {
  for (int i = 0; i < n; ++i) co_await q.put(i);
}

void queue_put_get(benchmark::State& state) {
  squall::IOLoop loop;
  squall::Queue<int> q;
  long sum = 0;
  for (auto _ : state) {
    auto c = consumer(q, kBatch, sum);  // waits in get()
    auto p = producer(q, kBatch);       // each put resumes it
    if (!c.done() || !p.done()) state.SkipWithError("the queue loop suspended");
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

BENCHMARK(lock_uncontended)->Name("squall/lock_uncontended")->UseRealTime();
BENCHMARK(lock_handoff)->Name("squall/lock_handoff")->UseRealTime();
BENCHMARK(queue_put_get)->Name("squall/queue_put_get")->UseRealTime();

}  // namespace
