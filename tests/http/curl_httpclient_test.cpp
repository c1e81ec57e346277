// The libcurl backend's own features, against squall servers on 127.0.0.1:
// proxies (a forward proxy that checks the absolute-form target and
// Proxy-Authorization), digest authentication (a server that issues and
// checks RFC 7616 challenges), the HTTP version option and
// prepare_curl_callback, resolution through HTTPClientOptions::resolver,
// and the multi-socket driving: many fetches at once on the loop's own
// thread, with no thread created. What both backends share is in
// httpclient_test.cpp.
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/process.hpp"
#include "squall/net/resolver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/tcpclient.hpp"
#include "squall/testing.hpp"
#include "../support/test_certs.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

/// Threads of this process (/proc/self/task).
int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

std::string md5_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_md5(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    out += buf;
  }
  return out;
}

/// `Digest a="b", c=d` → {a: b, c: d}.
std::map<std::string, std::string> digest_params(std::string_view header) {
  std::map<std::string, std::string> out;
  if (header.substr(0, 7) != "Digest ") return out;
  std::string_view rest = header.substr(7);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == ',')) rest.remove_prefix(1);
    auto eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string name(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      auto close = rest.find('"', 1);
      value = std::string(rest.substr(1, close - 1));
      rest.remove_prefix(close == std::string_view::npos ? rest.size() : close + 1);
    } else {
      auto comma = rest.find(',');
      value = std::string(rest.substr(0, comma));
      rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma);
    }
    out[name] = value;
  }
  return out;
}

/// True once something accepts connections on 127.0.0.1:`port`.
bool accepting(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

/// nginx serving HTTPS with HTTP/2 on 127.0.0.1 (certificates from
/// TestCerts), in a scratch directory; killed and reaped by stop().
class Nginx {
 public:
  static constexpr const char* kPath = "/usr/sbin/nginx";

  ~Nginx() {
    if (proc_) {
      try {
        proc_->send_signal(SIGKILL);
      } catch (...) {
      }
    }
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  /// False if nginx is missing or did not come up.
  Future<bool> start(const testing::TestCerts& certs) {
    if (::access(kPath, X_OK) != 0) co_return false;
    char tmpl[] = "/tmp/squall-h2-XXXXXX";
    if (!::mkdtemp(tmpl)) co_return false;
    dir_ = tmpl;
    // nginx cannot listen on port 0: a port that was just free, retried if
    // someone took it meanwhile.
    for (int attempt = 0; attempt < 5; ++attempt) {
      int port = 0;
      {
        auto [sock, p] = testing::bind_unused_port();
        port = p;
      }
      std::ofstream(dir_ + "/nginx.conf")
          << "daemon off;\nmaster_process off;\nworker_processes 1;\npid " << dir_ << "/nginx.pid;\n"
          << "error_log " << dir_ << "/error.log;\nevents { worker_connections 64; }\n"
          << "http {\n  access_log off;\n"
          << "  client_body_temp_path " << dir_ << "/body;\n  proxy_temp_path " << dir_ << "/proxy;\n"
          << "  fastcgi_temp_path " << dir_ << "/fastcgi;\n  uwsgi_temp_path " << dir_ << "/uwsgi;\n"
          << "  scgi_temp_path " << dir_ << "/scgi;\n"
          << "  server {\n    listen 127.0.0.1:" << port << " ssl http2;\n"
          << "    ssl_certificate " << certs.server().cert << ";\n    ssl_certificate_key " << certs.server().key
          << ";\n    location / { default_type text/plain; return 200 \"$server_protocol\"; }\n  }\n}\n";
      net::SubprocessOptions options;
      options.stdout_mode = net::Stdio::DevNull;
      options.stderr_mode = net::Stdio::DevNull;
      proc_ = std::make_unique<net::Subprocess>(
          std::vector<std::string>{kPath, "-e", dir_ + "/error.log", "-p", dir_, "-c", dir_ + "/nginx.conf"},
          options);
      for (int i = 0; i < 300 && !accepting(port); ++i) co_await sleep(10ms);
      if (accepting(port)) {
        port_ = port;
        co_return true;
      }
      co_await stop();
    }
    co_return false;
  }

  Future<void> stop() {
    if (!proc_) co_return;
    try {
      proc_->send_signal(SIGKILL);
    } catch (...) {
    }
    co_await proc_->wait_for_exit(false);
    proc_.reset();
  }

  int port() const { return port_; }

 private:
  std::string dir_;
  std::unique_ptr<net::Subprocess> proc_;
  int port_ = 0;
};

class CurlHTTPClientTest : public testing::AsyncTest {
 protected:
  void TearDown() override {
    client_.reset();
    server_.reset();
    AsyncTest::TearDown();
  }

  void start_server() {
    server_ = std::make_unique<HTTPServer>(
        HTTPServer::RequestCallback([this](HTTPServerRequest& req) -> Future<void> { return handle(req); }));
    auto [sock, port] = testing::bind_unused_port();
    port_ = port;
    server_->add_socket(std::move(sock));
  }

  /// The test's curl client, made on first use. Call it in a statement of
  /// its own: a temporary HTTPClientOptions inside a co_await expression
  /// meets GCC 12's coroutine temporaries bug.
  AsyncHTTPClient& client(const HTTPClientOptions& options) {
    if (!client_) client_ = AsyncHTTPClient::create(HTTPClientBackend::curl, options);
    return *client_;
  }
  AsyncHTTPClient& client() { return client(HTTPClientOptions{}); }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  Future<void> handle(HTTPServerRequest& req) {
    ++requests_;
    if (req.path == "/hello") {
      req.respond(200, "text/plain", "Hello, world");
    } else if (req.path == "/echo") {
      req.respond(200, "application/octet-stream", req.method + " " + req.body);
    } else if (req.path == "/ua") {
      req.respond(200, "text/plain", req.headers.get("User-Agent", ""));
    } else if (req.path == "/sleep") {
      co_await sleep(200ms);
      req.respond(200, "text/plain", "slept");
    } else if (req.path == "/proxy") {
      // A forward proxy: the target comes in absolute form (RFC 9112
      // section 3.2.2) with the proxy's credentials; it answers for the
      // origin itself.
      HTTPHeaders h;
      h.add("Content-Type", "text/plain");
      req.respond(200, h, "proxied");
    } else if (req.uri.rfind("http://", 0) == 0) {
      proxy_targets_.push_back(req.uri);
      proxy_auth_.push_back(std::string(req.headers.get("Proxy-Authorization", "")));
      if (require_proxy_auth_ && !req.headers.contains("Proxy-Authorization")) {
        HTTPHeaders h;
        h.add("Proxy-Authenticate", "Basic realm=\"proxy\"");
        req.respond(407, h, "proxy credentials needed");
      } else {
        req.respond(200, "text/plain", "via proxy: " + req.uri);
      }
    } else if (req.path == "/digest") {
      co_await answer_digest(req);
    } else if (req.path == "/redirect-to-name") {
      HTTPHeaders h;
      h.add("Location", "http://origin.test:" + std::to_string(port_) + "/hello");
      req.respond(302, h, "");
    } else {
      req.respond(404, "text/plain", "not found");
    }
  }

  /// RFC 7616 digest, MD5, qop=auth: a 401 with a challenge, then the
  /// answer checked against the password.
  Future<void> answer_digest(HTTPServerRequest& req) {
    const std::string realm = "squall-test", nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093", user = "alice",
                      password = "s3cret";
    auto auth = digest_params(req.headers.get("Authorization", ""));
    bool ok = false;
    if (!auth.empty() && auth["username"] == user && auth["realm"] == realm && auth["nonce"] == nonce) {
      std::string ha1 = md5_hex(user + ":" + realm + ":" + password);
      std::string ha2 = md5_hex(req.method + ":" + auth["uri"]);
      std::string expected =
          md5_hex(ha1 + ":" + nonce + ":" + auth["nc"] + ":" + auth["cnonce"] + ":" + auth["qop"] + ":" + ha2);
      ok = auth["qop"] == "auth" && auth["uri"] == req.uri && auth["response"] == expected;
    }
    ++digest_attempts_;
    if (ok) {
      req.respond(200, "text/plain", "welcome " + user + " " + req.body);
    } else {
      HTTPHeaders h;
      h.add("WWW-Authenticate", "Digest realm=\"" + realm + "\", qop=\"auth\", nonce=\"" + nonce +
                                    "\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", algorithm=MD5");
      req.respond(401, h, "who are you?");
    }
    co_return;
  }

  std::unique_ptr<HTTPServer> server_;
  std::unique_ptr<AsyncHTTPClient> client_;
  int port_ = 0;
  int requests_ = 0;
  int digest_attempts_ = 0;
  bool require_proxy_auth_ = false;
  std::vector<std::string> proxy_targets_;
  std::vector<std::string> proxy_auth_;
};

SQUALL_ASYNC_TEST(CurlHTTPClientTest, FetchesOnTheLoopWithResponseFieldsFilled) {
  start_server();
  AsyncHTTPClient& c = client();
  HTTPResponse r = co_await c.fetch(url("/hello"));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.body, "Hello, world");
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/plain");
  EXPECT_EQ(r.effective_url, url("/hello"));
  EXPECT_GT(r.time_info.total, Duration::zero());
  EXPECT_GE(r.time_info.starttransfer, r.time_info.connect);
  EXPECT_GT(r.request_time, Duration::zero());
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, ManyConcurrentFetchesRunOnTheLoopThreadWithoutNewThreads) {
  start_server();
  HTTPClientOptions options{.max_clients = 16};
  AsyncHTTPClient& c = client(options);
  // The first fetch makes curl's connection cache and the multi handle.
  co_await c.fetch(url("/hello"));
  int before = thread_count();
  std::vector<Future<HTTPResponse>> fetches;
  for (int i = 0; i < 200; ++i) fetches.push_back(c.fetch(url("/echo"), true));
  int during = thread_count();
  std::vector<HTTPResponse> all = co_await multi(std::move(fetches));
  EXPECT_EQ(thread_count(), before);
  EXPECT_EQ(during, before);
  CO_ASSERT_EQ(all.size(), 200u);
  for (auto& r : all) EXPECT_EQ(r.body, "GET ");
  EXPECT_EQ(requests_, 201);
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, GoesThroughAForwardProxyWithCredentials) {
  start_server();
  AsyncHTTPClient& c = client();
  require_proxy_auth_ = true;
  HTTPRequest req;
  // The origin is never contacted: the proxy (our server) answers.
  req.url = "http://origin.test:9/some/path?q=1";
  req.proxy_host = "127.0.0.1";
  req.proxy_port = port_;
  req.proxy_username = "proxy-user";
  req.proxy_password = "proxy-pass";
  HTTPResponse r = co_await c.fetch(req);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "via proxy: http://origin.test:9/some/path?q=1");
  CO_ASSERT_FALSE(proxy_targets_.empty());
  EXPECT_EQ(proxy_targets_.back(), "http://origin.test:9/some/path?q=1");
  // base64("proxy-user:proxy-pass")
  EXPECT_EQ(proxy_auth_.back(), "Basic cHJveHktdXNlcjpwcm94eS1wYXNz");
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, ProxyAuthenticationFailureIsA407) {
  start_server();
  AsyncHTTPClient& c = client();
  require_proxy_auth_ = true;
  HTTPRequest req;
  req.url = "http://origin.test:9/";
  req.proxy_host = "127.0.0.1";
  req.proxy_port = port_;
  HTTPResponse r = co_await c.fetch(req, false);
  EXPECT_EQ(r.code, 407);
  CO_ASSERT_TRUE(r.error != nullptr);
  EXPECT_THROW(r.rethrow(), HTTPClientError);
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, AnswersADigestChallenge) {
  start_server();
  AsyncHTTPClient& c = client();
  HTTPRequest req;
  req.url = url("/digest?x=1");
  req.method = "POST";
  req.body = "payload";
  req.auth_username = "alice";
  req.auth_password = "s3cret";
  req.auth_mode = "digest";
  HTTPResponse r = co_await c.fetch(req);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "welcome alice payload");
  EXPECT_EQ(digest_attempts_, 2);  // the challenge, then the answer

  req.auth_password = "wrong";
  HTTPResponse bad = co_await c.fetch(req, false);
  EXPECT_EQ(bad.code, 401);
  EXPECT_EQ(bad.body, "who are you?");
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, SendsAProducedBodyOnlyWithTheDigestAnswer) {
  start_server();
  AsyncHTTPClient& c = client();
  HTTPRequest req;
  req.url = url("/digest");
  req.method = "PUT";
  req.auth_username = "alice";
  req.auth_password = "s3cret";
  req.auth_mode = "digest";
  int produced = 0;
  req.body_producer = [&produced](BodyWriter write) -> Future<void> {
    ++produced;
    co_await write("streamed");
  };
  HTTPResponse r = co_await c.fetch(req);
  // curl sends the first, unauthenticated request without the body, so
  // the producer's body is sent once, with the answer.
  EXPECT_EQ(r.body, "welcome alice streamed");
  EXPECT_EQ(produced, 1);
  EXPECT_EQ(digest_attempts_, 2);
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, AcceptsHttpVersionsAndRejectsUnknownOnes) {
  start_server();
  AsyncHTTPClient& c = client();
  for (std::string version : {"1.0", "1.1", "2"}) {
    HTTPRequest req;
    req.url = url("/hello");
    req.http_version = version;
    HTTPResponse r = co_await c.fetch(req);
    EXPECT_EQ(r.body, "Hello, world") << version;
  }
  HTTPRequest bad;
  bad.url = url("/hello");
  bad.http_version = "0.9";
  bool rejected = false;
  try {
    co_await c.fetch(bad);
  } catch (const std::invalid_argument&) {
    rejected = true;
  }
  EXPECT_TRUE(rejected);
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, SpeaksHttp2ToNginxWhenAsked) {
  testing::TestCerts certs;
  Nginx nginx;
  bool started = co_await nginx.start(certs);
  if (!started) {
    GTEST_MESSAGE_("nginx is not installed or did not start", ::testing::TestPartResult::kSkip);
    co_return;
  }
  AsyncHTTPClient& c = client();
  for (std::string version : {"2", "1.1"}) {
    HTTPRequest req;
    req.url = "https://127.0.0.1:" + std::to_string(nginx.port()) + "/";
    req.ca_certs = certs.ca_file();
    req.http_version = version;
    std::vector<std::string> lines;
    req.header_callback = [&lines](std::string_view line) { lines.emplace_back(line); };
    HTTPResponse r = co_await c.fetch(req);
    EXPECT_EQ(r.code, 200);
    CO_ASSERT_FALSE(lines.empty());
    if (version == "2") {
      // nginx saw HTTP/2.0, and curl's status line says so; HTTP/2 has no
      // reason phrase, so the standard one is filled in.
      EXPECT_EQ(r.body, "HTTP/2.0");
      EXPECT_EQ(lines.front().rfind("HTTP/2 200", 0), 0u) << lines.front();
      EXPECT_EQ(r.reason, "OK");
    } else {
      EXPECT_EQ(r.body, "HTTP/1.1");
      EXPECT_EQ(lines.front().rfind("HTTP/1.1 200 OK", 0), 0u) << lines.front();
    }
  }
  co_await nginx.stop();
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, PresentsAClientCertificate) {
  testing::TestCerts certs;
  net::SSLOptions ssl;
  ssl.certfile = certs.server().cert;
  ssl.keyfile = certs.server().key;
  ssl.ca_certs = certs.ca_file();
  ssl.verify_peer = true;  // mutual TLS: the client must show a certificate of the CA
  HTTPServerOptions options;
  options.ssl_context = net::SSLContext::server(ssl);
  HTTPServer server([](HTTPServerRequest& req) { req.respond(200, "text/plain", "hello, known client"); }, options);
  auto [sock, port] = testing::bind_unused_port();
  server.add_socket(std::move(sock));
  AsyncHTTPClient& c = client();

  HTTPRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(port) + "/";
  req.ca_certs = certs.ca_file();
  HTTPResponse anonymous = co_await c.fetch(req, false);
  EXPECT_EQ(anonymous.code, 599);

  req.client_cert = certs.server().cert;
  req.client_key = certs.server().key;
  HTTPResponse known = co_await c.fetch(req);
  EXPECT_EQ(known.body, "hello, known client");
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, PrepareCurlCallbackSeesTheEasyHandle) {
  start_server();
  AsyncHTTPClient& c = client();
  HTTPRequest req;
  req.url = url("/ua");
  req.user_agent = "from-squall";
  int calls = 0;
  req.prepare_curl_callback = [&calls](void* curl) {
    ++calls;
    // Runs after squall's own options, so it has the last word.
    curl_easy_setopt(static_cast<CURL*>(curl), CURLOPT_USERAGENT, "from-the-callback");
  };
  HTTPResponse r = co_await c.fetch(req);
  EXPECT_EQ(r.body, "from-the-callback");
  EXPECT_EQ(calls, 1);
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, ResolvesNamesThroughTheConfiguredResolverAtEveryHop) {
  start_server();
  auto resolver = std::make_shared<net::OverrideResolver>(
      net::default_resolver(), net::OverrideMapping{.addresses = {{"first.test", {"127.0.0.1"}},
                                                                  {"origin.test", {"127.0.0.1"}}}});
  HTTPClientOptions options{.resolver = resolver};
  AsyncHTTPClient& c = client(options);
  HTTPResponse r = co_await c.fetch("http://first.test:" + std::to_string(port_) + "/redirect-to-name");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello, world");
  EXPECT_EQ(r.effective_url, "http://origin.test:" + std::to_string(port_) + "/hello");
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, FollowsAResolverThatMovesThePort) {
  start_server();
  auto resolver = std::make_shared<net::OverrideResolver>(
      net::default_resolver(), net::OverrideMapping{.host_port = {{{"api.test", 443}, {"127.0.0.1", port_}}}});
  HTTPClientOptions options{.resolver = resolver};
  AsyncHTTPClient& c = client(options);
  // http on port 443: the resolver sends it to our plain-HTTP server.
  HTTPResponse r = co_await c.fetch("http://api.test:443/hello");
  EXPECT_EQ(r.body, "Hello, world");
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, CancellingAFetchRemovesItsTransfer) {
  start_server();
  AsyncHTTPClient& c = client();
  Future<HTTPResponse> slow = c.fetch(url("/sleep"));
  co_await sleep(50ms);
  EXPECT_TRUE(slow.cancel());
  bool cancelled = false;
  try {
    co_await slow;
  } catch (const CancelledError&) {
    cancelled = true;
  }
  EXPECT_TRUE(cancelled);
  // The client goes on.
  HTTPResponse r = co_await c.fetch(url("/hello"));
  EXPECT_EQ(r.body, "Hello, world");
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, CancellingAQueuedFetchDequeuesIt) {
  start_server();
  HTTPClientOptions options{.max_clients = 1};
  AsyncHTTPClient& c = client(options);
  Future<HTTPResponse> first = c.fetch(url("/sleep"));
  Future<HTTPResponse> queued = c.fetch(url("/hello"));
  Future<HTTPResponse> third = c.fetch(url("/echo"));
  EXPECT_TRUE(queued.cancel());
  HTTPResponse a = co_await first;
  HTTPResponse b = co_await third;
  EXPECT_EQ(a.body, "slept");
  EXPECT_EQ(b.body, "GET ");
  EXPECT_EQ(requests_, 2);
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, StreamsAProducedBodyWithBackPressure) {
  start_server();
  AsyncHTTPClient& c = client();
  HTTPRequest req;
  req.url = url("/echo");
  req.method = "PUT";
  req.body_producer = [this](BodyWriter write) -> Future<void> {
    co_await write("one,");
    co_await sleep(10ms);  // curl waits, paused, for the next chunk
    co_await write("two,");
    co_await write(std::string(100000, 'x'));
    (void)this;
  };
  HTTPResponse r = co_await c.fetch(req);
  EXPECT_EQ(r.body, "PUT one,two," + std::string(100000, 'x'));
}

SQUALL_ASYNC_TEST(CurlHTTPClientTest, ClosingTheClientFailsWhatIsPending) {
  start_server();
  HTTPClientOptions options{.max_clients = 1};
  AsyncHTTPClient& c = client(options);
  Future<HTTPResponse> running = c.fetch(url("/sleep"));
  Future<HTTPResponse> queued = c.fetch(url("/hello"));
  co_await sleep(20ms);
  c.close();
  for (auto* f : {&running, &queued}) {
    bool failed = false;
    try {
      co_await *f;
    } catch (const HTTPClientError& e) {
      failed = e.code() == 599;
    }
    EXPECT_TRUE(failed);
  }
}

}  // namespace
}  // namespace squall::http
