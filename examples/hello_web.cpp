// hello_web: the same two endpoints as examples/hello.cpp, written the way a
// web-framework user writes them: an Application with a RequestHandler per
// route. bench/http_compare runs it beside hello (the raw HTTP layer) and
// Tornado's equivalent, bench/peers/tornado_hello.py, to show what the
// framework costs on top of the server.
//
//   hello_web --port 8080     serve until killed
//   hello_web --smoke         serve on a free port, fetch both routes, exit
//
//   GET /plaintext → "Hello, World!"               (text/plain)
//   GET /json      → {"message":"Hello, World!"}   (application/json)
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/web/application.hpp"
#include "squall/web/request_handler.hpp"

using namespace squall;

namespace {

class PlaintextHandler : public web::RequestHandler {
 public:
  Future<void> get() override {
    set_header("Content-Type", "text/plain");
    write("Hello, World!");
    co_return;
  }
};

class JsonHandler : public web::RequestHandler {
 public:
  Future<void> get() override {
    // write(json) encodes it and sets application/json, like Tornado's write(dict).
    write(nlohmann::json{{"message", "Hello, World!"}});
    co_return;
  }
};

web::Settings quiet_settings() {
  web::Settings settings;
  settings.log_function = [](web::RequestHandler&) {};  // no access log, as for the peers
  return settings;
}

/// --smoke: both routes over a real socket, checked.
Future<bool> fetch_both(int port) {
  auto& client = http::AsyncHTTPClient::instance();
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  http::HTTPResponse plain = co_await client.fetch(base + "/plaintext");
  http::HTTPResponse json = co_await client.fetch(base + "/json");
  bool ok = plain.code == 200 && plain.body == "Hello, World!" && json.code == 200 &&
            nlohmann::json::parse(json.body) == nlohmann::json{{"message", "Hello, World!"}};
  std::printf("%s\n%s\n", plain.body.c_str(), json.body.c_str());
  co_return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 8080;
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (arg == "--smoke") smoke = true;
    else {
      std::fprintf(stderr, "usage: %s [--port N] [--smoke]\n", argv[0]);
      return 2;
    }
  }

  IOLoop loop;
  loop.make_current();
  web::Application app({{"/plaintext", web::handler<PlaintextHandler>()}, {"/json", web::handler<JsonHandler>()}},
                       quiet_settings());
  int bound = app.listen(smoke ? 0 : port, "127.0.0.1").ports().at(0);
  if (smoke) {
    bool ok = loop.run_sync([&] { return fetch_both(bound); }, std::chrono::seconds(10));
    return ok ? 0 : 1;
  }
  std::printf("hello_web: port %d\n", bound);
  std::fflush(stdout);
  loop.start();
}
