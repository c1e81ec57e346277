// Heap allocations per request on the server's thread: hello-world through
// Application + RequestHandler against the raw HTTPServer callback, on
// keep-alive connections (DESIGN.md: no allocation per request where a
// pool will do). A blocking client on another thread keeps its own
// allocations out of the count. Under AddressSanitizer the coroutine-frame
// and Future pools are off (so ASan sees every frame), which costs the web
// path its few frames and Futures per request; the release build counts
// the steady state.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>

#include "../support/counting_new.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/testing.hpp"
#include "squall/web/application.hpp"

namespace squall::web {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPoolsOff = true;
#else
constexpr bool kPoolsOff = false;
#endif

constexpr int kWarmup = 200;
constexpr int kMeasured = 1000;

/// Sends `count` keep-alive GETs on one connection, each after the previous
/// answer (bodies are "Hello, world"). False on any surprise.
bool run_client(int fd, int count) {
  static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  std::string buf;
  for (int i = 0; i < count; ++i) {
    if (::write(fd, request, sizeof request - 1) != static_cast<ssize_t>(sizeof request - 1)) return false;
    for (;;) {
      std::size_t head = buf.find("\r\n\r\n");
      if (head != std::string::npos && buf.size() >= head + 4 + 12) {
        if (buf.compare(0, 15, "HTTP/1.1 200 OK") != 0) return false;
        if (buf.compare(head + 4, 12, "Hello, world") != 0) return false;
        buf.erase(0, head + 4 + 12);
        break;
      }
      char chunk[4096];
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(n));
    }
  }
  return true;
}

double thread_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

struct PerRequest {
  double allocations = 0;
  double cpu_ns = 0;  // the server thread's CPU time (informative only: not asserted)
};

/// Allocations (and CPU time) per request on this (the server's) thread
/// while a client on another thread makes kMeasured requests after kWarmup.
PerRequest per_request(IOLoop& loop, int port) {
  std::atomic<bool> ok{true};
  long counted = -1;
  double cpu_start = 0, cpu_end = 0;
  std::thread client([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool good = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && run_client(fd, kWarmup);
    std::atomic<bool> started{false};
    loop.add_callback([&started, &cpu_start] {
      tls_allocations = 0;
      cpu_start = thread_cpu_ns();
      started = true;
    });
    while (!started) std::this_thread::yield();
    good = good && run_client(fd, kMeasured);
    std::atomic<bool> done{false};
    loop.add_callback([&] {
      cpu_end = thread_cpu_ns();
      counted = tls_allocations;
      tls_allocations = -1;
      done = true;
      loop.stop();
    });
    while (!done) std::this_thread::yield();
    ::close(fd);
    ok = good;
  });
  loop.start();
  client.join();
  EXPECT_TRUE(ok);
  return {static_cast<double>(counted) / kMeasured, (cpu_end - cpu_start) / kMeasured};
}

class HelloHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write("Hello, world");
    co_return;
  }
};

class AllocationsTest : public testing::AsyncTest {};

TEST_F(AllocationsTest, ApplicationAddsNoSteadyAllocationsToTheRawServer) {
  PerRequest raw;
  {
    http::HTTPServer server([](http::HTTPServerRequest& req) {
      req.respond(200, "text/html; charset=UTF-8", "Hello, world");
    });
    auto [socket, port] = testing::bind_unused_port();
    server.add_socket(std::move(socket));
    raw = per_request(io_loop(), port);
  }
  PerRequest web;
  {
    // No access lines (a benchmark turns them off too): we count the framework.
    Settings settings;
    settings.log_function = [](RequestHandler&) {};
    Application app({{"/", handler<HelloHandler>()}}, settings);
    // Not app.listen(): bind_sockets' stable_sort uses the nothrow operator
    // new, which counting_new.hpp does not replace (ASan would object).
    http::HTTPServer server(app);
    auto [socket, port] = testing::bind_unused_port();
    server.add_socket(std::move(socket));
    web = per_request(io_loop(), port);
  }
  std::printf("allocations per request: raw HTTPServer %.2f, Application %.2f (pools %s)\n", raw.allocations,
              web.allocations, kPoolsOff ? "off under ASan" : "on");
  std::printf("server CPU per request: raw HTTPServer %.2f us, Application %.2f us (ratio %.2f)\n",
              raw.cpu_ns / 1000, web.cpu_ns / 1000, raw.cpu_ns / web.cpu_ns);
  RecordProperty("raw_allocations_per_request", std::to_string(raw.allocations));
  RecordProperty("web_allocations_per_request", std::to_string(web.allocations));
  // With the pools: handlers, delegates, requests, coroutine frames,
  // Futures and response headers all come from per-thread free lists.
  // Without them (ASan): the delegate, the handler, and two coroutine frames
  // with their Futures per request.
  double slack = kPoolsOff ? 6.0 : 0.5;
  EXPECT_LE(web.allocations, raw.allocations + slack);
}

}  // namespace
}  // namespace squall::web
