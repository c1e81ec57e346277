// AsyncHTTPClient over real loopback sockets, one suite run over both
// backends (HTTPClientTest/native.* and HTTPClientTest/curl.*) against
// squall's own HTTPServer and small scripted TCP servers: methods and
// bodies, redirects, every timeout, keep-alive pooling, max_clients
// queueing, TLS verification, gzip, chunked and streamed bodies, limits,
// 100-continue, body producers, cancellation. Native-only properties (its
// pool's timers, its retry rules) are in SimpleHTTPClientTest at the end.
// No traffic leaves the machine: names resolve through a DNS responder on
// 127.0.0.1.
#include "squall/http/httpclient.hpp"

#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../support/dns_responder.hpp"
#include "../support/test_certs.hpp"
#include "squall/core/gen.hpp"
#include "squall/core/locks.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/caresresolver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/tcpserver.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

std::string gzip(std::string_view data) {
  z_stream z{};
  // 31 = 15 window bits + 16 for the gzip wrapper.
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

/// An HTTPServer that counts the connections it accepted.
class CountingServer : public HTTPServer {
 public:
  using HTTPServer::HTTPServer;
  int accepted = 0;

 protected:
  Future<void> handle_stream(std::unique_ptr<net::IOStream> stream, std::string address) override {
    ++accepted;
    return HTTPServer::handle_stream(std::move(stream), std::move(address));
  }
};

/// A TCP server running a scripted coroutine per connection. Destroying it
/// closes the connections still open, so every script ends with the test.
class ScriptedServer : public net::TCPServer {
 public:
  using Script = UniqueFunction<Future<void>(net::IOStream& stream, int connection)>;
  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    auto [sock, port] = testing::bind_unused_port();
    port_ = port;
    add_socket(std::move(sock));
  }
  ~ScriptedServer() override {
    stop();
    // Each close ends a script, which takes its stream out of the list
    // (some may already be closing, on the stack below this destructor).
    for (net::IOStream* s : std::vector<net::IOStream*>(*open_)) {
      if (std::find(open_->begin(), open_->end(), s) != open_->end()) s->close();
    }
  }
  int port() const { return port_; }
  int accepted = 0;

 protected:
  Future<void> handle_stream(std::unique_ptr<net::IOStream> stream, std::string) override {
    int n = accepted++;
    // Shared: a script may end after the server is gone (a test that
    // returned as soon as the script set an Event).
    std::shared_ptr<std::vector<net::IOStream*>> open = open_;
    open->push_back(stream.get());
    try {
      co_await script_(*stream, n);
    } catch (const net::StreamClosedError&) {
    }
    std::erase(*open, stream.get());
  }

 private:
  Script script_;
  std::shared_ptr<std::vector<net::IOStream*>> open_ = std::make_shared<std::vector<net::IOStream*>>();
  int port_ = 0;
};

/// Reads one request head (up to the empty line) from a raw stream.
Future<std::string> read_request_head(net::IOStream& s) {
  std::string head = co_await s.read_until("\r\n\r\n", 64 * 1024);
  co_return head;
}

/// Waits until the peer closes; returns how many bytes came meanwhile.
Future<std::size_t> wait_for_close(net::IOStream& s) {
  std::size_t n = s.buffered().size();
  s.consume(n);
  try {
    for (;;) {
      co_await s.read_more();
      n += s.buffered().size();
      s.consume(s.buffered().size());
    }
  } catch (const net::StreamClosedError&) {
  }
  co_return n;
}

Future<void> silently_wait_for_close(net::IOStream& s) { co_await wait_for_close(s); }

bool contains_any(const std::string& text, const std::vector<std::string>& needles) {
  for (const auto& n : needles) {
    if (text.find(n) != std::string::npos) return true;
  }
  return false;
}

/// The text of what `f` failed with ("" if it did not).
Future<std::string> failure_of(Future<HTTPResponse> f) {
  std::string what;
  try {
    co_await std::move(f);
  } catch (const std::exception& e) {
    what = e.what();
  }
  co_return what;
}

/// The fixture: a server on the test's loop and a client of the test's
/// backend. Each test body runs once per backend (see CLIENT_TEST).
class HTTPClientTest : public testing::AsyncTest {
 public:
  explicit HTTPClientTest(HTTPClientBackend backend) : backend_(backend) {}

 protected:
  void TearDown() override {
    client_.reset();
    server_.reset();
    AsyncTest::TearDown();
  }

  /// A safety net for the slowest test (streaming under sanitizers on a
  /// loaded machine); each test takes well under a second otherwise.
  Duration async_test_timeout() const override { return std::chrono::seconds(30); }

  void start_server(HTTPServerOptions options = {}) {
    server_ = std::make_unique<CountingServer>(
        HTTPServer::RequestCallback([this](HTTPServerRequest& req) -> Future<void> { return handle(req); }),
        std::move(options));
    auto [sock, port] = testing::bind_unused_port();
    port_ = port;
    server_->add_socket(std::move(sock));
  }

  /// The test's client, made on first use. Options go in a statement of
  /// their own (`client({.max_clients = 1});`): GCC 12 miscompiles an
  /// aggregate temporary inside a co_await expression, so the no-argument
  /// form must not build one.
  AsyncHTTPClient& client() {
    if (!client_) client_ = AsyncHTTPClient::create(backend_);
    return *client_;
  }
  AsyncHTTPClient& client(HTTPClientOptions options) {
    if (!client_) client_ = AsyncHTTPClient::create(backend_, std::move(options));
    return *client_;
  }

  std::string url(const std::string& path) const { return base() + path; }
  std::string base() const { return scheme_ + "://" + host_ + ":" + std::to_string(port_); }

  Future<void> handle(HTTPServerRequest& req) {
    ++requests_;
    last_headers_ = req.headers;
    auto args = req.query_arguments();
    auto arg = [&](const std::string& name, const std::string& fallback = "") {
      auto it = args.find(name);
      return it == args.end() || it->second.empty() ? fallback : it->second.front();
    };
    if (req.path == "/hello") {
      req.respond(200, "text/plain", "Hello, world");
    } else if (req.path == "/echo") {
      HTTPHeaders h;
      h.add("X-Method", req.method);
      h.add("Content-Type", "application/octet-stream");
      req.respond(200, h, req.body);
    } else if (req.path == "/headers") {
      req.respond(200, "text/plain", req.headers.to_string());
    } else if (req.path == "/status") {
      req.respond(std::stoi(arg("code", "200")), "text/plain", "status body");
    } else if (req.path == "/redirect") {
      HTTPHeaders h;
      h.add("Location", arg("to", "/echo"));
      req.respond(std::stoi(arg("code", "302")), h, "moved");
    } else if (req.path == "/loop") {
      HTTPHeaders h;
      h.add("Location", "/loop");
      req.respond(302, h, "again");
    } else if (req.path == "/gzip") {
      HTTPHeaders h;
      h.add("Content-Encoding", "gzip");
      h.add("X-Accept-Encoding", req.headers.get("Accept-Encoding", "-"));
      req.respond(200, h, gzip(pattern(std::stoul(arg("n", "10000")))));
    } else if (req.path == "/chunked") {
      HTTPHeaders h;
      if (arg("gzip") == "1") h.add("Content-Encoding", "gzip");
      std::string body = arg("gzip") == "1" ? gzip(pattern(100000)) : pattern(100000);
      std::size_t piece = body.size() / 3 + 1;
      co_await req.write_headers(200, h, std::string_view(body).substr(0, piece));
      co_await req.write(std::string_view(body).substr(piece, piece));
      co_await req.write(std::string_view(body).substr(2 * piece));
      req.finish();
    } else if (req.path == "/big") {
      // n bytes in 1 MiB pieces, each awaited (flat memory on this side too).
      std::uint64_t n = std::stoull(arg("n", "0"));
      HTTPHeaders h;
      h.add("Content-Length", std::to_string(n));
      const std::string piece(std::min<std::uint64_t>(n, 1 << 20), 'x');
      co_await req.write_headers(200, h);
      for (std::uint64_t sent = 0; sent < n;) {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), n - sent));
        co_await req.write(std::string_view(piece).substr(0, take));
        sent += take;
      }
      req.finish();
    } else if (req.path == "/short") {
      // Promises 100 bytes, sends 10, ends: the server closes mid-body.
      HTTPHeaders h;
      h.add("Content-Length", "100");
      co_await req.write_headers(200, h, "0123456789");
      req.finish();
    } else if (req.path == "/stall") {
      ++stalls_;
      try {
        co_await sleep(30s);
      } catch (const CancelledError&) {
        ++stall_cancelled_;
        stall_gone_.set();
        throw;
      }
      req.respond(200, "text/plain", "late");
    } else if (req.path == "/stall-body") {
      HTTPHeaders h;
      h.add("Content-Length", "100");
      co_await req.write_headers(200, h, "0123456789");
      co_await sleep(30s);
      req.finish();
    } else if (req.path == "/sleep") {
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
      order_.push_back(arg("i", "?"));
      co_await sleep(30ms);
      --in_flight_;
      req.respond(200, "text/plain", "slept");
    } else if (req.path == "/head-length") {
      HTTPHeaders h;
      h.add("Content-Length", "5");
      co_await req.write_headers(200, h, req.method == "HEAD" ? "" : "fives");
      req.finish();
    } else {
      req.respond(404, "text/plain", "no such page");
    }
  }

  HTTPClientBackend backend_;
  std::unique_ptr<CountingServer> server_;
  std::unique_ptr<AsyncHTTPClient> client_;
  std::string scheme_ = "http";
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  int requests_ = 0;
  HTTPHeaders last_headers_;
  int stalls_ = 0;
  int stall_cancelled_ = 0;
  Event stall_gone_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  std::vector<std::string> order_;
};

}  // namespace

/// Registers test class T for one backend, as HTTPClientTest/<backend>.<name>.
template <class T>
::testing::TestInfo* register_client_test(const char* name, HTTPClientBackend backend, const char* file, int line) {
  const bool native = backend == HTTPClientBackend::native;
  return ::testing::RegisterTest(native ? "HTTPClientTest/native" : "HTTPClientTest/curl", name, nullptr,
                                 native ? "native" : "curl", file, line,
                                 [backend]() -> HTTPClientTest* { return new T(backend); });
}

/// Defines a coroutine test body run once per backend:
/// HTTPClientTest/native.<name> and HTTPClientTest/curl.<name>.
#define CLIENT_TEST(name)                                                                              \
  class HTTPClientTest_##name : public HTTPClientTest {                                                \
   public:                                                                                             \
    using HTTPClientTest::HTTPClientTest;                                                              \
    void TestBody() override { this->run_coroutine_test([this] { return this->CoroutineBody(); }); }   \
    ::squall::Future<void> CoroutineBody();                                                            \
  };                                                                                                   \
  [[maybe_unused]] static ::testing::TestInfo* const HTTPClientTest_##name##_native =                  \
      register_client_test<HTTPClientTest_##name>(#name, HTTPClientBackend::native, __FILE__, __LINE__); \
  [[maybe_unused]] static ::testing::TestInfo* const HTTPClientTest_##name##_curl =                    \
      register_client_test<HTTPClientTest_##name>(#name, HTTPClientBackend::curl, __FILE__, __LINE__);   \
  ::squall::Future<void> HTTPClientTest_##name::CoroutineBody()

// --- requests and responses -----------------------------------------------------------------------

CLIENT_TEST(GetFillsTheResponse) {
  start_server();
  HTTPResponse r = co_await client().fetch(url("/hello"));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.body, "Hello, world");
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/plain");
  EXPECT_EQ(r.effective_url, url("/hello"));
  EXPECT_FALSE(r.error);
  CO_ASSERT_TRUE(r.request != nullptr);
  EXPECT_EQ(r.request->url, url("/hello"));
  EXPECT_GT(r.request_time, Duration::zero());
  EXPECT_GT(r.time_info.total, Duration::zero());
  EXPECT_GE(r.time_info.starttransfer, r.time_info.pretransfer);
  EXPECT_NO_THROW(r.rethrow());
}

CLIENT_TEST(SendsEachMethodWithItsBody) {
  start_server();
  for (std::string method : {"POST", "PUT", "PATCH"}) {
    HTTPRequest req;
    req.url = url("/echo");
    req.method = method;
    req.body = method + " body";
    HTTPResponse r = co_await client().fetch(req);
    EXPECT_EQ(r.headers.get("X-Method", ""), method);
    EXPECT_EQ(r.body, method + " body");
    EXPECT_EQ(last_headers_.get("Content-Length", ""), std::to_string(method.size() + 5));
  }
  for (std::string method : {"GET", "DELETE", "OPTIONS"}) {
    HTTPRequest req;
    req.url = url("/echo");
    req.method = method;
    HTTPResponse r = co_await client().fetch(req);
    EXPECT_EQ(r.headers.get("X-Method", ""), method);
    EXPECT_EQ(r.body, "");
  }
  HTTPRequest head;
  head.url = url("/head-length");
  head.method = "HEAD";
  HTTPResponse r = co_await client().fetch(head);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.headers.get("Content-Length", ""), "5");
  EXPECT_EQ(r.body, "");  // a HEAD response has no body, whatever its length says
  // And the connection is still good for a GET afterwards.
  HTTPResponse g = co_await client().fetch(url("/head-length"));
  EXPECT_EQ(g.body, "fives");
}

CLIENT_TEST(PostGetsAFormContentTypeByDefault) {
  start_server();
  HTTPRequest req;
  req.url = url("/echo");
  req.method = "POST";
  req.body = "a=1&b=2";
  co_await client().fetch(req);
  EXPECT_EQ(last_headers_.get("Content-Type", ""), "application/x-www-form-urlencoded");
  req.headers.add("Content-Type", "application/json");
  req.body = "{}";
  co_await client().fetch(req);
  EXPECT_EQ(last_headers_.get("Content-Type", ""), "application/json");
}

CLIENT_TEST(LargeBodiesGoBothWays) {
  start_server();
  HTTPRequest req;
  req.url = url("/echo");
  req.method = "PUT";
  req.body = pattern(3 * 1024 * 1024 + 17);
  HTTPResponse r = co_await client().fetch(req);
  EXPECT_EQ(r.body.size(), req.body->size());
  EXPECT_TRUE(r.body == *req.body);
}

CLIENT_TEST(BodyRulesAreTornados) {
  start_server();
  HTTPRequest post;
  post.url = url("/echo");
  post.method = "POST";  // without a body
  EXPECT_NE(co_await failure_of(client().fetch(post)), "");
  HTTPRequest get;
  get.url = url("/echo");
  get.body = "x";  // a GET with a body
  std::string why = co_await failure_of(client().fetch(get));
  EXPECT_NE(why.find("Body must"), std::string::npos) << why;
  HTTPRequest odd;
  odd.url = url("/echo");
  odd.method = "PROPFIND";
  EXPECT_NE(co_await failure_of(client().fetch(odd)), "");
  EXPECT_EQ(requests_, 0);  // none of them reached the server

  get.allow_nonstandard_methods = true;
  HTTPResponse r = co_await client().fetch(get);
  EXPECT_EQ(r.body, "x");
  odd.allow_nonstandard_methods = true;
  r = co_await client().fetch(odd);
  EXPECT_EQ(r.headers.get("X-Method", ""), "PROPFIND");
  post.allow_nonstandard_methods = true;
  r = co_await client().fetch(post);
  EXPECT_EQ(r.headers.get("X-Method", ""), "POST");
}

CLIENT_TEST(ABadRequestFailsWhateverRaiseErrorSays) {
  start_server();
  HTTPRequest req;
  req.url = "ftp://127.0.0.1/";
  bool threw = false;
  try {
    co_await client().fetch(req, false);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
}

CLIENT_TEST(AStatusOutside2xxIsAnHTTPClientError) {
  start_server();
  int code = 0;
  std::string body;
  try {
    co_await client().fetch(url("/status?code=404"));
  } catch (const HTTPClientError& e) {
    code = e.code();
    if (e.response()) body = e.response()->body;
  }
  EXPECT_EQ(code, 404);
  EXPECT_EQ(body, "status body");

  HTTPResponse r = co_await client().fetch(url("/status?code=503"), false);
  EXPECT_EQ(r.code, 503);
  EXPECT_EQ(r.body, "status body");
  CO_ASSERT_TRUE(r.error != nullptr);
  bool rethrown = false;
  try {
    r.rethrow();
  } catch (const HTTPClientError& e) {
    rethrown = e.code() == 503 && std::string(e.what()).find("503") != std::string::npos;
  }
  EXPECT_TRUE(rethrown);
}

CLIENT_TEST(ConnectionRefusedRaisesOrGives599) {
  auto [sock, port] = testing::bind_unused_port();
  sock.reset();  // nobody listens there now
  port_ = port;
  std::string why = co_await failure_of(client().fetch(url("/")));
  EXPECT_TRUE(contains_any(why, {"connect", "Connect"})) << why;
  HTTPResponse r = co_await client().fetch(url("/"), false);
  EXPECT_EQ(r.code, 599);
  EXPECT_TRUE(r.error != nullptr);
  EXPECT_EQ(r.effective_url, url("/"));
}

CLIENT_TEST(BasicAuthFromTheRequestOrTheURL) {
  start_server();
  HTTPRequest req;
  req.url = url("/headers");
  req.auth_username = "user";
  req.auth_password = "pass";
  co_await client().fetch(req);
  EXPECT_EQ(last_headers_.get("Authorization", ""), "Basic dXNlcjpwYXNz");
  HTTPResponse r = co_await client().fetch("http://me:secret@127.0.0.1:" + std::to_string(port_) + "/headers");
  EXPECT_EQ(last_headers_.get("Authorization", ""), "Basic bWU6c2VjcmV0");
  EXPECT_EQ(last_headers_.get("Host", ""), "127.0.0.1:" + std::to_string(port_));
}

CLIENT_TEST(UserAgentAndCustomHeaders) {
  start_server();
  HTTPRequest req;
  req.url = url("/headers");
  req.user_agent = "tester/1.0";
  req.headers.add("X-One", "1");
  req.headers.add("X-Two", "2");
  co_await client().fetch(req);
  EXPECT_EQ(last_headers_.get("User-Agent", ""), "tester/1.0");
  EXPECT_EQ(last_headers_.get("X-One", ""), "1");
  EXPECT_EQ(last_headers_.get("X-Two", ""), "2");
  co_await client().fetch(url("/headers"));
  EXPECT_FALSE(last_headers_.get("User-Agent", "").empty());
}

CLIENT_TEST(HeaderCallbackSeesEveryHeadLineAndStreamingCallbackTheBody) {
  start_server();
  std::vector<std::string> lines;
  std::string streamed;
  HTTPRequest req;
  req.url = url("/chunked");
  req.header_callback = [&](std::string_view line) { lines.emplace_back(line); };
  req.streaming_callback = [&](std::string_view chunk) { streamed.append(chunk); };
  HTTPResponse r = co_await client().fetch(req);
  EXPECT_EQ(r.body, "");  // it went to the streaming callback
  EXPECT_TRUE(streamed == pattern(100000));
  CO_ASSERT_TRUE(lines.size() >= 3u);
  EXPECT_EQ(lines.front().rfind("HTTP/1.1 200", 0), 0u) << lines.front();
  EXPECT_EQ(lines.back(), "\r\n");
  bool saw_te = false;
  for (auto& l : lines) {
    EXPECT_EQ(l.substr(l.size() - 2), "\r\n");
    if (l.rfind("Transfer-Encoding:", 0) == 0) saw_te = true;
  }
  EXPECT_TRUE(saw_te);
}

// --- redirects -------------------------------------------------------------------------------------

CLIENT_TEST(RedirectsFollowEachCodeWithTheRightMethod) {
  start_server();
  struct Case {
    int code;
    const char* method;
  };
  // 301/302 turn POST into GET, 303 turns anything but HEAD into GET,
  // 307/308 keep the method and the body.
  for (Case c : {Case{301, "GET"}, Case{302, "GET"}, Case{303, "GET"}, Case{307, "POST"}, Case{308, "POST"}}) {
    HTTPRequest req;
    req.url = url("/redirect?code=" + std::to_string(c.code) + "&to=/echo");
    req.method = "POST";
    req.body = "payload";
    HTTPResponse r = co_await client().fetch(req);
    EXPECT_EQ(r.code, 200) << c.code;
    EXPECT_EQ(r.headers.get("X-Method", ""), c.method) << c.code;
    EXPECT_EQ(r.body, std::string(c.method) == "POST" ? "payload" : "") << c.code;
    EXPECT_EQ(r.effective_url, url("/echo")) << c.code;
    EXPECT_EQ(r.request->url, req.url);  // the original request
  }
  HTTPRequest put;
  put.url = url("/redirect?code=302&to=/echo");
  put.method = "PUT";
  put.body = "kept";
  HTTPResponse r = co_await client().fetch(put);
  EXPECT_EQ(r.headers.get("X-Method", ""), "PUT");
  EXPECT_EQ(r.body, "kept");
}

CLIENT_TEST(RelativeLocationsResolveAgainstTheRequest) {
  start_server();
  HTTPResponse r = co_await client().fetch(url("/redirect?code=302&to=echo%3Fx%3D1"));
  EXPECT_EQ(r.effective_url, url("/echo?x=1"));
  EXPECT_EQ(r.headers.get("X-Method", ""), "GET");
}

CLIENT_TEST(RedirectLoopsStopAtMaxRedirects) {
  start_server();
  HTTPRequest req = client().request(url("/loop"));
  req.max_redirects = 3;
  int code = 0;
  try {
    co_await client().fetch(req);
  } catch (const HTTPClientError& e) {
    code = e.code();
  }
  EXPECT_EQ(code, 302);
  EXPECT_EQ(requests_, 4);  // the request and three redirects
  req.follow_redirects = false;
  HTTPResponse r = co_await client().fetch(req, false);
  EXPECT_EQ(r.code, 302);
  EXPECT_EQ(r.headers.get("Location", ""), "/loop");
}

CLIENT_TEST(CrossOriginRedirectsDropAuthorizationAndCookie) {
  start_server();
  // Another origin: the same server under another port.
  auto [sock, other_port] = testing::bind_unused_port();
  server_->add_socket(std::move(sock));
  HTTPRequest req;
  req.headers.add("Authorization", "Bearer secret");
  req.headers.add("Cookie", "session=1");
  req.headers.add("X-Kept", "yes");
  req.url = url("/redirect?code=302&to=/headers");  // same origin: kept
  co_await client().fetch(req);
  EXPECT_EQ(last_headers_.get("Authorization", ""), "Bearer secret");
  EXPECT_EQ(last_headers_.get("Cookie", ""), "session=1");
  req.url = url("/redirect?code=302&to=http://127.0.0.1:" + std::to_string(other_port) + "/headers");
  co_await client().fetch(req);
  EXPECT_FALSE(last_headers_.contains("Authorization"));
  EXPECT_FALSE(last_headers_.contains("Cookie"));
  EXPECT_EQ(last_headers_.get("X-Kept", ""), "yes");
  EXPECT_EQ(last_headers_.get("Host", ""), "127.0.0.1:" + std::to_string(other_port));
}

// --- timeouts --------------------------------------------------------------------------------------

CLIENT_TEST(ConnectTimeoutNamesTheConnectPhase) {
  // Accepts TCP but never answers the TLS handshake: connecting stalls.
  ScriptedServer silent([](net::IOStream& s, int) { return silently_wait_for_close(s); });
  HTTPRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(silent.port()) + "/";
  req.connect_timeout = 100ms;
  req.request_timeout = 10s;
  std::string phase;
  int code = 0;
  auto started = io_loop().time();
  try {
    co_await client().fetch(req);
  } catch (const HTTPTimeoutError& e) {
    phase = e.phase();
    code = e.code();
  }
  EXPECT_EQ(phase, "connect");
  EXPECT_EQ(code, 599);
  EXPECT_LT(io_loop().time() - started, 3s);
}

CLIENT_TEST(RequestTimeoutNamesTheRequestPhase) {
  start_server();
  for (const char* path : {"/stall", "/stall-body"}) {
    HTTPRequest req;
    req.url = url(path);
    req.request_timeout = 100ms;
    std::string phase;
    try {
      co_await client().fetch(req);
    } catch (const HTTPTimeoutError& e) {
      phase = e.phase();
    }
    EXPECT_EQ(phase, "request") << path;
    HTTPResponse r = co_await client().fetch(req, false);
    EXPECT_EQ(r.code, 599);
  }
  // The client still works afterwards.
  HTTPResponse ok = co_await client().fetch(url("/hello"));
  EXPECT_EQ(ok.body, "Hello, world");
}

CLIENT_TEST(WaitingForASlotCountsAgainstRequestTimeout) {
  start_server();
  client({.max_clients = 1});
  Future<HTTPResponse> first = client().fetch(url("/stall"));
  HTTPRequest req;
  req.url = url("/hello");
  req.request_timeout = 100ms;
  std::string phase;
  try {
    co_await client().fetch(req);
  } catch (const HTTPTimeoutError& e) {
    phase = e.phase();
  }
  EXPECT_EQ(phase, "queue");
  EXPECT_EQ(requests_, 1);  // the queued one never reached the server
  first.cancel();
}

// --- connections -----------------------------------------------------------------------------------

CLIENT_TEST(OneConnectionServesAHundredSequentialRequests) {
  start_server();
  for (int i = 0; i < 100; ++i) {
    HTTPResponse r = co_await client().fetch(url("/hello"));
    CO_ASSERT_EQ(r.body, "Hello, world");
  }
  EXPECT_EQ(server_->accepted, 1);
  EXPECT_EQ(requests_, 100);
}

CLIENT_TEST(MaxClientsQueuesFetchesInOrder) {
  start_server();
  client({.max_clients = 2});
  std::vector<Future<HTTPResponse>> all;
  for (int i = 0; i < 6; ++i) all.push_back(client().fetch(url("/sleep?i=" + std::to_string(i))));
  std::vector<HTTPResponse> done = co_await multi(std::move(all));
  for (auto& r : done) EXPECT_EQ(r.body, "slept");
  EXPECT_EQ(max_in_flight_, 2);
  EXPECT_EQ(order_, (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
  EXPECT_GT(done[5].time_info.queue, Duration::zero());
}

CLIENT_TEST(AStalePooledConnectionIsRetriedOnAFreshOne) {
  // Answers the first request on a connection and keeps it open; a second
  // request on the same connection gets the connection closed in its face
  // (a server whose idle timeout fired as the request left).
  ScriptedServer server([](net::IOStream& s, int) -> Future<void> {
    co_await read_request_head(s);
    co_await s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    co_await read_request_head(s);
    s.close();
  });
  std::string u = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  HTTPResponse a = co_await client().fetch(u);
  HTTPResponse b = co_await client().fetch(u);
  EXPECT_EQ(a.body, "ok");
  EXPECT_EQ(b.body, "ok");
  EXPECT_EQ(server.accepted, 2);
}

CLIENT_TEST(ServerClosingMidBodyFails) {
  start_server();
  testing::ExpectLog expect("squall.general", "short of its Content-Length", false);
  int code = 0;
  try {
    co_await client().fetch(url("/short"));
  } catch (const HTTPClientError& e) {
    code = e.code();
  }
  EXPECT_EQ(code, 599);
}

CLIENT_TEST(CloseDelimitedBodiesAndInterimResponses) {
  ScriptedServer server([](net::IOStream& s, int) -> Future<void> {
    co_await read_request_head(s);
    // An interim 103 first (RFC 8297), then an HTTP/1.0 body ended by close.
    co_await s.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
    co_await s.write("HTTP/1.0 200 OK\r\nX-Kind: close-delimited\r\n\r\nuntil the end");
    s.close();
  });
  HTTPResponse r = co_await client().fetch("http://127.0.0.1:" + std::to_string(server.port()) + "/");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.headers.get("X-Kind", ""), "close-delimited");
  EXPECT_EQ(r.body, "until the end");
}

CLIENT_TEST(AMalformedResponseFails) {
  ScriptedServer server([](net::IOStream& s, int) -> Future<void> {
    co_await read_request_head(s);
    co_await s.write("NOT HTTP AT ALL\r\n\r\n");
    co_await silently_wait_for_close(s);
  });
  HTTPResponse r = co_await client().fetch("http://127.0.0.1:" + std::to_string(server.port()) + "/", false);
  EXPECT_EQ(r.code, 599);
  EXPECT_TRUE(r.error != nullptr);
}

CLIENT_TEST(ANameThatDoesNotResolveFails) {
  start_server();
  test_support::DnsResponder dns(io_loop());
  dns.add("known.test", "127.0.0.1");
  net::CaresResolver::Options o;
  o.servers = {dns.address()};
  o.use_system_config = false;
  auto resolver = std::make_shared<net::CaresResolver>(o);
  client({.resolver = resolver});
  HTTPResponse ok = co_await client().fetch("http://known.test:" + std::to_string(port_) + "/hello");
  EXPECT_EQ(ok.body, "Hello, world");
  EXPECT_EQ(last_headers_.get("Host", ""), "known.test:" + std::to_string(port_));
  std::string why = co_await failure_of(client().fetch("http://nowhere.test:" + std::to_string(port_) + "/"));
  EXPECT_NE(why.find("nowhere.test"), std::string::npos) << why;
  bool asked = false;
  for (auto& q : dns.log()) asked = asked || q.rfind("nowhere.test/", 0) == 0;
  EXPECT_TRUE(asked);  // the responder on 127.0.0.1 was asked, nothing else
  client_.reset();
}

// --- bodies ----------------------------------------------------------------------------------------

CLIENT_TEST(GzipIsDecodedAndTheHeaderKept) {
  start_server();
  HTTPResponse r = co_await client().fetch(url("/gzip?n=200000"));
  EXPECT_TRUE(r.body == pattern(200000));
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "gzip");
  EXPECT_NE(r.headers.get("X-Accept-Encoding", "").find("gzip"), std::string::npos);
  HTTPRequest raw = client().request(url("/gzip?n=1000"));
  raw.decompress_response = false;
  HTTPResponse z = co_await client().fetch(raw);
  EXPECT_EQ(z.body, gzip(pattern(1000)));
  EXPECT_EQ(z.headers.get("X-Accept-Encoding", ""), "-");
}

CLIENT_TEST(ChunkedBodiesPlainAndGzipped) {
  start_server();
  HTTPResponse r = co_await client().fetch(url("/chunked"));
  EXPECT_EQ(r.headers.get("Transfer-Encoding", ""), "chunked");
  EXPECT_TRUE(r.body == pattern(100000));
  HTTPResponse z = co_await client().fetch(url("/chunked?gzip=1"));
  EXPECT_TRUE(z.body == pattern(100000));
}

CLIENT_TEST(MaxBodySizeLimitsTheDecodedBody) {
  start_server();
  client({.max_body_size = 50000});
  // Declared too large, chunked past the limit, and small when compressed
  // but large once decoded.
  for (const char* path : {"/big?n=60000", "/chunked", "/gzip?n=60000", "/chunked?gzip=1"}) {
    bool too_large = false;
    try {
      co_await client().fetch(url(path));
    } catch (const HTTPBodyTooLargeError& e) {
      too_large = e.limit() == 50000 && e.code() == 599;
    }
    EXPECT_TRUE(too_large) << path;
  }
  HTTPResponse r = co_await client().fetch(url("/gzip?n=40000"));
  EXPECT_EQ(r.body.size(), 40000u);
}

/// Resident set size of this process, in bytes (Linux /proc).
std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

/// Serves one response of `total` bytes per connection, writing one shared
/// 1 MiB buffer again and again (no copy, no allocation per piece), so this
/// process's memory growth is the client's.
Future<void> serve_bytes(net::IOStream& s, std::uint64_t total) {
  static const auto piece = std::make_shared<const std::string>(std::size_t{1} << 20, 'x');
  co_await read_request_head(s);
  co_await s.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n");
  for (std::uint64_t sent = 0; sent < total; sent += piece->size()) {
    if (total - sent >= piece->size()) {
      co_await s.write(piece);
    } else {
      co_await s.write(std::string_view(*piece).substr(0, static_cast<std::size_t>(total - sent)));
    }
  }
  co_await silently_wait_for_close(s);
}

CLIENT_TEST(StreamingALargeResponseKeepsMemoryFlat) {
  // 1 GiB; 256 MiB under AddressSanitizer (about 2 s there; 1 GiB would
  // take 8). SQUALL_HTTPCLIENT_STREAM_MIB overrides either. The bound on
  // memory is what is checked.
#ifdef __SANITIZE_ADDRESS__
  std::uint64_t mib = 256;
#else
  std::uint64_t mib = 1024;
#endif
  if (const char* env = std::getenv("SQUALL_HTTPCLIENT_STREAM_MIB")) mib = std::stoull(env);
  const std::uint64_t total = mib << 20;
  ScriptedServer server([total](net::IOStream& s, int) { return serve_bytes(s, total); });
  client({.max_body_size = 0});  // no limit: max_body_size counts streamed bodies too (Tornado)
  std::uint64_t received = 0;
  std::size_t largest_chunk = 0;
  std::size_t rss_before = rss_bytes();
  std::size_t rss_peak = rss_before;
  HTTPRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  req.request_timeout = 120s;
  req.streaming_callback = [&](std::string_view chunk) {
    received += chunk.size();
    largest_chunk = std::max(largest_chunk, chunk.size());
    if ((received & ((16u << 20) - 1)) < chunk.size()) rss_peak = std::max(rss_peak, rss_bytes());
  };
  HTTPResponse r = co_await client().fetch(req);
  EXPECT_EQ(received, total);
  EXPECT_EQ(r.body.size(), 0u);
  EXPECT_LE(largest_chunk, std::size_t{1} << 20);
  // Constant memory: a few read buffers, whatever the size (ASan's
  // quarantine of freed small blocks included).
  EXPECT_LT(rss_peak - rss_before, std::size_t{32} << 20) << "RSS grew while streaming " << mib << " MiB";
}

CLIENT_TEST(Expect100ContinueSendsTheBodyAfterTheInterimResponse) {
  start_server();
  HTTPRequest req;
  req.url = url("/echo");
  req.method = "POST";
  req.body = pattern(5000);
  req.expect_100_continue = true;
  HTTPResponse r = co_await client().fetch(req);
  EXPECT_TRUE(r.body == pattern(5000));
  EXPECT_EQ(last_headers_.get("Expect", ""), "100-continue");
}

CLIENT_TEST(Expect100ContinueRefusedKeepsTheBody) {
  std::size_t body_bytes = 99;
  Event done;
  ScriptedServer server([&](net::IOStream& s, int) -> Future<void> {
    co_await read_request_head(s);
    co_await s.write("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope");
    // Nothing of the body may follow before the client hangs up.
    body_bytes = co_await wait_for_close(s);
    done.set();
  });
  HTTPRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  req.method = "PUT";
  req.body = "never sent";
  req.expect_100_continue = true;
  HTTPResponse r = co_await client().fetch(req, false);
  EXPECT_EQ(r.code, 417);
  EXPECT_EQ(r.body, "nope");
  co_await done.wait(2s);
  EXPECT_EQ(body_bytes, 0u);
}

/// A body producer writing three chunks, awaiting each.
Future<void> produce_three(BodyWriter write) {
  co_await write("one,");
  co_await write("two,");
  co_await write("three");
}

CLIENT_TEST(BodyProducerStreamsTheUpload) {
  start_server();
  HTTPRequest req;
  req.url = url("/echo");
  req.method = "POST";
  req.body_producer = produce_three;
  HTTPResponse r = co_await client().fetch(req);
  EXPECT_EQ(r.body, "one,two,three");
  EXPECT_EQ(last_headers_.get("Transfer-Encoding", ""), "chunked");
  req.headers.add("Content-Length", "13");
  r = co_await client().fetch(req);
  EXPECT_EQ(r.body, "one,two,three");
  EXPECT_FALSE(last_headers_.contains("Transfer-Encoding"));
  EXPECT_EQ(last_headers_.get("Content-Length", ""), "13");
}

// --- TLS -------------------------------------------------------------------------------------------

class TLSCase {
 public:
  static testing::TestCerts& certs() {
    static testing::TestCerts c;
    return c;
  }
};

CLIENT_TEST(TLSVerifiesTheServer) {
  auto& certs = TLSCase::certs();
  // Each certificate, and what its failure must name (empty: it succeeds).
  using Reasons = std::vector<std::string>;
  const Reasons expired{"expired"}, host{"hostname mismatch", "subject name", "does not match"},
      self{"self-signed", "self signed"};
  std::vector<std::pair<const testing::TestCerts::Pair*, const Reasons*>> cases = {
      {&certs.server(), nullptr}, {&certs.expired(), &expired}, {&certs.other_host(), &host},
      {&certs.self_signed(), &self}};
  scheme_ = "https";
  host_ = "localhost";
  for (auto [pair, reason] : cases) {
    net::SSLOptions tls;
    tls.certfile = pair->cert;
    tls.keyfile = pair->key;
    HTTPServerOptions options;
    options.ssl_context = net::SSLContext::server(tls);
    client_.reset();
    start_server(options);
    HTTPRequest req;
    req.url = url("/hello");
    req.ca_certs = certs.ca_file();
    if (!reason) {
      HTTPResponse r = co_await client().fetch(req);
      EXPECT_EQ(r.body, "Hello, world");
      EXPECT_GT(r.time_info.appconnect, Duration::zero());
      continue;
    }
    std::string why = co_await failure_of(client().fetch(req));
    EXPECT_TRUE(contains_any(why, *reason)) << why;
    // Accepted without verification.
    req.validate_cert = false;
    HTTPResponse r = co_await client().fetch(req);
    EXPECT_EQ(r.body, "Hello, world");
  }
}

// --- cancellation and closing ------------------------------------------------------------------------

CLIENT_TEST(CancellingAnInFlightFetchClosesItsConnection) {
  start_server();
  Future<HTTPResponse> f = client().fetch(url("/stall"));
  while (stalls_ == 0) co_await sleep(2ms);
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  // The server sees the client leave: its handler is cancelled.
  co_await stall_gone_.wait(2s);
  EXPECT_EQ(stall_cancelled_, 1);
  HTTPResponse r = co_await client().fetch(url("/hello"));
  EXPECT_EQ(r.body, "Hello, world");
}

CLIENT_TEST(CancellingAQueuedFetchDequeuesIt) {
  start_server();
  client({.max_clients = 1});
  Future<HTTPResponse> first = client().fetch(url("/sleep?i=first"));
  Future<HTTPResponse> queued = client().fetch(url("/sleep?i=queued"));
  Future<HTTPResponse> third = client().fetch(url("/sleep?i=third"));
  EXPECT_TRUE(queued.cancel());
  co_await first;
  co_await third;
  EXPECT_EQ(order_, (std::vector<std::string>{"first", "third"}));
}

CLIENT_TEST(CloseFailsPendingFetches) {
  start_server();
  client({.max_clients = 1});
  Future<HTTPResponse> running = client().fetch(url("/stall"));
  Future<HTTPResponse> queued = client().fetch(url("/hello"));
  while (stalls_ == 0) co_await sleep(2ms);
  client().close();
  EXPECT_TRUE(client().closed());
  for (Future<HTTPResponse>* f : {&running, &queued}) {
    int code = 0;
    try {
      co_await *f;
    } catch (const HTTPClientError& e) {
      code = e.code();
    }
    EXPECT_EQ(code, 599);
  }
  int code = 0;
  try {
    co_await client().fetch(url("/hello"));
  } catch (const HTTPClientError& e) {
    code = e.code();
  }
  EXPECT_EQ(code, 599);
}

// --- native only -------------------------------------------------------------------------------------

namespace {

class SimpleHTTPClientTest : public HTTPClientTest {
 public:
  SimpleHTTPClientTest() : HTTPClientTest(HTTPClientBackend::native) {}
};

}  // namespace

SQUALL_ASYNC_TEST(SimpleHTTPClientTest, IdleConnectionsCloseAfterTheIdleTimeout) {
  start_server();
  client({.idle_connection_timeout = 50ms});
  co_await client().fetch(url("/hello"));
  co_await sleep(150ms);
  EXPECT_EQ(server_->connection_count(), 0u);  // the client closed it
  co_await client().fetch(url("/hello"));
  EXPECT_EQ(server_->accepted, 2);
}

SQUALL_ASYNC_TEST(SimpleHTTPClientTest, PerHostLimitMakesFetchesShareConnections) {
  start_server();
  client({.max_clients = 8, .max_connections_per_host = 2});
  std::vector<Future<HTTPResponse>> all;
  for (int i = 0; i < 8; ++i) all.push_back(client().fetch(url("/sleep?i=" + std::to_string(i))));
  co_await multi(std::move(all));
  EXPECT_EQ(server_->accepted, 2);
  EXPECT_EQ(max_in_flight_, 2);
}

SQUALL_ASYNC_TEST(SimpleHTTPClientTest, ANonIdempotentRequestIsNotRetried) {
  ScriptedServer server([](net::IOStream& s, int) -> Future<void> {
    co_await read_request_head(s);
    co_await s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    co_await read_request_head(s);
    s.close();
  });
  std::string u = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  co_await client().fetch(u);
  HTTPRequest post;
  post.url = u;
  post.method = "POST";
  post.body = "once";
  bool closed = false;
  try {
    co_await client().fetch(post);
  } catch (const HTTPStreamClosedError&) {
    closed = true;
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(server.accepted, 1);
}

SQUALL_ASYNC_TEST(SimpleHTTPClientTest, ProxiesAndDigestAreRefusedClearly) {
  start_server();
  HTTPRequest req = client().request(url("/hello"));
  req.proxy_host = "127.0.0.1";
  req.proxy_port = 3128;
  std::string why = co_await failure_of(client().fetch(req));
  EXPECT_NE(why.find("curl backend"), std::string::npos) << why;
  HTTPRequest digest = client().request(url("/hello"));
  digest.auth_username = "u";
  digest.auth_mode = "digest";
  why = co_await failure_of(client().fetch(digest));
  EXPECT_NE(why.find("digest"), std::string::npos) << why;
}

SQUALL_ASYNC_TEST(SimpleHTTPClientTest, TimeInfoCountsEachPhase) {
  start_server();
  HTTPResponse first = co_await client().fetch(url("/hello"));
  EXPECT_GT(first.time_info.connect, Duration::zero());
  EXPECT_GE(first.time_info.pretransfer, first.time_info.connect);
  EXPECT_GE(first.time_info.starttransfer, first.time_info.pretransfer);
  EXPECT_GE(first.time_info.total, first.time_info.starttransfer);
  HTTPResponse again = co_await client().fetch(url("/hello"));
  EXPECT_EQ(again.time_info.connect, Duration::zero());  // a pooled connection
  HTTPResponse moved = co_await client().fetch(url("/redirect?to=/hello"));
  EXPECT_GT(moved.time_info.redirect, Duration::zero());
}

SQUALL_ASYNC_TEST(SimpleHTTPClientTest, AWriterKeptPastItsRequestFailsCleanly) {
  start_server();
  BodyWriter kept;
  HTTPRequest req;
  req.url = url("/echo");
  req.method = "POST";
  req.body_producer = [&kept](BodyWriter write) {
    kept = write;
    return write("data");
  };
  HTTPResponse r = co_await client().fetch(req);
  EXPECT_EQ(r.body, "data");
  bool failed = false;
  try {
    co_await kept("late");
  } catch (const HTTPStreamClosedError&) {
    failed = true;
  }
  EXPECT_TRUE(failed);
}

SQUALL_ASYNC_TEST(SimpleHTTPClientTest, TheSharedInstanceBelongsToTheLoop) {
  AsyncHTTPClient& a = AsyncHTTPClient::instance();
  AsyncHTTPClient& b = AsyncHTTPClient::instance();
  EXPECT_EQ(&a, &b);
  start_server();
  HTTPResponse r = co_await a.fetch(url("/hello"));
  EXPECT_EQ(r.body, "Hello, world");
  a.close();
  AsyncHTTPClient& c = AsyncHTTPClient::instance();  // a fresh one after close()
  EXPECT_FALSE(c.closed());
  r = co_await c.fetch(url("/hello"));
  EXPECT_EQ(r.body, "Hello, world");
  // The loop's close() (in TearDown) closes and destroys it.
}

}  // namespace squall::http
