// Where the HTTP protocol meets the application (Tornado's httputil
// HTTPServerConnectionDelegate / HTTPMessageDelegate / HTTPConnection).
// Every method is called, and must be called, on the connection's loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/parser.hpp"

namespace squall::http {

class HTTP1ServerConnection;

/// The response side of one request: what a message delegate writes to.
///
/// write_headers once, then any number of write calls, then finish. The
/// returned Futures resolve when the bytes have been handed to the kernel;
/// awaiting them is how a streaming response applies back-pressure, and it
/// is fine to ignore them (a failure is then dropped silently: the
/// connection closes and on_connection_close tells the delegate).
class HTTPConnection {
 public:
  virtual ~HTTPConnection() = default;

  /// Starts the response: status line and `headers`, plus `first_chunk` of
  /// the body in the same write (one syscall for a whole small response).
  /// The connection adds Date, Server, and the framing headers the request
  /// allows (Content-Length as given by the caller, else chunked for
  /// HTTP/1.1, else close-delimited), and Connection as keep-alive rules
  /// require (RFC 9112 section 9.3). `headers` may be modified.
  virtual Future<void> write_headers(int code, std::string_view reason, HTTPHeaders& headers,
                                     std::string_view first_chunk = {}) = 0;
  /// Writes a piece of the body (chunk-encoded when the response is chunked).
  /// Throws HTTPOutputError past a declared Content-Length.
  virtual Future<void> write(std::string_view chunk) = 0;
  /// Ends the response. Closes the connection if the body is shorter than
  /// its declared Content-Length (the peer could not frame it otherwise).
  virtual void finish() = 0;

  /// Per-request body limits (Tornado's HTTP1Connection.set_max_body_size
  /// and set_body_timeout): they replace the server's max_body_size and
  /// body_timeout for the current request only; the next request on the
  /// connection starts again from the server's. Call them before the body is
  /// read, that is from headers_received or before the Future it returned
  /// resolves (a web handler with stream_request_body: from prepare()): a
  /// Content-Length is checked against the limit in force when the body
  /// reading starts (413 before any of the body is read), a chunked or gzip
  /// body's running total as it arrives. Between requests they do nothing.
  virtual void set_max_body_size(std::uint64_t max_body_size) = 0;
  /// How long the body may go without data (see HTTP1ConnectionParameters).
  virtual void set_body_timeout(Duration body_timeout) = 0;
};

/// A response written wrongly (more bytes than its Content-Length, a second
/// write_headers, a write after finish): a bug in the caller.
class HTTPOutputError : public Error {
 public:
  using Error::Error;
};

/// Receives one request, piece by piece (Tornado's HTTPMessageDelegate).
///
/// Flow control: headers_received and data_received return a Future; while
/// it is pending the connection reads no more of the request. An empty
/// Future (`Future<void>(nullptr)`) means "go on at once" and costs nothing.
class HTTPMessageDelegate {
 public:
  virtual ~HTTPMessageDelegate() = default;

  /// The request head arrived. `start_line`'s views are valid only during
  /// this call; `headers` belongs to the connection until the call returns
  /// and may be moved from.
  virtual Future<void> headers_received(const RequestStartLine& start_line, HTTPHeaders& headers) = 0;
  /// A piece of the body (chunked framing removed, gzip decoded if the
  /// server decompresses). The view is valid only during this call.
  virtual Future<void> data_received(std::string_view chunk) = 0;
  /// The whole request has been received. May return a Future (the
  /// handler's coroutine, say) that the connection waits for, after the
  /// response, before destroying this delegate; an empty Future: nothing.
  virtual Future<void> finish() = 0;
  /// The connection closed before finish(), or before the response was
  /// complete. Called at most once; the delegate is destroyed later, after
  /// the Future finish() returned (if any) is done.
  virtual void on_connection_close() = 0;
};

/// A base for objects made per request, such as message delegates: their
/// memory is recycled through a per-thread pool (the one coroutine frames
/// use), so `std::make_unique<MyDelegate>(...)` in start_request costs no
/// malloc once the pool is warm. Objects over 512 bytes use the heap.
///
///   class Hello final : public HTTPMessageDelegate, public PooledAllocation { ... };
struct PooledAllocation {
  static void* operator new(std::size_t size) { return detail::pool_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { detail::pool_deallocate(p, size); }
};

/// Makes a message delegate per request (Tornado's
/// HTTPServerConnectionDelegate); HTTPServer is one, and so is a web
/// Application.
class HTTPServerConnectionDelegate {
 public:
  virtual ~HTTPServerConnectionDelegate() = default;

  /// A new request began on `server_conn`. The returned delegate receives
  /// it and answers through `request_conn`; both references stay valid
  /// until the delegate is destroyed.
  virtual std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection& server_conn,
                                                             HTTPConnection& request_conn) = 0;
  /// `server_conn` closed; it is destroyed right after this call.
  virtual void on_close(HTTP1ServerConnection& /*server_conn*/) {}
};

}  // namespace squall::http
