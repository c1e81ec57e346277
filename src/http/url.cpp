#include "squall/http/url.hpp"

#include <stdexcept>

namespace squall::http {

namespace {

constexpr std::size_t npos = std::string_view::npos;
constexpr char kHex[] = "0123456789ABCDEF";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Python's urllib.parse "always safe" set.
bool always_safe(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-' || c == '~';
}

void unescape_into(std::string_view value, bool plus, std::string& out) {
  out.reserve(out.size() + value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '+' && plus) {
      out += ' ';
    } else if (c == '%' && i + 2 < value.size() && hex_value(value[i + 1]) >= 0 && hex_value(value[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(value[i + 1]) * 16 + hex_value(value[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
}

void append_query(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += '&';
  out += url_escape(name, true);
  out += '=';
  out += url_escape(value, true);
}

std::string concat(std::string_view url, std::string extra_query) {
  std::string_view fragment;
  bool has_fragment = false;
  if (std::size_t hash = url.find('#'); hash != npos) {
    fragment = url.substr(hash + 1);
    url = url.substr(0, hash);
    has_fragment = true;
  }
  std::string_view query;
  if (std::size_t q = url.find('?'); q != npos) {
    query = url.substr(q + 1);
    url = url.substr(0, q);
  }
  // Tornado re-encodes the existing query through parse_qsl(keep_blank_values=True).
  std::string encoded;
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t amp = query.find('&', pos);
    std::string_view field = query.substr(pos, amp == npos ? npos : amp - pos);
    pos = amp == npos ? query.size() : amp + 1;
    if (field.empty()) continue;
    std::size_t eq = field.find('=');
    std::string name, value;
    unescape_into(field.substr(0, eq), true, name);
    if (eq != npos) unescape_into(field.substr(eq + 1), true, value);
    append_query(encoded, name, value);
  }
  if (!extra_query.empty()) {
    if (!encoded.empty()) encoded += '&';
    encoded += extra_query;
  }
  std::string out(url);
  if (!encoded.empty()) {
    out += '?';
    out += encoded;
  }
  if (has_fragment) {
    out += '#';
    out.append(fragment);
  }
  return out;
}

bool is_scheme_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

std::optional<std::uint16_t> parse_port(std::string_view digits) {
  if (digits.empty()) return std::nullopt;  // "host:" means the default port
  unsigned value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') throw std::invalid_argument("invalid port in URL");
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) throw std::invalid_argument("port out of range in URL");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string url_escape(std::string_view value, bool plus) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (always_safe(c) || (!plus && c == '/')) {
      out += c;
    } else if (plus && c == ' ') {
      out += '+';
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string url_unescape(std::string_view value, bool plus) {
  std::string out;
  unescape_into(value, plus, out);
  return out;
}

void parse_qs_into(std::string_view query, QueryArguments& out, bool keep_blank_values) {
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t amp = query.find('&', pos);
    std::string_view field = query.substr(pos, amp == npos ? npos : amp - pos);
    pos = amp == npos ? query.size() : amp + 1;
    if (field.empty()) continue;
    std::size_t eq = field.find('=');
    if (eq == npos && !keep_blank_values) continue;
    std::string_view raw_value = eq == npos ? std::string_view() : field.substr(eq + 1);
    if (raw_value.empty() && !keep_blank_values) continue;
    std::string name;
    unescape_into(field.substr(0, eq), true, name);
    std::string value;
    unescape_into(raw_value, true, value);
    out[std::move(name)].push_back(std::move(value));
  }
}

QueryArguments parse_qs(std::string_view query, bool keep_blank_values) {
  QueryArguments out;
  parse_qs_into(query, out, keep_blank_values);
  return out;
}

std::string url_concat(std::string_view url, const std::vector<std::pair<std::string, std::string>>& args) {
  std::string extra;
  for (const auto& [name, value] : args) append_query(extra, name, value);
  return concat(url, std::move(extra));
}

std::string url_concat(std::string_view url, const QueryArguments& args) {
  std::string extra;
  for (const auto& [name, values] : args) {
    for (const auto& value : values) append_query(extra, name, value);
  }
  return concat(url, std::move(extra));
}

SplitURL split_url(std::string_view url) {
  SplitURL out;
  std::string_view rest = url;
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" (RFC 3986 section 3.1)
  if (!rest.empty() && ((rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= 'A' && rest[0] <= 'Z'))) {
    std::size_t i = 1;
    while (i < rest.size() && is_scheme_char(rest[i])) ++i;
    if (i < rest.size() && rest[i] == ':') {
      out.scheme = rest.substr(0, i);
      rest.remove_prefix(i + 1);
    }
  }
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    std::size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    rest = end == npos ? std::string_view() : rest.substr(end);
    if (std::size_t at = authority.rfind('@'); at != npos) {
      out.userinfo = authority.substr(0, at);
      authority.remove_prefix(at + 1);
    }
    if (!authority.empty() && authority[0] == '[') {
      std::size_t close = authority.find(']');
      if (close == npos) throw std::invalid_argument("unclosed '[' in URL host");
      out.host = authority.substr(1, close - 1);
      std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after[0] != ':') throw std::invalid_argument("invalid characters after an IPv6 host in URL");
        out.port = parse_port(after.substr(1));
      }
    } else {
      if (authority.find(']') != npos) throw std::invalid_argument("unopened ']' in URL host");
      std::size_t colon = authority.rfind(':');
      out.host = authority.substr(0, colon);
      if (colon != npos) out.port = parse_port(authority.substr(colon + 1));
    }
  }
  if (std::size_t hash = rest.find('#'); hash != npos) {
    out.fragment = rest.substr(hash + 1);
    rest = rest.substr(0, hash);
  }
  if (std::size_t q = rest.find('?'); q != npos) {
    out.query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  out.path = rest;
  return out;
}

}  // namespace squall::http
