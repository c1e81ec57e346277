// Fuzzes the URL, cookie and header-parameter helpers: parse_qs,
// url_unescape/url_escape (which must round-trip), parse_cookie,
// format_set_cookie (whose output parse_cookie must read back),
// split_url, parse_content_type, parse_http_date and url_concat.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "squall/http/cookies.hpp"
#include "squall/http/httputil.hpp"
#include "squall/http/url.hpp"

using namespace squall::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  QueryArguments strict = parse_qs(input, false);
  QueryArguments blank = parse_qs(input, true);
  SQUALL_FUZZ_CHECK(strict.size() <= blank.size());

  SQUALL_FUZZ_CHECK(url_unescape(url_escape(input, true), true) == input);
  SQUALL_FUZZ_CHECK(url_unescape(url_escape(input, false), false) == input);
  SQUALL_FUZZ_CHECK(url_unescape(input, false).size() <= size);
  (void)url_unescape(input, true);

  (void)parse_cookie(input);

  // Split the input into a cookie name and value at the first '='.
  std::size_t eq = input.find('=');
  if (eq != std::string_view::npos) {
    std::string_view name = input.substr(0, eq), value = input.substr(eq + 1);
    try {
      std::string header = format_set_cookie(name, value, CookieOptions{.path = ""});
      auto cookies = parse_cookie(header);
      SQUALL_FUZZ_CHECK(cookies.size() == 1 && cookies.begin()->first == name && cookies.begin()->second == value);
    } catch (const std::invalid_argument&) {
    }
  }

  try {
    SplitURL u = split_url(input);
    SQUALL_FUZZ_CHECK(u.path.size() + u.query.size() + u.fragment.size() + u.host.size() <= size);
  } catch (const std::invalid_argument&) {
  }

  ContentType ct = parse_content_type(input);
  SQUALL_FUZZ_CHECK(ct.type.size() <= size);

  if (auto t = parse_http_date(input)) {
    using std::chrono::system_clock;
    if (*t != system_clock::time_point::max() && *t != system_clock::time_point::min()) {
      SQUALL_FUZZ_CHECK(parse_http_date(format_timestamp(*t)) == *t);
    }
  }

  (void)url_concat(input, {{std::string(input), "v"}});
  return 0;
}
