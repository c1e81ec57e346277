#include "squall/websocket/protocol.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>

namespace squall::websocket {

using EventKind = MessageReader::EventKind;

MessageReader::Event MessageReader::fail(std::size_t consumed, int code, const char* why) noexcept {
  state_ = State::kFailed;
  error_code_ = code;
  error_ = why;
  in_message_ = false;
  if (inflater_) inflater_->reset();
  return Event{EventKind::kError, consumed, code, why};
}

const char* MessageReader::check_header(const FrameHeader& h, int& code) const noexcept {
  code = close_code::kProtocolError;
  if (h.rsv2 || h.rsv3) return "reserved bits set";
  switch (h.opcode) {
    case Opcode::kContinuation:
    case Opcode::kText:
    case Opcode::kBinary:
    case Opcode::kClose:
    case Opcode::kPing:
    case Opcode::kPong:
      break;
    default:
      return "reserved opcode";
  }
  // RFC 6455 section 5.1: clients mask every frame, servers none.
  if (role_ == Role::kServer && !h.masked) return "unmasked client frame";
  if (role_ == Role::kClient && h.masked) return "masked server frame";
  if (is_control(h.opcode)) {
    if (!h.fin) return "fragmented control frame";
    if (h.length > kMaxControlPayload) return "control frame longer than 125 bytes";
    if (h.rsv1) return "RSV1 on a control frame";
    return nullptr;
  }
  if (h.opcode == Opcode::kContinuation) {
    if (!in_message_) return "continuation frame without a message to continue";
    // RFC 7692 section 6.1: RSV1 only on the first frame of a message.
    if (h.rsv1) return "RSV1 on a continuation frame";
  } else {
    if (in_message_) return "new data frame inside a fragmented message";
    if (h.rsv1 && !inflater_) return "RSV1 without a negotiated extension";
  }
  bool continuation = h.opcode == Opcode::kContinuation;
  bool compressed = continuation ? compressed_ : h.rsv1;
  std::size_t have = continuation ? message_.size() : 0;
  // Refused from the header, before any of the payload is read. (A
  // compressed message is measured as it inflates.)
  if (!compressed && h.length > max_message_size_ - have) {
    code = close_code::kMessageTooBig;
    return "message too big";
  }
  return nullptr;
}

MessageReader::Event MessageReader::control_event(std::size_t consumed) {
  Event e;
  e.consumed = consumed;
  switch (frame_.opcode) {
    case Opcode::kPing:
      e.kind = EventKind::kPing;
      e.text = control_;
      return e;
    case Opcode::kPong:
      e.kind = EventKind::kPong;
      e.text = control_;
      return e;
    default:
      break;
  }
  // Close (RFC 6455 section 5.5.1): empty, or a code and a UTF-8 reason.
  if (control_.empty()) {
    e.kind = EventKind::kClose;
    e.code = close_code::kNoStatus;
    return e;
  }
  if (control_.size() == 1) return fail(consumed, close_code::kProtocolError, "close frame with a 1-byte payload");
  int code = (static_cast<std::uint8_t>(control_[0]) << 8) | static_cast<std::uint8_t>(control_[1]);
  if (!is_valid_close_code(code)) return fail(consumed, close_code::kProtocolError, "invalid close code");
  std::string_view reason = std::string_view(control_).substr(2);
  if (!is_valid_utf8(reason)) return fail(consumed, close_code::kInvalidPayload, "close reason is not UTF-8");
  e.kind = EventKind::kClose;
  e.code = code;
  e.text = reason;
  return e;
}

MessageReader::Event MessageReader::feed(std::string_view input) {
  if (state_ == State::kFailed) return Event{EventKind::kError, 0, error_code_, error_};
  std::size_t used = 0;
  for (;;) {
    if (state_ == State::kHeader) {
      FrameHeader h;
      FrameStatus st = parse_frame_header(input.substr(used), h);
      if (st == FrameStatus::kPartial) return Event{EventKind::kNeedMore, used, 0, {}};
      if (st == FrameStatus::kError) return fail(used, close_code::kProtocolError, "64-bit length with its top bit set");
      int code = 0;
      if (const char* why = check_header(h, code)) return fail(used, code, why);
      used += h.size;
      frame_ = h;
      remaining_ = h.length;
      offset_ = 0;
      state_ = State::kPayload;
      if (is_control(h.opcode)) {
        control_.clear();
      } else if (h.opcode != Opcode::kContinuation) {
        in_message_ = true;
        binary_ = h.opcode == Opcode::kBinary;
        compressed_ = h.rsv1;
        compressed_bytes_ = 0;
        message_.clear();
        utf8_.reset();
        std::size_t available = input.size() - used;
        if (!compressed_ && h.length <= available) message_.reserve(static_cast<std::size_t>(h.length));
      }
    }

    // kPayload: take what is there of the current frame.
    std::size_t available = input.size() - used;
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, available));
    const char* src = input.data() + used;
    if (is_control(frame_.opcode)) {
      std::size_t old = control_.size();
      control_.resize(old + take);
      if (frame_.masked) {
        mask_copy(control_.data() + old, src, take, frame_.mask, offset_);
      } else if (take > 0) {
        std::memcpy(control_.data() + old, src, take);
      }
    } else if (compressed_) {
      compressed_bytes_ += take;
      scratch_.resize(take);
      if (frame_.masked) {
        mask_copy(scratch_.data(), src, take, frame_.mask, offset_);
      } else if (take > 0) {
        std::memcpy(scratch_.data(), src, take);
      }
      std::size_t old = message_.size();
      auto st = inflater_->feed(scratch_, message_, max_message_size_);
      if (st == DeflateDecompressor::Status::kTooBig) {
        return fail(used + take, close_code::kMessageTooBig, "message too big after decompression");
      }
      if (st == DeflateDecompressor::Status::kError) {
        return fail(used + take, close_code::kInvalidPayload, "invalid compressed data");
      }
      if (!binary_ && !utf8_.feed(std::string_view(message_).substr(old))) {
        return fail(used + take, close_code::kInvalidPayload, "text message is not UTF-8");
      }
    } else {
      std::size_t old = message_.size();
      message_.resize(old + take);
      if (frame_.masked) {
        mask_copy(message_.data() + old, src, take, frame_.mask, offset_);
      } else if (take > 0) {
        std::memcpy(message_.data() + old, src, take);
      }
      // Fail fast, inside the frame (Autobahn 6.4.x).
      if (!binary_ && !utf8_.feed(std::string_view(message_).substr(old))) {
        return fail(used + take, close_code::kInvalidPayload, "text message is not UTF-8");
      }
    }
    used += take;
    remaining_ -= take;
    offset_ += take;
    if (remaining_ > 0) return Event{EventKind::kNeedMore, used, 0, {}};

    // The frame is complete.
    state_ = State::kHeader;
    if (is_control(frame_.opcode)) return control_event(used);
    if (!frame_.fin) continue;
    if (compressed_ && compressed_bytes_ > 0) {
      // (An empty compressed payload is taken as an empty message: zlib
      // senders that skip the empty block exist.)
      std::size_t old = message_.size();
      auto st = inflater_->finish(message_, max_message_size_);
      if (st == DeflateDecompressor::Status::kTooBig) {
        return fail(used, close_code::kMessageTooBig, "message too big after decompression");
      }
      if (st == DeflateDecompressor::Status::kError) {
        return fail(used, close_code::kInvalidPayload, "invalid compressed data");
      }
      if (!binary_ && !utf8_.feed(std::string_view(message_).substr(old))) {
        return fail(used, close_code::kInvalidPayload, "text message is not UTF-8");
      }
    }
    if (!binary_ && !utf8_.complete()) {
      return fail(used, close_code::kInvalidPayload, "text message ends inside a UTF-8 character");
    }
    in_message_ = false;
    // An idle connection should not keep a big message's scratch space.
    if (scratch_.capacity() > 4096) scratch_ = std::string();
    return Event{EventKind::kMessage, used, 0, {}};
  }
}

Message MessageReader::take_message() noexcept {
  Message m{std::move(message_), binary_};
  message_ = std::string();
  return m;
}

// --- writing ------------------------------------------------------------------------------------

std::array<std::uint8_t, 4> random_mask() noexcept {
  struct Pool {
    std::uint8_t bytes[512];
    std::size_t used = sizeof bytes;
  };
  thread_local Pool pool;
  if (pool.used + 4 > sizeof pool.bytes) {
    if (RAND_bytes(pool.bytes, sizeof pool.bytes) != 1) {
      // OpenSSL's generator does not fail once seeded; should it ever, the
      // kernel's is as good.
      std::random_device rd;
      for (auto& b : pool.bytes) b = static_cast<std::uint8_t>(rd());
    }
    pool.used = 0;
  }
  std::array<std::uint8_t, 4> mask;
  std::memcpy(mask.data(), pool.bytes + pool.used, 4);
  pool.used += 4;
  return mask;
}

void MessageWriter::frame(std::string& out, Opcode opcode, bool rsv1, std::string_view payload) {
  if (role_ == Role::kClient) {
    auto mask = random_mask();
    append_frame_header(out, opcode, true, rsv1, payload.size(), mask.data());
    std::size_t old = out.size();
    out.resize(old + payload.size());
    mask_copy(out.data() + old, payload.data(), payload.size(), mask);
  } else {
    append_frame_header(out, opcode, true, rsv1, payload.size());
    out.append(payload);
  }
}

void MessageWriter::frame_message(std::string& out, std::string_view payload, bool binary) {
  Opcode op = binary ? Opcode::kBinary : Opcode::kText;
  if (deflater_) {
    scratch_.clear();
    deflater_->compress(payload, scratch_);
    frame(out, op, true, scratch_);
    if (scratch_.capacity() > 64 * 1024) scratch_ = std::string();  // do not pin a big message's memory
  } else {
    out.reserve(out.size() + kMaxFrameHeader + payload.size());
    frame(out, op, false, payload);
  }
}

void MessageWriter::frame_control(std::string& out, Opcode opcode, std::string_view payload) {
  if (payload.size() > kMaxControlPayload) throw std::invalid_argument("control frame payload longer than 125 bytes");
  frame(out, opcode, false, payload);
}

void MessageWriter::frame_close(std::string& out, std::optional<int> code, std::string_view reason) {
  if (!code) {
    if (!reason.empty()) throw std::invalid_argument("a close reason needs a close code");
    frame(out, Opcode::kClose, false, {});
    return;
  }
  if (!is_valid_close_code(*code)) throw std::invalid_argument("invalid close code " + std::to_string(*code));
  if (reason.size() > kMaxCloseReason) throw std::invalid_argument("close reason longer than 123 bytes");
  char payload[2 + kMaxCloseReason];
  payload[0] = static_cast<char>((*code >> 8) & 0xFF);
  payload[1] = static_cast<char>(*code & 0xFF);
  if (!reason.empty()) std::memcpy(payload + 2, reason.data(), reason.size());
  frame(out, Opcode::kClose, false, std::string_view(payload, 2 + reason.size()));
}

}  // namespace squall::websocket
