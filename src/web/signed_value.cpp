#include "squall/web/signed_value.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "web/crypto.hpp"

namespace squall::web {

namespace {

using std::chrono::system_clock;

constexpr double kSecondsPerDay = 86400;

/// Tornado writes versions up to 999 in front of a '|'; a longer number is
/// the start of a version-1 value's base64 (see _get_version).
constexpr std::int64_t kMaxVersionNumber = 999;

/// Decimal fields (lengths, key versions, timestamps) longer than this are
/// malformed: every real one fits easily, and the bound keeps the arithmetic
/// far from overflow.
constexpr std::size_t kMaxDigits = 18;

std::int64_t seconds_since_epoch(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

double now_seconds(const std::optional<system_clock::time_point>& now) {
  auto t = now.value_or(system_clock::now());
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

/// Tornado's _get_version.
int value_version(std::string_view value) noexcept {
  auto v = detail::version_prefix(value);
  if (!v || *v > kMaxVersionNumber) return 1;
  return static_cast<int>(*v);
}

/// "<len>:<s>" as format_field writes it.
void append_field(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out.append(s);
  out += '|';
}

/// The fields of a version-2 value, views into it.
struct FieldsV2 {
  std::int64_t key_version{};
  std::string_view timestamp{};
  std::string_view name{};
  std::string_view value{};
  std::string_view signed_part{};  // everything before the signature
  std::string_view signature{};
};

/// Consumes "<len>:<bytes>|" from the front of `rest` (_consume_field),
/// with the length in canonical decimal.
std::optional<std::string_view> consume_field(std::string_view& rest) noexcept {
  std::size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto length = detail::parse_canonical_decimal(rest.substr(0, colon), kMaxDigits);
  if (!length) return std::nullopt;
  std::string_view after = rest.substr(colon + 1);
  auto n = static_cast<std::uint64_t>(*length);
  if (n >= after.size() || after[n] != '|') return std::nullopt;
  std::string_view field = after.substr(0, n);
  rest = after.substr(n + 1);
  return field;
}

/// _decode_fields_v2 for a value whose version prefix is "2|".
std::optional<FieldsV2> decode_fields_v2(std::string_view value) noexcept {
  if (value.size() < 2 || value.substr(0, 2) != "2|") return std::nullopt;
  std::string_view rest = value.substr(2);
  auto key_version = consume_field(rest);
  if (!key_version) return std::nullopt;
  auto timestamp = consume_field(rest);
  if (!timestamp) return std::nullopt;
  auto name = consume_field(rest);
  if (!name) return std::nullopt;
  auto body = consume_field(rest);
  if (!body) return std::nullopt;
  // Key versions are ints (CookieSecret's map keys): nine digits at most.
  auto kv = detail::parse_canonical_decimal(*key_version, 9);
  if (!kv) return std::nullopt;
  FieldsV2 f;
  f.key_version = *kv;
  f.timestamp = *timestamp;
  f.name = *name;
  f.value = *body;
  f.signature = rest;
  f.signed_part = value.substr(0, value.size() - rest.size());
  return f;
}

/// Expired, or further in the future than the allowed skew.
bool timestamp_out_of_range(std::int64_t timestamp, const DecodeSignedValueOptions& options) {
  double now = now_seconds(options.now);
  auto t = static_cast<double>(timestamp);
  if (t < now - options.max_age_days * kSecondsPerDay) return true;
  return t > now + static_cast<double>(kMaxSignedValueClockSkew.count());
}

std::optional<std::string> decode_v2(const CookieSecret& secret, std::string_view name, std::string_view value,
                                     const DecodeSignedValueOptions& options) {
  auto fields = decode_fields_v2(value);
  if (!fields) return std::nullopt;
  const std::string* key = secret.find(static_cast<int>(fields->key_version));
  if (key == nullptr) return std::nullopt;
  std::string expected = detail::hmac_sha256_hex(*key, fields->signed_part);
  if (!detail::constant_time_equals(fields->signature, expected)) return std::nullopt;
  if (fields->name != name) return std::nullopt;
  auto timestamp = detail::parse_canonical_decimal(fields->timestamp, kMaxDigits);
  if (!timestamp || timestamp_out_of_range(*timestamp, options)) return std::nullopt;
  return detail::base64_decode(fields->value);
}

/// Version 1: "<base64>|<timestamp>|<hex HMAC-SHA1 of name, base64, timestamp>".
std::optional<std::string> decode_v1(const CookieSecret& secret, std::string_view name, std::string_view value,
                                     const DecodeSignedValueOptions& options) {
  // Tornado asserts on a versioned secret here; a request must not be able
  // to trigger that, so such a value is simply not valid.
  if (secret.is_versioned()) return std::nullopt;
  std::size_t first = value.find('|');
  if (first == std::string_view::npos) return std::nullopt;
  std::size_t second = value.find('|', first + 1);
  if (second == std::string_view::npos || value.find('|', second + 1) != std::string_view::npos) return std::nullopt;
  std::string_view body = value.substr(0, first);
  std::string_view timestamp_text = value.substr(first + 1, second - first - 1);
  std::string_view signature = value.substr(second + 1);
  std::string to_sign;
  to_sign.reserve(name.size() + body.size() + timestamp_text.size());
  to_sign.append(name).append(body).append(timestamp_text);
  if (!detail::constant_time_equals(signature, detail::hmac_sha1_hex(secret.signing_secret(), to_sign))) {
    return std::nullopt;
  }
  // No delimiter is hashed between the parts, so digits could move from the
  // payload to the timestamp: a leading zero or a far-future timestamp is
  // the sign of that (Tornado's checks).
  auto timestamp = detail::parse_canonical_decimal(timestamp_text, kMaxDigits);
  if (!timestamp || timestamp_out_of_range(*timestamp, options)) return std::nullopt;
  return detail::base64_decode(body);
}

}  // namespace

CookieSecret::CookieSecret(std::string secret) {
  if (secret.empty()) throw std::invalid_argument("cookie secret must not be empty");
  secrets_.emplace(0, std::move(secret));
}

CookieSecret CookieSecret::versioned(std::map<int, std::string> secrets, int current) {
  if (secrets.empty()) throw std::invalid_argument("versioned cookie secret needs at least one key");
  for (const auto& [version, secret] : secrets) {
    if (version < 0) throw std::invalid_argument("cookie secret key versions must not be negative");
    if (secret.empty()) throw std::invalid_argument("cookie secret must not be empty");
  }
  if (secrets.find(current) == secrets.end()) {
    throw std::invalid_argument("current key version " + std::to_string(current) + " has no secret");
  }
  CookieSecret s;
  s.secrets_ = std::move(secrets);
  s.current_ = current;
  return s;
}

const std::string* CookieSecret::find(int key_version) const noexcept {
  if (!current_) return &secrets_.begin()->second;
  auto it = secrets_.find(key_version);
  return it == secrets_.end() ? nullptr : &it->second;
}

std::string create_signed_value(const CookieSecret& secret, std::string_view name, std::string_view value,
                                const CreateSignedValueOptions& options) {
  std::string timestamp = std::to_string(seconds_since_epoch(options.now.value_or(system_clock::now())));
  std::string body = detail::base64_encode(value);
  if (options.version == 1) {
    if (secret.is_versioned()) throw std::invalid_argument("signed value version 1 does not support key versions");
    std::string to_sign;
    to_sign.append(name).append(body).append(timestamp);
    std::string signature = detail::hmac_sha1_hex(secret.signing_secret(), to_sign);
    return body + '|' + timestamp + '|' + signature;
  }
  if (options.version != 2) {
    throw std::invalid_argument("unsupported signed value version " + std::to_string(options.version));
  }
  std::string out = "2|";
  out.reserve(2 + 64 + name.size() + body.size() + 40);
  append_field(out, std::to_string(secret.key_version()));
  append_field(out, timestamp);
  append_field(out, name);
  append_field(out, body);
  out += detail::hmac_sha256_hex(secret.signing_secret(), out);
  return out;
}

std::optional<std::string> decode_signed_value(const CookieSecret& secret, std::string_view name,
                                               std::string_view value, const DecodeSignedValueOptions& options) {
  if (options.min_version < 1 || options.min_version > 2) {
    throw std::invalid_argument("unsupported min_version " + std::to_string(options.min_version));
  }
  if (std::isnan(options.max_age_days)) throw std::invalid_argument("max_age_days is NaN");
  if (value.empty()) return std::nullopt;
  int version = value_version(value);
  if (version < options.min_version) return std::nullopt;
  if (version == 1) return decode_v1(secret, name, value, options);
  if (version == 2) return decode_v2(secret, name, value, options);
  return std::nullopt;
}

std::optional<int> get_signature_key_version(std::string_view value) {
  if (value_version(value) < 2) return std::nullopt;
  auto fields = decode_fields_v2(value);
  if (!fields) return std::nullopt;
  return static_cast<int>(fields->key_version);
}

}  // namespace squall::web
