// squall-fetch, the command-line client (examples/squall_fetch.cpp), run as
// a subprocess against a squall server on 127.0.0.1: what it prints, and
// the exit status that tells each kind of failure apart. Every case runs on
// both backends where the backend matters.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/process.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/testing.hpp"
#include "../support/test_certs.hpp"

using namespace std::chrono_literals;

#ifndef SQUALL_FETCH_PATH
#define SQUALL_FETCH_PATH ""
#endif

namespace squall::http {
namespace {

struct FetchRun {
  int status = -1;
  std::string out;
  std::string err;
};

/// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/squall-fetch-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SquallFetchTest : public testing::AsyncTest, public ::testing::WithParamInterface<std::string> {
 public:
  void SetUp() override {
    AsyncTest::SetUp();
    if (std::string(SQUALL_FETCH_PATH).empty()) GTEST_SKIP() << "squall-fetch is not built (examples are off)";
  }
  void TearDown() override {
    server_.reset();
    tls_server_.reset();
    AsyncTest::TearDown();
  }

  // The subprocess and its pipes are awaited on the loop, so the server
  // answers meanwhile.
  Duration async_test_timeout() const override { return 30s; }

  void start(bool tls = false) {
    auto handler = HTTPServer::RequestCallback([this](HTTPServerRequest& req) -> Future<void> { return handle(req); });
    HTTPServerOptions options;
    if (tls) {
      certs_ = std::make_unique<testing::TestCerts>();
      net::SSLOptions ssl;
      ssl.certfile = certs_->server().cert;
      ssl.keyfile = certs_->server().key;
      options.ssl_context = net::SSLContext::server(ssl);
    }
    auto server = std::make_unique<HTTPServer>(std::move(handler), options);
    auto [sock, port] = testing::bind_unused_port();
    server->add_socket(std::move(sock));
    if (tls) {
      tls_port_ = port;
      tls_server_ = std::move(server);
    } else {
      port_ = port;
      server_ = std::move(server);
    }
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  Future<void> handle(HTTPServerRequest& req) {
    if (req.path == "/hello") {
      req.respond(200, "text/plain", "Hello, world\n");
    } else if (req.path == "/echo") {
      std::string out = req.method + " " + req.body;
      for (const auto& field : req.headers) {
        if (field.name.substr(0, 2) == "X-") out += "|" + std::string(field.name) + "=" + std::string(field.value);
      }
      req.respond(200, "text/plain", out);
    } else if (req.path == "/big") {
      req.respond(200, "application/octet-stream", std::string(3 * 1024 * 1024, 'b'));
    } else if (req.path == "/missing") {
      req.respond(404, "text/plain", "nothing here\n");
    } else if (req.path == "/redirect") {
      HTTPHeaders h;
      h.add("Location", "/hello");
      req.respond(302, h, "");
    } else if (req.path == "/slow") {
      co_await sleep(5s);
      req.respond(200, "text/plain", "late");
    } else {
      req.respond(404, "text/plain", "");
    }
  }

  /// Runs squall-fetch with `args` (and --backend of the test's parameter).
  /// Variadic so callers need no braced list inside co_await (GCC 12
  /// mishandles those temporaries in coroutines).
  template <class... Args>
  Future<FetchRun> fetch(const Args&... args) {
    return fetch_argv(std::vector<std::string>{std::string(args)...});
  }

  Future<FetchRun> fetch_argv(std::vector<std::string> args) {
    std::vector<std::string> argv = {SQUALL_FETCH_PATH, "--backend", GetParam()};
    argv.insert(argv.end(), args.begin(), args.end());
    net::SubprocessOptions options;
    options.stdout_mode = net::Stdio::Stream;
    options.stderr_mode = net::Stdio::Stream;
    options.stdin_mode = net::Stdio::DevNull;
    net::Subprocess proc(std::move(argv), options);
    // Both pipes drain at once, so neither can fill up and stall the child.
    Future<std::string> out = proc.stdout_stream()->read_until_close();
    Future<std::string> err = proc.stderr_stream()->read_until_close();
    FetchRun run;
    run.out = co_await std::move(out);
    run.err = co_await std::move(err);
    run.status = co_await proc.wait_for_exit(false);
    co_return run;
  }

  std::unique_ptr<HTTPServer> server_;
  std::unique_ptr<HTTPServer> tls_server_;
  std::unique_ptr<testing::TestCerts> certs_;
  int port_ = 0;
  int tls_port_ = 0;
};

/// A value-parametrised test whose body is a coroutine taking the fixture
/// as `self` (SQUALL_ASYNC_TEST is for plain fixtures only).
#define SQUALL_FETCH_TEST(name)                                                      \
  Future<void> name##_body(SquallFetchTest& self);                                   \
  TEST_P(SquallFetchTest, name) {                                                    \
    run_coroutine_test([this] { return name##_body(*this); });                       \
  }                                                                                  \
  Future<void> name##_body(SquallFetchTest& self)

SQUALL_FETCH_TEST(PrintsTheBodyAndExitsZero) {
  self.start();
  FetchRun r = co_await self.fetch(self.url("/hello"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "Hello, world\n");
  EXPECT_EQ(r.err, "");
}

SQUALL_FETCH_TEST(PrintsTheHeadBeforeTheBodyWhenAsked) {
  self.start();
  FetchRun r = co_await self.fetch("--print-headers", self.url("/hello"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("Content-Length: 13\r\n"), std::string::npos) << r.out;
  auto blank = r.out.find("\r\n\r\n");
  CO_ASSERT_NE(blank, std::string::npos);
  EXPECT_EQ(r.out.substr(blank + 4), "Hello, world\n");

  FetchRun head_only = co_await self.fetch("-i", "--no-print-body", self.url("/hello"));
  EXPECT_EQ(head_only.status, 0);
  EXPECT_EQ(head_only.out.find("Hello"), std::string::npos);
  EXPECT_EQ(head_only.out.substr(head_only.out.size() - 4), "\r\n\r\n");
}

SQUALL_FETCH_TEST(SendsMethodDataAndRepeatedHeaders) {
  self.start();
  FetchRun r = co_await self.fetch("--method", "PUT", "--data", "payload", "-H", "X-One: 1", "-H", "X-Two:  two words",
                          self.url("/echo"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "PUT payload|X-One=1|X-Two=two words");

  // --data alone means POST.
  FetchRun post = co_await self.fetch("-d", "x=1", self.url("/echo"));
  EXPECT_EQ(post.out, "POST x=1");
}

SQUALL_FETCH_TEST(StreamsADataFile) {
  self.start();
  TempDir dir;
  std::string path = dir.file("upload.bin");
  std::string content(300 * 1000, 'u');
  std::ofstream(path, std::ios::binary) << content;
  FetchRun r = co_await self.fetch("--data-file", path, self.url("/echo"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.size(), content.size() + 5);
  EXPECT_TRUE(r.out == "POST " + content);
}

SQUALL_FETCH_TEST(WritesTheBodyToAFileWithOutput) {
  self.start();
  TempDir dir;
  std::string path = dir.file("out.bin");
  FetchRun r = co_await self.fetch("-o", path, self.url("/big"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  // stderr is a pipe, not a terminal: no progress bar.
  EXPECT_EQ(r.err, "");
  std::string written = slurp(path);
  EXPECT_EQ(written.size(), 3u * 1024 * 1024);
  EXPECT_TRUE(written == std::string(3 * 1024 * 1024, 'b'));
}

SQUALL_FETCH_TEST(ExitsTwoOnAnHttpErrorStatusAndStillPrintsTheBody) {
  self.start();
  FetchRun r = co_await self.fetch(self.url("/missing"));
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "nothing here\n");
  EXPECT_NE(r.err.find("404"), std::string::npos) << r.err;
}

SQUALL_FETCH_TEST(FollowsRedirectsUnlessToldNot) {
  self.start();
  FetchRun followed = co_await self.fetch(self.url("/redirect"));
  EXPECT_EQ(followed.status, 0) << followed.err;
  EXPECT_EQ(followed.out, "Hello, world\n");

  FetchRun stopped = co_await self.fetch("--no-follow-redirects", self.url("/redirect"));
  EXPECT_EQ(stopped.status, 2);
  EXPECT_NE(stopped.err.find("302"), std::string::npos) << stopped.err;
}

SQUALL_FETCH_TEST(ExitsThreeWhenNothingListens) {
  // A port that was just free: bound, then closed.
  int port = 0;
  {
    auto [sock, p] = testing::bind_unused_port();
    port = p;
  }
  FetchRun r = co_await self.fetch("http://127.0.0.1:" + std::to_string(port) + "/");
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
}

SQUALL_FETCH_TEST(ExitsFourOnTimeout) {
  self.start();
  FetchRun r = co_await self.fetch("--timeout", "0.3", self.url("/slow"));
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("Timeout"), std::string::npos) << r.err;
}

SQUALL_FETCH_TEST(ExitsFiveWhenTheCertificateDoesNotVerify) {
  self.start(true);
  std::string tls_url = "https://127.0.0.1:" + std::to_string(self.tls_port_) + "/hello";
  FetchRun unknown_ca = co_await self.fetch(tls_url);
  EXPECT_EQ(unknown_ca.status, 5) << unknown_ca.err;
  EXPECT_NE(unknown_ca.err.find("certificate"), std::string::npos) << unknown_ca.err;

  FetchRun trusted = co_await self.fetch("--ca-certs", self.certs_->ca_file(), tls_url);
  EXPECT_EQ(trusted.status, 0) << trusted.err;
  EXPECT_EQ(trusted.out, "Hello, world\n");

  FetchRun insecure = co_await self.fetch("--insecure", tls_url);
  EXPECT_EQ(insecure.status, 0) << insecure.err;
}

SQUALL_FETCH_TEST(ExitsOneOnUsageErrors) {
  FetchRun no_url = co_await self.fetch();
  EXPECT_EQ(no_url.status, 1);
  EXPECT_NE(no_url.err.find("url"), std::string::npos) << no_url.err;

  FetchRun bad_option = co_await self.fetch("--no-such-option", "http://127.0.0.1:1/");
  EXPECT_EQ(bad_option.status, 1);

  FetchRun bad_header = co_await self.fetch("-H", "no colon", "http://127.0.0.1:1/");
  EXPECT_EQ(bad_header.status, 1);
  EXPECT_NE(bad_header.err.find("Name: value"), std::string::npos) << bad_header.err;

  FetchRun bad_scheme = co_await self.fetch("ftp://127.0.0.1/");
  EXPECT_EQ(bad_scheme.status, 1) << bad_scheme.err;
}

SQUALL_FETCH_TEST(HelpExitsZero) {
  FetchRun r = co_await self.fetch("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("Exit status"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Backends, SquallFetchTest, ::testing::Values("native", "curl"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace squall::http
