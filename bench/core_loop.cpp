// squall side of the core event-loop benchmark (bench/core_loop): the four
// loop primitives and the two coroutine cases, measured the same way as the
// peers in peers/uv_core.cpp and peers/asio_core.cpp. Every benchmark owns a
// private IOLoop run by the benchmark thread (plus one producer thread for
// cross_thread_post).
//
// Shape shared with the libuv and asio sides: one benchmark iteration runs
// one batch of kBatch operations, and SetItemsProcessed counts operations, so
// bench/report.py reads ns/op as 1e9 / items_per_second. All use real time,
// because cross_thread_post spends its time blocked, not on the CPU.
//
// Every batch is started from inside the running loop (a seed callback given
// to add_callback before start()), as asio's run_batch does, because that is
// where an application calls these functions. The last operation of a batch
// stops the loop, as the peers' cross_thread_post does; the seed callback,
// start() and stop() cost one loop iteration per batch of 1000 and are not
// counted as operations (the peers pay the same per-batch uv_run / run()).
//
// The squall operations, and why each is the fair match:
//
//  post_callback      IOLoop::add_callback from a running callback; the
//                     callback runs on the next iteration. Same as asio's
//                     post() from a handler and libuv's vector + uv_idle_t.
//                     The callable captures two pointers and lives in the
//                     Callback's small buffer, as the peers' does.
//  timer_fire         kBatch call_later(0) from a callback, fired by the
//                     loop on its next iteration. call_later reads the clock
//                     (loop time + delay), as asio's expires_after does; libuv
//                     reads its cached loop time instead.
//  timer_cancel       call_later(1 h) + remove_timeout. squall's removal runs
//                     no handler (as libuv's uv_timer_stop), so, unlike asio,
//                     there is no aborted handler to count.
//  cross_thread_post  IOLoop::add_callback from a producer thread: squall's
//                     own mutex-protected queue plus eventfd wake-up, which
//                     coalesces wake-ups like uv_async and asio's interrupt.
//                     Counts callbacks delivered and run; the kBatch-th stops
//                     the loop. Same ProducerThread as the peers.
//  coro_sync_call     co_await of a Future<int> coroutine that co_returns at
//                     once, in a loop inside one outer coroutine, as asio's
//                     awaitable<int>. The coroutine starts eagerly and never
//                     suspends, so one op is one frame, one state, one
//                     co_await that finds the future done.
//  coro_roundtrip     Two coroutines hand a value back and forth through
//                     futures. Every hand-over goes through the loop, as it
//                     does through asio's channels (try_send posts the
//                     receiver's completion to the io_context): A resolves
//                     the future B awaits with add_callback([f] {
//                     f.set_result(v); }), B resumes in that callback, on the
//                     next loop iteration, then resolves the future A awaits
//                     the same way. One op is one full round trip A -> B -> A:
//                     two loop hops, like asio's. A fresh pending Future per
//                     hand-over (Futures resolve once), made by the side that
//                     waits; asio's channels are reused, which is their API.

#include "producer_thread.hpp"
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <thread>
#include <utility>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"

namespace {

using squall::Future;
using squall::IOLoop;
using squall::TimeoutHandle;

// Operations per benchmark iteration; the same as the libuv and asio sides.
constexpr int kBatch = 1000;

// A timer that must not fire while the benchmark is cancelling it.
constexpr auto kFarTimeout = std::chrono::hours(1);

// Runs `seed` as the first callback of a running `loop`, and the loop until
// something calls stop(). Everything the seed starts happens inside start().
template <class Seed>
void run_batch(IOLoop& loop, Seed seed) {
  loop.add_callback(std::move(seed));
  loop.start();
}

// Runs the coroutine `start()` returns inside a running `loop` and stops the
// loop when it finishes. Rethrows its exception, so a failing coroutine
// stops the benchmark instead of vanishing.
template <class Start>
void run_coroutine(IOLoop& loop, Start start) {
  Future<void> done;  // replaced by the coroutine's own future
  run_batch(loop, [&] {
    done = start();
    done.add_done_callback([&loop] { loop.stop(); });
  });
  if (std::exception_ptr e = done.exception()) std::rethrow_exception(e);
}

using bench::ProducerThread;

void report_batches(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Callback posted from the loop thread and run on the next iteration.
void squall_post_callback(benchmark::State& state) {
  IOLoop loop;
  int ran = 0;

  for (auto _ : state) {
    ran = 0;
    run_batch(loop, [&] {
      for (int i = 0; i < kBatch; ++i) {
        loop.add_callback([&ran, &loop] {
          if (++ran == kBatch) loop.stop();
        });
      }
    });
    if (ran != kBatch) state.SkipWithError("not every callback ran");
  }
  report_batches(state);
}

// A timer armed with a zero delay and fired by the loop.
void squall_timer_fire(benchmark::State& state) {
  IOLoop loop;
  int fired = 0;

  for (auto _ : state) {
    fired = 0;
    run_batch(loop, [&] {
      for (int i = 0; i < kBatch; ++i) {
        loop.call_later(std::chrono::nanoseconds(0), [&fired, &loop] {
          if (++fired == kBatch) loop.stop();
        });
      }
    });
    if (fired != kBatch) state.SkipWithError("not every timer fired");
  }
  report_batches(state);
}

// A timer armed and removed before it is due.
void squall_timer_cancel(benchmark::State& state) {
  IOLoop loop;
  int removed = 0;

  for (auto _ : state) {
    removed = 0;
    run_batch(loop, [&] {
      for (int i = 0; i < kBatch; ++i) {
        TimeoutHandle timer = loop.call_later(kFarTimeout, [&state] { state.SkipWithError("a removed timer fired"); });
        loop.remove_timeout(timer);
        ++removed;
      }
      loop.stop();
    });
    if (removed != kBatch) state.SkipWithError("not every timer was removed");
  }
  report_batches(state);
}

// Callbacks posted from a producer thread and run on the loop thread.
void squall_cross_thread_post(benchmark::State& state) {
  IOLoop loop;
  int ran = 0;  // loop thread only
  ProducerThread producer([&] {
    for (int i = 0; i < kBatch; ++i) {
      loop.add_callback([&ran, &loop] {
        if (++ran == kBatch) loop.stop();
      });
    }
  });

  for (auto _ : state) {
    ran = 0;
    producer.request();
    // Nothing else is queued, so the loop sleeps in epoll_wait until the
    // producer's first add_callback wakes it; the last callback stops it.
    loop.start();
  }
  report_batches(state);
}

Future<int> answer_at_once() { co_return 1; }

Future<void> call_in_a_loop(int calls, int& sum) {
  for (int i = 0; i < calls; ++i) sum += co_await answer_at_once();
}

// A coroutine that completes synchronously, co_awaited by another.
void squall_coro_sync_call(benchmark::State& state) {
  IOLoop loop;
  int sum = 0;

  for (auto _ : state) {
    sum = 0;
    run_coroutine(loop, [&] { return call_in_a_loop(kBatch, sum); });
    if (sum != kBatch) state.SkipWithError("not every call returned");
  }
  report_batches(state);
}

// Where A and B leave each other the future they wait on. The waiting side
// puts a fresh pending future here before it awaits it; the other side takes
// it out to resolve it.
struct Mailbox {
  Future<int> to_b;
  Future<int> to_a;
};

// Resolves `slot` with `value` on the loop's next iteration (see the top of
// the file: the asio channel's hand-over also goes through its io_context).
void resolve_through_loop(IOLoop& loop, Future<int>& slot, int value) {
  loop.add_callback([future = std::move(slot), value]() mutable { future.set_result(value); });
}

// A: resolves B's future, then awaits the reply; `rounds` times.
Future<void> ask(IOLoop& loop, Mailbox& box, int rounds, int& last) {
  for (int i = 0; i < rounds; ++i) {
    Future<int> reply;
    box.to_a = reply;
    resolve_through_loop(loop, box.to_b, i);
    last = co_await reply;
  }
}

// B: awaits a value, then resolves A's future with the reply.
Future<void> answer(IOLoop& loop, Mailbox& box, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    Future<int> request;
    box.to_b = request;
    const int value = co_await request;
    resolve_through_loop(loop, box.to_a, value + 1);
  }
}

Future<void> ask_and_answer(IOLoop& loop, int rounds, int& last) {
  Mailbox box;
  // B first, so that it is already waiting when A resolves.
  Future<void> b = answer(loop, box, rounds);
  co_await ask(loop, box, rounds, last);
  co_await b;
}

// Two coroutines handing a value back and forth through the loop.
void squall_coro_roundtrip(benchmark::State& state) {
  IOLoop loop;
  int last = 0;

  for (auto _ : state) {
    last = 0;
    run_coroutine(loop, [&] { return ask_and_answer(loop, kBatch, last); });
    if (last != kBatch) state.SkipWithError("not every round trip completed");
  }
  report_batches(state);
}

}  // namespace

BENCHMARK(squall_post_callback)->Name("squall/post_callback")->UseRealTime();
BENCHMARK(squall_timer_fire)->Name("squall/timer_fire")->UseRealTime();
BENCHMARK(squall_timer_cancel)->Name("squall/timer_cancel")->UseRealTime();
BENCHMARK(squall_cross_thread_post)->Name("squall/cross_thread_post")->UseRealTime();
BENCHMARK(squall_coro_sync_call)->Name("squall/coro_sync_call")->UseRealTime();
BENCHMARK(squall_coro_roundtrip)->Name("squall/coro_roundtrip")->UseRealTime();
