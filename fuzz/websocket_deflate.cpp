// Fuzzes permessage-deflate: the first byte picks window bits, context
// takeover, the size limit and which part runs; the rest is (a) a
// Sec-WebSocket-Extensions header for both sides of the negotiation,
// (b) a compressed payload for the decompressor (output never above the
// limit, no crash on garbage), (c) a message to compress and inflate back
// (must round-trip), (d) frames for a MessageReader with the extension on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "squall/websocket/deflate.hpp"
#include "squall/websocket/frame.hpp"
#include "squall/websocket/protocol.hpp"

using namespace squall::websocket;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  int bits = 9 + (control & 7) % 7;  // 9..15
  bool no_takeover = control & 8;
  std::size_t limit = (control & 16) ? 1024 : 1 << 20;

  // (a) negotiation.
  if (auto offers = parse_extensions(input)) {
    CompressionOptions options;
    options.server_max_window_bits = bits;
    options.client_no_context_takeover = no_takeover;
    if (auto a = accept_deflate_offer(*offers, options)) {
      auto answer = parse_extensions(a->response);
      SQUALL_FUZZ_CHECK(answer && answer->size() == 1);
      SQUALL_FUZZ_CHECK(a->params.server_max_window_bits >= 8 && a->params.server_max_window_bits <= 15);
      SQUALL_FUZZ_CHECK(a->params.client_max_window_bits >= 8 && a->params.client_max_window_bits <= 15);
    }
    for (const auto& offer : *offers) {
      try {
        DeflateParameters p = accept_deflate_response(offer, options);
        SQUALL_FUZZ_CHECK(p.client_max_window_bits >= 8 && p.client_max_window_bits <= 15);
      } catch (const WebSocketError&) {
      }
    }
  }

  // (b) inflating arbitrary bytes, in two pieces.
  {
    DeflateDecompressor d(bits, no_takeover);
    std::string out;
    std::size_t cut = input.size() / 2;
    auto st = d.feed(input.substr(0, cut), out, limit);
    SQUALL_FUZZ_CHECK(out.size() <= limit);
    if (st == DeflateDecompressor::Status::kOk) st = d.feed(input.substr(cut), out, limit);
    SQUALL_FUZZ_CHECK(out.size() <= limit);
    if (st == DeflateDecompressor::Status::kOk) st = d.finish(out, limit);
    SQUALL_FUZZ_CHECK(out.size() <= limit);
  }

  // (c) round trip, twice (context takeover).
  {
    DeflateCompressor c(bits, no_takeover, control >> 6, 8);
    DeflateDecompressor d(bits, no_takeover);
    for (int round = 0; round < 2; ++round) {
      std::string z, out;
      c.compress(input, z);
      SQUALL_FUZZ_CHECK(d.feed(z, out, input.size()) == DeflateDecompressor::Status::kOk);
      SQUALL_FUZZ_CHECK(d.finish(out, input.size()) == DeflateDecompressor::Status::kOk);
      SQUALL_FUZZ_CHECK(out == input);
    }
  }

  // (d) frames with RSV1 allowed.
  {
    DeflateDecompressor d(bits, no_takeover);
    MessageReader reader(Role::kServer, limit, &d);
    std::string_view rest = input;
    for (int events = 0; events < 64; ++events) {
      auto e = reader.feed(rest);
      SQUALL_FUZZ_CHECK(e.consumed <= rest.size());
      rest.remove_prefix(e.consumed);
      if (e.kind == MessageReader::EventKind::kNeedMore || e.kind == MessageReader::EventKind::kError ||
          e.kind == MessageReader::EventKind::kClose) {
        break;
      }
      if (e.kind == MessageReader::EventKind::kMessage) {
        Message m = reader.take_message();
        SQUALL_FUZZ_CHECK(m.data.size() <= limit);
        SQUALL_FUZZ_CHECK(m.binary || is_valid_utf8(m.data));
      }
    }
  }
  return 0;
}
