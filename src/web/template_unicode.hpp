// UTF-8 helpers shared by escape.cpp and the template engine: decoding one
// code point, encoding one, and the two character classes Python's `re` and
// str methods use (\s / str.isspace and an approximation of \w). Private to
// src/web/; pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace squall::web::detail {

/// Marks a byte that does not start a valid UTF-8 sequence: decode_utf8
/// returns it with length 1, so callers step over invalid input byte by byte
/// and copy it through unchanged.
inline constexpr char32_t kInvalidCodePoint = 0xFFFFFFFF;

struct Decoded {
  char32_t cp;
  std::size_t length;  // bytes consumed, >= 1 unless at the end
};

/// Decodes the code point at `s[pos]` (pos < s.size()). Overlong forms,
/// surrogates and values past U+10FFFF are invalid (RFC 3629 section 3).
inline Decoded decode_utf8(std::string_view s, std::size_t pos) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  unsigned char c = b(0);
  if (c < 0x80) return {c, 1};
  std::size_t n;
  char32_t cp;
  char32_t min;
  if ((c & 0xE0) == 0xC0) {
    n = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return {kInvalidCodePoint, 1};
  }
  if (pos + n > s.size()) return {kInvalidCodePoint, 1};
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return {kInvalidCodePoint, 1};
    cp = (cp << 6) | (b(i) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kInvalidCodePoint, 1};
  return {cp, n};
}

/// Appends `cp` (a valid scalar value) as UTF-8.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Python's str.isspace(), which is also what `\s` matches in a str regex.
constexpr bool is_space(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/// An approximation of Python's `\w` on str (alphanumerics and '_'): exact
/// for ASCII and Latin-1; beyond that, the common punctuation, symbol and
/// emoji blocks are non-word and everything else counts as a letter.
/// Invalid bytes are non-word.
constexpr bool is_word(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  }
  if (cp == kInvalidCodePoint || is_space(cp)) return false;
  if (cp < 0xC0) {
    return cp == 0xAA || cp == 0xB2 || cp == 0xB3 || cp == 0xB5 || cp == 0xB9 || cp == 0xBA ||
           (cp >= 0xBC && cp <= 0xBE);
  }
  if (cp == 0xD7 || cp == 0xF7) return false;
  if (cp >= 0x2000 && cp <= 0x2BFF) return false;  // punctuation, symbols, arrows, math, boxes
  if ((cp >= 0x3000 && cp <= 0x3004) || (cp >= 0x3008 && cp <= 0x3020)) return false;
  if (cp >= 0xFE30 && cp <= 0xFE4F) return false;
  if ((cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
      (cp >= 0xFF5B && cp <= 0xFF65)) {
    return false;
  }
  if (cp >= 0x1F000 && cp <= 0x1FAFF) return false;  // emoji and pictographs
  return true;
}

/// The code point that ends just before `end` (decoding backwards over at
/// most four bytes), or kInvalidCodePoint when `end` is 0 or the bytes there
/// are not valid UTF-8.
inline char32_t code_point_before(std::string_view s, std::size_t end) {
  for (std::size_t n = 1; n <= 4 && n <= end; ++n) {
    unsigned char c = static_cast<unsigned char>(s[end - n]);
    if ((c & 0xC0) != 0x80) {
      Decoded d = decode_utf8(s, end - n);
      return d.length == n ? d.cp : kInvalidCodePoint;
    }
  }
  return kInvalidCodePoint;
}

/// Strips Python-whitespace (is_space) from both ends, as str.strip().
inline std::string_view strip_space(std::string_view s) {
  std::size_t begin = 0;
  while (begin < s.size()) {
    Decoded d = decode_utf8(s, begin);
    if (!is_space(d.cp)) break;
    begin += d.length;
  }
  std::size_t end = s.size();
  while (end > begin) {
    char32_t cp = code_point_before(s, end);
    if (!is_space(cp)) break;
    std::size_t n = 1;
    while ((static_cast<unsigned char>(s[end - n]) & 0xC0) == 0x80) ++n;
    end -= n;
  }
  return s.substr(begin, end - begin);
}

}  // namespace squall::web::detail
