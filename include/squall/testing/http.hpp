// AsyncHTTPTest: a GoogleTest fixture that serves an application over a real
// loopback socket and fetches from it with the native AsyncHTTPClient
// (Tornado's AsyncHTTPTestCase). Runs on the test's thread, on the fixture's
// loop; link squall::testing.
//
//   class HelloTest : public squall::testing::AsyncHTTPTest {
//    protected:
//     std::unique_ptr<squall::http::HTTPServerConnectionDelegate> get_app() override {
//       return std::make_unique<squall::web::Application>(std::vector<squall::web::Rule>{
//           {"/", squall::web::handler<MainHandler>()}});
//     }
//   };
//   SQUALL_ASYNC_TEST(HelloTest, SaysHello) {
//     auto response = co_await fetch("/");
//     EXPECT_EQ(response.body, "Hello, world");
//   }
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "squall/core/future.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/testing.hpp"

namespace squall::testing {

/// See the top of this file. SetUp() calls get_app() and starts an
/// HTTPServer for it on 127.0.0.1 at a port the OS picks; TearDown()
/// closes the server, its connections and the client. The squall.access
/// logger is silenced during the test (as Tornado's test runner does), so
/// 4xx/5xx answers a test provokes on purpose do not fail it; errors on the
/// other loggers still do. A test that checks access lines calls
/// enable_access_log().
class AsyncHTTPTest : public AsyncTest {
 protected:
  AsyncHTTPTest();
  ~AsyncHTTPTest() override;
  void SetUp() override;
  void TearDown() override;

  /// The application to serve: a web::Application, or any delegate.
  virtual std::unique_ptr<http::HTTPServerConnectionDelegate> get_app() = 0;
  /// Options of the test's HTTPServer (Tornado's get_httpserver_options).
  virtual http::HTTPServerOptions get_httpserver_options();
  /// Options of the test's client (native backend).
  virtual http::HTTPClientOptions get_http_client_options();

  /// GETs `path` (a path on the test server, or a full URL). Like
  /// Tornado's fetch, errors are not raised: a 404 is a response, not an
  /// exception.
  Future<http::HTTPResponse> fetch(std::string_view path);
  /// Fetches `path` with `request`'s method, headers, body and options (its
  /// url is replaced). Name the request in a variable before
  /// `co_await fetch(...)` rather than building it inside the expression
  /// (GCC 12 mishandles such temporaries in co_await expressions).
  Future<http::HTTPResponse> fetch(std::string_view path, const http::HTTPRequest& request, bool raise_error = false);
  /// fetch() for plain (non-coroutine) test bodies: runs the loop until the
  /// response is in, under async_test_timeout().
  http::HTTPResponse fetch_sync(std::string_view path);
  http::HTTPResponse fetch_sync(std::string_view path, const http::HTTPRequest& request, bool raise_error = false);

  /// "http://127.0.0.1:<port><path>".
  std::string get_url(std::string_view path) const;
  int get_http_port() const noexcept { return port_; }
  http::HTTPServer& http_server() noexcept { return *server_; }
  http::AsyncHTTPClient& http_client() noexcept { return *client_; }
  /// What get_app() returned.
  http::HTTPServerConnectionDelegate& app() noexcept { return *app_; }

  /// Lets the squall.access logger through again (at info) for this test.
  void enable_access_log();

 private:
  std::unique_ptr<http::HTTPServerConnectionDelegate> app_;
  std::unique_ptr<http::HTTPServer> server_;
  std::unique_ptr<http::AsyncHTTPClient> client_;
  int port_ = 0;
  int saved_access_level_ = -1;
};

}  // namespace squall::testing
