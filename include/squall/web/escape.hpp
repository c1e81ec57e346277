// Escaping and unescaping for HTML, JSON and URLs, and a few text helpers
// (Tornado's tornado.escape). Pure functions of their arguments; any thread
// may call them. Strings are UTF-8 bytes; invalid UTF-8 passes through
// unchanged unless a function says otherwise.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "squall/core/errors.hpp"

namespace squall::web {

/// Escapes `&`, `<`, `>`, `"` and `'` (as `&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// `&#39;`), so the result is safe in HTML text and in quoted attribute
/// values. Byte-for-byte Tornado's xhtml_escape.
std::string xhtml_escape(std::string_view value);
/// As xhtml_escape, appending to `out` (no temporary string).
void xhtml_escape_into(std::string& out, std::string_view value);

/// Decodes the named entities of HTML 4 (`&amp;`, `&eacute;`, ... the 252 of
/// Python's html.entities.name2codepoint, case-sensitive) and numeric ones
/// (`&#39;`, `&#x27;`), as Tornado's xhtml_unescape. Anything else, and a
/// numeric reference to a surrogate or past U+10FFFF (which Tornado turns
/// into a string that cannot be encoded), is kept literally.
std::string xhtml_unescape(std::string_view value);

/// Raised by json_decode for text that is not JSON.
class JSONDecodeError : public Error {
 public:
  using Error::Error;
};

/// Serializes `value` as Python's json.dumps does (", " and ": "
/// separators, non-ASCII as \uXXXX escapes, floats in their shortest
/// round-trip form), then escapes "</" as "<\/" so the result can sit in a
/// <script> element (Tornado's json_encode). Objects come out in key order.
/// Invalid UTF-8 in strings becomes U+FFFD.
std::string json_encode(const nlohmann::json& value);
/// As json_encode, appending to `out`.
void json_encode_into(std::string& out, const nlohmann::json& value);

/// Parses JSON text (Tornado's json_decode). Throws JSONDecodeError with the
/// parser's message on malformed input.
nlohmann::json json_decode(std::string_view value);

/// Percent-encodes `value` for a URL (Tornado's url_escape): with `plus`
/// (the default) a space becomes '+' and '/' is encoded, as for a query
/// string; without it a space is "%20" and '/' is kept, as for a path.
/// The same function as squall::http::url_escape.
std::string url_escape(std::string_view value, bool plus = true);

/// Decodes percent escapes, and '+' as a space when `plus` (Tornado's
/// url_unescape with encoding=None: the result is bytes, not checked for
/// UTF-8). Invalid escapes are kept literally.
std::string url_unescape(std::string_view value, bool plus = true);

/// Replaces each run of characters U+0000..U+0020 with one space and strips
/// whitespace (Python's str.isspace) from both ends (Tornado's squeeze).
std::string squeeze(std::string_view value);

/// Options of linkify, with Tornado's defaults.
struct LinkifyOptions {
  bool shorten = false;            ///< shorten long link texts, full URL in a title attribute
  std::string extra_params{};      ///< extra attributes for each <a> tag, e.g. `rel="nofollow"`
  /// When set, called with each link's href; its result is used as
  /// extra_params for that link (Tornado's callable extra_params).
  std::function<std::string(std::string_view href)> extra_params_cb{};
  bool require_protocol = false;   ///< link only URLs with a protocol, not bare www.example.com
  std::vector<std::string> permitted_protocols{"http", "https"};  ///< never add "javascript"
};

/// Converts plain text into HTML with links (Tornado's linkify): the text is
/// xhtml-escaped, then each URL ("proto://..." or "www....") becomes an
/// <a href> element. Word boundaries use an approximation of Python's
/// Unicode \w beyond Latin-1 (see the templates guide).
std::string linkify(std::string_view text, const LinkifyOptions& options = {});

}  // namespace squall::web
