// Cookies, signed cookies, XSRF and authentication through handlers, over
// real sockets; and interop with Debian's Tornado 6.2 both ways: a signed
// cookie and an XSRF token made by a real Tornado application pass
// squall's handlers, and squall's pass Tornado's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "squall/http/httputil.hpp"
#include "squall/http/url.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/process.hpp"
#include "squall/testing/http.hpp"
#include "squall/web/application.hpp"
#include "squall/web/request_handler.hpp"
#include "squall/web/signed_value.hpp"
#include "squall/web/xsrf.hpp"
#include "../support/run_program.hpp"
#include "web_test_support.hpp"

using namespace std::chrono_literals;

namespace squall::web {
namespace {

using test::get;
using test::request;

constexpr const char* kSecret = "a very secret cookie key for tests";

/// The value of the Set-Cookie field for `name`, up to its first ';' (as
/// sent: double-quoted when it holds characters such as '=').
std::string cookie_value(const http::HTTPHeaders& headers, std::string_view name) {
  for (std::string_view field : headers.get_list("Set-Cookie")) {
    if (field.starts_with(std::string(name) + "=")) {
      std::string_view v = field.substr(name.size() + 1);
      return std::string(v.substr(0, v.find(';')));
    }
  }
  return "<none>";
}

class CookieHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string action = path_args().at(0);
    if (action == "read") {
      write(get_cookie("a", "no a") + "|" + get_cookie("b", "no b") + "|" + (get_cookie("c") ? "c" : "no c"));
    } else if (action == "set") {
      http::CookieOptions o;
      o.domain = "example.com";
      o.path = "/app";
      o.max_age = std::chrono::seconds(3600);
      o.httponly = true;
      o.secure = true;
      o.samesite = "Lax";
      set_cookie("full", "v1", o);
      set_cookie("twice", "first");
      set_cookie("twice", "second");
      std::string rejected;
      try {
        set_cookie("bad", "a;b=c");
      } catch (const std::invalid_argument&) {
        rejected = "rejected";
      }
      write(rejected);
    } else if (action == "clear") {
      clear_cookie("gone");
    } else if (action == "clear-all") {
      clear_all_cookies();
    } else if (action == "error") {
      set_cookie("kept", "on-error");
      throw HTTPError(400);
    }
    co_return;
  }
};

class SignedHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string name = get_argument("name", "signed");
    if (path_args().at(0) == "set") {
      if (get_argument("session", "") == "1") {
        set_signed_cookie(name, get_argument("value"), std::nullopt);
      } else {
        set_signed_cookie(name, get_argument("value"));
      }
    } else {
      auto v = get_signed_cookie(name);
      write(v ? *v : "null");
    }
    co_return;
  }
};

class XsrfHandler : public RequestHandler {
 public:
  Future<void> get() override {
    if (get_argument("form", "") == "1") write(xsrf_form_html());
    else write(xsrf_token());
    co_return;
  }
  Future<void> post() override {
    write("ok");
    co_return;
  }
};

/// Users come from a signed "user" cookie.
class UserHandler : public RequestHandler {
 public:
  std::optional<std::string> get_current_user() override {
    ++calls;
    return get_signed_cookie("user");
  }
  static inline int calls = 0;
};

class PrivateHandler : public UserHandler {
 public:
  Future<void> get() override {
    authenticated();
    current_user();  // cached: get_current_user runs once
    write("hello " + *current_user() + " " + std::to_string(calls));
    co_return;
  }
  Future<void> post() override {
    authenticated();
    write("posted");
    co_return;
  }
};

class LoginHandler : public RequestHandler {
 public:
  Future<void> get() override {
    set_signed_cookie("user", get_argument("name"));
    redirect(get_argument("next", "/"));
    co_return;
  }
};

struct Session {
  std::string cookie;  // the _xsrf cookie's value
  std::string token;   // a token from the page
};

class CookiesTest : public test::WebTest {
 protected:
  Future<Session> new_session() {
    auto r = co_await fetch("/xsrf");
    co_return Session{cookie_value(r.headers, "_xsrf"), r.body};
  }
  /// POSTs to /xsrf with an optional _xsrf cookie, form field and header.
  Future<int> post_xsrf(std::string cookie, std::string field, std::string header = "X-XSRFToken",
                        std::string header_value = "") {
    auto req = request("POST", field.empty() ? std::string("x=1") : "_xsrf=" + http::url_escape(field),
                       {{"Content-Type", "application/x-www-form-urlencoded"}});
    if (!cookie.empty()) req.headers.add("Cookie", "_xsrf=" + cookie);
    if (!header_value.empty()) req.headers.add(header, header_value);
    auto r = co_await fetch("/xsrf", req);
    co_return r.code;
  }

  std::vector<Rule> rules() override {
    return {
        {"/cookie/(.*)", handler<CookieHandler>()},
        {"/signed/(.*)", handler<SignedHandler>()},
        {"/xsrf", handler<XsrfHandler>()},
        {"/private", handler<PrivateHandler>()},
        {"/login", handler<LoginHandler>()},
    };
  }
  Settings settings() override {
    Settings s;
    s.cookie_secret = secret();
    s.xsrf_cookies = true;
    s.xsrf_cookie_version = xsrf_version();
    s.xsrf_cookie_options.samesite = "Strict";
    s.login_url = login_url();
    return s;
  }
  virtual CookieSecret secret() const { return kSecret; }
  virtual int xsrf_version() const { return 2; }
  virtual std::string login_url() const { return "/login"; }
};

SQUALL_ASYNC_TEST(CookiesTest, ReadsRequestCookies) {
  auto req = get({{"Cookie", "a=1; b=\"quoted value\""}});
  auto r = co_await fetch("/cookie/read", req);
  EXPECT_EQ(r.body, "1|quoted value|no c");
}

SQUALL_ASYNC_TEST(CookiesTest, SetsCookiesWithTheirAttributes) {
  auto r = co_await fetch("/cookie/set");
  EXPECT_EQ(r.body, "rejected");  // no cookie injection
  auto fields = r.headers.get_list("Set-Cookie");
  CO_ASSERT_EQ(fields.size(), 2u);  // "twice" once, with its last value; "bad" never
  EXPECT_EQ(fields[0], "full=v1; Domain=example.com; HttpOnly; Max-Age=3600; Path=/app; SameSite=Lax; Secure");
  EXPECT_EQ(fields[1], "twice=second; Path=/");
}

SQUALL_ASYNC_TEST(CookiesTest, ClearCookieExpiresItInThePast) {
  auto r = co_await fetch("/cookie/clear");
  std::string field(r.headers.get("Set-Cookie", ""));
  EXPECT_TRUE(field.starts_with("gone=; expires=")) << field;
  EXPECT_NE(field.find("; Path=/"), std::string::npos);
  auto expires = http::parse_http_date(field.substr(15, 29));
  CO_ASSERT_TRUE(expires.has_value());
  EXPECT_LT(*expires, std::chrono::system_clock::now() - std::chrono::hours(24 * 300));
  auto req = get({{"Cookie", "x=1; y=2"}});
  r = co_await fetch("/cookie/clear-all", req);
  auto fields = r.headers.get_list("Set-Cookie");
  CO_ASSERT_EQ(fields.size(), 2u);
  EXPECT_TRUE(fields[0].starts_with("x=; expires="));
  EXPECT_TRUE(fields[1].starts_with("y=; expires="));
}

SQUALL_ASYNC_TEST(CookiesTest, CookiesSetBeforeAnErrorAreSent) {
  auto r = co_await fetch("/cookie/error");
  EXPECT_EQ(r.code, 400);
  EXPECT_EQ(cookie_value(r.headers, "kept"), "on-error");  // as Tornado
}

SQUALL_ASYNC_TEST(CookiesTest, SignedCookiesRoundTrip) {
  auto r = co_await fetch("/signed/set?value=alice");
  std::string value = cookie_value(r.headers, "signed");
  EXPECT_TRUE(value.starts_with("\"2|1:0|10:")) << value;  // quoted for its '=' padding
  std::string field(r.headers.get("Set-Cookie", ""));
  EXPECT_NE(field.find("expires="), std::string::npos);  // 30 days by default
  auto req = get({{"Cookie", "signed=" + value}});
  r = co_await fetch("/signed/get", req);
  EXPECT_EQ(r.body, "alice");
  // Tampered, for another name, or plain: null, never an error.
  std::string tampered = value;
  tampered[tampered.size() - 1] = tampered.back() == '0' ? '1' : '0';
  for (std::string cookie : {"signed=" + tampered, "other=" + value, std::string("signed=alice")}) {
    auto bad = get({{"Cookie", cookie}});
    r = co_await fetch("/signed/get", bad);
    EXPECT_EQ(r.body, "null") << cookie;
  }
  r = co_await fetch("/signed/set?value=bob&session=1");
  field = std::string(r.headers.get("Set-Cookie", ""));
  EXPECT_EQ(field.find("expires="), std::string::npos);  // a session cookie
}

class VersionedSecretTest : public CookiesTest {
 protected:
  CookieSecret secret() const override { return CookieSecret::versioned({{1, "old key"}, {2, "new key"}}, 2); }
};

SQUALL_ASYNC_TEST(VersionedSecretTest, SignsWithTheCurrentKeyAndAcceptsOldOnes) {
  auto r = co_await fetch("/signed/set?value=carol");
  std::string value = cookie_value(r.headers, "signed");
  EXPECT_TRUE(value.starts_with("\"2|1:2|")) << value;
  std::string old = create_signed_value(CookieSecret::versioned({{1, "old key"}}, 1), "signed", "dave");
  auto req = get({{"Cookie", "signed=" + old}});
  r = co_await fetch("/signed/get", req);
  EXPECT_EQ(r.body, "dave");
}

class NoSecretTest : public CookiesTest {
 protected:
  Settings settings() override { return {}; }
};

SQUALL_ASYNC_TEST(NoSecretTest, SignedCookiesNeedACookieSecret) {
  testing::ExpectLog expect("squall.application", "cookie_secret");
  auto r = co_await fetch("/signed/set?value=x");
  EXPECT_EQ(r.code, 500);
}

// --- XSRF ---------------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(CookiesTest, GetSetsTheXsrfCookieOnce) {
  auto r = co_await fetch("/xsrf");
  std::string cookie = cookie_value(r.headers, "_xsrf");
  EXPECT_TRUE(cookie.starts_with("2|")) << cookie;
  EXPECT_NE(std::string(r.headers.get("Set-Cookie", "")).find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(r.body, cookie);  // the new token, as Tornado sets it
  auto again = get({{"Cookie", "_xsrf=" + cookie}});
  r = co_await fetch("/xsrf", again);
  EXPECT_FALSE(r.headers.contains("Set-Cookie"));
  EXPECT_TRUE(r.body.starts_with("2|"));
  EXPECT_NE(r.body, cookie);  // masked afresh for each page
  auto form = get({{"Cookie", "_xsrf=" + cookie}});
  r = co_await fetch("/xsrf?form=1", form);
  EXPECT_TRUE(r.body.starts_with(R"(<input type="hidden" name="_xsrf" value="2|)")) << r.body;
}

SQUALL_ASYNC_TEST(CookiesTest, PostNeedsATokenMatchingTheCookie) {
  Session s = co_await new_session();
  EXPECT_EQ(co_await post_xsrf(s.cookie, s.token), 200);                       // form field
  EXPECT_EQ(co_await post_xsrf(s.cookie, "", "X-XSRFToken", s.token), 200);    // header
  EXPECT_EQ(co_await post_xsrf(s.cookie, "", "X-CSRFToken", s.token), 200);    // Django's header
  EXPECT_EQ(co_await post_xsrf(s.cookie, s.cookie), 200);                      // the cookie's own form
  Session other = co_await new_session();
  testing::ExpectLog expect("squall.general", "^403 POST /xsrf .*(missing|does not match|invalid format)");
  EXPECT_EQ(co_await post_xsrf(s.cookie, ""), 403);                            // no token
  EXPECT_EQ(co_await post_xsrf("", s.token), 403);                             // no cookie
  EXPECT_EQ(co_await post_xsrf(s.cookie, other.token), 403);                   // another session's
  EXPECT_EQ(co_await post_xsrf(s.cookie, "2|zz|zz|1"), 403);                   // malformed
  EXPECT_GE(expect.matched(), 4);
}

class XsrfVersion1Test : public CookiesTest {
 protected:
  int xsrf_version() const override { return 1; }
};

SQUALL_ASYNC_TEST(XsrfVersion1Test, Version1TokensAreHex) {
  Session s = co_await new_session();
  EXPECT_EQ(s.token.size(), 32u);
  EXPECT_EQ(s.token.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(co_await post_xsrf(s.cookie, s.token), 200);
}

// --- authentication -------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(CookiesTest, AuthenticatedRedirectsAnonymousGetsToLogin) {
  auto req = get();
  auto r = co_await fetch("/private?x=1", req);
  EXPECT_EQ(r.code, 302);
  EXPECT_EQ(r.headers.get("Location", ""), "/login?next=%2Fprivate%3Fx%3D1");
  Session s = co_await new_session();
  auto post = request("POST", "_xsrf=" + http::url_escape(s.token),
                      {{"Content-Type", "application/x-www-form-urlencoded"}, {"Cookie", "_xsrf=" + s.cookie}});
  r = co_await fetch("/private", post);
  EXPECT_EQ(r.code, 403);
}

SQUALL_ASYNC_TEST(CookiesTest, LoggedInUsersPass) {
  auto login = get();
  auto r = co_await fetch("/login?name=alice&next=/private", login);
  EXPECT_EQ(r.code, 302);
  std::string user = cookie_value(r.headers, "user");
  UserHandler::calls = 0;
  auto req = get({{"Cookie", "user=" + user}});
  r = co_await fetch("/private", req);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "hello alice 1");
}

class AbsoluteLoginTest : public CookiesTest {
 protected:
  std::string login_url() const override { return "https://auth.example.com/login"; }
};

SQUALL_ASYNC_TEST(AbsoluteLoginTest, AnAbsoluteLoginUrlGetsAnAbsoluteNext) {
  auto req = get();
  auto r = co_await fetch("/private", req);
  EXPECT_EQ(r.headers.get("Location", ""),
            "https://auth.example.com/login?next=" +
                http::url_escape("http://127.0.0.1:" + std::to_string(get_http_port()) + "/private"));
}

class LoginWithQueryTest : public CookiesTest {
 protected:
  std::string login_url() const override { return "/login?from=app"; }
};

SQUALL_ASYNC_TEST(LoginWithQueryTest, ALoginUrlWithAQueryIsUsedAsItIs) {
  auto req = get();
  auto r = co_await fetch("/private", req);
  EXPECT_EQ(r.headers.get("Location", ""), "/login?from=app");
}

// --- interop with Tornado 6.2 ---------------------------------------------------------------------

/// A Tornado application with the same secret, driven by a Tornado client
/// that carries cookies and tokens between it and the squall server at
/// sys.argv[2]; prints what each side accepted, as JSON.
constexpr const char* kTornadoScript = R"PY(
import json, sys
from tornado import httpclient, httpserver, ioloop, netutil, web

secret, squall = sys.argv[1], sys.argv[2]

class SetHandler(web.RequestHandler):
    def get(self):
        self.set_secure_cookie("session", "from-tornado")

class GetHandler(web.RequestHandler):
    def get(self):
        v = self.get_secure_cookie("session")
        self.write("null" if v is None else v.decode())

class XsrfHandler(web.RequestHandler):
    def get(self):
        self.write(self.xsrf_token)
    def post(self):
        self.write("ok")

def cookie(response, name):
    for field in response.headers.get_list("Set-Cookie"):
        if field.startswith(name + "="):
            return field[len(name) + 1:].split(";")[0]
    return None

async def main():
    app = web.Application([("/set", SetHandler), ("/get", GetHandler), ("/xsrf", XsrfHandler)],
                          cookie_secret=secret, xsrf_cookies=True)
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    httpserver.HTTPServer(app).add_sockets(sockets)
    tornado = "http://127.0.0.1:%d" % sockets[0].getsockname()[1]
    client = httpclient.AsyncHTTPClient()
    async def fetch(url, **kw):
        return await client.fetch(url, raise_error=False, **kw)
    out = {}
    # A Tornado signed cookie read by squall, and the other way round.
    t = cookie(await fetch(tornado + "/set"), "session")
    r = await fetch(squall + "/signed/get?name=session", headers={"Cookie": "session=" + t})
    out["tornado_cookie_in_squall"] = r.body.decode()
    s = cookie(await fetch(squall + "/signed/set?name=session&value=from-squall"), "session")
    r = await fetch(tornado + "/get", headers={"Cookie": "session=" + s})
    out["squall_cookie_in_tornado"] = r.body.decode()
    # XSRF: a Tornado page's token and cookie posted to squall, and back.
    r = await fetch(tornado + "/xsrf")
    t_cookie, t_token = cookie(r, "_xsrf"), r.body.decode()
    r = await fetch(squall + "/xsrf")
    s_cookie, s_token = cookie(r, "_xsrf"), r.body.decode()
    def post(url, cookie_value, token, header=False):
        headers = {"Cookie": "_xsrf=" + cookie_value, "Content-Type": "application/x-www-form-urlencoded"}
        body = "x=1"
        if header:
            headers["X-XSRFToken"] = token
        else:
            body = "_xsrf=" + token.replace("|", "%7C")
        return fetch(url + "/xsrf", method="POST", headers=headers, body=body)
    out["tornado_token_field_in_squall"] = (await post(squall, t_cookie, t_token)).code
    out["tornado_token_header_in_squall"] = (await post(squall, t_cookie, t_token, True)).code
    out["squall_token_field_in_tornado"] = (await post(tornado, s_cookie, s_token)).code
    out["squall_token_header_in_tornado"] = (await post(tornado, s_cookie, s_token, True)).code
    out["mixed_in_squall"] = (await post(squall, t_cookie, s_token)).code
    out["mixed_in_tornado"] = (await post(tornado, s_cookie, t_token)).code
    print(json.dumps(out))

ioloop.IOLoop.current().run_sync(main)
)PY";

class TornadoInteropTest : public CookiesTest {
 protected:
  Duration async_test_timeout() const override { return std::chrono::seconds(60); }
};

SQUALL_ASYNC_TEST(TornadoInteropTest, SignedCookiesAndXsrfTokensWorkBothWays) {
  if (!testing::tornado_available()) {
    GTEST_MESSAGE_("Debian's python3-tornado is not installed", ::testing::TestPartResult::kSkip);
    co_return;
  }
  // squall logs the 403 of the mixed-up pair it refuses.
  testing::ExpectLog expect("squall.general", "^403 POST /xsrf ");
  net::SubprocessOptions options;
  options.stdout_mode = net::Stdio::Stream;
  std::vector<std::string> argv = {testing::kSystemPython, "-c", kTornadoScript, kSecret, get_url("")};
  net::Subprocess python(std::move(argv), std::move(options));
  std::string out = co_await python.stdout_stream()->read_until_close();
  int status = co_await python.wait_for_exit(false);
  CO_ASSERT_EQ(status, 0);
  std::printf("Tornado 6.2 interop verdicts: %s", out.c_str());
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["tornado_cookie_in_squall"], "from-tornado");
  EXPECT_EQ(j["squall_cookie_in_tornado"], "from-squall");
  EXPECT_EQ(j["tornado_token_field_in_squall"], 200);
  EXPECT_EQ(j["tornado_token_header_in_squall"], 200);
  EXPECT_EQ(j["squall_token_field_in_tornado"], 200);
  EXPECT_EQ(j["squall_token_header_in_tornado"], 200);
  EXPECT_EQ(j["mixed_in_squall"], 403);
  EXPECT_EQ(j["mixed_in_tornado"], 403);
}

}  // namespace
}  // namespace squall::web
