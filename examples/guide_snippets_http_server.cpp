// The snippets of docs/guide/http-server.md (beyond the two in
// guide_snippets_http.cpp), compiled and run: `--smoke` starts each server
// on a port the OS picks and talks to it with a raw socket from a thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/ssl_context.hpp"

namespace {

// --- a coroutine callback -------------------------------------------------------------

std::unique_ptr<squall::http::HTTPServer> make_coroutine_server() {
auto server = std::make_unique<squall::http::HTTPServer>(
    squall::http::HTTPServer::RequestCallback([](squall::http::HTTPServerRequest& req) -> squall::Future<void> {
      co_await squall::sleep(std::chrono::milliseconds(10));  // this request waits; others go on
      req.respond(200, "text/plain", "later");
    }));
  return server;
}

// --- a streamed answer ------------------------------------------------------------------

squall::Future<void> countdown(squall::http::HTTPServerRequest& req) {
  squall::http::HTTPHeaders headers;
  headers.add("Content-Type", "text/plain");
  co_await req.write_headers(200, headers);         // no Content-Length: chunked (HTTP/1.1)
  for (int i = 3; i > 0; --i) {
    co_await req.write(std::to_string(i) + "\n");   // resolves once the kernel has the bytes
    co_await squall::sleep(std::chrono::milliseconds(5));
  }
  req.finish();
}

// --- streaming a request body -------------------------------------------------------------

/// Counts an upload's bytes as they arrive, never holding the body; every
/// MiB it "syncs" on a worker thread, and reading pauses meanwhile.
class UploadCounter final : public squall::http::HTTPMessageDelegate, public squall::http::PooledAllocation {
 public:
  explicit UploadCounter(squall::http::HTTPConnection& conn) : conn_(conn) {}

  squall::Future<void> headers_received(const squall::http::RequestStartLine&, squall::http::HTTPHeaders&) override {
    return squall::Future<void>(nullptr);  // go on at once
  }
  squall::Future<void> data_received(std::string_view chunk) override {
    bytes_ += chunk.size();
    if (bytes_ - synced_ < 1024 * 1024) return squall::Future<void>(nullptr);
    synced_ = bytes_;
    // The connection reads no more of the body until this resolves.
    return squall::IOLoop::current().run_in_executor(nullptr, [] { /* fsync(fd) */ });
  }
  squall::Future<void> finish() override {
    std::string text = std::to_string(bytes_) + " bytes\n";
    squall::http::HTTPHeaders headers;
    headers.add("Content-Length", std::to_string(text.size()));
    conn_.write_headers(200, "", headers, text);
    conn_.finish();
    return squall::Future<void>(nullptr);
  }
  void on_connection_close() override {}  // the client left: nothing to undo

 private:
  squall::http::HTTPConnection& conn_;
  std::size_t bytes_ = 0;
  std::size_t synced_ = 0;
};

class UploadApp final : public squall::http::HTTPServerConnectionDelegate {
 public:
  std::unique_ptr<squall::http::HTTPMessageDelegate> start_request(squall::http::HTTP1ServerConnection&,
                                                                   squall::http::HTTPConnection& conn) override {
    return std::make_unique<UploadCounter>(conn);
  }
};

// --- limits and timeouts --------------------------------------------------------------------

squall::http::HTTPServerOptions limited_options() {
squall::http::HTTPServerOptions options;
options.max_body_size = 1024 * 1024 * 1024;                  // 413 above 1 GiB (streamed, so fine)
options.max_header_size = 16 * 1024;                         // 431 above 16 KiB of head
options.header_timeout = std::chrono::seconds(10);           // a whole head within 10 s (else 408, close)
options.idle_connection_timeout = std::chrono::seconds(75);  // longer than header_timeout: no effect
options.body_timeout = std::chrono::seconds(30);             // an upload stalled for 30 s is closed
  return options;
}

// --- HTTPS ------------------------------------------------------------------------------------

squall::http::HTTPServerOptions tls_options() {
squall::net::SSLOptions tls;
tls.certfile = "/etc/ssl/certs/example.com.pem";
tls.keyfile = "/etc/ssl/private/example.com.key";
squall::http::HTTPServerOptions options;
options.ssl_context = squall::net::SSLContext::server(tls);
  return options;
}

// --- smoke test ----------------------------------------------------------------------------

/// Sends `request` to 127.0.0.1:port from a thread and returns the whole
/// answer (the server closes: the requests ask it to).
std::string fetch(squall::IOLoop& loop, int port, std::string request) {
  std::string reply;
  std::thread client([&] {
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
      std::size_t at = 0;
      while (at < request.size()) {
        ssize_t n = ::write(c, request.data() + at, request.size() - at);
        if (n <= 0) break;
        at += static_cast<std::size_t>(n);
      }
      char buf[4096];
      ssize_t n;
      while ((n = ::read(c, buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(c);
    loop.add_callback([&loop] { loop.stop(); });
  });
  loop.start();
  client.join();
  return reply;
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--smoke") != 0) {
    std::fprintf(stderr, "usage: %s --smoke\n", argv[0]);
    return 2;
  }
  (void)&tls_options;  // shown in the guide; needs real certificate files
  auto& loop = squall::IOLoop::current();
  bool ok = true;
  {
    auto server = make_coroutine_server();
    int port = server->listen(0, "127.0.0.1");
    std::string reply = fetch(loop, port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ok = ok && contains(reply, "\r\n\r\nlater");
  }
  {
    squall::http::HTTPServer server{squall::http::HTTPServer::RequestCallback(countdown)};
    int port = server.listen(0, "127.0.0.1");
    std::string reply = fetch(loop, port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ok = ok && contains(reply, "Transfer-Encoding: chunked") && contains(reply, "2\r\n3\n\r\n");
  }
  {
    UploadApp app;
    squall::http::HTTPServer server(app, limited_options());
    int port = server.listen(0, "127.0.0.1");
    std::string body(3 * 1024 * 1024 + 5, 'u');
    std::string reply = fetch(loop, port,
                              "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\n\r\n" + body);
    ok = ok && contains(reply, std::to_string(body.size()) + " bytes");
  }
  std::printf("guide_snippets_http_server: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
