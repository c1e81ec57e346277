// Private helpers shared by signed values and XSRF tokens: HMAC, hex and
// base64 codecs, constant-time comparison, random bytes, strict decimal
// parsing and Tornado's "N|" version prefix. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace squall::web::detail {

/// Lowercase hex of `bytes` (Python's binascii.b2a_hex).
std::string hex_encode(std::string_view bytes);
/// binascii.a2b_hex: an even number of hex digits, either case; nullopt
/// otherwise.
std::optional<std::string> hex_decode(std::string_view hex);

/// Standard-alphabet base64 with '=' padding (Python's base64.b64encode).
std::string base64_encode(std::string_view bytes);
/// Strict inverse of base64_encode: the standard alphabet, length a
/// multiple of four, padding only at the end, unused bits zero. Anything
/// else is nullopt (Python's b64decode is more lenient, but every value
/// this decodes was signed, so it was written by an encoder).
std::optional<std::string> base64_decode(std::string_view text);

/// Lowercase hex HMAC-SHA256 / HMAC-SHA1 of `data` under `key`.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
std::string hmac_sha1_hex(std::string_view key, std::string_view data);

/// hmac.compare_digest: false at once when the lengths differ (lengths are
/// not secret), otherwise CRYPTO_memcmp, whose time does not depend on
/// where the bytes differ.
bool constant_time_equals(std::string_view a, std::string_view b) noexcept;

/// `n` bytes from OpenSSL's CSPRNG (RAND_bytes). Throws squall::Error if
/// the generator fails.
std::string random_bytes(std::size_t n);

/// A non-negative decimal integer written canonically: ASCII digits only,
/// no sign, no leading zero (except "0" itself), at most `max_digits`
/// digits (at most 18, so it fits an int64). nullopt otherwise.
std::optional<std::int64_t> parse_canonical_decimal(std::string_view s, std::size_t max_digits = 18) noexcept;

/// The version number of a value matching Tornado's
/// `_signed_value_version_re` (br"^([1-9][0-9]*)\|(.*)$", re.match without
/// DOTALL): a decimal without leading zero, '|', then a rest with no
/// newline except possibly as its last byte. nullopt when it does not
/// match; a number too long for int64 saturates at INT64_MAX (callers only
/// compare it with small versions). `rest` gets the part after '|'.
std::optional<std::int64_t> version_prefix(std::string_view value, std::string_view* rest = nullptr) noexcept;

}  // namespace squall::web::detail
