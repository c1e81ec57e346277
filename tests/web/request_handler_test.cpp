// RequestHandler over real sockets: the lifecycle (prepare, verbs,
// on_finish, on_connection_close, cancellation on disconnect), input
// (arguments, form and multipart bodies, JSON), output (write, JSON,
// flush streaming, headers, status, redirects, Content-Length, ETag and
// 304), streamed request bodies and templates.
#include "squall/web/request_handler.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/core/locks.hpp"
#include "squall/testing/http.hpp"
#include "squall/web/application.hpp"
#include "squall/web/template.hpp"
#include "web_test_support.hpp"

using namespace std::chrono_literals;

namespace squall::web {
namespace {

using test::get;
using test::request;

/// What the handlers below report to the test (shared by reference).
struct Record {
  std::vector<std::string> events;
  Event finished;      // on_finish ran
  Event release;       // lets a waiting handler go on
  Event first_chunk;   // the client saw a first streamed piece
  bool cancelled = false;
  std::size_t body_bytes = 0;
  int chunks = 0;
};

class LifecycleHandler : public RequestHandler {
 public:
  void initialize(Record& r) {
    record_ = &r;
    record_->events.push_back("initialize");
  }
  Future<void> prepare() override {
    record_->events.push_back("prepare");
    if (get_argument("stop", "") == "1") {
      set_status(403);
      finish("stopped in prepare");
    }
    co_return;
  }
  Future<void> get() override {
    record_->events.push_back("get");
    write("ran");
    co_return;
  }
  void on_finish() override {
    record_->events.push_back("on_finish " + std::to_string(get_status()));
    record_->finished.set();
  }

 private:
  Record* record_ = nullptr;
};

/// Waits for the test (or forever), noting how it ends.
class SlowHandler : public RequestHandler {
 public:
  void initialize(Record& r) { record_ = &r; }
  Future<void> get() override {
    record_->events.push_back("get");
    try {
      co_await record_->release.wait();
    } catch (const CancelledError&) {
      record_->cancelled = true;
      throw;
    }
    record_->events.push_back("released");
    write("late");
  }
  void on_connection_close() override { record_->events.push_back("on_connection_close"); }
  void on_finish() override {
    record_->events.push_back("on_finish");
    record_->finished.set();
  }

 private:
  Record* record_ = nullptr;
};

class ArgumentsHandler : public RequestHandler {
 public:
  Future<void> get() override { return answer(); }
  Future<void> post() override { return answer(); }

 private:
  Future<void> answer() {
    nlohmann::json out;
    out["a"] = get_argument("a", "none");
    out["a_all"] = get_arguments("a");
    out["a_query"] = get_query_arguments("a");
    out["a_body"] = get_body_arguments("a");
    out["b"] = get_argument("b", "none");
    out["b_raw"] = get_argument("b", "none", false);
    auto maybe = get_argument("maybe", std::nullopt);
    out["maybe"] = maybe ? nlohmann::json(*maybe) : nlohmann::json(nullptr);
    if (get_argument("need", "") == "1") out["required"] = get_argument("required");
    if (get_query_argument("need_body", "") == "1") out["body_only"] = get_body_argument("body_only");
    nlohmann::json files = nlohmann::json::array();
    for (const auto& [field, list] : this->files()) {
      for (const auto& f : list) {
        files.push_back({{"field", field}, {"filename", f.filename}, {"type", f.content_type}, {"body", f.body}});
      }
    }
    out["files"] = files;
    write(out);
    co_return;
  }
};

class JsonHandler : public RequestHandler {
 public:
  Future<void> post() override {
    nlohmann::json body = get_json_body();
    write(nlohmann::json{{"got", body["x"]}, {"text", "</script>é"}});
    co_return;
  }
};

class StreamHandler : public RequestHandler {
 public:
  void initialize(Record& r) { record_ = &r; }
  Future<void> get() override {
    write("first\n");
    co_await flush();
    co_await record_->first_chunk.wait();  // the client has it before we go on
    for (int i = 0; i < 3; ++i) {
      write("line " + std::to_string(i) + "\n");
      co_await flush();
    }
  }

 private:
  Record* record_ = nullptr;
};

class HeadersHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string rejected;
    try {
      set_header("X-Bad", "a\r\nSet-Cookie: x=1");
    } catch (const std::invalid_argument&) {
      rejected += "value ";
    }
    try {
      set_header("X Bad", "v");
    } catch (const std::invalid_argument&) {
      rejected += "name ";
    }
    try {
      redirect("/x\r\nX-Injected: 1");
    } catch (const std::invalid_argument&) {
      rejected += "redirect";
    }
    set_header("X-Number", 42);
    set_header("X-Replaced", "old");
    set_header("X-Replaced", "new");
    add_header("X-Multi", "1");
    add_header("X-Multi", "2");
    set_header("X-Gone", "soon");
    clear_header("X-Gone");
    set_header("X-Date", std::chrono::system_clock::time_point(std::chrono::seconds(784111777)));
    set_header("Content-Type", "text/plain");
    set_status(299, "Fine Indeed");
    write(rejected);
    co_return;
  }
};

class RedirectingHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string kind = get_argument("kind", "");
    if (kind == "permanent") redirect("/target", true);
    else if (kind == "307") redirect("/target", false, 307);
    else redirect("/target?x=1");
    co_return;
  }
};

class MisuseHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string out;
    finish("done");
    try {
      write("more");
    } catch (const std::logic_error&) {
      out += "write ";
    }
    try {
      finish();
    } catch (const std::logic_error&) {
      out += "finish";
    }
    misuse = out;
    co_return;
  }
  static inline std::string misuse;
};

class StatusHandler : public RequestHandler {
 public:
  Future<void> get() override {
    int code = std::stoi(path_args().at(0));
    set_status(code);
    write("{\"status\": " + path_args().at(0) + "}");
    co_return;
  }
};

class UploadHandler : public RequestHandler {
 public:
  static constexpr bool stream_request_body = true;
  void initialize(Record& r) { record_ = &r; }
  Future<void> prepare() override {
    record_->events.push_back("prepare");
    co_return;
  }
  Future<void> data_received(std::string_view chunk) override {
    if (record_->chunks == 0) record_->events.push_back("data");
    ++record_->chunks;
    record_->body_bytes += chunk.size();
    // A slow consumer: the connection waits for us (flow control).
    co_await sleep(1ms);
  }
  Future<void> put() override {
    record_->events.push_back("put");
    write(std::to_string(record_->body_bytes) + " " + std::to_string(request().body.size()));
    co_return;
  }

 private:
  Record* record_ = nullptr;
};

/// Stalls on the first piece of body until the test releases it.
class StalledUploadHandler : public RequestHandler {
 public:
  static constexpr bool stream_request_body = true;
  void initialize(Record& r) { record_ = &r; }
  Future<void> data_received(std::string_view) override {
    if (record_->chunks++ == 0) {
      record_->events.push_back("stalled");
      co_await record_->release.wait();
    }
  }
  Future<void> put() override {
    record_->events.push_back("put");
    co_return;
  }
  void on_connection_close() override { record_->events.push_back("on_connection_close"); }
  void on_finish() override {
    record_->events.push_back("on_finish");
    record_->finished.set();
  }

 private:
  Record* record_ = nullptr;
};

class TemplateHandler : public RequestHandler {
 public:
  Future<void> get() override {
    if (get_argument("string", "") == "1") {
      write("[" + render_string("inner.html", {{"name", "<b>"}}) + "]");
    } else {
      render("page.html", {{"name", "<b>World</b>"}, {"items", {1, 2, 3}}});
    }
    co_return;
  }
};

class RequestHandlerTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override {
    return {
        {"/lifecycle", handler<LifecycleHandler>(std::ref(record_))},
        {"/slow", handler<SlowHandler>(std::ref(record_))},
        {"/args", handler<ArgumentsHandler>()},
        {"/json", handler<JsonHandler>()},
        {"/stream", handler<StreamHandler>(std::ref(record_))},
        {"/headers", handler<HeadersHandler>()},
        {"/redirect", handler<RedirectingHandler>()},
        {"/misuse", handler<MisuseHandler>()},
        {"/status/([0-9]+)", handler<StatusHandler>()},
        {"/upload", handler<UploadHandler>(std::ref(record_))},
        {"/stalled", handler<StalledUploadHandler>(std::ref(record_))},
        {"/template", handler<TemplateHandler>()},
    };
  }
  Settings settings() override {
    Settings s;
    s.cancel_on_disconnect = cancel_on_disconnect();
    s.template_loader = std::make_shared<DictLoader>(std::map<std::string, std::string, std::less<>>{
        {"page.html", "<h1>Hello {{ name }}</h1>{% for i in items %}<i>{{ i }}</i>{% end %}{{ request['path'] }}"},
        {"inner.html", "{{ name }}"},
    });
    return s;
  }
  virtual bool cancel_on_disconnect() const { return false; }
  Record record_;
};

SQUALL_ASYNC_TEST(RequestHandlerTest, RunsTheLifecycleInOrder) {
  auto r = co_await fetch("/lifecycle");
  EXPECT_EQ(r.body, "ran");
  EXPECT_EQ(record_.events, (std::vector<std::string>{"initialize", "prepare", "get", "on_finish 200"}));
}

SQUALL_ASYNC_TEST(RequestHandlerTest, PrepareMayFinishTheRequest) {
  auto r = co_await fetch("/lifecycle?stop=1");
  EXPECT_EQ(r.code, 403);
  EXPECT_EQ(r.body, "stopped in prepare");
  EXPECT_EQ(record_.events, (std::vector<std::string>{"initialize", "prepare", "on_finish 403"}));
}

SQUALL_ASYNC_TEST(RequestHandlerTest, OnFinishRunsAfterTheClientLeftEarly) {
  // Without cancel_on_disconnect the handler runs on; on_finish follows it.
  auto req = get();
  req.request_timeout = 200ms;
  auto r = co_await fetch("/slow", req);
  EXPECT_EQ(r.code, 599);  // the client gave up and closed the connection
  // Give the server's loop a moment to see the close, then release.
  for (int i = 0; i < 200 && std::find(record_.events.begin(), record_.events.end(), "on_connection_close") ==
                                 record_.events.end();
       ++i) {
    co_await sleep(5ms);
  }
  record_.release.set();
  co_await record_.finished.wait(2s);
  EXPECT_FALSE(record_.cancelled);
  EXPECT_EQ(record_.events,
            (std::vector<std::string>{"get", "on_connection_close", "released", "on_finish"}));
}

class CancelOnDisconnectTest : public RequestHandlerTest {
 protected:
  bool cancel_on_disconnect() const override { return true; }
};

SQUALL_ASYNC_TEST(CancelOnDisconnectTest, TheHandlersCoroutineIsCancelledWhenTheClientLeaves) {
  auto req = get();
  req.request_timeout = 200ms;
  auto r = co_await fetch("/slow", req);
  EXPECT_EQ(r.code, 599);
  co_await record_.finished.wait(2s);  // no release: cancellation ends it
  EXPECT_TRUE(record_.cancelled);
  EXPECT_EQ(record_.events, (std::vector<std::string>{"get", "on_connection_close", "on_finish"}));
}

SQUALL_ASYNC_TEST(RequestHandlerTest, GetsQueryArguments) {
  auto r = co_await fetch("/args?a=1&a=2&b=+%20x+&maybe=&c=%00y");
  CO_ASSERT_EQ(r.code, 200);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["a"], "2");  // the last value
  EXPECT_EQ(j["a_all"], nlohmann::json({"1", "2"}));
  EXPECT_EQ(j["a_query"], nlohmann::json({"1", "2"}));
  EXPECT_EQ(j["a_body"], nlohmann::json::array());
  EXPECT_EQ(j["b"], "x");  // stripped
  EXPECT_EQ(j["b_raw"], "  x ");
  EXPECT_EQ(j["maybe"], "");  // blank values are kept
  r = co_await fetch("/args");
  j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["a"], "none");
  EXPECT_TRUE(j["maybe"].is_null());
}

SQUALL_ASYNC_TEST(RequestHandlerTest, AMissingRequiredArgumentIs400) {
  testing::ExpectLog expect("squall.general", "400 GET /args\\?need=1 .*Missing argument required");
  auto r = co_await fetch("/args?need=1");
  EXPECT_EQ(r.code, 400);
  r = co_await fetch("/args?need=1&required=yes");
  EXPECT_EQ(nlohmann::json::parse(r.body)["required"], "yes");
}

SQUALL_ASYNC_TEST(RequestHandlerTest, ArgumentsMustBeUtf8AndLoseControlCharacters) {
  {
    testing::ExpectLog expect("squall.general", "Invalid unicode in a");
    auto r = co_await fetch("/args?a=%ff%fe");
    EXPECT_EQ(r.code, 400);
  }
  auto r = co_await fetch("/args?a=x%01y%09z%0a");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["a"], "x y\tz");  // \x01 → space; \t kept; the trailing \n stripped
  r = co_await fetch("/args?a=%C3%A9t%C3%A9");
  EXPECT_EQ(nlohmann::json::parse(r.body)["a"], "été");
}

SQUALL_ASYNC_TEST(RequestHandlerTest, GetsFormBodyArguments) {
  auto req = request("POST", "a=3&b=body&a=4", {{"Content-Type", "application/x-www-form-urlencoded"}});
  auto r = co_await fetch("/args?a=1", req);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["a"], "4");  // body values come last
  EXPECT_EQ(j["a_all"], nlohmann::json({"1", "3", "4"}));
  EXPECT_EQ(j["a_body"], nlohmann::json({"3", "4"}));
  EXPECT_EQ(j["b"], "body");
  {
    testing::ExpectLog expect("squall.general", "Missing argument body_only");
    auto only = request("POST", "x=1", {{"Content-Type", "application/x-www-form-urlencoded"}});
    r = co_await fetch("/args?need_body=1&body_only=inquery", only);
    EXPECT_EQ(r.code, 400);  // a query value does not count
  }
}

SQUALL_ASYNC_TEST(RequestHandlerTest, GetsMultipartFieldsAndFiles) {
  std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
      "field value\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"doc\"; filename=\"notes.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "line1\r\n--not-the-boundary\r\n"
      "--XyZ--\r\n";
  auto req = request("POST", body, {{"Content-Type", "multipart/form-data; boundary=XyZ"}});
  auto r = co_await fetch("/args", req);
  CO_ASSERT_EQ(r.code, 200);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["a"], "field value");
  CO_ASSERT_EQ(j["files"].size(), 1u);
  EXPECT_EQ(j["files"][0]["field"], "doc");
  EXPECT_EQ(j["files"][0]["filename"], "notes.txt");
  EXPECT_EQ(j["files"][0]["type"], "text/plain");
  EXPECT_EQ(j["files"][0]["body"], "line1\r\n--not-the-boundary");
  testing::ExpectLog expect("squall.general", "Invalid request body");
  auto bad = request("POST", "--XyZ\r\nno end", {{"Content-Type", "multipart/form-data; boundary=XyZ"}});
  r = co_await fetch("/args", bad);
  EXPECT_EQ(r.code, 400);
}

SQUALL_ASYNC_TEST(RequestHandlerTest, ReadsAndWritesJson) {
  auto req = request("POST", R"({"x": [1, "two"]})", {{"Content-Type", "application/json"}});
  auto r = co_await fetch("/json", req);
  CO_ASSERT_EQ(r.code, 200);
  EXPECT_EQ(r.headers.get("Content-Type", ""), "application/json; charset=UTF-8");
  // json_encode: Python's separators, non-ASCII escaped, "</" escaped.
  EXPECT_EQ(r.body, R"({"got": [1, "two"], "text": "<\/script>\u00e9"})");
  testing::ExpectLog expect("squall.general", "Invalid JSON body");
  auto bad = request("POST", "{not json");
  r = co_await fetch("/json", bad);
  EXPECT_EQ(r.code, 400);
  EXPECT_EQ(r.reason, "Invalid JSON body");
}

SQUALL_ASYNC_TEST(RequestHandlerTest, FlushStreamsTheResponse) {
  auto req = get();
  std::string received;
  req.streaming_callback = [&](std::string_view chunk) {
    received.append(chunk);
    if (received.find("first\n") != std::string::npos) record_.first_chunk.set();
  };
  auto r = co_await fetch("/stream", req);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(received, "first\nline 0\nline 1\nline 2\n");
  EXPECT_EQ(r.headers.get("Transfer-Encoding", ""), "chunked");
  EXPECT_FALSE(r.headers.contains("Content-Length"));
  EXPECT_FALSE(r.headers.contains("Etag"));  // unknown when the headers left
}

SQUALL_ASYNC_TEST(RequestHandlerTest, HeadersAreValidatedAndSet) {
  auto r = co_await fetch("/headers");
  EXPECT_EQ(r.code, 299);
  EXPECT_EQ(r.reason, "Fine Indeed");
  EXPECT_EQ(r.body, "value name redirect");
  EXPECT_FALSE(r.headers.contains("X-Bad"));
  EXPECT_FALSE(r.headers.contains("X-Injected"));
  EXPECT_FALSE(r.headers.contains("Set-Cookie"));
  EXPECT_EQ(r.headers.get("X-Number", ""), "42");
  EXPECT_EQ(r.headers.get_list("X-Replaced"), std::vector<std::string_view>{"new"});
  EXPECT_EQ(r.headers.get_list("X-Multi"), (std::vector<std::string_view>{"1", "2"}));
  EXPECT_FALSE(r.headers.contains("X-Gone"));
  EXPECT_EQ(r.headers.get("X-Date", ""), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/plain");
}

SQUALL_ASYNC_TEST(RequestHandlerTest, RedirectsSetLocationAndStatus) {
  auto req = get();
  auto r = co_await fetch("/redirect", req);
  EXPECT_EQ(r.code, 302);
  EXPECT_EQ(r.headers.get("Location", ""), "/target?x=1");
  r = co_await fetch("/redirect?kind=permanent", req);
  EXPECT_EQ(r.code, 301);
  r = co_await fetch("/redirect?kind=307", req);
  EXPECT_EQ(r.code, 307);
  EXPECT_EQ(r.headers.get("Location", ""), "/target");
}

SQUALL_ASYNC_TEST(RequestHandlerTest, WriteAndFinishAfterFinishAreErrors) {
  auto r = co_await fetch("/misuse");
  EXPECT_EQ(r.body, "done");
  EXPECT_EQ(MisuseHandler::misuse, "write finish");
}

SQUALL_ASYNC_TEST(RequestHandlerTest, EtagAnswers304ToAMatchingIfNoneMatch) {
  auto r = co_await fetch("/lifecycle");
  std::string etag(r.headers.get("Etag", ""));
  CO_ASSERT_TRUE(etag.size() > 2);
  EXPECT_EQ(etag.front(), '"');
  for (std::string inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    auto req = get({{"If-None-Match", inm}});
    r = co_await fetch("/lifecycle", req);
    EXPECT_EQ(r.code, 304) << inm;
    EXPECT_EQ(r.body, "");
    EXPECT_FALSE(r.headers.contains("Content-Type"));
    EXPECT_EQ(r.headers.get("Etag", ""), etag);
  }
  auto req = get({{"If-None-Match", "\"something else\""}});
  r = co_await fetch("/lifecycle", req);
  EXPECT_EQ(r.code, 200);
  // Another body, another tag.
  auto other = co_await fetch("/status/200");
  EXPECT_NE(other.headers.get("Etag", ""), etag);
}

SQUALL_ASYNC_TEST(RequestHandlerTest, StatusesWithoutABodySendNone) {
  auto r = co_await fetch("/status/204");
  EXPECT_EQ(r.code, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_FALSE(r.headers.contains("Content-Length"));
  r = co_await fetch("/status/304");
  EXPECT_EQ(r.code, 304);
  EXPECT_EQ(r.body, "");
  r = co_await fetch("/status/201");
  EXPECT_EQ(r.code, 201);
  EXPECT_EQ(r.body, "{\"status\": 201}");
  EXPECT_EQ(r.headers.get("Content-Length", ""), "15");
  EXPECT_FALSE(r.headers.contains("Etag"));  // only 200 answers get one
}

SQUALL_ASYNC_TEST(RequestHandlerTest, StreamedBodiesArriveInPiecesAfterPrepare) {
  std::string body(300 * 1024, 'u');
  auto req = request("PUT", body);
  auto r = co_await fetch("/upload", req);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, std::to_string(body.size()) + " 0");  // request().body stays empty
  EXPECT_GE(record_.chunks, 5);  // 64 KiB pieces at most
  EXPECT_EQ(record_.events, (std::vector<std::string>{"prepare", "data", "put"}));
}

SQUALL_ASYNC_TEST(RequestHandlerTest, AStreamingHandlerSeesTheClientLeaveMidBody) {
  auto req = request("PUT", std::string(4 << 20, 's'));
  req.request_timeout = 200ms;
  auto r = co_await fetch("/stalled", req);
  EXPECT_EQ(r.code, 599);  // the client gave up and closed
  record_.release.set();   // the server reads on, finds the connection gone
  co_await record_.finished.wait(3s);
  EXPECT_EQ(record_.events, (std::vector<std::string>{"stalled", "on_connection_close", "on_finish"}));
}

SQUALL_ASYNC_TEST(RequestHandlerTest, RendersTemplates) {
  auto r = co_await fetch("/template");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "<h1>Hello &lt;b&gt;World&lt;/b&gt;</h1><i>1</i><i>2</i><i>3</i>/template");
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/html; charset=UTF-8");
  r = co_await fetch("/template?string=1");
  EXPECT_EQ(r.body, "[&lt;b&gt;]");
}

}  // namespace
}  // namespace squall::web
