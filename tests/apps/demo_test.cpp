// The notes board of examples/demo through HTTP and WebSocket, as a browser
// or a script would use it: sign-up and login, protected pages, notes from
// the form and the JSON API, XSRF, attachments, escaping, logout and live
// updates; plus the password hashing it relies on. Each test gets a fresh
// database in a temporary directory.
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "demo/app.hpp"
#include "demo/password.hpp"
#include "squall/core/gen.hpp"
#include "squall/http/url.hpp"
#include "squall/testing.hpp"
#include "squall/testing/http.hpp"
#include "squall/websocket/client.hpp"

namespace {

using namespace std::chrono_literals;
using squall::http::HTTPRequest;
using squall::http::HTTPResponse;
using Fields = std::vector<std::pair<std::string, std::string>>;

/// The cookies a browser would keep: Set-Cookie in, Cookie out. An emptied
/// cookie (clear_cookie) is forgotten.
class CookieJar {
 public:
  void update(const HTTPResponse& response) {
    for (std::string_view line : response.headers.get_list("Set-Cookie")) {
      std::string_view pair = line.substr(0, line.find(';'));
      std::size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      std::string name(pair.substr(0, eq));
      std::string value(pair.substr(eq + 1));
      if (value.empty() || value == "\"\"") {
        cookies_.erase(name);
      } else {
        cookies_[name] = value;
      }
    }
  }
  std::string header() const {
    std::string out;
    for (const auto& [name, value] : cookies_) out += (out.empty() ? "" : "; ") + name + "=" + value;
    return out;
  }
  bool has(const std::string& name) const { return cookies_.count(name) != 0; }
  std::string get(const std::string& name) const {
    auto it = cookies_.find(name);
    return it == cookies_.end() ? std::string() : it->second;
  }

 private:
  std::map<std::string, std::string> cookies_;
};

/// A multipart/form-data body: fields, and files as (field, filename, type, bytes).
struct Multipart {
  static constexpr const char* kBoundary = "demo-test-boundary-7d1f";
  std::string body;

  Multipart& field(const std::string& name, const std::string& value) {
    body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
            value + "\r\n";
    return *this;
  }
  Multipart& file(const std::string& name, const std::string& filename, const std::string& type,
                  const std::string& data) {
    body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + name +
            "\"; filename=\"" + filename + "\"\r\nContent-Type: " + type + "\r\n\r\n" + data + "\r\n";
    return *this;
  }
  std::string finish() const { return body + "--" + kBoundary + "--\r\n"; }
  static std::string content_type() { return std::string("multipart/form-data; boundary=") + kBoundary; }
};

class DemoTest : public squall::testing::AsyncHTTPTest {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "squall-demo-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    AsyncHTTPTest::SetUp();
  }
  ~DemoTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<squall::http::HTTPServerConnectionDelegate> get_app() override {
    demo::Config config;
    config.db_path = (dir_ / "notes.db").string();
    config.data_dir = (dir_ / "data").string();
    config.cookie_secret = "a secret for the demo tests";
    config.password_iterations = 1000;  // fast; the format and checks are the same
    return demo::make_application(config);
  }

  /// A request carrying `jar`'s cookies; redirects are not followed.
  HTTPRequest request(const CookieJar& jar, std::string method = "GET", std::optional<std::string> body = {}) {
    HTTPRequest r;
    r.method = std::move(method);
    r.body = std::move(body);
    r.follow_redirects = false;
    if (!jar.header().empty()) r.headers.add("Cookie", jar.header());
    return r;
  }

  /// GET with `jar`'s cookies, keeping what the server sets.
  squall::Future<HTTPResponse> get(std::string_view path, CookieJar& jar) {
    HTTPRequest r = request(jar);
    HTTPResponse response = co_await fetch(path, r);
    jar.update(response);
    co_return response;
  }

  /// POSTs an urlencoded form with `jar`'s cookies and, unless
  /// `with_xsrf` is false, the _xsrf field from the cookie.
  /// Callers name `fields` in a variable first: GCC 12 mishandles an
  /// initializer list built inside a co_await expression.
  squall::Future<HTTPResponse> post_form(std::string_view path, Fields fields, CookieJar& jar, bool with_xsrf = true) {
    if (with_xsrf && !jar.has("_xsrf")) co_await get("/login", jar);  // any form page sets the cookie
    std::string body;
    if (with_xsrf) fields.emplace_back("_xsrf", jar.get("_xsrf"));
    for (const auto& [name, value] : fields) {
      body += (body.empty() ? "" : "&") + squall::http::url_escape(name) + "=" + squall::http::url_escape(value);
    }
    HTTPRequest r = request(jar, "POST", body);
    r.headers.add("Content-Type", "application/x-www-form-urlencoded");
    HTTPResponse response = co_await fetch(path, r);
    jar.update(response);
    co_return response;
  }

  /// A new user, logged in through `jar`.
  squall::Future<void> sign_up(std::string username, std::string password, CookieJar& jar) {
    Fields credentials = {{"username", username}, {"password", password}};
    HTTPResponse response = co_await post_form("/signup", credentials, jar);
    EXPECT_EQ(response.code, 302) << response.body;
    EXPECT_TRUE(jar.has("user"));
  }

  /// POST /api/notes with the X-XSRFToken header.
  squall::Future<HTTPResponse> post_api_note(std::string text, CookieJar& jar) {
    nlohmann::json input = {{"body", text}};
    HTTPRequest r = request(jar, "POST", input.dump());
    r.headers.add("Content-Type", "application/json");
    r.headers.add("X-XSRFToken", jar.get("_xsrf"));
    HTTPResponse response = co_await fetch("/api/notes", r);
    co_return response;
  }

  /// POST /notes as the page's form does (multipart), with an optional file.
  squall::Future<HTTPResponse> post_form_note(std::string text, CookieJar& jar, std::string file_data = {},
                                              std::string filename = {}) {
    Multipart form;
    form.field("_xsrf", jar.get("_xsrf")).field("body", text);
    if (!filename.empty()) form.file("attachment", filename, "application/octet-stream", file_data);
    HTTPRequest r = request(jar, "POST", form.finish());
    r.headers.add("Content-Type", Multipart::content_type());
    HTTPResponse response = co_await fetch("/notes", r);
    co_return response;
  }

  std::filesystem::path dir_;
};

std::string location(const HTTPResponse& response) { return std::string(response.headers.get("Location", "")); }

SQUALL_ASYNC_TEST(DemoTest, SignUpSetsTheSignedUserCookieAndRedirectsHome) {
  CookieJar jar;
  HTTPResponse page = co_await get("/signup", jar);
  EXPECT_EQ(page.code, 200);
  EXPECT_NE(page.body.find(R"(<form id="signup" method="post" action="/signup")"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<input name="password" type="password")"), std::string::npos);

  Fields credentials = {{"username", "ada"}, {"password", "s3cret"}};
  HTTPResponse signed_up = co_await post_form("/signup", credentials, jar);
  EXPECT_EQ(signed_up.code, 302);
  EXPECT_EQ(location(signed_up), "/");
  EXPECT_TRUE(jar.has("user"));
  EXPECT_EQ(jar.get("user").find("ada"), std::string::npos) << "the cookie is signed, base64: not the plain name";

  HTTPResponse home = co_await get("/", jar);
  EXPECT_EQ(home.code, 200);
  EXPECT_NE(home.body.find(R"(<form id="new-note" method="post" action="/notes" enctype="multipart/form-data")"),
            std::string::npos);
  EXPECT_NE(home.body.find(R"(<ul id="notes">)"), std::string::npos);
  EXPECT_NE(home.body.find(R"(<form id="logout" method="post" action="/logout")"), std::string::npos);
}

SQUALL_ASYNC_TEST(DemoTest, ADuplicateUsernameIsRejected) {
  CookieJar first;
  co_await sign_up("grace", "one", first);
  CookieJar second;
  Fields same_name = {{"username", "grace"}, {"password", "two"}};
  HTTPResponse again = co_await post_form("/signup", same_name, second);
  EXPECT_EQ(again.code, 409);
  EXPECT_NE(again.body.find(R"(class="error")"), std::string::npos);
  EXPECT_FALSE(second.has("user"));

  // The first password still works, the second never did.
  CookieJar login;
  Fields wrong_password = {{"username", "grace"}, {"password", "two"}};
  HTTPResponse wrong = co_await post_form("/login", wrong_password, login);
  EXPECT_EQ(wrong.code, 403);
  Fields right_password = {{"username", "grace"}, {"password", "one"}};
  HTTPResponse right = co_await post_form("/login", right_password, login);
  EXPECT_EQ(right.code, 302);
}

SQUALL_ASYNC_TEST(DemoTest, LoginWithTheRightPasswordGoesToNextOnThisSiteOnly) {
  CookieJar signup;
  co_await sign_up("linus", "penguin", signup);

  CookieJar jar;
  HTTPResponse page = co_await get("/login?next=%2Fapi%2Fnotes", jar);
  EXPECT_EQ(page.code, 200);
  EXPECT_NE(page.body.find(R"(<form id="login" method="post" action="/login")"), std::string::npos);
  EXPECT_NE(page.body.find(R"(name="next" value="/api/notes")"), std::string::npos);

  Fields with_next = {{"username", "linus"}, {"password", "penguin"}, {"next", "/api/notes"}};
  HTTPResponse ok = co_await post_form("/login", with_next, jar);
  EXPECT_EQ(ok.code, 302);
  EXPECT_EQ(location(ok), "/api/notes");
  EXPECT_TRUE(jar.has("user"));

  CookieJar other;
  Fields offsite_next = {{"username", "linus"}, {"password", "penguin"}, {"next", "//evil.example/"}};
  HTTPResponse offsite = co_await post_form("/login", offsite_next, other);
  EXPECT_EQ(offsite.code, 302);
  EXPECT_EQ(location(offsite), "/");
}

SQUALL_ASYNC_TEST(DemoTest, LoginWithABadPasswordOrUnknownUserIs403WithAnError) {
  CookieJar signup;
  co_await sign_up("alan", "enigma", signup);

  CookieJar jar;
  Fields bad_password = {{"username", "alan"}, {"password", "bombe"}};
  HTTPResponse bad = co_await post_form("/login", bad_password, jar);
  EXPECT_EQ(bad.code, 403);
  EXPECT_NE(bad.body.find(R"(class="error")"), std::string::npos);
  EXPECT_NE(bad.body.find(R"(<form id="login")"), std::string::npos);
  EXPECT_FALSE(jar.has("user"));

  Fields unknown_user = {{"username", "nobody"}, {"password", "enigma"}};
  HTTPResponse unknown = co_await post_form("/login", unknown_user, jar);
  EXPECT_EQ(unknown.code, 403);
  EXPECT_FALSE(jar.has("user"));
}

SQUALL_ASYNC_TEST(DemoTest, ProtectedPagesAreClosedWhenLoggedOut) {
  CookieJar anonymous;
  HTTPResponse home = co_await get("/", anonymous);
  EXPECT_EQ(home.code, 302);
  EXPECT_EQ(location(home), "/login?next=%2F");

  HTTPResponse api = co_await get("/api/notes", anonymous);
  EXPECT_EQ(api.code, 403);

  // A forged cookie is no login either.
  HTTPRequest r;
  r.follow_redirects = false;
  r.headers.add("Cookie", "user=ada");
  HTTPResponse forged_home = co_await fetch("/", r);
  EXPECT_EQ(forged_home.code, 302);

  int status = 0;
  HTTPRequest ws;
  ws.url = "ws://127.0.0.1:" + std::to_string(get_http_port()) + "/ws/notes";
  try {
    auto unexpected = co_await squall::websocket::websocket_connect(ws);
    ADD_FAILURE() << "an anonymous WebSocket was accepted";
  } catch (const squall::websocket::WebSocketHandshakeError& e) {
    status = e.code();
  }
  EXPECT_EQ(status, 403);
}

SQUALL_ASYNC_TEST(DemoTest, ANoteFromTheFormIsOnThePageNewestFirst) {
  CookieJar jar;
  co_await sign_up("ada", "pw", jar);
  HTTPResponse first = co_await post_form_note("first note", jar);
  EXPECT_EQ(first.code, 302);
  EXPECT_EQ(location(first), "/");
  HTTPResponse second = co_await post_form_note("second note", jar);
  EXPECT_EQ(second.code, 302);

  HTTPResponse home = co_await get("/", jar);
  std::size_t newer = home.body.find(R"(<p class="note-body">second note</p>)");
  std::size_t older = home.body.find(R"(<p class="note-body">first note</p>)");
  CO_ASSERT_NE(newer, std::string::npos) << home.body;
  CO_ASSERT_NE(older, std::string::npos);
  EXPECT_LT(newer, older);
  EXPECT_NE(home.body.find(R"(<li class="note")"), std::string::npos);

  // A script posting the same form asks for JSON and gets the note back.
  Multipart form;
  form.field("_xsrf", jar.get("_xsrf")).field("body", "third note");
  HTTPRequest scripted = request(jar, "POST", form.finish());
  scripted.headers.add("Content-Type", Multipart::content_type());
  scripted.headers.add("Accept", "application/json");
  HTTPResponse created = co_await fetch("/notes", scripted);
  EXPECT_EQ(created.code, 201);
  EXPECT_EQ(nlohmann::json::parse(created.body)["body"], "third note");
}

SQUALL_ASYNC_TEST(DemoTest, ANoteFromTheJsonApiIsListedByTheApi) {
  CookieJar jar;
  co_await sign_up("ada", "pw", jar);
  HTTPResponse posted = co_await post_api_note("from the API", jar);
  EXPECT_EQ(posted.code, 201);
  nlohmann::json note = nlohmann::json::parse(posted.body);
  EXPECT_EQ(note["body"], "from the API");
  EXPECT_EQ(note["author"], "ada");
  EXPECT_TRUE(note["attachment"].is_null());

  HTTPResponse listed = co_await get("/api/notes", jar);
  EXPECT_EQ(listed.code, 200);
  EXPECT_EQ(listed.headers.get("Content-Type", ""), "application/json; charset=UTF-8");
  nlohmann::json notes = nlohmann::json::parse(listed.body)["notes"];
  CO_ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0]["id"], note["id"]);

  nlohmann::json not_text = {{"body", 42}};
  HTTPRequest bad = request(jar, "POST", not_text.dump());
  bad.headers.add("X-XSRFToken", jar.get("_xsrf"));
  squall::testing::ExpectLog expect("squall.general", "^400 POST /api/notes");
  HTTPResponse rejected = co_await fetch("/api/notes", bad);
  EXPECT_EQ(rejected.code, 400);
}

SQUALL_ASYNC_TEST(DemoTest, PostsWithoutTheXsrfTokenAre403) {
  CookieJar jar;
  co_await sign_up("ada", "pw", jar);
  squall::testing::ExpectLog expect("squall.general", "^403 POST ");

  nlohmann::json input = {{"body", "no token"}};
  HTTPRequest api = request(jar, "POST", input.dump());
  HTTPResponse api_response = co_await fetch("/api/notes", api);
  EXPECT_EQ(api_response.code, 403);

  Fields no_token = {{"username", "ada"}, {"password", "pw"}};
  HTTPResponse form = co_await post_form("/login", no_token, jar, false);
  EXPECT_EQ(form.code, 403);

  HTTPRequest wrong_token = request(jar, "POST", input.dump());
  wrong_token.headers.add("X-XSRFToken", "2|00000000|00000000000000000000000000000000|1");
  HTTPResponse wrong = co_await fetch("/api/notes", wrong_token);
  EXPECT_EQ(wrong.code, 403);

  HTTPResponse listed = co_await get("/api/notes", jar);
  EXPECT_TRUE(nlohmann::json::parse(listed.body)["notes"].empty());
}

SQUALL_ASYNC_TEST(DemoTest, AnAttachmentComesBackByteIdentical) {
  CookieJar jar;
  co_await sign_up("ada", "pw", jar);
  std::string bytes;
  for (int round = 0; round < 3; ++round) {
    for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);  // every byte value, NUL and CR LF included
  }
  HTTPResponse posted = co_await post_form_note("with a file", jar, bytes, "blob.bin");
  EXPECT_EQ(posted.code, 302);

  HTTPResponse listed = co_await get("/api/notes", jar);
  nlohmann::json note = nlohmann::json::parse(listed.body)["notes"][0];
  CO_ASSERT_TRUE(note["attachment"].is_object()) << listed.body;
  EXPECT_EQ(note["attachment"]["name"], "blob.bin");
  EXPECT_EQ(note["attachment"]["size"], bytes.size());

  HTTPResponse file = co_await get(note["attachment"]["url"].get<std::string>(), jar);
  EXPECT_EQ(file.code, 200);
  EXPECT_EQ(file.body, bytes);
  EXPECT_EQ(file.headers.get("Content-Disposition", ""), "attachment; filename=\"blob.bin\"");
  EXPECT_EQ(file.headers.get("X-Content-Type-Options", ""), "nosniff");

  HTTPResponse home = co_await get("/", jar);
  EXPECT_NE(home.body.find(note["attachment"]["url"].get<std::string>()), std::string::npos);

  HTTPResponse missing = co_await get("/attachments/999999", jar);
  EXPECT_EQ(missing.code, 404);
  CookieJar anonymous;
  HTTPResponse anonymous_file = co_await get(note["attachment"]["url"].get<std::string>(), anonymous);
  EXPECT_EQ(anonymous_file.code, 302);
}

SQUALL_ASYNC_TEST(DemoTest, MarkupInANoteIsEscapedOnThePage) {
  CookieJar jar;
  co_await sign_up("mallory", "pw", jar);
  HTTPResponse posted = co_await post_form_note("<script>alert('x')</script> & <b>bold</b>", jar);
  EXPECT_EQ(posted.code, 302);
  HTTPResponse home = co_await get("/", jar);
  EXPECT_EQ(home.body.find("<script>alert"), std::string::npos);
  EXPECT_EQ(home.body.find("<b>bold"), std::string::npos);
  EXPECT_NE(home.body.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"),
            std::string::npos)
      << home.body;
}

SQUALL_ASYNC_TEST(DemoTest, LogoutClearsTheUserCookie) {
  CookieJar jar;
  co_await sign_up("ada", "pw", jar);
  Fields no_fields = {};
  HTTPResponse out = co_await post_form("/logout", no_fields, jar);
  EXPECT_EQ(out.code, 302);
  EXPECT_EQ(location(out), "/login");
  bool cleared = false;
  for (std::string_view line : out.headers.get_list("Set-Cookie")) {
    if (line.rfind("user=", 0) == 0) cleared = line.find("expires=") != std::string_view::npos;
  }
  EXPECT_TRUE(cleared);
  EXPECT_FALSE(jar.has("user"));
  HTTPResponse home = co_await get("/", jar);
  EXPECT_EQ(home.code, 302);
}

SQUALL_ASYNC_TEST(DemoTest, AnOpenSocketReceivesANotePostedByAnotherRequest) {
  CookieJar reader;
  co_await sign_up("reader", "pw", reader);
  CookieJar writer;
  co_await sign_up("writer", "pw", writer);

  HTTPRequest ws;
  ws.url = "ws://127.0.0.1:" + std::to_string(get_http_port()) + "/ws/notes";
  ws.headers.add("Cookie", reader.header());
  auto live = co_await squall::websocket::websocket_connect(ws);

  HTTPResponse from_api = co_await post_api_note("pushed <live>", writer);
  EXPECT_EQ(from_api.code, 201);
  auto first = co_await squall::with_timeout(3s, live.read_message());
  CO_ASSERT_TRUE(first.has_value());
  nlohmann::json message = nlohmann::json::parse(first->data);
  EXPECT_EQ(message["type"], "note");
  EXPECT_EQ(message["note"]["body"], "pushed <live>");
  EXPECT_EQ(message["note"]["author"], "writer");

  HTTPResponse from_form = co_await post_form_note("from the form", writer);
  EXPECT_EQ(from_form.code, 302);
  auto second = co_await squall::with_timeout(3s, live.read_message());
  CO_ASSERT_TRUE(second.has_value());
  EXPECT_EQ(nlohmann::json::parse(second->data)["note"]["body"], "from the form");

  live.close(1000);
  co_await squall::with_timeout(3s, live.wait_closed());
}

SQUALL_ASYNC_TEST(DemoTest, TheNotesPageLinksVersionedStaticFilesThatAreServed) {
  CookieJar jar;
  co_await sign_up("ada", "pw", jar);
  HTTPResponse home = co_await get("/", jar);
  std::size_t at = home.body.find("/static/app.js?v=");
  CO_ASSERT_NE(at, std::string::npos);
  std::string url = home.body.substr(at, home.body.find('"', at) - at);
  HTTPResponse script = co_await get(url, jar);
  EXPECT_EQ(script.code, 200);
  EXPECT_NE(script.body.find("/ws/notes"), std::string::npos);
  EXPECT_NE(home.body.find("/static/style.css?v="), std::string::npos);
}

TEST(DemoPassword, AHashVerifiesItsPasswordOnly) {
  std::string hash = demo::hash_password("correct horse", 1000);
  EXPECT_EQ(hash.rfind("pbkdf2_sha256$1000$", 0), 0u);
  EXPECT_TRUE(demo::verify_password("correct horse", hash));
  EXPECT_FALSE(demo::verify_password("correct horsf", hash));
  EXPECT_FALSE(demo::verify_password("", hash));
  EXPECT_NE(demo::hash_password("correct horse", 1000), hash) << "each hash has its own salt";
}

TEST(DemoPassword, AMalformedStoredHashNeverMatches) {
  std::string good = demo::hash_password("pw", 1000);
  std::string salt_and_hash = good.substr(good.find('$', good.find('$') + 1));  // "$<salt>$<hash>"
  std::vector<std::string> bad = {
      "",
      "pw",
      "$$$",
      "pbkdf2_sha256",
      "md5$1000" + salt_and_hash,
      "pbkdf2_sha256$0" + salt_and_hash,
      "pbkdf2_sha256$-5" + salt_and_hash,
      "pbkdf2_sha256$99999999999" + salt_and_hash,
      "pbkdf2_sha256$1000x" + salt_and_hash,
      good.substr(0, good.size() - 2),  // truncated hash
      good + "00",                      // hash too long
      good + "$extra",
      "pbkdf2_sha256$1000$$" + good.substr(good.rfind('$') + 1),  // no salt
      "pbkdf2_sha256$1000$zz" + good.substr(good.rfind('$')),     // bad hex
  };
  for (const std::string& stored : bad) {
    EXPECT_FALSE(demo::verify_password("pw", stored)) << stored;
    EXPECT_FALSE(demo::verify_password("", stored)) << stored;
  }
  EXPECT_TRUE(demo::verify_password("pw", good));
}

}  // namespace
