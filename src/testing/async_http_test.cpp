#include <spdlog/spdlog.h>

#include <stdexcept>

#include "squall/core/log.hpp"
#include "squall/testing/http.hpp"

namespace squall::testing {

AsyncHTTPTest::AsyncHTTPTest() = default;
AsyncHTTPTest::~AsyncHTTPTest() = default;

http::HTTPServerOptions AsyncHTTPTest::get_httpserver_options() { return {}; }
http::HTTPClientOptions AsyncHTTPTest::get_http_client_options() { return {}; }

void AsyncHTTPTest::SetUp() {
  AsyncTest::SetUp();
  // Tornado's runtests.py does the same: provoked 404s are not failures.
  spdlog::logger& access = log::access();
  saved_access_level_ = static_cast<int>(access.level());
  access.set_level(spdlog::level::critical);
  app_ = get_app();
  if (!app_) throw std::logic_error("get_app() returned null");
  server_ = std::make_unique<http::HTTPServer>(*app_, get_httpserver_options());
  auto [socket, port] = bind_unused_port();
  port_ = port;
  server_->add_socket(std::move(socket));
  client_ = http::AsyncHTTPClient::create(http::HTTPClientBackend::native, get_http_client_options());
}

void AsyncHTTPTest::TearDown() {
  if (server_) {
    server_->stop();
    try {
      io_loop().run_sync([this] { return server_->close_all_connections(); }, async_test_timeout());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "closing the test server's connections: " << e.what();
    }
  }
  if (client_) client_->close();
  client_.reset();
  server_.reset();
  app_.reset();
  if (saved_access_level_ >= 0) {
    log::access().set_level(static_cast<spdlog::level::level_enum>(saved_access_level_));
    saved_access_level_ = -1;
  }
  AsyncTest::TearDown();
}

void AsyncHTTPTest::enable_access_log() { log::access().set_level(spdlog::level::info); }

std::string AsyncHTTPTest::get_url(std::string_view path) const {
  if (path.starts_with("http://") || path.starts_with("https://")) return std::string(path);
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

Future<http::HTTPResponse> AsyncHTTPTest::fetch(std::string_view path) {
  http::HTTPRequest request = client_->request(get_url(path));
  return client_->fetch(std::move(request), false);
}

Future<http::HTTPResponse> AsyncHTTPTest::fetch(std::string_view path, const http::HTTPRequest& request,
                                                bool raise_error) {
  http::HTTPRequest copy = request;
  copy.url = get_url(path);
  return client_->fetch(std::move(copy), raise_error);
}

http::HTTPResponse AsyncHTTPTest::fetch_sync(std::string_view path) {
  return io_loop().run_sync([&] { return fetch(path); }, async_test_timeout());
}

http::HTTPResponse AsyncHTTPTest::fetch_sync(std::string_view path, const http::HTTPRequest& request,
                                             bool raise_error) {
  return io_loop().run_sync([&] { return fetch(path, request, raise_error); }, async_test_timeout());
}

}  // namespace squall::testing
