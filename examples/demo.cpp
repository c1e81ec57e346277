// What `make demo` runs: one thread, one IOLoop, and several things happening
// at once on it — coroutines sleeping on timers, a heartbeat from a
// PeriodicCallback, one-shot and cancelled timers, and a blocking call sent
// to a thread pool with run_in_executor while the loop stays responsive.
// Each event is printed with the loop time at which it happened.
//
// Runs about 3 seconds and exits by itself; `--smoke` runs the same story
// ten times faster (what the example_demo test runs).
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include "squall/squall.hpp"

using namespace std::chrono_literals;

namespace {

struct Settings {
  double scale = 1.0;  // multiplies every delay
};

squall::TimePoint g_start;

/// Prints `text` prefixed with the seconds since the demo started.
void say(const std::string& who, const std::string& text) {
  double t = std::chrono::duration<double>(squall::IOLoop::current().time() - g_start).count();
  std::printf("[%6.3f s] %-10s %s\n", t, who.c_str(), text.c_str());
  std::fflush(stdout);
}

squall::Duration scaled(const Settings& s, squall::Duration d) {
  return std::chrono::duration_cast<squall::Duration>(d * s.scale);
}

/// Stands in for a blocking library call (a synchronous database driver, a
/// big file read): it would freeze the loop if it ran on the loop's thread.
std::string blocking_query(squall::Duration how_long) {
  std::this_thread::sleep_for(how_long);
  return "42 rows";
}

/// A coroutine doing its work in steps, sleeping between them. Several of
/// these interleave on the one loop thread.
squall::Future<void> worker(std::string name, int steps, squall::Duration pause) {
  say(name, "started: " + std::to_string(steps) + " steps");
  for (int i = 1; i <= steps; ++i) {
    co_await squall::sleep(pause);
    say(name, "step " + std::to_string(i) + " of " + std::to_string(steps));
  }
  say(name, "finished");
}

/// Sends the blocking call to the loop's default thread pool; the coroutine
/// waits for its result without blocking the loop.
squall::Future<void> query(squall::Duration how_long) {
  say("executor", "a blocking query goes to a worker thread");
  squall::TimePoint began = squall::IOLoop::current().time();
  std::string rows =
      co_await squall::IOLoop::current().run_in_executor(nullptr, [how_long] { return blocking_query(how_long); });
  double took = std::chrono::duration<double>(squall::IOLoop::current().time() - began).count();
  char text[96];
  std::snprintf(text, sizeof text, "the query returned %s after %.3f s; the loop never waited", rows.c_str(), took);
  say("executor", text);
}

squall::Future<void> demo(Settings s) {
  squall::IOLoop& loop = squall::IOLoop::current();
  g_start = loop.time();
  say("main", "one thread, one IOLoop; everything below interleaves on it");

  int beats = 0;
  squall::PeriodicCallback heartbeat([&beats] { say("heartbeat", "beat " + std::to_string(++beats)); },
                                     scaled(s, 500ms));
  heartbeat.start();

  loop.call_later(scaled(s, 1200ms), [] { say("timer", "a one-shot timer fired"); });
  squall::TimeoutHandle dropped = loop.call_later(scaled(s, 2s), [] { say("timer", "never printed"); });
  loop.call_later(scaled(s, 1s), [&loop, dropped] {
    loop.remove_timeout(dropped);
    say("timer", "removed a pending timer: it will never fire");
  });

  // Started together, they run concurrently; awaiting them one after the
  // other just collects them.
  squall::Future<void> a = worker("worker A", 3, scaled(s, 700ms));
  squall::Future<void> b = worker("worker B", 5, scaled(s, 450ms));
  squall::Future<void> job = query(scaled(s, 1500ms));
  co_await std::move(a);
  co_await std::move(b);
  co_await std::move(job);

  co_await squall::sleep(scaled(s, 600ms));
  heartbeat.stop();
  say("main", "done: " + std::to_string(beats) + " heartbeats while the rest ran");
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  if (argc > 1 && std::string_view(argv[1]) == "--smoke") {
    settings.scale = 0.1;
  }
  squall::IOLoop::current().run_sync([&] { return demo(settings); });
  return 0;
}
