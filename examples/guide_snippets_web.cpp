// The snippets of docs/guide/web-handlers-and-routing.md and
// docs/guide/porting-from-tornado.md, compiled. `--smoke` serves the guide's
// application on a port the OS picks, fetches its pages with the native
// AsyncHTTPClient and checks the answers, then runs the guide's
// AsyncHTTPTest example (squall/testing.hpp, GoogleTest).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/url.hpp"
#include "squall/testing.hpp"
#include "squall/testing/http.hpp"
#include "squall/web/application.hpp"
#include "squall/web/handlers.hpp"
#include "squall/web/request_handler.hpp"
#include "squall/web/template.hpp"

using namespace std::chrono_literals;

namespace {

/// The guide's stand-in for a real store.
class Database {
 public:
  std::optional<std::string> story(const std::string& id) const {
    auto it = stories_.find(id);
    if (it == stories_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::map<std::string, std::string> stories_{{"1", "Once upon a time"}, {"42", "The answer"}};
};

// --- Hello, world ---------------------------------------------------------------------------

class MainHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    write("Hello, world");
    co_return;
  }
};

// --- path arguments and rule arguments --------------------------------------------------------

class StoryHandler : public squall::web::RequestHandler {
 public:
  void initialize(const Database& db) { db_ = &db; }

  squall::Future<void> get() override {
    const std::string& story_id = path_args()[0];
    auto story = db_->story(story_id);
    if (!story) throw squall::web::HTTPError(404, "no story " + story_id);
    write(*story);
    co_return;
  }

 private:
  const Database* db_ = nullptr;
};

class ArticleHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    const std::string& year = path_kwargs().at("year");
    const std::string& slug = path_kwargs().at("slug");
    write(year + "/" + slug + " is at " + reverse_url("article", year, slug));
    co_return;
  }
};

// --- arguments and JSON ------------------------------------------------------------------------

class SearchHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    std::string q = get_argument("q");                       // required: 400 if missing
    std::string page = get_argument("page", "1");            // with a default
    std::optional<std::string> sort = get_argument("sort", std::nullopt);
    std::vector<std::string> tags = get_arguments("tag");    // every value
    write(nlohmann::json{{"q", q}, {"page", page}, {"sort", sort.value_or("relevance")}, {"tags", tags}});
    co_return;
  }
};

class ApiHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> post() override {
    nlohmann::json body = get_json_body();  // bad JSON: 400
    set_status(201);
    write(nlohmann::json{{"created", body.value("name", "")}});
    co_return;
  }
};

class UploadFormHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> post() override {
    std::string title = get_body_argument("title", "untitled");
    for (const auto& file : files().at("doc")) {
      write(title + ": " + file.filename + " (" + std::to_string(file.body.size()) + " bytes)\n");
    }
    co_return;
  }
};

// --- output ------------------------------------------------------------------------------------

class StreamingHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    set_header("Content-Type", "text/plain; charset=utf-8");
    for (int i = 0; i < 3; ++i) {
      write("chunk " + std::to_string(i) + "\n");
      co_await flush();  // sent now, chunked; waits while the client is slow
      co_await squall::sleep(10ms);
    }
  }
};

class OldPageHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    redirect("/", /*permanent=*/true);
    co_return;
  }
};

class PageHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    render("page.html", {{"title", "Home"}, {"items", {"one", "two"}}});
    co_return;
  }
};

// --- asynchronous work ----------------------------------------------------------------------------

class HashHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    std::string text = get_argument("text");
    auto work = [text] { return std::hash<std::string>{}(text); };  // blocking work, on a thread pool
    std::size_t hash = co_await squall::IOLoop::current().run_in_executor(nullptr, std::move(work));
    write(std::to_string(hash));
  }
};

class ProxyHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    auto& client = squall::http::AsyncHTTPClient::instance();
    squall::http::HTTPResponse response = co_await client.fetch(get_argument("url"));
    write(response.body);
  }
};

// --- errors ------------------------------------------------------------------------------------

class JsonApiHandler : public squall::web::RequestHandler {
 public:
  void write_error(int status, std::exception_ptr) override {
    write(nlohmann::json{{"status", status}, {"reason", "something went wrong"}});
  }
  squall::Future<void> get() override {
    throw squall::web::HTTPError(409, "logged, never sent");
  }
};

// --- lifecycle ---------------------------------------------------------------------------------

class TimedHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> prepare() override {
    if (request().headers.get("X-Maintenance")) {
      set_status(503);
      finish("down for maintenance");  // the verb is skipped
    }
    co_return;
  }
  squall::Future<void> get() override {
    co_await squall::sleep(5ms);  // other requests are served meanwhile
    write("done");
  }
  void on_finish() override { ++finished_requests; }
  static inline int finished_requests = 0;
};

// --- streaming request bodies -------------------------------------------------------------------

class ByteCountHandler : public squall::web::RequestHandler {
 public:
  static constexpr bool stream_request_body = true;

  void check_xsrf_cookie() override {}  // an API for scripts, not browser forms
  squall::Future<void> data_received(std::string_view chunk) override {
    bytes_ += chunk.size();  // the chunk is gone after this call: keep what you need
    co_return;
  }
  squall::Future<void> put() override {
    write(std::to_string(bytes_) + " bytes");
    co_return;
  }

 private:
  std::size_t bytes_ = 0;
};

// --- cookies, XSRF and users -------------------------------------------------------------------

class BaseHandler : public squall::web::RequestHandler {
 public:
  std::optional<std::string> get_current_user() override { return get_signed_cookie("user"); }
};

class LoginHandler : public BaseHandler {
 public:
  squall::Future<void> get() override {
    write("<form method=post>" + xsrf_form_html() + "<input name=name><button>Log in</button></form>");
    co_return;
  }
  squall::Future<void> post() override {  // the XSRF token was checked before this runs
    set_signed_cookie("user", get_argument("name"));
    redirect(get_argument("next", "/"));
    co_return;
  }
};

class ProfileHandler : public BaseHandler {
 public:
  squall::Future<void> get() override {
    authenticated();  // Tornado's @authenticated: anonymous users go to login_url
    write("Hello, " + *current_user());
    co_return;
  }
};

class VisitsHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    int visits = std::stoi(get_cookie("visits", "0")) + 1;
    squall::http::CookieOptions options;
    options.max_age = std::chrono::hours(24);
    options.httponly = true;
    set_cookie("visits", std::to_string(visits), options);
    write("visit " + std::to_string(visits));
    co_return;
  }
};

// --- the application ---------------------------------------------------------------------------

squall::web::Settings make_settings() {
squall::web::Settings settings{
    .compress_response = true,
    .cookie_secret = "change me: a long random string",
    .xsrf_cookies = true,
    .login_url = "/login",
    .template_path = "templates",
};
  // The guide's template, from memory instead of a templates/ directory.
  settings.template_loader = std::make_shared<squall::web::DictLoader>(
      std::map<std::string, std::string, std::less<>>{
          {"page.html", "<h1>{{ title }}</h1>{% for i in items %}<p>{{ i }}</p>{% end %}"}});
  return settings;
}

std::vector<squall::web::Rule> make_rules(const Database& db) {
  using squall::web::handler;
std::vector<squall::web::Rule> rules = {
    {"/", handler<MainHandler>()},
    {"/story/([0-9]+)", handler<StoryHandler>(std::cref(db)), "story"},
    {"/(?P<year>[0-9]{4})/(?P<slug>[a-z-]+)", handler<ArticleHandler>(), "article"},
    {"/search", handler<SearchHandler>()},
    {"/old-home", handler<squall::web::RedirectHandler>("/")},
    {"/docs/(.*)", handler<squall::web::RedirectHandler>("https://docs.example.com/{0}")},
    {"/gone", handler<squall::web::ErrorHandler>(410)},
};
  rules.push_back({"/api/items", handler<ApiHandler>()});
  rules.push_back({"/upload", handler<UploadFormHandler>()});
  rules.push_back({"/stream", handler<StreamingHandler>()});
  rules.push_back({"/old", handler<OldPageHandler>()});
  rules.push_back({"/page", handler<PageHandler>()});
  rules.push_back({"/conflict", handler<JsonApiHandler>()});
  rules.push_back({"/timed", handler<TimedHandler>()});
  rules.push_back({"/bytes", handler<ByteCountHandler>()});
  rules.push_back({"/login", handler<LoginHandler>()});
  rules.push_back({"/profile", handler<ProfileHandler>()});
  rules.push_back({"/visits", handler<VisitsHandler>()});
  rules.push_back({"/hash", handler<HashHandler>()});
  rules.push_back({"/proxy", handler<ProxyHandler>()});
  return rules;
}

void serve_forever() {
  Database db;
squall::web::Application app(make_rules(db), make_settings());
app.listen(8888);
squall::IOLoop::current().start();
}

void hosts_and_fallbacks(squall::web::Application& app, squall::web::Application& legacy_app) {
  using squall::web::handler;
app.add_handlers("api\\.example\\.com", {
    {"/", handler<MainHandler>()},
});
app.add_handlers(".*", {
    {"/legacy/.*", handler<squall::web::FallbackHandler>(std::ref(legacy_app))},
    {"/ping", handler<squall::web::FallbackHandler>([](squall::http::HTTPServerRequest& req) {
       req.respond(200, "text/plain", "pong");
     })},
});
}

// --- the guide's test ------------------------------------------------------------------------------

class HelloTest : public squall::testing::AsyncHTTPTest {
 protected:
  std::unique_ptr<squall::http::HTTPServerConnectionDelegate> get_app() override {
    return std::make_unique<squall::web::Application>(std::vector<squall::web::Rule>{
        {"/", squall::web::handler<MainHandler>()},
    });
  }
};

SQUALL_ASYNC_TEST(HelloTest, SaysHello) {
  squall::http::HTTPResponse response = co_await fetch("/");
  EXPECT_EQ(response.code, 200);
  EXPECT_EQ(response.body, "Hello, world");
}

SQUALL_ASYNC_TEST(HelloTest, PostsAreNotAllowed) {
  squall::http::HTTPRequest request;
  request.method = "POST";
  request.body = "x=1";
  squall::http::HTTPResponse response = co_await fetch("/", request);
  EXPECT_EQ(response.code, 405);
}

// --- --smoke -------------------------------------------------------------------------------------

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

squall::Future<void> smoke(int port) {
  auto client = squall::http::AsyncHTTPClient::create(squall::http::HTTPClientBackend::native);
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto get = [&](std::string path) {
    squall::http::HTTPRequest r;
    r.url = base + path;
    r.follow_redirects = false;
    return client->fetch(std::move(r), false);
  };
  squall::http::HTTPResponse r = co_await get("/");
  check(r.body == "Hello, world", "hello");
  r = co_await get("/story/42");
  check(r.body == "The answer", "story");
  r = co_await get("/story/7");
  check(r.code == 404, "missing story");
  r = co_await get("/2024/hello-world");
  check(r.body == "2024/hello-world is at /2024/hello-world", "article");
  r = co_await get("/search?q=fox&tag=a&tag=b");
  check(r.body == R"({"page": "1", "q": "fox", "sort": "relevance", "tags": ["a", "b"]})", "search");
  r = co_await get("/search");
  check(r.code == 400, "search without q");
  r = co_await get("/docs/intro");
  check(r.code == 301 && r.headers.get("Location", "") == "https://docs.example.com/intro", "redirect handler");
  r = co_await get("/gone");
  check(r.code == 410, "error handler");
  r = co_await get("/stream");
  check(r.body == "chunk 0\nchunk 1\nchunk 2\n", "stream");
  r = co_await get("/old");
  check(r.code == 301, "redirect");
  r = co_await get("/page");
  check(r.body == "<h1>Home</h1><p>one</p><p>two</p>", "render");
  r = co_await get("/conflict");
  check(r.code == 409 && r.body == R"({"reason": "something went wrong", "status": 409})", "write_error");
  r = co_await get("/timed");
  check(r.body == "done" && TimedHandler::finished_requests == 1, "lifecycle");
  r = co_await get("/profile");
  check(r.code == 302 && r.headers.get("Location", "") == "/login?next=%2Fprofile", "authenticated");
  r = co_await get("/visits");
  check(r.body == "visit 1", "cookies");
  r = co_await get("/ping");
  check(r.body == "pong", "fallback callback");
  r = co_await get("/legacy/x");
  check(r.body == "Hello, world", "fallback application");
  r = co_await get("/hash?text=abc");
  check(r.body == std::to_string(std::hash<std::string>{}("abc")), "executor");
  r = co_await get("/proxy?url=" + squall::http::url_escape(base + "/"));
  check(r.body == "Hello, world", "client in a handler");
  squall::http::HTTPRequest put;
  put.url = base + "/bytes";
  put.method = "PUT";
  put.body = std::string(100000, 'b');
  squall::Future<squall::http::HTTPResponse> sent = client->fetch(put, false);
  r = co_await sent;
  check(r.body == "100000 bytes", "streamed body");
  client->close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--serve") == 0) {
    serve_forever();
    return 0;
  }
  squall::log::enable_pretty_logging({.level = squall::log::Level::error});
  {
    Database db;
    squall::web::Application legacy({{"/legacy/x", squall::web::handler<MainHandler>()}});
    squall::web::Application app(make_rules(db), make_settings());
    hosts_and_fallbacks(app, legacy);
    auto& loop = squall::IOLoop::current();
    int port = app.listen(0, "127.0.0.1").ports().at(0);
    loop.run_sync([port] { return smoke(port); }, 30s);
    loop.run_sync([&app] { return app.servers()[0]->close_all_connections(); }, 5s);
  }
  if (failures) return 1;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
