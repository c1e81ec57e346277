// Escaping functions as Tornado's tornado.escape: fixed expectations taken
// from Tornado's own tests (tornado/test/escape_test.py), edge cases, and a
// cross-check that runs Debian's Tornado 6.2 over a set of tricky inputs and
// compares every function's output byte for byte.
#include "squall/web/escape.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "../support/run_program.hpp"

namespace squall::web {
namespace {

using nlohmann::json;

std::string hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

TEST(EscapeTest, XhtmlEscapeEscapesTheFiveCharacters) {
  EXPECT_EQ(xhtml_escape("<foo>"), "&lt;foo&gt;");
  EXPECT_EQ(xhtml_escape("<a href=\"x\">it's & more</a>"),
            "&lt;a href=&quot;x&quot;&gt;it&#39;s &amp; more&lt;/a&gt;");
  EXPECT_EQ(xhtml_escape(""), "");
  EXPECT_EQ(xhtml_escape("caf\xc3\xa9"), "caf\xc3\xa9");
  std::string out = "x";
  xhtml_escape_into(out, "<");
  EXPECT_EQ(out, "x&lt;");
}

TEST(EscapeTest, XhtmlUnescapeDecodesNamedAndNumericEntities) {
  EXPECT_EQ(xhtml_unescape("&lt;foo&gt;"), "<foo>");
  EXPECT_EQ(xhtml_unescape("&amp;amp;"), "&amp;");
  EXPECT_EQ(xhtml_unescape("&#39;&#x27;&#X27;"), "'''");
  EXPECT_EQ(xhtml_unescape("&eacute;&Eacute;&euro;"), "\xc3\xa9\xc3\x89\xe2\x82\xac");
  // Tornado's test vectors: unknown and malformed references stay.
  EXPECT_EQ(xhtml_unescape("&#xabc"), "&#xabc");
  EXPECT_EQ(xhtml_unescape("&#abc;"), "&#abc;");
  EXPECT_EQ(xhtml_unescape("&#x1f;"), "\x1f");
  EXPECT_EQ(xhtml_unescape("&nosuch;"), "&nosuch;");
  EXPECT_EQ(xhtml_unescape("&AMP;"), "&AMP;");  // names are case-sensitive
  EXPECT_EQ(xhtml_unescape("& &; &#; &#x;"), "& &; &#; &#x;");
  // Python's int() accepts single underscores between digits.
  EXPECT_EQ(xhtml_unescape("&#6_5;&#x4_1;"), "AA");
  EXPECT_EQ(xhtml_unescape("&#6__5;"), "&#6__5;");
  // Surrogates and values past U+10FFFF are kept: they are not characters.
  EXPECT_EQ(xhtml_unescape("&#xD800;&#1114112;&#99999999999999999999;"), "&#xD800;&#1114112;&#99999999999999999999;");
  EXPECT_EQ(xhtml_unescape("&#x1F600;"), "\xf0\x9f\x98\x80");
  // Python's int() also reads non-ASCII decimal digits (&#\u0663; is "3");
  // squall reads ASCII digits only and keeps such a reference.
  EXPECT_EQ(xhtml_unescape("&#\xd9\xa3;"), "&#\xd9\xa3;");
}

TEST(EscapeTest, JsonEncodeMatchesPythonJsonDumps) {
  EXPECT_EQ(json_encode(json::parse(R"({"a": [1, 2.5, true, null], "b": "x"})")),
            R"({"a": [1, 2.5, true, null], "b": "x"})");
  EXPECT_EQ(json_encode("</script>"), R"("<\/script>")");
  EXPECT_EQ(json_encode("caf\xc3\xa9 \xf0\x9f\x98\x80"), R"("caf\u00e9 \ud83d\ude00")");
  EXPECT_EQ(json_encode("\x01\x7f\n\t\"\\/"), R"("\u0001\u007f\n\t\"\\/")");
  EXPECT_EQ(json_encode(json::array()), "[]");
  EXPECT_EQ(json_encode(json::object()), "{}");
  EXPECT_EQ(json_encode(1.0), "1.0");
  EXPECT_EQ(json_encode(1e16), "1e+16");
  EXPECT_EQ(json_encode(1e15), "1000000000000000.0");
  EXPECT_EQ(json_encode(0.0001), "0.0001");
  EXPECT_EQ(json_encode(0.00001), "1e-05");
  EXPECT_EQ(json_encode(-0.0), "-0.0");
  EXPECT_EQ(json_encode(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(json_encode(18446744073709551615ULL), "18446744073709551615");
  EXPECT_EQ(json_encode(std::string("\xff")), R"("\ufffd")");  // invalid UTF-8
}

TEST(EscapeTest, JsonDecodeParsesAndRejects) {
  EXPECT_EQ(json_decode(R"({"a": [1, "\u00e9"]})"), json::parse(R"({"a": [1, "é"]})"));
  EXPECT_THROW(json_decode("{"), JSONDecodeError);
  EXPECT_THROW(json_decode(""), JSONDecodeError);
  try {
    json_decode("[1,");
    FAIL();
  } catch (const Error& e) {  // a squall::Error, no nlohmann type needed
    EXPECT_NE(std::string(e.what()).find("parse"), std::string::npos);
  }
}

TEST(EscapeTest, UrlEscapeWrapsHttpUrl) {
  EXPECT_EQ(url_escape("a b/c&d"), "a+b%2Fc%26d");
  EXPECT_EQ(url_escape("a b/c&d", false), "a%20b/c%26d");
  EXPECT_EQ(url_unescape("a+b%2Fc%26d"), "a b/c&d");
  EXPECT_EQ(url_unescape("a+b%2F", false), "a+b/");
  EXPECT_EQ(url_unescape("%zz%4"), "%zz%4");
}

TEST(EscapeTest, SqueezeCollapsesControlAndSpaceRuns) {
  EXPECT_EQ(squeeze("  sequences \t of\n\n whitespace  "), "sequences of whitespace");
  EXPECT_EQ(squeeze("\xc2\xa0 x \xe3\x80\x80"), "x");  // U+00A0 and U+3000 are stripped at the ends
  EXPECT_EQ(squeeze("a\x01\x02" "b"), "a b");
  EXPECT_EQ(squeeze(""), "");
}

// Tornado's linkify tests (tornado/test/escape_test.py linkify_tests).
TEST(EscapeTest, LinkifyMatchesTornadosTestVectors) {
  EXPECT_EQ(linkify("hello http://world.com/!"), "hello <a href=\"http://world.com/\">http://world.com/</a>!");
  EXPECT_EQ(linkify("hello http://world.com/with?param=true&stuff=yes"),
            "hello <a href=\"http://world.com/with?param=true&amp;stuff=yes\">"
            "http://world.com/with?param=true&amp;stuff=yes</a>");
  EXPECT_EQ(linkify("http://url.com/w(aaa)"), "<a href=\"http://url.com/w(aaa)\">http://url.com/w(aaa)</a>");
  EXPECT_EQ(linkify("http://url.com/w(a(aa)"), "<a href=\"http://url.com/w\">http://url.com/w</a>(a(aa)");
  EXPECT_EQ(linkify("www.external-link.com"),
            "<a href=\"http://www.external-link.com\">www.external-link.com</a>");
  EXPECT_EQ(linkify("www.external-link.com", {.require_protocol = true}), "www.external-link.com");
  EXPECT_EQ(linkify("javascript:alert(1)"), "javascript:alert(1)");
  EXPECT_EQ(linkify("ftp://x.org/f", {.permitted_protocols = {"ftp"}}), "<a href=\"ftp://x.org/f\">ftp://x.org/f</a>");
  EXPECT_EQ(linkify("<script>http://a.b</script>"),
            "&lt;script&gt;<a href=\"http://a.b\">http://a.b</a>&lt;/script&gt;");
  EXPECT_EQ(linkify("http://www.example.com/wpstyle/?p=364.", {.extra_params = "rel=\"nofollow\" class=\"external\""}),
            "<a href=\"http://www.example.com/wpstyle/?p=364\" rel=\"nofollow\" class=\"external\">"
            "http://www.example.com/wpstyle/?p=364</a>.");
  LinkifyOptions cb;
  cb.extra_params_cb = [](std::string_view href) {
    return href.starts_with("http://example.com") ? std::string("class=\"internal\"")
                                                  : std::string("class=\"external\" rel=\"nofollow\"");
  };
  EXPECT_EQ(linkify("http://example.com/a and http://other.org", cb),
            "<a href=\"http://example.com/a\" class=\"internal\">http://example.com/a</a> and "
            "<a href=\"http://other.org\" class=\"external\" rel=\"nofollow\">http://other.org</a>");
  EXPECT_EQ(linkify("http://www.example.com/wpstyle/?p=364.12345678901234567890123456789",
                    {.shorten = true}),
            "<a href=\"http://www.example.com/wpstyle/?p=364.12345678901234567890123456789\" "
            "title=\"http://www.example.com/wpstyle/?p=364.12345678901234567890123456789\">"
            "http://www.example.com/wpstyle...</a>");
}

// The inputs the cross-check gives Tornado and squall alike.
std::vector<std::string> tricky_inputs() {
  return {
      "",
      "plain text",
      "<script>alert('x' + \"y\")</script> & more",
      "&amp; &lt;&gt; &quot;&#39;&#x27;&#X27; &nbsp;&copy;&eacute;&Eacute; &euro;&hellip;",
      "&amp;amp; &#65;&#x41;&#6_5;&#x4_1;&#0x41;&#x0x41;&#x_41; &#1114111;&#1114112; &#0;",
      "&#xD800;",
      "&unknown; &AMP; &#; &#x; & ; &#xyz; &;&&amp;",
      "&caf\xc3\xa9; &\xc3\xa9; &#\xc3\xa9; &x&#;y",
      "  lots \t of\n\n white\r\nspace \x0b\x0c\x1c\x1d  ",
      "\xc2\xa0\xe3\x80\x80 unicode spaces \xe2\x80\x83\xc2\x85",
      "\x01\x02\x03 control \x7f",
      "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
      "</script><!-- --> </SCRIPT> <\\/",
      "a b+c%20d%2Be%zz%4%",
      "path/with/slashes?and=query&x=1#frag",
      "~_.-!*'();:@&=+$,/?#[]",
      "hello http://world.com/!",
      "hello http://world.com/with?param=true&stuff=yes",
      "http://url.com/w(aaa) and http://url.com/w(a(aa) (http://paren.org/x)",
      "www.external-link.com and www.x.org/path. done",
      "a http://localhost:8888/x/y.html?q=1&r=<2>#f, b",
      "javascript:alert(1) ftp://x.org/f mailto:a@b.c",
      "http://www.example.com/wpstyle/?p=364.12345678901234567890123456789",
      "http://en.wikipedia.org/wiki/Foo_(bar)_baz",
      "https://\xc3\xa9xample.com/caf\xc3\xa9 \xe2\x80\x94http://dash.org",
      "foohttp://x.y -http://a.b x:/y http:///z http:////w http://",
      "www. www.a www.a.b. http://a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z/1234567890/abcdefghi?x=1",
      "http://www.example.com/verylongpathsegment/anotherone/and&amp;more?query=1&x=2",
      "text \"quoted http://q.org/\" 'single http://s.org/'",
  };
}

TEST(EscapeTest, MatchesTornadosEscapeModuleOnTrickyInputs) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  std::vector<std::string> inputs = tricky_inputs();
  const std::string script = R"PY(
import json, sys
from tornado import escape
def h(s):
    if isinstance(s, str):
        s = s.encode('utf-8', 'surrogatepass')
    return s.hex()
inputs = json.loads(sys.argv[1])
results = []
for s in inputs:
    r = {}
    r['xhtml_escape'] = h(escape.xhtml_escape(s))
    try:
        r['xhtml_unescape'] = h(escape.xhtml_unescape(s))
    except (ValueError, OverflowError):
        r['xhtml_unescape'] = None
    r['json_encode'] = h(escape.json_encode(s))
    r['squeeze'] = h(escape.squeeze(s))
    r['url_escape'] = h(escape.url_escape(s))
    r['url_escape_path'] = h(escape.url_escape(s, plus=False))
    r['url_unescape'] = h(escape.url_unescape(s, encoding=None))
    r['url_unescape_path'] = h(escape.url_unescape(s, encoding=None, plus=False))
    r['linkify'] = h(escape.linkify(s))
    r['linkify_shorten'] = h(escape.linkify(s, shorten=True))
    r['linkify_options'] = h(escape.linkify(s, require_protocol=True, extra_params=' rel="nofollow" ',
                                            permitted_protocols=['http', 'ftp', 'mailto']))
    results.append(r)
print(json.dumps(results))
)PY";
  auto result = squall::testing::run_python(script, {json(inputs).dump()});
  ASSERT_TRUE(result && result->status == 0) << "python3 failed";
  json expected = json::parse(result->out);
  ASSERT_EQ(expected.size(), inputs.size());
  LinkifyOptions options{.extra_params = " rel=\"nofollow\" ",
                         .require_protocol = true,
                         .permitted_protocols = {"http", "ftp", "mailto"}};
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string& s = inputs[i];
    const json& e = expected[i];
    SCOPED_TRACE("input: " + s);
    EXPECT_EQ(hex(xhtml_escape(s)), e["xhtml_escape"]);
    if (!e["xhtml_unescape"].is_null()) {
      // Tornado turns &#xD800; into a lone surrogate; squall keeps the entity.
      if (s.find("&#xD800;") == std::string::npos) {
        EXPECT_EQ(hex(xhtml_unescape(s)), e["xhtml_unescape"]);
      }
    }
    EXPECT_EQ(hex(json_encode(s)), e["json_encode"]);
    EXPECT_EQ(hex(squeeze(s)), e["squeeze"]);
    EXPECT_EQ(hex(url_escape(s)), e["url_escape"]);
    EXPECT_EQ(hex(url_escape(s, false)), e["url_escape_path"]);
    EXPECT_EQ(hex(url_unescape(s)), e["url_unescape"]);
    EXPECT_EQ(hex(url_unescape(s, false)), e["url_unescape_path"]);
    EXPECT_EQ(hex(linkify(s)), e["linkify"]) << linkify(s);
    EXPECT_EQ(hex(linkify(s, {.shorten = true})), e["linkify_shorten"]) << linkify(s, {.shorten = true});
    EXPECT_EQ(hex(linkify(s, options)), e["linkify_options"]) << linkify(s, options);
  }
}

TEST(EscapeTest, JsonEncodeMatchesTornadoOnValues) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  // Keys in sorted order: nlohmann::json sorts them, Python keeps source order.
  std::vector<std::string> values = {
      R"({"a": 1, "b": [true, false, null], "c": {"d": "</script>"}})",
      R"([0.1, 1.5, 100.0, 1e16, 1e15, 123456789012345678, 1.7976931348623157e308, 5e-324, 0.0001, 0.00001])",
      R"([-0.0, -1, -1.25e-10, 3.141592653589793, 2.718281828459045, 1e22, 1e21, 12345.678])",
      R"(["caf\u00e9", "\ud83d\ude00", "\u2028\u2029", "\u0000\u001f", "</", "<//", "a</b</c"])",
      R"({"": "", " ": [[]], "nested": [{"x": {}}]})",
      R"(18446744073709551615)",
      R"(-9223372036854775808)",
  };
  const std::string script = R"PY(
import json, sys
from tornado import escape
print(json.dumps([escape.json_encode(json.loads(v)) for v in json.loads(sys.argv[1])]))
)PY";
  auto result = squall::testing::run_python(script, {json(values).dump()});
  ASSERT_TRUE(result && result->status == 0) << "python3 failed";
  json expected = json::parse(result->out);
  ASSERT_EQ(expected.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(json_encode(json::parse(values[i])), expected[i].get<std::string>()) << values[i];
  }
}

}  // namespace
}  // namespace squall::web
