// WebSocketHandler in an Application over real loopback sockets: our client
// against our server for every rule (handshake checks, messages, limits,
// close handshake, subprotocols, compression, open/on_message/on_close
// order, a chat broadcast, TLS), and raw sockets writing malformed frames
// that must be answered with their close codes.
#include "squall/websocket/handler.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <set>
#include <string>
#include <vector>

#include "../support/test_certs.hpp"
#include "squall/core/gen.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/http/parser.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/testing.hpp"
#include "squall/web/application.hpp"
#include "squall/websocket/client.hpp"
#include "squall/websocket/handshake.hpp"

using namespace std::chrono_literals;

namespace squall::websocket {
namespace {

/// What the handlers saw, for the tests to check.
struct Journal {
  std::vector<std::string> events;
  std::optional<int> close_code;
  std::string close_reason;
  Future<void> closed{nullptr};
  void note(std::string e) { events.push_back(std::move(e)); }
  void on_closed() {
    if (closed.valid() && !closed.done()) closed.set_result();
  }
};

class EchoHandler : public WebSocketHandler {
 public:
  Future<void> on_message(Message message) override { return write_message(std::move(message.data), message.binary); }
};

class DeflateEchoHandler : public EchoHandler {
 public:
  std::optional<CompressionOptions> get_compression_options() override { return CompressionOptions{}; }
};

class JournalHandler : public WebSocketHandler {
 public:
  explicit JournalHandler(Journal* j) : j_(j) {}
  Future<void> open() override {
    j_->note("open " + (path_args().empty() ? std::string() : path_args()[0]) + " cookie=" +
             std::string(request().headers.get("Cookie", "")));
    co_await squall::sleep(5ms);  // messages wait for open to end
    j_->note("opened");
  }
  Future<void> on_message(Message message) override {
    j_->note("message " + message.data);
    if (message.data == "slow") co_await squall::sleep(20ms);
    if (message.data == "close") {
      close(4001, "asked to");
      co_return;  // writing now would fail with WebSocketClosedError
    }
    if (message.data == "throw") throw std::runtime_error("handler failure");
    j_->note("done " + message.data);
    co_await write_message("ack " + message.data);
  }
  void on_ping(std::string_view data) override { j_->note("ping " + std::string(data)); }
  void on_close() override {
    j_->note("close");
    j_->close_code = close_code();
    j_->close_reason = close_reason();
    j_->on_closed();
  }

 private:
  Journal* j_;
};

class OpenFailsHandler : public WebSocketHandler {
 public:
  explicit OpenFailsHandler(Journal* j) : j_(j) {}
  Future<void> open() override { throw std::runtime_error("cannot open"); }
  Future<void> on_message(Message) override { return Future<void>(nullptr); }
  void on_close() override {
    j_->note("close");
    j_->on_closed();
  }

 private:
  Journal* j_;
};

class SubprotocolHandler : public EchoHandler {
 public:
  std::optional<std::string> select_subprotocol(const std::vector<std::string>& offered) override {
    for (const auto& p : offered) {
      if (p == "chat.v2") return p;
    }
    return std::nullopt;
  }
};

/// Tornado's chat demo in a few lines: every message goes to every member.
struct ChatRoom {
  std::set<WebSocketHandler*> members;
};
class ChatHandler : public WebSocketHandler {
 public:
  explicit ChatHandler(ChatRoom* room) : room_(room) {}
  Future<void> open() override {
    room_->members.insert(this);
    return Future<void>(nullptr);
  }
  Future<void> on_message(Message message) override {
    PreparedMessage shared(message.data, message.binary);  // framed once for everyone
    for (WebSocketHandler* member : room_->members) member->write_message(shared);
    return Future<void>(nullptr);
  }
  void on_close() override { room_->members.erase(this); }

 private:
  ChatRoom* room_;
};

class AnyOriginHandler : public EchoHandler {
 public:
  bool check_origin(std::string_view) override { return true; }
};

class HandlerTest : public testing::AsyncTest {
 protected:
  void TearDown() override {
    if (server_) {
      // Every connection (and WebSocket) ends before the server and the
      // application go away.
      server_->stop();
      io_loop().run_sync([this] { return server_->close_all_connections(); }, std::chrono::seconds(5));
    }
    server_.reset();
    app_.reset();
    AsyncTest::TearDown();
  }

  void start(std::shared_ptr<net::SSLContext> tls = nullptr) {
    web::Settings settings;
    settings.websocket.max_message_size = 64 * 1024;
    std::vector<web::Rule> rules = {
        {"/echo", web::handler<EchoHandler>()},
        {"/deflate", web::handler<DeflateEchoHandler>()},
        {"/journal/(.*)", web::handler<JournalHandler>(&journal_)},
        {"/open-fails", web::handler<OpenFailsHandler>(&journal_)},
        {"/subprotocol", web::handler<SubprotocolHandler>()},
        {"/chat", web::handler<ChatHandler>(&room_)},
        {"/any-origin", web::handler<AnyOriginHandler>()},
    };
    app_ = std::make_unique<web::Application>(std::move(rules), settings);
    http::HTTPServerOptions options;
    options.ssl_context = std::move(tls);
    server_ = std::make_unique<http::HTTPServer>(*app_, std::move(options));
    auto [sock, port] = testing::bind_unused_port();
    port_ = port;
    server_->add_socket(std::move(sock));
  }

  std::string url(std::string_view path, std::string_view scheme = "ws") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  std::unique_ptr<net::IOStream> raw_connect() const {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
      throw std::runtime_error("connect");
    }
    return std::make_unique<net::IOStream>(std::move(fd));
  }

  struct RawResponse {
    int code = 0;
    http::HTTPHeaders headers;
  };
  /// Sends a handshake request with `extra` header lines (or replacing the
  /// defaults: a line "Name:" alone removes that header) and reads the head.
  Future<RawResponse> raw_handshake(net::IOStream& s, std::string path, std::vector<std::string> extra = {},
                                    std::string method = "GET", std::string version = "HTTP/1.1") {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"Host", "127.0.0.1:" + std::to_string(port_)},
        {"Upgrade", "websocket"},
        {"Connection", "Upgrade"},
        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
        {"Sec-WebSocket-Version", "13"}};
    for (const std::string& line : extra) {
      std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      bool replaced = false;
      for (auto& f : fields) {
        if (http::iequals(f.first, name)) {
          f.second = value;
          replaced = true;
        }
      }
      if (!replaced) fields.emplace_back(name, value);
    }
    std::string req = method + " " + path + " " + version + "\r\n";
    for (auto& [n, v] : fields) {
      if (!v.empty()) req += n + ": " + v + "\r\n";
    }
    req += "\r\n";
    co_await s.write(std::move(req));
    std::size_t scanned = 0, end;
    while ((end = http::find_head_end(s.buffered(), scanned)) == std::string_view::npos) co_await s.read_more();
    RawResponse r;
    http::ResponseStartLine line;
    http::parse_response_head(s.buffered().substr(0, end), line, r.headers);
    r.code = line.code;
    s.consume(end);
    if (r.code != 101 && method != "HEAD") {
      // Skip the body of a refusal.
      auto length = r.headers.get("Content-Length");
      std::size_t n = length ? std::stoul(std::string(*length)) : 0;
      while (s.buffered().size() < n) co_await s.read_more();
      s.consume(n);
    }
    co_return r;
  }


 public:
  /// A masked client frame with every header bit under the test's control.
  static std::string client_frame(int opcode, std::string_view payload, bool fin = true, int rsv = 0,
                                  std::optional<std::uint64_t> claimed_length = std::nullopt) {
    std::string out;
    out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
    std::uint64_t n = claimed_length.value_or(payload.size());
    if (n < 126) {
      out.push_back(static_cast<char>(0x80 | n));
    } else if (n <= 0xFFFF) {
      out.push_back(static_cast<char>(0x80 | 126));
      out.push_back(static_cast<char>(n >> 8));
      out.push_back(static_cast<char>(n & 0xFF));
    } else {
      out.push_back(static_cast<char>(0x80 | 127));
      for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
    }
    std::array<std::uint8_t, 4> key{1, 2, 3, 4};
    out.append(reinterpret_cast<const char*>(key.data()), 4);
    std::string body(payload);
    apply_mask(body.data(), body.size(), key);
    return out + body;
  }

 protected:
  /// Reads one unmasked server frame: opcode and payload.
  static Future<std::pair<int, std::string>> read_server_frame(net::IOStream& s) {
    FrameHeader h;
    while (parse_frame_header(s.buffered(), h) != FrameStatus::kComplete) co_await s.read_more();
    EXPECT_FALSE(h.masked);
    s.consume(h.size);
    while (s.buffered().size() < h.length) co_await s.read_more();
    std::string payload(s.buffered().substr(0, h.length));
    s.consume(h.length);
    co_return std::pair<int, std::string>(static_cast<int>(h.opcode) | (h.rsv1 ? 0x40 : 0), payload);
  }

  /// True if the server closed `s` (EOF) after anything else it sent.
  static Future<bool> sees_eof(net::IOStream& s) {
    bool eof = false;
    try {
      for (;;) {
        s.consume(s.buffered().size());
        co_await s.read_more();
      }
    } catch (const net::StreamClosedError&) {
      eof = true;
    }
    co_return eof;
  }

  /// The close code of the close frame the server sends after `frames`.
  Future<int> close_code_for(std::string frames) {
    auto s = raw_connect();
    RawResponse r = co_await raw_handshake(*s, "/echo");
    EXPECT_EQ(r.code, 101);
    co_await s->write(std::move(frames));
    for (;;) {
      auto [op, payload] = co_await read_server_frame(*s);
      if (op == 8) {
        EXPECT_TRUE(co_await sees_eof(*s));
        if (payload.size() < 2) co_return 0;
        co_return (static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]);
      }
    }
  }

  std::unique_ptr<web::Application> app_;
  std::unique_ptr<http::HTTPServer> server_;
  int port_ = 0;
  Journal journal_;
  ChatRoom room_;
};

// --- messages --------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(HandlerTest, EchoesTextBinaryAndEmptyMessages) {
  start();
  auto ws = co_await websocket_connect(url("/echo"));
  std::vector<Message> sent = {{"hello", false}, {std::string("\0\x01\xff", 3), true}, {"", false}, {"", true},
                               {std::string(60000, 'z'), false}};
  for (const Message& m : sent) co_await ws.write_message(m.data, m.binary);
  for (const Message& m : sent) {
    std::optional<Message> got = co_await ws.read_message();
    CO_ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->data, m.data);
    EXPECT_EQ(got->binary, m.binary);
  }
  ws.close(1000);
  EXPECT_FALSE((co_await ws.read_message()).has_value());
  EXPECT_EQ(ws.close_code(), 1000);
}

SQUALL_ASYNC_TEST(HandlerTest, ReassemblesFragmentsAndAnswersPingsBetweenThem) {
  start();
  auto s = raw_connect();
  RawResponse r = co_await raw_handshake(*s, "/echo");
  CO_ASSERT_EQ(r.code, 101);
  EXPECT_EQ(r.headers.get("Sec-WebSocket-Accept", ""), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(has_token(r.headers.get("Upgrade", ""), "websocket"));
  EXPECT_TRUE(has_token(r.headers.get("Connection", ""), "upgrade"));
  EXPECT_FALSE(r.headers.contains("Sec-WebSocket-Extensions"));
  std::string euro = "\xe2\x82\xac";
  co_await s->write(client_frame(1, "5 " + euro.substr(0, 2), false) + client_frame(9, "mid") +
                    client_frame(0, euro.substr(2) + " each", true));
  auto pong = co_await read_server_frame(*s);
  EXPECT_EQ(pong, std::make_pair(10, std::string("mid")));
  auto echo = co_await read_server_frame(*s);
  EXPECT_EQ(echo, std::make_pair(1, "5 " + euro + " each"));  // text, no RSV1
  // An unsolicited pong is ignored.
  co_await s->write(client_frame(10, "unasked") + client_frame(2, "bin"));
  echo = co_await read_server_frame(*s);
  EXPECT_EQ(echo, std::make_pair(2, std::string("bin")));
}

SQUALL_ASYNC_TEST(HandlerTest, MessagesOverTheLimitCloseWith1009) {
  start();
  auto ws = co_await websocket_connect(url("/echo"));
  co_await ws.write_message(std::string(64 * 1024, 'a'));
  auto back = co_await ws.read_message();
  CO_ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->data.size(), 64u * 1024);
  ws.write_message(std::string(64 * 1024 + 1, 'a'));
  EXPECT_FALSE((co_await ws.read_message()).has_value());
  EXPECT_EQ(ws.close_code(), close_code::kMessageTooBig);
}

SQUALL_ASYNC_TEST(HandlerTest, AnOversizedFrameIsRefusedFromItsHeader) {
  start();
  // Only the header of a 1 GiB frame is sent: the answer must not wait for
  // the payload.
  int code = co_await close_code_for(client_frame(2, "", true, 0, std::uint64_t{1} << 30));
  EXPECT_EQ(code, 1009);
}

struct Malformed {
  const char* name;
  std::string frames;
  int code;
};

class MalformedFrameTest : public HandlerTest, public ::testing::WithParamInterface<Malformed> {
 protected:
  Future<void> body() {
    start();
    int code = co_await close_code_for(GetParam().frames);
    EXPECT_EQ(code, GetParam().code);
  }
};

TEST_P(MalformedFrameTest, FailsTheConnectionWithItsCode) {
  run_coroutine_test([this] { return body(); });
}

std::string unmasked(int opcode, std::string_view payload) {
  std::string out;
  out.push_back(static_cast<char>(0x80 | opcode));
  out.push_back(static_cast<char>(payload.size()));
  return out.append(payload);
}
std::string close_payload(int code) {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}

INSTANTIATE_TEST_SUITE_P(
    Rfc6455, MalformedFrameTest,
    ::testing::Values(
        Malformed{"unmasked", unmasked(1, "hi"), 1002},
        Malformed{"rsv1_without_deflate", HandlerTest::client_frame(1, "hi", true, 4), 1002},
        Malformed{"rsv2", HandlerTest::client_frame(1, "hi", true, 2), 1002},
        Malformed{"rsv3", HandlerTest::client_frame(1, "hi", true, 1), 1002},
        Malformed{"opcode_3", HandlerTest::client_frame(3, ""), 1002},
        Malformed{"opcode_b", HandlerTest::client_frame(0xB, ""), 1002},
        Malformed{"ping_126", HandlerTest::client_frame(9, std::string(126, 'p')), 1002},
        Malformed{"fragmented_ping", HandlerTest::client_frame(9, "p", false), 1002},
        Malformed{"lone_continuation", HandlerTest::client_frame(0, "x"), 1002},
        Malformed{"text_inside_text", HandlerTest::client_frame(1, "a", false) + HandlerTest::client_frame(1, "b"), 1002},
        Malformed{"bad_utf8", HandlerTest::client_frame(1, "\xc0\xaf"), 1007},
        Malformed{"bad_utf8_across_fragments",
                  HandlerTest::client_frame(1, "\xf0\x9f", false) + HandlerTest::client_frame(0, "\x41"), 1007},
        Malformed{"close_1_byte", HandlerTest::client_frame(8, "x"), 1002},
        Malformed{"close_1005", HandlerTest::client_frame(8, close_payload(1005)), 1002},
        Malformed{"close_999", HandlerTest::client_frame(8, close_payload(999)), 1002},
        Malformed{"close_2000", HandlerTest::client_frame(8, close_payload(2000)), 1002},
        Malformed{"close_5000", HandlerTest::client_frame(8, close_payload(5000)), 1002},
        Malformed{"close_reason_bad_utf8", HandlerTest::client_frame(8, close_payload(1000) + "\xff"), 1007}),
    [](const ::testing::TestParamInfo<Malformed>& info) { return std::string(info.param.name); });

// --- handshake -------------------------------------------------------------------------------

struct BadHandshake {
  std::vector<std::string> extra;
  int code;
  std::string method;
  std::string version;
};

// Built outside the coroutine: GCC 12 mishandles initializer lists of
// strings inside coroutine bodies ("array used as initializer").
std::vector<BadHandshake> bad_handshakes() {
  return {
      {{"Upgrade:"}, 400, "GET", "HTTP/1.1"},
      {{"Upgrade: h2c"}, 400, "GET", "HTTP/1.1"},
      {{"Connection: keep-alive"}, 400, "GET", "HTTP/1.1"},
      {{"Sec-WebSocket-Key:"}, 400, "GET", "HTTP/1.1"},
      {{"Sec-WebSocket-Key: not-a-key"}, 400, "GET", "HTTP/1.1"},
      {{"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"}, 400, "GET", "HTTP/1.1"},
      {{"Sec-WebSocket-Version: 8"}, 426, "GET", "HTTP/1.1"},
      {{"Sec-WebSocket-Version:"}, 426, "GET", "HTTP/1.1"},
      {{"Origin: http://evil.example"}, 403, "GET", "HTTP/1.1"},
      {{"Origin: null"}, 403, "GET", "HTTP/1.1"},
      {{}, 405, "POST", "HTTP/1.1"},
      {{}, 405, "PUT", "HTTP/1.1"},
      {{}, 405, "OPTIONS", "HTTP/1.1"},
      {{}, 405, "HEAD", "HTTP/1.1"},
      {{}, 400, "GET", "HTTP/1.0"},
  };
}

std::vector<std::vector<std::string>> good_handshakes(int port) {
  return {{"Origin: http://127.0.0.1:" + std::to_string(port)},
          {"Connection: keep-alive, Upgrade", "Upgrade: WebSocket"}};
}

std::vector<std::string> one_line(std::string line) {
  std::vector<std::string> v;
  v.push_back(std::move(line));
  return v;
}

SQUALL_ASYNC_TEST(HandlerTest, RefusesBadHandshakes) {
  testing::ExpectLog access("squall.access", "", false);  // 4xx lines are warnings
  start();
  for (const BadHandshake& c : bad_handshakes()) {
    auto s = raw_connect();
    RawResponse r = co_await raw_handshake(*s, "/echo", c.extra, c.method, c.version);
    EXPECT_EQ(r.code, c.code) << c.method << " " << (c.extra.empty() ? "" : c.extra[0]);
    if (c.code == 426) {
      EXPECT_EQ(r.headers.get("Sec-WebSocket-Version", ""), "13");
    }
  }
  // Accepted: the same origin, no origin, tokens among others.
  for (const std::vector<std::string>& ok : good_handshakes(port_)) {
    auto s = raw_connect();
    RawResponse r = co_await raw_handshake(*s, "/echo", ok);
    EXPECT_EQ(r.code, 101) << ok[0];
  }
  auto s = raw_connect();
  RawResponse r = co_await raw_handshake(*s, "/any-origin", one_line("Origin: http://evil.example"));
  EXPECT_EQ(r.code, 101);
}

SQUALL_ASYNC_TEST(HandlerTest, TheClientReportsARefusedHandshake) {
  testing::ExpectLog access("squall.access", "", false);
  start();
  int code = 0;
  try {
    co_await websocket_connect(url("/nowhere"));
  } catch (const WebSocketHandshakeError& e) {
    code = e.code();
  }
  EXPECT_EQ(code, 404);
  http::HTTPRequest request;
  request.url = url("/echo");
  request.headers.add("Origin", "http://evil.example");
  try {
    co_await websocket_connect(std::move(request));
  } catch (const WebSocketHandshakeError& e) {
    code = e.code();
  }
  EXPECT_EQ(code, 403);
}

SQUALL_ASYNC_TEST(HandlerTest, NegotiatesSubprotocols) {
  start();
  WebSocketConnectOptions options;
  options.subprotocols = {"chat.v1", "chat.v2"};
  auto ws = co_await websocket_connect(url("/subprotocol"), options);
  EXPECT_EQ(ws.selected_subprotocol(), "chat.v2");
  options.subprotocols = {"chat.v1"};
  auto none = co_await websocket_connect(url("/subprotocol"), options);
  EXPECT_EQ(none.selected_subprotocol(), "");
  EXPECT_FALSE(none.headers().contains("Sec-WebSocket-Protocol"));
}

// --- compression -----------------------------------------------------------------------------

SQUALL_ASYNC_TEST(HandlerTest, CompressesWhenBothSidesWantIt) {
  start();
  WebSocketConnectOptions options;
  options.compression = CompressionOptions{};
  auto ws = co_await websocket_connect(url("/deflate"), options);
  CO_ASSERT_TRUE(ws.deflate_parameters().has_value());
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "compress me ";
  for (int i = 0; i < 3; ++i) {
    co_await ws.write_message(text + std::to_string(i));
    auto back = co_await ws.read_message();
    CO_ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->data, text + std::to_string(i));
  }
  // The server's frames carry RSV1 (seen on the wire by a raw client).
  auto s = raw_connect();
  RawResponse r = co_await raw_handshake(*s, "/deflate", one_line("Sec-WebSocket-Extensions: permessage-deflate"));
  EXPECT_EQ(r.headers.get("Sec-WebSocket-Extensions", ""), "permessage-deflate");
  DeflateCompressor c(15, false);
  std::string z;
  c.compress("squeeze", z);
  co_await s->write(client_frame(1, z, true, 4));
  auto frame = co_await read_server_frame(*s);
  EXPECT_EQ(frame.first, 0x41);  // RSV1 | text
  DeflateDecompressor d(15, false);
  std::string plain;
  d.feed(frame.second, plain, 1000);
  d.finish(plain, 1000);
  EXPECT_EQ(plain, "squeeze");
}

SQUALL_ASYNC_TEST(HandlerTest, NoCompressionUnlessTheServerEnablesIt) {
  start();
  WebSocketConnectOptions options;
  options.compression = CompressionOptions{};
  auto ws = co_await websocket_connect(url("/echo"), options);
  EXPECT_FALSE(ws.deflate_parameters().has_value());
  co_await ws.write_message("plain");
  auto back = co_await ws.read_message();
  CO_ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->data, "plain");
  // And a compressed client without the extension is a protocol error.
  int code = co_await close_code_for(client_frame(1, "x", true, 4));
  EXPECT_EQ(code, 1002);
}

SQUALL_ASYNC_TEST(HandlerTest, ADecompressionBombClosesWith1009) {
  start();
  auto s = raw_connect();
  RawResponse r = co_await raw_handshake(*s, "/deflate", one_line("Sec-WebSocket-Extensions: permessage-deflate"));
  CO_ASSERT_EQ(r.code, 101);
  DeflateCompressor c(15, false, 9);
  std::string z;
  c.compress(std::string(4u << 20, '\0'), z);  // 4 MiB of zeros in a few KiB; the limit is 64 KiB
  co_await s->write(client_frame(2, z, true, 4));
  auto frame = co_await read_server_frame(*s);
  EXPECT_EQ(frame.first, 8);
  EXPECT_EQ(frame.second.substr(0, 2), close_payload(1009));
}

// --- lifecycle -------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(HandlerTest, RunsOpenMessagesAndCloseInOrder) {
  start();
  journal_.closed = Future<void>();
  http::HTTPRequest request;
  request.url = url("/journal/room42");
  request.headers.add("Cookie", "session=abc");
  auto ws = co_await websocket_connect(std::move(request));
  co_await ws.write_message("slow");
  co_await ws.write_message("fast");
  EXPECT_EQ((co_await ws.read_message())->data, "ack slow");
  EXPECT_EQ((co_await ws.read_message())->data, "ack fast");
  co_await ws.ping("hi");
  ws.close(1000, "done here");
  co_await ws.wait_closed();
  co_await journal_.closed;
  EXPECT_EQ(journal_.events,
            (std::vector<std::string>{"open room42 cookie=session=abc", "opened", "message slow", "done slow",
                                      "message fast", "done fast", "ping hi", "close"}));
  EXPECT_EQ(journal_.close_code, 1000);
  EXPECT_EQ(journal_.close_reason, "done here");
}

SQUALL_ASYNC_TEST(HandlerTest, TheServerMayStartTheCloseHandshake) {
  start();
  journal_.closed = Future<void>();
  auto ws = co_await websocket_connect(url("/journal/x"));
  co_await ws.write_message("close");
  EXPECT_FALSE((co_await ws.read_message()).has_value());
  EXPECT_EQ(ws.close_code(), 4001);
  EXPECT_EQ(ws.close_reason(), "asked to");
  co_await journal_.closed;
  EXPECT_EQ(journal_.close_code, 4001);  // the client echoed it
}

SQUALL_ASYNC_TEST(HandlerTest, ARawCloseIsEchoedAndTcpClosed) {
  start();
  auto s = raw_connect();
  RawResponse r = co_await raw_handshake(*s, "/echo");
  CO_ASSERT_EQ(r.code, 101);
  co_await s->write(client_frame(8, close_payload(1001) + "going"));
  auto frame = co_await read_server_frame(*s);
  EXPECT_EQ(frame.first, 8);
  EXPECT_EQ(frame.second, close_payload(1001));
  EXPECT_TRUE(co_await sees_eof(*s));
  // An empty close gets an empty close.
  s = raw_connect();
  r = co_await raw_handshake(*s, "/echo");
  co_await s->write(client_frame(8, ""));
  frame = co_await read_server_frame(*s);
  EXPECT_EQ(frame, std::make_pair(8, std::string()));
  EXPECT_TRUE(co_await sees_eof(*s));
}

SQUALL_ASYNC_TEST(HandlerTest, ExceptionsInHandlersAreLoggedAndDropTheConnection) {
  start();
  {
    testing::ExpectLog expect("squall.application", "on_message: handler failure");
    journal_.closed = Future<void>();
    auto ws = co_await websocket_connect(url("/journal/x"));
    co_await ws.write_message("throw");
    EXPECT_FALSE((co_await ws.read_message()).has_value());
    co_await journal_.closed;
  }
  {
    testing::ExpectLog expect("squall.application", "open of .*: cannot open");
    journal_.closed = Future<void>();
    auto ws = co_await websocket_connect(url("/open-fails"));
    EXPECT_FALSE((co_await ws.read_message()).has_value());
    co_await journal_.closed;
  }
}

SQUALL_ASYNC_TEST(HandlerTest, AChatBroadcastsToEveryMemberInOrder) {
  start();
  std::vector<WebSocketClientConnection> members;
  for (int i = 0; i < 4; ++i) members.push_back(co_await websocket_connect(url("/chat")));
  // open() ran right after each 101 was written, before the client saw it.
  EXPECT_EQ(room_.members.size(), 4u);
  // One member disappears without a close frame: the others do not notice.
  members[3].connection().abort();
  co_await members[3].wait_closed();
  for (int i = 0; i < 3; ++i) co_await members[i].write_message("from " + std::to_string(i));
  for (int m = 0; m < 3; ++m) {
    for (int i = 0; i < 3; ++i) {
      auto got = co_await members[m].read_message();
      CO_ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->data, "from " + std::to_string(i));
    }
  }
  EXPECT_EQ(room_.members.size(), 3u);
}

SQUALL_ASYNC_TEST(HandlerTest, AnOnMessageCallbackGetsMessagesThenNullopt) {
  start();
  std::vector<std::string> got;
  bool ended = false;
  WebSocketConnectOptions options;
  options.on_message = [&](std::optional<Message> m) {
    if (m) {
      got.push_back(m->data);
    } else {
      ended = true;
    }
  };
  auto ws = co_await websocket_connect(url("/echo"), options);
  co_await ws.write_message("a");
  co_await ws.write_message("b");
  ws.close(1000);
  co_await ws.wait_closed();
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ended);
}

SQUALL_ASYNC_TEST(HandlerTest, WorksOverTlsWithVerification) {
  testing::TestCerts certs;
  net::SSLOptions server_tls;
  server_tls.certfile = certs.server().cert;
  server_tls.keyfile = certs.server().key;
  start(net::SSLContext::server(server_tls));
  http::HTTPRequest request;
  request.url = url("/echo", "wss");
  request.ca_certs = certs.ca_file();
  auto ws = co_await websocket_connect(std::move(request));
  co_await ws.write_message("secret");
  EXPECT_EQ((co_await ws.read_message())->data, "secret");
  ws.close(1000);
  co_await ws.wait_closed();
  // Without the CA, verification fails.
  testing::ExpectLog server_side("squall.general", "", false);
  bool refused = false;
  try {
    co_await websocket_connect(url("/echo", "wss"));
  } catch (const net::SSLError&) {
    refused = true;
  } catch (const net::StreamClosedError&) {
    refused = true;
  }
  EXPECT_TRUE(refused);
}

}  // namespace
}  // namespace squall::websocket
