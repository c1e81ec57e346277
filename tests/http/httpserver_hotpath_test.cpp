// The server's hot path, measured: heap allocations per keep-alive request
// (DESIGN.md: none where a pool or reuse will do), and syscalls for
// pipelined requests (their answers leave in one write; the next request is
// parsed from the buffer without another read).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "../support/counting_new.hpp"
#include "server_test_client.hpp"
#include "squall/core/gen.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

// Where the allocations of one keep-alive GET come from, once every pool is
// warm; the rest of the path (parsing, the request object, its headers, the
// response head and its buffer, the header deadline) allocates nothing:
// - squall's pool (coroutine frames, Future states, PooledAllocation): the
//   Future of the stream's read_more and the request's delegate. The pool
//   hands out recycled blocks, but it is off under AddressSanitizer (which
//   must see every block), so there each is a malloc.
// - nothing else: IOStream writes a response without allocating (its write
//   queue keeps its storage).
#if defined(__SANITIZE_ADDRESS__)
constexpr long kPoolBlocksPerRequest = 2;
#else
constexpr long kPoolBlocksPerRequest = 0;
#endif
constexpr long kAllocationBound = kPoolBlocksPerRequest;

constexpr std::string_view kRequest = "GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n";
constexpr std::string_view kBody = "Hello, World!";

/// A blocking client on its own thread (so its allocations are not
/// counted): `count` keep-alive GETs, one after another. Tells `loop` when
/// it is done (add_callback is the loop's one thread-safe entry).
void run_client(int port, int count, IOLoop& loop, Future<int>& done) {
  int answered = 0;
  {
    UniqueFd fd = test::connect_fd(port);
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string buf;
    for (int i = 0; i < count; ++i) {
      if (::send(fd.get(), kRequest.data(), kRequest.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kRequest.size())) break;
      buf.clear();
      bool ok = true;
      while (ok && (buf.size() < kBody.size() || buf.compare(buf.size() - kBody.size(), kBody.size(), kBody) != 0)) {
        char chunk[4096];
        ssize_t n = ::recv(fd.get(), chunk, sizeof chunk, 0);
        if (n <= 0) ok = false;
        else buf.append(chunk, static_cast<std::size_t>(n));
      }
      if (!ok) break;
      ++answered;
    }
  }
  loop.add_callback([&done, answered] { done.set_result(answered); });
}

class HotPathTest : public testing::AsyncTest {
 public:
  /// Called by the handler of each request: counts allocations from the
  /// start of request `first_` to the start of request `last_`, that is
  /// over last_ - first_ whole request cycles.
  void on_request() {
    ++requests_;
    if (requests_ == first_) {
      tls_allocations = 0;
    } else if (requests_ == last_) {
      counted_ = std::exchange(tls_allocations, -1);
    }
  }

 protected:
  Duration async_test_timeout() const override { return std::chrono::seconds(30); }
  void TearDown() override {
    tls_allocations = -1;
    server_.reset();
    AsyncTest::TearDown();
  }

  /// Serves `warm_up + measured + 1` requests from one client; the
  /// allocations the server's thread made per request in the measured ones.
  Future<double> allocations_per_request(int warm_up, int measured) {
    auto [sock, port] = testing::bind_unused_port();
    server_->add_socket(std::move(sock));
    first_ = warm_up + 1;
    last_ = first_ + measured;
    int total = last_;
    Future<int> done;
    std::thread client(run_client, port, total, std::ref(io_loop()), std::ref(done));
    int answered = co_await done;
    client.join();
    EXPECT_EQ(answered, total);
    co_return static_cast<double>(counted_) / measured;
  }

  std::unique_ptr<HTTPServer> server_;
  int requests_ = 0;
  int first_ = 0;
  int last_ = 0;
  long counted_ = -1;
};

SQUALL_ASYNC_TEST(HotPathTest, AKeepAliveGetToAPlainCallbackAllocatesAlmostNothing) {
  server_ = std::make_unique<HTTPServer>([this](HTTPServerRequest& req) {
    on_request();
    req.respond(200, "text/plain", kBody);
  });
  double per_request = co_await allocations_per_request(200, 2000);
  RecordProperty("allocations_per_request", std::to_string(per_request));
  std::printf("allocations per keep-alive GET (callback): %.3f (bound %ld)\n", per_request, kAllocationBound);
  EXPECT_LE(per_request, kAllocationBound + 0.05);  // + rare extras (a pool growing, ...)
}

/// The fastest way to answer: a delegate of its own, as examples/hello does.
class Plain final : public HTTPMessageDelegate, public PooledAllocation {
 public:
  Plain(HTTPConnection& conn, HotPathTest& test) : conn_(conn), test_(test) {}
  Future<void> headers_received(const RequestStartLine&, HTTPHeaders&) override { return Future<void>(nullptr); }
  Future<void> data_received(std::string_view) override { return Future<void>(nullptr); }
  Future<void> finish() override {
    test_.on_request();
    thread_local HTTPHeaders headers;
    headers.clear();
    headers.add_unchecked("Content-Type", "text/plain");
    headers.add_unchecked("Content-Length", "13");
    conn_.write_headers(200, {}, headers, kBody);
    conn_.finish();
    return Future<void>(nullptr);
  }
  void on_connection_close() override {}

 private:
  HTTPConnection& conn_;
  HotPathTest& test_;
};

struct PlainApp final : HTTPServerConnectionDelegate {
  HotPathTest* test = nullptr;
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection&, HTTPConnection& conn) override {
    return std::make_unique<Plain>(conn, *test);
  }
};

SQUALL_ASYNC_TEST(HotPathTest, AKeepAliveGetToADelegateAllocatesAlmostNothing) {
  PlainApp app;
  app.test = this;
  server_ = std::make_unique<HTTPServer>(app);
  double per_request = co_await allocations_per_request(200, 2000);
  RecordProperty("allocations_per_request", std::to_string(per_request));
  std::printf("allocations per keep-alive GET (delegate): %.3f (bound %ld)\n", per_request, kAllocationBound);
  EXPECT_LE(per_request, kAllocationBound + 0.05);
  server_.reset();  // before `app`
}

// --- syscalls for pipelined requests ---------------------------------------------------

/// A socket stream that counts its reads and writes (each one syscall).
class CountingStream final : public net::IOStream {
 public:
  CountingStream(UniqueFd fd, const net::StreamOptions& options) : IOStream(std::move(fd), options) {}
  static inline int reads = 0;
  static inline int writes = 0;

 protected:
  net::IOResult read_from_fd(char* buf, std::size_t n) override {
    ++reads;
    return IOStream::read_from_fd(buf, n);
  }
  net::IOResult write_to_fd(const iovec* iov, int count) override {
    ++writes;
    return IOStream::write_to_fd(iov, count);
  }
};

class PipelineTest : public testing::AsyncTest {
 protected:
  void TearDown() override {
    server_.reset();
    AsyncTest::TearDown();
  }
  int start(HTTPServer::RequestCallback callback) {
    HTTPServerOptions options;
    options.tcp.make_stream = [](UniqueFd fd, const net::StreamOptions& o) -> std::unique_ptr<net::IOStream> {
      return std::make_unique<CountingStream>(std::move(fd), o);
    };
    server_ = std::make_unique<HTTPServer>(std::move(callback), std::move(options));
    auto [sock, port] = testing::bind_unused_port();
    server_->add_socket(std::move(sock));
    CountingStream::reads = CountingStream::writes = 0;
    return port;
  }
  std::unique_ptr<HTTPServer> server_;
};

SQUALL_ASYNC_TEST(PipelineTest, AnswersPipelinedRequestsInOneWriteAfterOneRead) {
  int port = start(HTTPServer::RequestCallback([](HTTPServerRequest& req) -> Future<void> {
    req.respond(200, "text/plain", req.path);
    return Future<void>(nullptr);
  }));
  constexpr int kRequests = 20;
  std::string batch;
  for (int i = 0; i < kRequests; ++i) batch += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  // Written before the server accepts: the whole batch waits in the socket.
  auto client = test::connect_to(port);
  co_await client->write(batch);
  for (int i = 0; i < kRequests; ++i) {
    test::Response r = co_await test::read_response(*client);
    EXPECT_EQ(r.body, "/r" + std::to_string(i));
  }
  // One read brought every request, and each next one was parsed from the
  // buffer (at most one more read, finding the socket empty, before the
  // stream waits: whether it needs it is the stream's business). All twenty
  // answers left in one write.
  EXPECT_GE(CountingStream::reads, 1);
  EXPECT_LE(CountingStream::reads, 2);
  EXPECT_EQ(CountingStream::writes, 1);
}

SQUALL_ASYNC_TEST(PipelineTest, SendsReadyAnswersBeforeWaitingForASlowOne) {
  int port = start(HTTPServer::RequestCallback([](HTTPServerRequest& req) -> Future<void> {
    if (req.path == "/slow") co_await sleep(100ms);
    req.respond(200, "text/plain", req.path);
  }));
  auto client = test::connect_to(port);
  co_await client->write(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ((co_await test::read_response(*client)).body, "/a");
  EXPECT_EQ((co_await test::read_response(*client)).body, "/b");
  EXPECT_EQ((co_await test::read_response(*client)).body, "/slow");
  EXPECT_EQ((co_await test::read_response(*client)).body, "/c");
  // /a and /b together, before the wait (had they waited for /slow, they
  // would have left with it: two writes); then /slow; then /c.
  EXPECT_EQ(CountingStream::writes, 3);
}

SQUALL_ASYNC_TEST(PipelineTest, CutsOffAPipeliningClientThatReadsNothing) {
  // Answers pile up unread: the server stops parsing (back-pressure) and,
  // once the header deadline passes, closes instead of waiting forever.
  HTTPServerOptions options;
  options.header_timeout = 300ms;
  const std::string big(1024 * 1024, 'b');
  server_ = std::make_unique<HTTPServer>([big](HTTPServerRequest& req) { req.respond(200, "text/plain", big); },
                                         std::move(options));
  auto [sock, port] = testing::bind_unused_port();
  server_->add_socket(std::move(sock));
  auto client = test::connect_to(port);
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  co_await client->write(batch);
  auto begin = io_loop().time();
  while (server_->connection_count() == 0 && io_loop().time() - begin < 2s) co_await sleep(5ms);
  EXPECT_EQ(server_->connection_count(), 1u);
  while (server_->connection_count() > 0 && io_loop().time() - begin < 5s) co_await sleep(20ms);
  EXPECT_EQ(server_->connection_count(), 0u);
  EXPECT_GE(io_loop().time() - begin, 250ms);
}

}  // namespace
}  // namespace squall::http
