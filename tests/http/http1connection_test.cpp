// HTTP1ServerConnection with a hand-written delegate over a socket pair:
// streaming bodies, flow control, and what the delegate is told when.
#include "squall/http/http1connection.hpp"

#include <sys/socket.h>

#include <string>
#include <vector>

#include "server_test_client.hpp"
#include "squall/core/gen.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

/// Records every call; can hold data_received's Future pending (flow control).
struct Recorder : HTTPMessageDelegate {
  HTTPConnection& conn;
  std::vector<std::string>& events;
  Future<void>* gate;
  explicit Recorder(HTTPConnection& c, std::vector<std::string>& e, Future<void>* g) : conn(c), events(e), gate(g) {}

  Future<void> headers_received(const RequestStartLine& line, HTTPHeaders&) override {
    events.push_back("head " + std::string(line.method) + " " + std::string(line.target) + " from " +
                     std::string(static_cast<HTTP1ServerConnection&>(conn).remote_ip()));
    if (line.target == "/missing") {
      // Answers from the head alone, as a router does for an unknown path.
      HTTPHeaders h;
      h.add("Content-Length", "0");
      conn.write_headers(404, "", h);
      conn.finish();
    }
    return Future<void>(nullptr);
  }
  Future<void> data_received(std::string_view chunk) override {
    events.push_back("data " + std::string(chunk));
    if (gate && !gate->valid()) {
      *gate = Future<void>();
      return *gate;
    }
    return Future<void>(nullptr);
  }
  Future<void> finish() override {
    events.push_back("finish");
    if (static_cast<HTTP1ServerConnection&>(conn).response_started()) return Future<void>(nullptr);
    HTTPHeaders h;
    h.add("Content-Length", "2");
    conn.write_headers(200, "OK", h, "ok");
    conn.finish();
    return Future<void>(nullptr);
  }
  void on_connection_close() override { events.push_back("close"); }
};

struct Factory : HTTPServerConnectionDelegate {
  std::vector<std::string> events;
  Future<void>* gate = nullptr;
  int closed = 0;
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection&, HTTPConnection& conn) override {
    return std::make_unique<Recorder>(conn, events, gate);
  }
  void on_close(HTTP1ServerConnection&) override { ++closed; }
};

class HTTP1ConnectionTest : public testing::AsyncTest {
 protected:
  /// A connection serving `factory` on one end of a socket pair; the other
  /// end is returned.
  std::unique_ptr<net::IOStream> serve(Factory& factory, HTTP1ConnectionParameters params = {}) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    conn_ = std::make_unique<HTTP1ServerConnection>(std::make_unique<net::IOStream>(UniqueFd(fds[0])), "", std::move(params));
    served_ = conn_->serve(factory);
    return std::make_unique<net::IOStream>(UniqueFd(fds[1]));
  }
  void TearDown() override {
    if (conn_) conn_->close();
    conn_.reset();
    factory_.gate = nullptr;
    AsyncTest::TearDown();
  }
  Factory factory_;  // outlives the connection, closed in TearDown
  std::unique_ptr<HTTP1ServerConnection> conn_;
  Future<void> served_{nullptr};
};

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, StreamsTheBodyInChunkSizePieces) {
  Factory& f = factory_;
  HTTP1ConnectionParameters params;
  params.chunk_size = 4;
  auto client = serve(f, params);
  co_await client->write("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
  std::string answer = co_await client->read_until("ok");
  EXPECT_NE(answer.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
  // A unix socket's peer has no IP: Tornado's "0.0.0.0".
  std::vector<std::string> expected = {"head POST /up from 0.0.0.0", "data 0123", "data 4567", "data 89", "finish"};
  EXPECT_EQ(f.events, expected);
}

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, PausesReadingWhileDataReceivedIsPending) {
  Factory& f = factory_;
  Future<void> gate(nullptr);
  f.gate = &gate;
  HTTP1ConnectionParameters params;
  params.chunk_size = 3;
  auto client = serve(f, params);
  co_await client->write("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef");
  for (int i = 0; i < 100 && !gate.valid(); ++i) co_await sleep(1ms);
  CO_ASSERT_TRUE(gate.valid());
  co_await sleep(20ms);
  std::vector<std::string> paused = {"head POST /up from 0.0.0.0", "data abc"};
  EXPECT_EQ(f.events, paused);
  gate.set_result();
  co_await client->read_until("ok");
  std::vector<std::string> done = {"head POST /up from 0.0.0.0", "data abc", "data def", "finish"};
  EXPECT_EQ(f.events, done);
}

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, TellsTheDelegateWhenTheClientLeavesMidBody) {
  Factory& f = factory_;
  auto client = serve(f);
  co_await client->write("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc");
  for (int i = 0; i < 100 && f.events.size() < 2; ++i) co_await sleep(1ms);
  client.reset();
  co_await with_timeout(2s, served_);
  std::vector<std::string> expected = {"head POST /up from 0.0.0.0", "data abc", "close"};
  EXPECT_EQ(f.events, expected);
  EXPECT_EQ(f.closed, 1);
}

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, ClosesAnIdleConnectionAfterTheIdleTimeout) {
  Factory& f = factory_;
  HTTP1ConnectionParameters params;
  params.idle_connection_timeout = 100ms;
  auto client = serve(f, params);
  auto begin = io_loop().time();
  co_await with_timeout(2s, served_);
  EXPECT_GE(io_loop().time() - begin, 100ms);
  EXPECT_TRUE(f.events.empty());
}

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, SkipsContinueWhenTheDelegateAnswersFromTheHead) {
  // CONFORMANCE 2.5: a request about to be refused gets only the final answer.
  Factory& f = factory_;
  auto client = serve(f);
  co_await client->write("POST /missing HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  test::Response r = co_await test::read_response(*client);
  EXPECT_EQ(r.code, 404);
  // The client may or may not send the body now: the connection cannot go on.
  EXPECT_EQ(r.headers.get("Connection", ""), "close");
  EXPECT_TRUE(co_await test::closed_by_server(*client));
  co_await with_timeout(2s, served_);
}

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, ClosesWhenIdleOnlyBetweenRequests) {
  Factory& f = factory_;
  Future<void> gate(nullptr);
  f.gate = &gate;
  auto client = serve(f);
  co_await client->write("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab");
  for (int i = 0; i < 100 && !gate.valid(); ++i) co_await sleep(1ms);
  CO_ASSERT_TRUE(gate.valid());
  EXPECT_FALSE(conn_->idle());
  conn_->close_when_idle();  // mid-request: finishes it first
  gate.set_result();
  test::Response r = co_await test::read_response(*client);
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(r.headers.get("Connection", ""), "close");
  EXPECT_TRUE(co_await test::closed_by_server(*client));
  co_await with_timeout(2s, served_);
  EXPECT_EQ(f.closed, 1);
}

/// Owns its connections and frees each in on_close, as HTTPServer does.
struct OwningFactory : HTTPServerConnectionDelegate {
  std::vector<std::string> events;
  int closed = 0;
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection&, HTTPConnection& conn) override {
    return std::make_unique<Recorder>(conn, events, nullptr);
  }
  void on_close(HTTP1ServerConnection& conn) override {
    ++closed;
    std::unique_ptr<HTTP1ServerConnection> owned(&conn);
  }
};

std::pair<std::unique_ptr<net::IOStream>, HTTP1ServerConnection*> start_owned(
    OwningFactory& factory, std::shared_ptr<HTTP1ServerConnection::Context> context) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
  auto conn = std::make_unique<HTTP1ServerConnection>(std::make_unique<net::IOStream>(UniqueFd(fds[0])), "", context);
  HTTP1ServerConnection* raw = conn.release();  // freed by factory.on_close
  raw->start(factory);
  return {std::make_unique<net::IOStream>(UniqueFd(fds[1])), raw};
}

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, EnforcesTheHeaderDeadlinesOfManyConnectionsInOrder) {
  // Connections sharing a context share one timer for their header
  // deadlines: each still gets its own deadline, counted from its start.
  OwningFactory f;
  HTTP1ConnectionParameters params;
  params.header_timeout = 150ms;
  auto context = HTTP1ServerConnection::make_context(params);
  std::vector<std::unique_ptr<net::IOStream>> clients;
  std::vector<TimePoint> started;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(start_owned(f, context).first);
    started.push_back(io_loop().time());
    co_await clients.back()->write("GET /slow HTTP/1.1\r\nHost: x\r\n");  // never finished
    co_await sleep(40ms);
  }
  auto fast = start_owned(f, context).first;
  for (int i = 0; i < 3; ++i) {
    test::Response r = co_await test::read_response(*clients[i]);
    Duration after = io_loop().time() - started[i];
    EXPECT_EQ(r.code, 408) << i;
    EXPECT_GE(after, 140ms) << i;
    EXPECT_LT(after, 1000ms) << i;
  }
  // A head that arrives in time is served, on its own schedule.
  co_await fast->write("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n");
  test::Response r = co_await test::read_response(*fast);
  EXPECT_EQ(r.body, "ok");
  fast.reset();
  for (auto& c : clients) EXPECT_TRUE(co_await test::closed_by_server(*c));
  for (int i = 0; i < 200 && f.closed < 4; ++i) co_await sleep(5ms);
  EXPECT_EQ(f.closed, 4);  // each freed itself in on_close (ASan checks the rest)
}

}  // namespace
}  // namespace squall::http
