// Cookie parsing as Tornado's parse_cookie (its test cases), Set-Cookie
// formatting and its injection checks, and a megabyte of cookies parsed in
// linear time.
#include "squall/http/cookies.hpp"

#include <gtest/gtest.h>

#include "../support/exact_input.hpp"

#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace squall::http {
namespace {

using testing::Exact;

using Cookies = std::map<std::string, std::string>;
Cookies parse(std::string_view s) { return parse_cookie(Exact(s).view()); }

TEST(ParseCookieTest, ParsesNameValuePairs) {
  EXPECT_EQ(parse("chips=ahoy; vienna=finger"), (Cookies{{"chips", "ahoy"}, {"vienna", "finger"}}));
  EXPECT_EQ(parse("a=b; c=[; d=r; f=h"), (Cookies{{"a", "b"}, {"c", "["}, {"d", "r"}, {"f", "h"}}));
}

TEST(ParseCookieTest, UnquotesQuotedValuesWithEscapes) {
  EXPECT_EQ(parse("keebler=\"E=mc2; L=\\\"Loves\\\"; fudge=\\012;\""),
            (Cookies{{"keebler", "\"E=mc2"}, {"L", "\\\"Loves\\\""}, {"fudge", "\\012"}, {"", "\""}}));
  EXPECT_EQ(parse("a=\"x\\\"y\\\\z\""), (Cookies{{"a", "x\"y\\z"}}));
  EXPECT_EQ(parse("a=\"\\101\\060\\477\""), (Cookies{{"a", "A0477"}}));
  EXPECT_EQ(parse("a=\"trailing\\\""), (Cookies{{"a", "trailing\\"}}));
}

TEST(ParseCookieTest, IsLenientAsBrowsersAre) {
  // Tornado's test_cookie_edgecases.
  EXPECT_EQ(parse("keebler=E=mc2"), (Cookies{{"keebler", "E=mc2"}}));
  EXPECT_EQ(parse("key:term=value:term"), (Cookies{{"key:term", "value:term"}}));
  EXPECT_EQ(parse("a=b; c=d; e=f"), (Cookies{{"a", "b"}, {"c", "d"}, {"e", "f"}}));
  EXPECT_EQ(parse("  a  =  b  ;;; "), (Cookies{{"a", "b"}}));
  EXPECT_EQ(parse("novalue"), (Cookies{{"", "novalue"}}));
  EXPECT_EQ(parse("a=1; a=2"), (Cookies{{"a", "2"}}));
  EXPECT_EQ(parse("=b"), (Cookies{{"", "b"}}));
  EXPECT_EQ(parse("a="), (Cookies{{"a", ""}}));
  EXPECT_TRUE(parse("").empty());
  EXPECT_TRUE(parse(";").empty());
  EXPECT_EQ(parse("\""), (Cookies{{"", "\""}}));
}

// Guards against quadratic cookie parsing (Tornado and CPython fixed one):
// a one-megabyte header of tiny cookies and one quoted value full of escapes.
TEST(ParseCookieTest, AMegabyteOfCookiesParsesInLinearTime) {
  std::string many;
  for (int i = 0; many.size() < (1u << 20); ++i) many += "c" + std::to_string(i) + "=v; ";
  std::string escapes = "a=\"" + std::string(1u << 20, '\\') + "\"";
  auto start = std::chrono::steady_clock::now();
  Cookies a = parse(many);
  Cookies b = parse(escapes);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GT(a.size(), 50000u);
  EXPECT_EQ(b["a"], std::string(1u << 19, '\\'));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(FormatSetCookieTest, WritesNameValueAndDefaultPath) {
  EXPECT_EQ(format_set_cookie("foo", "bar"), "foo=bar; Path=/");
  EXPECT_EQ(format_set_cookie("foo", "bar", {.path = ""}), "foo=bar");
}

TEST(FormatSetCookieTest, WritesEveryAttributeInPythonsOrder) {
  using namespace std::chrono;
  CookieOptions options{.domain = "example.com",
                        .path = "/app",
                        .expires = system_clock::time_point(seconds(784111777)),
                        .max_age = seconds(3600),
                        .httponly = true,
                        .secure = true,
                        .samesite = "Lax"};
  EXPECT_EQ(format_set_cookie("sid", "abc", options),
            "sid=abc; Domain=example.com; expires=Sun, 06 Nov 1994 08:49:37 GMT; HttpOnly; Max-Age=3600; Path=/app; "
            "SameSite=Lax; Secure");
}

TEST(FormatSetCookieTest, QuotesValuesOutsideTheLegalSetSoParseCookieRoundTrips) {
  EXPECT_EQ(format_set_cookie("a", "x,y\"z\\", {.path = ""}), "a=\"x,y\\\"z\\\\\"");
  EXPECT_EQ(format_set_cookie("a", "\xc3\xa9", {.path = ""}), "a=\"\\303\\251\"");
  for (std::string value : {"x,y\"z\\", "\xc3\xa9", "plain", "a:b=c"}) {
    std::string header = format_set_cookie("a", value, {.path = ""});
    EXPECT_EQ(parse(header)["a"], value) << header;
  }
}

TEST(FormatSetCookieTest, RejectsInjection) {
  EXPECT_THROW(format_set_cookie("a b", "v"), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a=b", "v"), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("", "v"), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v\r\nSet-Cookie: x=y"), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v; Domain=evil"), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v w"), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", std::string("v\0", 2)), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v\x7f"), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v", {.domain = "x; Secure"}), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v", {.path = "/\n"}), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v", {.samesite = "Lax; x"}), std::invalid_argument);
  EXPECT_THROW(format_set_cookie("a", "v", {.samesite = "Sometimes"}), std::invalid_argument);
  EXPECT_NO_THROW(format_set_cookie("a", "", {.samesite = "None"}));
}

// The examples of docs/guide/http-utilities.md.
TEST(CookiesGuideTest, ReadingAndSettingCookies) {
  auto cookies = parse_cookie("session=abc123; theme=\"dark blue\"");
  EXPECT_EQ(cookies["theme"], "dark blue");

  using namespace std::chrono_literals;
  std::string header = format_set_cookie("session", "abc123",
                                         {.max_age = 3600s, .httponly = true, .secure = true, .samesite = "Lax"});
  EXPECT_EQ(header, "session=abc123; HttpOnly; Max-Age=3600; Path=/; SameSite=Lax; Secure");
}

}  // namespace
}  // namespace squall::http
