// MessageReader and MessageWriter: every framing rule of RFC 6455 and
// RFC 7692 with the close code it maps to, fed whole and byte by byte.
#include "squall/websocket/protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/exact_input.hpp"

namespace squall::websocket {
namespace {

using Kind = MessageReader::EventKind;

/// A frame as a client would send it (masked) or a server (unmasked), with
/// every header bit under the test's control.
std::string frame(int opcode, std::string_view payload, bool fin = true, bool masked = true, int rsv = 0) {
  std::string out;
  std::array<std::uint8_t, 4> key{0xA1, 0xB2, 0xC3, 0xD4};
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  std::uint8_t mbit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(mbit | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    out.push_back(static_cast<char>(mbit | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    out.push_back(static_cast<char>(mbit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xFF));
  }
  std::string body(payload);
  if (masked) {
    out.append(reinterpret_cast<const char*>(key.data()), 4);
    apply_mask(body.data(), body.size(), key);
  }
  return out + body;
}

std::string close_payload(int code, std::string_view reason = {}) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  return p.append(reason);
}

/// What a reader made of some input: events in order, messages taken.
struct Outcome {
  std::vector<Kind> kinds;
  std::vector<Message> messages;
  std::vector<std::string> controls;  // ping/pong payloads, close reasons
  int code = 0;                       // the last close or error code
  std::size_t consumed = 0;
};

/// Feeds `input` in pieces of `step` bytes (0: all at once), as a stream
/// would: unconsumed bytes are offered again with the next piece.
Outcome run(MessageReader& reader, std::string_view input, std::size_t step = 0) {
  Outcome o;
  std::string pending;
  std::size_t at = 0;
  for (;;) {
    std::size_t n = step ? std::min(step, input.size() - at) : input.size() - at;
    pending.append(input.substr(at, n));
    at += n;
    bool need_more = false;
    while (!need_more) {
      squall::testing::Exact exact(pending);
      auto e = reader.feed(exact.view());
      o.consumed += e.consumed;
      switch (e.kind) {
        case Kind::kNeedMore:
          need_more = true;
          break;
        case Kind::kMessage:
          o.messages.push_back(reader.take_message());
          break;
        case Kind::kPing:
        case Kind::kPong:
          o.controls.emplace_back(e.text);
          break;
        case Kind::kClose:
        case Kind::kError:
          o.code = e.code;
          o.controls.emplace_back(e.text);
          break;
      }
      if (e.kind != Kind::kNeedMore) o.kinds.push_back(e.kind);
      pending.erase(0, e.consumed);
      if (e.kind == Kind::kError || e.kind == Kind::kClose) return o;
    }
    if (at == input.size()) return o;
  }
}

class ReaderTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Steps, ReaderTest, ::testing::Values(0, 1, 2, 7, 100));

TEST_P(ReaderTest, ReadsTextAndBinaryMessages) {
  MessageReader r(Role::kServer);
  std::string big(70000, 'b');
  auto o = run(r, frame(1, "hello") + frame(2, std::string("\0\1\2", 3)) + frame(2, big) + frame(1, ""), GetParam());
  ASSERT_EQ(o.messages.size(), 4u);
  EXPECT_EQ(o.messages[0].data, "hello");
  EXPECT_FALSE(o.messages[0].binary);
  EXPECT_EQ(o.messages[1].data, std::string("\0\1\2", 3));
  EXPECT_TRUE(o.messages[1].binary);
  EXPECT_EQ(o.messages[2].data, big);
  EXPECT_EQ(o.messages[3].data, "");
  EXPECT_FALSE(r.failed());
}

TEST_P(ReaderTest, ReassemblesFragmentsWithControlFramesBetween) {
  MessageReader r(Role::kServer);
  std::string euro = "\xe2\x82\xac";
  // The euro sign is split across two fragments.
  std::string input = frame(1, "pay 5" + euro.substr(0, 1), false) + frame(9, "ping!") +
                      frame(0, euro.substr(1), false) + frame(10, "pong?") + frame(0, " now", true);
  auto o = run(r, input, GetParam());
  EXPECT_EQ(o.kinds, (std::vector<Kind>{Kind::kPing, Kind::kPong, Kind::kMessage}));
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].data, "pay 5" + euro + " now");
  EXPECT_EQ(o.controls, (std::vector<std::string>{"ping!", "pong?"}));
}

TEST_P(ReaderTest, ReadsCloseFrames) {
  {
    MessageReader r(Role::kServer);
    auto o = run(r, frame(8, close_payload(1000, "bye \xc3\xa9")), GetParam());
    EXPECT_EQ(o.kinds, (std::vector<Kind>{Kind::kClose}));
    EXPECT_EQ(o.code, 1000);
    EXPECT_EQ(o.controls.at(0), "bye \xc3\xa9");
  }
  {
    MessageReader r(Role::kServer);
    auto o = run(r, frame(8, ""), GetParam());
    EXPECT_EQ(o.kinds, (std::vector<Kind>{Kind::kClose}));
    EXPECT_EQ(o.code, close_code::kNoStatus);
  }
}

struct Violation {
  const char* name;
  std::string input;
  int code;
};

void PrintTo(const Violation& v, std::ostream* os) { *os << v.name; }

class ViolationTest : public ::testing::TestWithParam<Violation> {};

TEST_P(ViolationTest, FailsWithItsCloseCode) {
  const Violation& v = GetParam();
  for (std::size_t step : {0u, 1u, 3u}) {
    MessageReader r(Role::kServer, 1000);
    auto o = run(r, v.input, step);
    ASSERT_FALSE(o.kinds.empty()) << step;
    EXPECT_EQ(o.kinds.back(), Kind::kError) << step;
    EXPECT_EQ(o.code, v.code) << step;
    EXPECT_TRUE(r.failed());
    // It stays failed.
    EXPECT_EQ(r.feed(frame(1, "x")).kind, Kind::kError);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rfc6455, ViolationTest,
    ::testing::Values(
        Violation{"unmasked_client_frame", frame(1, "hi", true, false), 1002},
        Violation{"rsv1_without_extension", frame(1, "hi", true, true, 4), 1002},
        Violation{"rsv2", frame(1, "hi", true, true, 2), 1002},
        Violation{"rsv3", frame(2, "hi", true, true, 1), 1002},
        Violation{"reserved_opcode_3", frame(3, ""), 1002},
        Violation{"reserved_opcode_7", frame(7, ""), 1002},
        Violation{"reserved_opcode_b", frame(0xB, ""), 1002},
        Violation{"reserved_opcode_f", frame(0xF, ""), 1002},
        Violation{"ping_too_long", frame(9, std::string(126, 'p')), 1002},
        Violation{"fragmented_ping", frame(9, "p", false), 1002},
        Violation{"fragmented_close", frame(8, "", false), 1002},
        Violation{"continuation_without_start", frame(0, "lost"), 1002},
        Violation{"data_frame_inside_message", frame(1, "a", false) + frame(1, "b"), 1002},
        Violation{"binary_inside_text_message", frame(1, "a", false) + frame(2, "b"), 1002},
        Violation{"close_one_byte", frame(8, "\x03"), 1002},
        Violation{"close_code_999", frame(8, close_payload(999)), 1002},
        Violation{"close_code_1004", frame(8, close_payload(1004)), 1002},
        Violation{"close_code_1005", frame(8, close_payload(1005)), 1002},
        Violation{"close_code_1006", frame(8, close_payload(1006)), 1002},
        Violation{"close_code_1015", frame(8, close_payload(1015)), 1002},
        Violation{"close_code_1016", frame(8, close_payload(1016)), 1002},
        Violation{"close_code_2999", frame(8, close_payload(2999)), 1002},
        Violation{"close_code_5000", frame(8, close_payload(5000)), 1002},
        Violation{"close_reason_not_utf8", frame(8, close_payload(1000, "\xff")), 1007},
        Violation{"text_not_utf8", frame(1, "ok \xc0\xaf"), 1007},
        Violation{"text_ends_mid_character", frame(1, "\xe2\x82"), 1007},
        Violation{"fragment_not_utf8", frame(1, "fine", false) + frame(0, "\xed\xa0\x80", false), 1007},
        Violation{"too_big_in_one_frame", frame(2, std::string(1001, 'x')), 1009},
        Violation{"too_big_across_fragments",
                  frame(2, std::string(600, 'x'), false) + frame(0, std::string(401, 'x')), 1009}),
    [](const ::testing::TestParamInfo<Violation>& info) { return std::string(info.param.name); });

TEST(ReaderLimitTest, RefusesAnOversizedMessageFromItsHeaderAlone) {
  MessageReader r(Role::kServer, 1000);
  std::string header = frame(2, std::string(5000, 'x')).substr(0, 8);  // header only
  auto e = r.feed(header);
  EXPECT_EQ(e.kind, Kind::kError);
  EXPECT_EQ(e.code, close_code::kMessageTooBig);
  EXPECT_EQ(e.consumed, 0u);
}

TEST(ReaderLimitTest, AcceptsAMessageOfExactlyTheLimit) {
  MessageReader r(Role::kServer, 1000);
  auto o = run(r, frame(2, std::string(600, 'x'), false) + frame(0, std::string(400, 'y')));
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].data.size(), 1000u);
}

TEST(ReaderRoleTest, AClientRefusesMaskedFramesAndReadsUnmaskedOnes) {
  MessageReader client(Role::kClient);
  auto o = run(client, frame(1, "from server", true, false));
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].data, "from server");
  o = run(client, frame(1, "masked"));
  EXPECT_EQ(o.code, 1002);
}

TEST(ReaderRoleTest, ConsumesAPartialPayloadWithoutWaitingForTheRest) {
  MessageReader r(Role::kServer);
  std::string f = frame(2, std::string(1000, 'z'));
  auto e = r.feed(std::string_view(f).substr(0, 500));
  EXPECT_EQ(e.kind, Kind::kNeedMore);
  EXPECT_EQ(e.consumed, 500u);  // header and the payload so far
  e = r.feed(std::string_view(f).substr(500));
  EXPECT_EQ(e.kind, Kind::kMessage);
  EXPECT_EQ(r.take_message().data, std::string(1000, 'z'));
}

// --- with permessage-deflate ------------------------------------------------------------

std::string compressed_frame(DeflateCompressor& c, int opcode, std::string_view text, bool masked = true) {
  std::string z;
  c.compress(text, z);
  return frame(opcode, z, true, masked, 4);
}

TEST_P(ReaderTest, InflatesCompressedMessagesWithContextTakeover) {
  DeflateCompressor c(15, false);
  DeflateDecompressor d(15, false);
  MessageReader r(Role::kServer, kDefaultMaxMessageSize, &d);
  // One statement each: the compression context must see them in order.
  std::string input = compressed_frame(c, 1, "hello hello hello");
  input += frame(1, "plain too");
  input += compressed_frame(c, 1, "hello hello hello");
  input += compressed_frame(c, 2, std::string(5000, 'q'));
  auto o = run(r, input, GetParam());
  ASSERT_EQ(o.messages.size(), 4u);
  EXPECT_EQ(o.messages[0].data, "hello hello hello");
  EXPECT_EQ(o.messages[1].data, "plain too");
  EXPECT_EQ(o.messages[2].data, "hello hello hello");
  EXPECT_EQ(o.messages[3].data, std::string(5000, 'q'));
  EXPECT_TRUE(o.messages[3].binary);
}

TEST_P(ReaderTest, InflatesAFragmentedCompressedMessage) {
  DeflateCompressor c(15, false);
  DeflateDecompressor d(15, false);
  MessageReader r(Role::kServer, kDefaultMaxMessageSize, &d);
  std::string z;
  std::string text = "fragmented and compressed \xe2\x82\xac text";
  c.compress(text, z);
  std::size_t cut = z.size() / 2;
  std::string input = frame(1, z.substr(0, cut), false, true, 4) + frame(9, "p") + frame(0, z.substr(cut), true);
  auto o = run(r, input, GetParam());
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].data, text);
}

TEST(CompressedReaderTest, RefusesRsv1OnContinuationsAndControlFrames) {
  DeflateDecompressor d(15, false);
  {
    MessageReader r(Role::kServer, 1000, &d);
    auto o = run(r, frame(1, "a", false) + frame(0, "b", true, true, 4));
    EXPECT_EQ(o.code, 1002);
  }
  {
    d.reset();
    MessageReader r(Role::kServer, 1000, &d);
    auto o = run(r, frame(9, "", true, true, 4));
    EXPECT_EQ(o.code, 1002);
  }
}

TEST(CompressedReaderTest, AnEmptyCompressedPayloadIsAnEmptyMessage) {
  DeflateDecompressor d(15, false);
  MessageReader r(Role::kServer, 1000, &d);
  auto o = run(r, frame(1, "", true, true, 4) + frame(2, "\x00", true, true, 4));
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].data, "");
  EXPECT_EQ(o.messages[1].data, "");
}

TEST(CompressedReaderTest, ClosesABombWith1009WithoutBufferingIt) {
  DeflateCompressor c(15, true, 9);
  std::string zeros(8u << 20, '\0');
  std::string z;
  c.compress(zeros, z);
  zeros = std::string();
  DeflateDecompressor d(15, true);
  MessageReader r(Role::kServer, 64 * 1024, &d);
  auto o = run(r, frame(2, z, true, true, 4));
  EXPECT_EQ(o.code, close_code::kMessageTooBig);
  EXPECT_TRUE(o.messages.empty());
}

TEST(CompressedReaderTest, InvalidCompressedDataIs1007) {
  DeflateDecompressor d(15, false);
  MessageReader r(Role::kServer, 1000, &d);
  auto o = run(r, frame(2, "\xff\xff\xff\xff", true, true, 4));
  EXPECT_EQ(o.code, close_code::kInvalidPayload);
}

TEST(CompressedReaderTest, CompressedTextMustBeUtf8) {
  DeflateCompressor c(15, false);
  DeflateDecompressor d(15, false);
  MessageReader r(Role::kServer, 1000, &d);
  auto o = run(r, compressed_frame(c, 1, "bad \xff text"));
  EXPECT_EQ(o.code, close_code::kInvalidPayload);
}

// --- writer --------------------------------------------------------------------------------

TEST(WriterTest, ServerFramesAreUnmaskedAndClientFramesMaskedWithFreshKeys) {
  MessageWriter server(Role::kServer);
  std::string out;
  server.frame_message(out, "hi", false);
  EXPECT_EQ(out, std::string("\x81\x02hi", 4));

  MessageWriter client(Role::kClient);
  std::string a, b;
  client.frame_message(a, "same payload", true);
  client.frame_message(b, "same payload", true);
  EXPECT_NE(a.substr(2, 4), b.substr(2, 4));  // a new key per frame
  MessageReader reader(Role::kServer);
  auto o = run(reader, a + b);
  ASSERT_EQ(o.messages.size(), 2u);
  EXPECT_EQ(o.messages[0].data, "same payload");
  EXPECT_TRUE(o.messages[1].binary);
}

TEST(WriterTest, ControlAndCloseFramesFollowTheRules) {
  MessageWriter w(Role::kServer);
  std::string out;
  w.frame_control(out, Opcode::kPing, std::string(125, 'p'));
  EXPECT_EQ(out.size(), 127u);
  EXPECT_THROW(w.frame_control(out, Opcode::kPing, std::string(126, 'p')), std::invalid_argument);
  out.clear();
  w.frame_close(out, 1000, "done");
  EXPECT_EQ(out, std::string("\x88\x06\x03\xe8" "done", 8));
  out.clear();
  w.frame_close(out, std::nullopt, "");
  EXPECT_EQ(out, std::string("\x88\x00", 2));
  for (int bad : {1005, 1006, 1015, 999, 5000}) EXPECT_THROW(w.frame_close(out, bad, ""), std::invalid_argument);
  EXPECT_THROW(w.frame_close(out, 1000, std::string(124, 'r')), std::invalid_argument);
  EXPECT_THROW(w.frame_close(out, std::nullopt, "reason without code"), std::invalid_argument);
}

TEST(WriterTest, CompressedFramesCarryRsv1AndInflateBack) {
  DeflateCompressor c(15, false);
  DeflateDecompressor d(15, false);
  MessageWriter w(Role::kClient, &c);
  MessageReader r(Role::kServer, kDefaultMaxMessageSize, &d);
  std::string out;
  for (int i = 0; i < 5; ++i) w.frame_message(out, "message number " + std::to_string(i), false);
  EXPECT_EQ(static_cast<std::uint8_t>(out[0]), 0xC1);  // FIN | RSV1 | text
  auto o = run(r, out);
  ASSERT_EQ(o.messages.size(), 5u);
  EXPECT_EQ(o.messages[4].data, "message number 4");
}

}  // namespace
}  // namespace squall::websocket
