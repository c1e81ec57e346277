// XSRF (cross-site request forgery) tokens as Tornado's RequestHandler makes
// and checks them (xsrf_token, _decode_xsrf_token, check_xsrf_cookie,
// xsrf_form_html), as pure functions for the handler layer to call. Any
// thread may call them.
//
// The protection: the server sets a random token in the `_xsrf` cookie and
// puts the same token in every form (or a page's JavaScript sends it in an
// X-XSRFToken header); a state-changing request must carry both, and they
// must match. Another site can make the browser send the cookie, but cannot
// read it to fill in the form field.
//
// Encodings (all ASCII):
//   version 2  "2|<mask hex>|<token XOR mask, hex>|<timestamp>": a fresh
//              random 4-byte mask each time, so the page's bytes change on
//              every response and compression leaks nothing (BREACH).
//   version 1  "<token hex>": Tornado before 3.2.2. Read, and written when
//              asked for (Tornado's xsrf_cookie_version=1).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace squall::web {

/// Random bytes in a new token (Tornado's os.urandom(16)).
inline constexpr std::size_t kXsrfTokenBytes = 16;

/// The form field and the cookie that carry the token, and the request
/// headers that may carry it instead (the second for Django's JavaScript).
inline constexpr std::string_view kXsrfArgumentName = "_xsrf";
inline constexpr std::string_view kXsrfCookieName = "_xsrf";
inline constexpr std::string_view kXsrfHeaderName = "X-XSRFToken";
inline constexpr std::string_view kCsrfHeaderName = "X-CSRFToken";

/// A token in its raw form (Tornado's _get_raw_xsrf_token tuple).
struct XsrfToken {
  /// The encoding it was read from, 1 or 2; 0 for a token that
  /// generate_xsrf_token made (Tornado's None), which tells the handler to
  /// set the cookie.
  int version{0};
  /// The secret bytes: kXsrfTokenBytes random bytes for tokens made here;
  /// never empty in a token returned by this API.
  std::string token{};
  /// When the token was made. Version 1 carries no time: decoding one
  /// stamps it with the current time, as Tornado does.
  std::chrono::sys_seconds timestamp{};
};

/// A new token: kXsrfTokenBytes bytes from OpenSSL's RAND_bytes, version 0,
/// stamped `now` (default: system_clock::now()). Throws squall::Error if
/// the random generator fails.
XsrfToken generate_xsrf_token(std::optional<std::chrono::system_clock::time_point> now = std::nullopt);

/// The text form of `token` for a cookie, a form field or a header:
/// version 2 (masked with a fresh random mask on every call, so two calls
/// differ) or 1 (plain hex). Throws std::invalid_argument for another
/// version or an empty token, squall::Error if the random generator fails.
std::string encode_xsrf_token(const XsrfToken& token, int version = 2);

/// Reads an `_xsrf` cookie, form field or header value (Tornado's
/// _decode_xsrf_token). A value starting "<n>|" must be version 2 with
/// exactly four fields: a 4-byte mask in hex, the masked token in hex, and
/// a canonical decimal timestamp. Any other value is version 1: hex
/// digits decode to the token, anything else is taken as the token's raw
/// bytes (as Tornado does). nullopt for a malformed version 2, another
/// version, or an empty token. Never throws.
std::optional<XsrfToken> decode_xsrf_token(std::string_view value,
                                           std::optional<std::chrono::system_clock::time_point> now = std::nullopt);

/// The outcome of check_xsrf_token; anything but `ok` is a 403.
enum class XsrfCheck {
  ok,
  missing,         // no token submitted
  invalid_format,  // the submitted token does not decode
  mismatch,        // no usable cookie, or it holds another token
};

/// Tornado's check_xsrf_cookie: `submitted` is the `_xsrf` argument, or
/// else the X-XSRFToken or X-CSRFToken header ("" when none is present);
/// `cookie` the `_xsrf` cookie ("" when absent). Both may be in either
/// version. The tokens are compared in constant time.
XsrfCheck check_xsrf_token(std::string_view submitted, std::string_view cookie);

/// Tornado's log message for a failed check ("'_xsrf' argument missing from
/// POST", ...), for HTTPError(403, message); "" for ok.
std::string_view xsrf_check_message(XsrfCheck result) noexcept;

/// `<input type="hidden" name="_xsrf" value="..."/>` with `encoded_token`
/// (from encode_xsrf_token) XHTML-escaped: the field every POST form
/// includes (Tornado's xsrf_form_html).
std::string xsrf_form_html(std::string_view encoded_token);

}  // namespace squall::web
