// AsyncHTTPClient against real servers other than squall's, over both
// backends: a Python Tornado 6.2 server (Debian's python3-tornado, run as a
// subprocess on a port it picks) and nginx serving static files from a
// temporary directory. Each test skips itself when its peer is missing.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/net/process.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kNginx = "/usr/sbin/nginx";

/// A Tornado application covering what the tests need; prints its port.
constexpr const char* kTornadoServer = R"PY(
import sys
try:
    import tornado.ioloop, tornado.web, tornado.httpserver, tornado.netutil
except ImportError:
    print("SKIP", flush=True); sys.exit(0)

class Hello(tornado.web.RequestHandler):
    def get(self): self.write("Hello from Tornado")

class Echo(tornado.web.RequestHandler):
    def post(self):
        self.set_header("X-Method", self.request.method)
        self.write(self.request.body)
    put = post

class Peer(tornado.web.RequestHandler):
    def get(self): self.write(str(self.request.connection.stream.socket.getpeername()[1]))

class Redirect(tornado.web.RequestHandler):
    def get(self): self.redirect("/hello", status=int(self.get_argument("code", "302")))
    post = get

class Chunked(tornado.web.RequestHandler):
    async def get(self):
        for i in range(3):
            self.write("part%d," % i)
            await self.flush()

class Big(tornado.web.RequestHandler):
    async def get(self):
        n = int(self.get_argument("n"))
        piece = b"t" * 65536
        while n > 0:
            self.write(piece[:min(n, len(piece))])
            n -= min(n, len(piece))
            await self.flush()

class Text(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write("compressible " * 2000)

app = tornado.web.Application([
    (r"/hello", Hello), (r"/echo", Echo), (r"/peer", Peer), (r"/redirect", Redirect),
    (r"/chunked", Chunked), (r"/big", Big), (r"/text", Text),
], compress_response=True)
sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
server = tornado.httpserver.HTTPServer(app)
server.add_sockets(sockets)
print(sockets[0].getsockname()[1], flush=True)
tornado.ioloop.IOLoop.current().start()
)PY";

/// A peer process: started by the test, killed with it.
class Peer {
 public:
  explicit Peer(std::vector<std::string> argv, bool capture_stdout) {
    net::SubprocessOptions options;
    options.stdout_mode = capture_stdout ? net::Stdio::Stream : net::Stdio::DevNull;
    options.stderr_mode = net::Stdio::DevNull;
    proc_ = std::make_unique<net::Subprocess>(std::move(argv), std::move(options));
  }
  ~Peer() {
    try {
      proc_->send_signal(SIGKILL);
    } catch (...) {
    }
  }
  net::Subprocess& proc() { return *proc_; }
  /// Waits for the child to exit (after the kill) so nothing outlives the test.
  Future<void> reap() {
    try {
      proc_->send_signal(SIGKILL);
    } catch (...) {
    }
    co_await proc_->wait_for_exit(false);
  }

 private:
  std::unique_ptr<net::Subprocess> proc_;
};

int free_port() {
  auto [sock, port] = testing::bind_unused_port();
  return port;  // closed here: free unless someone else takes it meanwhile
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

class InteropTest : public testing::AsyncTest {
 public:
  explicit InteropTest(HTTPClientBackend backend) : backend_(backend) {}

 protected:
  Duration async_test_timeout() const override { return 60s; }
  void TearDown() override {
    client_.reset();
    AsyncTest::TearDown();
  }
  AsyncHTTPClient& client() {
    if (!client_) client_ = AsyncHTTPClient::create(backend_);
    return *client_;
  }

  /// Starts the Tornado server; false (the test skips) without Tornado.
  Future<bool> start_tornado() {
    if (::access(kPython, X_OK) != 0) co_return false;
    peer_ = std::make_unique<Peer>(std::vector<std::string>{kPython, "-c", kTornadoServer}, true);
    std::string line = co_await peer_->proc().stdout_stream()->read_until("\n", 100);
    if (line.rfind("SKIP", 0) == 0) co_return false;
    base_ = "http://127.0.0.1:" + std::to_string(std::stoi(line));
    co_return true;
  }

  /// Starts nginx on a free port serving `root_`; false without nginx.
  Future<bool> start_nginx() {
    if (::access(kNginx, X_OK) != 0) co_return false;
    char tmpl[] = "/tmp/squall-nginx-XXXXXX";
    if (!::mkdtemp(tmpl)) co_return false;
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/www/dir");
    std::ofstream(dir_ + "/www/hello.txt") << "Hello from nginx\n";
    std::string text;
    for (int i = 0; i < 3000; ++i) text += "line " + std::to_string(i) + " of a compressible file\n";
    std::ofstream(dir_ + "/www/text.txt") << text;
    text_ = text;
    std::string big(5 * 1024 * 1024 + 3, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
    std::ofstream(dir_ + "/www/big.bin", std::ios::binary) << big;
    big_ = big;
    // nginx cannot listen on port 0: take a free port, and try again if
    // someone else grabbed it before nginx bound it.
    for (int attempt = 0; attempt < 5; ++attempt) {
      int port = free_port();
      std::ofstream(dir_ + "/nginx.conf")
          << "daemon off;\nmaster_process off;\nworker_processes 1;\npid " << dir_ << "/nginx.pid;\n"
          << "error_log " << dir_ << "/error.log;\nevents { worker_connections 256; }\n"
          << "http {\n  access_log off;\n"
          << "  client_body_temp_path " << dir_ << "/body;\n  proxy_temp_path " << dir_ << "/proxy;\n"
          << "  fastcgi_temp_path " << dir_ << "/fastcgi;\n  uwsgi_temp_path " << dir_ << "/uwsgi;\n"
          << "  scgi_temp_path " << dir_ << "/scgi;\n"
          << "  keepalive_requests 1000;\n  gzip on;\n  gzip_types text/plain;\n  gzip_min_length 100;\n"
          << "  types { text/plain txt; application/octet-stream bin; }\n"
          << "  server {\n    listen 127.0.0.1:" << port << ";\n    root " << dir_ << "/www;\n"
          << "    location /moved { return 301 /hello.txt; }\n  }\n}\n";
      peer_ = std::make_unique<Peer>(
          std::vector<std::string>{kNginx, "-e", dir_ + "/error.log", "-p", dir_, "-c", dir_ + "/nginx.conf"}, false);
      // Up within two seconds, or it failed (port taken): try another port.
      for (int i = 0; i < 200 && !accepting(port); ++i) co_await sleep(10ms);
      if (accepting(port)) {
        base_ = "http://127.0.0.1:" + std::to_string(port);
        co_return true;
      }
      co_await peer_->reap();
      peer_.reset();
    }
    co_return false;
  }

  Future<void> stop_peer() {
    if (peer_) co_await peer_->reap();
    peer_.reset();
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  std::string url(const std::string& path) const { return base_ + path; }

  HTTPClientBackend backend_;
  std::unique_ptr<AsyncHTTPClient> client_;
  std::unique_ptr<Peer> peer_;
  std::string base_;
  std::string dir_;
  std::string text_;
  std::string big_;
};

}  // namespace

/// Registers test class T for one backend, as InteropTest/<backend>.<name>.
template <class T>
::testing::TestInfo* register_interop_test(const char* name, HTTPClientBackend backend, const char* file, int line) {
  const bool native = backend == HTTPClientBackend::native;
  return ::testing::RegisterTest(native ? "InteropTest/native" : "InteropTest/curl", name, nullptr,
                                 native ? "native" : "curl", file, line,
                                 [backend]() -> InteropTest* { return new T(backend); });
}

/// A coroutine test body run once per backend, like CLIENT_TEST in
/// httpclient_test.cpp.
#define INTEROP_TEST(name)                                                                              \
  class InteropTest_##name : public InteropTest {                                                       \
   public:                                                                                              \
    using InteropTest::InteropTest;                                                                     \
    void TestBody() override { this->run_coroutine_test([this] { return this->CoroutineBody(); }); }    \
    ::squall::Future<void> CoroutineBody();                                                             \
  };                                                                                                    \
  [[maybe_unused]] static ::testing::TestInfo* const InteropTest_##name##_native =                      \
      register_interop_test<InteropTest_##name>(#name, HTTPClientBackend::native, __FILE__, __LINE__);   \
  [[maybe_unused]] static ::testing::TestInfo* const InteropTest_##name##_curl =                        \
      register_interop_test<InteropTest_##name>(#name, HTTPClientBackend::curl, __FILE__, __LINE__);     \
  ::squall::Future<void> InteropTest_##name::CoroutineBody()

INTEROP_TEST(TornadoServer) {
  if (!co_await start_tornado()) co_return;  // python3-tornado is not installed
  HTTPResponse r = co_await client().fetch(url("/hello"));
  EXPECT_EQ(r.body, "Hello from Tornado");
  EXPECT_NE(r.headers.get("Server", "").find("Tornado"), std::string::npos);

  // Keep-alive: the server sees the same client port every time.
  std::string first_port = (co_await client().fetch(url("/peer"))).body;
  for (int i = 0; i < 20; ++i) {
    HTTPResponse p = co_await client().fetch(url("/peer"));
    EXPECT_EQ(p.body, first_port);
  }

  HTTPRequest post;
  post.url = url("/echo");
  post.method = "POST";
  post.body = std::string(300000, 'q');
  r = co_await client().fetch(post);
  EXPECT_EQ(r.headers.get("X-Method", ""), "POST");
  EXPECT_EQ(r.body.size(), 300000u);

  post.expect_100_continue = true;
  post.method = "PUT";
  r = co_await client().fetch(post);
  EXPECT_EQ(r.headers.get("X-Method", ""), "PUT");
  EXPECT_EQ(r.body.size(), 300000u);

  for (int code : {301, 302, 303, 307, 308}) {
    r = co_await client().fetch(url("/redirect?code=" + std::to_string(code)));
    EXPECT_EQ(r.body, "Hello from Tornado") << code;
    EXPECT_EQ(r.effective_url, url("/hello")) << code;
  }

  r = co_await client().fetch(url("/chunked"));
  EXPECT_EQ(r.body, "part0,part1,part2,");

  r = co_await client().fetch(url("/text"));
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "gzip");
  EXPECT_EQ(r.body.size(), std::string("compressible ").size() * 2000);

  std::uint64_t streamed = 0;
  HTTPRequest big = client().request(url("/big?n=" + std::to_string(20 << 20)));
  big.streaming_callback = [&](std::string_view chunk) { streamed += chunk.size(); };
  co_await client().fetch(big);
  EXPECT_EQ(streamed, std::uint64_t{20} << 20);

  HTTPResponse missing = co_await client().fetch(url("/nowhere"), false);
  EXPECT_EQ(missing.code, 404);
  client_.reset();
  co_await stop_peer();
}

INTEROP_TEST(NginxStaticFiles) {
  if (!co_await start_nginx()) co_return;  // nginx is not installed (or would not start)
  HTTPResponse r = co_await client().fetch(url("/hello.txt"));
  EXPECT_EQ(r.body, "Hello from nginx\n");
  EXPECT_NE(r.headers.get("Server", "").find("nginx"), std::string::npos);

  r = co_await client().fetch(url("/text.txt"));
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "gzip");  // nginx compressed it...
  EXPECT_TRUE(r.body == text_);                              // ...and the client decoded it

  r = co_await client().fetch(url("/big.bin"));
  EXPECT_EQ(r.body.size(), big_.size());
  EXPECT_TRUE(r.body == big_);

  HTTPRequest head = client().request(url("/big.bin"));
  head.method = "HEAD";
  r = co_await client().fetch(head);
  EXPECT_EQ(r.headers.get("Content-Length", ""), std::to_string(big_.size()));
  EXPECT_EQ(r.body, "");

  HTTPRequest range = client().request(url("/big.bin"));
  range.headers.add("Range", "bytes=10-19");
  r = co_await client().fetch(range);
  EXPECT_EQ(r.code, 206);
  EXPECT_EQ(r.body, big_.substr(10, 10));

  r = co_await client().fetch(url("/moved"));
  EXPECT_EQ(r.body, "Hello from nginx\n");
  EXPECT_EQ(r.effective_url, url("/hello.txt"));

  r = co_await client().fetch(url("/dir"), false);  // nginx redirects to /dir/, whose index is forbidden
  EXPECT_EQ(r.code, 403);

  HTTPResponse missing = co_await client().fetch(url("/missing.txt"), false);
  EXPECT_EQ(missing.code, 404);

  // Many at once over the pool.
  std::vector<Future<HTTPResponse>> all;
  for (int i = 0; i < 50; ++i) all.push_back(client().fetch(url("/hello.txt")));
  std::vector<HTTPResponse> done = co_await multi(std::move(all));
  for (auto& d : done) EXPECT_EQ(d.body, "Hello from nginx\n");
  client_.reset();
  co_await stop_peer();
}

}  // namespace squall::http
