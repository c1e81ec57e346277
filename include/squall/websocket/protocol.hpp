// The WebSocket message layer without I/O: MessageReader turns the bytes of
// a connection into messages and control frames, applying every rule of
// RFC 6455 (masking by role, reserved bits and opcodes, control frame
// limits, fragmentation, UTF-8 of text, close frame payloads) and RFC 7692
// (RSV1 and inflation with its size limit), each failure mapped to the
// close code to send. MessageWriter frames outgoing messages. Both are pure
// state machines over byte spans (fuzzable alone); one per connection, used
// from one thread.
//
// MessageReader states: kHeader (waiting for a whole frame header),
// kPayload (taking the current frame's payload, possibly in pieces),
// kFailed (a protocol error was reported; it stays failed).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "squall/websocket/deflate.hpp"
#include "squall/websocket/frame.hpp"

namespace squall::websocket {

/// One whole message: text (valid UTF-8) or binary.
struct Message {
  std::string data{};
  bool binary{false};
};

/// Tornado's default max_message_size: 10 MiB.
inline constexpr std::size_t kDefaultMaxMessageSize = std::size_t{10} * 1024 * 1024;

class MessageReader {
 public:
  enum class EventKind : std::uint8_t {
    kNeedMore,  ///< everything given was used (or kept); feed more input
    kMessage,   ///< a whole message: take_message()
    kPing,      ///< `text` is the payload
    kPong,      ///< `text` is the payload
    kClose,     ///< `code` (1005 when the frame had none), `text` the reason
    kError,     ///< the connection must fail with `code`; `text` says why
  };
  /// `text` views the reader's own storage: valid until the next feed().
  struct Event {
    EventKind kind = EventKind::kNeedMore;
    std::size_t consumed = 0;  ///< bytes of the input used; drop them
    int code = 0;
    std::string_view text{};
  };

  /// `inflater` (null: no permessage-deflate) must outlive the reader.
  /// `max_message_size` bounds a message after decompression (→ 1009).
  MessageReader(Role role, std::size_t max_message_size = kDefaultMaxMessageSize,
                DeflateDecompressor* inflater = nullptr) noexcept
      : role_(role), max_message_size_(max_message_size), inflater_(inflater) {}

  /// Reads from `input` up to the first event. Partial frames are taken as
  /// far as they go (a payload need not be buffered whole), so `consumed`
  /// may be all of the input with kNeedMore. Call again with the rest of
  /// the input after an event other than kNeedMore.
  Event feed(std::string_view input);

  /// The message of the last kMessage event, moved out.
  Message take_message() noexcept;
  bool failed() const noexcept { return state_ == State::kFailed; }
  /// Inside a fragmented message (between its first and final frames).
  bool in_message() const noexcept { return in_message_; }

 private:
  enum class State : std::uint8_t { kHeader, kPayload, kFailed };
  Event fail(std::size_t consumed, int code, const char* why) noexcept;
  /// Checks a new frame's header against the connection's state.
  const char* check_header(const FrameHeader& h, int& code) const noexcept;
  Event control_event(std::size_t consumed);

  Role role_;
  std::size_t max_message_size_;
  DeflateDecompressor* inflater_;
  State state_ = State::kHeader;
  FrameHeader frame_{};
  std::uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
  std::uint64_t offset_ = 0;     // payload bytes of it taken (the mask's phase)
  bool in_message_ = false;
  bool binary_ = false;
  bool compressed_ = false;
  std::uint64_t compressed_bytes_ = 0;  // of the current compressed message
  std::string message_;
  std::string control_;
  std::string scratch_;  // unmasked compressed bytes on their way to the inflater
  Utf8Validator utf8_;
  int error_code_ = 0;
  const char* error_ = nullptr;
};

/// Frames outgoing messages: masked with a fresh random key per frame for a
/// client (RFC 6455 section 5.3), compressed with `deflater` when given.
class MessageWriter {
 public:
  /// `deflater` (null: no compression) must outlive the writer.
  explicit MessageWriter(Role role, DeflateCompressor* deflater = nullptr) noexcept
      : role_(role), deflater_(deflater) {}

  /// Appends one whole message as a single frame.
  void frame_message(std::string& out, std::string_view payload, bool binary);
  /// Appends a ping or pong. std::invalid_argument past 125 bytes.
  void frame_control(std::string& out, Opcode opcode, std::string_view payload);
  /// Appends a close frame: empty without a code; else the code and a
  /// reason of at most 123 bytes. std::invalid_argument for a code that may
  /// not be sent or a reason too long.
  void frame_close(std::string& out, std::optional<int> code, std::string_view reason);

  bool compressing() const noexcept { return deflater_ != nullptr; }
  Role role() const noexcept { return role_; }

 private:
  void frame(std::string& out, Opcode opcode, bool rsv1, std::string_view payload);

  Role role_;
  DeflateCompressor* deflater_;
  std::string scratch_;
};

/// Four bytes from OpenSSL's generator, drawn from a per-thread pool (one
/// RAND_bytes call per 128 keys).
std::array<std::uint8_t, 4> random_mask() noexcept;

}  // namespace squall::websocket
