// websocket_connect against a scripted TCP server that answers the
// handshake with exact bytes: every check of the server's 101 (RFC 6455
// section 4.1 and RFC 7692 section 7.1), frames that arrive with the 101,
// masked server frames, timeouts, bad URLs and unreachable servers.
#include "squall/websocket/client.hpp"

#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/http/parser.hpp"
#include "squall/net/tcpclient.hpp"
#include "squall/net/tcpserver.hpp"
#include "squall/testing.hpp"
#include "squall/websocket/handshake.hpp"

using namespace std::chrono_literals;

namespace squall::websocket {
namespace {

/// A server that reads one request head and answers with `answer(key)`.
class ScriptedServerTest : public testing::AsyncTest {
 protected:
  void TearDown() override {
    // Every scripted connection ends (the client closed it) before the loop does.
    io_loop().run_sync([this] { return all_served(); }, std::chrono::seconds(5));
    server_.reset();
    AsyncTest::TearDown();
  }

  void start(std::function<std::string(const std::string& key)> answer) {
    answer_ = std::move(answer);
    server_ = std::make_unique<net::TCPServer>(
        net::TCPServer::StreamHandler([this](std::unique_ptr<net::IOStream> s, std::string) { return serve(std::move(s)); }));
    auto [sock, port] = testing::bind_unused_port();
    port_ = port;
    server_->add_socket(std::move(sock));
  }

  /// Answers the handshake with answer_(key) (nothing if it is empty), then
  /// answers a close frame with an empty close and ends the connection.
  Future<void> serve(std::unique_ptr<net::IOStream> s) {
    ++serving_;
    try {
      std::size_t scanned = 0, end;
      while ((end = http::find_head_end(s->buffered(), scanned)) == std::string_view::npos) co_await s->read_more();
      http::RequestStartLine line;
      http::HTTPHeaders headers;
      http::parse_request_head(s->buffered().substr(0, end), line, headers);
      request_headers_ = headers;
      s->consume(end);
      std::string reply = answer_(std::string(headers.get("Sec-WebSocket-Key", "")));
      bool answered = !reply.empty();
      if (answered) co_await s->write(std::move(reply));
      for (;;) {
        if (answered && !s->buffered().empty() && (static_cast<unsigned char>(s->buffered()[0]) & 0x0F) == 8) {
          co_await s->write(std::string("\x88\x00", 2));
          break;
        }
        s->consume(s->buffered().size());  // the tests send nothing but a close frame
        co_await s->read_more();
      }
    } catch (const net::StreamClosedError&) {
    }
    if (--serving_ == 0 && idle_.valid() && !idle_.done()) idle_.set_result();
  }

  Future<void> all_served() {
    while (serving_ > 0) {
      idle_ = Future<void>();
      Future<void> w = idle_;
      co_await w;
    }
  }

  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/"; }

  /// A valid 101 for `key`, with `extra` header lines.
  static std::string accept(const std::string& key, const std::string& extra = {}) {
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " + compute_accept_key(key) + "\r\n" + extra + "\r\n";
  }

  /// The handshake error the client reports for `answer`, or "ok".
  Future<std::string> outcome(std::function<std::string(const std::string&)> answer,
                              WebSocketConnectOptions options = {}) {
    start(std::move(answer));
    std::string what = "ok";
    try {
      auto ws = co_await websocket_connect(url(), options);
      ws.close(1000);
      co_await ws.wait_closed();
    } catch (const WebSocketHandshakeError& e) {
      what = e.what();
    }
    co_return what;
  }

  std::unique_ptr<net::TCPServer> server_;
  std::function<std::string(const std::string&)> answer_;
  http::HTTPHeaders request_headers_;
  int port_ = 0;
  int serving_ = 0;
  Future<void> idle_{nullptr};
};

SQUALL_ASYNC_TEST(ScriptedServerTest, SendsAWellFormedRequest) {
  http::HTTPRequest request;
  start([](const std::string& key) { return accept(key); });
  request.url = url() + "path?x=1";
  request.headers.add("Authorization", "Bearer t");
  WebSocketConnectOptions options;
  options.subprotocols = {"a", "b"};
  options.compression = CompressionOptions{};
  auto ws = co_await websocket_connect(std::move(request), options);
  EXPECT_TRUE(is_valid_key(request_headers_.get("Sec-WebSocket-Key", "")));
  EXPECT_EQ(request_headers_.get("Sec-WebSocket-Version", ""), "13");
  EXPECT_EQ(request_headers_.get("Sec-WebSocket-Protocol", ""), "a, b");
  EXPECT_EQ(request_headers_.get("Sec-WebSocket-Extensions", ""), "permessage-deflate; client_max_window_bits");
  EXPECT_EQ(request_headers_.get("Authorization", ""), "Bearer t");
  EXPECT_EQ(request_headers_.get("Host", ""), "127.0.0.1:" + std::to_string(port_));
  EXPECT_FALSE(ws.deflate_parameters().has_value());  // the server did not accept it
  EXPECT_EQ(ws.selected_subprotocol(), "");
  ws.close(1000);
  co_await ws.wait_closed();
}

SQUALL_ASYNC_TEST(ScriptedServerTest, RefusesAWrongAcceptKey) {
  std::string what = co_await outcome([](const std::string&) { return accept("dGhlIHNhbXBsZSBub25jZQ=="); });
  EXPECT_NE(what.find("Sec-WebSocket-Accept"), std::string::npos) << what;
}

SQUALL_ASYNC_TEST(ScriptedServerTest, RefusesA101WithoutUpgradeHeaders) {
  std::string what = co_await outcome([](const std::string& key) {
    return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
           compute_accept_key(key) + "\r\n\r\n";
  });
  EXPECT_NE(what.find("Upgrade"), std::string::npos) << what;
}

SQUALL_ASYNC_TEST(ScriptedServerTest, RefusesASubprotocolThatWasNotOffered) {
  WebSocketConnectOptions options;
  options.subprotocols = {"a"};
  std::string what = co_await outcome([](const std::string& key) { return accept(key, "Sec-WebSocket-Protocol: z\r\n"); },
                                      options);
  EXPECT_NE(what.find("subprotocol"), std::string::npos) << what;
}

SQUALL_ASYNC_TEST(ScriptedServerTest, RefusesAnExtensionThatWasNotOffered) {
  std::string what =
      co_await outcome([](const std::string& key) { return accept(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"); });
  EXPECT_NE(what.find("not offered"), std::string::npos) << what;
}

SQUALL_ASYNC_TEST(ScriptedServerTest, RefusesInvalidDeflateParameters) {
  WebSocketConnectOptions options;
  options.compression = CompressionOptions{};
  std::string what = co_await outcome(
      [](const std::string& key) {
        return accept(key, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=20\r\n");
      },
      options);
  EXPECT_NE(what.find("permessage-deflate"), std::string::npos) << what;
}

SQUALL_ASYNC_TEST(ScriptedServerTest, ReportsTheStatusOfARefusal) {
  start([](const std::string&) {
    return std::string("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\n\r\n");
  });
  int code = 0;
  std::string challenge;
  try {
    co_await websocket_connect(url());
  } catch (const WebSocketHandshakeError& e) {
    code = e.code();
    challenge = std::string(e.headers().get("WWW-Authenticate", ""));
  }
  EXPECT_EQ(code, 401);
  EXPECT_EQ(challenge, "Bearer");
}

SQUALL_ASYNC_TEST(ScriptedServerTest, ReadsFramesThatCameWithThe101) {
  start([](const std::string& key) { return accept(key) + std::string("\x81\x05" "early", 7); });
  auto ws = co_await websocket_connect(url());
  auto m = co_await ws.read_message();
  CO_ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->data, "early");
  ws.close(1000);
  co_await ws.wait_closed();
}

SQUALL_ASYNC_TEST(ScriptedServerTest, AMaskedServerFrameFailsTheConnection) {
  start([](const std::string& key) { return accept(key) + std::string("\x81\x81" "\x01\x02\x03\x04" "x", 7); });
  auto ws = co_await websocket_connect(url());
  EXPECT_FALSE((co_await ws.read_message()).has_value());
  EXPECT_FALSE(ws.close_code().has_value());  // the server sent no close frame
}

SQUALL_ASYNC_TEST(ScriptedServerTest, TheHandshakeHasADeadline) {
  start([](const std::string&) { return std::string(); });  // never answers
  http::HTTPRequest request;
  request.url = url();
  request.request_timeout = 100ms;
  bool timed_out = false;
  try {
    co_await websocket_connect(std::move(request));
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
}

class ClientErrorsTest : public testing::AsyncTest {};

std::vector<std::string> bad_urls() {
  return {"ftp://127.0.0.1/", "ws:///nohost", "ws://127.0.0.1/#fragment", "not a url"};
}

SQUALL_ASYNC_TEST(ClientErrorsTest, RefusesUrlsItCannotUse) {
  for (const std::string& bad : bad_urls()) {
    bool refused = false;
    try {
      co_await websocket_connect(bad);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    EXPECT_TRUE(refused) << bad;
  }
}

SQUALL_ASYNC_TEST(ClientErrorsTest, AnUnreachableServerIsAConnectError) {
  auto [sock, port] = testing::bind_unused_port();
  sock.reset();  // nothing listens there any more
  bool refused = false;
  try {
    co_await websocket_connect("ws://127.0.0.1:" + std::to_string(port) + "/");
  } catch (const net::ConnectError&) {
    refused = true;
  }
  EXPECT_TRUE(refused);
}

}  // namespace
}  // namespace squall::websocket
