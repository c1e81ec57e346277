// Application and routing: path patterns (literal and regular, named
// groups, unescaping, reversal), rule order, hosts, default and error
// handlers, 404/405/414, HEAD and OPTIONS, and rule arguments reaching the
// handler — over real sockets through AsyncHTTPTest.
#include "squall/web/application.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "squall/testing/http.hpp"
#include "squall/web/handlers.hpp"
#include "squall/web/routing.hpp"
#include "web_test_support.hpp"

namespace squall::web {
namespace {

using test::get;
using test::request;

// --- PathPattern ----------------------------------------------------------------------------

struct Groups {
  std::vector<std::string> args;
  std::map<std::string, std::string, std::less<>> kwargs;
};

std::optional<Groups> match(std::string_view pattern, std::string_view path) {
  Groups g;
  if (!PathPattern(pattern).match(path, g.args, g.kwargs)) return std::nullopt;
  return g;
}

TEST(PathPatternTest, PatternsWithoutRegexSyntaxAreLiteral) {
  EXPECT_TRUE(PathPattern("/").is_literal());
  EXPECT_TRUE(PathPattern("/hello/world").is_literal());
  PathPattern escaped("^/robots\\.txt$");
  EXPECT_TRUE(escaped.is_literal());
  EXPECT_EQ(escaped.literal(), "/robots.txt");
  EXPECT_FALSE(PathPattern("/favicon.ico").is_literal());  // an unescaped '.' is any character
  EXPECT_FALSE(PathPattern("/story/([0-9]+)").is_literal());
  EXPECT_TRUE(match("/hello", "/hello"));
  EXPECT_FALSE(match("/hello", "/hello/"));
  EXPECT_FALSE(match("/hello", "/HELLO"));
}

TEST(PathPatternTest, RegularPatternsMatchTheWholePath) {
  auto g = match("/story/([0-9]+)", "/story/42");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->args, std::vector<std::string>{"42"});
  EXPECT_FALSE(match("/story/([0-9]+)", "/story/42/more"));
  EXPECT_FALSE(match("/story/([0-9]+)", "/x/story/42"));
  EXPECT_FALSE(match("/story/([0-9]+)", "/story/"));
  EXPECT_TRUE(match("/story/([0-9]+)$", "/story/7"));
}

TEST(PathPatternTest, NamedGroupsBecomeKeywordArguments) {
  auto g = match("/(?P<year>[0-9]{4})/(?P<slug>[a-z-]+)", "/2024/hello-world");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->args.empty());  // as Tornado: named groups win
  EXPECT_EQ(g->kwargs.at("year"), "2024");
  EXPECT_EQ(g->kwargs.at("slug"), "hello-world");
  EXPECT_EQ(PathPattern("/(?P<a>x)(y)(?P<b>z)").group_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(match("/(?P<w>[a-z]+)/(?P=w)", "/abc/abc"));
  EXPECT_FALSE(match("/(?P<w>[a-z]+)/(?P=w)", "/abc/abd"));
  EXPECT_THROW(PathPattern("/(?P<a>x)(?P<a>y)"), std::invalid_argument);
}

TEST(PathPatternTest, GroupsArePercentDecodedButPlusIsKept) {
  auto g = match("/file/(.*)", "/file/a%20b%2Fc+d");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->args[0], "a b/c+d");
}

TEST(PathPatternTest, AGroupThatDidNotTakePartIsEmpty) {
  auto g = match("/x(/y)?(/z)?", "/x/z");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->args, (std::vector<std::string>{"", "/z"}));
}

TEST(PathPatternTest, CharacterClassesMayHoldParentheses) {
  auto g = match("/p/([()a-z]+)", "/p/(ab)");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->args[0], "(ab)");
}

TEST(PathPatternTest, ReverseFillsGroupsWithEscapedArguments) {
  EXPECT_EQ(PathPattern("/story/([0-9]+)").reverse({"42"}), "/story/42");
  EXPECT_EQ(PathPattern("^/f/([^/]+)/(.*)$").reverse({"a b", "c/d"}), "/f/a%20b/c/d");
  EXPECT_EQ(PathPattern("/(?P<id>[0-9]+)\\.json").reverse({"7"}), "/7.json");
  EXPECT_EQ(PathPattern("/plain").reverse({}), "/plain");
  EXPECT_THROW(PathPattern("/story/([0-9]+)").reverse({}), std::invalid_argument);
  EXPECT_THROW(PathPattern("/(a|b)/(?:c)").reverse({"a"}), std::invalid_argument);
  EXPECT_THROW(PathPattern("/x/\\d+").reverse({}), std::invalid_argument);
}

TEST(PathPatternTest, MalformedPatternsAreRejected) {
  EXPECT_THROW(PathPattern("/("), std::invalid_argument);
  EXPECT_THROW(PathPattern("/[a-"), std::invalid_argument);
  EXPECT_THROW(PathPattern("/(?P<x"), std::invalid_argument);
}

TEST(PathPatternTest, PathsBeyondTheRegexLimitMatchOnlyLiterals) {
  std::string path = "/static/" + std::string(kMaxRegexPathLength, 'a');
  EXPECT_FALSE(match("/static/(.*)", path));  // would overflow std::regex's recursion
  EXPECT_TRUE(match(path, path));
  EXPECT_TRUE(match("/static/(.*)", "/static/" + std::string(kMaxRegexPathLength - 8, 'a')));
}

TEST(MethodsTest, AllowHeaderListsMethodsInTornadosOrder) {
  EXPECT_EQ(methods::allow_header(methods::kGet | methods::kOptions), "GET, HEAD, OPTIONS");
  EXPECT_EQ(methods::allow_header(methods::kPost | methods::kOptions), "POST, OPTIONS");
  EXPECT_EQ(methods::allow_header(methods::kDelete | methods::kPut | methods::kPatch), "PUT, PATCH, DELETE");
  EXPECT_EQ(methods::bit("GET"), methods::kGet);
  EXPECT_EQ(methods::bit("get"), 0u);
  EXPECT_EQ(methods::bit("PROPFIND"), 0u);
}

// --- handlers used below ------------------------------------------------------------------------

class HelloHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write("Hello, world");
    co_return;
  }
};

class ArgsHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string out;
    for (const auto& a : path_args()) out += "[" + a + "]";
    for (const auto& [k, v] : path_kwargs()) out += k + "=" + v + ";";
    write(out);
    co_return;
  }
};

/// Takes its tag through the constructor.
class TagHandler : public RequestHandler {
 public:
  explicit TagHandler(std::string tag) : tag_(std::move(tag)) {}
  Future<void> get() override {
    write(tag_);
    co_return;
  }

 private:
  std::string tag_;
};

/// Takes its arguments through initialize, and reads the request early.
class InitHandler : public RequestHandler {
 public:
  InitHandler() : seen_in_constructor_(request().path) {}
  void initialize(const std::string& prefix, int& counter) {
    prefix_ = prefix;
    counter_ = &counter;
  }
  Future<void> get() override {
    ++*counter_;
    write(prefix_ + ":" + seen_in_constructor_ + ":" + std::to_string(*counter_));
    co_return;
  }

 private:
  std::string seen_in_constructor_;
  std::string prefix_;
  int* counter_ = nullptr;
};

class PostOnlyHandler : public RequestHandler {
 public:
  Future<void> post() override {
    write("posted " + request().body);
    co_return;
  }
};

class AllVerbsHandler : public RequestHandler {
 public:
  Future<void> get() override { return answer(); }
  Future<void> post() override { return answer(); }
  Future<void> put() override { return answer(); }
  Future<void> patch() override { return answer(); }
  Future<void> delete_() override { return answer(); }

 private:
  Future<void> answer() {
    write(request().method);
    co_return;
  }
};

class ExplicitHeadHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write("the get body");
    co_return;
  }
  Future<void> head() override {
    set_header("X-Head", "own");
    co_return;
  }
};

class ReverseHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write(reverse_url("story", 42) + " " + reverse_url("user", "a b"));
    co_return;
  }
};

class CatchAllHandler : public RequestHandler {
 public:
  Future<void> get() override {
    set_status(418);
    write("default for " + request().path);
    co_return;
  }
};

// --- the application ----------------------------------------------------------------------------

class ApplicationTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override {
    return {
        {"/", handler<HelloHandler>()},
        {"/story/([0-9]+)", handler<ArgsHandler>(), "story"},
        {"/user/(?P<name>[^/]+)", handler<ArgsHandler>(), "user"},
        {"/multi/([a-z]+)/([0-9]+)", handler<ArgsHandler>()},
        {"/tag", handler<TagHandler>("constructed")},
        {"/init", handler<InitHandler>("init", std::ref(counter_))},
        {"/post", handler<PostOnlyHandler>()},
        {"/verbs", handler<AllVerbsHandler>()},
        {"/head", handler<ExplicitHeadHandler>()},
        {"/reverse", handler<ReverseHandler>()},
        // Order: the regular rule comes first, so it wins over the literal.
        {"/order/(.*)", handler<TagHandler>("regex")},
        {"/order/x", handler<TagHandler>("literal")},
        {"/first", handler<TagHandler>("literal first")},
        {"/fir(st)", handler<TagHandler>("regex second")},
    };
  }
  int counter_ = 0;
};

SQUALL_ASYNC_TEST(ApplicationTest, ServesHelloWorld) {
  auto r = co_await fetch("/");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello, world");
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/html; charset=UTF-8");
  EXPECT_EQ(r.headers.get("Content-Length", ""), "12");
  EXPECT_TRUE(r.headers.contains("Etag"));
  EXPECT_TRUE(r.headers.contains("Date"));
}

SQUALL_ASYNC_TEST(ApplicationTest, PathGroupsReachTheHandlerDecoded) {
  auto r = co_await fetch("/story/42");
  EXPECT_EQ(r.body, "[42]");
  r = co_await fetch("/user/a%20b");
  EXPECT_EQ(r.body, "name=a b;");
  r = co_await fetch("/multi/abc/7");
  EXPECT_EQ(r.body, "[abc][7]");
  r = co_await fetch("/story/x");
  EXPECT_EQ(r.code, 404);
}

SQUALL_ASYNC_TEST(ApplicationTest, PathsAreMatchedExactlyAndCaseSensitively) {
  for (std::string path : {"/HELLO", "/story/42/extra", "/tag/", "/nothing"}) {
    auto r = co_await fetch(path);
    EXPECT_EQ(r.code, 404) << path;
  }
  auto r = co_await fetch("/tag?x=1");
  EXPECT_EQ(r.body, "constructed");
}

SQUALL_ASYNC_TEST(ApplicationTest, TheFirstMatchingRuleWins) {
  auto r = co_await fetch("/order/x");
  EXPECT_EQ(r.body, "regex");
  r = co_await fetch("/first");
  EXPECT_EQ(r.body, "literal first");
}

SQUALL_ASYNC_TEST(ApplicationTest, RuleArgumentsReachConstructorOrInitialize) {
  auto r = co_await fetch("/tag");
  EXPECT_EQ(r.body, "constructed");
  r = co_await fetch("/init");
  EXPECT_EQ(r.body, "init:/init:1");
  r = co_await fetch("/init");
  EXPECT_EQ(r.body, "init:/init:2");  // the counter is shared by reference
  EXPECT_EQ(counter_, 2);
}

SQUALL_ASYNC_TEST(ApplicationTest, UnsupportedMethodsGet405WithAllow) {
  auto req = request("POST", "x");
  auto r = co_await fetch("/", std::move(req));
  EXPECT_EQ(r.code, 405);
  EXPECT_EQ(r.headers.get("Allow", ""), "GET, HEAD, OPTIONS");
  req = get();
  r = co_await fetch("/post", std::move(req));
  EXPECT_EQ(r.code, 405);
  EXPECT_EQ(r.headers.get("Allow", ""), "POST, OPTIONS");
  req = request("POST", "body");
  r = co_await fetch("/post", std::move(req));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "posted body");
  req = request("PURGE");
  req.allow_nonstandard_methods = true;
  r = co_await fetch("/verbs", std::move(req));
  EXPECT_EQ(r.code, 405);
  EXPECT_EQ(r.headers.get("Allow", ""), "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
}

SQUALL_ASYNC_TEST(ApplicationTest, EveryVerbDispatchesToItsMethod) {
  for (std::string method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    std::optional<std::string> body;
    if (method == "POST" || method == "PUT" || method == "PATCH") body = "b";
    auto req = request(method, body);
    auto r = co_await fetch("/verbs", std::move(req));
    EXPECT_EQ(r.code, 200) << method;
    EXPECT_EQ(r.body, method);
  }
}

SQUALL_ASYNC_TEST(ApplicationTest, HeadRunsGetWithoutTheBody) {
  auto req = request("HEAD");
  auto r = co_await fetch("/", std::move(req));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.headers.get("Content-Length", ""), "12");  // as the GET's
  req = request("HEAD");
  r = co_await fetch("/head", std::move(req));
  EXPECT_EQ(r.headers.get("X-Head", ""), "own");
  req = request("HEAD");
  r = co_await fetch("/post", std::move(req));
  EXPECT_EQ(r.code, 405);
}

SQUALL_ASYNC_TEST(ApplicationTest, OptionsAnswersWithAllow) {
  auto req = request("OPTIONS");
  auto r = co_await fetch("/", std::move(req));
  EXPECT_EQ(r.code, 204);
  EXPECT_EQ(r.headers.get("Allow", ""), "GET, HEAD, OPTIONS");
  req = request("OPTIONS");
  r = co_await fetch("/post", std::move(req));
  EXPECT_EQ(r.headers.get("Allow", ""), "POST, OPTIONS");
}

SQUALL_ASYNC_TEST(ApplicationTest, ReverseUrlBuildsPathsOfNamedRules) {
  EXPECT_EQ(application().reverse_url("story", 7), "/story/7");
  EXPECT_EQ(application().reverse_url("user", "x/y"), "/user/x/y");
  EXPECT_THROW(application().reverse_url("nope"), std::out_of_range);
  EXPECT_THROW(application().reverse_url("story"), std::invalid_argument);
  auto r = co_await fetch("/reverse");
  EXPECT_EQ(r.body, "/story/42 /user/a%20b");
}

SQUALL_ASYNC_TEST(ApplicationTest, OverlongPathsGet414) {
  auto r = co_await fetch("/story/" + std::string(kMaxRegexPathLength + 10, '1'));
  EXPECT_EQ(r.code, 414);
}

SQUALL_ASYNC_TEST(ApplicationTest, NotFoundAnswersBeforeTheBody) {
  // 404 is decided from the head: a client waiting for 100 Continue is
  // answered at once and never has to send its body.
  auto req = request("POST", std::string(100000, 'x'));
  req.expect_100_continue = true;
  auto r = co_await fetch("/missing", std::move(req));
  EXPECT_EQ(r.code, 404);
  req = request("POST", "y");
  r = co_await fetch("/post", std::move(req));
  EXPECT_EQ(r.body, "posted y");
}

// --- default handler, hosts, listen --------------------------------------------------------------

class DefaultHandlerTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override { return {{"/", handler<HelloHandler>()}}; }
  Settings settings() override {
    Settings s;
    s.default_handler = handler<CatchAllHandler>();
    return s;
  }
};

SQUALL_ASYNC_TEST(DefaultHandlerTest, ServesPathsNoRuleMatches) {
  auto r = co_await fetch("/anything/else");
  EXPECT_EQ(r.code, 418);
  EXPECT_EQ(r.body, "default for /anything/else");
  r = co_await fetch("/");
  EXPECT_EQ(r.body, "Hello, world");
}

class HostsTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override {
    return {{"/", handler<TagHandler>("any host")}, {"/shared", handler<TagHandler>("default shared")}};
  }
  void SetUp() override {
    test::WebTest::SetUp();
    application().add_handlers("www\\.example\\.com", {{"/", handler<TagHandler>("www")}});
    application().add_handlers("api.example.org", {{"/", handler<TagHandler>("api")}});
  }
};

SQUALL_ASYNC_TEST(HostsTest, HostPatternsChooseTheirRules) {
  auto req = get({{"Host", "www.example.com"}});
  auto r = co_await fetch("/", std::move(req));
  EXPECT_EQ(r.body, "www");
  req = get({{"Host", "WWW.Example.COM:8080"}});  // port dropped, case folded
  r = co_await fetch("/", std::move(req));
  EXPECT_EQ(r.body, "www");
  req = get({{"Host", "api.example.org"}});
  r = co_await fetch("/", std::move(req));
  EXPECT_EQ(r.body, "api");
  req = get({{"Host", "other.example.com"}});
  r = co_await fetch("/", std::move(req));
  EXPECT_EQ(r.body, "any host");
  // A host group without the path falls through to the default rules.
  req = get({{"Host", "www.example.com"}});
  r = co_await fetch("/shared", std::move(req));
  EXPECT_EQ(r.body, "default shared");
}

class ListenTest : public testing::AsyncTest {};

SQUALL_ASYNC_TEST(ListenTest, ListenStartsAServerTheApplicationKeeps) {
  Application app({{"/", handler<HelloHandler>()}});
  http::HTTPServer& server = app.listen(0, "127.0.0.1");
  CO_ASSERT_EQ(app.servers().size(), 1u);
  EXPECT_EQ(&server, app.servers()[0].get());
  int port = server.ports().at(0);
  auto client = http::AsyncHTTPClient::create(http::HTTPClientBackend::native);
  auto r = co_await client->fetch("http://127.0.0.1:" + std::to_string(port) + "/");
  EXPECT_EQ(r.body, "Hello, world");
  client->close();
  server.stop();
  co_await server.close_all_connections();
}

// --- static files hook ---------------------------------------------------------------------------

class FakeStaticHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write("static " + settings().static_path + " " + path_args().at(0));
    co_return;
  }
};

TEST(StaticSettingsTest, StaticPathNeedsAStaticHandler) {
  Settings s;
  s.static_path = "/srv/static";
  EXPECT_THROW(Application({}, s), std::invalid_argument);
}

class StaticRoutesTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override { return {{"/", handler<HelloHandler>()}}; }
  Settings settings() override {
    Settings s;
    s.static_path = "/srv/static";
    s.static_url_prefix = "/assets/";
    s.static_handler = handler<FakeStaticHandler>();
    s.make_static_url = [](const Settings& settings, std::string_view path, bool include_version) {
      return settings.static_url_prefix + std::string(path) + (include_version ? "?v=abc" : "");
    };
    return s;
  }
};

class StaticUrlHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write(static_url("app.css") + " " + static_url("x.js", false, false) + " " + static_url("y.png", true));
    co_return;
  }
};

SQUALL_ASYNC_TEST(StaticRoutesTest, StaticRoutesGoToTheStaticHandler) {
  auto r = co_await fetch("/assets/css/site%20main.css");
  EXPECT_EQ(r.body, "static /srv/static css/site main.css");
  r = co_await fetch("/favicon.ico");
  EXPECT_EQ(r.body, "static /srv/static favicon.ico");
  r = co_await fetch("/robots.txt");
  EXPECT_EQ(r.body, "static /srv/static robots.txt");
  r = co_await fetch("/");
  EXPECT_EQ(r.body, "Hello, world");
}

class StaticUrlTest : public StaticRoutesTest {
 protected:
  std::vector<Rule> rules() override { return {{"/u", handler<StaticUrlHandler>()}}; }
};

SQUALL_ASYNC_TEST(StaticUrlTest, StaticUrlUsesTheHook) {
  auto r = co_await fetch("/u");
  EXPECT_EQ(r.body, "/assets/app.css?v=abc /assets/x.js http://127.0.0.1:" + std::to_string(get_http_port()) +
                        "/assets/y.png?v=abc");
}

}  // namespace
}  // namespace squall::web
