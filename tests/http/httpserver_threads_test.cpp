// HTTPServer on several loops at once (a LoopThreadGroup, each loop with its
// own SO_REUSEPORT listener, as examples/hello --threads does): the
// per-thread pools behind the hot path (request objects, per-request state,
// header and output buffers, delegates' memory) must stay per thread. Runs
// under ThreadSanitizer too (the `threads` label).
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "server_test_client.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/loop_thread_group.hpp"
#include "squall/testing.hpp"

namespace squall::http {
namespace {

/// A blocking client: `count` keep-alive requests on one connection, then
/// a pipelined batch; returns how many answers were right.
int run_client(int port, int count) {
  UniqueFd fd = test::connect_fd(port);
  int right = 0;
  auto read_answers = [&](int n) {
    std::string buf;
    int seen = 0;
    while (seen < n) {
      char chunk[8192];
      ssize_t got = ::recv(fd.get(), chunk, sizeof chunk, 0);
      if (got <= 0) return;
      buf.append(chunk, static_cast<std::size_t>(got));
      std::size_t at;
      while ((at = buf.find("from loop ")) != std::string::npos && buf.size() >= at + 11) {
        ++seen;
        ++right;
        buf.erase(0, at + 11);
      }
    }
  };
  const std::string request = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < count; ++i) {
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) return right;
    read_answers(1);
  }
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += request;
  if (::send(fd.get(), batch.data(), batch.size(), MSG_NOSIGNAL) < 0) return right;
  read_answers(10);
  return right;
}

TEST(HTTPServerThreadsTest, ServesFromSeveralLoopsAtOnce) {
  net::LoopThreadGroup group({.threads = 2, .name = "http-test"});
  std::atomic<int> served[2] = {0, 0};
  int port = group.serve(
      [&served](IOLoop&, std::size_t index) -> std::unique_ptr<net::TCPServer> {
        return std::make_unique<HTTPServer>([&served, index](HTTPServerRequest& req) {
          served[index].fetch_add(1);
          req.respond(200, "text/plain", "from loop " + std::to_string(index));
        });
      },
      0);
  constexpr int kClients = 8, kRequests = 50;
  std::vector<std::thread> clients;
  std::atomic<int> right{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] { right.fetch_add(run_client(port, kRequests)); });
  }
  for (auto& t : clients) t.join();
  group.stop();
  EXPECT_EQ(right.load(), kClients * (kRequests + 10));
  EXPECT_EQ(served[0].load() + served[1].load(), kClients * (kRequests + 10));
}

}  // namespace
}  // namespace squall::http
