// The WebSocket frame codec (RFC 6455 section 5): frame header parsing and
// encoding, payload masking, close-code rules and an incremental UTF-8
// validator. Pure functions and small value types: no socket, no logging,
// no allocation; any thread may call them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "squall/core/errors.hpp"

namespace squall::websocket {

/// A handshake or protocol failure seen by the client (bad 101 answer, an
/// extension it did not offer, ...) or a misuse of the API (an invalid
/// close code given to close()).
class WebSocketError : public Error {
 public:
  using Error::Error;
};

/// A write, ping or read on a connection that is closed or closing
/// (Tornado's WebSocketClosedError).
class WebSocketClosedError : public WebSocketError {
 public:
  explicit WebSocketClosedError(const std::string& what = "WebSocket is closed") : WebSocketError(what) {}
};

/// Frame opcodes (RFC 6455 section 5.2). Others are reserved (→ 1002).
enum class Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

inline constexpr bool is_control(Opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

/// Which end of the connection we are: a server reads masked frames and
/// writes unmasked ones, a client the reverse (RFC 6455 section 5.1).
enum class Role : std::uint8_t { kServer, kClient };

/// Close status codes (RFC 6455 section 7.4.1 and the IANA registry).
namespace close_code {
inline constexpr int kNormal = 1000;
inline constexpr int kGoingAway = 1001;
inline constexpr int kProtocolError = 1002;
inline constexpr int kUnsupportedData = 1003;
inline constexpr int kNoStatus = 1005;  // never on the wire: "the close frame had no code"
inline constexpr int kAbnormal = 1006;  // never on the wire: "closed without a close frame"
inline constexpr int kInvalidPayload = 1007;
inline constexpr int kPolicyViolation = 1008;
inline constexpr int kMessageTooBig = 1009;
inline constexpr int kMandatoryExtension = 1010;
inline constexpr int kInternalError = 1011;
inline constexpr int kServiceRestart = 1012;
inline constexpr int kTryAgainLater = 1013;
inline constexpr int kBadGateway = 1014;
inline constexpr int kTlsHandshake = 1015;  // never on the wire
}  // namespace close_code

/// True for codes that may appear in a close frame, sent or received:
/// 1000-1003, 1007-1014 and 3000-4999. 1004-1006 and 1015 are reserved,
/// 1016-2999 unassigned; a received one fails the connection with 1002.
bool is_valid_close_code(int code) noexcept;

/// Longest control frame payload (RFC 6455 section 5.5), and so the longest
/// close reason: 125 minus the two code bytes.
inline constexpr std::size_t kMaxControlPayload = 125;
inline constexpr std::size_t kMaxCloseReason = 123;
/// Longest frame header: 2 + 8 (64-bit length) + 4 (mask).
inline constexpr std::size_t kMaxFrameHeader = 14;

/// One parsed frame header. `size` is how many input bytes it took.
struct FrameHeader {
  bool fin = false;
  bool rsv1 = false;
  bool rsv2 = false;
  bool rsv3 = false;
  Opcode opcode = Opcode::kContinuation;
  bool masked = false;
  std::array<std::uint8_t, 4> mask{};
  std::uint64_t length = 0;
  std::uint8_t size = 0;
};

enum class FrameStatus : std::uint8_t { kComplete, kPartial, kError };

/// Parses the frame header at the start of `input` (structure only: the
/// rules that depend on the connection's state are MessageReader's). kError
/// only for a 64-bit length with its top bit set (RFC 6455 section 5.2).
FrameStatus parse_frame_header(std::string_view input, FrameHeader& out) noexcept;

/// Appends a frame header for a payload of `length` bytes; `mask` (4 bytes)
/// or null for an unmasked frame. Uses the shortest length encoding.
void append_frame_header(std::string& out, Opcode opcode, bool fin, bool rsv1, std::uint64_t length,
                         const std::uint8_t* mask = nullptr);

/// XORs `data` with the masking key as RFC 6455 section 5.3 says, starting
/// `offset` bytes into the payload (so a payload can be unmasked piecewise).
/// Eight bytes at a time.
void apply_mask(char* data, std::size_t size, const std::array<std::uint8_t, 4>& mask, std::size_t offset = 0) noexcept;
/// apply_mask from `src` into `dst` (which may not overlap unless equal).
void mask_copy(char* dst, const char* src, std::size_t size, const std::array<std::uint8_t, 4>& mask,
               std::size_t offset = 0) noexcept;

/// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates,
/// nothing above U+10FFFF), fed in pieces that may split a character —
/// the fragments of a text message. Fails as soon as the input cannot be
/// the start of valid UTF-8.
class Utf8Validator {
 public:
  /// False once the input seen so far cannot be valid UTF-8.
  bool feed(std::string_view piece) noexcept;
  /// True if everything fed is valid and ends on a character boundary.
  bool complete() const noexcept { return !failed_ && need_ == 0; }
  void reset() noexcept { *this = Utf8Validator(); }

 private:
  std::uint8_t need_ = 0;    // continuation bytes still expected
  std::uint8_t lo_ = 0x80;   // bounds of the next continuation byte
  std::uint8_t hi_ = 0xBF;
  bool failed_ = false;
};

/// True if `text` is complete, valid UTF-8.
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace squall::websocket
