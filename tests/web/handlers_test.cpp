// The ready-made handlers: RedirectHandler (group substitution, query,
// permanence), ErrorHandler, and FallbackHandler around a plain request
// callback, a coroutine callback and another Application.
#include "squall/web/handlers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/testing/http.hpp"
#include "squall/web/application.hpp"
#include "web_test_support.hpp"

using namespace std::chrono_literals;

namespace squall::web {
namespace {

using test::get;
using test::request;

class InnerHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write("inner app saw " + request().path);
    co_return;
  }
  Future<void> post() override {
    write("inner app got " + std::to_string(request().body.size()) + " bytes");
    co_return;
  }
};

Future<void> slow_callback(http::HTTPServerRequest& req) {
  co_await sleep(1ms);
  req.respond(201, "text/plain", "coroutine callback " + req.method + " " + req.body);
}

class HandlersTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override {
    return {
        {"/old/([a-z]+)/([0-9]+)", handler<RedirectHandler>("/new/{1}/{0}")},
        {"/named/(?P<slug>[a-z]+)", handler<RedirectHandler>("/posts/{slug}?from={{old}}", false)},
        {"/gone", handler<ErrorHandler>(410)},
        {"/plain/.*", handler<FallbackHandler>([](http::HTTPServerRequest& req) {
           req.respond(200, "text/plain", "plain callback " + req.method + " " + req.path);
         })},
        {"/coro/.*", handler<FallbackHandler>(&slow_callback)},
        {"/throws", handler<FallbackHandler>([](http::HTTPServerRequest&) -> Future<void> {
           throw std::runtime_error("callback failed");
         })},
        {"/inner/.*", handler<FallbackHandler>(std::ref(inner_))},
    };
  }
  Application inner_{{{"/inner/x", handler<InnerHandler>()}}};
};

SQUALL_ASYNC_TEST(HandlersTest, RedirectHandlerSubstitutesGroups) {
  auto req = get();
  auto r = co_await fetch("/old/abc/42", req);
  EXPECT_EQ(r.code, 301);  // permanent by default, as Tornado
  EXPECT_EQ(r.headers.get("Location", ""), "/new/42/abc");
  r = co_await fetch("/old/abc/42?b=2&a=1", req);
  EXPECT_EQ(r.headers.get("Location", ""), "/new/42/abc?a=1&b=2");
  r = co_await fetch("/named/hello", req);
  EXPECT_EQ(r.code, 302);
  EXPECT_EQ(r.headers.get("Location", ""), "/posts/hello?from={old}");
  auto head = request("HEAD");
  r = co_await fetch("/named/hello", head);
  EXPECT_EQ(r.code, 302);
}

SQUALL_ASYNC_TEST(HandlersTest, ErrorHandlerAnswersEveryMethodWithItsStatus) {
  auto r = co_await fetch("/gone");
  EXPECT_EQ(r.code, 410);
  auto post = request("POST", "x");
  r = co_await fetch("/gone", post);
  EXPECT_EQ(r.code, 410);
}

SQUALL_ASYNC_TEST(HandlersTest, FallbackHandlerWrapsPlainCallbacks) {
  auto r = co_await fetch("/plain/a?b=1");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "plain callback GET /plain/a");
  auto put = request("PUT", "data");
  r = co_await fetch("/plain/x", put);
  EXPECT_EQ(r.body, "plain callback PUT /plain/x");
}

SQUALL_ASYNC_TEST(HandlersTest, FallbackHandlerAwaitsCoroutineCallbacksWithTheWholeBody) {
  std::string body(200 * 1024, 'z');
  auto post = request("POST", body);
  auto r = co_await fetch("/coro/y", post);
  EXPECT_EQ(r.code, 201);
  EXPECT_EQ(r.body, "coroutine callback POST " + body);
  // Methods the web framework does not know pass through too.
  auto odd = request("PROPFIND");
  odd.allow_nonstandard_methods = true;
  r = co_await fetch("/coro/z", odd);
  EXPECT_EQ(r.code, 201);
}

SQUALL_ASYNC_TEST(HandlersTest, AFailingCallbackIsA500) {
  testing::ExpectLog expect("squall.application", "callback failed");
  auto r = co_await fetch("/throws");
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.body.find("callback failed"), std::string::npos);
}

SQUALL_ASYNC_TEST(HandlersTest, FallbackHandlerForwardsToAnotherDelegate) {
  auto r = co_await fetch("/inner/x");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "inner app saw /inner/x");
  std::string body(300 * 1024, 'q');  // streamed through, piece by piece
  auto post = request("POST", body);
  r = co_await fetch("/inner/x", post);
  EXPECT_EQ(r.body, "inner app got " + std::to_string(body.size()) + " bytes");
  r = co_await fetch("/inner/missing");
  EXPECT_EQ(r.code, 404);  // the inner application's answer
}

}  // namespace
}  // namespace squall::web
