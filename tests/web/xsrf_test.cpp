// XSRF tokens as Tornado's RequestHandler makes and checks them: masked
// version-2 tokens, version-1 hex (and raw) tokens, Tornado's XSRFTest
// cases, malformed values, and interop both ways with Debian's Tornado 6.2
// driven through its real RequestHandler.
#include "squall/web/xsrf.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/exact_input.hpp"
#include "../support/run_program.hpp"

namespace squall::web {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;
using testing::Exact;

constexpr std::int64_t kPresent = 1300000000;

system_clock::time_point at(std::int64_t t) { return system_clock::time_point(seconds(t)); }

std::optional<XsrfToken> decode(std::string_view value, std::int64_t now = kPresent) {
  Exact exact(value);
  return decode_xsrf_token(exact.view(), at(now));
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

XsrfToken token_of(std::string bytes, std::int64_t timestamp = kPresent) {
  XsrfToken t;
  t.token = std::move(bytes);
  t.timestamp = std::chrono::sys_seconds(seconds(timestamp));
  return t;
}

bool is_hex(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

TEST(XsrfTokenTest, GeneratesSixteenFreshRandomBytes) {
  XsrfToken a = generate_xsrf_token(at(kPresent));
  XsrfToken b = generate_xsrf_token(at(kPresent));
  EXPECT_EQ(a.version, 0);
  EXPECT_EQ(a.token.size(), kXsrfTokenBytes);
  EXPECT_NE(a.token, b.token);
  EXPECT_EQ(a.timestamp.time_since_epoch(), seconds(kPresent));
  auto now = std::chrono::floor<seconds>(system_clock::now());
  XsrfToken c = generate_xsrf_token();
  EXPECT_LE(c.timestamp - now, seconds(5));
}

TEST(XsrfTokenTest, EncodesVersionTwoAsMaskedHex) {
  XsrfToken t = token_of(std::string("0123456789abcdef"), 1234);
  std::string encoded = encode_xsrf_token(t);
  // "2|<8 hex>|<32 hex>|1234"
  ASSERT_EQ(encoded.size(), 2u + 8 + 1 + 32 + 1 + 4) << encoded;
  EXPECT_EQ(encoded.substr(0, 2), "2|");
  EXPECT_TRUE(is_hex(encoded.substr(2, 8)));
  EXPECT_EQ(encoded[10], '|');
  EXPECT_TRUE(is_hex(encoded.substr(11, 32)));
  EXPECT_EQ(encoded.substr(43), "|1234");
  EXPECT_EQ(encoded.find(hex(t.token)), std::string::npos) << "the token must not appear unmasked";
  auto back = decode(encoded);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->version, 2);
  EXPECT_EQ(back->token, t.token);
  EXPECT_EQ(back->timestamp.time_since_epoch(), seconds(1234));
}

TEST(XsrfTokenTest, MaskIsTheWebSocketXorOverFourBytes) {
  // mask 01 02 03 04 over "ABCDEF" (41 42 43 44 45 46)
  auto t = decode("2|01020304|404040404444|77");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "ABCDEF");
  EXPECT_EQ(t->timestamp.time_since_epoch(), seconds(77));
  // Mask hex may be upper case, as binascii.a2b_hex allows.
  auto upper = decode("2|0A0B0C0D|4B|1");
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->token, "A");
}

TEST(XsrfTokenTest, EachEncodingUsesANewMaskForTheSameToken) {
  XsrfToken t = generate_xsrf_token(at(kPresent));
  std::set<std::string> seen;
  std::vector<std::string> encodings;
  for (int i = 0; i < 20; ++i) {
    encodings.push_back(encode_xsrf_token(t));
    seen.insert(encodings.back());
  }
  EXPECT_EQ(seen.size(), encodings.size());
  for (const auto& a : encodings) {
    EXPECT_EQ(decode(a)->token, t.token);
    for (const auto& b : encodings) EXPECT_EQ(check_xsrf_token(a, b), XsrfCheck::ok);
  }
}

TEST(XsrfTokenTest, VersionOneIsPlainHexAndStampedWithNow) {
  XsrfToken t = token_of(std::string("\x00\x01\xfe\xff", 4));
  EXPECT_EQ(encode_xsrf_token(t, 1), "0001feff");
  EXPECT_EQ(encode_xsrf_token(t, 1), "0001feff");  // no mask: stable
  auto back = decode("0001feff", 555);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->version, 1);
  EXPECT_EQ(back->token, t.token);
  EXPECT_EQ(back->timestamp.time_since_epoch(), seconds(555));
  EXPECT_EQ(decode("0001FEFF")->token, t.token);
}

TEST(XsrfTokenTest, VersionOneFallsBackToTheRawValue) {
  // Tornado: a value that is not hex is the token itself.
  EXPECT_EQ(decode("xoxo")->token, "xoxo");
  EXPECT_EQ(decode("abc")->token, "abc");  // odd length
  EXPECT_EQ(decode("0|x")->token, "0|x");  // no valid version prefix
  EXPECT_EQ(decode("a|b|c")->token, "a|b|c");
  // '.' does not match a newline in Tornado's version regex: not version 2.
  auto newline = decode("2|01020304|41|1\nx");
  ASSERT_TRUE(newline);
  EXPECT_EQ(newline->version, 1);
  EXPECT_EQ(newline->token, "2|01020304|41|1\nx");
  // ...except as the very last byte, where '$' matches before it.
  EXPECT_EQ(decode("2|01020304|41|1\n"), std::nullopt);
}

TEST(XsrfTokenTest, VersionsOneAndTwoAreCrossCompatible) {
  XsrfToken t = generate_xsrf_token(at(kPresent));
  std::string v1 = encode_xsrf_token(t, 1), v2 = encode_xsrf_token(t, 2);
  EXPECT_EQ(check_xsrf_token(v1, v2), XsrfCheck::ok);
  EXPECT_EQ(check_xsrf_token(v2, v1), XsrfCheck::ok);
  EXPECT_EQ(check_xsrf_token(v1, v1), XsrfCheck::ok);
}

TEST(XsrfTokenTest, ChecksAsTornadosXsrfTest) {
  XsrfToken mine = generate_xsrf_token(at(kPresent)), theirs = generate_xsrf_token(at(kPresent));
  std::string token = encode_xsrf_token(mine), token2 = encode_xsrf_token(theirs);
  EXPECT_EQ(check_xsrf_token("", ""), XsrfCheck::missing);             // no token
  EXPECT_EQ(check_xsrf_token(token, ""), XsrfCheck::mismatch);         // body, no cookie
  EXPECT_EQ(check_xsrf_token("3|", token), XsrfCheck::invalid_format);  // argument invalid
  EXPECT_EQ(check_xsrf_token(token, "3|"), XsrfCheck::mismatch);       // cookie invalid
  EXPECT_EQ(check_xsrf_token("", token), XsrfCheck::missing);          // cookie, no body
  EXPECT_EQ(check_xsrf_token("deadbeef", "deadbeef"), XsrfCheck::ok);  // short token
  EXPECT_EQ(check_xsrf_token("xoxo", "xoxo"), XsrfCheck::ok);          // non-hex token
  EXPECT_EQ(check_xsrf_token(token, token), XsrfCheck::ok);
  EXPECT_EQ(check_xsrf_token(token2, token2), XsrfCheck::ok);
  EXPECT_EQ(check_xsrf_token(token, token2), XsrfCheck::mismatch);  // cross user
  EXPECT_EQ(check_xsrf_token(token2, token), XsrfCheck::mismatch);
  // A token refreshed from an old cookie still matches it.
  EXPECT_EQ(check_xsrf_token(token, encode_xsrf_token(*decode(token))), XsrfCheck::ok);
}

TEST(XsrfTokenTest, ComparesTokensNotTheirEncodings) {
  // A one-byte difference anywhere in the token is a mismatch.
  XsrfToken t = generate_xsrf_token(at(kPresent));
  std::string cookie = encode_xsrf_token(t);
  for (std::size_t i = 0; i < t.token.size(); ++i) {
    XsrfToken other = t;
    other.token[i] = static_cast<char>(other.token[i] ^ 1);
    EXPECT_EQ(check_xsrf_token(encode_xsrf_token(other), cookie), XsrfCheck::mismatch) << i;
  }
  // A prefix of the token is not the token.
  XsrfToken prefix = token_of(t.token.substr(0, 15));
  EXPECT_EQ(check_xsrf_token(encode_xsrf_token(prefix), cookie), XsrfCheck::mismatch);
}

TEST(XsrfTokenTest, MalformedVersionTwoIsNoToken) {
  for (std::string_view bad : {
           "2|", "2||", "2|||", "2||||",
           "2|0102030|41|1",         // odd mask
           "2|010203|41|1",          // 3-byte mask
           "2|0102030405|41|1",      // 5-byte mask
           "2||41|1",                // no mask
           "2|zz020304|41|1",        // not hex
           "2|01020304|4|1",         // odd token
           "2|01020304|4g|1",        // not hex
           "2|01020304||1",          // empty token
           "2|01020304|41|",         // no timestamp
           "2|01020304|41|x",        // timestamp not a number
           "2|01020304|41|-1",
           "2|01020304|41|+1",
           "2|01020304|41| 1",
           "2|01020304|41|99999999999999999999",
           "2|01020304|41|1|",       // five fields
           "2|01020304|41",          // three fields
           "1|abc", "3|01020304|41|1", "10|01020304|41|1", "99999999999999999999999|x",
       }) {
    EXPECT_EQ(decode(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(decode(""), std::nullopt);
}

TEST(XsrfTokenTest, EncodingRejectsWhatItCannotWrite) {
  EXPECT_THROW(encode_xsrf_token(token_of("")), std::invalid_argument);
  EXPECT_THROW(encode_xsrf_token(token_of("x"), 3), std::invalid_argument);
  EXPECT_THROW(encode_xsrf_token(token_of("x"), 0), std::invalid_argument);
}

TEST(XsrfTokenTest, FormHtmlIsTornados) {
  EXPECT_EQ(xsrf_form_html("2|01020304|41|1"), "<input type=\"hidden\" name=\"_xsrf\" value=\"2|01020304|41|1\"/>");
  EXPECT_EQ(xsrf_form_html("a\"b<c>d&e'f"),
            "<input type=\"hidden\" name=\"_xsrf\" value=\"a&quot;b&lt;c&gt;d&amp;e&#39;f\"/>");
}

TEST(XsrfTokenTest, CheckMessagesAreTornados) {
  EXPECT_EQ(xsrf_check_message(XsrfCheck::ok), "");
  EXPECT_EQ(xsrf_check_message(XsrfCheck::missing), "'_xsrf' argument missing from POST");
  EXPECT_EQ(xsrf_check_message(XsrfCheck::invalid_format), "'_xsrf' argument has invalid format");
  EXPECT_EQ(xsrf_check_message(XsrfCheck::mismatch), "XSRF cookie does not match POST argument");
}

TEST(XsrfTokenTest, NeverThrowsOnArbitraryInput) {
  std::mt19937 rng(11);
  std::string seed = encode_xsrf_token(generate_xsrf_token(at(kPresent)));
  const std::string alphabet = "0123456789abcdefABCDEFxyz|2\n ";
  for (int i = 0; i < 20000; ++i) {
    std::string s = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(pos, 1 + rng() % 3); break;
        default: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    EXPECT_NO_THROW({
      auto t = decode(s);
      if (t) {
        EXPECT_FALSE(t->token.empty());
        EXPECT_TRUE(t->version == 1 || t->version == 2);
      }
      (void)check_xsrf_token(s, seed);
    });
  }
}

// ---- interop with Tornado 6.2 ----

/// Drives Tornado's own RequestHandler (over an HTTPServerRequest with a
/// stand-in connection) for each request of a batch: the token it makes
/// or reads from an `_xsrf` cookie, its raw bytes, and check_xsrf_cookie's
/// verdict on a cookie and an `_xsrf` argument or X-XSRFToken header.
const char* const kTornadoXsrf = R"PY(
import json, sys
from unittest import mock
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.web import Application, HTTPError, RequestHandler

app = Application([], xsrf_cookies=True)

def handler(c):
    headers = HTTPHeaders()
    if c.get("cookie") is not None:
        headers["Cookie"] = "_xsrf=" + c["cookie"]
    if c.get("header") is not None:
        headers["X-Xsrftoken"] = c["header"]
    request = HTTPServerRequest(method="POST", uri="/", headers=headers, connection=mock.Mock())
    if c.get("argument") is not None:
        request.arguments["_xsrf"] = [c["argument"].encode()]
    app.settings["xsrf_cookie_version"] = c.get("version", 2)
    return RequestHandler(app, request)

out = []
for c in json.loads(sys.argv[1]):
    h = handler(c)
    if c["op"] == "token":
        token = h.xsrf_token.decode()
        version, raw, timestamp = h._get_raw_xsrf_token()
        cookies = getattr(h, "_new_cookie", None)
        out.append({"token": token, "raw": raw.hex(), "read_version": version,
                    "timestamp": int(timestamp), "form": h.xsrf_form_html(),
                    "set_cookie": cookies["_xsrf"].value if cookies and "_xsrf" in cookies else None})
    else:
        try:
            h.check_xsrf_cookie()
            out.append("ok")
        except HTTPError as e:
            out.append("%d %s" % (e.status_code, e.log_message))
print(json.dumps(out))
)PY";

nlohmann::json tornado(const nlohmann::json& requests) {
  auto result = squall::testing::run_python(kTornadoXsrf, {requests.dump()});
  if (!result || result->status != 0) {
    ADD_FAILURE() << "python3 failed";
    return nlohmann::json::array();
  }
  return nlohmann::json::parse(result->out);
}

TEST(XsrfInteropTest, TornadosTokensDecodeInSquall) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  nlohmann::json requests = {{{"op", "token"}}, {{"op", "token"}}, {{"op", "token"}, {"version", 1}}};
  nlohmann::json answers = tornado(requests);
  ASSERT_EQ(answers.size(), 3u);
  std::set<std::string> raws;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    std::string token = a["token"], raw = a["raw"];
    raws.insert(raw);
    EXPECT_EQ(raw.size(), 2 * kXsrfTokenBytes);
    EXPECT_TRUE(a["read_version"].is_null());  // made, not read
    // The token Tornado writes in the page and the one in its cookie.
    ASSERT_TRUE(a["set_cookie"].is_string());
    for (const std::string& text : {token, a["set_cookie"].get<std::string>()}) {
      auto t = decode(text);
      ASSERT_TRUE(t) << text;
      EXPECT_EQ(hex(t->token), raw);
      EXPECT_EQ(t->version, i < 2 ? 2 : 1);
      if (i < 2) {
        EXPECT_EQ(t->timestamp.time_since_epoch().count(), a["timestamp"].get<std::int64_t>());
      }
    }
    EXPECT_EQ(check_xsrf_token(token, a["set_cookie"].get<std::string>()), XsrfCheck::ok);
    EXPECT_EQ(xsrf_form_html(token), a["form"].get<std::string>());
  }
  EXPECT_EQ(raws.size(), 3u);
}

TEST(XsrfInteropTest, SquallsTokensDecodeInTornado) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  XsrfToken t = generate_xsrf_token(at(kPresent));
  std::string cookie = encode_xsrf_token(t), cookie_v1 = encode_xsrf_token(t, 1);
  nlohmann::json requests = nlohmann::json::array();
  for (const std::string& c : {cookie, cookie_v1}) {
    requests.push_back({{"op", "token"}, {"cookie", c}});
    requests.push_back({{"op", "token"}, {"cookie", c}, {"version", 1}});
  }
  nlohmann::json answers = tornado(requests);
  ASSERT_EQ(answers.size(), 4u);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(a["raw"], hex(t.token));
    EXPECT_EQ(a["read_version"], i < 2 ? 2 : 1);
    EXPECT_TRUE(a["set_cookie"].is_null());  // the cookie was good: kept
    if (i < 2) {
      EXPECT_EQ(a["timestamp"], kPresent);
    }
    // Tornado's re-encoding of our token is ours to read back.
    EXPECT_EQ(decode(a["token"].get<std::string>())->token, t.token);
  }
  EXPECT_EQ(answers[1]["token"], hex(t.token));  // version-1 output is the hex
}

TEST(XsrfInteropTest, SquallAndTornadoGiveTheSameVerdicts) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  XsrfToken t = generate_xsrf_token(at(kPresent)), other = generate_xsrf_token(at(kPresent));
  std::string v2 = encode_xsrf_token(t), v2b = encode_xsrf_token(t), v1 = encode_xsrf_token(t, 1);
  std::string other_v2 = encode_xsrf_token(other);
  struct Case {
    std::optional<std::string> cookie, argument, header;
  };
  std::vector<Case> cases = {
      {v2, v2b, {}},           {v2, v1, {}},          {v1, v2b, {}},         {v2, {}, v2b},
      {v1, {}, v1},            {v2, other_v2, {}},    {other_v2, v2, {}},    {{}, v2, {}},
      {v2, {}, {}},            {{}, {}, {}},          {v2, "3|", {}},        {"3|", v2, {}},
      {"deadbeef", "deadbeef", {}}, {"xoxo", "xoxo", {}}, {"xoxo", "XOXO", {}}, {"DEADBEEF", "deadbeef", {}},
      // Not "2|0102|41|1": a mask shorter than four bytes is malformed here,
      // while Tornado's C _websocket_mask reads past it (its pure-Python one
      // raises, which is "invalid format", as here).
      {v2, "2|", {}},          {v2, "2|01020304|zz|1", {}}, {v2, "2|01020304||1", {}},
      {"2|00000000||5", v2, {}}, {v2, v2.substr(0, v2.size() - 1), {}}, {v2, "a|b|c", {}}, {"a|b|c", "a|b|c", {}},
      {v2, "", {}},            {v2, "", v2b},
  };
  nlohmann::json requests = nlohmann::json::array();
  for (const auto& c : cases) {
    nlohmann::json r = {{"op", "check"}};
    if (c.cookie) r["cookie"] = *c.cookie;
    if (c.argument) r["argument"] = *c.argument;
    if (c.header) r["header"] = *c.header;
    requests.push_back(r);
  }
  nlohmann::json answers = tornado(requests);
  ASSERT_EQ(answers.size(), cases.size());
  int ok = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    // The handler's lookup order: the argument if non-empty, else a header.
    std::string submitted = c.argument.value_or("");
    if (submitted.empty()) submitted = c.header.value_or("");
    XsrfCheck ours = check_xsrf_token(submitted, c.cookie.value_or(""));
    std::string expected = ours == XsrfCheck::ok ? "ok" : "403 " + std::string(xsrf_check_message(ours));
    EXPECT_EQ(answers[i], expected) << "case " << i << ": cookie=" << c.cookie.value_or("<none>")
                                    << " argument=" << c.argument.value_or("<none>");
    ok += ours == XsrfCheck::ok;
  }
  EXPECT_GE(ok, 6);  // the table exercises both outcomes
}

}  // namespace
}  // namespace squall::web
