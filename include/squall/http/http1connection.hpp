// HTTP1ServerConnection: the server side of one HTTP/1.1 connection
// (Tornado's HTTP1ServerConnection and HTTP1Connection in one class). It
// parses request heads in place from the stream's buffer, frames bodies,
// applies keep-alive, limits and timeouts, and writes responses. Loop-affine:
// create, use and destroy it on the thread of its stream's loop.
//
// States of a connection:
//   kHead     waiting for a complete head (header/idle deadline armed)
//   kAsync    a request waits for something (its body, a delegate's Future,
//             the response): a coroutine drives it and comes back to kHead
//   kEnd      serving ended: flush, maybe a lingering close, then close
//   kWinding  closing; kDone once the delegate has been told (on_close)
//
// Why it is built this way (DESIGN.md, "Performance principles"):
// - A request whose delegate answers at once (the common case) is served by
//   plain calls: no coroutine frame, no Future, no heap allocation. Only a
//   request that must wait starts a coroutine.
// - An idle keep-alive connection holds this object (and a small weak
//   reference to it), its stream and the stream's pending read, nothing
//   else: the per-request state lives in a
//   record taken from a per-thread pool for the duration of a request, the
//   header deadline is a link in a list shared by the server's connections
//   (one loop timer for all), the output buffer goes back to a pool once
//   written.
// - Responses produced while pipelined requests are parsed from the buffer
//   are corked and go out in one write when the connection would wait.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/parser.hpp"
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
  /// → 413 and close. Tornado's default, 100 MB. A request's delegate may
  /// change it for that request (HTTPConnection::set_max_body_size).
  std::uint64_t max_body_size{std::uint64_t{100} * 1024 * 1024};
  /// A persistent connection with no byte of a next request for this long is
  /// closed (Tornado's idle_connection_timeout, 1 hour).
  Duration idle_connection_timeout{std::chrono::hours(1)};
  /// A complete request head must arrive within this long from accept or
  /// from the end of the previous response; arriving bytes do not restart it
  /// (slow-loris cut-off, CONFORMANCE 2.6). Like nginx's client_header_timeout.
  /// When part of a head has arrived, the connection answers 408 before it
  /// closes; a connection on which nothing arrived is just closed.
  Duration header_timeout{std::chrono::seconds(60)};
  /// A body read with no data for this long closes the connection. A
  /// request's delegate may change it (HTTPConnection::set_body_timeout).
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
///
/// Output: a response written while the connection is handling input (from
/// inside a delegate call) is collected and written when the connection
/// next waits, so answers to pipelined requests leave in one write; the
/// Futures write_headers and write return then resolve at once (the bytes
/// are in the connection's buffer, which is bounded). A response written
/// later (by a coroutine that waited for something) goes straight to the
/// stream, and its Futures resolve when the kernel took the bytes.
class HTTP1ServerConnection final : public HTTPConnection {
 public:
  /// What the connections of one server share: their parameters, the list
  /// of open connections, and one loop timer for all their header deadlines.
  /// Loop-affine like the connections; HTTPServer makes one per server.
  class Context;
  static std::shared_ptr<Context> make_context(HTTP1ConnectionParameters params);

  /// Takes the stream. `address` is the peer as TCPServer gives it
  /// ("127.0.0.1:5555", "[::1]:80", "" for unix sockets).
  HTTP1ServerConnection(std::unique_ptr<net::IOStream> stream, std::string address,
                        HTTP1ConnectionParameters params = {});
  /// A connection sharing `context` (and its parameters) with others.
  HTTP1ServerConnection(std::unique_ptr<net::IOStream> stream, std::string address,
                        std::shared_ptr<Context> context);
  HTTP1ServerConnection(const HTTP1ServerConnection&) = delete;
  HTTP1ServerConnection& operator=(const HTTP1ServerConnection&) = delete;
  /// Closes the stream. The delegate is not told (on_close is not called);
  /// destroy a connection only once serving ended, or from on_close.
  ~HTTP1ServerConnection() override;

  /// Serves requests until the connection closes. Never throws; resolves
  /// once the connection is closed and every delegate is gone, after
  /// `delegate.on_close`. `delegate` must outlive that. Call serve or start
  /// once.
  Future<void> serve(HTTPServerConnectionDelegate& delegate);
  /// serve() without a Future: the end is told by `delegate.on_close(*this)`
  /// only, which may destroy this connection (that is how HTTPServer owns
  /// its connections).
  void start(HTTPServerConnectionDelegate& delegate);

  /// Closes the connection now; serving winds down (on_close comes later,
  /// from the loop).
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
  void set_max_body_size(std::uint64_t max_body_size) override;
  void set_body_timeout(Duration body_timeout) override;
  /// write_headers was called for the current request.
  bool response_started() const noexcept;
  /// finish was called for the current request.
  bool response_finished() const noexcept;

  // --- the current request's context ----------------------------------------------
  /// The peer as TCPServer gave it.
  const std::string& address() const noexcept { return address_; }
  /// The client's IP: the peer's, or from X-Real-Ip / X-Forwarded-For with
  /// xheaders. Valid during a request (from start_request until its
  /// delegate is destroyed); empty between requests.
  const std::string& remote_ip() const noexcept;
  /// "http" or "https" (X-Scheme / X-Forwarded-Proto with xheaders).
  const std::string& protocol() const noexcept;
  const HTTP1ConnectionParameters& params() const noexcept;
  /// The stream (owned by the connection until it is destroyed).
  net::IOStream* stream() const noexcept { return stream_.get(); }

 private:
  enum class Phase : std::uint8_t { kHead, kAsync, kEnd, kWinding, kDone };
  struct Exchange;   // the state of one request and its response (pooled)
  struct Inflater;   // zlib, kept out of this header
  template <void (HTTP1ServerConnection::*Step)()>
  class Deferred;    // a loop callback that finds its way back here, or not
  friend class Context;

  // Serving, in plain calls (see the top of the file).
  void run();
  bool step();
  bool step_head();
  bool serve_head(std::size_t head_end);
  bool finish_stage(std::exception_ptr error);
  bool end_request();
  void refuse(int status);
  void on_read(Future<void>& done);
  void on_head_timeout();
  void wind_down();
  void finish_serving();

  // Serving, when a request must wait.
  enum class Stage : std::uint8_t { kHeaders, kResponse };
  void go_async(Stage stage, BodyFraming framing, Future<void> flow, Future<void> handler);
  Future<void> finish_async(Stage stage, BodyFraming framing, Future<void> flow, Future<void> handler);
  Future<bool> read_body(BodyFraming framing);
  Future<bool> read_more_body();
  Future<void> deliver(std::string_view data);
  Future<void> deliver_inflated(std::string input);
  Future<void> close_after_output();
  Future<void> handler_future(std::exception_ptr error);
  void report_error(std::exception_ptr error);
  void on_stream_close();
  void notify_close();
  void wake();
  void do_wake();
  void arm_body_timer(TimePoint when);
  void disarm_timer() noexcept;
  std::weak_ptr<HTTP1ServerConnection*> weak_self();
  static bool gone(const std::weak_ptr<HTTP1ServerConnection*>& alive) noexcept;

  // Output.
  void start_response(int code, std::string_view reason, const HTTPHeaders& headers,
                      std::string_view first_chunk);
  std::string& output();
  Future<void> emit();
  Future<void> flush();
  void send_error(int status);

  bool closed() const noexcept { return stream_->closed(); }
  IOLoop& loop() const noexcept { return stream_->io_loop(); }
  void apply_xheaders(Exchange& x, const HTTPHeaders& headers);

  std::unique_ptr<net::IOStream> stream_;
  std::shared_ptr<Context> context_;
  std::string address_;
  HTTPServerConnectionDelegate* delegate_ = nullptr;
  std::unique_ptr<Exchange> x_;           // the current request, if any
  std::shared_ptr<std::string> out_;      // response bytes not yet written
  Future<void> read_{nullptr};            // the pending read_more, in kHead
  Future<void> last_write_{nullptr};      // the stream's last unfinished write
  Future<void> done_{nullptr};            // serve()'s
  std::shared_ptr<HTTP1ServerConnection*> watch_;  // weak_self(), made on demand
  TimePoint head_start_{};                // kHead: the header deadline counts from here
  // Links in the Context's lists: its connections, and the header deadlines.
  HTTP1ServerConnection* all_prev_ = nullptr;
  HTTP1ServerConnection* all_next_ = nullptr;
  HTTP1ServerConnection* timer_prev_ = nullptr;
  HTTP1ServerConnection* timer_next_ = nullptr;
  TimePoint deadline_{};
  TimeoutHandle timer_{};                 // body timeout, or lingering close
  std::uint32_t scanned_ = 0;             // head bytes searched for its end
  Phase phase_ = Phase::kHead;
  bool https_ = false;
  bool timer_linked_ = false;
  bool running_ = false;                  // inside run()
  bool rerun_ = false;                    // run() was asked again meanwhile
  bool closing_ = false;                  // close_when_idle() was called
  bool linger_ = false;                   // input may be unread at the end
  bool timed_out_ = false;                // the header deadline passed
  bool write_waited_ = false;             // step_head waits for last_write_
  bool dying_ = false;                    // in the destructor
};

}  // namespace squall::http
