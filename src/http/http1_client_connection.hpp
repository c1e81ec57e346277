// HTTP1ClientConnection: the client side of one HTTP/1.1 connection, for
// the native AsyncHTTPClient. It writes requests and reads responses parsed
// in place from the stream's buffer with squall's response parser (heads,
// Content-Length, chunked and close-delimited bodies, gzip), one exchange
// at a time; keep-alive reuse and pooling belong to the caller
// (simple_httpclient.cpp). Loop-affine, like its stream.
//
// States of one exchange:
//   begin_exchange -> request written (by the caller through stream())
//   read_head      -> a final head (or a 100 Continue when asked) sits in the
//                     buffer: head_text() views it until consume_head()
//   read_body      -> the body went to a BodySink; reusable() tells whether
//                     the connection may carry another exchange
// Private to src/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/parser.hpp"
#include "squall/net/iostream.hpp"

namespace squall::http {

/// A parsed response head. `headers` owns its text; nothing views the
/// stream's buffer once read_head returned.
struct ClientResponseHead {
  int code = 0;
  std::string reason{};
  HTTPHeaders headers{};
  bool http10 = false;
};

/// Receives a response body piece by piece (decoded). A view is valid only
/// during the call; throwing fails the exchange.
class BodySink {
 public:
  virtual void data(std::string_view piece) = 0;

 protected:
  ~BodySink() = default;
};

class HTTP1ClientConnection {
 public:
  /// Takes a connected stream (plain or TLS). `max_header_size` bounds a
  /// response head (status line and fields).
  HTTP1ClientConnection(std::unique_ptr<net::IOStream> stream, std::size_t max_header_size);
  ~HTTP1ClientConnection();
  HTTP1ClientConnection(const HTTP1ClientConnection&) = delete;
  HTTP1ClientConnection& operator=(const HTTP1ClientConnection&) = delete;

  net::IOStream& stream() noexcept { return *stream_; }
  bool closed() const noexcept { return stream_->closed(); }
  /// Closes the stream (pending reads and writes fail with StreamClosedError).
  void close() noexcept;

  /// Starts a new exchange: forgets what the last one received.
  void begin_exchange() noexcept;
  /// A byte of response arrived since begin_exchange(): a request that
  /// failed before this may be retried elsewhere (the server saw nothing
  /// it answered).
  bool received_any() const noexcept { return received_any_; }
  /// When that first byte was seen (loop time).
  TimePoint first_byte_time() const noexcept { return first_byte_; }

  /// Reads the next response head into `head`. Interim 1xx responses are
  /// skipped, except a 100 when `want_continue`. The head's bytes stay
  /// buffered (head_text()) until consume_head(). Throws HTTPInputError for
  /// a malformed or oversized head, StreamClosedError if the stream ends.
  Future<void> read_head(ClientResponseHead& head, bool want_continue);
  /// The raw head read last: status line, field lines, the empty line.
  std::string_view head_text() const noexcept;
  void consume_head() noexcept;

  /// Reads the body `framing` describes, through a gzip decoder if `gzip`,
  /// into `sink`. Throws HTTPBodyTooLargeError once more than `max_body`
  /// decoded bytes arrive (the sink never sees them), HTTPInputError for
  /// bad chunked framing or gzip data, StreamClosedError if the stream ends
  /// before the body does.
  Future<void> read_body(BodyFraming framing, bool gzip, std::size_t max_body, BodySink& sink);

  /// After read_body: whether another exchange may use this connection
  /// (the response allows keep-alive, its end was framed, nothing extra
  /// arrived, the stream is open).
  bool reusable(const ClientResponseHead& head, const BodyFraming& framing) const noexcept;

 private:
  class GzipDecoder;  // zlib, kept out of this header

  /// Reads more input; marks the first byte. StreamClosedError at the end.
  Future<void> read_more();
  void note_received() noexcept;
  void deliver(std::string_view piece);

  std::unique_ptr<net::IOStream> stream_;
  std::size_t max_header_size_;
  std::size_t head_length_ = 0;  // bytes of the current head in the buffer
  // The body being read.
  std::unique_ptr<GzipDecoder> gzip_;
  BodySink* sink_ = nullptr;
  std::size_t max_body_ = 0;
  std::uint64_t delivered_ = 0;
  TimePoint first_byte_{};
  bool received_any_ = false;
};

}  // namespace squall::http
