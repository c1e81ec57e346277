// The opening handshake's pure parts (RFC 6455 section 4): the
// Sec-WebSocket-Key / Sec-WebSocket-Accept pair, and the checks of header
// values shared by server and client. Any thread may call them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace squall::websocket {

/// The protocol version squall speaks (Sec-WebSocket-Version).
inline constexpr std::string_view kWebSocketVersion = "13";

/// Sec-WebSocket-Accept for `key`: base64(SHA-1(key + the RFC's GUID)).
///   compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
std::string compute_accept_key(std::string_view key);

/// A fresh Sec-WebSocket-Key: 16 random bytes, base64-encoded.
std::string generate_key();

/// True if `key` (surrounding blanks ignored) is base64 of exactly 16
/// bytes, as RFC 6455 section 4.2.1 requires.
bool is_valid_key(std::string_view key);

/// True if the comma-separated header `value` has `token` as one of its
/// elements, case-insensitively ("keep-alive, Upgrade" has "upgrade").
bool has_token(std::string_view value, std::string_view token) noexcept;

/// The elements of a comma-separated header value, trimmed, empty ones
/// dropped (Sec-WebSocket-Protocol).
std::vector<std::string> split_header_list(std::string_view value);

}  // namespace squall::websocket
