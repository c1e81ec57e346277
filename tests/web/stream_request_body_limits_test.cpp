// Per-request body limits from a RequestHandler (Tornado's
// self.request.connection.set_max_body_size in prepare()): a
// stream_request_body handler's prepare() runs before the body is read, so
// the limit it sets applies to its own request; a handler that does not
// stream runs only after the whole body was read, under the server's limit.
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/http/server_request.hpp"
#include "squall/testing.hpp"
#include "squall/web/request_handler.hpp"
#include "web_test_support.hpp"

using namespace std::chrono_literals;

namespace squall::web {
namespace {

constexpr std::uint64_t kServerMaxBody = 10;

struct Record {
  std::vector<std::string> events;
};

/// Streams its body in after setting the limit given to it in prepare();
/// with `wait`, prepare() first waits (an asynchronous prepare).
class LimitedUpload : public RequestHandler {
 public:
  static constexpr bool stream_request_body = true;
  void initialize(Record& r, std::uint64_t limit, bool wait) {
    record_ = &r;
    limit_ = limit;
    wait_ = wait;
  }
  Future<void> prepare() override {
    if (wait_) co_await sleep(5ms);
    request().connection()->set_max_body_size(limit_);
    record_->events.push_back("prepare");
  }
  Future<void> data_received(std::string_view chunk) override {
    received_ += chunk.size();
    return Future<void>(nullptr);
  }
  Future<void> post() override {
    record_->events.push_back("post");
    write(std::to_string(received_));
    co_return;
  }
  void on_connection_close() override { record_->events.push_back("on_connection_close"); }

 private:
  Record* record_ = nullptr;
  std::uint64_t limit_ = 0;
  bool wait_ = false;
  std::size_t received_ = 0;
};

/// Streams its body with an asynchronous data_received: each piece is
/// counted after a short wait.
class SlowConsumer : public RequestHandler {
 public:
  static constexpr bool stream_request_body = true;
  void initialize(Record& r) { record_ = &r; }
  Future<void> data_received(std::string_view chunk) override {
    std::size_t n = chunk.size();  // the view is gone once we wait
    co_await sleep(2ms);
    received_ += n;
    record_->events.push_back("data " + std::to_string(n));
  }
  Future<void> post() override {
    write(std::to_string(received_));
    co_return;
  }
  void on_connection_close() override { record_->events.push_back("on_connection_close"); }

 private:
  Record* record_ = nullptr;
  std::size_t received_ = 0;
};

/// Does not stream: its prepare() runs after the body was read, too late
/// to change the limit of its own request.
class BufferedUpload : public RequestHandler {
 public:
  void initialize(Record& r, std::uint64_t limit) {
    record_ = &r;
    limit_ = limit;
  }
  Future<void> prepare() override {
    request().connection()->set_max_body_size(limit_);
    record_->events.push_back("prepare");
    co_return;
  }
  Future<void> post() override {
    write(std::to_string(request().body.size()));
    co_return;
  }

 private:
  Record* record_ = nullptr;
  std::uint64_t limit_ = 0;
};

class StreamRequestBodyLimitsTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override {
    return {
        {"/raise", handler<LimitedUpload>(std::ref(record_), std::uint64_t{1000}, false)},
        {"/raise-later", handler<LimitedUpload>(std::ref(record_), std::uint64_t{1000}, true)},
        {"/lower", handler<LimitedUpload>(std::ref(record_), std::uint64_t{5}, false)},
        {"/lower-later", handler<LimitedUpload>(std::ref(record_), std::uint64_t{5}, true)},
        {"/slow", handler<SlowConsumer>(std::ref(record_))},
        {"/buffered-raise", handler<BufferedUpload>(std::ref(record_), std::uint64_t{1000})},
        {"/buffered-lower", handler<BufferedUpload>(std::ref(record_), std::uint64_t{5})},
    };
  }
  http::HTTPServerOptions get_httpserver_options() override {
    http::HTTPServerOptions options;
    options.max_body_size = kServerMaxBody;
    return options;
  }
  Record record_;
};

SQUALL_ASYNC_TEST(StreamRequestBodyLimitsTest, PrepareRaisesTheLimitAboveTheServers) {
  http::HTTPRequest post = test::request("POST", std::string(100, 'x'));
  http::HTTPResponse r = co_await fetch("/raise", post);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "100");
  std::vector<std::string> expected = {"prepare", "post"};
  EXPECT_EQ(record_.events, expected);
}

SQUALL_ASYNC_TEST(StreamRequestBodyLimitsTest, AnAsynchronousPrepareRaisesItToo) {
  http::HTTPRequest post = test::request("POST", std::string(100, 'y'));
  http::HTTPResponse r = co_await fetch("/raise-later", post);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "100");
}

SQUALL_ASYNC_TEST(StreamRequestBodyLimitsTest, PrepareLowersTheLimitBelowTheServers) {
  http::HTTPRequest post = test::request("POST", std::string(8, 'z'));  // fits the server's 10
  http::HTTPResponse r = co_await fetch("/lower", post);
  EXPECT_EQ(r.code, 413);
  // The verb never ran; the handler heard that its request ended.
  std::vector<std::string> expected = {"prepare", "on_connection_close"};
  EXPECT_EQ(record_.events, expected);
  http::HTTPRequest small = test::request("POST", std::string(5, 'z'));
  http::HTTPResponse fits = co_await fetch("/lower", small);
  EXPECT_EQ(fits.code, 200);
  EXPECT_EQ(fits.body, "5");
}

SQUALL_ASYNC_TEST(StreamRequestBodyLimitsTest, AnAsynchronousPrepareLowersItToo) {
  // Regression: the refusal came while prepare()'s coroutine was still on
  // the stack, and destroying the handler there was a use after free.
  http::HTTPRequest post = test::request("POST", std::string(8, 'w'));
  http::HTTPResponse r = co_await fetch("/lower-later", post);
  EXPECT_EQ(r.code, 413);
  std::vector<std::string> expected = {"prepare", "on_connection_close"};
  EXPECT_EQ(record_.events, expected);
}

/// Two chunks of 4 bytes: within the server's 10, over /lower's 5.
Future<void> produce_two_chunks(http::BodyWriter write) {
  co_await write("abcd");
  co_await write("efgh");
}

SQUALL_ASYNC_TEST(StreamRequestBodyLimitsTest, PrepareLowersTheLimitOfAChunkedBody) {
  http::HTTPRequest post = test::request("POST");
  post.body_producer = produce_two_chunks;  // no Content-Length: chunked
  http::HTTPResponse r = co_await fetch("/lower", post);
  EXPECT_EQ(r.code, 413);
  std::vector<std::string> expected = {"prepare", "on_connection_close"};
  EXPECT_EQ(record_.events, expected);
  // The server's limit takes the same body.
  record_.events.clear();
  http::HTTPResponse fits = co_await fetch("/raise", post);
  EXPECT_EQ(fits.code, 200);
  EXPECT_EQ(fits.body, "8");
}

/// 8 bytes, then 4: the second piece takes the body past the server's 10.
Future<void> produce_eight_then_four(http::BodyWriter write) {
  co_await write("abcdefgh");
  co_await write("ijkl");
}

SQUALL_ASYNC_TEST(StreamRequestBodyLimitsTest, ABodyRefusedAfterAnAsynchronousDataReceived) {
  // The refusal comes as the first piece's data_received finishes: the
  // handler must not be destroyed under its own coroutine.
  http::HTTPRequest post = test::request("POST");
  post.body_producer = produce_eight_then_four;
  http::HTTPResponse r = co_await fetch("/slow", post);
  EXPECT_EQ(r.code, 413);
  std::vector<std::string> expected = {"data 8", "on_connection_close"};
  EXPECT_EQ(record_.events, expected);
}

SQUALL_ASYNC_TEST(StreamRequestBodyLimitsTest, ANonStreamingHandlerCannotChangeItsOwnLimit) {
  // Its prepare() runs once the body is in: the server's limit decided.
  http::HTTPRequest big = test::request("POST", std::string(100, 'b'));
  http::HTTPResponse refused = co_await fetch("/buffered-raise", big);
  EXPECT_EQ(refused.code, 413);
  EXPECT_TRUE(record_.events.empty());  // the handler never ran
  http::HTTPRequest medium = test::request("POST", std::string(8, 'm'));
  http::HTTPResponse accepted = co_await fetch("/buffered-lower", medium);
  EXPECT_EQ(accepted.code, 200);
  EXPECT_EQ(accepted.body, "8");
}

}  // namespace
}  // namespace squall::web
