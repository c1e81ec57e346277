// The code shown in docs/guide/event-loop.md and
// docs/guide/futures-and-coroutines.md, compiled and run, so the guide cannot
// drift from the library: each block between "// guide:" markers appears
// verbatim in a chapter. main() runs every block and checks what the chapter
// says it does; the testing section's examples run as GoogleTest tests.
// Every block takes milliseconds, so `--smoke` (what CTest runs) and a plain
// run are the same program.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "squall/squall.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace {

/// Fails the program, and so the example_guide_snippets_core test, when the
/// guide says something the code does not do.
void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_core: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

/// Runs `fn` on a new thread. A new thread has no IOLoop yet, so each section
/// starts from a fresh loop, as a reader's program would.
template <class F>
void on_fresh_thread(F fn) {
  std::thread thread(std::move(fn));
  thread.join();
}

// =========================================================================
// event-loop.md
// =========================================================================

// guide: current
void run_for_a_moment() {
  squall::IOLoop& loop = squall::IOLoop::current();  // this thread's loop, made on first use
  loop.add_callback([] { std::puts("a callback, on the next iteration"); });
  loop.call_later(20ms, [&loop] { loop.stop(); });
  loop.start();  // runs until stop(), then returns after that iteration
}
// guide: end

// guide: own-loop
int count_ticks() {
  squall::IOLoop loop;  // becomes this thread's current loop if it has none
  int ticks = 0;
  loop.call_later(10ms, [&] { ++ticks; });
  loop.call_later(20ms, [&] { ++ticks; loop.stop(); });
  loop.start();
  loop.close();  // releases the epoll fd now; the destructor would do it too
  return ticks;  // 2
}
// guide: end

// guide: run-sync
squall::Future<int> answer() { co_return 42; }

void run_sync_examples() {
  squall::IOLoop& loop = squall::IOLoop::current();
  int a = loop.run_sync(answer);                   // a coroutine: 42
  int b = loop.run_sync([] { return 6 * 7; });     // a plain value works too
  squall::Future<void> never;                      // nobody will resolve it
  try {
    loop.run_sync([&] { return never; }, 10ms);
  } catch (const squall::TimeoutError& e) {
    std::printf("%d %d, then: %s\n", a, b, e.what());  // `never` is now cancelled
  }
}
// guide: end

// guide: threads
int answer_from_a_thread() {
  squall::IOLoop& loop = squall::IOLoop::current();
  int answer = 0;
  std::thread worker([&loop, &answer] {
    int computed = 6 * 7;  // work done off the loop
    // add_callback is the one IOLoop method other threads may call.
    loop.add_callback([&loop, &answer, computed] {
      answer = computed;  // back on the loop's thread
      loop.stop();
    });
  });
  loop.start();
  worker.join();
  return answer;
}
// guide: end

// guide: timers
std::vector<std::string> timers() {
  squall::IOLoop& loop = squall::IOLoop::current();
  std::vector<std::string> fired;
  squall::TimePoint start = loop.time();
  loop.call_later(20ms, [&] { fired.push_back("after 20 ms"); });
  loop.call_at(start + 10ms, [&] { fired.push_back("at start + 10 ms"); });
  squall::TimeoutHandle dropped = loop.call_later(15ms, [&] { fired.push_back("never"); });
  loop.remove_timeout(dropped);
  loop.call_later(30ms, [&] { loop.stop(); });
  loop.start();
  return fired;  // {"at start + 10 ms", "after 20 ms"}
}
// guide: end

// guide: fd-handler
/// Resolves with the first bytes that arrive on `fd` (a non-blocking pipe).
squall::Future<std::string> read_once(int fd) {
  squall::IOLoop& loop = squall::IOLoop::current();
  squall::Future<std::string> text;
  loop.add_handler(fd, squall::IOLoop::READ, [&loop, text](int ready_fd, std::uint32_t) mutable {
    char buf[256];
    ssize_t n = ::read(ready_fd, buf, sizeof buf);
    loop.remove_handler(ready_fd);  // allowed here: the loop frees this lambda after dispatch
    text.set_result(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
  });
  return text;
}

std::string ping_through_a_pipe() {
  int ends[2];
  if (::pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  squall::UniqueFd reader(ends[0]), writer(ends[1]);
  squall::IOLoop& loop = squall::IOLoop::current();
  loop.call_later(5ms, [&] { (void)::write(writer.get(), "ping", 4); });
  return loop.run_sync([&] { return read_once(reader.get()); });  // "ping"
}
// guide: end

// guide: signals
bool stop_on_a_signal() {
  squall::IOLoop& loop = squall::IOLoop::current();
  bool got_it = false;
  loop.add_signal_handler(SIGUSR1, [&](int) {  // blocks SIGUSR1 in this thread
    got_it = true;
    loop.stop();
  });
  loop.add_callback([] { ::raise(SIGUSR1); });  // arrives through the loop's signalfd
  loop.start();
  loop.remove_signal_handler(SIGUSR1);
  return got_it;
}
// guide: end

// guide: iteration-order
std::vector<std::string> iteration_order() {
  squall::IOLoop& loop = squall::IOLoop::current();
  std::vector<std::string> order;
  loop.add_callback([&] {
    order.push_back("first");
    loop.add_callback([&] { order.push_back("added while running: next iteration"); });
  });
  loop.add_callback([&] { order.push_back("second"); });
  loop.call_later(10ms, [&] { loop.stop(); });
  loop.start();
  return order;  // {"first", "second", "added while running: next iteration"}
}
// guide: end

// guide: virtual-clock
squall::Duration an_hour_in_no_time() {
  auto clock = std::make_shared<squall::VirtualClock>();
  squall::IOLoop loop({.clock = clock});  // current: this thread had no loop
  squall::TimePoint start = loop.time();
  loop.run_sync([&]() -> squall::Future<void> {
    squall::Future<void> alarm;
    loop.call_later(1h, [alarm]() mutable { alarm.set_result(); });
    co_await std::move(alarm);  // idle: the clock jumps to the timer
  });
  return loop.time() - start;  // exactly 1h, in microseconds of real time
}
// guide: end

// guide: executor
squall::Future<long> sum_on_a_worker() {
  long total = co_await squall::IOLoop::current().run_in_executor(nullptr, [] {
    long sum = 0;  // runs on the loop's default thread pool
    for (long i = 1; i <= 1'000'000; ++i) sum += i;
    return sum;
  });
  co_return total;  // back on the loop's thread
}
// guide: end

// =========================================================================
// futures-and-coroutines.md
// =========================================================================

// guide: future-basics
void future_basics() {
  squall::Future<int> f;  // a new pending future
  f.add_done_callback([](squall::Future<int> done) { std::printf("resolved: %d\n", done.result()); });
  f.set_result(7);  // runs the callback now: "resolved: 7"
  f.add_done_callback([] { std::puts("added after: runs at once"); });
  int v = f.result();  // 7; result() of a pending future throws InvalidStateError
  squall::Future<void> failed;
  failed.set_exception(std::runtime_error("disk full"));
  std::exception_ptr e = failed.exception();  // the error, now "retrieved"
  std::printf("%d, %s\n", v, e ? "failed" : "ok");
}
// guide: end

// guide: eager
squall::Future<int> twice(squall::Future<int> input) {
  std::puts("twice: started");  // runs inside the call, before it returns
  int v = co_await input;       // suspends: input is pending
  co_return 2 * v;
}

int eager_start() {
  squall::Future<int> input;
  squall::Future<int> doubled = twice(input);  // prints "twice: started"
  // doubled.done() is false: twice waits for input
  input.set_result(21);  // resumes twice right here, inside set_result
  return doubled.result();  // 42
}
// guide: end

// guide: ready
squall::Future<int> no_suspension() {
  int v = co_await squall::make_ready_future(5);  // done: continues at once
  co_return v + 1;
}
// no_suspension().done() is true as soon as the call returns.
// guide: end

// guide: exceptions
squall::Future<int> parse(std::string text) {
  if (text.empty()) throw std::invalid_argument("empty input");
  co_return std::stoi(text);
}

squall::Future<int> parse_or_zero(std::string text) {
  try {
    co_return co_await parse(std::move(text));
  } catch (const std::invalid_argument&) {
    co_return 0;
  }
}
// parse("") does not throw: it returns a failed future. parse_or_zero("")
// catches the error at its co_await and resolves with 0.
// guide: end

// guide: unretrieved
void lose_an_exception() {
  squall::Future<int> f;
  f.set_exception(std::runtime_error("nobody reads this"));
}  // logs "Future exception was never retrieved: nobody reads this"
// guide: end

// guide: cancel
squall::Future<void> worker(squall::Future<void> job, std::shared_ptr<bool> cleaned_up) {
  try {
    co_await job;
  } catch (const squall::CancelledError&) {
    *cleaned_up = true;
    throw;  // swallowing it would un-cancel the coroutine
  }
}

void cancel_a_coroutine() {
  squall::Future<void> job;
  auto cleaned_up = std::make_shared<bool>(false);
  squall::Future<void> w = worker(job, cleaned_up);
  w.cancel();  // cancels `job` too; CancelledError is thrown at worker's co_await
  // w.cancelled(), job.cancelled() and *cleaned_up are all true
}
// guide: end

// guide: stack
squall::Future<int> count_down(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await count_down(n - 1);
}
// Safe at any depth, given a loop to hand work to:
//   int depth = squall::IOLoop::current().run_sync([] { return count_down(1'000'000); });
// guide: end

// guide: abandoned
squall::Future<void> nap(squall::IOLoop& loop, std::shared_ptr<int> resource) {
  squall::Future<void> alarm;
  loop.call_later(1h, [alarm]() mutable { alarm.set_result(); });
  co_await std::move(alarm);  // from here the timer holds the only reference
  ++*resource;                // never reached
}

long abandon_a_coroutine() {
  auto resource = std::make_shared<int>(0);
  squall::IOLoop loop;
  squall::Future<void> napping = nap(loop, resource);  // the frame holds a copy: use_count 2
  loop.close();  // drops the timer, so alarm's last reference, so nap's frame
  return resource.use_count();  // 1: the frame and its locals were destroyed
}  // napping stays pending forever: nothing can complete it now
// guide: end

// guide: lvalue-rvalue
squall::Future<std::string> fetch_name() { co_return "squall"; }
squall::Future<std::unique_ptr<int>> make_box() { co_return std::make_unique<int>(7); }

squall::Future<void> lvalues_and_rvalues() {
  squall::Future<std::string> name = fetch_name();
  std::string& ref = co_await name;            // lvalue: a reference into name's state
  std::string copy = co_await fetch_name();    // rvalue: the result is moved out
  std::unique_ptr<int> box = co_await make_box();  // move-only results need an rvalue
  squall::Future<std::unique_ptr<int>> later = make_box();
  std::unique_ptr<int> other = co_await std::move(later);
  std::printf("%s %s %d %d\n", ref.c_str(), copy.c_str(), *box, *other);
}
// guide: end

// guide: lambda
auto greet = [](std::string who) -> squall::Future<std::string> {
  co_await squall::make_ready_future();
  co_return "hello, " + who;  // `who` is a parameter: it lives in the frame
};
// guide: end

// =========================================================================
// The testing section, as GoogleTest tests.
// =========================================================================

// guide: async-test
class TimerTest : public squall::testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }  // hours take no time
  // The test's own deadline is a timer on the same clock: leave room.
  squall::Duration async_test_timeout() const override { return 2h; }
};

SQUALL_ASYNC_TEST(TimerTest, AnHourLongTimerFiresWithoutWaiting) {
  squall::Future<void> alarm;
  squall::TimePoint start = io_loop().time();
  io_loop().call_later(1h, [alarm]() mutable { alarm.set_result(); });
  co_await std::move(alarm);
  CO_ASSERT_TRUE(io_loop().time() - start == 1h);
}

TEST_F(TimerTest, ALostExceptionIsLogged) {
  squall::testing::ExpectLog expected("squall.application", "never retrieved: nobody reads this");
  lose_an_exception();
}
// guide: end

}  // namespace

int main(int argc, char** argv) {
  on_fresh_thread(run_for_a_moment);
  on_fresh_thread([] { check(count_ticks() == 2, "count_ticks() returns 2"); });
  on_fresh_thread(run_sync_examples);
  on_fresh_thread([] { check(answer_from_a_thread() == 42, "the worker's answer arrives"); });
  on_fresh_thread([] {
    check(timers() == std::vector<std::string>{"at start + 10 ms", "after 20 ms"}, "timers fire in deadline order");
  });
  on_fresh_thread([] { check(ping_through_a_pipe() == "ping", "read_once reads the pipe"); });
  on_fresh_thread([] { check(stop_on_a_signal(), "the signal handler runs"); });
  on_fresh_thread([] {
    check(iteration_order() == std::vector<std::string>{"first", "second", "added while running: next iteration"},
          "callbacks added while callbacks run wait for the next iteration");
  });
  on_fresh_thread([] { check(an_hour_in_no_time() == 1h, "the virtual clock jumps exactly to the timer"); });
  on_fresh_thread([] {
    long sum = squall::IOLoop::current().run_sync(sum_on_a_worker);
    check(sum == 500'000'500'000, "the executor computes the sum");
  });

  on_fresh_thread(future_basics);
  on_fresh_thread([] { check(eager_start() == 42, "twice doubles its input"); });
  on_fresh_thread([] {
    auto f = no_suspension();
    check(f.done() && f.result() == 6, "awaiting a ready future does not suspend");
  });
  on_fresh_thread([] {
    auto failed = parse("");
    check(failed.done() && failed.exception() != nullptr, "parse(\"\") returns a failed future");
    auto zero = parse_or_zero("");
    check(zero.done() && zero.result() == 0, "parse_or_zero catches the error");
    check(parse_or_zero("12").result() == 12, "parse_or_zero parses");
  });
  on_fresh_thread([] {
    squall::Future<void> job;
    auto cleaned_up = std::make_shared<bool>(false);
    squall::Future<void> w = worker(job, cleaned_up);
    w.cancel();
    check(w.cancelled() && job.cancelled() && *cleaned_up, "cancel() reaches the awaited future");
    cancel_a_coroutine();
  });
  on_fresh_thread([] {
    int depth = squall::IOLoop::current().run_sync([] { return count_down(1'000'000); });
    check(depth == 1'000'000, "a million-deep chain completes");
  });
  on_fresh_thread([] { check(abandon_a_coroutine() == 1, "an abandoned frame is freed"); });
  on_fresh_thread([] { squall::IOLoop::current().run_sync(lvalues_and_rvalues); });
  on_fresh_thread([] {
    auto f = greet("world");
    check(f.result() == "hello, world", "the lambda coroutine greets");
  });

  ::testing::InitGoogleTest(&argc, argv);  // leaves --smoke alone
  return RUN_ALL_TESTS();
}
