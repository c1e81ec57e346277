// HTTP1ServerConnection: the server side of one HTTP/1.1 connection
// (Tornado's HTTP1ServerConnection and HTTP1Connection in one class). It
// parses request heads in place from the stream's buffer, frames bodies,
// applies keep-alive, limits and timeouts, and writes responses. Loop-affine:
// create, use and destroy it on the thread of its stream's loop.
//
// States of serve(), per request:
//   kHead     waiting for a complete head (header/idle timeout armed)
//   kBody     reading the body into the delegate (body timeout armed)
//   kHandler  the request is in; waiting for the response to finish
// then back to kHead on a persistent connection, or closed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/headers.hpp"
#include "squall/net/iostream.hpp"

namespace squall::http {

/// Limits and behaviour of a server connection (Tornado's
/// HTTP1ConnectionParameters plus HTTPServer's xheaders options).
struct HTTP1ConnectionParameters {
  /// Never keep a connection open after a response (Tornado's no_keep_alive).
  bool no_keep_alive{false};
  /// Largest body piece handed to data_received at once.
  std::size_t chunk_size{64 * 1024};
  /// Request line plus header fields; larger → 431 and close (CONFORMANCE 2.5).
  std::size_t max_header_size{64 * 1024};
  /// Largest request body (after chunked decoding and gzip decoding); larger
  /// → 413 and close. Tornado's default, 100 MB.
  std::uint64_t max_body_size{std::uint64_t{100} * 1024 * 1024};
  /// A persistent connection with no byte of a next request for this long is
  /// closed (Tornado's idle_connection_timeout, 1 hour).
  Duration idle_connection_timeout{std::chrono::hours(1)};
  /// A complete request head must arrive within this long from accept or
  /// from the end of the previous response; arriving bytes do not restart it
  /// (slow-loris cut-off, CONFORMANCE 2.6). Like nginx's client_header_timeout.
  Duration header_timeout{std::chrono::seconds(60)};
  /// A body read with no data for this long closes the connection.
  Duration body_timeout{std::chrono::seconds(60)};
  /// Decode `Content-Encoding: gzip` request bodies (the header is renamed
  /// X-Consumed-Content-Encoding, as Tornado does).
  bool decompress{false};
  /// Trust X-Real-Ip / X-Forwarded-For and X-Scheme / X-Forwarded-Proto
  /// (behind a reverse proxy you control).
  bool xheaders{false};
  /// Proxy addresses skipped from the right end of X-Forwarded-For.
  std::vector<std::string> trusted_downstream{};
  /// "http" or "https" regardless of the stream; empty: from the stream type.
  std::string protocol{};
};

/// Serves the requests of one connection to an HTTPServerConnectionDelegate.
/// It is also the HTTPConnection each request's delegate answers through
/// (one request at a time: pipelined requests wait in the buffer).
class HTTP1ServerConnection final : public HTTPConnection {
 public:
  /// Takes the stream. `address` is the peer as TCPServer gives it
  /// ("127.0.0.1:5555", "[::1]:80", "" for unix sockets).
  HTTP1ServerConnection(std::unique_ptr<net::IOStream> stream, std::string address,
                        HTTP1ConnectionParameters params = {});
  HTTP1ServerConnection(const HTTP1ServerConnection&) = delete;
  HTTP1ServerConnection& operator=(const HTTP1ServerConnection&) = delete;
  ~HTTP1ServerConnection() override;

  /// Serves requests until the connection closes. Never throws; resolves
  /// once the connection is closed and every delegate is gone. `delegate`
  /// must outlive the returned Future. Call once.
  Future<void> serve(HTTPServerConnectionDelegate& delegate);

  /// Closes the connection now; serve() winds down.
  void close();
  /// Graceful stop: closes the connection at once if it is between
  /// requests with nothing buffered, else after the current response.
  void close_when_idle();
  /// True between requests with no byte of a next request received.
  bool idle() const noexcept;

  // --- HTTPConnection -----------------------------------------------------------
  Future<void> write_headers(int code, std::string_view reason, HTTPHeaders& headers,
                             std::string_view first_chunk = {}) override;
  Future<void> write(std::string_view chunk) override;
  void finish() override;
  /// write_headers was called for the current request.
  bool response_started() const noexcept { return response_started_; }
  /// finish was called for the current request.
  bool response_finished() const noexcept { return response_finished_; }

  // --- the current request's context ----------------------------------------------
  /// The peer as TCPServer gave it.
  const std::string& address() const noexcept { return address_; }
  /// The client's IP: the peer's, or from X-Real-Ip / X-Forwarded-For with
  /// xheaders. Valid during a request.
  const std::string& remote_ip() const noexcept { return remote_ip_; }
  /// "http" or "https" (X-Scheme / X-Forwarded-Proto with xheaders).
  const std::string& protocol() const noexcept { return protocol_; }
  const HTTP1ConnectionParameters& params() const noexcept { return params_; }
  /// The stream, or null once serve() ended.
  net::IOStream* stream() const noexcept { return stream_.get(); }

 private:
  enum class Phase : std::uint8_t { kHead, kBody, kHandler, kDone };
  struct Inflater;  // zlib, kept out of this header

  Future<void> serve_loop(HTTPServerConnectionDelegate& delegate);
  /// One request: false when the connection must close after it.
  Future<bool> serve_request(HTTPServerConnectionDelegate& delegate);
  /// Reads the body into msg_; false if the connection closed or failed.
  Future<bool> read_body(const BodyFraming& framing);
  /// Hands one piece of body to the delegate (through the inflater if any);
  /// returns the delegate's flow-control Future. Throws HTTPInputError(413).
  Future<void> deliver(std::string_view data);
  Future<void> deliver_inflated(std::string input);
  bool closed_or_gone() const noexcept;
  void send_error(int status);
  void apply_xheaders(const HTTPHeaders& headers);
  void on_stream_close();
  void notify_close();
  void wake();
  void arm_timer(TimePoint when);
  void disarm_timer() noexcept;
  void on_timer();
  /// Starts the response; throws HTTPOutputError on a second call.
  void start_response(int code, std::string_view reason, HTTPHeaders& headers, std::string_view first_chunk,
                      std::string& out);
  Future<void> send(std::string data);

  std::unique_ptr<net::IOStream> stream_;
  std::string address_;
  HTTP1ConnectionParameters params_;
  std::string peer_ip_;         // from address_
  std::string stream_protocol_; // from the stream type or params
  std::string remote_ip_;
  std::string protocol_;
  std::shared_ptr<HTTP1ServerConnection*> watch_;  // the close callback's way back here
  IOLoop* loop_;

  std::unique_ptr<HTTPMessageDelegate> msg_;
  std::unique_ptr<Inflater> inflater_;
  HTTPHeaders headers_;
  Phase phase_ = Phase::kHead;
  TimeoutHandle timer_{};
  TimePoint head_deadline_{};   // kHead: complete head by then
  TimePoint idle_deadline_{};   // kHead: first byte by then
  TimePoint last_data_{};       // kBody: last time body bytes arrived
  std::uint64_t body_received_ = 0;

  // The current request, as the response needs it.
  bool request_http10_ = false;
  bool request_head_ = false;
  bool request_keep_alive_ = false;  // what the request allows (RFC 9112 section 9.3)
  bool body_unread_ = false;         // 100-continue not sent and body not read

  // The current response.
  bool response_started_ = false;
  bool response_finished_ = false;
  bool response_chunked_ = false;
  bool response_has_body_ = true;    // not HEAD, 1xx, 204, 304
  std::optional<std::uint64_t> response_remaining_;  // Content-Length left
  bool close_after_ = false;         // the connection ends with this response

  bool closing_ = false;       // close_when_idle() was called
  bool close_notified_ = false;
  bool waiting_ = false;       // serve is waiting in wake_
  Future<void> wake_{nullptr};
  Future<void> last_write_{nullptr};
};

}  // namespace squall::http
