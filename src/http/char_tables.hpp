// Character classes for HTTP parsing, as constexpr lookup tables (one load
// per byte instead of a chain of comparisons). Private to src/http.
#pragma once

#include <array>
#include <string_view>

namespace squall::http {

/// RFC 9110 section 5.6.2: tchar.
inline constexpr std::array<bool, 256> kTokenChar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

/// Field-value bytes (RFC 9110 section 5.5): VCHAR, obs-text, SP, HTAB.
inline constexpr std::array<bool, 256> kFieldValueChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] = true;
  for (int c = 0x80; c < 0x100; ++c) t[c] = true;
  t['\t'] = true;
  return t;
}();

/// Request-target bytes: visible ASCII (no SP, no controls) and obs-text
/// is refused; percent-encoding carries everything else.
inline constexpr std::array<bool, 256> kTargetChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0x21; c < 0x7f; ++c) t[c] = true;
  return t;
}();

inline constexpr std::array<char, 256> kLower = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return t;
}();

}  // namespace squall::http
