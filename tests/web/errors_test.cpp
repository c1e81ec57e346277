// Errors in handlers: HTTPError statuses and reasons, other exceptions as
// 500s that leak nothing, serve_traceback, write_error overrides, errors
// after the headers went out, Finish, and the access log (Tornado's format
// and levels, and the log_function setting).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/testing/http.hpp"
#include "squall/web/application.hpp"
#include "squall/web/http_error.hpp"
#include "squall/web/request_handler.hpp"
#include "web_test_support.hpp"

using namespace std::chrono_literals;

namespace squall::web {
namespace {

using test::get;
using test::request;

constexpr const char* kSecret = "deliberate failure: conformance-secret-7f3a9c";

class FailingHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string kind(path_args().at(0));
    if (kind == "http") throw HTTPError(404, "no story 12");
    if (kind == "quiet") throw HTTPError(403);
    if (kind == "reason") throw HTTPError(418, "", "Short And Stout");
    if (kind == "bad-status") throw HTTPError(999);
    if (kind == "runtime") throw std::runtime_error(kSecret);
    if (kind == "async") {
      co_await sleep(1ms);
      throw std::runtime_error(kSecret);
    }
    if (kind == "finish") {
      write("partial but fine");
      throw Finish();
    }
    if (kind == "after-flush") {
      write("first part");
      co_await flush();
      throw std::runtime_error(kSecret);
    }
    if (kind == "non-std") throw 42;
    write("no error");
  }
};

class FailingPrepareHandler : public RequestHandler {
 public:
  Future<void> prepare() override {
    co_await sleep(1ms);
    throw std::logic_error("prepare failed");
  }
  Future<void> get() override {
    write("never");
    co_return;
  }
};

class FailingConstructorHandler : public RequestHandler {
 public:
  FailingConstructorHandler() { throw std::runtime_error("cannot construct"); }
  Future<void> get() override { co_return; }
};

/// Errors as JSON, as an API would.
class JsonErrorHandler : public RequestHandler {
 public:
  Future<void> get() override { throw HTTPError(409, "conflict on purpose"); }
  void write_error(int status, std::exception_ptr) override {
    write(nlohmann::json{{"status", status}, {"reason", "Conflict"}});
  }
};

class OkHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write("ok");
    co_return;
  }
};

class ErrorsTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override {
    return {
        {"/fail/(.*)", handler<FailingHandler>()},
        {"/prepare", handler<FailingPrepareHandler>()},
        {"/construct", handler<FailingConstructorHandler>()},
        {"/json", handler<JsonErrorHandler>()},
        {"/ok", handler<OkHandler>()},
    };
  }
  Settings settings() override {
    Settings s;
    s.serve_traceback = traceback();
    s.debug = debug();
    if (capture_log()) {
      s.log_function = [this](RequestHandler& h) {
        logged_.push_back(std::to_string(h.get_status()) + " " + h.request_summary());
      };
    }
    return s;
  }
  virtual bool traceback() const { return false; }
  virtual bool debug() const { return false; }
  virtual bool capture_log() const { return false; }
  std::vector<std::string> logged_;
};

SQUALL_ASYNC_TEST(ErrorsTest, HTTPErrorAnswersWithItsStatus) {
  testing::ExpectLog expect("squall.general", "^404 GET /fail/http \\(127\\.0\\.0\\.1\\): no story 12$");
  auto r = co_await fetch("/fail/http");
  EXPECT_EQ(r.code, 404);
  EXPECT_EQ(r.reason, "Not Found");
  EXPECT_EQ(r.body, "<html><title>404: Not Found</title><body>404: Not Found</body></html>");
  EXPECT_EQ(r.body.find("no story"), std::string::npos);  // the log message stays in the log
}

SQUALL_ASYNC_TEST(ErrorsTest, HTTPErrorWithoutALogMessageLogsNothing) {
  auto r = co_await fetch("/fail/quiet");  // an unexpected log record would fail the test
  EXPECT_EQ(r.code, 403);
}

SQUALL_ASYNC_TEST(ErrorsTest, HTTPErrorMaySetTheReasonPhrase) {
  auto r = co_await fetch("/fail/reason");
  EXPECT_EQ(r.code, 418);
  EXPECT_EQ(r.reason, "Short And Stout");
  EXPECT_NE(r.body.find("418: Short And Stout"), std::string::npos);
}

SQUALL_ASYNC_TEST(ErrorsTest, AnInvalidStatusBecomes500) {
  auto r = co_await fetch("/fail/bad-status");
  EXPECT_EQ(r.code, 500);
}

SQUALL_ASYNC_TEST(ErrorsTest, OtherExceptionsAre500sThatLeakNothing) {
  testing::ExpectLog expect("squall.application",
                            "Uncaught exception GET /fail/runtime \\(127\\.0\\.0\\.1\\)\nstd::runtime_error: "
                            "deliberate failure");
  auto r = co_await fetch("/fail/runtime");
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.body.find("conformance-secret"), std::string::npos);
  EXPECT_EQ(r.body.find("runtime_error"), std::string::npos);
  r = co_await fetch("/ok");  // and the server goes on
  EXPECT_EQ(r.body, "ok");
}

SQUALL_ASYNC_TEST(ErrorsTest, ExceptionsAfterAnAwaitAndInPrepareAre500s) {
  {
    testing::ExpectLog expect("squall.application", "Uncaught exception GET /fail/async");
    auto r = co_await fetch("/fail/async");
    EXPECT_EQ(r.code, 500);
  }
  testing::ExpectLog expect("squall.application", "std::logic_error: prepare failed");
  auto r = co_await fetch("/prepare");
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.body.find("never"), std::string::npos);
}

SQUALL_ASYNC_TEST(ErrorsTest, ExceptionsOfAnyTypeAre500s) {
  testing::ExpectLog expect("squall.application", "Uncaught exception GET /fail/non-std .*\nint");
  auto r = co_await fetch("/fail/non-std");
  EXPECT_EQ(r.code, 500);
}

SQUALL_ASYNC_TEST(ErrorsTest, AHandlerThatCannotBeConstructedIs500) {
  testing::ExpectLog expect("squall.application", "cannot construct");
  auto r = co_await fetch("/construct");
  EXPECT_EQ(r.code, 500);
  r = co_await fetch("/ok");
  EXPECT_EQ(r.body, "ok");
}

SQUALL_ASYNC_TEST(ErrorsTest, FinishEndsTheRequestAsItStands) {
  auto r = co_await fetch("/fail/finish");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "partial but fine");
}

SQUALL_ASYNC_TEST(ErrorsTest, AnErrorAfterTheHeadersWentOutCutsTheConnection) {
  testing::ExpectLog unexpected("squall.application", "Uncaught exception GET /fail/after-flush");
  testing::ExpectLog cannot("squall.general", "Cannot send error response after headers written");
  auto r = co_await fetch("/fail/after-flush");
  // The client sees a chunked body that never ended, not a whole answer.
  EXPECT_EQ(r.code, 599);
  EXPECT_TRUE(r.error);
}

SQUALL_ASYNC_TEST(ErrorsTest, WriteErrorMayBeOverridden) {
  testing::ExpectLog expect("squall.general", "conflict on purpose");
  auto r = co_await fetch("/json");
  EXPECT_EQ(r.code, 409);
  EXPECT_EQ(r.headers.get("Content-Type", ""), "application/json; charset=UTF-8");
  EXPECT_EQ(r.body, R"({"reason": "Conflict", "status": 409})");
}

class TracebackTest : public ErrorsTest {
 protected:
  bool traceback() const override { return true; }
};

SQUALL_ASYNC_TEST(TracebackTest, ServeTracebackShowsTheException) {
  testing::ExpectLog expect("squall.application", "Uncaught exception");
  auto r = co_await fetch("/fail/runtime");
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/plain; charset=UTF-8");
  EXPECT_EQ(r.body, std::string("std::runtime_error: ") + kSecret + "\n");
}

class DebugTest : public ErrorsTest {
 protected:
  bool debug() const override { return true; }
};

SQUALL_ASYNC_TEST(DebugTest, DebugImpliesServeTraceback) {
  EXPECT_TRUE(application().settings().serve_traceback);
  EXPECT_FALSE(application().settings().compiled_template_cache);
  testing::ExpectLog expect("squall.application", "Uncaught exception");
  auto r = co_await fetch("/fail/runtime");
  EXPECT_NE(r.body.find(kSecret), std::string::npos);
}

class AccessLogTest : public ErrorsTest {};

SQUALL_ASYNC_TEST(AccessLogTest, LogsOneLinePerRequestAtALevelByStatus) {
  enable_access_log();
  {
    testing::ExpectLog ok("squall.access", "^200 GET /ok\\?x=1 \\(127\\.0\\.0\\.1\\) [0-9]+\\.[0-9]{2}ms$", true,
                          log::Level::info);
    co_await fetch("/ok?x=1");
  }
  {
    testing::ExpectLog not_found("squall.access", "^404 GET /missing \\(127\\.0\\.0\\.1\\) ", true,
                                 log::Level::warning);
    co_await fetch("/missing");
  }
  {
    testing::ExpectLog app("squall.application", "Uncaught exception");
    testing::ExpectLog failed("squall.access", "^500 GET /fail/runtime ", true, log::Level::error);
    co_await fetch("/fail/runtime");
  }
}

class LogFunctionTest : public ErrorsTest {
 protected:
  bool capture_log() const override { return true; }
};

SQUALL_ASYNC_TEST(LogFunctionTest, LogFunctionReplacesTheAccessLog) {
  enable_access_log();  // nothing may reach it
  co_await fetch("/ok");
  co_await fetch("/nowhere");
  EXPECT_EQ(logged_, (std::vector<std::string>{"200 GET /ok (127.0.0.1)", "404 GET /nowhere (127.0.0.1)"}));
}

}  // namespace
}  // namespace squall::web
