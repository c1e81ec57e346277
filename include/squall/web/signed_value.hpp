// Signed, timestamped values (Tornado's create_signed_value /
// decode_signed_value), the format of signed cookies. Pure functions of
// their arguments plus the wall clock; any thread may call them, and a
// CookieSecret may be shared read-only between threads.
//
// Version 2 (the default), byte for byte Tornado's:
//   2|1:<key version>|10:<timestamp>|<len>:<name>|<len>:<base64 value>|<hex HMAC-SHA256>
// e.g. "2|1:0|10:1300000000|3:foo|8:YmFyYmF6|<64 hex digits>". Every field
// but the first is length-prefixed, and the HMAC covers everything before
// it (final '|' included) under the secret of that key version.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace squall::web {

/// The application's signing key: one secret (Tornado's `cookie_secret`
/// string), or several secrets by key version with the one used for new
/// values (Tornado's `cookie_secret` dict with the `key_version` setting),
/// which lets keys rotate: sign with the newest, still accept the others
/// until they are dropped from the map.
///
///   CookieSecret single = "long random string";
///   auto rotating = CookieSecret::versioned({{1, "old secret"}, {2, "new secret"}}, 2);
class CookieSecret {
 public:
  /// One secret. Implicit, so a string can be passed wherever a
  /// CookieSecret is expected, as in Tornado. Throws std::invalid_argument
  /// if `secret` is empty (an empty HMAC key lets anyone sign).
  CookieSecret(std::string secret);
  CookieSecret(const char* secret) : CookieSecret(std::string(secret)) {}

  /// Secrets by key version; new values are signed with `current`. Throws
  /// std::invalid_argument if `secrets` is empty, holds an empty secret or
  /// a negative version, or has no entry for `current`.
  static CookieSecret versioned(std::map<int, std::string> secrets, int current);

  /// True when built by versioned().
  bool is_versioned() const noexcept { return current_.has_value(); }
  /// The key version new values are signed with: `current` for a
  /// versioned secret, 0 for a single one (the field Tornado writes then).
  int key_version() const noexcept { return current_.value_or(0); }
  /// The secret new values are signed with.
  const std::string& signing_secret() const noexcept { return secrets_.at(key_version()); }
  /// The secret that verifies a value of `key_version`, or null if there
  /// is none. A single secret verifies every key version, as in Tornado.
  /// The pointer is valid while this CookieSecret lives.
  const std::string* find(int key_version) const noexcept;

 private:
  CookieSecret() = default;
  std::map<int, std::string> secrets_;  // a single secret is stored as version 0
  std::optional<int> current_;
};

/// Tornado's DEFAULT_SIGNED_VALUE_VERSION.
inline constexpr int kDefaultSignedValueVersion = 2;

/// How create_signed_value signs.
struct CreateSignedValueOptions {
  /// 2, or 1 (Tornado's legacy HMAC-SHA1 format "<base64>|<timestamp>|<hex
  /// sig>"; single secrets only). Only for talking to old readers.
  int version{kDefaultSignedValueVersion};
  /// The signing time; empty means system_clock::now(). Truncated to
  /// whole seconds, as Tornado's int(time.time()).
  std::optional<std::chrono::system_clock::time_point> now{};
};

/// Signs `value` (any bytes) under `name` with the secret's signing key:
/// what set_signed_cookie stores. `name` should be a cookie-name token
/// (Tornado assumes "~alphanumeric"); it is length-prefixed, not encoded.
/// Throws std::invalid_argument for an unknown version or version 1 with a
/// versioned secret.
std::string create_signed_value(const CookieSecret& secret, std::string_view name, std::string_view value,
                                const CreateSignedValueOptions& options = {});

/// How decode_signed_value checks.
struct DecodeSignedValueOptions {
  /// Values signed longer ago than this are rejected (Tornado's default).
  double max_age_days{31};
  /// The oldest format accepted: 2 rejects legacy version-1 values (the
  /// default here, and the safe choice: version 1 is HMAC-SHA1 without
  /// field delimiters); 1 also accepts them, as Tornado 6.2 does by default.
  int min_version{2};
  /// The current time; empty means system_clock::now().
  std::optional<std::chrono::system_clock::time_point> now{};
};

/// Timestamps further in the future than this are rejected (Tornado's
/// check for version 1, applied here to version 2 too: a value stamped in
/// the future by a signer with a wrong clock would outlive max_age_days).
inline constexpr std::chrono::seconds kMaxSignedValueClockSkew{31 * 86400};

/// The value signed by create_signed_value under `name`, or nullopt if
/// `value` is not one: malformed (any field), signed with another secret
/// or an unknown key version, tampered with, made for another name,
/// expired, stamped more than kMaxSignedValueClockSkew in the future, or
/// of a version below min_version. Never throws for any `value`; throws
/// std::invalid_argument only for options out of range (min_version not 1
/// or 2, max_age_days NaN). Signatures are compared in constant time.
std::optional<std::string> decode_signed_value(const CookieSecret& secret, std::string_view name,
                                               std::string_view value, const DecodeSignedValueOptions& options = {});

/// The key version a version-2 value says it was signed with, without
/// checking its signature (Tornado's get_signature_key_version): to find
/// cookies still signed with an old key and re-sign them. nullopt for
/// anything that is not a well-formed version-2 value.
std::optional<int> get_signature_key_version(std::string_view value);

}  // namespace squall::web
