// URL helpers (Tornado's httputil/escape URL functions): percent-encoding,
// query-string parsing and building, and splitting a URL into its parts.
// Pure functions of their arguments; any thread may call them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squall::http {

/// Percent-encodes `value` (Python's quote_plus when `plus`, else quote).
/// Letters, digits and "_.-~" are kept; with `plus` a space becomes '+' and
/// '/' is encoded, without it a space is "%20" and '/' is kept.
std::string url_escape(std::string_view value, bool plus = true);

/// Decodes percent escapes (Python's unquote_plus when `plus`, else
/// unquote). An invalid escape ("%zz", a '%' at the end) is kept literally.
/// The result is bytes: no character-set decoding happens here.
std::string url_unescape(std::string_view value, bool plus = true);

/// Query or form arguments: every value of each name, in order of arrival.
using QueryArguments = std::map<std::string, std::vector<std::string>>;

/// Parses "a=1&b=2&a=3" (Python's parse_qs, non-strict): fields split on
/// '&', names and values unescaped with '+' as space. Fields without '='
/// or with an empty value are dropped unless `keep_blank_values`; empty
/// fields are always dropped. Linear in the length of `query`.
QueryArguments parse_qs(std::string_view query, bool keep_blank_values = false);

/// As parse_qs, appending to `out` (values of a name already present are
/// extended, not replaced).
void parse_qs_into(std::string_view query, QueryArguments& out, bool keep_blank_values);

/// Appends `args` to the query of `url` (Tornado's url_concat), keeping
/// its fragment. Existing arguments are kept, blank ones included, and the
/// whole query is re-encoded as application/x-www-form-urlencoded.
std::string url_concat(std::string_view url, const std::vector<std::pair<std::string, std::string>>& args);
/// As above with every value of every name, names in sorted order.
std::string url_concat(std::string_view url, const QueryArguments& args);

/// The parts of an absolute URL ("scheme://userinfo@host:port/path?query#fragment")
/// or of an origin-form target ("/path?query#fragment", scheme and host
/// empty). Views into the string given to split_url: valid while it lives.
struct SplitURL {
  std::string_view scheme{};    // as written; compare case-insensitively
  std::string_view userinfo{};  // before '@' in the authority, if any
  std::string_view host{};      // an IPv6 literal without its brackets
  std::optional<std::uint16_t> port{};  // when the authority names one
  std::string_view path{};      // "" when the URL has none (means "/")
  std::string_view query{};     // after '?', without it
  std::string_view fragment{};  // after '#', without it
};

/// Splits `url` (Python's urlsplit, for http-style URLs). Throws
/// std::invalid_argument on a malformed authority: a port that is not
/// 0-65535 in digits, an unclosed IPv6 bracket. Callers that need a host
/// (an HTTP client) check that `host` is not empty.
SplitURL split_url(std::string_view url);

}  // namespace squall::http
