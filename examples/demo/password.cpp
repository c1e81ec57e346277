#include "demo/password.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace demo {
namespace {

constexpr std::string_view kScheme = "pbkdf2_sha256";
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;  // SHA-256's output: longer would only slow us, not an attacker
// Bounds a stored iteration count, so a corrupt row cannot stall a worker.
constexpr int kMaxIterations = 10'000'000;

std::string to_hex(const std::vector<unsigned char>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0x0f];
  }
  return out;
}

std::optional<std::vector<unsigned char>> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::vector<unsigned char> out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]);
    int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<unsigned char>(hi * 16 + lo));
  }
  return out;
}

std::vector<unsigned char> derive(std::string_view password, const std::vector<unsigned char>& salt, int iterations) {
  std::vector<unsigned char> out(kHashBytes);
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                        iterations, EVP_sha256(), static_cast<int>(out.size()), out.data()) != 1) {
    throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  }
  return out;
}

}  // namespace

std::string hash_password(std::string_view password, int iterations) {
  if (iterations < 1 || iterations > kMaxIterations) throw std::invalid_argument("hash_password: bad iteration count");
  std::vector<unsigned char> salt(kSaltBytes);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return std::string(kScheme) + "$" + std::to_string(iterations) + "$" + to_hex(salt) + "$" +
         to_hex(derive(password, salt, iterations));
}

bool verify_password(std::string_view password, std::string_view stored) noexcept {
  try {
    // scheme $ iterations $ salt $ hash: exactly four fields.
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    while (fields.size() < 5) {
      std::size_t end = stored.find('$', start);
      fields.push_back(stored.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    if (fields.size() != 4 || fields[0] != kScheme) return false;
    int iterations = 0;
    auto [ptr, ec] = std::from_chars(fields[1].data(), fields[1].data() + fields[1].size(), iterations);
    if (ec != std::errc() || ptr != fields[1].data() + fields[1].size()) return false;
    if (iterations < 1 || iterations > kMaxIterations) return false;
    auto salt = from_hex(fields[2]);
    auto expected = from_hex(fields[3]);
    if (!salt || salt->empty() || !expected || expected->size() != kHashBytes) return false;
    std::vector<unsigned char> actual = derive(password, *salt, iterations);
    // Constant time: how many leading bytes match must not show in the timing.
    return CRYPTO_memcmp(actual.data(), expected->data(), kHashBytes) == 0;
  } catch (...) {
    return false;
  }
}

}  // namespace demo
