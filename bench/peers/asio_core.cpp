// Boost.Asio side of the core event-loop benchmark (bench/core_loop): the
// four loop primitives and the two coroutine cases, measured the way squall
// measures them. Every benchmark owns a private io_context run by the
// benchmark thread (plus one producer thread for cross_thread_post).
//
// Shape shared with the squall and libuv sides: one benchmark iteration runs
// one batch of kBatch operations, and SetItemsProcessed counts operations, so
// bench/report.py reads ns/op as 1e9 / items_per_second. All use real time,
// because cross_thread_post spends its time blocked, not on the CPU.
//
// Asio gets its best ordinary configuration: io_context(1), the documented
// hint that one thread runs it, and work is started from inside run(), where
// asio queues handlers thread-privately instead of under the scheduler lock.
//
//  post_callback      asio::post(io, f) from a running handler.
//  timer_fire         kBatch steady_timers: expires_after(0) + async_wait,
//                     run until all handlers ran. Timers are reused.
//  timer_cancel       expires_after(1 h) + async_wait + cancel on one timer.
//                     An asio cancel always completes the handler with
//                     operation_aborted, so running that handler is part of
//                     the cost and is counted.
//  cross_thread_post  asio::post(io, f) from a producer thread, which is
//                     asio's own locked queue plus reactor interrupt.
//  coro_sync_call     co_await of an awaitable<int> that co_returns at once,
//                     from inside one outer awaitable.
//  coro_roundtrip     Two coroutines over two experimental::channels with a
//                     one-slot buffer, asio's closest match to a future:
//                     A try_send()s a value (resolves without suspending),
//                     B has been co_awaiting async_receive on it and resumes
//                     through the io_context, then try_send()s a reply that A
//                     co_awaits. One op is one full round trip A -> B -> A.
//                     experimental::channel is unlocked (null_mutex), like a
//                     loop-thread future.

#include "../producer_thread.hpp"
#include <benchmark/benchmark.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;

namespace {

// Operations per benchmark iteration; the same as the libuv side.
constexpr int kBatch = 1000;

// Tells asio exactly one thread calls run(); see the top of the file.
constexpr int kOneThread = 1;

// A timer that must not fire while the benchmark is cancelling it.
constexpr auto kFarTimeout = std::chrono::hours(1);

using ErrorCode = boost::system::error_code;

// Posts `start` into `io` and runs `io` until it runs out of work, so that
// everything `start` does happens inside run(); then readies `io` for the
// next batch.
template <typename Start>
void run_batch(asio::io_context& io, Start start) {
  asio::post(io, std::move(start));
  io.run();
  io.restart();
}

// Completion handler for co_spawn: rethrows from io.run(), so a failing
// coroutine stops the benchmark instead of vanishing like with `detached`.
void rethrow_if_failed(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

using bench::ProducerThread;

void report_batches(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Callback posted from the loop thread and run by the loop.
void asio_post_callback(benchmark::State& state) {
  asio::io_context io(kOneThread);
  int ran = 0;

  for (auto _ : state) {
    ran = 0;
    run_batch(io, [&] {
      for (int i = 0; i < kBatch; ++i) asio::post(io, [&ran] { ++ran; });
    });
    if (ran != kBatch) state.SkipWithError("not every callback ran");
  }
  report_batches(state);
}

// A timer armed with a zero delay and fired by the loop.
void asio_timer_fire(benchmark::State& state) {
  asio::io_context io(kOneThread);
  std::vector<asio::steady_timer> timers;
  timers.reserve(kBatch);
  for (int i = 0; i < kBatch; ++i) timers.emplace_back(io);
  int fired = 0;

  for (auto _ : state) {
    fired = 0;
    run_batch(io, [&] {
      for (asio::steady_timer& timer : timers) {
        timer.expires_after(std::chrono::nanoseconds(0));
        timer.async_wait([&fired](ErrorCode ec) { fired += !ec; });
      }
    });
    if (fired != kBatch) state.SkipWithError("not every timer fired");
  }
  report_batches(state);
}

// A timer armed and cancelled before it is due, its aborted handler run.
void asio_timer_cancel(benchmark::State& state) {
  asio::io_context io(kOneThread);
  asio::steady_timer timer(io);
  int aborted = 0;

  for (auto _ : state) {
    aborted = 0;
    run_batch(io, [&] {
      for (int i = 0; i < kBatch; ++i) {
        timer.expires_after(kFarTimeout);
        timer.async_wait([&aborted](ErrorCode ec) {
          aborted += ec == asio::error::operation_aborted;
        });
        timer.cancel();
      }
    });
    if (aborted != kBatch) state.SkipWithError("not every wait was aborted");
  }
  report_batches(state);
}

// Callbacks posted from a producer thread and run on the loop thread.
void asio_cross_thread_post(benchmark::State& state) {
  asio::io_context io(kOneThread);
  // Keeps run() waiting for the producer; the last callback stops it.
  auto work = asio::make_work_guard(io);
  int ran = 0;  // loop thread only
  ProducerThread producer([&] {
    for (int i = 0; i < kBatch; ++i) {
      asio::post(io, [&ran, &io] {
        if (++ran == kBatch) io.stop();
      });
    }
  });

  for (auto _ : state) {
    ran = 0;
    producer.request();
    io.run();
    io.restart();
  }
  report_batches(state);
}

asio::awaitable<int> answer_at_once() { co_return 1; }

asio::awaitable<void> call_in_a_loop(int calls, int& sum) {
  for (int i = 0; i < calls; ++i) sum += co_await answer_at_once();
}

// A coroutine that completes synchronously, co_awaited by another.
void asio_coro_sync_call(benchmark::State& state) {
  asio::io_context io(kOneThread);
  int sum = 0;

  for (auto _ : state) {
    sum = 0;
    co_spawn(io, call_in_a_loop(kBatch, sum), rethrow_if_failed);
    io.run();
    io.restart();
    if (sum != kBatch) state.SkipWithError("not every call returned");
  }
  report_batches(state);
}

// A one-slot channel: try_send never suspends, like resolving a future.
using Channel = asio::experimental::channel<void(ErrorCode, int)>;
constexpr std::size_t kOneSlot = 1;

// A: resolves `out`, then awaits the reply on `in`; `rounds` times.
asio::awaitable<void> ask(Channel& out, Channel& in, int rounds, int& last) {
  for (int i = 0; i < rounds; ++i) {
    if (!out.try_send(ErrorCode(), i)) throw std::logic_error("ping slot full");
    last = co_await in.async_receive(asio::use_awaitable);
  }
}

// B: awaits a value on `in`, then resolves `out` with the reply.
asio::awaitable<void> reply(Channel& in, Channel& out, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    const int value = co_await in.async_receive(asio::use_awaitable);
    if (!out.try_send(ErrorCode(), value + 1)) throw std::logic_error("pong slot full");
  }
}

// Two coroutines handing a value back and forth through the io_context.
void asio_coro_roundtrip(benchmark::State& state) {
  asio::io_context io(kOneThread);
  Channel ping(io, kOneSlot);
  Channel pong(io, kOneSlot);
  int last = 0;

  for (auto _ : state) {
    last = 0;
    // B first, so that it is already waiting when A resolves.
    co_spawn(io, reply(ping, pong, kBatch), rethrow_if_failed);
    co_spawn(io, ask(ping, pong, kBatch, last), rethrow_if_failed);
    io.run();
    io.restart();
    if (last != kBatch) state.SkipWithError("not every round trip completed");
  }
  report_batches(state);
}

}  // namespace

BENCHMARK(asio_post_callback)->Name("asio/post_callback")->UseRealTime();
BENCHMARK(asio_timer_fire)->Name("asio/timer_fire")->UseRealTime();
BENCHMARK(asio_timer_cancel)->Name("asio/timer_cancel")->UseRealTime();
BENCHMARK(asio_cross_thread_post)->Name("asio/cross_thread_post")->UseRealTime();
BENCHMARK(asio_coro_sync_call)->Name("asio/coro_sync_call")->UseRealTime();
BENCHMARK(asio_coro_roundtrip)->Name("asio/coro_roundtrip")->UseRealTime();
