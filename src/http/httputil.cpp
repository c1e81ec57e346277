#include "squall/http/httputil.hpp"

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "http/char_tables.hpp"
#include "squall/http/headers.hpp"

namespace squall::http {

namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, 7> kWeekdays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongWeekdays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                           "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void append_2(std::string& out, unsigned v) {
  out += static_cast<char>('0' + v / 10 % 10);
  out += static_cast<char>('0' + v % 10);
}

/// A cursor over a date string; every step reports failure by returning false.
struct Cursor {
  std::string_view s;
  std::size_t i = 0;

  bool at_end() const noexcept { return i == s.size(); }
  bool lit(char c) noexcept {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool digits(std::size_t n, int& out) noexcept {
    if (s.size() - i < n) return false;
    int v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      char c = s[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    i += n;
    out = v;
    return true;
  }
  /// One of `names`, case-insensitively; its index in `index`.
  template <std::size_t N>
  bool name(const std::array<std::string_view, N>& names, int& index) noexcept {
    for (std::size_t k = 0; k < N; ++k) {
      std::string_view want = names[k];
      if (s.size() - i >= want.size() && iequals(s.substr(i, want.size()), want)) {
        // The name must end here: "Sunday" is not "Sun" followed by "day".
        std::size_t end = i + want.size();
        if (end < s.size() && ((s[end] >= 'a' && s[end] <= 'z') || (s[end] >= 'A' && s[end] <= 'Z'))) continue;
        i = end;
        index = static_cast<int>(k);
        return true;
      }
    }
    return false;
  }
  bool time(int& h, int& m, int& sec) noexcept {
    return digits(2, h) && lit(':') && digits(2, m) && lit(':') && digits(2, sec) && h <= 23 && m <= 59 && sec <= 60;
  }
  bool gmt() noexcept {
    if (s.size() - i < 3 || !iequals(s.substr(i, 3), "GMT")) return false;
    i += 3;
    return true;
  }
};

std::optional<system_clock::time_point> make_time(int year, int month, int day, int h, int m, int sec) {
  year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month + 1)),
                     std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  // Counted in seconds so dates beyond system_clock's range (cookies that
  // expire in 9999) clamp instead of overflowing its nanoseconds.
  seconds since_epoch = duration_cast<seconds>(sys_days(ymd).time_since_epoch()) + hours(h) + minutes(m) + seconds(sec);
  constexpr seconds kMax = duration_cast<seconds>(system_clock::time_point::max().time_since_epoch());
  constexpr seconds kMin = duration_cast<seconds>(system_clock::time_point::min().time_since_epoch());
  if (since_epoch >= kMax) return system_clock::time_point::max();
  if (since_epoch <= kMin) return system_clock::time_point::min();
  return system_clock::time_point(duration_cast<system_clock::duration>(since_epoch));
}

std::string_view trim(std::string_view s) noexcept {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = kLower[static_cast<unsigned char>(c)];
  return out;
}

/// Strips one level of double quotes, undoing \" and \\ (email.utils.unquote).
std::string unquote(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  v = v.substr(1, v.size() - 2);
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size() && (v[i + 1] == '\\' || v[i + 1] == '"')) ++i;
    out += v[i];
  }
  return out;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void percent_decode_into(std::string_view v, std::string& out) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size() && hex_value(v[i + 1]) >= 0 && hex_value(v[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(v[i + 1]) * 16 + hex_value(v[i + 2]));
      i += 2;
    } else {
      out += v[i];
    }
  }
}

/// Bytes in `charset` to UTF-8: Latin-1 (and ASCII) are widened, anything
/// else (UTF-8, unknown sets) is passed through as bytes.
std::string to_utf8(std::string_view charset, std::string bytes) {
  if (!iequals(charset, "iso-8859-1") && !iequals(charset, "latin-1") && !iequals(charset, "latin1")) return bytes;
  std::string out;
  out.reserve(bytes.size());
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      out += c;
    } else {
      out += static_cast<char>(0xC0 | (u >> 6));
      out += static_cast<char>(0x80 | (u & 0x3F));
    }
  }
  return out;
}

/// Pieces of one RFC 2231 parameter: a plain `name*` or `name*0`, `name*1*`...
struct ExtendedParam {
  std::map<unsigned, std::pair<bool, std::string_view>> pieces;  // index → (encoded, raw value)
};

}  // namespace

std::string format_timestamp(system_clock::time_point t) {
  auto secs = floor<seconds>(t);
  auto day = floor<days>(secs);
  year_month_day ymd{day};
  hh_mm_ss<seconds> hms{secs - day};
  unsigned wd = weekday{day}.c_encoding();
  std::string out;
  out.reserve(29);
  out.append(kWeekdays[wd]);
  out += ", ";
  append_2(out, static_cast<unsigned>(ymd.day()));
  out += ' ';
  out.append(kMonths[static_cast<unsigned>(ymd.month()) - 1]);
  out += ' ';
  int year = static_cast<int>(ymd.year());
  append_2(out, static_cast<unsigned>(year / 100));
  append_2(out, static_cast<unsigned>(year % 100));
  out += ' ';
  append_2(out, static_cast<unsigned>(hms.hours().count()));
  out += ':';
  append_2(out, static_cast<unsigned>(hms.minutes().count()));
  out += ':';
  append_2(out, static_cast<unsigned>(hms.seconds().count()));
  out += " GMT";
  return out;
}

std::optional<system_clock::time_point> parse_http_date(std::string_view value) {
  Cursor c{trim(value)};
  int wd = 0, day = 0, month = 0, year = 0, h = 0, m = 0, sec = 0;
  if (c.name(kLongWeekdays, wd)) {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    if (!(c.lit(',') && c.lit(' ') && c.digits(2, day) && c.lit('-') && c.name(kMonths, month) && c.lit('-') &&
          c.digits(2, year) && c.lit(' ') && c.time(h, m, sec) && c.lit(' ') && c.gmt() && c.at_end())) {
      return std::nullopt;
    }
    year += year > 68 ? 1900 : 2000;
    return make_time(year, month, day, h, m, sec);
  }
  if (!c.name(kWeekdays, wd)) return std::nullopt;
  if (c.lit(',')) {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    if (!(c.lit(' ') && c.digits(2, day) && c.lit(' ') && c.name(kMonths, month) && c.lit(' ') && c.digits(4, year) &&
          c.lit(' ') && c.time(h, m, sec) && c.lit(' ') && c.gmt() && c.at_end())) {
      return std::nullopt;
    }
    return make_time(year, month, day, h, m, sec);
  }
  // asctime: Sun Nov  6 08:49:37 1994
  if (!(c.lit(' ') && c.name(kMonths, month) && c.lit(' '))) return std::nullopt;
  if (c.lit(' ')) {
    if (!c.digits(1, day)) return std::nullopt;
  } else if (!c.digits(2, day)) {
    return std::nullopt;
  }
  if (!(c.lit(' ') && c.time(h, m, sec) && c.lit(' ') && c.digits(4, year) && c.at_end())) return std::nullopt;
  return make_time(year, month, day, h, m, sec);
}

ContentType parse_content_type(std::string_view value) {
  ContentType out;
  // Split on ';' outside double quotes, in one pass (Tornado's _parseparam
  // recounts quotes from the start of the value for every ';').
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (quoted && c == '\\') {
      ++i;  // an escaped character, whatever it is
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ';' && !quoted) {
      parts.push_back(value.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(value.substr(start < value.size() ? start : value.size()));
  out.type = lower(trim(parts[0]));

  std::map<std::string, ExtendedParam> extended;
  for (std::size_t k = 1; k < parts.size(); ++k) {
    std::string_view part = trim(parts[k]);
    std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = lower(trim(part.substr(0, eq)));
    std::string_view raw = trim(part.substr(eq + 1));
    std::size_t star = name.find('*');
    if (star == std::string::npos || star == 0) {
      out.params.insert_or_assign(std::move(name), unquote(raw));
      continue;
    }
    // RFC 2231 section 3-4: name*, name*N, name*N*.
    std::string_view suffix = std::string_view(name).substr(star + 1);
    bool encoded = false;
    unsigned index = 0;
    if (suffix.empty()) {
      encoded = true;
    } else {
      if (suffix.back() == '*') {
        encoded = true;
        suffix.remove_suffix(1);
      }
      if (suffix.empty() || suffix.size() > 4) continue;
      bool digits = true;
      for (char c : suffix) digits = digits && c >= '0' && c <= '9';
      if (!digits) continue;
      for (char c : suffix) index = index * 10 + static_cast<unsigned>(c - '0');
    }
    extended[name.substr(0, star)].pieces.insert_or_assign(index, std::pair{encoded, raw});
  }
  for (auto& [name, param] : extended) {
    std::string bytes;
    std::string_view charset;
    bool first = true;
    for (auto& [index, piece] : param.pieces) {
      auto [encoded, raw] = piece;
      if (!encoded) {
        bytes += unquote(raw);
      } else {
        if (first && index == 0) {
          // charset'language'value
          std::size_t q1 = raw.find('\'');
          std::size_t q2 = q1 == std::string_view::npos ? q1 : raw.find('\'', q1 + 1);
          if (q2 != std::string_view::npos) {
            charset = raw.substr(0, q1);
            raw = raw.substr(q2 + 1);
          }
        }
        percent_decode_into(raw, bytes);
      }
      first = false;
    }
    out.params.insert_or_assign(name, to_utf8(charset, std::move(bytes)));
  }
  return out;
}

std::string_view responses(int code) noexcept {
  switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a Teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
  }
}

}  // namespace squall::http
