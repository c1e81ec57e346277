// Interoperability with Python Tornado 6.2 (Debian's python3-tornado), both
// ways, with permessage-deflate on and off: Tornado's client against our
// WebSocketHandler, and our websocket_connect against Tornado's
// WebSocketHandler. Skipped when /usr/bin/python3 cannot import tornado.
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "squall/http/httpserver.hpp"
#include "squall/net/process.hpp"
#include "squall/testing.hpp"
#include "squall/web/application.hpp"
#include "squall/websocket/client.hpp"
#include "squall/websocket/handler.hpp"

using namespace std::chrono_literals;

namespace squall::websocket {
namespace {

bool have_tornado() {
  static const bool ok = ::access("/usr/bin/python3", X_OK) == 0 &&
                         std::system("/usr/bin/python3 -c 'import tornado.websocket' >/dev/null 2>&1") == 0;
  return ok;
}

struct Closed {
  std::optional<int> code;
  std::string reason;
  bool compressed = false;
  Future<void> done{nullptr};
};

class RecordingEcho : public WebSocketHandler {
 public:
  RecordingEcho(Closed* closed, bool compress) : closed_(closed), compress_(compress) {}
  std::optional<CompressionOptions> get_compression_options() override {
    if (!compress_) return std::nullopt;
    return CompressionOptions{};
  }
  Future<void> open() override {
    closed_->compressed = ws_connection()->compressed();
    return Future<void>(nullptr);
  }
  Future<void> on_message(Message message) override { return write_message(std::move(message.data), message.binary); }
  void on_close() override {
    closed_->code = close_code();
    closed_->reason = close_reason();
    if (closed_->done.valid() && !closed_->done.done()) closed_->done.set_result();
  }

 private:
  Closed* closed_;
  bool compress_;
};

/// Runs a program to completion, returning its stdout.
Future<std::string> run_program(std::vector<std::string> argv) {
  net::SubprocessOptions options;
  options.stdout_mode = net::Stdio::Stream;
  net::Subprocess proc(std::move(argv), std::move(options));
  std::string out = co_await proc.stdout_stream()->read_until_close();
  co_await proc.wait_for_exit(false);
  co_return out;
}

const char* kTornadoClient = R"PY(
import asyncio, sys
from tornado.websocket import websocket_connect

async def main(url, compress):
    ws = await websocket_connect(url, compression_options={} if compress else None)
    ok = []
    for msg in ["hello", b"\x00\x01\xff", "x" * 100000, "", "\u20ac uro", b"y" * 70000]:
        await ws.write_message(msg, binary=isinstance(msg, bytes))
        back = await ws.read_message()
        ok.append(back == msg)
    ext = ws.headers.get("Sec-WebSocket-Extensions", "-")
    ws.close(1000, "bye")
    end = await ws.read_message()
    print(all(ok), end is None, ws.close_code, ext)

asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
)PY";

const char* kTornadoServer = R"PY(
import asyncio, sys
import tornado.web, tornado.websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

compress = sys.argv[1] == "1"

class Echo(tornado.websocket.WebSocketHandler):
    def get_compression_options(self):
        return {} if compress else None
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))
    def on_close(self):
        print("closed", self.close_code, self.close_reason, flush=True)

async def main():
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(tornado.web.Application([("/echo", Echo)]))
    server.add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
)PY";

class InteropTest : public testing::AsyncTest, public ::testing::WithParamInterface<bool> {
 protected:
  Duration async_test_timeout() const override { return std::chrono::seconds(30); }

  Future<void> tornado_client_body() {
    if (!have_tornado()) co_return;
    bool compress = GetParam();
    Closed closed;
    closed.done = Future<void>();
    web::Application app({{"/echo", web::handler<RecordingEcho>(&closed, compress)}});
    http::HTTPServer server(app);
    auto [sock, port] = testing::bind_unused_port();
    server.add_socket(std::move(sock));
    std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/echo";
    std::vector<std::string> argv = {"/usr/bin/python3", "-c", kTornadoClient, url, compress ? "1" : "0"};
    std::string out = co_await run_program(argv);
    std::string ext = compress ? "permessage-deflate" : "-";
    EXPECT_EQ(out, "True True 1000 " + ext + "\n");
    co_await closed.done;
    EXPECT_EQ(closed.code, 1000);
    EXPECT_EQ(closed.reason, "bye");
    EXPECT_EQ(closed.compressed, compress);
    server.stop();
    co_await server.close_all_connections();  // before the application goes
  }

  Future<void> tornado_server_body() {
    if (!have_tornado()) co_return;
    bool compress = GetParam();
    net::SubprocessOptions options;
    options.stdout_mode = net::Stdio::Stream;
    std::vector<std::string> argv = {"/usr/bin/python3", "-c", kTornadoServer, compress ? "1" : "0"};
    net::Subprocess proc(argv, std::move(options));
    std::string port = co_await proc.stdout_stream()->read_until("\n");
    port.pop_back();
    WebSocketConnectOptions connect;
    if (compress) connect.compression = CompressionOptions{};
    auto ws = co_await websocket_connect("ws://127.0.0.1:" + port + "/echo", connect);
    EXPECT_EQ(ws.deflate_parameters().has_value(), compress);
    std::vector<Message> sent = {{"hello", false}, {std::string("\0\x01\xff", 3), true},
                                 {std::string(100000, 'x'), false}, {"", false}, {"\xe2\x82\xac uro", false},
                                 {std::string(70000, 'y'), true}};
    for (const Message& m : sent) {
      co_await ws.write_message(m.data, m.binary);
      std::optional<Message> back = co_await ws.read_message();
      CO_ASSERT_TRUE(back.has_value());
      EXPECT_EQ(back->data, m.data);
      EXPECT_EQ(back->binary, m.binary);
    }
    co_await ws.ping("are you there");
    ws.close(1000, "bye");
    EXPECT_FALSE((co_await ws.read_message()).has_value());
    EXPECT_EQ(ws.close_code(), 1000);
    std::string line = co_await proc.stdout_stream()->read_until("\n");
    EXPECT_EQ(line, "closed 1000 bye\n");
    proc.send_signal(SIGTERM);
    co_await proc.wait_for_exit(false);
  }
};

TEST_P(InteropTest, TornadoClientTalksToOurServer) {
  run_coroutine_test([this] { return tornado_client_body(); });
}

TEST_P(InteropTest, OurClientTalksToTornadosServer) {
  run_coroutine_test([this] { return tornado_server_body(); });
}

INSTANTIATE_TEST_SUITE_P(Compression, InteropTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Deflate") : std::string("Plain");
                         });

}  // namespace
}  // namespace squall::websocket
