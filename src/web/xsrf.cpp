#include "squall/web/xsrf.hpp"

#include <stdexcept>

#include "squall/web/escape.hpp"
#include "web/crypto.hpp"

namespace squall::web {

namespace {

using std::chrono::system_clock;

constexpr std::size_t kMaskBytes = 4;

std::chrono::sys_seconds to_seconds(std::optional<system_clock::time_point> now) {
  return std::chrono::floor<std::chrono::seconds>(now.value_or(system_clock::now()));
}

/// RFC 6455 section 5.3 masking (Tornado's _websocket_mask): its own inverse.
std::string apply_mask(std::string_view mask, std::string_view data) {
  std::string out(data);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(out[i] ^ mask[i % kMaskBytes]);
  return out;
}

std::optional<XsrfToken> decode_v2(std::string_view rest) {
  // rest = "<mask hex>|<masked hex>|<timestamp>"
  std::size_t first = rest.find('|');
  if (first == std::string_view::npos) return std::nullopt;
  std::size_t second = rest.find('|', first + 1);
  if (second == std::string_view::npos || rest.find('|', second + 1) != std::string_view::npos) return std::nullopt;
  auto mask = detail::hex_decode(rest.substr(0, first));
  auto masked = detail::hex_decode(rest.substr(first + 1, second - first - 1));
  auto timestamp = detail::parse_canonical_decimal(rest.substr(second + 1));
  if (!mask || mask->size() != kMaskBytes || !masked || masked->empty() || !timestamp) return std::nullopt;
  XsrfToken t;
  t.version = 2;
  t.token = apply_mask(*mask, *masked);
  t.timestamp = std::chrono::sys_seconds(std::chrono::seconds(*timestamp));
  return t;
}

}  // namespace

XsrfToken generate_xsrf_token(std::optional<system_clock::time_point> now) {
  XsrfToken t;
  t.version = 0;
  t.token = detail::random_bytes(kXsrfTokenBytes);
  t.timestamp = to_seconds(now);
  return t;
}

std::string encode_xsrf_token(const XsrfToken& token, int version) {
  if (token.token.empty()) throw std::invalid_argument("empty XSRF token");
  if (version == 1) return detail::hex_encode(token.token);
  if (version != 2) throw std::invalid_argument("unknown XSRF cookie version " + std::to_string(version));
  std::string mask = detail::random_bytes(kMaskBytes);
  std::string out = "2|";
  out += detail::hex_encode(mask);
  out += '|';
  out += detail::hex_encode(apply_mask(mask, token.token));
  out += '|';
  out += std::to_string(token.timestamp.time_since_epoch().count());
  return out;
}

std::optional<XsrfToken> decode_xsrf_token(std::string_view value, std::optional<system_clock::time_point> now) {
  if (value.empty()) return std::nullopt;
  std::string_view rest;
  if (auto version = detail::version_prefix(value, &rest)) {
    // Unknown versions count as no token rather than as version 1.
    if (*version != 2) return std::nullopt;
    return decode_v2(rest);
  }
  XsrfToken t;
  t.version = 1;
  // Tornado falls back to the raw bytes when the value is not hex.
  t.token = detail::hex_decode(value).value_or(std::string(value));
  t.timestamp = to_seconds(now);
  return t;
}

XsrfCheck check_xsrf_token(std::string_view submitted, std::string_view cookie) {
  if (submitted.empty()) return XsrfCheck::missing;
  auto token = decode_xsrf_token(submitted);
  if (!token) return XsrfCheck::invalid_format;
  // Without a usable cookie Tornado compares with a freshly generated
  // token, which never matches.
  auto expected = decode_xsrf_token(cookie);
  if (!expected) return XsrfCheck::mismatch;
  return detail::constant_time_equals(token->token, expected->token) ? XsrfCheck::ok : XsrfCheck::mismatch;
}

std::string_view xsrf_check_message(XsrfCheck result) noexcept {
  switch (result) {
    case XsrfCheck::ok: return "";
    case XsrfCheck::missing: return "'_xsrf' argument missing from POST";
    case XsrfCheck::invalid_format: return "'_xsrf' argument has invalid format";
    case XsrfCheck::mismatch: return "XSRF cookie does not match POST argument";
  }
  return "";
}

std::string xsrf_form_html(std::string_view encoded_token) {
  return "<input type=\"hidden\" name=\"_xsrf\" value=\"" + xhtml_escape(encoded_token) + "\"/>";
}

}  // namespace squall::web
