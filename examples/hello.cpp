// hello: the TechEmpower-style plaintext and JSON endpoints on the HTTP
// layer directly (an HTTPServerConnectionDelegate, no request object), the
// fastest way to answer with squall.
//
//   hello --port 8080 [--threads 4]     serve until killed
//   hello --smoke                       serve on a free port, fetch once, exit
//
//   GET /plaintext → "Hello, World!"               (text/plain)
//   GET /json      → {"message":"Hello, World!"}   (application/json)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "squall/core/ioloop.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/loop_thread_group.hpp"
#include "squall/net/tcpclient.hpp"

using namespace squall;
using namespace squall::http;

namespace {

constexpr std::string_view kPlain = "Hello, World!";
constexpr std::string_view kJson = R"({"message":"Hello, World!"})";

/// One request: remembers the route from the head, answers at finish().
/// Nothing is copied from the request, the response headers live in one
/// per-thread HTTPHeaders reused for every response, and the object itself
/// comes from a per-thread pool (PooledAllocation): no malloc per request.
class Hello final : public HTTPMessageDelegate, public PooledAllocation {
 public:
  explicit Hello(HTTPConnection& conn) : conn_(conn) {}

  Future<void> headers_received(const RequestStartLine& line, HTTPHeaders&) override {
    if (line.method == "GET" || line.method == "HEAD") {
      if (line.target == "/plaintext") route_ = Route::kPlain;
      else if (line.target == "/json") route_ = Route::kJson;
    }
    return Future<void>(nullptr);
  }
  Future<void> data_received(std::string_view) override { return Future<void>(nullptr); }
  Future<void> finish() override {
    thread_local HTTPHeaders headers;
    headers.clear();
    std::string_view body = R"({"status": 404, "reason": "Not Found"})";
    int code = 404;
    if (route_ == Route::kPlain) {
      code = 200;
      body = kPlain;
      headers.add_unchecked("Content-Type", "text/plain");
    } else {
      if (route_ == Route::kJson) {
        code = 200;
        body = kJson;
      }
      headers.add_unchecked("Content-Type", "application/json");
    }
    char length[16];
    int n = std::snprintf(length, sizeof length, "%zu", body.size());
    headers.add_unchecked("Content-Length", std::string_view(length, static_cast<std::size_t>(n)));
    conn_.write_headers(code, {}, headers, body);  // head and body: one write
    conn_.finish();
    return Future<void>(nullptr);
  }
  void on_connection_close() override {}

 private:
  enum class Route { kNone, kPlain, kJson };
  HTTPConnection& conn_;
  Route route_ = Route::kNone;
};

class HelloApp final : public HTTPServerConnectionDelegate {
 public:
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection&, HTTPConnection& conn) override {
    return std::make_unique<Hello>(conn);
  }
};

/// --smoke: one request over a real socket, checked.
Future<bool> fetch_once(int port) {
  net::TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  co_await stream->write("GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  std::string response = co_await stream->read_until_close();
  bool ok = response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 &&
            response.size() >= kPlain.size() &&
            response.compare(response.size() - kPlain.size(), kPlain.size(), kPlain) == 0;
  std::printf("%s", response.c_str());
  co_return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 8080;
  int threads = 1;
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--smoke") smoke = true;
    else {
      std::fprintf(stderr, "usage: %s [--port N] [--threads T] [--smoke]\n", argv[0]);
      return 2;
    }
  }

  if (smoke) {
    IOLoop loop;
    loop.make_current();
    HelloApp app;
    HTTPServer server(app);
    int bound = server.listen(0, "127.0.0.1");
    bool ok = loop.run_sync([&] { return fetch_once(bound); }, std::chrono::seconds(10));
    return ok ? 0 : 1;
  }

  if (threads > 1) {
    // One loop per thread, each with its own SO_REUSEPORT listener.
    net::LoopThreadGroup group({.threads = static_cast<std::size_t>(threads), .name = "hello"});
    static HelloApp app;  // stateless: shared by every loop
    int bound = group.serve([](IOLoop&, std::size_t) -> std::unique_ptr<net::TCPServer> {
      return std::make_unique<HTTPServer>(app);
    }, port);
    std::printf("hello: %d threads on port %d\n", threads, bound);
    std::fflush(stdout);
    for (;;) ::pause();
  }

  IOLoop loop;
  loop.make_current();
  HelloApp app;
  HTTPServer server(app);
  int bound = server.listen(port);
  std::printf("hello: port %d\n", bound);
  std::fflush(stdout);
  loop.start();
}
