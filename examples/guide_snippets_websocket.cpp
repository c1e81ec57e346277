// The snippets of docs/guide/websockets.md, compiled. `--smoke` serves the
// echo and chat handlers on a port the OS picks, and talks to them with the
// client: an echo (plain and compressed) and a broadcast to two members.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/web/application.hpp"
#include "squall/websocket/client.hpp"
#include "squall/websocket/handler.hpp"

using namespace std::chrono_literals;

namespace {

class EchoHandler : public squall::websocket::WebSocketHandler {
 public:
  squall::Future<void> open() override {
    std::cout << "open " << request().path << "\n";
    co_return;
  }
  squall::Future<void> on_message(squall::websocket::Message message) override {
    co_await write_message(message.data, message.binary);  // waits while the client reads slowly
  }
  void on_close() override { std::cout << "closed: " << close_code().value_or(1005) << "\n"; }
};

class CompressedEchoHandler : public EchoHandler {
 public:
  std::optional<squall::websocket::CompressionOptions> get_compression_options() override {
    return squall::websocket::CompressionOptions{.compression_level = 6, .mem_level = 8};
  }
};

class ChatHandler : public squall::websocket::WebSocketHandler {
 public:
  static inline std::set<ChatHandler*> members;

  squall::Future<void> open() override {
    members.insert(this);
    co_return;
  }
  void on_close() override { members.erase(this); }

  squall::Future<void> on_message(squall::websocket::Message message) override {
    squall::websocket::PreparedMessage shared(message.data, message.binary);  // framed once
    for (ChatHandler* member : members) member->write_message(shared);
    co_return;
  }
};

squall::web::Settings websocket_settings() {
squall::web::Settings settings;
settings.websocket.ping_interval = 30s;               // keep-alive pings
settings.websocket.ping_timeout = 90s;                // no answer for this long: close
settings.websocket.max_message_size = 1024 * 1024;    // bigger messages close with 1009
  return settings;
}

squall::Future<void> client(int port) {
std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/echo";
auto ws = co_await squall::websocket::websocket_connect(url);
co_await ws.write_message("hello");
std::optional<squall::websocket::Message> reply = co_await ws.read_message();
std::cout << reply->data << "\n";   // "hello"
ws.close(1000, "done");
co_await ws.wait_closed();
}

squall::Future<void> client_with_options(int port) {
squall::http::HTTPRequest request;
request.url = "ws://127.0.0.1:" + std::to_string(port) + "/compressed";
request.headers.add("Cookie", "session=...");
squall::websocket::WebSocketConnectOptions options;
options.subprotocols = {"chat.v2"};
options.compression = squall::websocket::CompressionOptions{};  // offer permessage-deflate
auto ws = co_await squall::websocket::websocket_connect(std::move(request), options);
  co_await ws.write_message("compressed hello");
  auto reply = co_await ws.read_message();
  std::cout << reply->data << (ws.deflate_parameters() ? " (deflate)" : "") << "\n";
  ws.close(1000);
  co_await ws.wait_closed();
}

squall::Future<void> read_all(squall::websocket::WebSocketClientConnection& ws) {
while (std::optional<squall::websocket::Message> msg = co_await ws.read_message()) {
  std::cout << (msg->binary ? "binary " : "text ") << msg->data.size() << " bytes\n";
}
std::cout << "closed with " << ws.close_code().value_or(1006) << "\n";
}

squall::Future<void> chat(int port) {
  std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/chat";
  auto alice = co_await squall::websocket::websocket_connect(url);
  auto bob = co_await squall::websocket::websocket_connect(url);
  co_await alice.write_message("hi all");
  std::cout << "alice got: " << (co_await alice.read_message())->data << "\n";
  std::cout << "bob got: " << (co_await bob.read_message())->data << "\n";
  bob.close(1000);
  co_await read_all(bob);
  alice.close(1000);
  co_await alice.wait_closed();
}

void serve_forever() {
squall::web::Application app({
    {"/echo", squall::web::handler<EchoHandler>()},
    {"/compressed", squall::web::handler<CompressedEchoHandler>()},
    {"/chat", squall::web::handler<ChatHandler>()},
}, websocket_settings());
app.listen(8888);
squall::IOLoop::current().start();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--serve") == 0) {
    serve_forever();
    return 0;
  }
  // --smoke: the same application on an OS-chosen port, driven by the client.
  squall::IOLoop loop;
  squall::web::Application app({
      {"/echo", squall::web::handler<EchoHandler>()},
      {"/compressed", squall::web::handler<CompressedEchoHandler>()},
      {"/chat", squall::web::handler<ChatHandler>()},
  }, websocket_settings());
  squall::http::HTTPServer& server = app.listen(0, "127.0.0.1");
  int port = server.ports().at(0);
  loop.run_sync([&]() -> squall::Future<void> {
    co_await client(port);
    co_await client_with_options(port);
    co_await chat(port);
  }, 10s);
  return 0;
}
