// The code shown in docs/guide/timeouts-and-cancellation.md and
// docs/guide/migrating-callbacks.md, compiled and run, so the guide cannot
// drift from the library: each block between "// guide:" markers appears
// verbatim in a chapter. main() runs every block and checks what the chapter
// says it does; the testing section's example runs as a GoogleTest test.
// Every block takes milliseconds, so `--smoke` (what CTest runs) and a plain
// run are the same program.
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "squall/squall.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace {

/// Fails the program, and so the example_guide_snippets_gen test, when the
/// guide says something the code does not do.
void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_gen: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

/// Runs `fn` on a new thread, so each section starts from a fresh loop, as a
/// reader's program would.
template <class F>
void on_fresh_thread(F fn) {
  std::thread thread(std::move(fn));
  thread.join();
}

template <class F>
auto run(F fn) {
  return squall::IOLoop::current().run_sync(std::move(fn));
}

// =========================================================================
// timeouts-and-cancellation.md
// =========================================================================

// guide: sleep-and-moment
squall::Future<long> sum_of_squares(long n) {
  long total = 0;
  for (long i = 0; i < n; ++i) {
    total += i * i;
    if (i % 10'000 == 0) co_await squall::moment();  // let I/O and callbacks run
  }
  co_return total;
}

squall::Future<void> nap() {
  squall::TimePoint start = squall::IOLoop::current().time();
  co_await squall::sleep(10ms);
  std::printf("slept %lld ms\n",
              static_cast<long long>((squall::IOLoop::current().time() - start) / 1ms));
}
// guide: end

// guide: with-timeout
squall::Future<std::string> slow_lookup(std::string key) {
  co_await squall::sleep(30ms);
  co_return "fresh " + key;
}

squall::Future<std::string> lookup_or_cached() {
  squall::Future<std::string> lookup = slow_lookup("config");
  std::string value;
  try {
    value = co_await squall::with_timeout(5ms, lookup);
  } catch (const squall::TimeoutError&) {
    value = "cached config";  // the lookup was not cancelled: it goes on
  }
  std::string late = co_await lookup;  // "fresh config", 25 ms later
  co_return value + ", then " + late;
}
// guide: end

// guide: quiet
squall::Future<void> close_politely(squall::Future<void> closing) {
  try {
    co_await squall::with_timeout(
        5ms, std::move(closing),
        {.quiet_exceptions = squall::exception_types<squall::TimeoutError, std::system_error>()});
  } catch (const squall::TimeoutError&) {
    // gave up waiting; if `closing` fails later with one of those types,
    // nothing is logged
  }
}
// guide: end

// guide: deadline-scope
squall::Future<void> handshake(std::shared_ptr<std::string> log) {
  try {
    co_await squall::sleep(1h);  // stands for a peer that never answers
  } catch (const squall::CancelledError&) {
    *log += "handshake cancelled; ";
    throw;  // rethrow: the scope turns it into TimeoutError
  }
}

squall::Future<void> connect_with_deadline(std::shared_ptr<std::string> log) {
  try {
    co_await squall::timeout(10ms, handshake(log));
  } catch (const squall::TimeoutError&) {
    *log += "gave up after 10 ms";
  }
}
// guide: end

// guide: cleanup
squall::Future<void> upload(std::shared_ptr<int> open_files) {
  ++*open_files;
  bool cancelled = false;
  try {
    co_await squall::sleep(1h);  // the long part of the work
  } catch (const squall::CancelledError&) {
    cancelled = true;  // no co_await inside a handler: clean up below
  }
  co_await squall::sleep(1ms);  // asynchronous cleanup (flush, close)
  --*open_files;
  if (cancelled) throw squall::CancelledError();  // stay cancelled
}

squall::Future<void> upload_with_deadline(std::shared_ptr<int> open_files) {
  try {
    co_await squall::timeout(5ms, upload(open_files));
  } catch (const squall::TimeoutError&) {
    // upload() has finished its cleanup by now: *open_files is 0 again
  }
}
// guide: end

// guide: multi-deadline
squall::Future<int> replica(int id, squall::Duration delay, std::shared_ptr<int> cancelled) {
  try {
    co_await squall::sleep(delay);
  } catch (const squall::CancelledError&) {
    ++*cancelled;
    throw;
  }
  co_return id;
}

squall::Future<void> ask_every_replica(std::shared_ptr<int> cancelled) {
  std::vector<squall::Future<int>> answers;
  answers.push_back(replica(1, 1ms, cancelled));
  answers.push_back(replica(2, 1h, cancelled));
  answers.push_back(replica(3, 1h, cancelled));
  try {
    std::vector<int> ids = co_await squall::timeout(20ms, squall::multi(std::move(answers)));
    std::printf("all %zu replicas answered\n", ids.size());  // not this time
  } catch (const squall::TimeoutError&) {
    // multi() was cancelled, and cancelled replicas 2 and 3: *cancelled == 2
  }
}
// guide: end

// guide: braced-multi
squall::Future<int> total_of(squall::Future<int> a, squall::Future<int> b) {
  auto both = squall::multi({a, b});  // not inside the co_await expression
  std::vector<int> values = co_await std::move(both);
  co_return values[0] + values[1];
}
// guide: end

// guide: wait-iterator
squall::Future<std::vector<std::size_t>> finishing_order() {
  std::vector<squall::Future<void>> naps;
  naps.push_back(squall::sleep(30ms));
  naps.push_back(squall::sleep(10ms));
  naps.push_back(squall::sleep(20ms));
  squall::WaitIterator it(std::move(naps));
  std::vector<std::size_t> order;
  while (!it.done()) {
    co_await it.next();
    order.push_back(it.current_index());
  }
  co_return order;  // {1, 2, 0}
}

squall::Future<int> first_answer(std::shared_ptr<int> cancelled) {
  std::vector<squall::Future<int>> answers;
  answers.push_back(replica(1, 1h, cancelled));
  answers.push_back(replica(2, 5ms, cancelled));
  squall::WaitIterator it(answers);
  int first = co_await squall::timeout(1s, it.next());  // 2
  for (auto& answer : answers) answer.cancel();  // the iterator never cancels
  co_return first;
}
// guide: end

// guide: executor
squall::Future<bool> abandon_blocking_work(std::shared_ptr<std::atomic<bool>> finished) {
  squall::Future<int> work = squall::IOLoop::current().run_in_executor(nullptr, [finished] {
    std::this_thread::sleep_for(20ms);  // a blocking call: nothing can interrupt it
    *finished = true;
    return 42;
  });
  try {
    co_await squall::timeout(1ms, work);
  } catch (const squall::TimeoutError&) {
    // work.cancelled() is true, but the thread is still sleeping: when it
    // returns, its 42 is dropped
  }
  co_return work.cancelled();
}
// guide: end

// =========================================================================
// migrating-callbacks.md
// =========================================================================

// guide: callback-api
// A library written in callback style: each call answers later, on the
// loop, by calling `done`.
void lookup_user(std::string name, std::function<void(int)> done) {
  squall::IOLoop::current().call_later(1ms, [name, done] { done(static_cast<int>(name.size())); });
}

void load_profile(int user_id, std::function<void(std::string)> done) {
  squall::IOLoop::current().call_later(1ms, [user_id, done] { done("profile #" + std::to_string(user_id)); });
}

// Before: every step nests inside the previous step's callback.
void show_profile_with_callbacks(std::string name, std::function<void(std::string)> done) {
  lookup_user(name, [done](int id) {
    load_profile(id, [done](std::string profile) { done("shown: " + profile); });
  });
}
// guide: end

// guide: gen-task
// Step 1: the callers become coroutines; the library stays as it is.
squall::Future<std::string> show_profile_bridged(std::string name) {
  int id = co_await squall::gen_task<int>(lookup_user, name);
  auto load = squall::convert<std::string>(load_profile);  // a Future-returning load_profile
  std::string profile = co_await load(id);
  co_return "shown: " + profile;
}
// guide: end

// guide: gen-task-deadline
squall::Future<int> lookup_user_within(std::string name, squall::Duration limit) {
  // On expiry the caller gets TimeoutError; lookup_user runs on regardless.
  co_return co_await squall::timeout(limit, squall::gen_task<int>(lookup_user, std::move(name)));
}
// guide: end

// guide: native
// Step 2: the library itself returns Futures.
squall::Future<int> lookup_user_async(std::string name) {
  co_await squall::sleep(1ms);
  co_return static_cast<int>(name.size());
}

squall::Future<std::string> load_profile_async(int user_id) {
  co_await squall::sleep(1ms);
  co_return "profile #" + std::to_string(user_id);
}

squall::Future<std::string> show_profile(std::string name) {
  int id = co_await lookup_user_async(std::move(name));
  co_return "shown: " + co_await load_profile_async(id);
}
// guide: end

// guide: compat
// Callers not yet migrated keep the old signature, now a thin layer over
// the new code: a Future can always be handed a callback.
void lookup_user_compat(std::string name, std::function<void(int)> done,
                        std::function<void(std::exception_ptr)> failed) {
  lookup_user_async(std::move(name)).add_done_callback([done, failed](squall::Future<int> f) {
    if (std::exception_ptr e = f.exception()) {
      failed(e);
    } else {
      done(f.result());
    }
  });
}
// guide: end

// guide: chain-future
// Code handed a Future to fill, as Tornado's callers often were.
void answer_into(squall::Future<std::string> reply, int user_id) {
  squall::chain_future(load_profile_async(user_id), reply);
}
// guide: end

// guide: other-threads
// A library that calls back on its own worker thread.
void checksum_on_worker(squall::Executor& worker, std::string data, std::function<void(std::size_t)> done) {
  worker.execute([data = std::move(data), done = std::move(done)] { done(std::hash<std::string>{}(data)); });
}

squall::Future<std::size_t> checksum(squall::Executor& worker, std::string data) {
  squall::IOLoop* loop = &squall::IOLoop::current();
  return squall::gen_task<std::size_t>([&](std::function<void(std::size_t)> done) {
    // `hop` runs on the worker. It moves `done` back to the loop and never
    // copies it there: copying touches the Future's count, which is not atomic.
    auto hop = [loop, done = std::move(done)](std::size_t sum) mutable {
      loop->add_callback([done = std::move(done), sum] { done(sum); });
    };
    checksum_on_worker(worker, std::move(data), std::move(hop));
  });
}
// guide: end

// =========================================================================
// The testing section, as a GoogleTest test.
// =========================================================================

// guide: virtual-clock-test
class DeadlineTest : public squall::testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }  // idle time jumps to the next timer
  squall::Duration async_test_timeout() const override { return 2h; }  // virtual too
};

SQUALL_ASYNC_TEST(DeadlineTest, AThirtySecondTimeoutExpiresWithoutWaiting) {
  squall::TimePoint start = io_loop().time();
  auto log = std::make_shared<std::string>();
  bool timed_out = false;
  try {
    co_await squall::timeout(30s, handshake(log));
  } catch (const squall::TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(*log, "handshake cancelled; ");
  EXPECT_EQ(io_loop().time() - start, 30s);  // exactly, and at once
}
// guide: end

}  // namespace

int main(int argc, char** argv) {
  // timeouts-and-cancellation.md
  on_fresh_thread([] {
    check(run([] { return sum_of_squares(100'000); }) == 333'328'333'350'000, "sum_of_squares sums");
    run(nap);
  });
  on_fresh_thread([] {
    check(run(lookup_or_cached) == "cached config, then fresh config", "with_timeout leaves the lookup running");
  });
  on_fresh_thread([] {
    squall::Future<void> closing;
    run([&] { return close_politely(closing); });
    closing.set_exception(std::system_error(std::make_error_code(std::errc::connection_reset)));
    check(closing.done(), "the late failure is delivered");
  });
  on_fresh_thread([] {
    auto log = std::make_shared<std::string>();
    run([&] { return connect_with_deadline(log); });
    check(*log == "handshake cancelled; gave up after 10 ms", "timeout() cancels the handshake");
  });
  on_fresh_thread([] {
    auto open_files = std::make_shared<int>(0);
    run([&] { return upload_with_deadline(open_files); });
    check(*open_files == 0, "the cancelled upload cleans up before TimeoutError");
  });
  on_fresh_thread([] {
    auto cancelled = std::make_shared<int>(0);
    run([&] { return ask_every_replica(cancelled); });
    check(*cancelled == 2, "cancelling multi() cancels the pending replicas");
  });
  on_fresh_thread([] {
    check(run(finishing_order) == std::vector<std::size_t>{1, 2, 0}, "WaitIterator gives completion order");
    check(run([] { return total_of(squall::make_ready_future(2), squall::make_ready_future(3)); }) == 5,
          "multi() of a braced list");
    auto cancelled = std::make_shared<int>(0);
    check(run([&] { return first_answer(cancelled); }) == 2, "the faster replica answers first");
    check(*cancelled == 1, "the slower replica is cancelled by hand");
  });
  on_fresh_thread([] {
    auto finished = std::make_shared<std::atomic<bool>>(false);
    check(run([&] { return abandon_blocking_work(finished); }), "the executor's future is cancelled");
    squall::IOLoop::current().close();  // waits for the worker
    check(*finished, "the blocking call ran to its end");
  });

  // migrating-callbacks.md
  on_fresh_thread([] {
    std::string shown;
    squall::IOLoop& loop = squall::IOLoop::current();
    show_profile_with_callbacks("alice", [&](std::string s) {
      shown = std::move(s);
      loop.stop();
    });
    loop.start();
    check(shown == "shown: profile #5", "the callback version shows the profile");
    check(run([] { return show_profile_bridged("alice"); }) == shown, "the bridged version agrees");
    check(run([] { return show_profile("alice"); }) == shown, "the native version agrees");
    check(run([] { return lookup_user_within("carol", 1s); }) == 5, "a bridged call takes a deadline");
    bool timed_out = false;
    try {
      run([] { return lookup_user_within("carol", 0s); });
    } catch (const squall::TimeoutError&) {
      timed_out = true;
    }
    check(timed_out, "an expired bridged call throws TimeoutError");
  });
  on_fresh_thread([] {
    squall::IOLoop& loop = squall::IOLoop::current();
    int id = 0;
    lookup_user_compat(
        "bob", [&](int v) { id = v; loop.stop(); }, [&](std::exception_ptr) { loop.stop(); });
    loop.start();
    check(id == 3, "the compat layer calls back");
    squall::Future<std::string> reply;
    answer_into(reply, 7);
    check(run([&] { return reply; }) == "profile #7", "chain_future fills the reply");
  });
  on_fresh_thread([] {
    squall::ThreadPoolExecutor worker(1);
    std::size_t sum = run([&] { return checksum(worker, "data"); });
    check(sum == std::hash<std::string>{}("data"), "the worker's checksum comes back to the loop");
  });

  ::testing::InitGoogleTest(&argc, argv);  // leaves --smoke alone
  return RUN_ALL_TESTS();
}
