// permessage-deflate: header parsing, offer/accept negotiation on both
// sides (RFC 7692 section 7.1), and the compressor/decompressor pair with
// the tail, context takeover and the decompressed size limit.
#include "squall/websocket/deflate.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "squall/websocket/frame.hpp"

namespace squall::websocket {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

std::vector<ExtensionOffer> offers(std::string_view header) {
  auto parsed = parse_extensions(header);
  EXPECT_TRUE(parsed.has_value()) << header;
  return parsed.value_or(std::vector<ExtensionOffer>{});
}

TEST(ParseExtensionsTest, ReadsNamesParametersAndQuotedValues) {
  auto list = offers("permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", x-foo ,bar;a=b");
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].name, "permessage-deflate");
  ASSERT_EQ(list[0].params.size(), 2u);
  EXPECT_EQ(list[0].params[0].first, "client_max_window_bits");
  EXPECT_FALSE(list[0].params[0].second.has_value());
  EXPECT_EQ(list[0].params[1].second.value(), "10");
  EXPECT_EQ(list[1].name, "x-foo");
  EXPECT_EQ(list[2].params[0].second.value(), "b");
  EXPECT_TRUE(offers("").empty());
  EXPECT_EQ(offers(" , permessage-deflate ,").size(), 1u);
}

TEST(ParseExtensionsTest, RefusesMalformedValues) {
  for (std::string_view bad : {"permessage-deflate;", "permessage-deflate; =1", "a b", "a; b=", "a; b=\"\"",
                               "a; b=\"x y\"", "a; b=\"unterminated", "a;b=c d", "@"}) {
    EXPECT_FALSE(parse_extensions(bad).has_value()) << bad;
  }
}

TEST(AcceptOfferTest, AcceptsTheOffersBrowsersAndTornadoSend) {
  CompressionOptions options;
  // Chrome and Tornado's client.
  auto a = accept_deflate_offer(offers("permessage-deflate; client_max_window_bits"), options);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->response, "permessage-deflate");
  EXPECT_EQ(a->params.client_max_window_bits, 15);
  EXPECT_EQ(a->params.server_max_window_bits, 15);
  // Firefox, Safari.
  a = accept_deflate_offer(offers("permessage-deflate"), options);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->response, "permessage-deflate");
}

TEST(AcceptOfferTest, AnswersEveryParameterTheClientRequires) {
  CompressionOptions options;
  auto a = accept_deflate_offer(
      offers("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
             "client_max_window_bits=12"),
      options);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
            "client_max_window_bits=12");
  EXPECT_TRUE(a->params.server_no_context_takeover);
  EXPECT_TRUE(a->params.client_no_context_takeover);
  EXPECT_EQ(a->params.server_max_window_bits, 10);
  EXPECT_EQ(a->params.client_max_window_bits, 12);
}

TEST(AcceptOfferTest, AppliesTheServersOwnLimits) {
  CompressionOptions options;
  options.server_max_window_bits = 11;
  options.client_max_window_bits = 10;
  options.server_no_context_takeover = true;
  auto a = accept_deflate_offer(offers("permessage-deflate; client_max_window_bits"), options);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->response,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10");
  EXPECT_EQ(a->params.client_max_window_bits, 10);
  // Without client_max_window_bits in the offer, the server must not ask.
  a = accept_deflate_offer(offers("permessage-deflate"), options);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->response, "permessage-deflate; server_no_context_takeover; server_max_window_bits=11");
  EXPECT_EQ(a->params.client_max_window_bits, 15);
}

TEST(AcceptOfferTest, DeclinesInvalidOffersAndTakesTheNextAcceptableOne) {
  CompressionOptions options;
  for (std::string_view bad :
       {"permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16", "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=abc", "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; unknown", "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "x-webkit-deflate-frame"}) {
    EXPECT_FALSE(accept_deflate_offer(offers(bad), options).has_value()) << bad;
  }
  auto a = accept_deflate_offer(offers("permessage-deflate; bogus, permessage-deflate; server_max_window_bits=9"),
                                options);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->params.server_max_window_bits, 9);
}

TEST(ClientNegotiationTest, OffersWhatTheOptionsSay) {
  CompressionOptions options;
  EXPECT_EQ(deflate_offer(options), "permessage-deflate; client_max_window_bits");
  options.client_max_window_bits = 10;
  options.server_max_window_bits = 12;
  options.client_no_context_takeover = true;
  EXPECT_EQ(deflate_offer(options),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=10");
}

TEST(ClientNegotiationTest, AcceptsValidAnswersAndRefusesTheRest) {
  CompressionOptions options;
  auto parse_one = [](std::string_view h) { return offers(h).at(0); };
  DeflateParameters p = accept_deflate_response(parse_one("permessage-deflate"), options);
  EXPECT_EQ(p.client_max_window_bits, 15);
  EXPECT_FALSE(p.server_no_context_takeover);
  p = accept_deflate_response(
      parse_one("permessage-deflate; server_no_context_takeover; client_max_window_bits=9; server_max_window_bits=10"),
      options);
  EXPECT_TRUE(p.server_no_context_takeover);
  EXPECT_EQ(p.client_max_window_bits, 9);
  EXPECT_EQ(p.server_max_window_bits, 10);
  for (std::string_view bad : {"permessage-deflate; client_max_window_bits", "permessage-deflate; foo",
                               "permessage-deflate; server_max_window_bits=20", "other-extension"}) {
    EXPECT_THROW(accept_deflate_response(parse_one(bad), options), WebSocketError) << bad;
  }
  options.server_max_window_bits = 10;
  EXPECT_THROW(accept_deflate_response(parse_one("permessage-deflate; server_max_window_bits=12"), options),
               WebSocketError);
  options.client_max_window_bits = 10;
  EXPECT_THROW(accept_deflate_response(parse_one("permessage-deflate; client_max_window_bits=11"), options),
               WebSocketError);
}

std::string inflate_all(DeflateDecompressor& d, const std::string& payload, std::size_t limit = 1 << 20) {
  std::string out;
  EXPECT_EQ(d.feed(payload, out, limit), DeflateDecompressor::Status::kOk);
  EXPECT_EQ(d.finish(out, limit), DeflateDecompressor::Status::kOk);
  return out;
}

TEST(DeflateTest, DecodesTheRfc7692Examples) {
  DeflateDecompressor d(15, false);
  // 7.2.3.1, then 7.2.3.2 (the second "Hello" refers to the first).
  EXPECT_EQ(inflate_all(d, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})), "Hello");
  EXPECT_EQ(inflate_all(d, bytes({0xf2, 0x00, 0x11, 0x00, 0x00})), "Hello");
  // 7.2.3.3: a stored block.
  DeflateDecompressor stored(15, false);
  EXPECT_EQ(inflate_all(stored, bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})), "Hello");
  // 7.2.3.4: BFINAL set, then a next message still decodes.
  DeflateDecompressor final_block(15, false);
  EXPECT_EQ(inflate_all(final_block, bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00})), "Hello");
  EXPECT_EQ(inflate_all(final_block, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})), "Hello");
}

TEST(DeflateTest, CompressesHelloAsTheRfcDoesAndDropsTheTail) {
  DeflateCompressor c(15, false);
  std::string out;
  c.compress("Hello", out);
  EXPECT_EQ(out, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
}

TEST(DeflateTest, ContextTakeoverShrinksRepeatsAndNoTakeoverDoesNot) {
  std::string text = "The quick brown fox jumps over the lazy dog, again and again.";
  DeflateCompressor takeover(15, false);
  std::string first, second;
  takeover.compress(text, first);
  takeover.compress(text, second);
  EXPECT_LT(second.size(), first.size());
  DeflateDecompressor d(15, false);
  EXPECT_EQ(inflate_all(d, first), text);
  EXPECT_EQ(inflate_all(d, second), text);

  DeflateCompressor alone(15, true);
  std::string a, b;
  alone.compress(text, a);
  alone.compress(text, b);
  EXPECT_EQ(a, b);
  DeflateDecompressor fresh(15, true);
  EXPECT_EQ(inflate_all(fresh, a), text);
  EXPECT_EQ(inflate_all(fresh, b), text);
}

TEST(DeflateTest, RoundTripsRandomMessagesFedInPieces) {
  std::mt19937 rng(3);
  for (int bits : {9, 12, 15}) {
    DeflateCompressor c(bits, false, 6, 8);
    DeflateDecompressor d(bits, false);
    for (int round = 0; round < 30; ++round) {
      std::string msg(rng() % 70000, '\0');
      for (auto& ch : msg) ch = static_cast<char>('a' + rng() % (round % 2 ? 3 : 26));
      std::string z;
      c.compress(msg, z);
      std::string out;
      std::size_t at = 0;
      while (at < z.size()) {
        std::size_t n = std::min<std::size_t>(z.size() - at, 1 + rng() % 5000);
        ASSERT_EQ(d.feed(std::string_view(z).substr(at, n), out, msg.size() + 10), DeflateDecompressor::Status::kOk);
        at += n;
      }
      ASSERT_EQ(d.finish(out, msg.size() + 10), DeflateDecompressor::Status::kOk);
      ASSERT_EQ(out, msg);
    }
  }
}

TEST(DeflateTest, EmptyMessagesRoundTrip) {
  DeflateCompressor c(15, false);
  DeflateDecompressor d(15, false);
  std::string z;
  c.compress("", z);
  EXPECT_EQ(inflate_all(d, z), "");
  z.clear();
  c.compress("after", z);
  EXPECT_EQ(inflate_all(d, z), "after");
}

TEST(DeflateTest, AnEmptyMessageAfterOthersIsTheOneByteEmptyBlock) {
  // Regression: zlib emits nothing for a sync flush right after another,
  // and an empty payload plus the tail is not valid DEFLATE (Tornado's
  // client failed with "invalid stored block lengths").
  DeflateCompressor c(15, false);
  DeflateDecompressor d(15, false);
  for (std::string msg : {"first", "", "", "after"}) {
    std::string z;
    c.compress(msg, z);
    EXPECT_FALSE(z.empty());
    EXPECT_EQ(inflate_all(d, z), msg);
  }
}

TEST(DeflateTest, ABombStopsAtTheLimitWithoutBufferingIt) {
  // 16 MiB of zeros compresses to about 16 KiB.
  DeflateCompressor c(15, true, 9);
  std::string big(16u << 20, '\0');
  std::string z;
  c.compress(big, z);
  big = std::string();
  EXPECT_LT(z.size(), 64u * 1024);
  DeflateDecompressor d(15, true);
  std::string out;
  const std::size_t limit = 1 << 20;
  EXPECT_EQ(d.feed(z, out, limit), DeflateDecompressor::Status::kTooBig);
  EXPECT_LE(out.size(), limit);
  EXPECT_LE(out.capacity(), 4 * limit);  // never grew toward 16 MiB
}

TEST(DeflateTest, ExactlyTheLimitIsAllowed) {
  DeflateCompressor c(15, false);
  std::string msg(1000, 'x');
  std::string z;
  c.compress(msg, z);
  DeflateDecompressor d(15, false);
  std::string out;
  EXPECT_EQ(d.feed(z, out, 1000), DeflateDecompressor::Status::kOk);
  EXPECT_EQ(d.finish(out, 1000), DeflateDecompressor::Status::kOk);
  EXPECT_EQ(out, msg);
  DeflateDecompressor tight(15, false);
  out.clear();
  auto st = tight.feed(z, out, 999);
  if (st == DeflateDecompressor::Status::kOk) st = tight.finish(out, 999);
  EXPECT_EQ(st, DeflateDecompressor::Status::kTooBig);
}

TEST(DeflateTest, InvalidDataIsAnError) {
  DeflateDecompressor d(15, false);
  std::string out;
  auto st = d.feed(bytes({0xff, 0xff, 0xff, 0xff}), out, 1000);
  if (st == DeflateDecompressor::Status::kOk) st = d.finish(out, 1000);
  EXPECT_EQ(st, DeflateDecompressor::Status::kError);
}

TEST(DeflateTest, RefusesParametersZlibCannotHonour) {
  EXPECT_THROW(DeflateCompressor(8, false), std::invalid_argument);
  EXPECT_THROW(DeflateCompressor(16, false), std::invalid_argument);
  EXPECT_THROW(DeflateCompressor(15, false, 10), std::invalid_argument);
  EXPECT_THROW(DeflateCompressor(15, false, 6, 0), std::invalid_argument);
}

}  // namespace
}  // namespace squall::websocket
