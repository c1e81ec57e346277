// HTTP1ServerConnection with a hand-written delegate over a socket pair:
// streaming bodies, flow control, and what the delegate is told when.
#include "squall/http/http1connection.hpp"

#include <sys/socket.h>

#include <string>
#include <vector>

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
    events.push_back("head " + std::string(line.method) + " " + std::string(line.target));
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
  std::vector<std::string> expected = {"head POST /up", "data 0123", "data 4567", "data 89", "finish"};
  EXPECT_EQ(f.events, expected);
  EXPECT_EQ(conn_->remote_ip(), "0.0.0.0");
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
  std::vector<std::string> paused = {"head POST /up", "data abc"};
  EXPECT_EQ(f.events, paused);
  gate.set_result();
  co_await client->read_until("ok");
  std::vector<std::string> done = {"head POST /up", "data abc", "data def", "finish"};
  EXPECT_EQ(f.events, done);
}

SQUALL_ASYNC_TEST(HTTP1ConnectionTest, TellsTheDelegateWhenTheClientLeavesMidBody) {
  Factory& f = factory_;
  auto client = serve(f);
  co_await client->write("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc");
  for (int i = 0; i < 100 && f.events.size() < 2; ++i) co_await sleep(1ms);
  client.reset();
  co_await with_timeout(2s, served_);
  std::vector<std::string> expected = {"head POST /up", "data abc", "close"};
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

}  // namespace
}  // namespace squall::http
