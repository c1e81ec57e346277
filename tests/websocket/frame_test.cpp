// The frame codec: header parsing and encoding, masking, close codes and the
// incremental UTF-8 validator.
#include "squall/websocket/frame.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>
#include <string>

#include "../support/exact_input.hpp"

namespace squall::websocket {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

TEST(FrameHeaderTest, ParsesTheRfcExamples) {
  // RFC 6455 section 5.7: a single-frame unmasked text message "Hello".
  std::string unmasked = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  FrameHeader h;
  ASSERT_EQ(parse_frame_header(unmasked, h), FrameStatus::kComplete);
  EXPECT_TRUE(h.fin);
  EXPECT_EQ(h.opcode, Opcode::kText);
  EXPECT_FALSE(h.masked);
  EXPECT_EQ(h.length, 5u);
  EXPECT_EQ(h.size, 2);
  // The masked one.
  std::string masked = bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  ASSERT_EQ(parse_frame_header(masked, h), FrameStatus::kComplete);
  EXPECT_TRUE(h.masked);
  EXPECT_EQ(h.size, 6);
  std::string payload = masked.substr(6);
  apply_mask(payload.data(), payload.size(), h.mask);
  EXPECT_EQ(payload, "Hello");
}

TEST(FrameHeaderTest, ReadsSixteenAndSixtyFourBitLengths) {
  std::string h16 = bytes({0x82, 0x7E, 0x01, 0x00});
  FrameHeader h;
  ASSERT_EQ(parse_frame_header(h16, h), FrameStatus::kComplete);
  EXPECT_EQ(h.length, 256u);
  EXPECT_EQ(h.size, 4);
  std::string h64 = bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0});
  ASSERT_EQ(parse_frame_header(h64, h), FrameStatus::kComplete);
  EXPECT_EQ(h.length, 65536u);
  EXPECT_EQ(h.size, 10);
}

TEST(FrameHeaderTest, IsPartialUntilEveryHeaderByteIsThere) {
  std::string full = bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0, 0, 1, 2, 3, 4});
  FrameHeader h;
  for (std::size_t n = 0; n < full.size(); ++n) {
    // Against a guard page: a read past the given bytes faults.
    squall::testing::Exact in(full.substr(0, n));
    EXPECT_EQ(parse_frame_header(in.view(), h), FrameStatus::kPartial) << n;
  }
  squall::testing::Exact in(full);
  ASSERT_EQ(parse_frame_header(in.view(), h), FrameStatus::kComplete);
  EXPECT_EQ(h.size, 14);
  EXPECT_EQ(h.mask, (std::array<std::uint8_t, 4>{1, 2, 3, 4}));
}

TEST(FrameHeaderTest, RefusesALengthWithItsTopBitSet) {
  std::string bad = bytes({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1});
  FrameHeader h;
  EXPECT_EQ(parse_frame_header(bad, h), FrameStatus::kError);
}

TEST(FrameHeaderTest, ReportsReservedBitsAndOpcodes) {
  FrameHeader h;
  ASSERT_EQ(parse_frame_header(bytes({0xF3, 0x00}), h), FrameStatus::kComplete);
  EXPECT_TRUE(h.rsv1 && h.rsv2 && h.rsv3);
  EXPECT_EQ(static_cast<int>(h.opcode), 3);
}

TEST(FrameHeaderTest, EncoderUsesTheShortestLengthAndRoundTrips) {
  for (std::uint64_t len : {0ull, 125ull, 126ull, 65535ull, 65536ull, (1ull << 40)}) {
    for (bool masked : {false, true}) {
      std::string out;
      std::uint8_t key[4] = {9, 8, 7, 6};
      append_frame_header(out, Opcode::kBinary, true, true, len, masked ? key : nullptr);
      std::size_t expect = 2 + (len < 126 ? 0 : len <= 65535 ? 2 : 8) + (masked ? 4 : 0);
      EXPECT_EQ(out.size(), expect) << len;
      FrameHeader h;
      ASSERT_EQ(parse_frame_header(out, h), FrameStatus::kComplete);
      EXPECT_EQ(h.length, len);
      EXPECT_EQ(h.masked, masked);
      EXPECT_TRUE(h.rsv1);
      EXPECT_EQ(h.opcode, Opcode::kBinary);
      if (masked) {
        EXPECT_EQ(h.mask, (std::array<std::uint8_t, 4>{9, 8, 7, 6}));
      }
    }
  }
}

TEST(MaskTest, WideMaskingMatchesTheBytewiseDefinition) {
  std::mt19937 rng(42);
  std::array<std::uint8_t, 4> key{0x12, 0x34, 0x56, 0x78};
  for (std::size_t size : {0u, 1u, 3u, 7u, 8u, 9u, 15u, 16u, 17u, 100u, 1000u}) {
    for (std::size_t offset : {0u, 1u, 2u, 3u, 5u}) {
      std::string data(size, '\0');
      for (auto& c : data) c = static_cast<char>(rng());
      std::string expect = data;
      for (std::size_t i = 0; i < size; ++i) expect[i] = static_cast<char>(expect[i] ^ key[(offset + i) % 4]);
      std::string got = data;
      apply_mask(got.data(), got.size(), key, offset);
      EXPECT_EQ(got, expect) << size << "/" << offset;
      std::string copy(size, '\0');
      mask_copy(copy.data(), data.data(), size, key, offset);
      EXPECT_EQ(copy, expect);
    }
  }
}

TEST(MaskTest, PiecewiseUnmaskingEqualsWholeUnmasking) {
  std::array<std::uint8_t, 4> key{1, 2, 3, 4};
  std::string data(1001, 'x');
  std::string whole = data;
  apply_mask(whole.data(), whole.size(), key);
  std::string pieces = data;
  std::size_t at = 0;
  for (std::size_t step : {3u, 10u, 1u, 500u, 487u}) {
    apply_mask(pieces.data() + at, step, key, at);
    at += step;
  }
  EXPECT_EQ(pieces, whole);
}

TEST(CloseCodeTest, AcceptsExactlyTheRegisteredAndApplicationCodes) {
  for (int c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}) {
    EXPECT_TRUE(is_valid_close_code(c)) << c;
  }
  for (int c : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(is_valid_close_code(c)) << c;
  }
}

TEST(Utf8Test, AcceptsValidText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii text longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));  // κόσμε
  EXPECT_TRUE(is_valid_utf8("\xf0\x90\x80\x80"));                              // U+10000
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));                              // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));                                  // U+D7FF
  EXPECT_TRUE(is_valid_utf8("\xee\x80\x80"));                                  // U+E000
}

TEST(Utf8Test, RefusesOverlongsSurrogatesAndOutOfRange) {
  for (std::string bad : std::vector<std::string>{"\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80", "\xed\xbf\xbf",
                          "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "\xce", "abc\xe1\xbd",
                          std::string("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited")}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << ::testing::PrintToString(bad);
  }
}

TEST(Utf8Test, ValidatesACharacterSplitAcrossPieces) {
  std::string text = "a\xf0\x9f\x98\x80z";  // 😀 between ASCII letters
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Validator v;
    EXPECT_TRUE(v.feed(text.substr(0, cut)));
    EXPECT_TRUE(v.feed(text.substr(cut)));
    EXPECT_TRUE(v.complete()) << cut;
  }
  Utf8Validator v;
  EXPECT_TRUE(v.feed("a\xf0\x9f"));
  EXPECT_FALSE(v.complete());  // stops inside a character
}

TEST(Utf8Test, FailsAsSoonAsThePrefixCannotBeValid) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed("\xf4\x90"));  // already above U+10FFFF
  EXPECT_FALSE(v.feed("ok"));        // stays failed
  EXPECT_FALSE(v.complete());
}

TEST(Utf8Test, AgreesWithABytewiseDecoderOnRandomInput) {
  // A reference decoder written from RFC 3629's table.
  auto reference = [](const std::string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
      auto c = static_cast<unsigned char>(s[i]);
      int n;
      std::uint32_t cp;
      if (c < 0x80) { n = 0; cp = c; }
      else if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
      else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
      else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
      else return false;
      if (n > 0 && i + n >= s.size()) return false;
      for (int k = 1; k <= n; ++k) {
        auto d = static_cast<unsigned char>(s[i + k]);
        if ((d & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (d & 0x3F);
      }
      static const std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
      if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i += n + 1;
    }
    return true;
  };
  std::mt19937 rng(7);
  const char alphabet[] = {'a', '\x80', '\xbf', '\xc2', '\xdf', '\xe0', '\xed', '\xef', '\xf0', '\xf4', '\xa0', '\x90', '\x8f', '\xf5'};
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 8, '\0');
    for (auto& c : s) c = alphabet[rng() % sizeof alphabet];
    EXPECT_EQ(is_valid_utf8(s), reference(s)) << ::testing::PrintToString(s);
  }
}

}  // namespace
}  // namespace squall::websocket
