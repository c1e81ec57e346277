// Cookie header parsing and Set-Cookie formatting (Tornado's
// httputil.parse_cookie and RequestHandler.set_cookie's formatting).
// Pure functions; any thread may call them.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace squall::http {

/// Parses a Cookie request header leniently, as browsers send it and as
/// Tornado's parse_cookie does: split on ';', each chunk stripped, split at
/// its first '=' (a chunk without '=' is a value with an empty name),
/// chunks with neither name nor value skipped, and a value in double quotes
/// unquoted with Python's backslash escapes (\" \\ and \ooo octal). A name
/// repeated later wins. Linear in the length of `header`.
std::map<std::string, std::string> parse_cookie(std::string_view header);

/// Attributes of a Set-Cookie header (RFC 6265 section 4.1). Empty strings
/// and empty optionals leave the attribute out.
struct CookieOptions {
  std::string domain{};                                           // Domain=
  std::string path{"/"};                                          // Path=, "/" as Tornado
  std::optional<std::chrono::system_clock::time_point> expires{};  // expires=, an IMF-fixdate
  std::optional<std::chrono::seconds> max_age{};                  // Max-Age=
  bool httponly{false};                                           // HttpOnly
  bool secure{false};                                             // Secure
  std::string samesite{};                                         // SameSite= "Strict", "Lax" or "None"
};

/// The value of a Set-Cookie header: "name=value; Domain=...; expires=...;
/// HttpOnly; Max-Age=...; Path=/; SameSite=...; Secure" (attributes in the
/// order Python's http.cookies writes them). A value with characters
/// outside Python's legal cookie set is double-quoted with backslash and
/// octal escapes, which parse_cookie undoes. Throws std::invalid_argument
/// if the name is not a token, or the name, the value or an attribute
/// holds a control character, a space, or ';' (header or attribute
/// injection), or samesite is not Strict, Lax or None.
std::string format_set_cookie(std::string_view name, std::string_view value, const CookieOptions& options = {});

}  // namespace squall::http
