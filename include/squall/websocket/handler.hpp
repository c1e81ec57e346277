// WebSocketHandler: a RequestHandler that upgrades its GET request to a
// WebSocket (Tornado's tornado.websocket.WebSocketHandler). Subclass it,
// override open / on_message / on_close, and route to it like any handler.
// Loop-affine: a handler lives and runs on its connection's loop thread.
//
//   class EchoHandler : public squall::websocket::WebSocketHandler {
//    public:
//     squall::Future<void> on_message(squall::websocket::Message message) override {
//       co_await write_message(message.data, message.binary);
//     }
//   };
//   squall::web::Application app({{"/echo", squall::web::handler<EchoHandler>()}});
//
// Lifecycle: get() checks the handshake (GET, Upgrade / Connection tokens,
// Sec-WebSocket-Key, version 13, check_origin), answers 101, calls open(),
// then on_message for each message (the next waits for the previous one's
// Future), on_ping / on_pong as they come, and on_close once the
// connection is gone. The handler object lives until after on_close: a
// chat can keep plain pointers to its open handlers, added in open() and
// removed in on_close().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/web/request_handler.hpp"
#include "squall/websocket/connection.hpp"
#include "squall/websocket/deflate.hpp"
#include "squall/websocket/frame.hpp"
#include "squall/websocket/protocol.hpp"

namespace squall::websocket {

class WebSocketHandler : public web::RequestHandler {
 public:
  WebSocketHandler();
  ~WebSocketHandler() override;

  // --- what subclasses override ----------------------------------------------------------

  /// The connection is open (the 101 went out). The route's groups are in
  /// path_args() / path_kwargs() (Tornado passes them as arguments). May be
  /// a coroutine: no message is delivered before it ends. An exception is
  /// logged and drops the connection.
  virtual Future<void> open();
  /// A message arrived. May be a coroutine: the next message is read only
  /// when its Future is done (back-pressure on the client). An exception is
  /// logged and drops the connection. If the client goes away meanwhile,
  /// the coroutine is cancelled (CancelledError at its current co_await).
  virtual Future<void> on_message(Message message) = 0;
  /// The connection is closed (close_code() / close_reason() tell the
  /// client's side, if it sent a close frame). Called once, even if open()
  /// failed.
  virtual void on_close() {}
  /// A ping arrived (it is answered automatically).
  virtual void on_ping(std::string_view data);
  /// A pong arrived.
  virtual void on_pong(std::string_view data);
  /// Picks one of the client's Sec-WebSocket-Protocol values (which must
  /// be returned as given), or nullopt for none (the default).
  virtual std::optional<std::string> select_subprotocol(const std::vector<std::string>& subprotocols);
  /// Accepts the handshake's Origin. The default allows requests without
  /// Origin and those whose origin's host (and port) equals the Host header
  /// (same origin); anything else gets 403.
  virtual bool check_origin(std::string_view origin);
  /// permessage-deflate: nullopt (the default) turns it off; options turn
  /// it on when the client offers it (Tornado's get_compression_options).
  virtual std::optional<CompressionOptions> get_compression_options();
  /// The connection's limits and timers; the default reads the
  /// application's settings (websocket.ping_interval, .ping_timeout,
  /// .max_message_size).
  virtual WebSocketOptions get_websocket_options();

  // --- what subclasses call --------------------------------------------------------------

  /// Sends a message; the Future completes when the frame has left the
  /// buffer (back-pressure). WebSocketClosedError once the connection is
  /// closing or gone (not logged if ignored).
  Future<void> write_message(std::string_view message, bool binary = false);
  Future<void> write_message(std::string&& message, bool binary = false);
  Future<void> write_message(const char* message, bool binary = false) {
    return write_message(std::string_view(message), binary);
  }
  /// Sends a message prepared once for many connections (a broadcast).
  Future<void> write_message(const PreparedMessage& message);
  /// Sends a ping (at most 125 bytes of data).
  Future<void> ping(std::string_view data = {});
  /// Starts the close handshake (code 1000-1003, 1007-1014, 3000-4999, or
  /// none). The connection closes once the client answers, or after the
  /// close timeout.
  void close(std::optional<int> code = std::nullopt, std::string_view reason = {});
  /// The client's close code and reason.
  std::optional<int> close_code() const noexcept;
  const std::string& close_reason() const noexcept;
  /// The subprotocol select_subprotocol chose, or empty.
  const std::string& selected_subprotocol() const noexcept { return subprotocol_; }
  /// True once the connection is closing or closed (writes fail).
  bool is_closing() const noexcept;
  /// The connection, from the 101 on (null before).
  const std::shared_ptr<WebSocketConnection>& ws_connection() const noexcept { return conn_; }

  // --- the handshake (not for overriding) ------------------------------------------------
  Future<void> get() final;
  void on_connection_close() final;

 protected:
  bool supports_method(std::string_view method) const override;
  std::string allowed_methods() const override;

 private:
  class Events;
  /// The reason the handshake is refused, with its status; empty if fine.
  std::string check_handshake(int& status);
  void send_101(const std::optional<DeflateAgreement>& deflate);

  std::unique_ptr<Events> events_;
  std::shared_ptr<WebSocketConnection> conn_;
  std::string subprotocol_;
  bool on_close_called_ = false;
};

}  // namespace squall::websocket
