// URL helpers: escaping as Python's quote/quote_plus, unescaping that keeps
// invalid escapes, parse_qs (Python's rules, linear on huge inputs),
// url_concat (Tornado's test cases) and split_url. Inputs sit at the end of
// a heap buffer so overreads trip AddressSanitizer.
#include "squall/http/url.hpp"

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

std::string unescape(std::string_view s, bool plus = true) { return url_unescape(Exact(s).view(), plus); }
QueryArguments qs(std::string_view s, bool keep = false) { return parse_qs(Exact(s).view(), keep); }

TEST(UrlEscapeTest, KeepsUnreservedCharactersAndEncodesTheRest) {
  EXPECT_EQ(url_escape("abcXYZ019_.-~"), "abcXYZ019_.-~");
  EXPECT_EQ(url_escape("a b&c=d/e"), "a+b%26c%3Dd%2Fe");
  EXPECT_EQ(url_escape("a b&c=d/e", false), "a%20b%26c%3Dd/e");
  EXPECT_EQ(url_escape("\xc3\xa9\x01"), "%C3%A9%01");
  EXPECT_EQ(url_escape(""), "");
}

TEST(UrlUnescapeTest, DecodesEscapesAndPlusOnlyWhenAsked) {
  EXPECT_EQ(unescape("a+b%20c%2fd"), "a b c/d");
  EXPECT_EQ(unescape("a+b%20c", false), "a+b c");
  EXPECT_EQ(unescape("%C3%A9"), "\xc3\xa9");
  EXPECT_EQ(unescape("%00"), std::string(1, '\0'));
}

TEST(UrlUnescapeTest, InvalidEscapesAreKeptLiterally) {
  EXPECT_EQ(unescape("%"), "%");
  EXPECT_EQ(unescape("%4"), "%4");
  EXPECT_EQ(unescape("a%zzb"), "a%zzb");
  EXPECT_EQ(unescape("%%41"), "%A");
  EXPECT_EQ(unescape("%4g%41"), "%4gA");
}

TEST(UrlEscapeTest, EscapeThenUnescapeRoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(url_unescape(url_escape(all)), all);
  EXPECT_EQ(url_unescape(url_escape(all, false), false), all);
}

TEST(ParseQsTest, SplitsOnAmpersandsAndCollectsRepeats) {
  QueryArguments a = qs("a=1&b=2&a=3");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a["a"], (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(a["b"], (std::vector<std::string>{"2"}));
}

TEST(ParseQsTest, UnescapesNamesAndValues) {
  QueryArguments a = qs("na+me=v%20al%2Bue&x%3Dy=a=b");
  EXPECT_EQ(a["na me"], (std::vector<std::string>{"v al+ue"}));
  EXPECT_EQ(a["x=y"], (std::vector<std::string>{"a=b"}));
}

TEST(ParseQsTest, BlankValuesAreDroppedUnlessKept) {
  EXPECT_TRUE(qs("a=&b&&").empty());
  QueryArguments kept = qs("a=&b&&c=1", true);
  EXPECT_EQ(kept["a"], (std::vector<std::string>{""}));
  EXPECT_EQ(kept["b"], (std::vector<std::string>{""}));
  EXPECT_EQ(kept["c"], (std::vector<std::string>{"1"}));
  EXPECT_EQ(kept.size(), 3u);
}

TEST(ParseQsTest, SemicolonsAreNotSeparators) {
  QueryArguments a = qs("a=1;b=2");
  EXPECT_EQ(a["a"], (std::vector<std::string>{"1;b=2"}));
}

TEST(ParseQsTest, ParseQsIntoExtendsExistingValues) {
  QueryArguments a = qs("a=1");
  parse_qs_into("a=2&b=3", a, false);
  EXPECT_EQ(a["a"], (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(a["b"], (std::vector<std::string>{"3"}));
}

// Guards against quadratic parsing of many repeated arguments (Tornado's
// CVE fixes): 200,000 repeats of one name and 100,000 distinct names.
TEST(ParseQsTest, ManyRepeatedArgumentsParseInLinearTime) {
  std::string q;
  for (int i = 0; i < 200000; ++i) q += "a=1&";
  for (int i = 0; i < 100000; ++i) q += "n" + std::to_string(i) + "=v&";
  auto start = std::chrono::steady_clock::now();
  QueryArguments a = qs(q);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(a["a"].size(), 200000u);
  EXPECT_EQ(a.size(), 100001u);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(UrlConcatTest, AppendsToAUrlWithoutAQuery) {
  EXPECT_EQ(url_concat("https://localhost/path", {{"y", "y"}, {"z", "z"}}), "https://localhost/path?y=y&z=z");
}

TEST(UrlConcatTest, KeepsBlankExistingArguments) {
  EXPECT_EQ(url_concat("https://localhost/path?x", {{"y", "y"}, {"z", "z"}}), "https://localhost/path?x=&y=y&z=z");
  EXPECT_EQ(url_concat("https://localhost/path?x&", {{"y", "y"}, {"z", "z"}}), "https://localhost/path?x=&y=y&z=z");
}

TEST(UrlConcatTest, AppendsAfterExistingArguments) {
  EXPECT_EQ(url_concat("https://localhost/path?a=1&b=2", {{"y", "y"}, {"z", "z"}}),
            "https://localhost/path?a=1&b=2&y=y&z=z");
}

TEST(UrlConcatTest, NoArgumentsLeavesTheUrlAlone) {
  EXPECT_EQ(url_concat("https://localhost/path?r=1&t=2", std::vector<std::pair<std::string, std::string>>{}),
            "https://localhost/path?r=1&t=2");
}

TEST(UrlConcatTest, KeepsTheFragmentAndRepeatsAndEscapes) {
  EXPECT_EQ(url_concat("https://localhost/path?a=1&b=2#frag", {{"y", "y"}}), "https://localhost/path?a=1&b=2&y=y#frag");
  EXPECT_EQ(url_concat("/p", {{"y", "y"}, {"y", "yy"}}), "/p?y=y&y=yy");
  EXPECT_EQ(url_concat("/p", {{"a b", "c&d"}}), "/p?a+b=c%26d");
  QueryArguments args{{"b", {"1", "2"}}, {"a", {"3"}}};
  EXPECT_EQ(url_concat("/p?z=0", args), "/p?z=0&a=3&b=1&b=2");
}

TEST(SplitUrlTest, SplitsAnAbsoluteUrl) {
  std::string url = "http://user:pw@example.com:8080/a/b?x=1&y=2#frag";
  Exact input(url);
  SplitURL u = split_url(input.view());
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.userinfo, "user:pw");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.path, "/a/b");
  EXPECT_EQ(u.query, "x=1&y=2");
  EXPECT_EQ(u.fragment, "frag");
}

TEST(SplitUrlTest, HandlesMissingPartsAndIpv6Hosts) {
  SplitURL a = split_url("https://example.com");
  EXPECT_EQ(a.host, "example.com");
  EXPECT_FALSE(a.port.has_value());
  EXPECT_EQ(a.path, "");
  SplitURL b = split_url("http://[::1]:9000?q#f");
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.port, 9000);
  EXPECT_EQ(b.query, "q");
  EXPECT_EQ(b.fragment, "f");
  SplitURL c = split_url("http://[fe80::1]/x");
  EXPECT_EQ(c.host, "fe80::1");
  EXPECT_FALSE(c.port.has_value());
  SplitURL d = split_url("http://h:/x");
  EXPECT_EQ(d.host, "h");
  EXPECT_FALSE(d.port.has_value());
}

TEST(SplitUrlTest, SplitsAnOriginFormTarget) {
  SplitURL u = split_url("/path/x?a=1#f");
  EXPECT_EQ(u.scheme, "");
  EXPECT_EQ(u.host, "");
  EXPECT_EQ(u.path, "/path/x");
  EXPECT_EQ(u.query, "a=1");
  EXPECT_EQ(u.fragment, "f");
  EXPECT_EQ(split_url("*").path, "*");
}

TEST(SplitUrlTest, BadPortsAndBracketsThrow) {
  EXPECT_THROW(split_url("http://h:65536/"), std::invalid_argument);
  EXPECT_THROW(split_url("http://h:8x/"), std::invalid_argument);
  EXPECT_THROW(split_url("http://[::1/"), std::invalid_argument);
  EXPECT_THROW(split_url("http://[::1]x/"), std::invalid_argument);
  EXPECT_THROW(split_url("http://h]/"), std::invalid_argument);
  EXPECT_EQ(split_url("http://h:65535/").port, 65535);
}

// The examples of docs/guide/http-utilities.md.
TEST(UrlGuideTest, QueryStringsAndUrls) {
  QueryArguments args = parse_qs("tag=c%2B%2B&tag=async&page=2&empty=");
  EXPECT_EQ(args["tag"], (std::vector<std::string>{"c++", "async"}));
  EXPECT_FALSE(args.contains("empty"));  // keep_blank_values = false

  std::string next = url_concat("/search?q=squall#results", {{"page", "3"}, {"sort", "new first"}});
  EXPECT_EQ(next, "/search?q=squall&page=3&sort=new+first#results");

  SplitURL u = split_url("http://[::1]:8888/chat?room=1");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8888);
  EXPECT_EQ(u.path, "/chat");
}

}  // namespace
}  // namespace squall::http
