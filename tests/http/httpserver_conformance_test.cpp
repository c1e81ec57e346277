// HTTPServer against CONFORMANCE_APP.md section 2, rule by rule, over real
// loopback sockets: raw clients write exact bytes and read exact answers.
// Each test names the subsection it covers; tests/http/httpserver_test.cpp
// holds the rest (keep-alive, 100-continue, slow-loris, gzip, xheaders...).
// Rules about routing (404, 405 with Allow, OPTIONS, compression) belong to
// the application on top of the server and are left to its tests.
#include "squall/http/httpserver.hpp"

#include <string>
#include <vector>

#include "server_test_client.hpp"
#include "server_test_fixture.hpp"
#include "squall/core/gen.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;
using namespace std::string_literals;

namespace squall::http {
namespace {

using test::closed_by_server;
using test::connect_to;
using test::exchange;
using test::read_response;
using test::Response;

class ConformanceTest : public test::ServerTest {
 protected:
  static std::string arg(HTTPServerRequest& req, const std::string& name) {
    const QueryArguments& args = req.query_arguments();
    auto it = args.find(name);
    return it == args.end() || it->second.empty() ? std::string() : it->second.front();
  }

  /// The application: a few paths, each showing one thing the server does.
  Future<void> handle(HTTPServerRequest& req) override {
    methods_.push_back(req.method);
    if (req.path == "/hello") {
      req.respond(200, "text/plain", "Hello, world");
    } else if (req.path == "/echo") {
      req.respond(200, "application/octet-stream", req.body);
    } else if (req.path == "/header") {
      // The value of the header named by ?name=, as the server parsed it.
      req.respond(200, "text/plain", std::string(req.headers.get(arg(req, "name"), "(none)")));
    } else if (req.path == "/status") {
      // Answers ?code= with a body and its length, whatever the code.
      HTTPHeaders h;
      h.add("Content-Length", "4");
      req.write_headers(std::stoi(arg(req, "code")), h, "body");
      req.finish();
    } else if (req.path == "/both") {
      // A handler asking for both framings: the server must pick one.
      HTTPHeaders h;
      h.add("Content-Length", "5");
      h.add("Transfer-Encoding", "chunked");
      req.write_headers(200, h, "hello");
      req.finish();
    } else if (req.path == "/stream") {
      HTTPHeaders h;
      req.write_headers(200, h, "one,");
      req.write("two");
      req.finish();
    } else if (req.path == "/inject") {
      HTTPHeaders h;
      h.add("X-Injected", "a\r\nSet-Cookie: evil=1");  // throws: no CR/LF in values
      req.respond(200, h, "unreachable");
    } else if (req.path == "/started-then-throw") {
      HTTPHeaders h;
      h.add("Content-Length", "100");
      req.write_headers(200, h, "partial");
      throw std::runtime_error("failed half way");
    } else if (req.path == "/sleep") {
      co_await sleep(std::chrono::milliseconds(std::stoi(arg(req, "ms"))));
      req.respond(200, "text/plain", "slept");
    } else if (req.method == "FOOBAR") {
      req.respond(501, "application/json", R"({"status": 501, "reason": "Not Implemented"})");
    } else {
      // Everything else: what the server handed over.
      req.respond(200, "text/plain", req.method + " " + req.path + " " + req.host);
    }
  }

  struct Case {
    const char* name;
    std::string request;
    int status;
  };

  /// Each request on its own connection gets `status`, a JSON error body,
  /// Connection: close, and then the connection is closed.
  Future<void> expect_refused(const std::vector<Case>& cases) {
    int before = requests_;
    for (const Case& c : cases) {
      auto s = connect_to(port_);
      co_await s->write(c.request);
      Response r = co_await read_response(*s);
      EXPECT_EQ(r.code, c.status) << c.name;
      EXPECT_EQ(r.headers.get("Connection", ""), "close") << c.name;
      EXPECT_NE(r.body.find("\"status\": " + std::to_string(c.status)), std::string::npos) << c.name;
      EXPECT_TRUE(co_await closed_by_server(*s)) << c.name;
    }
    EXPECT_EQ(requests_, before) << "a refused request reached the application";
  }

  std::vector<std::string> methods_;
};

// --- 2.1 Responses ------------------------------------------------------------------

SQUALL_ASYNC_TEST(ConformanceTest, EveryResponseCarriesAnImfFixdateDate) {
  HTTPServerOptions options;
  options.max_body_size = 10;
  options.max_header_size = 1024;
  start(std::move(options));
  testing::ExpectLog expect("squall.application", "Uncaught exception", /*required=*/false);
  const std::vector<Case> cases = {
      {"200", "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200},
      {"204", "GET /status?code=204 HTTP/1.1\r\nHost: x\r\n\r\n", 204},
      {"304", "GET /status?code=304 HTTP/1.1\r\nHost: x\r\n\r\n", 304},
      {"HTTP/1.0", "GET /hello HTTP/1.0\r\n\r\n", 200},
      {"400", "GET /hello HTTP/1.1\r\n\r\n", 400},
      {"413", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", 413},
      {"431", "GET /hello HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", 431},
      {"500", "GET /inject HTTP/1.1\r\nHost: x\r\n\r\n", 500},
      {"501", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"505", "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505},
  };
  for (const Case& c : cases) {
    Response r = co_await exchange(port_, c.request, false);
    EXPECT_EQ(r.code, c.status) << c.name;
    EXPECT_TRUE(test::is_imf_fixdate(r.headers.get("Date", ""))) << c.name << ": " << r.headers.get("Date", "");
    EXPECT_EQ(r.headers.count("Date"), 1u) << c.name;
  }
}

SQUALL_ASYNC_TEST(ConformanceTest, NeverFramesAResponseTwice) {
  start();
  auto s = connect_to(port_);
  co_await s->write("GET /both HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.headers.get("Content-Length", ""), "5");
  EXPECT_FALSE(r.headers.contains("Transfer-Encoding"));
  EXPECT_EQ(r.body, "hello");
  Response next = co_await read_response(*s);  // the framing held
  EXPECT_EQ(next.body, "Hello, world");
  // Without a length: chunked for HTTP/1.1, close-delimited for HTTP/1.0,
  // and never both headers.
  Response chunked = co_await exchange(port_, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(chunked.headers.get("Transfer-Encoding", ""), "chunked");
  EXPECT_FALSE(chunked.headers.contains("Content-Length"));
  EXPECT_EQ(chunked.body, "one,two");
  Response old = co_await exchange(port_, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_FALSE(old.headers.contains("Transfer-Encoding"));
  EXPECT_FALSE(old.headers.contains("Content-Length"));
  EXPECT_EQ(old.headers.get("Connection", ""), "close");  // keep-alive is impossible without a length
  EXPECT_TRUE(old.closed);
  EXPECT_EQ(old.body, "one,two");
}

SQUALL_ASYNC_TEST(ConformanceTest, SendsNoBodyFor204And304AndHead) {
  start();
  auto s = connect_to(port_);
  // The handler writes "body" for each; the server must drop it, and the
  // requests pipelined behind must still be framed right.
  co_await s->write(
      "GET /status?code=304 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /status?code=204 HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /status?code=200 HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  Response not_modified = co_await read_response(*s);
  EXPECT_EQ(not_modified.code, 304);
  EXPECT_EQ(not_modified.headers.get("Content-Length", ""), "4");  // the GET's length may be kept
  Response no_content = co_await read_response(*s);
  EXPECT_EQ(no_content.code, 204);
  EXPECT_FALSE(no_content.headers.contains("Content-Length"));
  EXPECT_FALSE(no_content.headers.contains("Transfer-Encoding"));
  Response head = co_await read_response(*s, /*head_request=*/true);
  EXPECT_EQ(head.code, 200);
  EXPECT_EQ(head.headers.get("Content-Length", ""), "4");  // equals the GET body's length
  Response head_stream = co_await read_response(*s, true);
  EXPECT_FALSE(head_stream.headers.contains("Transfer-Encoding"));
  Response after = co_await read_response(*s);
  EXPECT_EQ(after.body, "Hello, world");
}

SQUALL_ASYNC_TEST(ConformanceTest, WritesStatusLinesAndCrlfHeaderLines) {
  start();
  for (const char* version : {"HTTP/1.1", "HTTP/1.0"}) {
    std::string request = std::string("GET /hello ") + version + "\r\nHost: x\r\n\r\n";
    Response r = co_await exchange(port_, request);
    EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK") << version;
    // Every line of the head ends in CRLF; no lone CR or LF anywhere.
    std::string head = r.head;
    std::size_t lines = 0;
    for (std::size_t i = 0; i < head.size(); ++i) {
      if (head[i] == '\n') {
        EXPECT_TRUE(i > 0 && head[i - 1] == '\r') << "bare LF at " << i;
        ++lines;
      }
      if (head[i] == '\r') {
        EXPECT_TRUE(i + 1 < head.size() && head[i + 1] == '\n') << "bare CR at " << i;
      }
    }
    EXPECT_GE(lines, 4u);
    EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  }
  Response unusual = co_await exchange(port_, "GET /status?code=299 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(unusual.status_line.substr(0, 13), "HTTP/1.1 299 ");
}

SQUALL_ASYNC_TEST(ConformanceTest, RefusesCrOrLfInAFieldValue) {
  start();
  testing::ExpectLog expect("squall.application", "Uncaught exception");
  Response r = co_await exchange(port_, "GET /inject HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.code, 500);
  EXPECT_FALSE(r.headers.contains("Set-Cookie"));
  EXPECT_FALSE(r.headers.contains("X-Injected"));
  EXPECT_EQ(r.body.find("CR"), std::string::npos);  // no exception text (2.7)
}

// --- 2.2 Connections ---------------------------------------------------------------

SQUALL_ASYNC_TEST(ConformanceTest, AnswersPipelinedRequestsOfEveryKindInOrder) {
  start();
  auto s = connect_to(port_);
  co_await s->write(
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n"
      "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /status?code=204 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /sleep?ms=20 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ((co_await read_response(*s)).body, "Hello, world");
  EXPECT_EQ((co_await read_response(*s)).body, "first");
  EXPECT_EQ((co_await read_response(*s)).body, "second");
  Response head = co_await read_response(*s, true);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ((co_await read_response(*s)).body, "one,two");
  EXPECT_EQ((co_await read_response(*s)).code, 204);
  EXPECT_EQ((co_await read_response(*s)).body, "slept");
  Response last = co_await read_response(*s);
  EXPECT_EQ(last.body, "Hello, world");
  EXPECT_EQ(last.headers.get("Connection", ""), "close");
  EXPECT_TRUE(co_await closed_by_server(*s));
}

SQUALL_ASYNC_TEST(ConformanceTest, ClosesAfterARequestItCannotFrame) {
  start();
  auto s = connect_to(port_);
  // The second request hides in the first's ambiguous body: answering it
  // would be request smuggling.
  co_await s->write(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 400);
  EXPECT_TRUE(co_await closed_by_server(*s));
  EXPECT_EQ(requests_, 0);
}

// --- 2.3 Request targets, methods, versions ----------------------------------------

SQUALL_ASYNC_TEST(ConformanceTest, RoutesAbsoluteFormTargetsByTheirPath) {
  start();
  Response r = co_await exchange(port_, "GET http://example.com:8080/where?x=1 HTTP/1.1\r\nHost: other\r\n\r\n");
  EXPECT_EQ(r.body, "GET /where example.com:8080");  // RFC 9112 section 3.2.2: the target's authority wins
  r = co_await exchange(port_, "GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "GET / example.com");
  // Paths go to the application as sent: case kept, nothing normalised.
  r = co_await exchange(port_, "GET /HELLO/extra HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "GET /HELLO/extra x");
}

SQUALL_ASYNC_TEST(ConformanceTest, RefusesMalformedRequestLines) {
  start();
  const std::vector<Case> refused1 = {
      {"no version", "GET /hello\r\nHost: x\r\n\r\n", 400},
      {"method only", "GET\r\nHost: x\r\n\r\n", 400},
      {"extra part", "GET /hello HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400},
      {"two spaces", "GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"space in target", "GET /he llo HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"leading space", " GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"method not a token", "GE(T /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"method with a colon", "GET: /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  };
  co_await expect_refused(refused1);
}

SQUALL_ASYNC_TEST(ConformanceTest, HandsUnknownMethodsToTheApplication) {
  // Which methods exist is the application's business (Tornado's server
  // passes every token too): it answers 501 or 405 itself.
  start();
  Response r = co_await exchange(port_, "FOOBAR /anything HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.code, 501);
  CO_ASSERT_EQ(methods_.size(), 1u);
  EXPECT_EQ(methods_[0], "FOOBAR");
}

SQUALL_ASYNC_TEST(ConformanceTest, RefusesVersionsOtherThan10And11) {
  start();
  const std::vector<Case> refused2 = {
      {"HTTP/2.0", "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"HTTP/1.2", "GET /hello HTTP/1.2\r\nHost: x\r\n\r\n", 505},
      {"HTTP/0.9", "GET /hello HTTP/0.9\r\nHost: x\r\n\r\n", 505},
      {"lower case", "GET /hello http/1.1\r\nHost: x\r\n\r\n", 400},
      {"no minor", "GET /hello HTTP/1\r\nHost: x\r\n\r\n", 400},
      {"two digits", "GET /hello HTTP/1.10\r\nHost: x\r\n\r\n", 400},
      {"trailing space", "GET /hello HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
  };
  co_await expect_refused(refused2);
}

SQUALL_ASYNC_TEST(ConformanceTest, RefusesTargetsInNoKnownForm) {
  start();
  const std::vector<Case> refused3 = {
      {"relative", "GET hello HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"asterisk for GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"authority for GET", "GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"scheme only", "GET http: HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"bad scheme", "GET 1http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  };
  co_await expect_refused(refused3);
  // The forms RFC 9112 section 3.2 allows reach the application.
  Response r = co_await exchange(port_, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "OPTIONS * x");
  r = co_await exchange(port_, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  EXPECT_EQ(r.body, "CONNECT example.com:443 example.com:443");
}

SQUALL_ASYNC_TEST(ConformanceTest, RequiresExactlyOneHostInHttp11) {
  start();
  const std::vector<Case> refused4 = {
      {"no Host", "GET /hello HTTP/1.1\r\n\r\n", 400},
      {"two Hosts", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"two Hosts in HTTP/1.0", "GET /hello HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400},
  };
  co_await expect_refused(refused4);
  Response r = co_await exchange(port_, "GET /hello HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.code, 200);
}

// --- 2.4 Request header and body parsing ---------------------------------------------

SQUALL_ASYNC_TEST(ConformanceTest, AcceptsBareLfLineEnds) {
  start();
  Response r = co_await exchange(port_, "GET /header?name=X-A HTTP/1.1\nHost: x\nX-A: 1\n\n");
  EXPECT_EQ(r.body, "1");
}

SQUALL_ASYNC_TEST(ConformanceTest, RefusesMalformedFieldLines) {
  start();
  const std::vector<Case> refused5 = {
      {"bare CR in a field", "GET /hello HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n", 400},
      {"bare CR in the request line", "GET /hello\rHTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"no colon", "GET /hello HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
      {"space before colon", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n", 400},
      {"tab before colon", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n", 400},
      {"obs-fold", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400},
      {"obs-fold with a tab", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n", 400},
      {"whitespace after the request line", "GET /hello HTTP/1.1\r\n Host: x\r\n\r\n", 400},
      {"NUL in a value", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"s, 400},
      {"empty name", "GET /hello HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400},
      {"transfer-encoding with a space", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
  };
  co_await expect_refused(refused5);
}

SQUALL_ASYNC_TEST(ConformanceTest, TrimsFieldValues) {
  start();
  Response r = co_await exchange(port_, "GET /header?name=X-Pad HTTP/1.1\r\nHost: x\r\nX-Pad: \t  a  b \t \r\n\r\n");
  EXPECT_EQ(r.body, "a  b");
}

SQUALL_ASYNC_TEST(ConformanceTest, AcceptsOnlyDigitsAsContentLength) {
  start();
  std::vector<Case> bad;
  for (const char* value : {"+5", "-5", "0x5", "5.0", "5 5", "", "5,6", " ", "1e1", "99999999999999999999999"}) {
    bad.push_back({value, std::string("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ") + value + "\r\n\r\nhello", 400});
  }
  bad.push_back({"two different lines", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400});
  co_await expect_refused(bad);
  // Identical repeats are one length (RFC 9110 section 8.6).
  Response r = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello");
  EXPECT_EQ(r.body, "hello");
  r = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.body, "hello");
}

SQUALL_ASYNC_TEST(ConformanceTest, AcceptsOnlyASingleFinalChunkedCoding) {
  start();
  const std::string body = "\r\n\r\n0\r\n\r\n";
  const std::vector<Case> refused6 = {
      {"gzip, chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked" + body, 501},
      {"chunked, chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked" + body, 501},
      {"two lines", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked" + body, 501},
      {"chunked, gzip", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip" + body, 501},
      {"unknown", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo" + body, 501},
      {"identity", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity" + body, 501},
      {"with Content-Length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked" + body, 400},
  };
  co_await expect_refused(refused6);
  Response r = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
  EXPECT_EQ(r.body, "ok");  // coding names are case-insensitive
}

SQUALL_ASYNC_TEST(ConformanceTest, DecodesChunkSizesExtensionsAndTrailers) {
  start();
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  Response r = co_await exchange(port_, head +
                                            "a\r\n0123456789\r\nA\r\nABCDEFGHIJ\r\n"            // either case
                                            "1;name=value\r\n-\r\n"                             // extension
                                            "1 ; quoted=\"a ; b \\\" c\"\r\n+\r\n"              // BWS, quoted-string
                                            "01\r\n!\r\n"                                       // leading zero
                                            "0;last\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n");  // trailers
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "0123456789ABCDEFGHIJ-+!");
}

SQUALL_ASYNC_TEST(ConformanceTest, RefusesMalformedChunkedBodies) {
  start();
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::vector<Case> refused7 = {
      {"0x prefix", head + "0x5\r\nhello\r\n0\r\n\r\n", 400},
      {"sign", head + "+5\r\nhello\r\n0\r\n\r\n", 400},
      {"negative", head + "-5\r\nhello\r\n0\r\n\r\n", 400},
      {"no size", head + "\r\nhello\r\n0\r\n\r\n", 400},
      {"overflow", head + "FFFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n", 400},
      {"data longer than its size", head + "3\r\nhello\r\n0\r\n\r\n", 400},
      {"no CRLF after the data", head + "5\r\nhelloXX0\r\n\r\n", 400},
      {"junk after the size", head + "5 x\r\nhello\r\n0\r\n\r\n", 400},
      {"trailer without a colon", head + "0\r\nnot a field\r\n\r\n", 400},
  };
  co_await expect_refused(refused7);
}

// --- 2.5 Limits -----------------------------------------------------------------------

SQUALL_ASYNC_TEST(ConformanceTest, AcceptsA64KiBHeadWithA16KiBField) {
  start();
  const std::size_t limit = 64 * 1024;
  auto head_of_size = [](std::size_t total) {
    std::string h = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(16 * 1024, 'b') + "\r\n";
    // One more field fills the head, with its final CRLF, to `total` bytes.
    std::size_t filler = total - h.size() - std::string_view("X-Fill: \r\n\r\n").size();
    return h + "X-Fill: " + std::string(filler, 'f') + "\r\n\r\n";
  };
  std::string exact = head_of_size(limit);
  CO_ASSERT_EQ(exact.size(), limit);
  Response r = co_await exchange(port_, exact);
  EXPECT_EQ(r.code, 200);
  std::string over = head_of_size(limit + 1);
  CO_ASSERT_EQ(over.size(), limit + 1);
  const std::vector<Case> refused8 = {{"64 KiB + 1", over, 431}};
  co_await expect_refused(refused8);
}

SQUALL_ASYNC_TEST(ConformanceTest, AcceptsBodiesUpToTheLimitInBothFramings) {
  HTTPServerOptions options;
  options.max_body_size = 1000;
  start(std::move(options));
  std::string body(1000, 'x');
  Response r = co_await exchange(port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + body);
  EXPECT_EQ(r.body.size(), 1000u);
  std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 10; ++i) chunked += "64\r\n" + std::string(100, 'y') + "\r\n";
  r = co_await exchange(port_, chunked + "0\r\n\r\n");
  EXPECT_EQ(r.body.size(), 1000u);
  int before = requests_;
  const std::vector<Case> refused9 = {
      {"length over", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + body + "x", 413},
      {"chunked over", chunked + "1\r\nz\r\n0\r\n\r\n", 413},
  };
  co_await expect_refused(refused9);
  EXPECT_EQ(requests_, before);
}

SQUALL_ASYNC_TEST(ConformanceTest, IgnoresExpectationsItDoesNotKnow) {
  start();
  auto s = connect_to(port_);
  co_await s->write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: something-else\r\n\r\nhi");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 200);  // no 100 first
  EXPECT_EQ(r.body, "hi");
}

// --- 2.6 Timeouts -------------------------------------------------------------------------

SQUALL_ASYNC_TEST(ConformanceTest, TimesTheNextHeadFromTheEndOfTheResponse) {
  HTTPServerOptions options;
  options.header_timeout = 200ms;
  start(std::move(options));
  auto s = connect_to(port_);
  co_await sleep(120ms);  // the first request comes late, but in time
  co_await s->write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  co_await read_response(*s);
  auto answered = io_loop().time();
  co_await sleep(120ms);  // counted from the response: still in time
  co_await s->write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 200);
  answered = io_loop().time();
  // Then nothing: closed, without a word, about 200 ms after the response.
  EXPECT_TRUE(co_await closed_by_server(*s));
  auto waited = io_loop().time() - answered;
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 1000ms);
}

SQUALL_ASYNC_TEST(ConformanceTest, Answers408WhenAHeadIsTooSlow) {
  HTTPServerOptions options;
  options.header_timeout = 150ms;
  start(std::move(options));
  auto s = connect_to(port_);
  co_await s->write("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: a");
  auto begin = io_loop().time();
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 408);
  EXPECT_EQ(r.headers.get("Connection", ""), "close");
  EXPECT_TRUE(co_await closed_by_server(*s));
  EXPECT_GE(io_loop().time() - begin, 140ms);
  EXPECT_EQ(requests_, 0);
}

SQUALL_ASYNC_TEST(ConformanceTest, DoesNotTimeAHandlerOrABody) {
  HTTPServerOptions options;
  options.header_timeout = 100ms;
  start(std::move(options));
  // A handler working three times the header timeout.
  Response r = co_await exchange(port_, "GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "slept");
  // A body arriving after the header timeout (the body timeout is 60 s).
  auto s = connect_to(port_);
  co_await s->write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
  co_await sleep(300ms);
  co_await s->write("cd");
  r = co_await read_response(*s);
  EXPECT_EQ(r.body, "abcd");
}

// --- 2.7 Errors -----------------------------------------------------------------------------

SQUALL_ASYNC_TEST(ConformanceTest, ClosesWhenAHandlerFailsAfterTheResponseStarted) {
  start();
  testing::ExpectLog expect("squall.application", "Uncaught exception");
  auto s = connect_to(port_);
  co_await s->write("GET /started-then-throw HTTP/1.1\r\nHost: x\r\n\r\n");
  // The head and the first bytes went out; the rest never will: the
  // connection must close so the client sees the body is short.
  std::string got = co_await s->read_until_close();
  EXPECT_NE(got.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
  EXPECT_EQ(got.substr(got.size() - 7), "partial");
  EXPECT_EQ(got.find("failed half way"), std::string::npos);
  Response other = co_await exchange(port_, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(other.code, 200);
}

}  // namespace
}  // namespace squall::http
