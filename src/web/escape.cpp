#include "squall/web/escape.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "squall/http/url.hpp"
#include "web/template_format.hpp"
#include "web/template_unicode.hpp"

namespace squall::web {

namespace {

using detail::decode_utf8;
using detail::kInvalidCodePoint;

// Python's html.entities.name2codepoint (HTML 4), sorted by name.
struct Entity {
  std::string_view name;
  char32_t cp;
};
constexpr Entity kEntities[] = {
    {"AElig", 0xC6}, {"Aacute", 0xC1}, {"Acirc", 0xC2}, {"Agrave", 0xC0}, {"Alpha", 0x391}, {"Aring", 0xC5},
    {"Atilde", 0xC3}, {"Auml", 0xC4}, {"Beta", 0x392}, {"Ccedil", 0xC7}, {"Chi", 0x3A7}, {"Dagger", 0x2021},
    {"Delta", 0x394}, {"ETH", 0xD0}, {"Eacute", 0xC9}, {"Ecirc", 0xCA}, {"Egrave", 0xC8}, {"Epsilon", 0x395},
    {"Eta", 0x397}, {"Euml", 0xCB}, {"Gamma", 0x393}, {"Iacute", 0xCD}, {"Icirc", 0xCE}, {"Igrave", 0xCC},
    {"Iota", 0x399}, {"Iuml", 0xCF}, {"Kappa", 0x39A}, {"Lambda", 0x39B}, {"Mu", 0x39C}, {"Ntilde", 0xD1},
    {"Nu", 0x39D}, {"OElig", 0x152}, {"Oacute", 0xD3}, {"Ocirc", 0xD4}, {"Ograve", 0xD2}, {"Omega", 0x3A9},
    {"Omicron", 0x39F}, {"Oslash", 0xD8}, {"Otilde", 0xD5}, {"Ouml", 0xD6}, {"Phi", 0x3A6}, {"Pi", 0x3A0},
    {"Prime", 0x2033}, {"Psi", 0x3A8}, {"Rho", 0x3A1}, {"Scaron", 0x160}, {"Sigma", 0x3A3}, {"THORN", 0xDE},
    {"Tau", 0x3A4}, {"Theta", 0x398}, {"Uacute", 0xDA}, {"Ucirc", 0xDB}, {"Ugrave", 0xD9},
    {"Upsilon", 0x3A5}, {"Uuml", 0xDC}, {"Xi", 0x39E}, {"Yacute", 0xDD}, {"Yuml", 0x178}, {"Zeta", 0x396},
    {"aacute", 0xE1}, {"acirc", 0xE2}, {"acute", 0xB4}, {"aelig", 0xE6}, {"agrave", 0xE0},
    {"alefsym", 0x2135}, {"alpha", 0x3B1}, {"amp", 0x26}, {"and", 0x2227}, {"ang", 0x2220}, {"aring", 0xE5},
    {"asymp", 0x2248}, {"atilde", 0xE3}, {"auml", 0xE4}, {"bdquo", 0x201E}, {"beta", 0x3B2},
    {"brvbar", 0xA6}, {"bull", 0x2022}, {"cap", 0x2229}, {"ccedil", 0xE7}, {"cedil", 0xB8}, {"cent", 0xA2},
    {"chi", 0x3C7}, {"circ", 0x2C6}, {"clubs", 0x2663}, {"cong", 0x2245}, {"copy", 0xA9}, {"crarr", 0x21B5},
    {"cup", 0x222A}, {"curren", 0xA4}, {"dArr", 0x21D3}, {"dagger", 0x2020}, {"darr", 0x2193}, {"deg", 0xB0},
    {"delta", 0x3B4}, {"diams", 0x2666}, {"divide", 0xF7}, {"eacute", 0xE9}, {"ecirc", 0xEA},
    {"egrave", 0xE8}, {"empty", 0x2205}, {"emsp", 0x2003}, {"ensp", 0x2002}, {"epsilon", 0x3B5},
    {"equiv", 0x2261}, {"eta", 0x3B7}, {"eth", 0xF0}, {"euml", 0xEB}, {"euro", 0x20AC}, {"exist", 0x2203},
    {"fnof", 0x192}, {"forall", 0x2200}, {"frac12", 0xBD}, {"frac14", 0xBC}, {"frac34", 0xBE},
    {"frasl", 0x2044}, {"gamma", 0x3B3}, {"ge", 0x2265}, {"gt", 0x3E}, {"hArr", 0x21D4}, {"harr", 0x2194},
    {"hearts", 0x2665}, {"hellip", 0x2026}, {"iacute", 0xED}, {"icirc", 0xEE}, {"iexcl", 0xA1},
    {"igrave", 0xEC}, {"image", 0x2111}, {"infin", 0x221E}, {"int", 0x222B}, {"iota", 0x3B9},
    {"iquest", 0xBF}, {"isin", 0x2208}, {"iuml", 0xEF}, {"kappa", 0x3BA}, {"lArr", 0x21D0},
    {"lambda", 0x3BB}, {"lang", 0x2329}, {"laquo", 0xAB}, {"larr", 0x2190}, {"lceil", 0x2308},
    {"ldquo", 0x201C}, {"le", 0x2264}, {"lfloor", 0x230A}, {"lowast", 0x2217}, {"loz", 0x25CA},
    {"lrm", 0x200E}, {"lsaquo", 0x2039}, {"lsquo", 0x2018}, {"lt", 0x3C}, {"macr", 0xAF}, {"mdash", 0x2014},
    {"micro", 0xB5}, {"middot", 0xB7}, {"minus", 0x2212}, {"mu", 0x3BC}, {"nabla", 0x2207}, {"nbsp", 0xA0},
    {"ndash", 0x2013}, {"ne", 0x2260}, {"ni", 0x220B}, {"not", 0xAC}, {"notin", 0x2209}, {"nsub", 0x2284},
    {"ntilde", 0xF1}, {"nu", 0x3BD}, {"oacute", 0xF3}, {"ocirc", 0xF4}, {"oelig", 0x153}, {"ograve", 0xF2},
    {"oline", 0x203E}, {"omega", 0x3C9}, {"omicron", 0x3BF}, {"oplus", 0x2295}, {"or", 0x2228},
    {"ordf", 0xAA}, {"ordm", 0xBA}, {"oslash", 0xF8}, {"otilde", 0xF5}, {"otimes", 0x2297}, {"ouml", 0xF6},
    {"para", 0xB6}, {"part", 0x2202}, {"permil", 0x2030}, {"perp", 0x22A5}, {"phi", 0x3C6}, {"pi", 0x3C0},
    {"piv", 0x3D6}, {"plusmn", 0xB1}, {"pound", 0xA3}, {"prime", 0x2032}, {"prod", 0x220F}, {"prop", 0x221D},
    {"psi", 0x3C8}, {"quot", 0x22}, {"rArr", 0x21D2}, {"radic", 0x221A}, {"rang", 0x232A}, {"raquo", 0xBB},
    {"rarr", 0x2192}, {"rceil", 0x2309}, {"rdquo", 0x201D}, {"real", 0x211C}, {"reg", 0xAE},
    {"rfloor", 0x230B}, {"rho", 0x3C1}, {"rlm", 0x200F}, {"rsaquo", 0x203A}, {"rsquo", 0x2019},
    {"sbquo", 0x201A}, {"scaron", 0x161}, {"sdot", 0x22C5}, {"sect", 0xA7}, {"shy", 0xAD}, {"sigma", 0x3C3},
    {"sigmaf", 0x3C2}, {"sim", 0x223C}, {"spades", 0x2660}, {"sub", 0x2282}, {"sube", 0x2286},
    {"sum", 0x2211}, {"sup", 0x2283}, {"sup1", 0xB9}, {"sup2", 0xB2}, {"sup3", 0xB3}, {"supe", 0x2287},
    {"szlig", 0xDF}, {"tau", 0x3C4}, {"there4", 0x2234}, {"theta", 0x3B8}, {"thetasym", 0x3D1},
    {"thinsp", 0x2009}, {"thorn", 0xFE}, {"tilde", 0x2DC}, {"times", 0xD7}, {"trade", 0x2122},
    {"uArr", 0x21D1}, {"uacute", 0xFA}, {"uarr", 0x2191}, {"ucirc", 0xFB}, {"ugrave", 0xF9}, {"uml", 0xA8},
    {"upsih", 0x3D2}, {"upsilon", 0x3C5}, {"uuml", 0xFC}, {"weierp", 0x2118}, {"xi", 0x3BE},
    {"yacute", 0xFD}, {"yen", 0xA5}, {"yuml", 0xFF}, {"zeta", 0x3B6}, {"zwj", 0x200D}, {"zwnj", 0x200C},
};

std::optional<char32_t> named_entity(std::string_view name) {
  auto it = std::lower_bound(std::begin(kEntities), std::end(kEntities), name,
                             [](const Entity& e, std::string_view n) { return e.name < n; });
  if (it != std::end(kEntities) && it->name == name) return it->cp;
  return std::nullopt;
}

int digit_value(char c, int base) {
  int v = -1;
  if (c >= '0' && c <= '9') v = c - '0';
  else if (c >= 'a' && c <= 'z') v = c - 'a' + 10;
  else if (c >= 'A' && c <= 'Z') v = c - 'A' + 10;
  return v < base ? v : -1;
}

/// Python's int(text, base) for the characters `\w` lets through: digits
/// with single underscores between them, and for base 16 an optional "0x"
/// prefix (which may be followed by one underscore). nullopt when Python
/// would raise, or the value is past U+10FFFF (chr() would raise too).
std::optional<std::uint32_t> python_int(std::string_view s, int base) {
  if (base == 16 && s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    if (!s.empty() && s[0] == '_') s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  std::uint32_t value = 0;
  bool after_digit = false;
  for (char c : s) {
    if (c == '_') {
      if (!after_digit) return std::nullopt;
      after_digit = false;
      continue;
    }
    int d = digit_value(c, base);
    if (d < 0) return std::nullopt;
    value = value * static_cast<std::uint32_t>(base) + static_cast<std::uint32_t>(d);
    if (value > 0x10FFFF) return std::nullopt;
    after_digit = true;
  }
  if (!after_digit) return std::nullopt;
  return value;
}

/// The replacement of one `&(#?)(\w+?);` match, or nullopt to keep it.
std::optional<char32_t> convert_entity(bool numeric, std::string_view body) {
  if (!numeric) return named_entity(body);
  std::optional<std::uint32_t> v =
      (body[0] == 'x' || body[0] == 'X') ? python_int(body.substr(1), 16) : python_int(body, 10);
  if (!v || (*v >= 0xD800 && *v <= 0xDFFF)) return std::nullopt;
  return static_cast<char32_t>(*v);
}

constexpr char kHexLower[] = "0123456789abcdef";

void append_u_escape(std::string& out, unsigned v) {
  out += "\\u";
  out += kHexLower[(v >> 12) & 0xF];
  out += kHexLower[(v >> 8) & 0xF];
  out += kHexLower[(v >> 4) & 0xF];
  out += kHexLower[v & 0xF];
}

/// A JSON string as Python's json.dumps(ensure_ascii=True) writes it, with
/// "</" written as "<\/".
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  bool after_lt = false;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      detail::Decoded d = decode_utf8(s, i);
      char32_t cp = d.cp == kInvalidCodePoint ? 0xFFFD : d.cp;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        append_u_escape(out, 0xD800 + (cp >> 10));
        append_u_escape(out, 0xDC00 + (cp & 0x3FF));
      } else {
        append_u_escape(out, cp);
      }
      i += d.length;
      after_lt = false;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '/': out += after_lt ? "\\/" : "/"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          append_u_escape(out, c);
        } else {
          out += static_cast<char>(c);
        }
    }
    after_lt = c == '<';
    ++i;
  }
  out += '"';
}

void append_json(std::string& out, const nlohmann::json& v) {
  using value_t = nlohmann::json::value_t;
  switch (v.type()) {
    case value_t::null:
    case value_t::discarded:
      out += "null";
      break;
    case value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case value_t::number_integer:
      out += std::to_string(v.get<std::int64_t>());
      break;
    case value_t::number_unsigned:
      out += std::to_string(v.get<std::uint64_t>());
      break;
    case value_t::number_float: {
      double d = v.get<double>();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else detail::append_python_float(out, d);
      break;
    }
    case value_t::string:
      append_json_string(out, v.get_ref<const std::string&>());
      break;
    case value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ", ";
        first = false;
        append_json(out, item);
      }
      out += ']';
      break;
    }
    case value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += ", ";
        first = false;
        append_json_string(out, key);
        out += ": ";
        append_json(out, item);
      }
      out += '}';
      break;
    }
    case value_t::binary: {
      out += '[';
      bool first = true;
      for (std::uint8_t b : v.get_binary()) {
        if (!first) out += ", ";
        first = false;
        out += std::to_string(b);
      }
      out += ']';
      break;
    }
  }
}

// --- linkify -------------------------------------------------------------------------------
// A hand-written matcher for Tornado's _URL_RE, applied to xhtml-escaped text:
//   \b((?:([\w-]+):(/{1,3})|www[.])
//      (?:(?:(?:[^\s&()]|&amp;|&quot;)*(?:[^!"#$%&'()*+,.:;<=>?@\[\]^`{|}~\s]))
//        |(?:\((?:[^\s&()]|&amp;|&quot;)*\)))+)
// The body is a sequence of pieces: A = units then a "final" character, or
// B = "(" units ")". Because the final characters are a subset of the unit
// characters, greedy backtracking makes A end after the last final
// character of the maximal unit run, which is what piece_end computes.

bool is_final_char(char32_t cp) {
  if (detail::is_space(cp)) return false;
  if (cp < 0x80) {
    static constexpr std::string_view kPunct = "!\"#$%&'()*+,.:;<=>?@[]^`{|}~";
    return kPunct.find(static_cast<char>(cp)) == std::string_view::npos;
  }
  return true;
}

/// Length of the unit at `pos` (0 when there is none): "&amp;", "&quot;" or
/// one character that is not whitespace, '&', '(' or ')'.
std::size_t unit_length(std::string_view s, std::size_t pos, char32_t* cp_out) {
  *cp_out = kInvalidCodePoint;
  if (pos >= s.size()) return 0;
  char c = s[pos];
  if (c == '&') {
    if (s.substr(pos, 5) == "&amp;") return 5;
    if (s.substr(pos, 6) == "&quot;") return 6;
    return 0;
  }
  if (c == '(' || c == ')') return 0;
  detail::Decoded d = decode_utf8(s, pos);
  if (detail::is_space(d.cp)) return 0;
  *cp_out = d.cp;
  return d.length;
}

/// End of one piece starting at `pos`, or npos.
std::size_t piece_end(std::string_view s, std::size_t pos) {
  std::size_t p = pos, last_final = std::string_view::npos;
  char32_t cp;
  while (std::size_t n = unit_length(s, p, &cp)) {
    bool single = s[p] != '&';
    p += n;
    if (single && is_final_char(cp)) last_final = p;
  }
  if (last_final != std::string_view::npos) return last_final;
  if (pos < s.size() && s[pos] == '(') {
    p = pos + 1;
    while (std::size_t n = unit_length(s, p, &cp)) p += n;
    if (p < s.size() && s[p] == ')') return p + 1;
  }
  return std::string_view::npos;
}

std::size_t body_end(std::string_view s, std::size_t pos) {
  std::size_t end = piece_end(s, pos);
  if (end == std::string_view::npos) return end;
  while (true) {
    std::size_t next = piece_end(s, end);
    if (next == std::string_view::npos) return end;
    end = next;
  }
}

bool is_word_or_dash(char32_t cp) { return cp == '-' || detail::is_word(cp); }

struct UrlMatch {
  std::size_t end = 0;
  std::string_view proto{};   // empty for "www."
  std::size_t slashes = 0;
};

std::optional<UrlMatch> match_url(std::string_view s, std::size_t pos) {
  // ([\w-]+):(/{1,3})
  std::size_t p = pos;
  while (p < s.size()) {
    detail::Decoded d = decode_utf8(s, p);
    if (!is_word_or_dash(d.cp)) break;
    p += d.length;
  }
  if (p > pos && p < s.size() && s[p] == ':') {
    std::size_t slashes = 0;
    while (slashes < 3 && p + 1 + slashes < s.size() && s[p + 1 + slashes] == '/') ++slashes;
    for (std::size_t k = slashes; k >= 1; --k) {
      std::size_t end = body_end(s, p + 1 + k);
      if (end != std::string_view::npos) return UrlMatch{end, s.substr(pos, p - pos), k};
    }
  }
  if (s.substr(pos, 4) == "www.") {
    std::size_t end = body_end(s, pos + 4);
    if (end != std::string_view::npos) return UrlMatch{end, {}, 0};
  }
  return std::nullopt;
}

// Python's str operations count code points; invalid bytes map to lone
// surrogates U+DC80..U+DCFF and back (Python's surrogateescape).
std::u32string to_u32(std::string_view s) {
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) {
    detail::Decoded d = decode_utf8(s, i);
    out += d.cp == kInvalidCodePoint ? static_cast<char32_t>(0xDC00 + static_cast<unsigned char>(s[i])) : d.cp;
    i += d.length;
  }
  return out;
}

std::string from_u32(std::u32string_view s) {
  std::string out;
  for (char32_t cp : s) {
    if (cp >= 0xDC80 && cp <= 0xDCFF) out += static_cast<char>(cp - 0xDC00);
    else detail::append_utf8(out, cp);
  }
  return out;
}

std::string shorten_url(const std::string& url_text, const UrlMatch& m, const std::string& href, std::string& params) {
  constexpr std::size_t kMaxLen = 30;
  std::u32string url = to_u32(url_text);
  if (url.size() <= kMaxLen) return url_text;
  std::u32string before_clip = url;
  std::size_t proto_len = m.proto.empty() ? 0 : to_u32(m.proto).size() + 1 + m.slashes;
  std::u32string_view rest = std::u32string_view(url).substr(std::min(proto_len, url.size()));
  std::size_t slash = rest.find(U'/');
  if (slash != std::u32string_view::npos) {
    std::u32string_view first = rest.substr(0, slash);
    std::u32string_view second = rest.substr(slash + 1);
    second = second.substr(0, second.find(U'/'));
    second = second.substr(0, 8);
    second = second.substr(0, second.find(U'?'));
    second = second.substr(0, second.find(U'.'));
    std::u32string shortened = url.substr(0, proto_len);
    shortened += first;
    shortened += U'/';
    shortened += second;
    url = std::move(shortened);
  }
  if (url.size() * 2 > kMaxLen * 3) url.resize(kMaxLen);  // len(url) > max_len * 1.5
  if (url != before_clip) {
    std::size_t amp = url.rfind(U'&');
    // Python: amp > max_len - 5, with rfind's -1 never greater.
    if (amp != std::u32string::npos && amp > kMaxLen - 5) url.resize(amp);
    url += U"...";
    if (url.size() >= before_clip.size()) {
      url = before_clip;
    } else {
      params += " title=\"" + href + "\"";
    }
  }
  return from_u32(url);
}

std::string strip_copy(std::string_view s) { return std::string(detail::strip_space(s)); }

}  // namespace

namespace detail {

void append_python_float(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "nan";
    return;
  }
  if (std::isinf(d)) {
    out += d > 0 ? "inf" : "-inf";
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(end - buf));  // "-1.2345e+17"
  bool negative = !sci.empty() && sci[0] == '-';
  if (negative) sci.remove_prefix(1);
  std::size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::string_view exp_text = sci.substr(e + 1);
  bool exp_negative = exp_text[0] == '-';
  std::from_chars(exp_text.data() + 1, exp_text.data() + exp_text.size(), exponent);
  if (exp_negative) exponent = -exponent;
  // Python's float_repr_style 'short': decpt is where the decimal point
  // goes relative to the digits.
  int decpt = exponent + 1;
  int ndigits = static_cast<int>(digits.size());
  if (negative) out += '-';
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (ndigits > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += exponent < 0 ? "e-" : "e+";
    int a = exponent < 0 ? -exponent : exponent;
    if (a < 10) out += '0';
    out += std::to_string(a);
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= ndigits) {
    out += digits;
    out.append(static_cast<std::size_t>(decpt - ndigits), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<std::size_t>(decpt));
    out += '.';
    out.append(digits, static_cast<std::size_t>(decpt));
  }
}

}  // namespace detail

void xhtml_escape_into(std::string& out, std::string_view value) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    std::string_view rep;
    switch (value[i]) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      case '\'': rep = "&#39;"; break;
      default: continue;
    }
    out.append(value, start, i - start);
    out += rep;
    start = i + 1;
  }
  out.append(value, start);
}

std::string xhtml_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  xhtml_escape_into(out, value);
  return out;
}

std::string xhtml_unescape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  std::size_t i = 0;
  while (i < value.size()) {
    std::size_t amp = value.find('&', i);
    if (amp == std::string_view::npos) break;
    out.append(value, i, amp - i);
    std::size_t p = amp + 1;
    bool numeric = p < value.size() && value[p] == '#';
    if (numeric) ++p;
    std::size_t name_start = p;
    while (p < value.size()) {
      detail::Decoded d = decode_utf8(value, p);
      if (!detail::is_word(d.cp)) break;
      p += d.length;
    }
    if (p > name_start && p < value.size() && value[p] == ';') {
      if (auto cp = convert_entity(numeric, value.substr(name_start, p - name_start))) {
        detail::append_utf8(out, *cp);
      } else {
        out.append(value, amp, p + 1 - amp);
      }
      i = p + 1;
    } else {
      out += '&';
      i = amp + 1;
    }
  }
  out.append(value, std::min(i, value.size()));
  return out;
}

void json_encode_into(std::string& out, const nlohmann::json& value) { append_json(out, value); }

std::string json_encode(const nlohmann::json& value) {
  std::string out;
  append_json(out, value);
  return out;
}

nlohmann::json json_decode(std::string_view value) {
  try {
    return nlohmann::json::parse(value);
  } catch (const nlohmann::json::exception& e) {
    throw JSONDecodeError(e.what());
  }
}

std::string url_escape(std::string_view value, bool plus) { return http::url_escape(value, plus); }

std::string url_unescape(std::string_view value, bool plus) { return http::url_unescape(value, plus); }

std::string squeeze(std::string_view value) {
  std::string collapsed;
  collapsed.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (static_cast<unsigned char>(value[i]) <= 0x20) {
      while (i + 1 < value.size() && static_cast<unsigned char>(value[i + 1]) <= 0x20) ++i;
      collapsed += ' ';
    } else {
      collapsed += value[i];
    }
  }
  return std::string(detail::strip_space(collapsed));
}

std::string linkify(std::string_view text, const LinkifyOptions& options) {
  std::string escaped = xhtml_escape(text);
  std::string_view s = escaped;
  std::string extra = options.extra_params.empty() ? std::string() : " " + strip_copy(options.extra_params);
  std::string out;
  out.reserve(s.size());
  bool prev_word = false;  // \b at the start of the string: nothing before
  std::size_t i = 0;
  while (i < s.size()) {
    detail::Decoded d = decode_utf8(s, i);
    bool word = detail::is_word(d.cp);
    std::optional<UrlMatch> m;
    if (word != prev_word) m = match_url(s, i);
    if (!m) {
      out.append(s, i, d.length);
      i += d.length;
      prev_word = word;
      continue;
    }
    std::string url(s.substr(i, m->end - i));
    bool has_proto = !m->proto.empty();
    bool permitted = !has_proto || std::find(options.permitted_protocols.begin(), options.permitted_protocols.end(),
                                             m->proto) != options.permitted_protocols.end();
    if ((options.require_protocol && !has_proto) || !permitted) {
      out += url;
    } else {
      std::string href = has_proto ? url : "http://" + url;
      std::string params = options.extra_params_cb ? " " + strip_copy(options.extra_params_cb(href)) : extra;
      std::string shown = options.shorten ? shorten_url(url, *m, href, params) : url;
      out += "<a href=\"";
      out += href;
      out += '"';
      out += params;
      out += '>';
      out += shown;
      out += "</a>";
    }
    prev_word = detail::is_word(detail::code_point_before(s, m->end));
    i = m->end;
  }
  return out;
}

}  // namespace squall::web
