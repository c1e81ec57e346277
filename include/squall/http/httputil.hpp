// Small HTTP helpers from Tornado's httputil: HTTP dates, Content-Type style
// header parameters, and standard reason phrases. Pure functions; any thread
// may call them.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace squall::http {

/// Formats `t` as an IMF-fixdate (RFC 9110 section 5.6.7), the one form a
/// sender may generate: "Sun, 06 Nov 1994 08:49:37 GMT". Sub-second parts
/// are dropped.
std::string format_timestamp(std::chrono::system_clock::time_point t);

/// Parses any of the three HTTP date forms a recipient must accept
/// (RFC 9110 section 5.6.7): IMF-fixdate, RFC 850 ("Sunday, 06-Nov-94
/// 08:49:37 GMT"; a two-digit year above 68 is 19xx, else 20xx, as
/// Python's email.utils) and asctime ("Sun Nov  6 08:49:37 1994"). Names
/// are matched case-insensitively; the weekday is not checked against the
/// date. nullopt when `value` is none of them or names an impossible date.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view value);

/// A header value of the form `main; name=value; name="quoted"`.
struct ContentType {
  std::string type{};                          // the main value, trimmed and lower-cased
  std::map<std::string, std::string> params{};  // names lower-cased; later repeats win
};

/// Parses Content-Type or Content-Disposition (Tornado's _parse_header):
/// parameters split on ';' outside quotes, quoted values unquoted (with
/// \" and \\ unescaped), RFC 2231 extended values (`name*=UTF-8''%e2%82%ac`,
/// and continuations `name*0`, `name*1`...) decoded to UTF-8 bytes under
/// the plain name. Parameters without '=' are ignored. Linear in `value`.
ContentType parse_content_type(std::string_view value);

/// The standard reason phrase of `code` (Python's http.HTTPStatus, which
/// Tornado's httputil.responses is), or "Unknown".
std::string_view responses(int code) noexcept;

}  // namespace squall::http
