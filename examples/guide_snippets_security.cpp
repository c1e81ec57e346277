// The code shown in docs/guide/cookies-and-security.md, compiled and run, so
// the guide cannot drift from the library. main() runs every block and checks
// what the chapter says it does. Every block takes microseconds, so `--smoke`
// (what CTest runs) and a plain run are the same program.
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "squall/squall.hpp"

namespace {

/// Fails the program, and so the example_guide_snippets_security test, when
/// the guide says something the code does not do.
void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_security: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

// guide: sign
std::optional<std::string> sign_and_read() {
squall::web::CookieSecret secret = "a long random string, kept out of the source";
std::string cookie = squall::web::create_signed_value(secret, "user", "alice");
// ... later, the value comes back in the request's Cookie header:
std::optional<std::string> user = squall::web::decode_signed_value(secret, "user", cookie);
  return user;
}

// guide: max age
std::optional<std::string> read_with_max_age(const squall::web::CookieSecret& secret, const std::string& cookie) {
std::optional<std::string> user = squall::web::decode_signed_value(secret, "user", cookie, {.max_age_days = 7});
  return user;
}

// guide: rotation
std::string rotate(const std::string& old_secret, const std::string& new_secret, std::string cookie) {
auto keys = squall::web::CookieSecret::versioned({{1, old_secret}, {2, new_secret}}, 2);
std::optional<std::string> user = squall::web::decode_signed_value(keys, "user", cookie);
if (user && squall::web::get_signature_key_version(cookie) != keys.key_version()) {
  cookie = squall::web::create_signed_value(keys, "user", *user);  // re-sign with key 2
}
  return cookie;
}

// guide: xsrf get
struct Page {
  std::string set_cookie;  // the _xsrf cookie to set, if any
  std::string form_field;
};
Page xsrf_get(const std::string& xsrf_cookie) {
  Page page;
std::optional<squall::web::XsrfToken> token = squall::web::decode_xsrf_token(xsrf_cookie);
if (!token) {
  token = squall::web::generate_xsrf_token();
  page.set_cookie = squall::web::encode_xsrf_token(*token);  // Set-Cookie: _xsrf=...
}
page.form_field = squall::web::xsrf_form_html(squall::web::encode_xsrf_token(*token));
  return page;
}

// guide: xsrf post
std::pair<int, std::string> xsrf_post(const std::string& xsrf_argument, const std::string& xsrf_cookie) {
squall::web::XsrfCheck result = squall::web::check_xsrf_token(xsrf_argument, xsrf_cookie);
if (result != squall::web::XsrfCheck::ok) {
  return {403, std::string(squall::web::xsrf_check_message(result))};
}
  return {200, "ok"};
}

}  // namespace

int main() {
  check(sign_and_read() == "alice", "a signed value reads back");

  squall::web::CookieSecret secret = "s";
  squall::web::CreateSignedValueOptions ten_days_ago;
  ten_days_ago.now = std::chrono::system_clock::now() - std::chrono::hours(24 * 10);
  std::string old_cookie = squall::web::create_signed_value(secret, "user", "alice", ten_days_ago);
  check(!read_with_max_age(secret, old_cookie), "max_age_days = 7 refuses a 10-day-old value");
  check(squall::web::decode_signed_value(secret, "user", old_cookie) == "alice", "the default max age is 31 days");

  auto first = squall::web::CookieSecret::versioned({{1, "old"}}, 1);
  std::string cookie = squall::web::create_signed_value(first, "user", "bob");
  std::string resigned = rotate("old", "new", cookie);
  check(resigned != cookie, "a value signed with an old key is re-signed");
  check(squall::web::get_signature_key_version(resigned) == 2, "re-signed with the current key");
  check(squall::web::decode_signed_value(squall::web::CookieSecret::versioned({{2, "new"}}, 2), "user", resigned) ==
            "bob",
        "the re-signed value verifies with the new key alone");

  Page page = xsrf_get("");
  check(!page.set_cookie.empty(), "a first visit gets an _xsrf cookie");
  check(page.form_field.rfind("<input type=\"hidden\" name=\"_xsrf\" value=\"2|", 0) == 0, "the form field");
  Page again = xsrf_get(page.set_cookie);
  check(again.set_cookie.empty(), "a good cookie is kept");
  std::size_t start = again.form_field.find("value=\"") + 7;
  std::string submitted = again.form_field.substr(start, again.form_field.find('"', start) - start);
  check(submitted != page.set_cookie, "each page gets a new mask");
  check(xsrf_post(submitted, page.set_cookie).first == 200, "the form's token matches the cookie");
  check(xsrf_post(submitted, "") == std::pair<int, std::string>{403, "XSRF cookie does not match POST argument"}, "no cookie: forbidden");
  check(xsrf_post("", page.set_cookie).first == 403, "no token: forbidden");
  std::puts("guide_snippets_security: ok");
  return 0;
}
