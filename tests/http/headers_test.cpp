// HTTPHeaders: case-insensitive lookups that keep order and repeats,
// set/remove, iteration, strict parsing, serialization, and refusal of
// names and values that would inject header lines.
#include "squall/http/headers.hpp"

#include <gtest/gtest.h>

#include "../support/exact_input.hpp"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace squall::http {
namespace {

using testing::Exact;

using Views = std::vector<std::string_view>;

TEST(HTTPHeadersTest, AddKeepsRepeatsAndLooksUpCaseInsensitively) {
  HTTPHeaders h;
  h.add("Set-Cookie", "a=1");
  h.add("Content-Type", "text/html");
  h.add("set-cookie", "b=2");
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.get("SET-COOKIE").value(), "a=1");
  EXPECT_EQ(h.get_list("Set-Cookie"), (Views{"a=1", "b=2"}));
  EXPECT_EQ(h.get_joined("set-cookie"), "a=1,b=2");
  EXPECT_EQ(h.count("Set-Cookie"), 2u);
  EXPECT_TRUE(h.contains("content-type"));
  EXPECT_FALSE(h.contains("Content-Length"));
  EXPECT_FALSE(h.get("Content-Length").has_value());
  EXPECT_EQ(h.get("Content-Length", "0"), "0");
  EXPECT_EQ(h.get_joined("Content-Length"), "");
  EXPECT_TRUE(h.get_list("X").empty());
}

TEST(HTTPHeadersTest, SetReplacesEveryFieldOfTheName) {
  HTTPHeaders h;
  h.add("A", "1");
  h.add("B", "2");
  h.add("a", "3");
  h.set("A", "4");
  EXPECT_EQ(h.get_list("a"), (Views{"4"}));
  EXPECT_EQ(h.size(), 2u);
  // Setting from a view into the headers themselves is safe.
  h.set("B", *h.get("A"));
  EXPECT_EQ(h.get("B").value(), "4");
}

TEST(HTTPHeadersTest, RemoveCountsAndClearEmpties) {
  HTTPHeaders h;
  h.add("A", "1");
  h.add("a", "2");
  h.add("B", "3");
  EXPECT_EQ(h.remove("A"), 2u);
  EXPECT_EQ(h.remove("A"), 0u);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.get("B").value(), "3");
  h.clear();
  EXPECT_TRUE(h.empty());
}

TEST(HTTPHeadersTest, IteratesInInsertionOrder) {
  HTTPHeaders h;
  h.add("Z", "1");
  h.add("A", "2");
  h.add("z", "3");
  std::string seen;
  for (HTTPHeaders::Field f : h) seen += std::string(f.name) + "=" + std::string(f.value) + ";";
  EXPECT_EQ(seen, "Z=1;A=2;z=3;");
}

TEST(HTTPHeadersTest, ParsesAFieldBlock) {
  HTTPHeaders h = HTTPHeaders::parse(Exact("Host: example.com\r\nX-Empty:\r\nX-Pad: \t v a l \t\r\nhost: again\n").view());
  EXPECT_EQ(h.size(), 4u);
  EXPECT_EQ(h.get_list("HOST"), (Views{"example.com", "again"}));
  EXPECT_EQ(h.get("X-Empty").value(), "");
  EXPECT_EQ(h.get("x-pad").value(), "v a l");
  EXPECT_TRUE(HTTPHeaders::parse("").empty());
}

TEST(HTTPHeadersTest, ParseRejectsMalformedLinesWith400) {
  for (std::string_view bad : {"NoColon\r\n", " Folded: x\r\n", "A: 1\r\n continued\r\n", "Bad Name: x\r\n",
                               ": empty name\r\n", "A: x\x01y\r\n", "A: x\x7fy\r\n", "A: x\ry\r\n"}) {
    try {
      HTTPHeaders::parse(Exact(bad).view());
      ADD_FAILURE() << "accepted " << bad;
    } catch (const HTTPInputError& e) {
      EXPECT_EQ(e.status(), 400) << bad;
    }
  }
}

TEST(HTTPHeadersTest, SerializesAndParsesBack) {
  HTTPHeaders h;
  h.add("Content-Type", "text/plain");
  h.add("Set-Cookie", "a=1");
  h.add("Set-Cookie", "b=2");
  EXPECT_EQ(h.to_string(), "Content-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n");
  std::string out = "HTTP/1.1 200 OK\r\n";
  h.write_to(out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\n" + h.to_string());
  EXPECT_EQ(HTTPHeaders::parse(h.to_string()), h);
  HTTPHeaders other = h;
  other.set("Content-Type", "text/html");
  EXPECT_FALSE(other == h);
}

TEST(HTTPHeadersTest, RefusesNamesAndValuesThatWouldInjectLines) {
  HTTPHeaders h;
  EXPECT_THROW(h.add("X", "a\r\nSet-Cookie: evil=1"), std::invalid_argument);
  EXPECT_THROW(h.add("X", "a\nb"), std::invalid_argument);
  EXPECT_THROW(h.add("X", "a\rb"), std::invalid_argument);
  EXPECT_THROW(h.add("X", std::string("a\0b", 3)), std::invalid_argument);
  EXPECT_THROW(h.add("Bad Name", "v"), std::invalid_argument);
  EXPECT_THROW(h.add("X:Y", "v"), std::invalid_argument);
  EXPECT_THROW(h.add("", "v"), std::invalid_argument);
  EXPECT_THROW(h.set("X\r\n", "v"), std::invalid_argument);
  EXPECT_TRUE(h.empty());
}

TEST(HTTPHeadersTest, TokenAndIequalsHelpers) {
  EXPECT_TRUE(is_token("Content-Type"));
  EXPECT_TRUE(is_token("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token("a b"));
  EXPECT_FALSE(is_token("a:b"));
  EXPECT_FALSE(is_token("\xc3\xa9"));
  EXPECT_TRUE(iequals("Content-LENGTH", "content-length"));
  EXPECT_FALSE(iequals("a", "ab"));
  EXPECT_FALSE(iequals("[", "{"));
}

// Guards against quadratic header handling: 20,000 fields parsed and
// serialized in linear time.
TEST(HTTPHeadersTest, ManyFieldsParseInLinearTime) {
  std::string block;
  for (int i = 0; i < 20000; ++i) block += "X-" + std::to_string(i) + ": v\r\n";
  auto start = std::chrono::steady_clock::now();
  HTTPHeaders h = HTTPHeaders::parse(block);
  EXPECT_EQ(h.size(), 20000u);
  EXPECT_EQ(h.to_string(), block);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace squall::http
