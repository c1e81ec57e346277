// Per-request body limits (HTTPConnection::set_max_body_size and
// set_body_timeout, Tornado's HTTP1Connection methods of the same names):
// a delegate raises or lowers them for its own request, over real loopback
// sockets, and the next request on the connection gets the server's again.
#include <string>
#include <vector>

#include "server_test_client.hpp"
#include "server_test_fixture.hpp"
#include "squall/core/gen.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

using test::closed_by_server;
using test::connect_to;
using test::exchange;
using test::read_response;
using test::Response;

/// The server's limits in these tests; the paths change them:
///   /raise        max_body_size 1000, from headers_received
///   /later-raise  max_body_size 1000, set just before the Future that
///                 headers_received returned resolves (a web handler's
///                 prepare() works this way)
///   /lower        max_body_size 5
///   /slow         body_timeout 100 ms
///   anything else the server's limits
constexpr std::uint64_t kServerMaxBody = 10;

struct Log {
  std::vector<std::string> events;
};

class LimitSetter final : public HTTPMessageDelegate {
 public:
  LimitSetter(HTTPConnection& conn, Log& log) : conn_(conn), log_(log) {}

  Future<void> headers_received(const RequestStartLine& line, HTTPHeaders&) override {
    std::string target(line.target);
    log_.events.push_back("head " + target);
    if (target == "/raise") {
      conn_.set_max_body_size(1000);
    } else if (target == "/lower") {
      conn_.set_max_body_size(5);
    } else if (target == "/slow") {
      conn_.set_body_timeout(100ms);
    } else if (target == "/later-raise") {
      return raise_later();
    }
    return Future<void>(nullptr);
  }
  Future<void> data_received(std::string_view chunk) override {
    body_ += chunk;
    return Future<void>(nullptr);
  }
  Future<void> finish() override {
    log_.events.push_back("finish " + std::to_string(body_.size()));
    HTTPHeaders h;
    h.add("Content-Length", std::to_string(body_.size()));
    conn_.write_headers(200, "OK", h, body_);
    conn_.finish();
    return Future<void>(nullptr);
  }
  void on_connection_close() override { log_.events.push_back("close"); }

 private:
  Future<void> raise_later() {
    co_await sleep(10ms);  // the connection waits, and reads nothing meanwhile
    conn_.set_max_body_size(1000);
  }

  HTTPConnection& conn_;
  Log& log_;
  std::string body_;
};

struct LimitSetterFactory final : HTTPServerConnectionDelegate {
  Log log;
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection&, HTTPConnection& conn) override {
    return std::make_unique<LimitSetter>(conn, log);
  }
};

class BodyLimitsTest : public test::ServerTest {
 protected:
  void start() {
    HTTPServerOptions options;
    options.max_body_size = kServerMaxBody;
    options.body_timeout = 30s;  // longer than the test's own timeout
    serve(std::make_unique<HTTPServer>(factory_, std::move(options)));
  }
  static std::string post(std::string_view path, std::size_t length, std::string_view body = {}) {
    return "POST " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) +
           "\r\n\r\n" + std::string(body);
  }

  LimitSetterFactory factory_;  // used by server_ until TearDown() resets it
};

SQUALL_ASYNC_TEST(BodyLimitsTest, RaisedLimitAcceptsADeclaredBodyOverTheServerLimit) {
  start();
  std::string body(100, 'b');
  Response plain = co_await exchange(port_, post("/plain", body.size()));  // no body sent: refused from the head
  EXPECT_EQ(plain.code, 413);
  Response raised = co_await exchange(port_, post("/raise", body.size(), body));
  EXPECT_EQ(raised.code, 200);
  EXPECT_EQ(raised.body, body);
  // Over the raised limit: refused before the body, which is never sent.
  Response over = co_await exchange(port_, post("/raise", 1001));
  EXPECT_EQ(over.code, 413);
}

SQUALL_ASYNC_TEST(BodyLimitsTest, ChecksContentLengthOnlyAfterHeadersReceivedResolved) {
  // Tornado's timing: a delegate that runs something first (a streaming
  // handler's prepare()) sets the limit before the body reading starts.
  start();
  std::string body(100, 'l');
  Response r = co_await exchange(port_, post("/later-raise", body.size(), body));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, body);
}

SQUALL_ASYNC_TEST(BodyLimitsTest, LoweredLimitRefusesADeclaredBodyAndTellsTheDelegate) {
  start();
  auto s = connect_to(port_);
  // Expect: 100-continue: a refused body gets no 100 Continue, only the 413.
  co_await s->write("POST /lower HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 413);
  EXPECT_EQ(r.headers.get("Connection", ""), "close");
  std::vector<std::string> expected = {"head /lower", "close"};
  EXPECT_EQ(factory_.log.events, expected);
  // Within the lowered limit it is served.
  Response fits = co_await exchange(port_, post("/lower", 5, "12345"));
  EXPECT_EQ(fits.code, 200);
  EXPECT_EQ(fits.body, "12345");
}

SQUALL_ASYNC_TEST(BodyLimitsTest, LoweredLimitRefusesAChunkedBodyAsItArrives) {
  start();
  auto s = connect_to(port_);
  // Each chunk fits the server's limit; the total passes the lowered one.
  co_await s->write("POST /lower HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  co_await s->write("3\r\ndef\r\n0\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 413);
  std::vector<std::string> expected = {"head /lower", "close"};
  EXPECT_EQ(factory_.log.events, expected);
  // The same body within the server's limit is fine.
  Response plain = co_await exchange(
      port_, "POST /plain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
  EXPECT_EQ(plain.code, 200);
  EXPECT_EQ(plain.body, "abcdef");
}

SQUALL_ASYNC_TEST(BodyLimitsTest, NextRequestOnTheConnectionUsesTheServerLimitAgain) {
  start();
  auto s = connect_to(port_);
  std::string body(100, 'k');
  co_await s->write(post("/raise", body.size(), body));
  Response raised = co_await read_response(*s);
  EXPECT_EQ(raised.code, 200);
  EXPECT_EQ(raised.headers.get("Connection", "keep-alive"), "keep-alive");
  // Same connection, no limit set: the server's 10 bytes apply.
  co_await s->write(post("/plain", kServerMaxBody + 1));
  Response plain = co_await read_response(*s);
  EXPECT_EQ(plain.code, 413);
  EXPECT_TRUE(co_await closed_by_server(*s));
}

SQUALL_ASYNC_TEST(BodyLimitsTest, LoweredBodyTimeoutClosesASlowBody) {
  start();
  auto s = connect_to(port_);
  co_await s->write(post("/slow", 10, "abc"));  // 7 bytes short, for good
  auto begin = io_loop().time();
  // The server's body_timeout (30 s) would outlast this wait: the test fails.
  bool closed = co_await with_timeout(5s, closed_by_server(*s));
  EXPECT_TRUE(closed);
  EXPECT_GE(io_loop().time() - begin, 90ms);
  std::vector<std::string> expected = {"head /slow", "close"};
  EXPECT_EQ(factory_.log.events, expected);
}

SQUALL_ASYNC_TEST(BodyLimitsTest, BodyTimeoutIsBackToTheServersForTheNextRequest) {
  start();
  auto s = connect_to(port_);
  co_await s->write(post("/slow", 3, "abc"));  // complete: no timeout
  Response slow = co_await read_response(*s);
  EXPECT_EQ(slow.code, 200);
  co_await s->write(post("/plain", 4, "ab"));  // 2 bytes short
  // Well past the 100 ms the previous request had: still open.
  co_await sleep(400ms);
  co_await s->write("cd");
  Response plain = co_await read_response(*s);
  EXPECT_EQ(plain.code, 200);
  EXPECT_EQ(plain.body, "abcd");
}

}  // namespace
}  // namespace squall::http
