#include "web/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <limits>

#include "squall/core/errors.hpp"

namespace squall::web::detail {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string hmac_hex(const EVP_MD* md, std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  // HMAC() with an empty key still needs a non-null pointer.
  static const unsigned char kEmpty = 0;
  const void* key_data = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  const auto* bytes = data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  if (HMAC(md, key_data, static_cast<int>(key.size()), bytes, data.size(), digest.data(), &length) == nullptr) {
    throw Error("HMAC failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

}  // namespace

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    out += kHexDigits[u >> 4];
    out += kHexDigits[u & 0xf];
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t n = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += kBase64Alphabet[n >> 18 & 63];
    out += kBase64Alphabet[n >> 12 & 63];
    out += kBase64Alphabet[n >> 6 & 63];
    out += kBase64Alphabet[n & 63];
  }
  if (std::size_t left = bytes.size() - i; left > 0) {
    std::uint32_t n = at(i) << 16 | (left == 2 ? at(i + 1) << 8 : 0);
    out += kBase64Alphabet[n >> 18 & 63];
    out += kBase64Alphabet[n >> 12 & 63];
    out += left == 2 ? kBase64Alphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    std::size_t padding = 0;
    if (last && text[i + 3] == '=') padding = text[i + 2] == '=' ? 2 : 1;
    std::uint32_t n = 0;
    for (std::size_t k = 0; k < 4 - padding; ++k) {
      int v = base64_value(text[i + k]);
      if (v < 0) return std::nullopt;
      n = n << 6 | static_cast<std::uint32_t>(v);
    }
    n <<= 6 * padding;
    // Bits the padding leaves unused must be zero, so each byte string has
    // exactly one encoding.
    if ((padding == 1 && (n & 0xff) != 0) || (padding == 2 && (n & 0xffff) != 0)) return std::nullopt;
    out += static_cast<char>(n >> 16 & 0xff);
    if (padding < 2) out += static_cast<char>(n >> 8 & 0xff);
    if (padding < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) { return hmac_hex(EVP_sha256(), key, data); }

std::string hmac_sha1_hex(std::string_view key, std::string_view data) { return hmac_hex(EVP_sha1(), key, data); }

bool constant_time_equals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw Error("RAND_bytes failed: the system's random generator is not available");
  }
  return out;
}

std::optional<std::int64_t> parse_canonical_decimal(std::string_view s, std::size_t max_digits) noexcept {
  if (max_digits > 18) max_digits = 18;
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  if (s.size() > 1 && s.front() == '0') return std::nullopt;
  std::int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

std::optional<std::int64_t> version_prefix(std::string_view value, std::string_view* rest) noexcept {
  std::size_t i = 0;
  if (value.empty() || value[0] < '1' || value[0] > '9') return std::nullopt;
  while (i < value.size() && value[i] >= '0' && value[i] <= '9') ++i;
  if (i == value.size() || value[i] != '|') return std::nullopt;
  std::string_view after = value.substr(i + 1);
  // '.' does not match a newline and '$' matches at the end or before a
  // final newline: one newline is allowed, as the last byte.
  std::size_t newline = after.find('\n');
  if (newline != std::string_view::npos && newline + 1 != after.size()) return std::nullopt;
  if (rest != nullptr) *rest = after;
  std::string_view digits = value.substr(0, i);
  if (digits.size() > 18) return std::numeric_limits<std::int64_t>::max();
  std::int64_t n = 0;
  for (char c : digits) n = n * 10 + (c - '0');
  return n;
}

}  // namespace squall::web::detail
