// Fuzzes the WebSocket frame codec and MessageReader (no extension): the
// first byte picks the role, the size limit and how the input is split, the
// rest is fed as a connection's bytes. Invariants: nothing is consumed
// beyond the input, messages respect the limit, text is valid UTF-8, errors
// carry one of the codes RFC 6455 asks for, a failed reader stays failed,
// and headers re-encode to what was parsed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "squall/websocket/frame.hpp"
#include "squall/websocket/protocol.hpp"

using namespace squall::websocket;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  FrameHeader h;
  if (parse_frame_header(input, h) == FrameStatus::kComplete) {
    SQUALL_FUZZ_CHECK(h.size <= kMaxFrameHeader && h.size <= input.size());
    std::string again;
    append_frame_header(again, h.opcode, h.fin, h.rsv1, h.length, h.masked ? h.mask.data() : nullptr);
    FrameHeader h2;
    SQUALL_FUZZ_CHECK(parse_frame_header(again, h2) == FrameStatus::kComplete);
    SQUALL_FUZZ_CHECK(h2.length == h.length && h2.opcode == h.opcode && h2.fin == h.fin && h2.mask == h.mask);
  }

  Role role = (control & 1) ? Role::kClient : Role::kServer;
  std::size_t limit = (control & 2) ? 64 : 1 << 16;
  std::size_t step = (control >> 2) % 8;  // 0: whole input at once
  MessageReader reader(role, limit);
  std::string pending;
  std::size_t at = 0;
  bool stop = false;
  while (!stop) {
    std::size_t n = step ? std::min(step, input.size() - at) : input.size() - at;
    pending.append(input.substr(at, n));
    at += n;
    for (;;) {
      auto e = reader.feed(pending);
      SQUALL_FUZZ_CHECK(e.consumed <= pending.size());
      pending.erase(0, e.consumed);
      if (e.kind == MessageReader::EventKind::kNeedMore) break;
      if (e.kind == MessageReader::EventKind::kMessage) {
        Message m = reader.take_message();
        SQUALL_FUZZ_CHECK(m.data.size() <= limit);
        SQUALL_FUZZ_CHECK(m.binary || is_valid_utf8(m.data));
      } else if (e.kind == MessageReader::EventKind::kPing || e.kind == MessageReader::EventKind::kPong) {
        SQUALL_FUZZ_CHECK(e.text.size() <= kMaxControlPayload);
      } else if (e.kind == MessageReader::EventKind::kClose) {
        SQUALL_FUZZ_CHECK(e.code == close_code::kNoStatus || is_valid_close_code(e.code));
        SQUALL_FUZZ_CHECK(is_valid_utf8(e.text));
        stop = true;
        break;
      } else {
        SQUALL_FUZZ_CHECK(e.code == close_code::kProtocolError || e.code == close_code::kInvalidPayload ||
                          e.code == close_code::kMessageTooBig);
        SQUALL_FUZZ_CHECK(reader.failed());
        SQUALL_FUZZ_CHECK(reader.feed("\x81\x80\0\0\0\0").kind == MessageReader::EventKind::kError);
        stop = true;
        break;
      }
    }
    if (at == input.size()) break;
  }

  // The writer's frames read back (both roles).
  if (input.size() <= 4096) {
    MessageWriter writer(role == Role::kServer ? Role::kClient : Role::kServer);
    std::string out;
    bool binary = !is_valid_utf8(input);
    writer.frame_message(out, input, binary);
    MessageReader back(role, 1 << 16);
    auto e = back.feed(out);
    SQUALL_FUZZ_CHECK(e.kind == MessageReader::EventKind::kMessage && e.consumed == out.size());
    Message m = back.take_message();
    SQUALL_FUZZ_CHECK(m.data == input && m.binary == binary);
  }
  return 0;
}
