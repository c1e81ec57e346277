#include "squall/websocket/frame.hpp"

#include <cstring>

namespace squall::websocket {

bool is_valid_close_code(int code) noexcept {
  // RFC 6455 section 7.4.1/7.4.2 and the IANA registry (1012-1014 were
  // registered later; Autobahn's cases 7.7 and 7.9 test the same set).
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

FrameStatus parse_frame_header(std::string_view input, FrameHeader& out) noexcept {
  if (input.size() < 2) return FrameStatus::kPartial;
  auto b0 = static_cast<std::uint8_t>(input[0]);
  auto b1 = static_cast<std::uint8_t>(input[1]);
  out.fin = (b0 & 0x80) != 0;
  out.rsv1 = (b0 & 0x40) != 0;
  out.rsv2 = (b0 & 0x20) != 0;
  out.rsv3 = (b0 & 0x10) != 0;
  out.opcode = static_cast<Opcode>(b0 & 0x0F);
  out.masked = (b1 & 0x80) != 0;
  std::size_t need = 2;
  std::uint64_t length = b1 & 0x7F;
  if (length == 126) {
    need += 2;
  } else if (length == 127) {
    need += 8;
  }
  if (out.masked) need += 4;
  if (input.size() < need) return FrameStatus::kPartial;
  std::size_t at = 2;
  if (length == 126) {
    length = (std::uint64_t{static_cast<std::uint8_t>(input[2])} << 8) | static_cast<std::uint8_t>(input[3]);
    at = 4;
  } else if (length == 127) {
    length = 0;
    for (int i = 0; i < 8; ++i) length = (length << 8) | static_cast<std::uint8_t>(input[2 + i]);
    at = 10;
    if (length >> 63) return FrameStatus::kError;  // "the most significant bit MUST be 0"
  }
  out.length = length;
  if (out.masked) {
    std::memcpy(out.mask.data(), input.data() + at, 4);
  } else {
    out.mask = {};
  }
  out.size = static_cast<std::uint8_t>(need);
  return FrameStatus::kComplete;
}

void append_frame_header(std::string& out, Opcode opcode, bool fin, bool rsv1, std::uint64_t length,
                         const std::uint8_t* mask) {
  char buf[kMaxFrameHeader];
  std::size_t n = 0;
  buf[n++] = static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<std::uint8_t>(opcode));
  std::uint8_t mask_bit = mask ? 0x80 : 0;
  if (length < 126) {
    buf[n++] = static_cast<char>(mask_bit | length);
  } else if (length <= 0xFFFF) {
    buf[n++] = static_cast<char>(mask_bit | 126);
    buf[n++] = static_cast<char>(length >> 8);
    buf[n++] = static_cast<char>(length & 0xFF);
  } else {
    buf[n++] = static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) buf[n++] = static_cast<char>((length >> (8 * i)) & 0xFF);
  }
  if (mask) {
    std::memcpy(buf + n, mask, 4);
    n += 4;
  }
  out.append(buf, n);
}

namespace {

/// The key rotated so that byte 0 applies to payload offset `offset`, and
/// repeated into 8 bytes (the byte order in memory is what matters, so
/// this is endian-neutral).
std::uint64_t wide_key(const std::array<std::uint8_t, 4>& mask, std::size_t offset) noexcept {
  std::uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = mask[(offset + i) & 3];
  std::uint64_t k;
  std::memcpy(&k, bytes, 8);
  return k;
}

}  // namespace

void mask_copy(char* dst, const char* src, std::size_t size, const std::array<std::uint8_t, 4>& mask,
               std::size_t offset) noexcept {
  std::uint64_t k = wide_key(mask, offset);
  std::size_t i = 0;
  // Unaligned 8-byte loads and stores through memcpy compile to plain
  // moves; the compiler vectorises the loop further at -O2.
  for (; i + 8 <= size; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= k;
    std::memcpy(dst + i, &v, 8);
  }
  for (; i < size; ++i) dst[i] = static_cast<char>(src[i] ^ mask[(offset + i) & 3]);
}

void apply_mask(char* data, std::size_t size, const std::array<std::uint8_t, 4>& mask, std::size_t offset) noexcept {
  mask_copy(data, data, size, mask, offset);
}

bool Utf8Validator::feed(std::string_view piece) noexcept {
  if (failed_) return false;
  const auto* p = reinterpret_cast<const std::uint8_t*>(piece.data());
  std::size_t n = piece.size();
  std::size_t i = 0;
  while (i < n) {
    if (need_ == 0) {
      // ASCII runs, eight bytes at a time.
      while (i + 8 <= n) {
        std::uint64_t v;
        std::memcpy(&v, p + i, 8);
        if (v & 0x8080808080808080ull) break;
        i += 8;
      }
      if (i >= n) break;
      std::uint8_t c = p[i++];
      if (c < 0x80) continue;
      if (c < 0xC2) {  // a continuation byte, or an overlong 2-byte lead
        failed_ = true;
      } else if (c < 0xE0) {
        need_ = 1;
      } else if (c < 0xF0) {
        need_ = 2;
        lo_ = c == 0xE0 ? 0xA0 : 0x80;  // E0: no overlongs
        hi_ = c == 0xED ? 0x9F : 0xBF;  // ED: no surrogates
      } else if (c < 0xF5) {
        need_ = 3;
        lo_ = c == 0xF0 ? 0x90 : 0x80;  // F0: no overlongs
        hi_ = c == 0xF4 ? 0x8F : 0xBF;  // F4: nothing above U+10FFFF
      } else {
        failed_ = true;
      }
      if (failed_) return false;
    } else {
      std::uint8_t c = p[i++];
      if (c < lo_ || c > hi_) {
        failed_ = true;
        return false;
      }
      lo_ = 0x80;
      hi_ = 0xBF;
      --need_;
    }
  }
  return true;
}

bool is_valid_utf8(std::string_view text) noexcept {
  Utf8Validator v;
  return v.feed(text) && v.complete();
}

}  // namespace squall::websocket
