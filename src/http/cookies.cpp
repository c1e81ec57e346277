#include "squall/http/cookies.hpp"

#include <stdexcept>

#include "squall/http/headers.hpp"
#include "squall/http/httputil.hpp"

namespace squall::http {

namespace {

/// Python's str.strip() for ASCII whitespace.
std::string_view strip(std::string_view s) noexcept {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_octal(char c) noexcept { return c >= '0' && c <= '7'; }

/// http.cookies._unquote: one pass over the value, so a value full of
/// backslashes stays linear (CPython's fix for CVE-2024-7592).
std::string unquote_cookie(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  v = v.substr(1, v.size() - 2);
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c != '\\' || i + 1 >= v.size()) {
      out += c;
    } else if (i + 3 < v.size() && v[i + 1] >= '0' && v[i + 1] <= '3' && is_octal(v[i + 2]) && is_octal(v[i + 3])) {
      out += static_cast<char>((v[i + 1] - '0') * 64 + (v[i + 2] - '0') * 8 + (v[i + 3] - '0'));
      i += 3;
    } else if (v[i + 1] == '\n') {
      out += c;  // the regex's '.' does not match a newline: the backslash stays
    } else {
      out += v[i + 1];
      ++i;
    }
  }
  return out;
}

/// Python's http.cookies._LegalChars.
bool legal_cookie_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~:").find(c) != std::string_view::npos;
}

/// Control characters, space and ';' would end the cookie or the header.
void check_safe(std::string_view what, std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == ';') {
      throw std::invalid_argument("invalid character in cookie " + std::string(what));
    }
  }
}

/// http.cookies._quote.
void append_quoted(std::string& out, std::string_view value) {
  bool legal = true;
  for (char c : value) legal = legal && legal_cookie_char(c);
  if (legal) {
    out.append(value);
    return;
  }
  out += '"';
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u > 0x7e) {
      out += '\\';
      out += static_cast<char>('0' + (u >> 6));
      out += static_cast<char>('0' + ((u >> 3) & 7));
      out += static_cast<char>('0' + (u & 7));
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::map<std::string, std::string> parse_cookie(std::string_view header) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= header.size()) {
    std::size_t semi = header.find(';', pos);
    std::string_view chunk = header.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
    pos = semi == std::string_view::npos ? header.size() + 1 : semi + 1;
    std::string_view key, val;
    if (std::size_t eq = chunk.find('='); eq != std::string_view::npos) {
      key = chunk.substr(0, eq);
      val = chunk.substr(eq + 1);
    } else {
      // An empty name, as browsers do (https://bugzilla.mozilla.org/show_bug.cgi?id=169091).
      val = chunk;
    }
    key = strip(key);
    val = strip(val);
    if (key.empty() && val.empty()) continue;
    out.insert_or_assign(std::string(key), unquote_cookie(val));
  }
  return out;
}

std::string format_set_cookie(std::string_view name, std::string_view value, const CookieOptions& options) {
  if (!is_token(name)) throw std::invalid_argument("invalid cookie name: " + std::string(name));
  check_safe("value", value);
  check_safe("domain", options.domain);
  check_safe("path", options.path);
  if (!options.samesite.empty() && !iequals(options.samesite, "Strict") && !iequals(options.samesite, "Lax") &&
      !iequals(options.samesite, "None")) {
    throw std::invalid_argument("invalid cookie SameSite: " + options.samesite);
  }
  std::string out;
  out.append(name);
  out += '=';
  append_quoted(out, value);
  if (!options.domain.empty()) {
    out += "; Domain=";
    out += options.domain;
  }
  if (options.expires) {
    out += "; expires=";
    out += format_timestamp(*options.expires);
  }
  if (options.httponly) out += "; HttpOnly";
  if (options.max_age) {
    out += "; Max-Age=";
    out += std::to_string(options.max_age->count());
  }
  if (!options.path.empty()) {
    out += "; Path=";
    out += options.path;
  }
  if (!options.samesite.empty()) {
    out += "; SameSite=";
    out += options.samesite;
  }
  if (options.secure) out += "; Secure";
  return out;
}

}  // namespace squall::http
