// HTTP dates in the three forms, Content-Type parameters (Tornado's
// _parse_header cases, RFC 2231 values) and reason phrases.
#include "squall/http/httputil.hpp"

#include <gtest/gtest.h>

#include "../support/exact_input.hpp"

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

namespace squall::http {
namespace {

using namespace std::chrono;

using testing::Exact;

std::optional<system_clock::time_point> date(std::string_view s) { return parse_http_date(Exact(s).view()); }
ContentType ctype(std::string_view s) { return parse_content_type(Exact(s).view()); }

const system_clock::time_point kRfcExample{seconds(784111777)};  // Sun, 06 Nov 1994 08:49:37 GMT

TEST(FormatTimestampTest, WritesAnImfFixdate) {
  EXPECT_EQ(format_timestamp(kRfcExample), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_timestamp(system_clock::time_point{}), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_timestamp(kRfcExample + milliseconds(999)), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_timestamp(sys_days(2024y / February / 29) + hours(23) + minutes(59) + seconds(59)),
            "Thu, 29 Feb 2024 23:59:59 GMT");
}

TEST(ParseHttpDateTest, AcceptsAllThreeForms) {
  EXPECT_EQ(date("Sun, 06 Nov 1994 08:49:37 GMT"), kRfcExample);
  EXPECT_EQ(date("Sunday, 06-Nov-94 08:49:37 GMT"), kRfcExample);
  EXPECT_EQ(date("Sun Nov  6 08:49:37 1994"), kRfcExample);
  EXPECT_EQ(date("  sun, 06 nov 1994 08:49:37 gmt "), kRfcExample);
}

TEST(ParseHttpDateTest, RoundTripsFormatTimestamp) {
  for (auto t : {system_clock::time_point{}, kRfcExample, system_clock::time_point{seconds(4102444799)}}) {
    EXPECT_EQ(date(format_timestamp(t)), t);
  }
}

TEST(ParseHttpDateTest, TwoDigitYearsPivotAt69) {
  EXPECT_EQ(date("Thursday, 01-Jan-70 00:00:00 GMT"), system_clock::time_point{});
  EXPECT_EQ(date("Saturday, 01-Jan-00 00:00:00 GMT"), system_clock::time_point{sys_days(2000y / January / 1)});
  EXPECT_EQ(date("Monday, 01-Jan-68 00:00:00 GMT"), system_clock::time_point{sys_days(2068y / January / 1)});
}

TEST(ParseHttpDateTest, FarFutureDatesClampInsteadOfOverflowing) {
  EXPECT_EQ(date("Fri, 31 Dec 9999 23:59:59 GMT"), system_clock::time_point::max());
  EXPECT_EQ(date("Mon, 01 Jan 0001 00:00:00 GMT"), system_clock::time_point::min());
}

TEST(ParseHttpDateTest, RejectsMalformedDates) {
  for (std::string_view bad : {"", "Sun", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC",
                               "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                               "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                               "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMTx",
                               "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
                               "Sun Nov  6 08:49:37 94", "Xyz, 06 Nov 1994 08:49:37 GMT", "Sunday 06-Nov-94",
                               "Sun, 06 Nov 1994 08:49:3", "Sun, 0"}) {
    EXPECT_FALSE(date(bad).has_value()) << bad;
  }
}

TEST(ParseContentTypeTest, SplitsTheTypeAndParameters) {
  ContentType c = ctype("Text/HTML; Charset=\"utf-8\" ; q=1");
  EXPECT_EQ(c.type, "text/html");
  EXPECT_EQ(c.params, (std::map<std::string, std::string>{{"charset", "utf-8"}, {"q", "1"}}));
  EXPECT_EQ(ctype("").type, "");
  EXPECT_TRUE(ctype("a/b; novalue; =x").params.size() == 1);
}

TEST(ParseContentTypeTest, KeepsSemicolonsInsideQuotes) {
  // Tornado's test_parse_header with escaped quotes.
  ContentType c = ctype("form-data; name=\"files\"; filename=\"a\\\";b.txt\"; x=\"\\\\\"");
  EXPECT_EQ(c.type, "form-data");
  EXPECT_EQ(c.params["name"], "files");
  EXPECT_EQ(c.params["filename"], "a\";b.txt");
  EXPECT_EQ(c.params["x"], "\\");
}

TEST(ParseContentTypeTest, DecodesRfc2231Values) {
  EXPECT_EQ(ctype("attachment; filename*=UTF-8''%e2%82%ac%20rates").params["filename"], "\xe2\x82\xac rates");
  EXPECT_EQ(ctype("attachment; filename*=iso-8859-1'en'%E1b.txt").params["filename"], "\xc3\xa1" "b.txt");
  // The extended form wins over the plain one (RFC 6266 section 4.3).
  EXPECT_EQ(ctype("attachment; filename*=UTF-8''x; filename=y").params["filename"], "x");
  // Continuations, Tornado's test_parse_header_continuation.
  EXPECT_EQ(ctype("form-data; name=\"files\"; filename*0=\"foo\"; filename*1=\"bar.txt\"").params["filename"],
            "foobar.txt");
  EXPECT_EQ(ctype("a; t*0*=UTF-8''%41; t*1=\"B\"; t*2*=%43").params["t"], "ABC");
}

// Guards against Tornado's _parseparam, which recounted quotes from the start
// for every ';' (quadratic).
TEST(ParseContentTypeTest, ManyQuotedParametersParseInLinearTime) {
  std::string v = "form-data";
  for (int i = 0; i < 100000; ++i) v += "; p" + std::to_string(i) + "=\"a;b\"";
  auto start = steady_clock::now();
  ContentType c = ctype(v);
  EXPECT_EQ(c.params.size(), 100000u);
  EXPECT_EQ(c.params["p7"], "a;b");
  EXPECT_LT(steady_clock::now() - start, seconds(5));
}

TEST(ResponsesTest, KnowsEveryStandardCode) {
  EXPECT_EQ(responses(200), "OK");
  EXPECT_EQ(responses(404), "Not Found");
  EXPECT_EQ(responses(418), "I'm a Teapot");
  EXPECT_EQ(responses(431), "Request Header Fields Too Large");
  EXPECT_EQ(responses(505), "HTTP Version Not Supported");
  EXPECT_EQ(responses(599), "Unknown");
  int known = 0;
  for (int code = 100; code < 600; ++code) known += responses(code) != "Unknown";
  EXPECT_EQ(known, 62);
}

}  // namespace
}  // namespace squall::http
