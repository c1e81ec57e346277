// HTTPServer over real loopback sockets: raw clients write exact bytes and
// read exact answers, for every rule of CONFORMANCE_APP.md section 2, plus
// curl and Tornado's HTTPClient as outside clients.
#include "squall/http/httpserver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/http/parser.hpp"
#include "squall/net/process.hpp"
#include "squall/testing.hpp"
#include "server_test_client.hpp"
#include "server_test_fixture.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

using test::closed_by_server;
using test::connect_to;
using test::exchange;
using test::read_response;
using test::Response;

class HTTPServerTest : public test::ServerTest {
 protected:
  /// A small application covering what the tests need.
  Future<void> handle(HTTPServerRequest& req) override {
    if (req.path == "/hello") {
      req.respond(200, "text/plain; charset=utf-8", "Hello, world");
    } else if (req.path == "/echo") {
      req.respond(200, req.headers.get("Content-Type", "application/octet-stream"), req.body);
    } else if (req.path == "/stream") {
      HTTPHeaders h;
      req.write_headers(200, h, "one,");
      req.write("two,");
      req.write("three");
      req.finish();
    } else if (req.path == "/sleep") {
      co_await sleep(100ms);
      req.respond(200, "text/plain", "slept");
    } else if (req.path == "/throw") {
      throw std::runtime_error("secret detail");
    } else if (req.path == "/ip") {
      req.respond(200, "text/plain", req.remote_ip + " " + req.protocol);
    } else if (req.path == "/args") {
      std::string out;
      for (auto& [k, vs] : req.query_arguments()) {
        for (auto& v : vs) out += k + "=[" + v + "];";
      }
      req.respond(200, "text/plain", out);
    } else if (req.path == "/empty") {
      HTTPHeaders h;
      req.write_headers(204, h);
      req.finish();
    } else {
      req.respond(404, "application/json", R"({"status": 404, "reason": "Not Found"})");
    }
  }
};

SQUALL_ASYNC_TEST(HTTPServerTest, AnswersAGetWithDateServerAndContentLength) {
  start();
  Response r = co_await exchange(port_, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello, world");
  EXPECT_EQ(r.headers.get("Content-Length", ""), "12");
  EXPECT_EQ(r.headers.get("Server", ""), "squall");
  EXPECT_EQ(r.headers.get("Date", "").size(), 29u);  // "Sun, 06 Nov 1994 08:49:37 GMT"
  EXPECT_FALSE(r.headers.contains("Transfer-Encoding"));
}

SQUALL_ASYNC_TEST(HTTPServerTest, KeepsHttp11ConnectionsOpen) {
  start();
  auto s = connect_to(port_);
  for (int i = 0; i < 3; ++i) {
    co_await s->write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    Response r = co_await read_response(*s);
    EXPECT_EQ(r.body, "Hello, world");
    EXPECT_FALSE(r.headers.contains("Connection"));
  }
  EXPECT_EQ(requests_, 3);
}

SQUALL_ASYNC_TEST(HTTPServerTest, ClosesAfterConnectionClose) {
  start();
  auto s = connect_to(port_);
  co_await s->write("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.headers.get("Connection", ""), "close");
  EXPECT_TRUE(co_await closed_by_server(*s));
}

SQUALL_ASYNC_TEST(HTTPServerTest, ClosesHttp10UnlessKeepAliveIsAsked) {
  start();
  auto s = connect_to(port_);
  co_await s->write("GET /hello HTTP/1.0\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.body, "Hello, world");
  EXPECT_TRUE(co_await closed_by_server(*s));

  auto k = connect_to(port_);
  co_await k->write("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  r = co_await read_response(*k);
  EXPECT_EQ(r.headers.get("Connection", ""), "keep-alive");
  co_await k->write("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  r = co_await read_response(*k);
  EXPECT_EQ(r.body, "Hello, world");
}

SQUALL_ASYNC_TEST(HTTPServerTest, AnswersHundredPipelinedRequestsInOrder) {
  start();
  auto s = connect_to(port_);
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += "GET /args?i=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  co_await s->write(std::move(batch));
  for (int i = 0; i < 100; ++i) {
    Response r = co_await read_response(*s);
    EXPECT_EQ(r.body, "i=[" + std::to_string(i) + "];");
  }
}

SQUALL_ASYNC_TEST(HTTPServerTest, ChunksResponsesWithoutLengthForHttp11Only) {
  start();
  Response r = co_await exchange(port_, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.headers.get("Transfer-Encoding", ""), "chunked");
  EXPECT_FALSE(r.headers.contains("Content-Length"));
  EXPECT_EQ(r.body, "one,two,three");

  Response old = co_await exchange(port_, "GET /stream HTTP/1.0\r\n\r\n");
  EXPECT_FALSE(old.headers.contains("Transfer-Encoding"));
  EXPECT_TRUE(old.closed);
  EXPECT_EQ(old.body, "one,two,three");
}

SQUALL_ASYNC_TEST(HTTPServerTest, HeadAnd204HaveNoBody) {
  start();
  auto s = connect_to(port_);
  co_await s->write("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  Response head = co_await read_response(*s, true);
  EXPECT_EQ(head.code, 200);
  EXPECT_EQ(head.headers.get("Content-Length", ""), "12");
  EXPECT_EQ(head.body, "");
  Response empty = co_await read_response(*s);
  EXPECT_EQ(empty.code, 204);
  EXPECT_FALSE(empty.headers.contains("Transfer-Encoding"));
  EXPECT_FALSE(empty.headers.contains("Content-Length"));
  Response after = co_await read_response(*s);  // framing stayed right
  EXPECT_EQ(after.body, "Hello, world");
}

SQUALL_ASYNC_TEST(HTTPServerTest, AcceptsAbsoluteFormTargets) {
  start();
  Response r = co_await exchange(port_, "GET http://example.com:8080/args?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "a=[1];");
}

SQUALL_ASYNC_TEST(HTTPServerTest, DecodesQueryArguments) {
  start();
  Response r = co_await exchange(port_, "GET /args?a=1&a=2&w=+x%20&f HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "a=[1];a=[2];f=[];w=[ x ];");
}

struct BadRequest {
  const char* name;
  const char* request;
  int status;
};

SQUALL_ASYNC_TEST(HTTPServerTest, RejectsMalformedRequestsAndCloses) {
  start();
  // CONFORMANCE 2.3 and 2.4, each with its status.
  const std::vector<BadRequest> cases = {
      {"missing version", "GET /hello\r\nHost: x\r\n\r\n", 400},
      {"space in target", "GET /he llo HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"bad version", "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"no host", "GET /hello HTTP/1.1\r\n\r\n", 400},
      {"two hosts", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"space before colon", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 1\r\n\r\nx", 400},
      {"no colon", "GET /hello HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400},
      {"signed length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400},
      {"conflicting lengths", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400},
      {"length and chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"unknown coding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"bare CR", "GET /hello HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400},
      {"bad chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400},
  };
  for (const BadRequest& c : cases) {
    auto s = connect_to(port_);
    co_await s->write(std::string(c.request));
    Response r = co_await read_response(*s);
    EXPECT_EQ(r.code, c.status) << c.name;
    EXPECT_EQ(r.headers.get("Connection", ""), "close") << c.name;
    EXPECT_NE(r.body.find("\"status\": " + std::to_string(c.status)), std::string::npos) << c.name;
    EXPECT_TRUE(co_await closed_by_server(*s)) << c.name;
  }
  EXPECT_EQ(requests_, 0);
}

SQUALL_ASYNC_TEST(HTTPServerTest, AcceptsA64KHeaderSectionAndRejectsMore) {
  start();
  std::string big(16 * 1024, 'a');
  std::string ok = "GET /hello HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 3; ++i) ok += "X-Big" + std::to_string(i) + ": " + big + "\r\n";
  Response r = co_await exchange(port_, ok + "\r\n");
  EXPECT_EQ(r.code, 200);
  std::string too_big = "GET /hello HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 5; ++i) too_big += "X-Big" + std::to_string(i) + ": " + big + "\r\n";
  r = co_await exchange(port_, too_big + "\r\n");
  EXPECT_EQ(r.code, 431);
}

SQUALL_ASYNC_TEST(HTTPServerTest, RefusesADeclaredOversizedBodyWithoutReadingIt) {
  HTTPServerOptions options;
  options.max_body_size = 10;
  start(std::move(options));
  // The body is never sent: the 413 must come from the head alone.
  Response r = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
  EXPECT_EQ(r.code, 413);
  Response fits = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
  EXPECT_EQ(fits.body, "0123456789");
  Response chunked = co_await exchange(
      port_, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n012345\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.code, 413);
  EXPECT_EQ(requests_, 1);
}

SQUALL_ASYNC_TEST(HTTPServerTest, DecodesChunkedBodiesSplitAtEveryByte) {
  start();
  const std::string request =
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=\"quoted;value\"\r\nhello\r\n1 ; ext\r\n,\r\nA\r\n0123456789\r\n0\r\nTrailer: yes\r\n\r\n";
  for (std::size_t split = 1; split < request.size(); ++split) {
    auto s = connect_to(port_);
    co_await s->write(request.substr(0, split));
    co_await moment();
    co_await s->write(request.substr(split));
    Response r = co_await read_response(*s);
    EXPECT_EQ(r.body, "hello,0123456789") << "split at " << split;
  }
}

SQUALL_ASYNC_TEST(HTTPServerTest, SendsContinueOnlyWhenTheBodyWillBeRead) {
  HTTPServerOptions options;
  options.max_body_size = 100;
  start(std::move(options));
  auto s = connect_to(port_);
  co_await s->write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = co_await s->read_until("\r\n\r\n");
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  co_await s->write("hello");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.body, "hello");

  // Too large: only the final answer.
  auto big = connect_to(port_);
  co_await big->write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n");
  r = co_await read_response(*big);
  EXPECT_EQ(r.code, 413);

  // HTTP/1.0 ignores Expect: the first thing back is the answer.
  auto old = connect_to(port_);
  co_await old->write("POST /echo HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi");
  r = co_await read_response(*old);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "hi");
}

SQUALL_ASYNC_TEST(HTTPServerTest, CutsOffASlowLorisAtTheHeaderTimeout) {
  HTTPServerOptions options;
  options.header_timeout = 300ms;
  start(std::move(options));
  auto s = connect_to(port_);
  auto begin = io_loop().time();
  bool closed = false;
  // One header byte every 50 ms: arriving bytes must not restart the clock.
  const std::string trickle = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  for (char c : trickle) {
    bool failed = false;
    try {
      co_await s->write(std::string(1, c));
    } catch (const net::StreamClosedError&) {
      failed = true;
    }
    if (failed || s->closed()) break;
    co_await sleep(50ms);
  }
  closed = s->closed() || co_await closed_by_server(*s);
  EXPECT_TRUE(closed);
  auto elapsed = io_loop().time() - begin;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_EQ(requests_, 0);
}

SQUALL_ASYNC_TEST(HTTPServerTest, SurvivesAClientLeavingMidBody) {
  start();
  {
    auto s = connect_to(port_);
    co_await s->write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part");
    co_await moment();
  }  // closed mid-body
  auto chunked = connect_to(port_);
  co_await chunked->write("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
  chunked.reset();
  auto sleeper = connect_to(port_);
  co_await sleeper->write("GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n");
  co_await moment();
  sleeper.reset();  // the handler is working: its coroutine is cancelled
  Response r = co_await exchange(port_, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "Hello, world");
  for (int i = 0; i < 100 && server_->connection_count() > 0; ++i) co_await sleep(10ms);
  EXPECT_EQ(server_->connection_count(), 0u);
}

SQUALL_ASYNC_TEST(HTTPServerTest, AnswersAHandlerExceptionWith500WithoutDetails) {
  start();
  testing::ExpectLog expect("squall.application", "Uncaught exception");
  auto s = connect_to(port_);
  co_await s->write("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  co_await s->write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");  // and goes on
  r = co_await read_response(*s);
  EXPECT_EQ(r.code, 200);
}

SQUALL_ASYNC_TEST(HTTPServerTest, WaitsForCoroutineHandlers) {
  start();
  Response r = co_await exchange(port_, "GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "slept");
}

std::string gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(static_cast<uLong>(data.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

SQUALL_ASYNC_TEST(HTTPServerTest, DecompressesGzipBodiesWhenAsked) {
  HTTPServerOptions options;
  options.decompress_request = true;
  options.max_body_size = 5000;
  start(std::move(options));
  std::string plain(4000, 'z');
  std::string packed = gzip(plain);
  Response r = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: " +
                                            std::to_string(packed.size()) + "\r\n\r\n" + packed);
  EXPECT_EQ(r.body, plain);
  // A small bomb: fine on the wire, too large once decoded.
  std::string bomb = gzip(std::string(100000, 'z'));
  r = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: " +
                                   std::to_string(bomb.size()) + "\r\n\r\n" + bomb);
  EXPECT_EQ(r.code, 413);
}

SQUALL_ASYNC_TEST(HTTPServerTest, TrustsProxyHeadersOnlyWithXheaders) {
  start();
  const std::string req = "GET /ip HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n";
  Response r = co_await exchange(port_, req);
  EXPECT_EQ(r.body, "127.0.0.1 http");
  server_.reset();
  HTTPServerOptions options;
  options.xheaders = true;
  options.trusted_downstream = {"10.0.0.1"};
  start(std::move(options));
  r = co_await exchange(port_, req);
  EXPECT_EQ(r.body, "1.2.3.4 https");
  r = co_await exchange(port_, "GET /ip HTTP/1.1\r\nHost: x\r\nX-Real-Ip: not-an-ip\r\n\r\n");
  EXPECT_EQ(r.body, "127.0.0.1 http");
}

SQUALL_ASYNC_TEST(HTTPServerTest, StopsGracefullyFinishingInFlightRequests) {
  start();
  auto idle = connect_to(port_);
  co_await idle->write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  co_await read_response(*idle);
  auto busy = connect_to(port_);
  co_await busy->write("GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n");
  while (requests_ < 2) co_await sleep(5ms);
  auto stopping = server_->close_gracefully(2s);
  EXPECT_TRUE(co_await closed_by_server(*idle));
  Response r = co_await read_response(*busy);
  EXPECT_EQ(r.body, "slept");
  EXPECT_EQ(r.headers.get("Connection", ""), "close");
  co_await stopping;
  EXPECT_EQ(server_->connection_count(), 0u);
}

SQUALL_ASYNC_TEST(HTTPServerTest, ServesAThousandKeepAliveClients) {
  start();
  constexpr int kClients = 1000;
  std::vector<std::unique_ptr<net::IOStream>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_to(port_));
    // Let the server accept as we go, so the listen backlog never fills
    // (a full backlog would block this thread's connect).
    if (i % 100 == 99) {
      for (int wait = 0; wait < 500 && server_->connection_count() < clients.size(); ++wait) co_await sleep(1ms);
    }
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& c : clients) c->write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    int ok = 0;
    for (auto& c : clients) {
      Response r = co_await read_response(*c);
      ok += r.body == "Hello, world";
    }
    EXPECT_EQ(ok, kClients);
  }
  EXPECT_EQ(server_->connection_count(), static_cast<std::size_t>(kClients));
}

/// Runs a program to completion, returning its stdout.
Future<std::string> run_program(std::vector<std::string> argv) {
  net::SubprocessOptions options;
  options.stdout_mode = net::Stdio::Stream;
  net::Subprocess proc(std::move(argv), std::move(options));
  std::string out = co_await proc.stdout_stream()->read_until_close();
  co_await proc.wait_for_exit();
  co_return out;
}

SQUALL_ASYNC_TEST(HTTPServerTest, ServesCurl) {
  start();
  std::string base = "http://127.0.0.1:" + std::to_string(port_);
  std::vector<std::string> get_twice = {"curl", "-sS", "--http1.1", base + "/hello", base + "/hello"};
  std::string out = co_await run_program(get_twice);
  EXPECT_EQ(out, "Hello, worldHello, world");
  std::vector<std::string> http10 = {"curl", "-sS", "--http1.0", base + "/stream"};
  out = co_await run_program(http10);
  EXPECT_EQ(out, "one,two,three");
  std::string file = ::testing::TempDir() + "squall_upload.bin";
  std::string payload;
  for (int i = 0; i < 20000; ++i) payload += static_cast<char>('a' + i % 26);
  std::ofstream(file, std::ios::binary) << payload;
  std::vector<std::string> upload = {"curl", "-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file,
                                     base + "/echo"};
  out = co_await run_program(upload);
  EXPECT_EQ(out, payload);
  std::remove(file.c_str());
}

SQUALL_ASYNC_TEST(HTTPServerTest, ServesTornadosHttpClient) {
  if (::access("/usr/bin/python3", X_OK) != 0) co_return;  // Debian's python3-tornado is not installed
  start();
  std::string url = "http://127.0.0.1:" + std::to_string(port_);
  std::string script =
      "import sys\n"
      "try:\n"
      "    from tornado.httpclient import HTTPClient\n"
      "except ImportError:\n"
      "    print('SKIP'); sys.exit(0)\n"
      "c = HTTPClient()\n"
      "r = c.fetch('" + url + "/hello')\n"
      "e = c.fetch('" + url + "/echo', method='POST', body=b'x' * 100000)\n"
      "print(r.code, r.body.decode(), len(e.body))\n";
  std::vector<std::string> python = {"/usr/bin/python3", "-c", script};
  std::string out = co_await run_program(python);
  if (out.rfind("SKIP", 0) == 0) co_return;
  EXPECT_EQ(out, "200 Hello, world 100000\n");
}

}  // namespace
}  // namespace squall::http
