// The fixture of the HTTP server tests: an HTTPServer on a loopback port the
// OS chose, answering with the test's handle() (or any delegate), torn down
// before the loop. Include from test files only.
#pragma once

#include <memory>
#include <utility>

#include "squall/core/future.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/testing.hpp"

namespace squall::http::test {

class ServerTest : public testing::AsyncTest {
 protected:
  void TearDown() override {
    server_.reset();
    AsyncTest::TearDown();
  }

  /// Serves every request with handle(), counting them in requests_.
  void start(HTTPServerOptions options = {}) {
    serve(std::make_unique<HTTPServer>(HTTPServer::RequestCallback([this](HTTPServerRequest& req) -> Future<void> {
                                         ++requests_;
                                         return handle(req);
                                       }),
                                       std::move(options)));
  }

  /// Listens on a new port (port_) with `server`.
  void serve(std::unique_ptr<HTTPServer> server) {
    server_ = std::move(server);
    auto [sock, port] = testing::bind_unused_port();
    port_ = port;
    server_->add_socket(std::move(sock));
  }

  /// The application of start(); a fixture that uses start() defines it.
  virtual Future<void> handle(HTTPServerRequest& req) {
    req.respond(404, "text/plain", "no handler");
    return Future<void>(nullptr);
  }

  std::unique_ptr<HTTPServer> server_;
  int port_ = 0;
  int requests_ = 0;
};

}  // namespace squall::http::test
