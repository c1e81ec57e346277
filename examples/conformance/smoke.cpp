// --smoke: starts the app on a free port in this process and checks a few
// endpoints of each part over real sockets, with squall's own client. The
// full contract is checked by tests/apps/conformance_test.cpp.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "conformance.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/websocket/client.hpp"

namespace conformance {
namespace {

using squall::http::AsyncHTTPClient;
using squall::http::HTTPRequest;
using squall::http::HTTPResponse;

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "smoke: FAILED: %s\n", what);
    ++failures;
  }
}

squall::Future<void> smoke_checks(std::string base) {
  AsyncHTTPClient& client = AsyncHTTPClient::instance();

  HTTPResponse hello = co_await client.fetch(base + "/hello");
  check(hello.code == 200 && hello.body == "Hello, world", "GET /hello");

  HTTPResponse json = co_await client.fetch(base + "/json");
  check(nlohmann::json::parse(json.body).at("message") == "Hello, world", "GET /json");

  HTTPRequest echo;
  echo.url = base + "/echo";
  echo.method = "POST";
  echo.body = std::string("bytes\0and\r\nmore", 15);
  echo.headers.add("Content-Type", "application/x-test");
  HTTPResponse echoed = co_await client.fetch(echo);
  check(echoed.body == *echo.body && echoed.headers.get("Content-Type", "") == "application/x-test", "POST /echo");

  HTTPRequest form;
  form.url = base + "/form";
  form.method = "POST";
  form.body = "title=report&tag=x&tag=y&empty=";
  HTTPResponse fields = co_await client.fetch(form);
  nlohmann::json parsed = nlohmann::json::parse(fields.body);
  check(parsed["fields"]["tag"] == nlohmann::json({"x", "y"}) && parsed["fields"]["empty"] == nlohmann::json({""}),
        "POST /form");

  HTTPResponse missing = co_await client.fetch(base + "/nowhere", /*raise_error=*/false);
  check(missing.code == 404, "GET /nowhere is 404");

  squall::websocket::WebSocketClientConnection ws =
      co_await squall::websocket::websocket_connect("ws" + base.substr(4) + "/ws/echo");
  co_await ws.write_message("ping me");
  std::optional<squall::websocket::Message> back = co_await ws.read_message();
  check(back && back->data == "ping me" && !back->binary, "/ws/echo text");
  ws.close(1000);
  co_await ws.wait_closed();
}

}  // namespace

int run_smoke() {
  squall::IOLoop loop;
  try {
    Config config;
    std::unique_ptr<squall::web::Application> app = make_application(config);
    int port = listen(*app, config);
    std::string base = "http://127.0.0.1:" + std::to_string(port);
    loop.run_sync([&base] { return smoke_checks(base); }, std::chrono::seconds(20));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smoke: %s\n", e.what());
    return 1;
  }
  if (failures == 0) std::printf("smoke: all checks passed\n");
  return failures == 0 ? 0 : 1;
}

}  // namespace conformance
