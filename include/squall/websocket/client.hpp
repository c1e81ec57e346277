// The WebSocket client (Tornado's websocket_connect and
// WebSocketClientConnection): connects over TCP or TLS, performs the
// opening handshake (subprotocols, permessage-deflate, custom headers) and
// hands back a connection to read and write messages. Loop-affine: connect,
// use and destroy a connection on one loop's thread.
//
//   auto ws = co_await squall::websocket::websocket_connect("ws://127.0.0.1:8888/chat");
//   co_await ws.write_message("hello");
//   while (auto msg = co_await ws.read_message()) std::cout << msg->data << "\n";
//   // nullopt: the connection closed; ws.close_code() says how.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/net/resolver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/websocket/connection.hpp"
#include "squall/websocket/deflate.hpp"
#include "squall/websocket/frame.hpp"
#include "squall/websocket/protocol.hpp"

namespace squall::websocket {

/// The server did not accept the handshake: `code()` is its HTTP status
/// (101 if the status was right but the answer was not a valid WebSocket
/// acceptance), `headers()` its response headers.
class WebSocketHandshakeError : public WebSocketError {
 public:
  WebSocketHandshakeError(int code, const std::string& what, http::HTTPHeaders headers = {})
      : WebSocketError(what), code_(code), headers_(std::move(headers)) {}
  int code() const noexcept { return code_; }
  const http::HTTPHeaders& headers() const noexcept { return headers_; }

 private:
  int code_;
  http::HTTPHeaders headers_;
};

/// Options of websocket_connect (Tornado's websocket_connect arguments).
struct WebSocketConnectOptions {
  /// Offered in Sec-WebSocket-Protocol, in order of preference.
  std::vector<std::string> subprotocols{};
  /// Offer permessage-deflate with these options; nullopt: no compression
  /// (Tornado's compression_options=None).
  std::optional<CompressionOptions> compression{};
  /// Keep-alive pings, message limit and close timeout of the connection.
  Duration ping_interval{};
  Duration ping_timeout{};
  std::size_t max_message_size{kDefaultMaxMessageSize};
  Duration close_timeout{std::chrono::seconds(5)};
  /// Receives every message, then nullopt at close, instead of
  /// read_message() (Tornado's on_message_callback). Runs on the loop.
  std::function<void(std::optional<Message>)> on_message{};
  /// For wss://: the TLS context (null: one that verifies the server
  /// against the system's CAs, or the request's ca_certs, unless the
  /// request's validate_cert is false).
  std::shared_ptr<net::SSLContext> ssl_context{};
  /// Name resolution; null: net::default_resolver().
  std::shared_ptr<net::Resolver> resolver{};
  /// Largest handshake response head.
  std::size_t max_header_size{64 * 1024};
};

/// An open client connection. A movable handle; destroying it starts the
/// close handshake (the connection finishes closing by itself).
class WebSocketClientConnection {
 public:
  struct State;  // shared with the connection's delegate (client.cpp)

  explicit WebSocketClientConnection(std::shared_ptr<State> state) noexcept;
  WebSocketClientConnection(WebSocketClientConnection&&) noexcept;
  WebSocketClientConnection& operator=(WebSocketClientConnection&&) noexcept;
  ~WebSocketClientConnection();

  /// The next message, or nullopt once the connection is closed. One read
  /// at a time; messages wait (one at most: the socket is not read further
  /// meanwhile, Tornado's back-pressure) until read. Fails with
  /// std::logic_error with an on_message callback set, or a second
  /// concurrent read.
  Future<std::optional<Message>> read_message();
  /// Sends a message; see WebSocketConnection::write_message.
  Future<void> write_message(std::string_view message, bool binary = false);
  Future<void> write_message(std::string&& message, bool binary = false);
  Future<void> write_message(const char* message, bool binary = false) {
    return write_message(std::string_view(message), binary);
  }
  Future<void> ping(std::string_view data = {});
  /// Starts the close handshake (see WebSocketConnection::close).
  void close(std::optional<int> code = std::nullopt, std::string_view reason = {});
  /// Resolves once the connection is fully closed.
  Future<void> wait_closed();

  /// The server's close code and reason, once it sent them.
  std::optional<int> close_code() const noexcept;
  const std::string& close_reason() const noexcept;
  /// The subprotocol the server chose, or empty.
  const std::string& selected_subprotocol() const noexcept;
  /// The headers of the server's 101 response.
  const http::HTTPHeaders& headers() const noexcept;
  /// The agreed permessage-deflate parameters, if compression is on.
  const std::optional<DeflateParameters>& deflate_parameters() const noexcept;
  /// The protocol connection underneath.
  WebSocketConnection& connection() const noexcept;

 private:
  std::shared_ptr<State> state_;
};

/// Connects to a ws:// or wss:// URL (http:// and https:// are taken as
/// the same). Fails with WebSocketHandshakeError if the server does not
/// accept, net::ConnectError / ResolveError / SSLError / TimeoutError on the
/// way there, std::invalid_argument for a URL it cannot use.
Future<WebSocketClientConnection> websocket_connect(std::string url, WebSocketConnectOptions options = {});
/// The same from an HTTPRequest: its url, headers (Origin, Cookie,
/// Authorization...), connect_timeout (TCP and TLS), request_timeout (the
/// handshake), validate_cert, ca_certs, client_cert and client_key are
/// used; the rest is ignored.
Future<WebSocketClientConnection> websocket_connect(http::HTTPRequest request, WebSocketConnectOptions options = {});

}  // namespace squall::websocket
