// HTTPClient, the blocking wrapper, against an HTTPServer on its own thread,
// over both backends; and AsyncHTTPClient::instance() on loops of other
// threads. Threads are the point here, so ThreadSanitizer runs this file.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

Future<void> serve(HTTPServerRequest& req) {
  if (req.path == "/hello") {
    req.respond(200, "text/plain", "Hello, world");
  } else if (req.path == "/echo") {
    req.respond(200, "application/octet-stream", req.body);
  } else if (req.path == "/stall") {
    co_await sleep(30s);
    req.respond(200, "text/plain", "late");
  } else if (req.path == "/chunked") {
    HTTPHeaders h;
    co_await req.write_headers(200, h, "one,");
    co_await req.write("two,");
    co_await req.write("three");
    req.finish();
  } else {
    req.respond(404, "text/plain", "no such page");
  }
}

/// An HTTPServer running on its own loop in its own thread.
class ServerThread {
 public:
  ServerThread() {
    std::promise<int> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, &ready] {
      IOLoop loop;
      auto server = std::make_unique<HTTPServer>(HTTPServer::RequestCallback(serve));
      auto [sock, port] = testing::bind_unused_port();
      server->add_socket(std::move(sock));
      loop_.store(&loop);
      ready.set_value(port);
      loop.start();
      server.reset();
      loop.close(true);
    });
    port_ = started.get();
  }
  ~ServerThread() {
    IOLoop* loop = loop_.load();
    loop->add_callback([loop] { loop->stop(); });
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  std::thread thread_;
  std::atomic<IOLoop*> loop_{nullptr};
  int port_ = 0;
};

class HTTPClientThreadsTest : public ::testing::TestWithParam<HTTPClientBackend> {
 protected:
  ServerThread server_;
};

TEST_P(HTTPClientThreadsTest, FetchBlocksUntilTheResponseIsIn) {
  HTTPClient client(GetParam());
  HTTPResponse r = client.fetch(server_.url("/hello"));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello, world");
  HTTPRequest post;
  post.url = server_.url("/echo");
  post.method = "POST";
  post.body = std::string(200000, 'p');
  r = client.fetch(post);
  EXPECT_EQ(r.body, *post.body);
}

TEST_P(HTTPClientThreadsTest, ErrorsReachTheCaller) {
  HTTPClient client(GetParam());
  int code = 0;
  try {
    client.fetch(server_.url("/missing"));
  } catch (const HTTPClientError& e) {
    code = e.code();
    ASSERT_TRUE(e.response() != nullptr);
    EXPECT_EQ(e.response()->body, "no such page");
  }
  EXPECT_EQ(code, 404);
  HTTPResponse r = client.fetch(server_.url("/missing"), false);
  EXPECT_EQ(r.code, 404);
  EXPECT_THROW(r.rethrow(), HTTPClientError);

  auto [sock, port] = testing::bind_unused_port();
  sock.reset();  // nothing listens there any more
  EXPECT_ANY_THROW(client.fetch("http://127.0.0.1:" + std::to_string(port) + "/"));
  HTTPRequest bad;
  bad.url = "gopher://127.0.0.1/";
  EXPECT_THROW(client.fetch(bad), std::invalid_argument);
}

TEST_P(HTTPClientThreadsTest, TimeoutsAreErrorsToo) {
  HTTPClient client(GetParam());
  HTTPRequest req;
  req.url = server_.url("/stall");
  req.request_timeout = 100ms;
  std::string phase;
  try {
    client.fetch(req);
  } catch (const HTTPTimeoutError& e) {
    phase = e.phase();
  }
  EXPECT_EQ(phase, "request");
}

TEST_P(HTTPClientThreadsTest, ManyThreadsShareOneClient) {
  HTTPClient client(GetParam());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (client.fetch(server_.url("/hello")).body == "Hello, world") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 80);
}

TEST_P(HTTPClientThreadsTest, CallbacksRunOnTheClientsThread) {
  HTTPClient client(GetParam());
  std::thread::id seen;
  std::string body;
  HTTPRequest req;
  req.url = server_.url("/chunked");
  req.streaming_callback = [&](std::string_view chunk) {
    seen = std::this_thread::get_id();
    body.append(chunk);
  };
  client.fetch(req);
  EXPECT_EQ(body, "one,two,three");
  EXPECT_NE(seen, std::this_thread::get_id());
}

TEST_P(HTTPClientThreadsTest, FetchAfterCloseThrows) {
  HTTPClient client(GetParam());
  EXPECT_EQ(client.fetch(server_.url("/hello")).code, 200);
  client.close();
  client.close();  // idempotent
  EXPECT_THROW(client.fetch(server_.url("/hello")), HTTPClientError);
}

TEST_P(HTTPClientThreadsTest, TheDefaultConstructorUsesTheConfiguredBackend) {
  AsyncHTTPClient::configure(GetParam(), {.max_clients = 3});
  EXPECT_EQ(AsyncHTTPClient::configured_backend(), GetParam());
  {
    HTTPClient client;
    EXPECT_EQ(client.fetch(server_.url("/hello")).body, "Hello, world");
  }
  AsyncHTTPClient::configure(HTTPClientBackend::native);
}

TEST_P(HTTPClientThreadsTest, EachLoopHasItsOwnSharedInstanceClosedWithIt) {
  AsyncHTTPClient::configure(GetParam());
  std::atomic<int> closed_with_loop{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      IOLoop loop;
      AsyncHTTPClient& c = AsyncHTTPClient::instance();
      EXPECT_EQ(&c, &AsyncHTTPClient::instance());
      Future<HTTPResponse> pending = c.fetch(server_.url("/stall"));
      HTTPResponse r = loop.run_sync([&] { return c.fetch(server_.url("/hello")); });
      EXPECT_EQ(r.body, "Hello, world");
      loop.close();  // closes the shared client, which fails its fetches
      if (pending.done()) {
        try {
          pending.result();
        } catch (const HTTPClientError& e) {
          if (e.code() == 599) ++closed_with_loop;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(closed_with_loop.load(), 2);
  AsyncHTTPClient::configure(HTTPClientBackend::native);
}

INSTANTIATE_TEST_SUITE_P(Backends, HTTPClientThreadsTest,
                         ::testing::Values(HTTPClientBackend::native, HTTPClientBackend::curl),
                         [](const auto& info) {
                           return std::string(info.param == HTTPClientBackend::native ? "native" : "curl");
                         });

}  // namespace
}  // namespace squall::http
