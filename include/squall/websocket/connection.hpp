// WebSocketConnection: one open WebSocket over an IOStream, after the
// handshake, shared by the server handler and the client (Tornado's
// WebSocketProtocol13). It runs the reading loop (messages, interleaved
// control frames, automatic pongs), keep-alive pings, the close handshake
// with its timeout, and writes with back-pressure. Loop-affine: create,
// use and destroy it on its stream's loop thread.
//
// Ownership: held by shared_ptr. start() launches the reading loop, which
// keeps the connection alive until the TCP connection is closed; the
// delegate is a plain pointer its owner clears (set_delegate(nullptr))
// before it goes away. The stream is owned (a client's) or borrowed (the
// stream of the HTTP connection a server handler answered on, which stays
// with that connection until the handler ends).
//
// Closing (RFC 6455 section 7):
//   open ─ close() ─▶ close sent ─ peer's close ─▶ TCP closed
//   open ─ peer's close ─▶ close echoed ─────────▶ TCP closed
//   open ─ protocol error ─▶ close(code) sent ────▶ TCP closed
// A server closes TCP as soon as both close frames were exchanged; a
// client waits for the server to close it. Either way, TCP is dropped if
// the handshake has not completed within close_timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/net/iostream.hpp"
#include "squall/websocket/deflate.hpp"
#include "squall/websocket/frame.hpp"
#include "squall/websocket/protocol.hpp"

namespace squall::websocket {

/// Limits and timers of one connection (Tornado's websocket_ping_interval,
/// websocket_ping_timeout, websocket_max_message_size).
struct WebSocketOptions {
  /// Send a ping this often; zero: never.
  Duration ping_interval{};
  /// With pings on: close when nothing (no pong, no frame at all) was
  /// received for this long; zero: max(3 × ping_interval, 30 s), Tornado's.
  Duration ping_timeout{};
  /// Largest message accepted, after decompression; larger closes with 1009.
  std::size_t max_message_size{kDefaultMaxMessageSize};
  /// How long the close handshake may take before TCP is dropped (Tornado: 5 s).
  Duration close_timeout{std::chrono::seconds(5)};
};

/// A message prepared once for many server connections (a chat's
/// broadcast): the unmasked frame is built once and shared by every write,
/// without copies. Connections with permessage-deflate compress the payload
/// for themselves (their compression context is their own).
class PreparedMessage {
 public:
  PreparedMessage(std::string_view payload, bool binary);
  bool binary() const noexcept { return binary_; }
  std::string_view payload() const noexcept { return std::string_view(*frame_).substr(header_); }
  /// The whole server frame (header and payload).
  const std::shared_ptr<const std::string>& frame() const noexcept { return frame_; }

 private:
  std::shared_ptr<const std::string> frame_;
  std::size_t header_;
  bool binary_;
};

/// What a connection reports to its owner (a WebSocketHandler or a client).
/// Called on the loop thread, from the reading loop.
class ConnectionDelegate {
 public:
  virtual ~ConnectionDelegate() = default;
  /// A whole message. The reading loop waits for the returned Future (an
  /// empty Future: go on at once) before reading the next frame.
  virtual Future<void> on_message(Message message) = 0;
  virtual void on_ping(std::string_view /*data*/) {}
  virtual void on_pong(std::string_view /*data*/) {}
  /// The TCP connection is closed (after a close handshake or not). Once.
  virtual void on_connection_close() = 0;
};

class WebSocketConnection : public std::enable_shared_from_this<WebSocketConnection> {
 public:
  /// Takes the stream of a connection whose handshake is done. `deflate`:
  /// the agreed permessage-deflate parameters, if any; `compression` gives
  /// the level and memory level of our compressor.
  WebSocketConnection(std::unique_ptr<net::IOStream> stream, Role role, WebSocketOptions options = {},
                      std::optional<DeflateParameters> deflate = std::nullopt,
                      const CompressionOptions& compression = {});
  /// Borrows `stream`: it must stay alive until wait_closed() resolves, and
  /// its owner keeps its close callback, so the owner must call
  /// stream_closed() when the stream closes. After wait_closed() the
  /// connection no longer touches the stream.
  WebSocketConnection(net::IOStream& stream, Role role, WebSocketOptions options = {},
                      std::optional<DeflateParameters> deflate = std::nullopt,
                      const CompressionOptions& compression = {});
  ~WebSocketConnection();
  WebSocketConnection(const WebSocketConnection&) = delete;
  WebSocketConnection& operator=(const WebSocketConnection&) = delete;

  /// Starts the reading loop and the ping timer. Call once.
  void start(ConnectionDelegate* delegate);
  /// Replaces the delegate; null stops the reports (the owner is leaving).
  void set_delegate(ConnectionDelegate* delegate) noexcept { delegate_ = delegate; }

  /// Sends a message (text must be UTF-8; it is not checked). The Future
  /// completes when the frame has left the stream's buffer for the kernel
  /// (await it for back-pressure; ignoring it is fine). It fails with
  /// WebSocketClosedError once close() was called or the connection is
  /// gone; such a failure is not logged if nobody looks at it.
  Future<void> write_message(std::string_view message, bool binary = false);
  /// As above; a big server payload is written after its header without
  /// being copied.
  Future<void> write_message(std::string&& message, bool binary = false);
  Future<void> write_message(const char* message, bool binary = false) {
    return write_message(std::string_view(message), binary);
  }
  /// Sends a prepared message (see PreparedMessage). Server side only
  /// (a client must mask each frame): std::logic_error otherwise.
  Future<void> write_message(const PreparedMessage& message);
  /// Sends a ping; `data` is at most 125 bytes (std::invalid_argument).
  Future<void> ping(std::string_view data = {});
  /// Starts the close handshake: sends a close frame with `code` (a valid
  /// code: 1000-1003, 1007-1014, 3000-4999, else std::invalid_argument)
  /// and `reason` (at most 123 bytes), or an empty close frame without a
  /// code. Does nothing if a close frame was already sent.
  void close(std::optional<int> code = std::nullopt, std::string_view reason = {});
  /// Drops the TCP connection now, without a close handshake.
  void abort();
  /// The stream closed (called by the stream's close callback for an owned
  /// stream, by its owner for a borrowed one): a delegate's on_message
  /// still running is cancelled, so the reading loop can end.
  void stream_closed();

  /// True once a close frame was sent or received, or TCP closed (Tornado's
  /// is_closing): writes fail from then on.
  bool is_closing() const noexcept;
  /// True once the TCP connection is closed.
  bool closed() const noexcept { return closed_; }
  /// The peer's close code and reason (nullopt / empty if its close frame
  /// had none, or none came).
  std::optional<int> close_code() const noexcept { return close_code_; }
  const std::string& close_reason() const noexcept { return close_reason_; }
  /// Resolves when the connection is over: TCP closed, the delegate's
  /// last on_message done and on_connection_close called. Never fails.
  Future<void> wait_closed();

  Role role() const noexcept { return role_; }
  bool compressed() const noexcept { return deflate_.has_value(); }
  const WebSocketOptions& options() const noexcept { return options_; }
  /// The stream, for its peer address and the like; null once the
  /// connection is over (wait_closed()) if it was borrowed.
  net::IOStream* stream() const noexcept { return stream_; }

 private:
  Future<void> run(std::shared_ptr<WebSocketConnection> self);
  template <class F>
  void call_delegate(F&& fn, const char* what);
  std::string peer() const;
  Future<void> send(std::string frame);
  /// The caller's view of a stream write (see write_message).
  Future<void> track(Future<void> write);
  /// Sends the close frame for a protocol error and drops TCP once it left.
  void fail(int code, std::string_view why);
  /// Closes TCP once everything queued has been written.
  void close_after_flush();
  void finish_close();
  void arm_close_timer();
  void on_ping_timer();
  void schedule_ping();
  void cancel_timers() noexcept;

  bool stream_open() const noexcept { return stream_ && !stream_->closed(); }

  std::unique_ptr<net::IOStream> owned_;
  net::IOStream* stream_;
  IOLoop* loop_;
  Role role_;
  WebSocketOptions options_;
  std::optional<DeflateParameters> deflate_;
  std::unique_ptr<DeflateCompressor> compressor_;
  std::unique_ptr<DeflateDecompressor> decompressor_;
  MessageReader reader_;
  MessageWriter writer_;
  ConnectionDelegate* delegate_ = nullptr;

  std::optional<int> close_code_;
  std::string close_reason_;
  bool started_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool draining_ = false;  // failed: input is dropped until TCP closes
  bool closed_ = false;
  Future<void> pending_message_{nullptr};  // the delegate's on_message, while it runs
  Future<void> last_write_{nullptr};
  Future<void> closed_future_{nullptr};
  TimeoutHandle close_timer_{};
  TimeoutHandle ping_timer_{};
  TimePoint last_ping_{};
  TimePoint last_received_{};
};

}  // namespace squall::websocket
