// permessage-deflate (RFC 7692): negotiation of the extension's parameters
// in the Sec-WebSocket-Extensions header, and the per-connection raw
// DEFLATE compressor and decompressor (zlib) with the 00 00 ff ff tail
// handling and context takeover. The decompressor enforces a size limit
// while it inflates, so a decompression bomb is refused without ever being
// buffered. Negotiation functions are pure (any thread); a compressor or
// decompressor belongs to one connection.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squall::websocket {

/// What an endpoint wants from permessage-deflate (Tornado's
/// compression_options). Window bits are 9..15 (zlib cannot compress with
/// an 8-bit raw window; a peer that demands 8 gets uncompressed messages,
/// which RFC 7692 allows).
struct CompressionOptions {
  /// zlib level, 0 (store) .. 9 (best); Tornado's default, 6.
  int compression_level{6};
  /// zlib memLevel, 1 .. 9: memory for the compressor's state (Tornado: 8).
  int mem_level{8};
  /// Server: the largest window it compresses with (answered as
  /// server_max_window_bits when below 15). Client: asked of the server.
  int server_max_window_bits{15};
  /// Server: asked of the client when it offers client_max_window_bits.
  /// Client: the window it compresses with (offered when below 15).
  int client_max_window_bits{15};
  /// Ask for (client) or impose (server) no context takeover on the
  /// server's messages: each is compressed alone, so nothing is kept
  /// between messages, at some cost in ratio.
  bool server_no_context_takeover{false};
  /// The same for the client's messages.
  bool client_no_context_takeover{false};
};

/// The parameters both ends agreed on for one connection.
struct DeflateParameters {
  bool server_no_context_takeover{false};
  bool client_no_context_takeover{false};
  int server_max_window_bits{15};
  int client_max_window_bits{15};
};

/// One element of a Sec-WebSocket-Extensions list: a name and its
/// parameters (a parameter without "=" has no value).
struct ExtensionOffer {
  std::string name{};
  std::vector<std::pair<std::string, std::optional<std::string>>> params{};
};

/// Parses a Sec-WebSocket-Extensions value (RFC 6455 section 9.1: a
/// comma-separated list of `name *(; param[=token|quoted-string])`);
/// several header fields are joined with "," before the call. nullopt if
/// it is malformed.
std::optional<std::vector<ExtensionOffer>> parse_extensions(std::string_view header);

/// Server side: the first acceptable permessage-deflate offer among
/// `offers`, with the answer for the Sec-WebSocket-Extensions response
/// header; nullopt when nothing acceptable was offered (the connection then
/// goes on without compression). Offers with unknown, repeated or invalid
/// parameters are declined (RFC 7692 section 5).
struct DeflateAgreement {
  DeflateParameters params{};
  std::string response{};  // "permessage-deflate; ..."
};
std::optional<DeflateAgreement> accept_deflate_offer(std::span<const ExtensionOffer> offers,
                                                     const CompressionOptions& options);

/// Client side: the Sec-WebSocket-Extensions offer for `options`.
std::string deflate_offer(const CompressionOptions& options);
/// Client side: checks the server's answer against what `options` offered
/// and returns the agreed parameters. Throws WebSocketError when the answer
/// is not one the offer allowed (RFC 7692 section 7.1: the client then
/// fails the connection).
DeflateParameters accept_deflate_response(const ExtensionOffer& response, const CompressionOptions& options);

/// Compresses whole messages with raw DEFLATE and a sync flush, dropping the
/// final 00 00 ff ff (RFC 7692 section 7.2.1). With context takeover the
/// LZ77 window carries over from message to message.
class DeflateCompressor {
 public:
  /// Throws std::invalid_argument for parameters zlib rejects.
  DeflateCompressor(int window_bits, bool no_context_takeover, int level = 6, int mem_level = 8);
  ~DeflateCompressor();
  DeflateCompressor(const DeflateCompressor&) = delete;
  DeflateCompressor& operator=(const DeflateCompressor&) = delete;

  /// Appends the compressed payload of `message` to `out`.
  void compress(std::string_view message, std::string& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
  bool no_context_takeover_;
};

/// Inflates messages piece by piece as their frames arrive.
class DeflateDecompressor {
 public:
  enum class Status { kOk, kTooBig, kError };

  /// `window_bits` is the peer's agreed window (8..15).
  DeflateDecompressor(int window_bits, bool no_context_takeover);
  ~DeflateDecompressor();
  DeflateDecompressor(const DeflateDecompressor&) = delete;
  DeflateDecompressor& operator=(const DeflateDecompressor&) = delete;

  /// Inflates a piece of one message's compressed payload, appending to
  /// `out`. kTooBig as soon as `out` would grow past `limit` bytes (it never
  /// holds more than `limit`); kError for invalid DEFLATE data.
  Status feed(std::string_view input, std::string& out, std::size_t limit);
  /// Ends the message (inflates the 00 00 ff ff tail the sender dropped)
  /// and, without context takeover, forgets the window.
  Status finish(std::string& out, std::size_t limit);
  /// Forgets a message cut short (after an error).
  void reset() noexcept;

 private:
  Status inflate_some(const char* data, std::size_t size, std::string& out, std::size_t limit);

  struct State;
  std::unique_ptr<State> state_;
  bool no_context_takeover_;
  bool ended_ = false;  // a final block ended the stream inside this message
};

}  // namespace squall::websocket
