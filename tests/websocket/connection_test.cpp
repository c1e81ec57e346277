// WebSocketConnection over a socket pair, without a handshake: a server-role
// and a client-role connection talk to each other (or to a raw stream that
// writes exact bytes): messages, control frames, the close handshake and
// its timeout, back-pressure, limits, keep-alive pings, compression.
#include "squall/websocket/connection.hpp"

#include <sys/socket.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::websocket {
namespace {

std::pair<std::unique_ptr<net::IOStream>, std::unique_ptr<net::IOStream>> stream_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
  return {std::make_unique<net::IOStream>(UniqueFd(fds[0])), std::make_unique<net::IOStream>(UniqueFd(fds[1]))};
}

/// A delegate that records everything and lets a test wait for it.
class Collector : public ConnectionDelegate {
 public:
  std::deque<Message> messages;
  std::vector<std::string> pings, pongs;
  bool closed = false;
  /// When set, on_message returns this coroutine's Future.
  std::function<Future<void>(Message&)> handler;

  Future<void> on_message(Message message) override {
    messages.push_back(std::move(message));
    wake();
    if (handler) return handler(messages.back());
    return Future<void>(nullptr);
  }
  void on_ping(std::string_view data) override {
    pings.emplace_back(data);
    wake();
  }
  void on_pong(std::string_view data) override {
    pongs.emplace_back(data);
    wake();
  }
  void on_connection_close() override {
    closed = true;
    wake();
  }

  /// Waits (under the test's timeout) until `done()` holds.
  Future<void> until(std::function<bool()> done) {
    while (!done()) {
      waiter_ = Future<void>();
      Future<void> w = waiter_;
      co_await w;
    }
  }
  Future<Message> next() {
    co_await until([this] { return !messages.empty() || closed; });
    if (messages.empty()) throw std::runtime_error("closed before a message came");
    Message m = std::move(messages.front());
    messages.pop_front();
    co_return m;
  }
  /// Wakes until() to check its condition again.
  void wake() {
    if (waiter_.valid() && !waiter_.done()) {
      Future<void> w = std::move(waiter_);
      waiter_ = Future<void>(nullptr);
      w.set_result();
    }
  }

 private:
  Future<void> waiter_{nullptr};
};

class ConnectionTest : public testing::AsyncTest {
 protected:
  void TearDown() override {
    // A connection's reading loop keeps it alive until its TCP connection
    // ends: end them before the loop closes.
    for (auto* c : {&server_, &client_}) {
      if (*c) {
        (*c)->set_delegate(nullptr);
        (*c)->abort();
      }
    }
    io_loop().run_sync([this] { return wait_all_closed(); }, std::chrono::seconds(5));
    server_.reset();
    client_.reset();
    AsyncTest::TearDown();
  }
  Future<void> wait_all_closed() {
    if (server_) co_await server_->wait_closed();
    if (client_) co_await client_->wait_closed();
  }

  /// A connected server/client pair with the given options.
  void open(WebSocketOptions server_options = {}, WebSocketOptions client_options = {},
            std::optional<DeflateParameters> deflate = std::nullopt) {
    auto [a, b] = stream_pair();
    server_ = std::make_shared<WebSocketConnection>(std::move(a), Role::kServer, server_options, deflate);
    client_ = std::make_shared<WebSocketConnection>(std::move(b), Role::kClient, client_options, deflate);
    server_->start(&server_events_);
    client_->start(&client_events_);
  }

  std::shared_ptr<WebSocketConnection> server_, client_;
  Collector server_events_, client_events_;
};

SQUALL_ASYNC_TEST(ConnectionTest, MessagesTravelBothWaysWithTheirType) {
  open();
  co_await client_->write_message("hello server");
  co_await client_->write_message(std::string("\0\xff", 2), true);
  co_await client_->write_message("");
  Message m = co_await server_events_.next();
  EXPECT_EQ(m.data, "hello server");
  EXPECT_FALSE(m.binary);
  m = co_await server_events_.next();
  EXPECT_EQ(m.data, std::string("\0\xff", 2));
  EXPECT_TRUE(m.binary);
  m = co_await server_events_.next();
  EXPECT_EQ(m.data, "");
  std::string big(300000, 'x');
  big[12345] = 'y';
  server_->write_message(std::string(big), true);
  m = co_await client_events_.next();
  EXPECT_EQ(m.data, big);
  EXPECT_TRUE(m.binary);
}

SQUALL_ASYNC_TEST(ConnectionTest, PingsAreAnsweredWithTheSamePayload) {
  open();
  co_await client_->ping("are you there?");
  co_await client_events_.until([this] { return !client_events_.pongs.empty(); });
  EXPECT_EQ(client_events_.pongs, std::vector<std::string>{"are you there?"});
  EXPECT_EQ(server_events_.pings, std::vector<std::string>{"are you there?"});
  EXPECT_THROW(client_->ping(std::string(126, 'p')), std::invalid_argument);
}

SQUALL_ASYNC_TEST(ConnectionTest, ClientInitiatedCloseHandshake) {
  open();
  client_->close(1000, "bye");
  EXPECT_TRUE(client_->is_closing());
  co_await server_->wait_closed();
  co_await client_->wait_closed();
  EXPECT_TRUE(server_events_.closed);
  EXPECT_TRUE(client_events_.closed);
  EXPECT_EQ(server_->close_code(), 1000);
  EXPECT_EQ(server_->close_reason(), "bye");
  EXPECT_EQ(client_->close_code(), 1000);  // echoed
}

SQUALL_ASYNC_TEST(ConnectionTest, ServerInitiatedCloseHandshake) {
  open();
  server_->close(4000, "maintenance");
  co_await client_->wait_closed();
  co_await server_->wait_closed();
  EXPECT_EQ(client_->close_code(), 4000);
  EXPECT_EQ(client_->close_reason(), "maintenance");
  EXPECT_EQ(server_->close_code(), 4000);
}

SQUALL_ASYNC_TEST(ConnectionTest, ACloseWithoutCodeIsEchoedWithout) {
  open();
  client_->close();
  co_await server_->wait_closed();
  co_await client_->wait_closed();
  EXPECT_FALSE(server_->close_code().has_value());
  EXPECT_FALSE(client_->close_code().has_value());
}

SQUALL_ASYNC_TEST(ConnectionTest, WritesAfterCloseFailWithWebSocketClosedError) {
  open();
  client_->close(1000);
  bool failed = false;
  try {
    co_await client_->write_message("too late");
  } catch (const WebSocketClosedError&) {
    failed = true;
  }
  EXPECT_TRUE(failed);
  // Ignored failures are not logged (the test would fail on an error log).
  client_->write_message("ignored");
  client_->ping();
  co_await client_->wait_closed();
}

SQUALL_ASYNC_TEST(ConnectionTest, CloseRefusesCodesThatMayNotBeSent) {
  open();
  for (int code : {1005, 1006, 1015, 999, 2000, 5000}) EXPECT_THROW(client_->close(code), std::invalid_argument);
  EXPECT_THROW(client_->close(1000, std::string(124, 'r')), std::invalid_argument);
  EXPECT_THROW(client_->close(std::nullopt, "reason"), std::invalid_argument);
  EXPECT_FALSE(client_->is_closing());
  co_return;
}

SQUALL_ASYNC_TEST(ConnectionTest, APeerThatDropsTcpIsReportedWithoutACode) {
  open();
  client_->abort();
  co_await server_->wait_closed();
  EXPECT_TRUE(server_events_.closed);
  EXPECT_FALSE(server_->close_code().has_value());
}

SQUALL_ASYNC_TEST(ConnectionTest, OversizedMessagesCloseWith1009) {
  WebSocketOptions small;
  small.max_message_size = 1000;
  open(small, {});
  co_await client_->write_message(std::string(1000, 'a'));
  Message m = co_await server_events_.next();
  EXPECT_EQ(m.data.size(), 1000u);
  client_->write_message(std::string(1001, 'a'));
  co_await client_->wait_closed();
  EXPECT_EQ(client_->close_code(), close_code::kMessageTooBig);
  EXPECT_TRUE(server_events_.messages.empty());
}

SQUALL_ASYNC_TEST(ConnectionTest, TheNextMessageWaitsForTheHandlersCoroutine) {
  open();
  std::vector<std::string> order;
  server_events_.handler = [this, &order](Message& m) -> Future<void> {
    std::string text = m.data;  // copied: the deque may move
    order.push_back("start " + text);
    co_await squall::sleep(20ms);
    order.push_back("end " + text);
    server_events_.wake();
  };
  client_->write_message("one");
  client_->write_message("two");
  co_await server_events_.until([&] { return order.size() == 4; });
  EXPECT_EQ(order, (std::vector<std::string>{"start one", "end one", "start two", "end two"}));
}

SQUALL_ASYNC_TEST(ConnectionTest, AHandlerStillBusyWhenThePeerLeavesIsCancelled) {
  open();
  bool cancelled = false;
  Future<void> forever;  // never resolved
  server_events_.handler = [&](Message&) -> Future<void> {
    try {
      co_await forever;
    } catch (const CancelledError&) {
      cancelled = true;
      throw;
    }
  };
  co_await client_->write_message("work");
  co_await server_events_.until([&] { return !server_events_.messages.empty(); });
  client_->abort();
  co_await server_->wait_closed();
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(server_events_.closed);
}

SQUALL_ASYNC_TEST(ConnectionTest, AnExceptionInOnMessageIsLoggedAndDropsTheConnection) {
  testing::ExpectLog expect("squall.application", "Uncaught exception in WebSocket on_message: boom");
  open();
  server_events_.handler = [](Message&) -> Future<void> { throw std::runtime_error("boom"); };
  client_->write_message("x");
  co_await server_->wait_closed();
  co_await client_->wait_closed();
  EXPECT_TRUE(client_events_.closed);
}

SQUALL_ASYNC_TEST(ConnectionTest, WriteFuturesApplyBackPressure) {
  open();
  // The client does not read for now: a big message cannot all go out.
  std::string big(8u << 20, 'b');
  Future<void> written = server_->write_message(std::move(big), true);
  co_await squall::sleep(10ms);
  EXPECT_FALSE(written.done());
  Message m = co_await client_events_.next();  // the client reads: the write completes
  EXPECT_EQ(m.data.size(), 8u << 20);
  co_await written;
}

SQUALL_ASYNC_TEST(ConnectionTest, PreparedMessagesShareOneFrame) {
  open();
  PreparedMessage news("breaking news", false);
  co_await server_->write_message(news);
  co_await server_->write_message(news);
  Message a = co_await client_events_.next();
  Message b = co_await client_events_.next();
  EXPECT_EQ(a.data, "breaking news");
  EXPECT_EQ(b.data, "breaking news");
  EXPECT_THROW(client_->write_message(news), std::logic_error);
}

SQUALL_ASYNC_TEST(ConnectionTest, CompressedConnectionsRoundTrip) {
  DeflateParameters p;
  p.client_no_context_takeover = true;
  open({}, {}, p);
  EXPECT_TRUE(server_->compressed());
  for (int i = 0; i < 3; ++i) {
    co_await client_->write_message("compressible compressible compressible " + std::to_string(i));
    Message m = co_await server_events_.next();
    EXPECT_EQ(m.data, "compressible compressible compressible " + std::to_string(i));
    server_->write_message(PreparedMessage("prepared " + std::to_string(i), false));
    m = co_await client_events_.next();
    EXPECT_EQ(m.data, "prepared " + std::to_string(i));
  }
}

// --- against a raw peer -----------------------------------------------------------------------

class RawPeerTest : public testing::AsyncTest {
 protected:
  bool use_virtual_clock() const override { return true; }
  // Virtual time: the keep-alive cases span a minute of it in no real time.
  Duration async_test_timeout() const override { return std::chrono::minutes(5); }
  void TearDown() override {
    if (conn_) {
      conn_->set_delegate(nullptr);
      conn_->abort();
      io_loop().run_sync([this] { return conn_->wait_closed(); }, std::chrono::seconds(5));
    }
    conn_.reset();
    raw_.reset();
    AsyncTest::TearDown();
  }
  void open(Role role, WebSocketOptions options = {}) {
    auto [a, b] = stream_pair();
    conn_ = std::make_shared<WebSocketConnection>(std::move(a), role, options);
    raw_ = std::move(b);
    conn_->start(&events_);
  }
  /// True once the connection closed the raw peer's socket.
  Future<bool> raw_sees_eof() {
    bool eof = false;
    try {
      for (;;) {
        raw_->consume(raw_->buffered().size());
        co_await raw_->read_more();
      }
    } catch (const net::StreamClosedError&) {
      eof = true;
    }
    co_return eof;
  }
  std::shared_ptr<WebSocketConnection> conn_;
  std::unique_ptr<net::IOStream> raw_;
  Collector events_;
};

SQUALL_ASYNC_TEST(RawPeerTest, ThePeerNotAnsweringCloseIsDroppedAfterTheCloseTimeout) {
  WebSocketOptions o;
  o.close_timeout = 3s;
  open(Role::kServer, o);
  TimePoint start = io_loop().time();
  conn_->close(1001);
  std::string frame = co_await raw_->read_bytes(4);
  EXPECT_EQ(frame, std::string("\x88\x02\x03\xe9", 4));
  EXPECT_TRUE(co_await raw_sees_eof());
  EXPECT_GE(io_loop().time() - start, 3s);
  co_await conn_->wait_closed();
}

SQUALL_ASYNC_TEST(RawPeerTest, PingsWithoutAnswerCloseTheConnection) {
  WebSocketOptions o;
  o.ping_interval = 10s;
  o.ping_timeout = 25s;
  o.close_timeout = 1s;
  open(Role::kServer, o);
  TimePoint start = io_loop().time();
  Future<bool> eof = raw_sees_eof();  // reads (and drops) the pings, never answers
  co_await conn_->wait_closed();
  EXPECT_TRUE(co_await std::move(eof));
  // Pings at 10, 20, 30 s; at 30 s nothing came for 30 > 25 s: close, then
  // the close timeout.
  EXPECT_GE(io_loop().time() - start, 30s);
  EXPECT_LE(io_loop().time() - start, 32s);
}

SQUALL_ASYNC_TEST(RawPeerTest, AnsweredPingsKeepTheConnectionOpen) {
  WebSocketOptions o;
  o.ping_interval = 10s;
  o.ping_timeout = 15s;
  open(Role::kClient, o);
  TimePoint start = io_loop().time();
  // Act as a server that answers every ping (with an unmasked pong).
  for (int i = 0; i < 5; ++i) {
    std::string ping = co_await raw_->read_bytes(6);  // masked empty ping: 2 + 4 bytes of key
    EXPECT_EQ(static_cast<unsigned char>(ping[0]), 0x89);
    co_await raw_->write(std::string("\x8a\x00", 2));
  }
  EXPECT_FALSE(conn_->is_closing());
  EXPECT_GE(io_loop().time() - start, 50s);
}

SQUALL_ASYNC_TEST(RawPeerTest, AProtocolErrorSendsItsCodeAndClosesTcp) {
  open(Role::kServer);
  co_await raw_->write(std::string("\x81\x02hi", 4));  // unmasked client frame
  std::string close = co_await raw_->read_bytes(4);
  EXPECT_EQ(close.substr(0, 4), std::string("\x88", 1) + close[1] + "\x03\xea");  // 1002
  EXPECT_TRUE(co_await raw_sees_eof());
  co_await conn_->wait_closed();
  EXPECT_TRUE(events_.closed);
}

}  // namespace
}  // namespace squall::websocket
