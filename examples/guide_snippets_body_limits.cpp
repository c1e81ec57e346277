// Per-request body limits, the snippets of docs/guide/http-server.md
// ("Limits and timeouts") and docs/guide/web-handlers-and-routing.md
// ("Streaming request bodies"), compiled. `--smoke` serves both with a
// server max_body_size of 1000 bytes and checks, with the native
// AsyncHTTPClient, that the raised limit lets a larger body in while the
// server's limit still holds elsewhere.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "squall/core/ioloop.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/http/server_request.hpp"
#include "squall/core/log.hpp"
#include "squall/web/application.hpp"
#include "squall/web/request_handler.hpp"
#include "squall/web/routing.hpp"

using namespace std::chrono_literals;

namespace {

// --- http-server.md: a delegate that lifts the limits for one path --------------------

class UploadLimits final : public squall::http::HTTPMessageDelegate {
 public:
  explicit UploadLimits(squall::http::HTTPConnection& conn) : conn_(conn) {}

squall::Future<void> headers_received(const squall::http::RequestStartLine& start_line,
                                      squall::http::HTTPHeaders&) override {
  if (start_line.target == "/upload") {
    conn_.set_max_body_size(std::uint64_t{1} << 30);  // this request only
    conn_.set_body_timeout(std::chrono::minutes(5));
  }
  return squall::Future<void>(nullptr);
}

  squall::Future<void> data_received(std::string_view chunk) override {
    bytes_ += chunk.size();
    return squall::Future<void>(nullptr);
  }
  squall::Future<void> finish() override {
    std::string text = std::to_string(bytes_) + " bytes";
    squall::http::HTTPHeaders headers;
    headers.add("Content-Length", std::to_string(text.size()));
    conn_.write_headers(200, "", headers, text);
    conn_.finish();
    return squall::Future<void>(nullptr);
  }
  void on_connection_close() override {}

 private:
  squall::http::HTTPConnection& conn_;
  std::size_t bytes_ = 0;
};

class UploadLimitsApp final : public squall::http::HTTPServerConnectionDelegate {
 public:
  std::unique_ptr<squall::http::HTTPMessageDelegate> start_request(squall::http::HTTP1ServerConnection&,
                                                                   squall::http::HTTPConnection& conn) override {
    return std::make_unique<UploadLimits>(conn);
  }
};

// --- web-handlers-and-routing.md: a streaming handler that raises its limit ------------

class BigUploadHandler : public squall::web::RequestHandler {
 public:
  static constexpr bool stream_request_body = true;

  void check_xsrf_cookie() override {}
  squall::Future<void> prepare() override {
    // Runs before the body is read: this upload may be up to 1 GiB.
    request().connection()->set_max_body_size(std::uint64_t{1} << 30);
    co_return;
  }
  squall::Future<void> data_received(std::string_view chunk) override {
    bytes_ += chunk.size();
    co_return;
  }
  squall::Future<void> put() override {
    write(std::to_string(bytes_) + " bytes");
    co_return;
  }

 private:
  std::size_t bytes_ = 0;
};

/// Does not stream: the body is read (under the server's limit) before
/// prepare() runs.
class SmallFormHandler : public squall::web::RequestHandler {
 public:
  void check_xsrf_cookie() override {}
  squall::Future<void> put() override {
    write(std::to_string(request().body.size()) + " bytes");
    co_return;
  }
};

// --- --smoke ----------------------------------------------------------------------------

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

squall::Future<void> smoke(int http_port, int web_port) {
  auto client = squall::http::AsyncHTTPClient::create(squall::http::HTTPClientBackend::native);
  auto put = [&](int port, std::string path, std::size_t size) {
    squall::http::HTTPRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(port) + path;
    r.method = "PUT";
    r.body = std::string(size, 'u');
    return client->fetch(std::move(r), false);
  };
  squall::http::HTTPResponse r = co_await put(http_port, "/upload", 5000);
  check(r.code == 200 && r.body == "5000 bytes", "delegate raised the limit");
  r = co_await put(http_port, "/other", 5000);
  check(r.code == 413, "server limit elsewhere");
  r = co_await put(web_port, "/big", 5000);
  check(r.code == 200 && r.body == "5000 bytes", "prepare raised the limit");
  r = co_await put(web_port, "/small", 5000);
  check(r.code == 413, "server limit for a handler that does not stream");
  client->close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--smoke") != 0) {
    std::fprintf(stderr, "usage: %s --smoke\n", argv[0]);
    return 2;
  }
  squall::log::enable_pretty_logging({.level = squall::log::Level::error});
  {
    squall::http::HTTPServerOptions options;
    options.max_body_size = 1000;
    UploadLimitsApp delegate;
    squall::http::HTTPServer http_server(delegate, options);
    int http_port = http_server.listen(0, "127.0.0.1");
    squall::web::Application app({{"/big", squall::web::handler<BigUploadHandler>()},
                                  {"/small", squall::web::handler<SmallFormHandler>()}});
    int web_port = app.listen(0, "127.0.0.1", options).ports().at(0);
    auto& loop = squall::IOLoop::current();
    loop.run_sync([http_port, web_port] { return smoke(http_port, web_port); }, 30s);
    loop.run_sync([&] { return http_server.close_all_connections(); }, 5s);
    loop.run_sync([&app] { return app.servers()[0]->close_all_connections(); }, 5s);
  }
  return failures ? 1 : 0;
}
