// The handshake's pure helpers: accept key, key generation and validation,
// header token lists.
#include "squall/websocket/handshake.hpp"

#include <gtest/gtest.h>

#include <set>

namespace squall::websocket {
namespace {

TEST(HandshakeTest, ComputesTheRfcAcceptKey) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(compute_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(compute_accept_key("  dGhlIHNhbXBsZSBub25jZQ== "), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(HandshakeTest, GeneratesValidDistinctKeys) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string key = generate_key();
    EXPECT_TRUE(is_valid_key(key)) << key;
    seen.insert(key);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(HandshakeTest, ValidatesKeys) {
  EXPECT_TRUE(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(is_valid_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  for (std::string_view bad : {"", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZR==",
                               "dGhlIHNhbXBsZSBub25j*Q==", "dGhlIHNhbXBsZSBub25jZQ==AAAA", "short=="}) {
    EXPECT_FALSE(is_valid_key(bad)) << bad;
  }
}

TEST(HandshakeTest, FindsTokensInCommaSeparatedValues) {
  EXPECT_TRUE(has_token("Upgrade", "upgrade"));
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(has_token(" websocket ,x", "WebSocket"));
  EXPECT_FALSE(has_token("upgraded", "upgrade"));
  EXPECT_FALSE(has_token("", "upgrade"));
}

TEST(HandshakeTest, SplitsHeaderLists) {
  EXPECT_EQ(split_header_list(" chat, superchat ,,v2 "), (std::vector<std::string>{"chat", "superchat", "v2"}));
  EXPECT_TRUE(split_header_list(" , ").empty());
}

}  // namespace
}  // namespace squall::websocket
