// The conformance app (examples/conformance, docs/guide/conformance-app.md)
// run as a real program and checked from outside over real sockets, one
// group per section of the contract: the process (1), HTTP rules for every
// endpoint (2), the endpoints (3), WebSocket (4). Raw sockets check framing
// rules; squall's AsyncHTTPClient and websocket_connect check the rest.
//
// Every test talks to one server process, started on first use with a
// static root of known files, --idle-timeout 1 (so the timeout check is
// fast) and --max-body-size 1 MiB (so the 413 checks are). Suites are named
// conformance_<section> so that `ctest -R conformance` selects them.
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <algorithm>
#include <random>
#include <tuple>

#include "squall/core/gen.hpp"
#include "squall/http/url.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/testing.hpp"
#include "squall/websocket/client.hpp"
#include "conformance_support.hpp"

#ifndef SQUALL_CONFORMANCE_PATH
#define SQUALL_CONFORMANCE_PATH ""
#endif

using namespace std::chrono_literals;
using namespace conformance_test;
using nlohmann::json;
using squall::http::AsyncHTTPClient;
using squall::http::HTTPRequest;
using squall::http::HTTPResponse;

namespace {

constexpr std::size_t kMaxBodySize = 1024 * 1024;
constexpr const char* kSecret = "conformance-test-secret";

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

void write_file(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

/// Contract section 1: the app inherits a descriptor limit of at least 8192
/// (as far as the hard limit allows); the test's own sockets count too.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t wanted = std::min<rlim_t>(limit.rlim_max, 8192);
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = wanted;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

/// The server shared by every test of this process, with its static root.
struct SharedServer {
  std::string dir;     // scratch directory holding static/ and static-secret/
  std::string static_root;
  std::unique_ptr<ServerProcess> process;

  SharedServer() {
    char tmpl[] = "/tmp/squall-conformance-XXXXXX";
    if (!::mkdtemp(tmpl)) return;
    dir = tmpl;
    static_root = dir + "/static";
    std::filesystem::create_directories(static_root + "/sub");
    std::filesystem::create_directories(dir + "/static-secret");
    write_file(static_root + "/hello.txt", "Hello, static world\n");
    write_file(static_root + "/with space.txt", "spaced\n");
    write_file(static_root + "/\xc3\xa9t\xc3\xa9.txt", "summer\n");
    write_file(static_root + "/style.css", "body {}\n");
    write_file(static_root + "/app.js", "let x;\n");
    write_file(static_root + "/data.json", "{}\n");
    write_file(static_root + "/image.png", "\x89PNG");
    write_file(static_root + "/blob.xyz", "???");
    write_file(static_root + "/sub/inner.txt", "inner\n");
    write_file(dir + "/static-secret/secret.txt", "secret\n");
    raise_fd_limit();
    process = std::make_unique<ServerProcess>(
        SQUALL_CONFORMANCE_PATH,
        std::vector<std::string>{"--port", "0", "--static-root", static_root, "--cookie-secret", kSecret,
                                 "--max-body-size", std::to_string(kMaxBodySize), "--idle-timeout", "1"});
  }
  ~SharedServer() {
    process.reset();
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
  }
};

SharedServer* shared = nullptr;

class ServerEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    delete shared;
    shared = nullptr;
  }
};
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new ServerEnvironment);

/// Fixture: the shared server's port, and helpers for the async client.
class Conformance : public squall::testing::AsyncTest {
 protected:
  void SetUp() override {
    AsyncTest::SetUp();
    if (std::string(SQUALL_CONFORMANCE_PATH).empty()) GTEST_SKIP() << "the conformance example is not built";
    if (!shared) shared = new SharedServer();
    ASSERT_TRUE(shared->process && shared->process->port() > 0) << "the conformance app did not start";
    port_ = shared->process->port();
  }
  squall::Duration async_test_timeout() const override { return 20s; }

  int port() const { return port_; }
  std::string url(std::string_view path) const { return "http://127.0.0.1:" + std::to_string(port_) + std::string(path); }
  std::string ws_url(std::string_view path) const { return "ws://127.0.0.1:" + std::to_string(port_) + std::string(path); }

  /// A GET over a raw connection, read as one response.
  std::optional<RawResponse> get(std::string_view target, std::string_view extra_headers = {}) {
    return raw_request(port_, "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                  std::string(extra_headers) + "Connection: close\r\n\r\n");
  }

  squall::Future<HTTPResponse> fetch(HTTPRequest request) {
    return AsyncHTTPClient::instance().fetch(std::move(request), /*raise_error=*/false);
  }
  squall::Future<HTTPResponse> fetch(std::string path) {
    HTTPRequest request;
    request.url = url(path);
    return fetch(std::move(request));
  }
  squall::Future<HTTPResponse> post(std::string path, std::string body, std::string content_type = {},
                                    std::string method = "POST") {
    HTTPRequest request;
    request.url = url(path);
    request.method = std::move(method);
    request.body = std::move(body);
    if (!content_type.empty()) request.headers.add("Content-Type", content_type);
    return fetch(std::move(request));
  }

 private:
  int port_ = 0;
};

// ---------------------------------------------------------------------------------------------
// 1. Command line and process
// ---------------------------------------------------------------------------------------------

using conformance_process = Conformance;

TEST_F(conformance_process, PrintsTheListeningLineWithThePortItChose) {
  EXPECT_EQ(shared->process->first_line(), "listening on 127.0.0.1:" + std::to_string(port()));
}

TEST_F(conformance_process, ExitsCleanlyOnSigtermWhileAConnectionIsOpen) {
  ServerProcess own(SQUALL_CONFORMANCE_PATH, {"--port", "0"});
  ASSERT_GT(own.port(), 0);
  RawConnection sleeper(own.port());
  ASSERT_TRUE(sleeper.send("GET /sleep?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  RawConnection idle(own.port());
  // The server answers on another connection, so both are accepted.
  auto hello = raw_request(own.port(), "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->code, 200);
  auto status = own.signal_and_wait(SIGTERM, 5s);
  ASSERT_TRUE(status) << "no exit within 5 s of SIGTERM";
  EXPECT_EQ(*status, 0);
  EXPECT_TRUE(sleeper.read_to_close(1000ms));
}

TEST_F(conformance_process, ServesAThousandSleepingConnectionsAtOnce) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 1100) GTEST_SKIP() << "descriptor limit " << limit.rlim_cur << " is below 1100";
  // Connected in a burst before the server accepts them: the backlog (>= 1024) holds them.
  std::vector<std::unique_ptr<RawConnection>> conns;
  for (int i = 0; i < 1000; ++i) {
    conns.push_back(std::make_unique<RawConnection>(port(), 10000ms));
    ASSERT_TRUE(conns.back()->connected()) << i;
  }
  for (auto& c : conns) ASSERT_TRUE(c->send("GET /sleep?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto sent = Clock::now();
  for (auto& c : conns) {
    auto r = c->read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 200);
  }
  // About one sleep period, not a thousand of them (nor a thread each).
  EXPECT_LT(Clock::now() - sent, 5s);
}

TEST_F(conformance_process, ResetClientsDoNotDisturbTheServer) {
  for (const char* partial : {"GET /hel", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
                              "GET /sleep?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    RawConnection c(port());
    ASSERT_TRUE(c.send(partial));
    c.reset();
  }
  auto r = get("/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 200);
}

// ---------------------------------------------------------------------------------------------
// 2. HTTP/1.1 rules for every endpoint
// ---------------------------------------------------------------------------------------------

using conformance_http = Conformance;

TEST_F(conformance_http, ResponsesCarryDateAndNeverBothLengthAndChunked) {
  for (const char* target : {"/hello", "/json", "/stream?n=2", "/status/404", "/static/hello.txt"}) {
    auto r = get(target);
    ASSERT_TRUE(r) << target;
    ASSERT_TRUE(r->header("date")) << target;
    EXPECT_TRUE(r->header("date")->ends_with(" GMT")) << target;
    EXPECT_FALSE(r->header("content-length") && r->header("transfer-encoding")) << target;
    EXPECT_TRUE(r->status_line.starts_with("HTTP/1.1 ")) << target;
  }
}

TEST_F(conformance_http, PersistentConnectionsAndConnectionClose) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = c.read_response();
  ASSERT_TRUE(first);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto second = c.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "Hello, world");
  EXPECT_TRUE(c.read_to_close());

  RawConnection old(port());
  ASSERT_TRUE(old.send("GET /hello HTTP/1.0\r\n\r\n"));
  auto r10 = old.read_response();
  ASSERT_TRUE(r10);
  EXPECT_EQ(r10->code, 200);
  EXPECT_TRUE(old.read_to_close());

  RawConnection kept(port());
  ASSERT_TRUE(kept.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto k = kept.read_response();
  ASSERT_TRUE(k);
  if (k->header("connection") == "keep-alive") {
    ASSERT_TRUE(kept.send("GET /json HTTP/1.0\r\n\r\n"));
    auto again = kept.read_response();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->code, 200);
  } else {
    EXPECT_TRUE(kept.read_to_close());
  }
}

TEST_F(conformance_http, PipelinedRequestsInOneSegmentAreAnsweredInOrder) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     "GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /stream?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto a = c.read_response();
  auto b = c.read_response();
  auto s = c.read_response();
  auto h = c.read_response(/*head_request=*/true);
  auto st = c.read_response();
  ASSERT_TRUE(a && b && s && h && st);
  EXPECT_EQ(a->body, "Hello, world");
  EXPECT_EQ(b->body, "abc");
  EXPECT_EQ(s->code, 201);
  EXPECT_EQ(h->header("content-length"), "12");
  EXPECT_EQ(st->body, "chunk 0\nchunk 1\n");
}

TEST_F(conformance_http, RoutesMatchExactPathsAndAbsoluteFormTargets) {
  EXPECT_EQ(get("/hello/extra")->code, 404);
  EXPECT_EQ(get("/HELLO")->code, 404);
  EXPECT_EQ(get("/no/such/thing")->code, 404);
  auto absolute = raw_request(port(), "GET http://127.0.0.1/hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(absolute);
  EXPECT_EQ(absolute->code, 200);
  EXPECT_EQ(absolute->body, "Hello, world");
}

TEST_F(conformance_http, MalformedRequestLinesMethodsAndVersionsAreRefused) {
  auto code = [&](std::string request) {
    auto r = raw_request(port(), request);
    return r ? r->code : -1;
  };
  EXPECT_EQ(code("GET /hello\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(code("GET /hello HTTP/1.1 extra\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(code("GET /hel lo HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(code("G(T /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  int unknown = code("FROB /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(unknown == 501 || unknown == 405) << unknown;
  for (const char* version : {"HTTP/2.0", "http/1.1", "HTTP/1"}) {
    int c = code(std::string("GET /hello ") + version + "\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(c == 505 || c == 400) << version << " " << c;
  }
  int relative = code("GET hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(relative == 400 || relative == 404) << relative;
  EXPECT_EQ(code("GET /hello HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(code("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST_F(conformance_http, UnsupportedMethodGets405WithAllow) {
  auto r = raw_request(port(), "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 405);
  EXPECT_EQ(r->header("allow"), "GET, HEAD, OPTIONS");
  auto echo = raw_request(port(), "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->code, 405);
  EXPECT_EQ(echo->header("allow"), "POST, OPTIONS");
}

TEST_F(conformance_http, HeadMatchesGetWithoutABody) {
  for (const char* target : {"/hello", "/json", "/static/hello.txt", "/gzip"}) {
    auto g = get(target);
    RawConnection c(port());
    ASSERT_TRUE(c.send("HEAD " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto h = c.read_response(/*head_request=*/true);
    ASSERT_TRUE(g && h) << target;
    EXPECT_EQ(h->code, g->code) << target;
    EXPECT_EQ(h->header("content-type"), g->header("content-type")) << target;
    if (auto length = h->header("content-length")) {
      EXPECT_EQ(*length, std::to_string(g->body.size())) << target;
    }
    // The next response starts right after HEAD's head: no body was sent.
    auto next = c.read_response();
    ASSERT_TRUE(next) << target;
    EXPECT_EQ(next->body, "Hello, world") << target;
  }
}

TEST_F(conformance_http, OptionsListsExactlyThePathsMethods) {
  auto allow = [&](std::string target) -> std::string {
    auto r = raw_request(port(), "OPTIONS " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    if (!r || (r->code != 204 && r->code != 200)) return "status " + std::to_string(r ? r->code : -1);
    return r->header("allow").value_or("none");
  };
  EXPECT_EQ(allow("/hello"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(allow("/echo"), "POST, OPTIONS");
  EXPECT_EQ(allow("/cookie"), "GET, HEAD, POST, OPTIONS");
  EXPECT_EQ(allow("/upload-stream"), "PUT, OPTIONS");
  EXPECT_EQ(allow("/static/hello.txt"), "GET, HEAD, OPTIONS");
}

TEST_F(conformance_http, HeaderSyntaxErrorsGet400) {
  auto code = [&](std::string head) {
    auto r = raw_request(port(), "GET /hello HTTP/1.1\r\nHost: x\r\n" + head + "\r\n");
    return r ? r->code : -1;
  };
  EXPECT_EQ(code("NoColon\r\n"), 400);
  EXPECT_EQ(code("X-Space : 1\r\n"), 400);
  EXPECT_EQ(code("X-Bare: a\rb\r\n"), 400);
  // A whitespace-led line right after the request line is refused or ignored.
  auto indented = raw_request(port(), "GET /hello HTTP/1.1\r\n Host: x\r\nHost: y\r\n\r\n");
  ASSERT_TRUE(indented);
  EXPECT_TRUE(indented->code == 400 || indented->code == 200) << indented->code;
  int folded = code("X-A: 1\r\n  continued\r\n");
  EXPECT_TRUE(folded == 400 || folded == 200) << folded;
  // Values are trimmed.
  auto r = raw_request(port(), "GET /headers HTTP/1.1\r\nHost: x\r\nX-Pad: \t padded \t\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["x-pad"], json({"padded"}));
}

TEST_F(conformance_http, ContentLengthMustBeDigitsAndAgree) {
  for (const char* length : {"+5", "-5", "0x5", "5.0", "5 5", ""}) {
    RawConnection c(port());
    ASSERT_TRUE(c.send(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ") + length + "\r\n\r\nabcde"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << length;
    EXPECT_EQ(r->code, 400) << "Content-Length: " << length;
    EXPECT_TRUE(c.read_to_close()) << length;
  }
  auto differing = raw_request(port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
  ASSERT_TRUE(differing);
  EXPECT_EQ(differing->code, 400);
}

TEST_F(conformance_http, TransferCodingsOtherThanChunkedAreRefusedAndClose) {
  for (const char* te : {"Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: chunked, chunked\r\n",
                         "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: bogus\r\n",
                         "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"}) {
    RawConnection c(port());
    ASSERT_TRUE(c.send(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n") + te + "\r\n5\r\nhello\r\n0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << te;
    EXPECT_TRUE(r->code == 400 || r->code == 501) << te << r->code;
    EXPECT_TRUE(c.read_to_close()) << te;
  }
}

TEST_F(conformance_http, ChunkedBodiesWithExtensionsAndTrailersAreAccepted) {
  auto r = raw_request(port(),
                       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;name=value\r\nhello\r\n6 ;q=\"x;y\"\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 200);
  EXPECT_EQ(r->body, "hello world0123456789");
  RawConnection bad(port());
  ASSERT_TRUE(bad.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"));
  auto refused = bad.read_response();
  if (refused) {
    EXPECT_EQ(refused->code, 400);
  }
  EXPECT_TRUE(bad.read_to_close());
}

TEST_F(conformance_http, OversizedHeaderSectionIsRefusedButLargeFieldsAreAccepted) {
  auto big = get("/hello", "X-Big: " + std::string(16 * 1024, 'a') + "\r\n");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->code, 200);
  RawConnection c(port());
  c.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Huge: " + std::string(80 * 1024, 'a') + "\r\n\r\n");
  auto r = c.read_response();
  if (r) {
    EXPECT_TRUE(r->code == 431 || r->code == 400) << r->code;
  }
  EXPECT_TRUE(c.read_to_close());
}

TEST_F(conformance_http, DeclaredBodyOverTheLimitGets413BeforeTheBody) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(kMaxBodySize + 1) +
                     "\r\n\r\n"));
  auto r = c.read_response();  // no byte of body was sent
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 413);
  auto at_limit = raw_request(port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(kMaxBodySize) +
                                          "\r\n\r\n" + std::string(kMaxBodySize, 'z'));
  ASSERT_TRUE(at_limit);
  EXPECT_EQ(at_limit->code, 200);
  EXPECT_EQ(at_limit->body.size(), kMaxBodySize);
}

TEST_F(conformance_http, ChunkedBodyOverTheLimitGets413OrClose) {
  RawConnection c(port());
  ASSERT_TRUE(c.send("POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"));
  std::string chunk = "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
  for (std::size_t sent = 0; sent <= kMaxBodySize; sent += 0x10000) {
    if (!c.send(chunk)) break;
  }
  auto r = c.read_response();
  if (r) {
    EXPECT_EQ(r->code, 413);
  }
}

TEST_F(conformance_http, ExpectContinueIsAnsweredOnlyWhenTheBodyIsWanted) {
  RawConnection ok(port());
  ASSERT_TRUE(ok.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto cont = ok.read_response();
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->code, 100);
  ASSERT_TRUE(ok.send("hello"));
  auto done = ok.read_response();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->body, "hello");

  for (const std::string target : {"/echo", "/nowhere", "/hello"}) {
    std::string length = target == "/echo" ? std::to_string(kMaxBodySize + 1) : "5";
    auto r = raw_request(port(), "POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + length +
                                     "\r\nExpect: 100-continue\r\n\r\n");
    ASSERT_TRUE(r) << target;
    EXPECT_NE(r->code, 100) << target;
    EXPECT_GE(r->code, 400) << target;
  }

  RawConnection old(port());
  ASSERT_TRUE(old.send("POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"));
  auto r10 = old.read_response();
  ASSERT_TRUE(r10);
  EXPECT_EQ(r10->code, 200);
  EXPECT_EQ(r10->body, "hello");

  auto other = raw_request(port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: teapot\r\n\r\nhi");
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->code == 417 || other->code == 200) << other->code;
}

TEST_F(conformance_http, IdleTimeoutClosesAConnectionThatTricklesItsHead) {
  RawConnection silent(port());
  auto start = Clock::now();
  EXPECT_TRUE(silent.read_to_close(3000ms));
  RawConnection trickler(port());
  std::string head = "GET /hello HTTP/1.1\r\nHost: x\r\n";
  bool closed = false;
  for (char ch : head) {
    if (!trickler.send(std::string(1, ch)) || !trickler.quiet_for(200ms)) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed || trickler.read_to_close(2000ms)) << "a trickled head outlived the 1 s idle timeout";
  EXPECT_LT(Clock::now() - start, 6s);

  // The timeout does not apply while a handler works.
  auto slow = raw_request(port(), "GET /sleep?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->code, 200);
}

TEST_F(conformance_http, UncaughtExceptionIs500WithoutTheSecret) {
  auto r = get("/error");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 500);
  EXPECT_EQ(r->body.find("conformance-secret-7f3a9c"), std::string::npos);
  EXPECT_EQ(r->body.find("deliberate failure"), std::string::npos);
  EXPECT_EQ(get("/hello")->code, 200);
}

SQUALL_ASYNC_TEST(conformance_http, GzipFollowsAcceptEncoding) {
  HTTPRequest gz;
  gz.url = url("/gzip");
  gz.headers.add("Accept-Encoding", "gzip");
  HTTPResponse r = co_await fetch(gz);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "gzip");
  EXPECT_NE(r.headers.get("Vary", "").find("Accept-Encoding"), std::string_view::npos);
  CO_ASSERT_EQ(r.body.size(), 102000u);
  EXPECT_EQ(r.body.substr(0, 50), "00000 The quick brown fox jumps over the lazy dog.");
  EXPECT_EQ(r.body.substr(102000 - 51), "01999 The quick brown fox jumps over the lazy dog.\n");

  HTTPRequest refused;
  refused.url = url("/gzip");
  refused.decompress_response = false;
  refused.headers.add("Accept-Encoding", "gzip;q=0");
  HTTPResponse plain = co_await fetch(refused);
  EXPECT_EQ(plain.headers.get("Content-Encoding", "identity"), "identity");
  EXPECT_EQ(plain.body.size(), 102000u);

  HTTPRequest none;
  none.url = url("/gzip");
  none.decompress_response = false;
  HTTPResponse identity = co_await fetch(none);
  EXPECT_FALSE(identity.headers.get("Content-Encoding").has_value());
  EXPECT_EQ(identity.body.size(), 102000u);
}

// ---------------------------------------------------------------------------------------------
// 3. Endpoints
// ---------------------------------------------------------------------------------------------

using conformance_endpoints = Conformance;

SQUALL_ASYNC_TEST(conformance_endpoints, HelloAndJson) {
  HTTPResponse hello = co_await fetch("/hello");
  EXPECT_EQ(hello.code, 200);
  EXPECT_EQ(hello.body, "Hello, world");
  EXPECT_EQ(hello.headers.get("Content-Type", ""), "text/plain; charset=utf-8");
  HTTPResponse j = co_await fetch("/json");
  EXPECT_TRUE(j.headers.get("Content-Type", "").starts_with("application/json"));
  json body = json::parse(j.body);
  EXPECT_EQ(body["message"], "Hello, world");
  EXPECT_EQ(body["unicode"], "h\u00e9llo w\u00f6rld \u2713");
}

TEST_F(conformance_endpoints, HeadersListsEachFieldsValuesInOrder) {
  auto r = get("/headers", "X-Multi: a\r\nX-Multi: b\r\nX-Other: c\r\n");
  ASSERT_TRUE(r);
  json body = json::parse(r->body);
  EXPECT_EQ(body["host"], json({"127.0.0.1"}));
  bool separate = body["x-multi"] == json({"a", "b"});
  bool combined = body["x-multi"] == json({"a, b"});
  EXPECT_TRUE(separate || combined) << body.dump();
  EXPECT_EQ(body["x-other"], json({"c"}));
}

SQUALL_ASYNC_TEST(conformance_endpoints, EchoReturnsTheBodyAndContentType) {
  std::string binary("\0\x01\xff\r\n--x", 8);
  HTTPResponse r = co_await post("/echo", binary, "application/x-thing; v=1");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, binary);
  EXPECT_EQ(r.headers.get("Content-Type", ""), "application/x-thing; v=1");
  auto bare = raw_request(port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  CO_ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->header("content-type"), "application/octet-stream");
  auto empty = raw_request(port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CO_ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->code, 200);
  EXPECT_EQ(empty->body, "");
}

TEST_F(conformance_endpoints, ArgsDecodesFormUrlencodedQueries) {
  auto args = [&](std::string target) {
    auto r = get(target);
    return r && r->code == 200 ? json::parse(r->body) : json(r ? r->code : -1);
  };
  EXPECT_EQ(args("/args?a=1&a=2&b=x"), json::parse(R"({"a": ["1", "2"], "b": ["x"]})"));
  EXPECT_EQ(args("/args?w=+x%20"), json::parse(R"({"w": [" x "]})"));
  EXPECT_EQ(args("/args?e="), json::parse(R"({"e": [""]})"));
  EXPECT_EQ(args("/args?f"), json::parse(R"({"f": [""]})"));
  EXPECT_EQ(args("/args"), json::object());
  EXPECT_EQ(args("/args?u=%C3%A9%E2%9C%93"), json::parse("{\"u\": [\"\u00e9\u2713\"]}"));
  auto bad = get("/args?x=%ff%fe");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->code, 400);
}

std::string multipart(const std::string& boundary,
                      const std::vector<std::tuple<std::string, std::optional<std::string>, std::string, std::string>>& parts) {
  std::string body;
  for (const auto& [name, filename, type, content] : parts) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"";
    if (filename) body += "; filename=\"" + *filename + "\"";
    body += "\r\n";
    if (!type.empty()) body += "Content-Type: " + type + "\r\n";
    body += "\r\n" + content + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

/// File content with CRLF, NUL, 0xff and boundary look-alikes.
std::string tricky_file() {
  // The delimiter is CRLF "--bound": the content may hold "--bound" elsewhere.
  std::string tricky = "line\r\n-bound\r\nx--bound\r\n--boun\r\n";
  tricky += std::string("\0\xff end\0", 7);
  return tricky;
}

/// Fields and files (one with an empty filename) under the boundary "bound".
std::string mixed_form(const std::string& tricky) {
  return multipart("bound", {{"title", std::nullopt, "", "report"},
                             {"doc", "notes.txt", "text/plain", "0123456789"},
                             {"tag", std::nullopt, "", " x "},
                             {"bin", "data.bin", "application/octet-stream", tricky},
                             {"none", "", "", ""}});
}

std::string single_field_form() { return multipart("b0", {{"k", std::nullopt, "", "v"}}); }

SQUALL_ASYNC_TEST(conformance_endpoints, FormParsesUrlencodedAndMultipartWithFileDigests) {
  HTTPResponse urlenc = co_await post("/form", "title=report&tag=x&tag=y&empty=&pad=+a+", "application/x-www-form-urlencoded");
  EXPECT_EQ(urlenc.code, 200);
  json u = json::parse(urlenc.body);
  EXPECT_EQ(u["fields"], json::parse(R"({"title": ["report"], "tag": ["x", "y"], "empty": [""], "pad": [" a "]})"));
  EXPECT_EQ(u["files"], json::array());

  std::string tricky = tricky_file();
  std::string body = mixed_form(tricky);
  HTTPResponse r = co_await post("/form", body, "multipart/form-data; boundary=\"bound\"");
  EXPECT_EQ(r.code, 200) << r.body;
  json m = json::parse(r.body);
  EXPECT_EQ(m["fields"], json::parse(R"({"title": ["report"], "tag": [" x "]})"));
  CO_ASSERT_EQ(m["files"].size(), 3u);
  EXPECT_EQ(m["files"][0], json({{"name", "doc"},
                                 {"filename", "notes.txt"},
                                 {"content_type", "text/plain"},
                                 {"size", 10},
                                 {"sha256", sha256_hex("0123456789")}}));
  EXPECT_EQ(m["files"][1]["name"], "bin");
  EXPECT_EQ(m["files"][1]["size"], tricky.size());
  EXPECT_EQ(m["files"][1]["sha256"], sha256_hex(tricky));
  EXPECT_EQ(m["files"][2]["name"], "none");
  EXPECT_EQ(m["files"][2]["size"], 0);

  HTTPResponse plain_boundary = co_await post("/form", single_field_form(), "multipart/form-data; boundary=b0");
  EXPECT_EQ(json::parse(plain_boundary.body)["fields"], json::parse(R"({"k": ["v"]})"));
}

SQUALL_ASYNC_TEST(conformance_endpoints, FormRefusesOtherTypesAndMalformedMultipart) {
  EXPECT_EQ((co_await post("/form", "{}", "application/json")).code, 415);
  EXPECT_EQ((co_await post("/form", "x", "text/plain")).code, 415);
  const std::string type = "multipart/form-data; boundary=bb";
  std::string no_final = "--bb\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
  EXPECT_EQ((co_await post("/form", no_final, type)).code, 400);
  std::string no_disposition = "--bb\r\nContent-Type: text/plain\r\n\r\n1\r\n--bb--\r\n";
  EXPECT_EQ((co_await post("/form", no_disposition, type)).code, 400);
  std::string preamble = "junk\r\n--bb\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--bb--\r\n";
  EXPECT_EQ((co_await post("/form", preamble, type)).code, 400);
}

TEST_F(conformance_endpoints, StreamFlushesEachLineBeforeThePause) {
  RawConnection c(port(), 4000ms);
  ASSERT_TRUE(c.send("GET /stream?n=2&delay_ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto start = Clock::now();
  auto head = c.read_until("\r\n\r\n");
  ASSERT_TRUE(head);
  EXPECT_NE(head->find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_TRUE(c.read_until("chunk 0\n")) << "the first line did not arrive before the 5 s pause ended";
  EXPECT_LT(Clock::now() - start, 4500ms);
  c.reset();  // the server's handler sees the client leave

  auto r = get("/stream?n=3");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "chunk 0\nchunk 1\nchunk 2\n");
  EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
  auto defaults = get("/stream");
  ASSERT_TRUE(defaults);
  EXPECT_TRUE(defaults->body.ends_with("chunk 9\n"));
  EXPECT_EQ(get("/stream?n=0")->body, "");
  auto old = raw_request(port(), "GET /stream?n=2 HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(old);
  EXPECT_FALSE(old->header("transfer-encoding"));
  EXPECT_EQ(old->body, "chunk 0\nchunk 1\n");
  for (const char* bad : {"/stream?n=-1", "/stream?n=10001", "/stream?n=abc", "/stream?delay_ms=5001", "/stream?n=1x"}) {
    EXPECT_EQ(get(bad)->code, 400) << bad;
  }
}

SQUALL_ASYNC_TEST(conformance_endpoints, SleepWaitsWithoutBlockingOthers) {
  std::vector<squall::Future<HTTPResponse>> sleeps;
  auto client = AsyncHTTPClient::create(squall::http::HTTPClientOptions{.max_clients = 50, .max_connections_per_host = 50});
  auto start = io_loop().time();
  for (int i = 0; i < 50; ++i) {
    HTTPRequest req;
    req.url = url("/sleep?ms=600");
    sleeps.push_back(client->fetch(req, false));
  }
  HTTPResponse hello = co_await fetch("/hello");
  EXPECT_EQ(hello.code, 200);
  for (auto& f : sleeps) EXPECT_FALSE(f.done()) << "/hello waited for a sleeper";
  for (auto& f : sleeps) {
    HTTPResponse r = co_await f;
    EXPECT_EQ(json::parse(r.body), json::parse(R"({"slept_ms": 600})"));
  }
  // One sleep period, not fifty.
  EXPECT_LT(io_loop().time() - start, 3s) << "the sleeps did not overlap";
  EXPECT_EQ((co_await fetch("/sleep")).body, R"({"slept_ms": 0})");
  EXPECT_EQ((co_await fetch("/sleep?ms=60001")).code, 400);
  EXPECT_EQ((co_await fetch("/sleep?ms=-5")).code, 400);
}

TEST_F(conformance_endpoints, StatusAnswersTheCodeAskedFor) {
  auto r = get("/status/418");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 418);
  EXPECT_EQ(json::parse(r->body), json::parse(R"({"status": 418})"));
  EXPECT_EQ(get("/status/200")->code, 200);
  EXPECT_EQ(get("/status/599")->code, 599);
  for (const char* code : {"204", "304"}) {
    RawConnection c(port());
    ASSERT_TRUE(c.send("GET /status/" + std::string(code) + " HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto empty = c.read_response();
    ASSERT_TRUE(empty) << code;
    EXPECT_EQ(empty->code, std::stoi(code));
    EXPECT_EQ(empty->header("content-length").value_or("0"), "0") << code;
    EXPECT_FALSE(empty->header("transfer-encoding")) << code;
    auto next = c.read_response();
    ASSERT_TRUE(next) << code;
    EXPECT_EQ(next->body, "Hello, world") << code << ": a body followed the " << code;
  }
  for (const char* bad : {"/status/199", "/status/600", "/status/99999999999999999999"}) {
    EXPECT_EQ(get(bad)->code, 400) << bad;
  }
  int word = get("/status/abc")->code;
  EXPECT_TRUE(word == 400 || word == 404) << word;
}

TEST_F(conformance_endpoints, RedirectSendsTheDecodedTargetAndRefusesControlCharacters) {
  auto r = get("/redirect?to=%2Fpath%3Fq%3D1%26r%3D%C3%A9");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 302);
  EXPECT_EQ(r->header("location"), "/path?q=1&r=\xc3\xa9");
  EXPECT_EQ(get("/redirect?to=http%3A%2F%2Fexample.com%2F")->header("location"), "http://example.com/");
  for (const char* bad : {"/redirect", "/redirect?to=", "/redirect?to=%2Fa%0d%0aSet-Cookie:%20x=1", "/redirect?to=%2Fa%00",
                          "/redirect?to=%2Fa%7f", "/redirect?to=%2Fa%09b"}) {
    auto refused = get(bad);
    ASSERT_TRUE(refused) << bad;
    EXPECT_EQ(refused->code, 400) << bad;
    EXPECT_FALSE(refused->header("set-cookie")) << bad;
  }
}

/// The value of cookie `name` in the response's Set-Cookie fields.
std::optional<std::string> set_cookie_value(const RawResponse& r, std::string_view name, std::string* whole = nullptr) {
  for (const auto& [n, v] : r.headers) {
    if (n != "set-cookie" || !v.starts_with(std::string(name) + "=")) continue;
    if (whole) *whole = v;
    return v.substr(name.size() + 1, v.find(';') - name.size() - 1);
  }
  return std::nullopt;
}

TEST_F(conformance_endpoints, CookieSetsPlainAndSignedCookies) {
  auto set = raw_request(port(), "POST /cookie HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                 "Content-Length: 15\r\n\r\nvalue=abc.D_9-z");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->code, 200);
  EXPECT_EQ(json::parse(set->body), json::parse(R"({"value": "abc.D_9-z"})"));
  std::string plain_header, signed_header;
  EXPECT_EQ(set_cookie_value(*set, "plain", &plain_header), "abc.D_9-z");
  auto signed_value = set_cookie_value(*set, "signed", &signed_header);
  ASSERT_TRUE(signed_value);
  EXPECT_NE(plain_header.find("Path=/"), std::string::npos);
  EXPECT_NE(signed_header.find("Path=/"), std::string::npos);
  EXPECT_NE(signed_header.find("HttpOnly"), std::string::npos);

  auto read = [&](std::string cookies) {
    auto r = get("/cookie", "Cookie: " + cookies + "\r\n");
    return r && r->code == 200 ? json::parse(r->body) : json(r ? r->code : -1);
  };
  EXPECT_EQ(read("plain=abc.D_9-z; signed=" + *signed_value), json::parse(R"({"plain": "abc.D_9-z", "signed": "abc.D_9-z"})"));
  EXPECT_EQ(read("plain=\"quoted\"; signed=\"" + *signed_value + "\""),
            json::parse(R"({"plain": "quoted", "signed": "abc.D_9-z"})"));
  EXPECT_EQ(get("/cookie")->body, R"({"plain": null, "signed": null})");

  // Every modification of the signed value yields null, never a 500.
  std::vector<std::string> forged = {"abc.D_9-z", *signed_value + "0", signed_value->substr(1),
                                     signed_value->substr(0, signed_value->size() - 1)};
  for (std::size_t i : {std::size_t{0}, signed_value->size() / 2, signed_value->size() - 1}) {
    std::string flipped = *signed_value;
    flipped[i] = flipped[i] == 'a' ? 'b' : 'a';
    forged.push_back(flipped);
  }
  auto other = raw_request(port(), "POST /cookie HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                   "Content-Length: 11\r\n\r\nvalue=other");
  ASSERT_TRUE(other);
  auto other_signed = set_cookie_value(*other, "signed");
  ASSERT_TRUE(other_signed);
  // The signature of one value on the payload of another.
  forged.push_back(signed_value->substr(0, signed_value->rfind('|')) + other_signed->substr(other_signed->rfind('|')));
  for (const std::string& f : forged) {
    EXPECT_EQ(read("signed=" + f)["signed"], nullptr) << f;
  }
  // A value signed under another secret.
  ServerProcess stranger(SQUALL_CONFORMANCE_PATH, {"--port", "0", "--cookie-secret", "another-secret"});
  ASSERT_GT(stranger.port(), 0);
  auto foreign = raw_request(stranger.port(), "POST /cookie HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                              "Content-Length: 15\r\n\r\nvalue=abc.D_9-z");
  ASSERT_TRUE(foreign);
  auto foreign_signed = set_cookie_value(*foreign, "signed");
  ASSERT_TRUE(foreign_signed);
  EXPECT_EQ(read("signed=" + *foreign_signed)["signed"], nullptr);
}

TEST_F(conformance_endpoints, CookieRefusesBadValuesAndSetsNothing) {
  for (const std::string& body : std::vector<std::string>{"value=", "value=has%20space", "value=semi%3Bcolon", "value=" + std::string(65, 'a'), "other=1",
                           "value=%C3%A9"}) {
    auto r = raw_request(port(), "POST /cookie HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->code, 400) << body;
    EXPECT_FALSE(r->header("set-cookie")) << body;
  }
}

TEST_F(conformance_endpoints, XsrfAcceptsOnlyTokensMatchingTheCookie) {
  auto issued = get("/xsrf");
  ASSERT_TRUE(issued);
  EXPECT_EQ(issued->code, 200);
  std::string token = json::parse(issued->body)["token"];
  auto cookie = set_cookie_value(*issued, "_xsrf");
  ASSERT_TRUE(cookie);
  auto again = get("/xsrf", "Cookie: _xsrf=" + *cookie + "\r\n");
  ASSERT_TRUE(again);
  EXPECT_FALSE(set_cookie_value(*again, "_xsrf")) << "a client with a cookie got a new one";
  std::string token2 = json::parse(again->body)["token"];

  auto post_xsrf = [&](std::string cookie_header, std::string body, std::string extra = {},
                       std::string type = "application/x-www-form-urlencoded") {
    auto r = raw_request(port(), "POST /xsrf HTTP/1.1\r\nHost: x\r\nContent-Type: " + type + "\r\n" + cookie_header + extra +
                                     "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    return r ? r->code : -1;
  };
  std::string with_cookie = "Cookie: _xsrf=" + *cookie + "\r\n";
  EXPECT_EQ(post_xsrf(with_cookie, "_xsrf=" + squall::http::url_escape(token)), 200);
  EXPECT_EQ(post_xsrf(with_cookie, "_xsrf=" + squall::http::url_escape(token2)), 200);
  EXPECT_EQ(post_xsrf(with_cookie, "", "X-XSRFToken: " + token + "\r\n"), 200);
  std::string form = "--zz\r\nContent-Disposition: form-data; name=\"_xsrf\"\r\n\r\n" + token + "\r\n--zz--\r\n";
  EXPECT_EQ(post_xsrf(with_cookie, form, {}, "multipart/form-data; boundary=zz"), 200);

  EXPECT_EQ(post_xsrf(with_cookie, ""), 403);                                    // no token
  EXPECT_EQ(post_xsrf("", "_xsrf=" + squall::http::url_escape(token)), 403);    // no cookie
  EXPECT_EQ(post_xsrf(with_cookie, "_xsrf=garbage"), 403);                       // malformed
  auto other_session = get("/xsrf");
  ASSERT_TRUE(other_session);
  std::string foreign = json::parse(other_session->body)["token"];
  EXPECT_EQ(post_xsrf(with_cookie, "_xsrf=" + squall::http::url_escape(foreign)), 403);  // another session's
  // Only /xsrf checks: /echo takes a POST without any token.
  EXPECT_EQ(raw_request(port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")->code, 200);
}

TEST_F(conformance_endpoints, UploadStreamHashesA8MiBChunkedBodyAboveTheBodyLimit) {
  std::string data(8 * 1024 * 1024, '\0');
  std::mt19937 rng(42);
  for (char& ch : data) ch = static_cast<char>(rng());
  RawConnection c(port(), 20000ms);
  ASSERT_TRUE(c.send("PUT /upload-stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  constexpr std::size_t kChunk = 256 * 1024;
  char size_line[32];
  for (std::size_t off = 0; off < data.size(); off += kChunk) {
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", kChunk);
    ASSERT_TRUE(c.send(size_line));
    ASSERT_TRUE(c.send(std::string_view(data).substr(off, kChunk)));
    ASSERT_TRUE(c.send("\r\n"));
  }
  ASSERT_TRUE(c.send("0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 200);
  json body = json::parse(r->body);
  EXPECT_EQ(body["size"], data.size());
  EXPECT_EQ(body["sha256"], sha256_hex(data));

  auto sized = raw_request(port(), "PUT /upload-stream HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(sized);
  EXPECT_EQ(json::parse(sized->body), json({{"sha256", sha256_hex("hello")}, {"size", 5}}));
  auto empty = raw_request(port(), "PUT /upload-stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(empty);
  EXPECT_EQ(json::parse(empty->body)["sha256"], sha256_hex(""));
}

// 3.16 static files

using conformance_static = Conformance;

TEST_F(conformance_static, ServesDecodedPathsWithTypesAndValidators) {
  auto r = get("/static/hello.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 200);
  EXPECT_EQ(r->body, "Hello, static world\n");
  EXPECT_TRUE(r->header("etag"));
  EXPECT_TRUE(r->header("last-modified"));
  EXPECT_EQ(get("/static/with%20space.txt")->body, "spaced\n");
  EXPECT_EQ(get("/static/%C3%A9t%C3%A9.txt")->body, "summer\n");
  EXPECT_EQ(get("/static/sub/inner.txt")->body, "inner\n");
  auto type = [&](std::string path) {
    std::string t = get("/static/" + path)->header("content-type").value_or("");
    return t.substr(0, t.find(';'));
  };
  EXPECT_EQ(type("hello.txt"), "text/plain");
  EXPECT_EQ(type("style.css"), "text/css");
  std::string js = type("app.js");
  EXPECT_TRUE(js == "application/javascript" || js == "text/javascript") << js;
  EXPECT_EQ(type("data.json"), "application/json");
  EXPECT_EQ(type("image.png"), "image/png");
  EXPECT_EQ(type("blob.xyz"), "application/octet-stream");
  EXPECT_EQ(get("/static/missing.txt")->code, 404);
  int dir = get("/static/sub")->code;
  EXPECT_TRUE(dir == 403 || dir == 404 || dir == 301 || dir == 302) << dir;
  int dir_slash = get("/static/sub/")->code;
  EXPECT_TRUE(dir_slash == 403 || dir_slash == 404) << dir_slash;
}

TEST_F(conformance_static, ConditionalRequestsGive304) {
  auto r = get("/static/hello.txt");
  ASSERT_TRUE(r);
  std::string etag = *r->header("etag");
  std::string modified = *r->header("last-modified");
  for (const std::string& match : std::vector<std::string>{etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    auto c = get("/static/hello.txt", "If-None-Match: " + match + "\r\n");
    ASSERT_TRUE(c) << match;
    EXPECT_EQ(c->code, 304) << match;
    EXPECT_EQ(c->body, "") << match;
  }
  EXPECT_EQ(get("/static/hello.txt", "If-None-Match: \"other\"\r\n")->code, 200);
  EXPECT_EQ(get("/static/hello.txt", "If-Modified-Since: " + modified + "\r\n")->code, 304);
  EXPECT_EQ(get("/static/hello.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n")->code, 200);
  // If-None-Match wins over If-Modified-Since.
  EXPECT_EQ(get("/static/hello.txt", "If-None-Match: \"other\"\r\nIf-Modified-Since: " + modified + "\r\n")->code, 200);
}

TEST_F(conformance_static, RangesGive206Or416) {
  // "Hello, static world\n" is 20 bytes.
  auto range = [&](std::string value) { return get("/static/hello.txt", "Range: " + value + "\r\n"); };
  auto a = range("bytes=0-4");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 206);
  EXPECT_EQ(a->body, "Hello");
  EXPECT_EQ(a->header("content-range"), "bytes 0-4/20");
  auto tail = range("bytes=14-");
  EXPECT_EQ(tail->body, "world\n");
  EXPECT_EQ(tail->header("content-range"), "bytes 14-19/20");
  auto suffix = range("bytes=-6");
  EXPECT_EQ(suffix->body, "world\n");
  auto clamped = range("bytes=14-999");
  EXPECT_EQ(clamped->code, 206);
  EXPECT_EQ(clamped->header("content-range"), "bytes 14-19/20");
  auto beyond = range("bytes=20-");
  EXPECT_EQ(beyond->code, 416);
  EXPECT_EQ(beyond->header("content-range"), "bytes */20");
  EXPECT_EQ(range("items=0-5")->code, 200);
  int garbage = range("bytes=abc")->code;
  EXPECT_TRUE(garbage == 200 || garbage == 416) << garbage;
  int backwards = range("bytes=5-2")->code;
  EXPECT_TRUE(backwards == 200 || backwards == 416) << backwards;
  int several = range("bytes=0-1,4-5")->code;
  EXPECT_TRUE(several == 200 || several == 206) << several;
  auto stale = get("/static/hello.txt", "Range: bytes=0-4\r\nIf-Range: \"not-the-etag\"\r\n");
  EXPECT_EQ(stale->code, 200);
  EXPECT_EQ(stale->body, "Hello, static world\n");
}

TEST_F(conformance_static, NothingOutsideTheRootCanBeRead) {
  for (const char* target : {"/static/../static-secret/secret.txt", "/static/%2e%2e/static-secret/secret.txt",
                             "/static/..%2fstatic-secret%2fsecret.txt", "/static/%2E%2E%2Fstatic-secret/secret.txt",
                             "/static/..%5cstatic-secret%5csecret.txt", "/static/..\\static-secret\\secret.txt",
                             "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/%c0%ae%c0%ae/static-secret/secret.txt",
                             "/static/hello.txt%00.png", "/static/%252e%252e/static-secret/secret.txt",
                             "/static/sub/../../static-secret/secret.txt", "//etc/passwd"}) {
    auto r = raw_request(port(), std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if (!r) continue;  // closing the connection is a refusal too
    EXPECT_TRUE(r->code == 400 || r->code == 403 || r->code == 404) << target << " " << r->code;
    EXPECT_EQ(r->body.find("secret\n"), std::string::npos) << target;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << target;
  }
}

// ---------------------------------------------------------------------------------------------
// 4. WebSocket
// ---------------------------------------------------------------------------------------------

using conformance_websocket = Conformance;

TEST_F(conformance_websocket, HandshakeAnswers101WithTheAcceptKey) {
  RawWebSocket ws(port());
  auto r = ws.open("/ws/echo");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 101);
  EXPECT_EQ(r->header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(r->header("sec-websocket-extensions"), std::nullopt);
}

TEST_F(conformance_websocket, BadHandshakesAreRefused) {
  auto code = [&](std::string method, std::string headers) {
    auto r = raw_request(port(), method + " /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n", method == "HEAD");
    return r ? r->code : -1;
  };
  const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  const std::string v13 = "Sec-WebSocket-Version: 13\r\n";
  int no_upgrade = code("GET", "Connection: Upgrade\r\n" + key + v13);
  EXPECT_TRUE(no_upgrade == 400 || no_upgrade == 426) << no_upgrade;
  int no_connection = code("GET", "Upgrade: websocket\r\n" + key + v13);
  EXPECT_TRUE(no_connection == 400 || no_connection == 426) << no_connection;
  EXPECT_EQ(code("GET", "Upgrade: websocket\r\nConnection: Upgrade\r\n" + v13), 400);
  EXPECT_EQ(code("GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\n" + v13), 400);
  auto version = raw_request(port(), "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                                         key + "Sec-WebSocket-Version: 8\r\n\r\n");
  ASSERT_TRUE(version);
  EXPECT_EQ(version->code, 426);
  EXPECT_EQ(version->header("sec-websocket-version"), "13");
  int post = code("POST", "Content-Length: 0\r\n");
  EXPECT_TRUE(post == 405 || post == 400) << post;
  EXPECT_EQ(code("GET", "Upgrade: websocket\r\nConnection: Upgrade\r\n" + key + v13 + "Origin: http://evil.example\r\n"), 403);
  RawWebSocket same_origin(port());
  auto ok = same_origin.open("/ws/echo", "Origin: http://127.0.0.1\r\n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->code, 101);
}

SQUALL_ASYNC_TEST(conformance_websocket, EchoReturnsTextBinaryAndEmptyMessages) {
  auto ws = co_await squall::websocket::websocket_connect(ws_url("/ws/echo"));
  EXPECT_FALSE(ws.deflate_parameters().has_value());
  std::string binary("\0\x01\xfe\xff", 4);
  co_await ws.write_message("h\u00e9llo");
  co_await ws.write_message(binary, /*binary=*/true);
  co_await ws.write_message("");
  co_await ws.write_message(std::string(), /*binary=*/true);
  co_await ws.write_message(std::string(200000, 'x'));
  auto text = co_await ws.read_message();
  auto bin = co_await ws.read_message();
  auto empty_text = co_await ws.read_message();
  auto empty_binary = co_await ws.read_message();
  auto large = co_await ws.read_message();
  CO_ASSERT_TRUE(text && bin && empty_text && empty_binary && large);
  EXPECT_EQ(text->data, "h\u00e9llo");
  EXPECT_FALSE(text->binary);
  EXPECT_EQ(bin->data, binary);
  EXPECT_TRUE(bin->binary);
  EXPECT_EQ(empty_text->data, "");
  EXPECT_FALSE(empty_text->binary);
  EXPECT_TRUE(empty_binary->binary);
  EXPECT_EQ(large->data.size(), 200000u);
  ws.close(1000);
  co_await ws.wait_closed();
  EXPECT_EQ(ws.close_code(), 1000);
}

SQUALL_ASYNC_TEST(conformance_websocket, PermessageDeflateIsNegotiatedWhenOffered) {
  squall::websocket::WebSocketConnectOptions options;
  options.compression = squall::websocket::CompressionOptions{};
  auto ws = co_await squall::websocket::websocket_connect(ws_url("/ws/echo"), options);
  EXPECT_TRUE(ws.deflate_parameters().has_value());
  EXPECT_NE(ws.headers().get("Sec-WebSocket-Extensions", "").find("permessage-deflate"), std::string_view::npos);
  std::string text(50000, 'a');
  co_await ws.write_message(text);
  auto back = co_await ws.read_message();
  CO_ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->data, text);
  ws.close(1000);
  co_await ws.wait_closed();
}

TEST_F(conformance_websocket, UncompressedFramesNeverSetRsv1) {
  RawWebSocket ws(port());
  ASSERT_EQ(ws.open("/ws/echo")->code, 101);
  ASSERT_TRUE(ws.send(make_frame(1, std::string(5000, 'a'))));
  auto f = ws.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->rsv, 0);
  EXPECT_EQ(f->payload.size(), 5000u);
}

TEST_F(conformance_websocket, PingsAreAnsweredEvenBetweenFragments) {
  RawWebSocket ws(port());
  ASSERT_EQ(ws.open("/ws/echo")->code, 101);
  ASSERT_TRUE(ws.send(make_frame(1, "h\xc3", /*fin=*/false)));
  ASSERT_TRUE(ws.send(make_frame(9, "ping-data")));
  ASSERT_TRUE(ws.send(make_frame(0xA, "unsolicited")));
  ASSERT_TRUE(ws.send(make_frame(0, "\xa9llo")));
  auto pong = ws.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 0xA);
  EXPECT_EQ(pong->payload, "ping-data");
  auto message = ws.read_frame();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->opcode, 1);
  EXPECT_EQ(message->payload, "h\xc3\xa9llo");  // UTF-8 checked across the fragments
}

/// Sends `bytes` after a handshake and returns the close code the server
/// fails the connection with (0 for a plain TCP close, -1 for neither).
int failure_code(int port, const std::string& bytes) {
  RawWebSocket ws(port);
  auto r = ws.open("/ws/echo");
  if (!r || r->code != 101) return -2;
  ws.send(bytes);
  while (auto f = ws.read_frame()) {
    if (f->opcode == 8) {
      bool closed = ws.connection().read_to_close(3000ms);
      return closed ? f->close_code().value_or(1005) : -1;
    }
  }
  return ws.connection().eof() ? 0 : -1;
}

TEST_F(conformance_websocket, ProtocolViolationsFailTheConnectionWith1002) {
  auto is_1002 = [](int code) { return code == 1002 || code == 0; };
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(1, "hi", true, /*masked=*/false))) << "unmasked";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(1, "hi", true, true, /*rsv=*/4))) << "RSV1";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(1, "hi", true, true, /*rsv=*/2))) << "RSV2";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(3, "hi"))) << "reserved opcode";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(0xB, "hi"))) << "reserved control opcode";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(0, "hi"))) << "continuation without start";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(1, "a", false) + make_frame(1, "b"))) << "new message inside";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(9, std::string(126, 'p')))) << "long ping";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(9, "p", /*fin=*/false))) << "fragmented ping";
  EXPECT_PRED1(is_1002, failure_code(port(), make_frame(8, "x"))) << "1-byte close";
  for (int bad : {999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
    EXPECT_PRED1(is_1002, failure_code(port(), make_frame(8, close_payload(bad)))) << "close code " << bad;
  }
}

TEST_F(conformance_websocket, InvalidUtf8Fails1007AndOversizedMessages1009) {
  int utf8 = failure_code(port(), make_frame(1, "bad \xff\xfe"));
  EXPECT_TRUE(utf8 == 1007 || utf8 == 0) << utf8;
  int split = failure_code(port(), make_frame(1, "a\xc3", false) + make_frame(0, "(", true));
  EXPECT_TRUE(split == 1007 || split == 0) << split;
  // A header declaring 16 MiB + 1 and no payload: the server decides from the header.
  int big = failure_code(port(), make_frame(2, "", true, true, 0, 16 * 1024 * 1024 + 1));
  EXPECT_TRUE(big == 1009 || big == 0) << big;
}

TEST_F(conformance_websocket, CloseFramesAreEchoedThenTheConnectionCloses) {
  for (std::optional<int> code : {std::optional<int>(1000), std::optional<int>(4001), std::optional<int>()}) {
    RawWebSocket ws(port());
    ASSERT_EQ(ws.open("/ws/echo")->code, 101);
    ASSERT_TRUE(ws.send(make_frame(8, code ? close_payload(*code, "bye") : "")));
    auto f = ws.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 8);
    if (code) {
      auto echoed = f->close_code();
      EXPECT_TRUE(echoed == *code || echoed == 1000) << *code;
    } else {
      EXPECT_TRUE(f->payload.empty() || f->close_code() == 1000);
    }
    EXPECT_TRUE(ws.connection().read_to_close(3000ms));
  }
}

TEST_F(conformance_websocket, AnOpenConnectionOutlivesTheIdleTimeout) {
  RawWebSocket ws(port());
  ASSERT_EQ(ws.open("/ws/echo")->code, 101);
  // The server runs with --idle-timeout 1: an HTTP connection would be gone.
  EXPECT_TRUE(ws.connection().quiet_for(1500ms));
  ASSERT_TRUE(ws.send(make_frame(1, "still here")));
  auto f = ws.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "still here");
}

TEST_F(conformance_websocket, SixteenMiBMessagesAreAccepted) {
  RawWebSocket ws(port());
  ASSERT_EQ(ws.open("/ws/echo")->code, 101);
  std::string payload(16 * 1024 * 1024, 'b');
  ASSERT_TRUE(ws.send(make_frame(2, payload)));
  auto f = ws.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 2);
  EXPECT_EQ(f->payload.size(), payload.size());
}

SQUALL_ASYNC_TEST(conformance_websocket, ChatDeliversEveryMessageToEveryMemberInOrder) {
  std::vector<squall::websocket::WebSocketClientConnection> members;
  for (int i = 0; i < 3; ++i) members.push_back(co_await squall::websocket::websocket_connect(ws_url("/ws/chat")));
  // A member that vanishes without a close frame.
  auto dropped = std::make_unique<RawWebSocket>(port());
  CO_ASSERT_EQ(dropped->open("/ws/chat")->code, 101);
  dropped->connection().reset();
  for (int i = 0; i < 5; ++i) co_await members[0].write_message("from0-" + std::to_string(i));
  co_await members[1].write_message("from1");
  for (int m = 0; m < 3; ++m) {
    std::vector<std::string> got;
    while (got.size() < 6) {
      auto message = co_await members[m].read_message();
      CO_ASSERT_TRUE(message.has_value());
      got.push_back(message->data);
    }
    std::vector<std::string> from0;
    for (const auto& g : got) {
      if (g.starts_with("from0-")) from0.push_back(g);
    }
    EXPECT_EQ(from0, (std::vector<std::string>{"from0-0", "from0-1", "from0-2", "from0-3", "from0-4"})) << m;
    EXPECT_NE(std::find(got.begin(), got.end(), "from1"), got.end()) << m;
  }
  // A member leaving with a close handshake does not disturb the others either.
  members[2].close(1000);
  co_await members[2].wait_closed();
  co_await members[1].write_message("after");
  for (int m = 0; m < 2; ++m) {
    auto message = co_await members[m].read_message();
    CO_ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->data, "after");
  }
  for (int m = 0; m < 2; ++m) {
    members[m].close(1000);
    co_await members[m].wait_closed();
  }
}

}  // namespace
