// The code shown in docs/guide/executors-and-periodic-work.md, compiled and
// run, so the chapter cannot drift from the library: each block between
// "// guide:" markers appears verbatim in the chapter. main() runs every
// block and checks what the chapter says it does. Every block takes
// milliseconds, so `--smoke` (what CTest runs) and a plain run are the same
// program.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "squall/squall.hpp"

using namespace std::chrono_literals;

namespace {

/// Fails the program, and so the example_guide_snippets_executor test, when
/// the guide says something the code does not do.
void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_executor: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

/// Runs `fn` on a new thread, so each section starts without a current
/// IOLoop, as a reader's program would.
template <class F>
void on_fresh_thread(F fn) {
  std::thread thread(std::move(fn));
  thread.join();
}

/// CPU-bound work that would stall the loop if it ran there.
long count_primes(long below) {
  long count = 0;
  for (long n = 2; n < below; ++n) {
    bool prime = true;
    for (long d = 2; d * d <= n && prime; ++d) prime = n % d != 0;
    count += prime;
  }
  return count;
}

// guide: submit
squall::Future<long> primes_on_a_pool(squall::ThreadPoolExecutor& pool) {
  long primes = co_await pool.submit([] { return count_primes(100'000); });  // on a worker
  co_return primes;  // back on the loop's thread
}

long count_with_a_pool() {
  squall::IOLoop loop;                 // declared first, destroyed last
  squall::ThreadPoolExecutor pool(4);  // destroyed first: waits for its jobs
  return loop.run_sync([&pool] { return primes_on_a_pool(pool); });
}
// guide: end

// guide: default-executor
squall::Future<long> primes_on_the_default_pool() {
  squall::IOLoop& loop = squall::IOLoop::current();
  long primes = co_await loop.run_in_executor(nullptr, [] { return count_primes(100'000); });
  co_return primes;
}
// guide: end

// guide: affinity
squall::Future<void> where_things_run() {
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id job_thread = co_await squall::IOLoop::current().run_in_executor(nullptr, [] {
    return std::this_thread::get_id();  // a worker thread of the default pool
  });
  check(job_thread != loop_thread, "the job runs on a worker thread");
  check(std::this_thread::get_id() == loop_thread, "the coroutine resumes on the loop's thread");
}
// guide: end

// guide: exceptions
squall::Future<std::string> read_config() {
  try {
    co_return co_await squall::IOLoop::current().run_in_executor(nullptr, []() -> std::string {
      throw std::runtime_error("config.toml: no such file");  // thrown on a worker
    });
  } catch (const std::runtime_error& e) {
    co_return std::string("defaults (") + e.what() + ")";  // caught on the loop's thread
  }
}
// guide: end

// guide: cancel
squall::Future<bool> give_up_on_slow_work() {
  squall::IOLoop& loop = squall::IOLoop::current();
  std::stop_source stop;
  auto steps = std::make_shared<std::atomic<long>>(0);  // shared: outlives either side
  squall::Future<long> work = loop.run_in_executor(nullptr, [token = stop.get_token(), steps] {
    while (!token.stop_requested()) steps->fetch_add(1);  // polls for cancellation
    return steps->load();
  });
  co_await squall::sleep(5ms);
  work.cancel();        // the Future is cancelled now; the job's result will be dropped
  stop.request_stop();  // and the job is asked to finish early
  co_return work.cancelled();
}
// guide: end

// guide: heartbeat
int heartbeat() {
  squall::IOLoop loop;
  int beats = 0;
  squall::PeriodicCallback pc([&] {
    std::printf("beat %d\n", ++beats);
    if (beats == 3) loop.stop();
  }, 10ms);
  pc.start();    // on IOLoop::current(); the first beat is 10 ms from now
  loop.start();  // beats at 10, 20 and 30 ms, then stops
  return beats;
}
// guide: end

// guide: skipping
std::vector<long> skipped_ticks() {
  auto clock = std::make_shared<squall::VirtualClock>();
  squall::IOLoop loop(squall::IOLoop::Options{.clock = clock});
  squall::TimePoint start = loop.time();
  std::vector<long> runs;  // milliseconds after start()
  squall::PeriodicCallback pc([&] {
    runs.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(loop.time() - start).count());
    if (runs.size() == 1) clock->advance(35ms);  // the first run overruns by 3.5 periods
    if (runs.size() == 3) loop.stop();
  }, 10ms);
  pc.start();
  loop.start();
  return runs;  // {10, 50, 60}: the ticks at 20, 30 and 40 ms were skipped
}
// guide: end

// guide: coroutine-callback
int refresh_in_the_background() {
  squall::IOLoop loop;
  int refreshes = 0;
  squall::PeriodicCallback refresh([&]() -> squall::Future<void> {
    // Blocking work goes to the pool; the next run waits until this one ends.
    long primes = co_await loop.run_in_executor(nullptr, [] { return count_primes(50'000); });
    std::printf("refresh %d: %ld primes\n", ++refreshes, primes);
    if (refreshes == 3) loop.stop();
  }, 10ms);
  refresh.start();
  loop.start();
  return refreshes;
}
// guide: end

// guide: jitter
void poll_for_news() {
  squall::PeriodicCallback poll([] { /* ask the server for news */ }, 60s, 0.1);  // 57 s to 63 s apart
  poll.start();
  // ...
}
// guide: end

// guide: stop-inside
int until_done() {
  squall::IOLoop loop;
  int pending = 3;
  std::unique_ptr<squall::PeriodicCallback> drain;
  drain = std::make_unique<squall::PeriodicCallback>([&] {
    if (--pending == 0) {
      drain->stop();  // no more runs; safe inside the callback
      loop.stop();
    }
  }, 1ms);
  drain->start();
  loop.start();
  return pending;  // 0
}
// guide: end

// guide: errors
int keeps_going_after_an_error() {
  squall::IOLoop loop;
  int runs = 0;
  squall::PeriodicCallback pc([&] {
    if (++runs == 1) throw std::runtime_error("first run failed");  // logged, not fatal
    if (runs == 3) loop.stop();
  }, 1ms);
  pc.start();
  loop.start();
  return runs;  // 3
}
// guide: end

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") != 0) {
      std::fprintf(stderr, "usage: %s [--smoke]\n", argv[0]);
      return 2;
    }
  }

  on_fresh_thread([] { check(count_with_a_pool() == 9592, "the pool counts the primes below 100000"); });
  on_fresh_thread([] {
    long primes = squall::IOLoop::current().run_sync(primes_on_the_default_pool);
    check(primes == 9592, "the default pool counts the primes below 100000");
  });
  on_fresh_thread([] { squall::IOLoop::current().run_sync(where_things_run); });
  on_fresh_thread([] {
    std::string config = squall::IOLoop::current().run_sync(read_config);
    check(config == "defaults (config.toml: no such file)", "the job's exception is caught on the loop");
  });
  on_fresh_thread([] {
    check(squall::IOLoop::current().run_sync(give_up_on_slow_work), "cancel() cancels the Future at once");
  });
  on_fresh_thread([] { check(heartbeat() == 3, "three beats"); });
  on_fresh_thread([] { check(skipped_ticks() == std::vector<long>{10, 50, 60}, "missed ticks are skipped"); });
  on_fresh_thread([] { check(refresh_in_the_background() == 3, "three refreshes"); });
  on_fresh_thread([] {
    squall::IOLoop loop;
    poll_for_news();  // starts and, leaving scope, stops: it only has to compile and run
  });
  on_fresh_thread([] { check(until_done() == 0, "the callback stopped itself"); });
  on_fresh_thread([] { check(keeps_going_after_an_error() == 3, "the schedule survives an exception"); });
  std::puts("guide_snippets_executor: every claim checked");
  return 0;
}
