// Password hashing for the demo's users: PBKDF2-HMAC-SHA256 (OpenSSL) with
// a random salt per password, compared in constant time. Pure functions,
// callable from any thread; hashing is deliberately slow, so handlers run
// it on an executor, never on the loop.
#pragma once

#include <string>
#include <string_view>

namespace demo {

/// Iterations of a new hash (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
inline constexpr int kDefaultPasswordIterations = 600'000;

/// A new hash of `password` with a fresh 16-byte salt, stored as
/// "pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>". Throws
/// std::invalid_argument for iterations outside 1..10,000,000 and
/// std::runtime_error if OpenSSL fails.
std::string hash_password(std::string_view password, int iterations = kDefaultPasswordIterations);

/// True if `password` matches `stored` (a hash_password result). A stored
/// value that is malformed (wrong scheme, bad hex, iterations out of range,
/// truncated) never matches, whatever the password.
bool verify_password(std::string_view password, std::string_view stored) noexcept;

}  // namespace demo
