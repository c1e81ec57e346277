// HTTPServer behind a real nginx (Debian's nginx-light) running the sample
// configuration of docs/deploy/nginx.conf, the very file the guide shows:
// only its ports, certificate paths and a temporary prefix are substituted
// (each substitution must match exactly once, so the test breaks if the file
// changes shape). Two HTTPServers with xheaders on are its upstreams. Checked
// through nginx: the client's address and scheme reach request.remote_ip and
// request.protocol (X-Real-IP, X-Forwarded-For, X-Forwarded-Proto), forged
// proxy headers from the client do not, upstream connections are kept alive,
// a chunked upload streams through, HTTP/1.0 clients work.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../support/test_certs.hpp"
#include "server_test_client.hpp"
#include "squall/core/gen.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/process.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

using test::read_response;
using test::Response;

constexpr const char* kNginx = "/usr/sbin/nginx";

/// The source tree's copy of `relative`: found upward from the test binary
/// (build/<dir>/tests/...), the working directory, or SQUALL_SOURCE_DIR.
std::filesystem::path source_file(const std::string& relative) {
  namespace fs = std::filesystem;
  std::vector<fs::path> starts;
  if (const char* env = std::getenv("SQUALL_SOURCE_DIR")) starts.emplace_back(env);
  std::error_code ec;
  starts.push_back(fs::read_symlink("/proc/self/exe", ec).parent_path());
  starts.push_back(fs::current_path(ec));
  for (fs::path dir : starts) {
    for (; !dir.empty(); dir = dir.parent_path()) {
      if (fs::exists(dir / relative, ec)) return dir / relative;
      if (dir == dir.parent_path()) break;
    }
  }
  throw std::runtime_error("cannot find " + relative + " (set SQUALL_SOURCE_DIR)");
}

/// Replaces the one occurrence of `from` in `text`; throws if there is not
/// exactly one (the documented file changed shape: update the test with it).
void replace_once(std::string& text, const std::string& from, const std::string& to) {
  std::size_t at = text.find(from);
  if (at == std::string::npos || text.find(from, at + 1) != std::string::npos) {
    throw std::runtime_error("docs/deploy/nginx.conf: expected exactly one '" + from + "'");
  }
  text.replace(at, from.size(), to);
}

class NginxTest : public testing::AsyncTest {
 protected:
  Duration async_test_timeout() const override { return std::chrono::seconds(20); }

  void SetUp() override {
    AsyncTest::SetUp();
    if (::access(kNginx, X_OK) != 0) GTEST_SKIP() << "nginx is not installed (scripts/setup-deps installs nginx-light)";
    char tmpl[] = "/tmp/squall-nginx-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    // nginx started by root runs its workers as nobody: they must be able
    // to reach the prefix (their temporary files go there).
    ::chmod(dir_.c_str(), 0755);
  }

  void TearDown() override {
    if (nginx_) {
      if (!nginx_->returncode()) {
        nginx_->send_signal(SIGTERM);
        io_loop().run_sync([this] { return nginx_->wait_for_exit(false); }, std::chrono::seconds(10));
      }
      nginx_.reset();
    }
    for (auto& app : apps_) app.server.reset();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    AsyncTest::TearDown();
  }

  struct App {
    std::unique_ptr<HTTPServer> server;
    int port = 0;
    std::set<const HTTPConnection*> connections;  // seen by its requests
    int requests = 0;
  };

  /// The application behind nginx: reports what the request looked like.
  void start_app(App& app) {
    HTTPServerOptions options;
    options.xheaders = true;
    app.server = std::make_unique<HTTPServer>(
        [&app](HTTPServerRequest& req) {
          ++app.requests;
          app.connections.insert(req.connection());
          if (req.path == "/upload") {
            std::uint64_t sum = 0;
            for (unsigned char c : req.body) sum = sum * 31 + c;
            req.respond(200, "text/plain",
                        std::to_string(req.body.size()) + " " + std::to_string(sum) + " " +
                            std::string(req.headers.get("Transfer-Encoding", "-")));
            return;
          }
          req.respond(200, "text/plain",
                      req.remote_ip + " " + req.protocol + " " + req.host + " xff=" +
                          std::string(req.headers.get("X-Forwarded-For", "-")));
        },
        options);
    auto [sock, port] = testing::bind_unused_port();
    app.port = port;
    app.server->add_socket(std::move(sock));
  }

  /// Writes docs/deploy/nginx.conf with this test's ports and paths into
  /// the prefix, starts nginx on it, and waits until it accepts.
  Future<void> start_nginx() {
    for (auto& app : apps_) start_app(app);
    std::ifstream in(source_file("docs/deploy/nginx.conf"));
    std::stringstream text;
    text << in.rdbuf();
    std::string conf = text.str();
    {
      auto [plain_sock, plain_port] = testing::bind_unused_port();
      auto [tls_sock, tls_port] = testing::bind_unused_port();
      plain_port_ = plain_port;
      tls_port_ = tls_port;
    }  // closed: nginx binds them (they stay free in the meantime)
    replace_once(conf, "worker_processes auto;", "worker_processes 1;");
    replace_once(conf, "server 127.0.0.1:8001;", "server 127.0.0.1:" + std::to_string(apps_[0].port) + ";");
    replace_once(conf, "server 127.0.0.1:8002;", "server 127.0.0.1:" + std::to_string(apps_[1].port) + ";");
    replace_once(conf, "listen 80;", "listen 127.0.0.1:" + std::to_string(plain_port_) + ";");
    replace_once(conf, "listen 443 ssl;", "listen 127.0.0.1:" + std::to_string(tls_port_) + " ssl;");
    replace_once(conf, "/etc/ssl/certs/example.com.pem", certs_.server().cert);
    replace_once(conf, "/etc/ssl/private/example.com.key", certs_.server().key);
    // Where this nginx keeps its files: the prefix, not /var.
    replace_once(conf, "http {\n",
                 "http {\n    access_log off;\n"
                 "    client_body_temp_path " + dir_ + "/client_body;\n"
                 "    proxy_temp_path " + dir_ + "/proxy;\n"
                 "    fastcgi_temp_path " + dir_ + "/fastcgi;\n"
                 "    uwsgi_temp_path " + dir_ + "/uwsgi;\n"
                 "    scgi_temp_path " + dir_ + "/scgi;\n");
    std::ofstream(dir_ + "/nginx.conf") << conf;

    net::SubprocessOptions options;
    options.stdout_mode = net::Stdio::DevNull;
    options.stderr_mode = net::Stdio::DevNull;
    std::string globals = "daemon off; pid " + dir_ + "/nginx.pid; error_log " + dir_ + "/error.log notice;";
    std::vector<std::string> argv = {kNginx, "-p", dir_ + "/", "-c", dir_ + "/nginx.conf", "-e", dir_ + "/error.log",
                                     "-g", globals};
    nginx_ = std::make_unique<net::Subprocess>(argv, options);
    // nginx says nothing when it is ready: try its port until it answers
    // (bounded; a failed start shows in its error log).
    auto deadline = io_loop().time() + 10s;
    for (;;) {
      bool up = false;
      try {
        test::connect_fd(plain_port_);
        up = true;
      } catch (const std::exception&) {
      }
      if (up) break;
      if (nginx_->returncode() || io_loop().time() > deadline) {
        throw std::runtime_error("nginx did not start:\n" + error_log());
      }
      co_await sleep(20ms);
    }
  }

  std::string error_log() const {
    std::ifstream in(dir_ + "/error.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  /// A connection to nginx's plain port from 127.0.0.5, so the address
  /// nginx reports differs from its own (127.0.0.1) toward the app.
  std::unique_ptr<net::IOStream> connect_from_elsewhere() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(0x7f000005);  // 127.0.0.5
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) throw std::runtime_error("bind");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(plain_port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
    return std::make_unique<net::IOStream>(std::move(fd));
  }

  /// Nothing worse than a notice in nginx's log (no upstream errors).
  void expect_clean_error_log() {
    std::string log = error_log();
    for (const char* level : {"[error]", "[crit]", "[alert]", "[emerg]"}) {
      EXPECT_EQ(log.find(level), std::string::npos) << log;
    }
  }

  testing::TestCerts certs_;
  std::string dir_;
  App apps_[2];
  std::unique_ptr<net::Subprocess> nginx_;
  int plain_port_ = 0;
  int tls_port_ = 0;
};

SQUALL_ASYNC_TEST(NginxTest, TheAppSeesTheClientsAddressAndScheme) {
  co_await start_nginx();
  // Plain HTTP, from 127.0.0.5; the client's own proxy headers are forged.
  auto s = connect_from_elsewhere();
  co_await s->write(
      "GET /who HTTP/1.1\r\nHost: app.test\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-For: 1.2.3.4\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 200);
  // remote_ip is nginx's X-Real-IP (the real peer), not the forged one nor
  // nginx's own address; the scheme is nginx's; X-Forwarded-For carries the
  // chain with the real peer appended.
  EXPECT_EQ(r.body, "127.0.0.5 http app.test xff=1.2.3.4, 127.0.0.5");

  // HTTPS, terminated by nginx with the test certificate: the app, reached
  // over plain HTTP, reports https (X-Forwarded-Proto).
  net::SSLOptions tls;
  tls.ca_certs = certs_.ca_file();
  auto t = test::connect_tls(tls_port_, net::SSLContext::client(tls));
  co_await t->write("GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n");
  r = co_await read_response(*t);
  EXPECT_EQ(r.body, "127.0.0.1 https localhost xff=127.0.0.1");

  // HTTP/1.0 without a Host: nginx fills one in, the app (HTTP/1.1) is content.
  auto old = connect_from_elsewhere();
  co_await old->write("GET /who HTTP/1.0\r\n\r\n");
  r = co_await read_response(*old);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "127.0.0.5 http example.com xff=127.0.0.5");
  expect_clean_error_log();
}

SQUALL_ASYNC_TEST(NginxTest, KeepsUpstreamConnectionsAlive) {
  co_await start_nginx();
  // Twenty requests on fresh client connections, one after another: nginx
  // (one worker) reuses one connection per app process.
  for (int i = 0; i < 20; ++i) {
    Response r = co_await test::exchange(plain_port_, "GET /k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(r.code, 200);
    EXPECT_EQ(r.headers.get("Connection", ""), "close");  // toward the client, as asked
  }
  EXPECT_EQ(apps_[0].requests + apps_[1].requests, 20);
  EXPECT_GE(apps_[0].requests, 1);  // round robin over both
  EXPECT_GE(apps_[1].requests, 1);
  EXPECT_EQ(apps_[0].connections.size(), 1u);
  EXPECT_EQ(apps_[1].connections.size(), 1u);
  // ...and those connections are still open, idle, between requests.
  EXPECT_EQ(apps_[0].server->connection_count(), 1u);
  EXPECT_EQ(apps_[1].server->connection_count(), 1u);
  expect_clean_error_log();
}

SQUALL_ASYNC_TEST(NginxTest, StreamsAChunkedUploadToTheApp) {
  co_await start_nginx();
  auto s = test::connect_to(plain_port_);
  std::string body;
  for (int i = 0; i < 300 * 1024; ++i) body += static_cast<char>('a' + (i * 7) % 26);
  co_await s->write("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::uint64_t sum = 0;
  for (unsigned char c : body) sum = sum * 31 + c;
  // Sent in uneven chunks, some while nginx is already passing earlier ones on.
  std::size_t at = 0;
  for (std::size_t size : {1u, 4096u, 100000u, 7u, 65536u}) {
    std::string piece = body.substr(at, size);
    at += piece.size();
    std::ostringstream chunk;
    chunk << std::hex << piece.size() << "\r\n" << piece << "\r\n";
    co_await s->write(chunk.str());
    co_await moment();
  }
  std::ostringstream rest;
  rest << std::hex << body.size() - at << "\r\n" << body.substr(at) << "\r\n0\r\n\r\n";
  co_await s->write(rest.str());
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 200);
  // The whole body arrived, and it came chunked: nginx streamed it instead
  // of buffering it (proxy_request_buffering off, HTTP/1.1 to the app).
  EXPECT_EQ(r.body, std::to_string(body.size()) + " " + std::to_string(sum) + " chunked");
  // And one with a length, on the same client connection.
  co_await s->write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  r = co_await read_response(*s);
  EXPECT_EQ(r.body.substr(0, 2), "5 ");
  expect_clean_error_log();
}

}  // namespace
}  // namespace squall::http
