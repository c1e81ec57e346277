// The HTTP client (Tornado's httpclient): HTTPRequest, HTTPResponse,
// AsyncHTTPClient with two backends — the native one on squall's own
// HTTP/1.1 parser and TCPClient, and one on libcurl's multi-socket API —
// and HTTPClient, a blocking wrapper for scripts and tools.
//
//   auto& client = AsyncHTTPClient::instance();     // one per loop
//   HTTPResponse r = co_await client.fetch("http://127.0.0.1:8888/");
//   std::cout << r.code << " " << r.body << "\n";
//
// Loop affinity: an AsyncHTTPClient belongs to the loop it was created on
// (use and destroy it on that loop's thread). HTTPClient may be called from
// any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "squall/core/clock.hpp"
#include "squall/core/errors.hpp"
#include "squall/core/future.hpp"
#include "squall/http/headers.hpp"

namespace squall::net {
class Resolver;
}

namespace squall::http {

/// Hands one chunk of a streamed request body to the connection; the Future
/// completes when the chunk has left the client's buffer (back-pressure).
using BodyWriter = std::function<Future<void>(std::string chunk)>;

/// A request. Defaults are Tornado's. Copyable: redirects and the client's
/// defaults work on copies.
struct HTTPRequest {
  std::string url{};
  std::string method{"GET"};
  HTTPHeaders headers{};
  /// The body; nullopt means "no body" (POST/PUT/PATCH need one unless
  /// allow_nonstandard_methods or a body_producer is given).
  std::optional<std::string> body{};
  /// Streams the body instead: called with a writer, its Future ends the
  /// body. Without a Content-Length header the body goes chunked. Called
  /// again if a 307/308 redirect sends the body anew; a writer used after
  /// its request ended fails with HTTPStreamClosedError.
  std::function<Future<void>(BodyWriter write)> body_producer{};

  std::string auth_username{};
  std::string auth_password{};
  /// "basic" (both backends) or "digest" (curl backend).
  std::string auth_mode{"basic"};

  /// Connecting (DNS, TCP, TLS handshake) must end within this; zero: no
  /// limit of its own (request_timeout still applies).
  Duration connect_timeout{std::chrono::seconds(20)};
  /// The whole fetch, time waiting for a free slot (max_clients) and
  /// redirects included; zero: no limit.
  Duration request_timeout{std::chrono::seconds(20)};

  /// Follow 301, 302, 303, 307 and 308. 301/302 turn a POST into a GET and
  /// 303 turns anything but HEAD into a GET (dropping the body); 307/308 keep
  /// the method and body. Authorization and Cookie are dropped when the
  /// redirect leaves the origin (scheme, host, port).
  bool follow_redirects{true};
  /// Redirects followed at most; one more ends the fetch with that 3xx
  /// response (an HTTPClientError with raise_error).
  int max_redirects{5};
  /// Empty: "squall/<version>".
  std::string user_agent{};
  /// Ask for gzip and decode it; the response's headers keep the original
  /// Content-Encoding.
  bool decompress_response{true};
  /// Body chunks as they arrive (decoded); the response's body stays empty.
  /// The view is valid during the call only. Runs on the client's loop; an
  /// exception it throws fails the fetch.
  std::function<void(std::string_view chunk)> streaming_callback{};
  /// Each head line as it arrives: the status line, every field line, and
  /// the final "\r\n" (Tornado's header_callback). The native backend
  /// reports the final response's head only, as Tornado's simple client.
  std::function<void(std::string_view line)> header_callback{};

  bool validate_cert{true};
  /// PEM CA bundle; empty: the system's.
  std::string ca_certs{};
  std::string client_cert{};
  std::string client_key{};

  /// Methods other than GET, HEAD, POST, PUT, DELETE, PATCH and OPTIONS, and
  /// bodies where they are unusual. Without it (Tornado's rules) POST, PUT
  /// and PATCH need a body (or body_producer) and other methods must have
  /// none; fetch() fails with std::invalid_argument otherwise.
  bool allow_nonstandard_methods{false};

  /// Proxies: curl backend only (the native backend fails the fetch).
  std::string proxy_host{};
  int proxy_port{0};
  std::string proxy_username{};
  std::string proxy_password{};
  std::string proxy_auth_mode{"basic"};

  /// Send "Expect: 100-continue" and the body only after the interim 100.
  bool expect_100_continue{false};

  /// curl backend: the HTTP version to ask for: "1.1", "2" (HTTP/2 over TLS
  /// when the server agrees through ALPN, else HTTP/1.1), "2-prior-knowledge"
  /// (HTTP/2 without TLS or upgrade) or "3"; empty: curl's default. The
  /// native backend speaks HTTP/1.1 and ignores it.
  std::string http_version{};
  /// curl backend: called with the transfer's `CURL*` easy handle after
  /// squall has set its options, to set more (Tornado's
  /// prepare_curl_callback). Ignored by the native backend.
  std::function<void(void* curl)> prepare_curl_callback{};
};

/// When each phase ended (libcurl's names and meanings): `queue` is the wait
/// for a max_clients slot; the others count from the end of that wait (the
/// transfer's start) to the point named, like CURLINFO_*_TIME_T. A backend
/// leaves zero what it cannot measure (the native one: namelookup, connect
/// and appconnect when a pooled connection was reused).
struct TimeInfo {
  Duration queue{};          // waiting for a max_clients slot
  Duration namelookup{};     // DNS
  Duration connect{};        // TCP connected
  Duration appconnect{};     // TLS handshake done
  Duration pretransfer{};    // request about to be sent
  Duration starttransfer{};  // first response byte
  Duration total{};
  Duration redirect{};       // spent in redirects before the final one
};

/// A response. `error` is set for codes outside 200-299 (an HTTPClientError)
/// and for failures (the network's exception, with code 599).
struct HTTPResponse {
  std::shared_ptr<const HTTPRequest> request{};
  int code{0};
  std::string reason{};
  HTTPHeaders headers{};
  std::string body{};
  /// The final URL after redirects.
  std::string effective_url{};
  Duration request_time{};
  TimeInfo time_info{};
  std::exception_ptr error{};

  /// Throws `error` if set.
  void rethrow() const;
};

/// An HTTP status outside 200-299 (with the response when there is one), or
/// code 599 for failures without a status (Tornado's HTTPClientError).
class HTTPClientError : public Error {
 public:
  HTTPClientError(int code, const std::string& message = {}, std::shared_ptr<const HTTPResponse> response = nullptr);
  int code() const noexcept { return code_; }
  /// The response (code, headers, body) when the server sent one.
  const std::shared_ptr<const HTTPResponse>& response() const noexcept { return response_; }

 private:
  int code_;
  std::shared_ptr<const HTTPResponse> response_;
};

/// A timeout (code 599). `phase()` names which: "connect", "request" or
/// "queue" (waited for a slot until request_timeout ran out). The message
/// is Tornado's ("Timeout while connecting", "Timeout during request",
/// "Timeout in request queue") unless one is given.
class HTTPTimeoutError : public HTTPClientError {
 public:
  explicit HTTPTimeoutError(std::string phase, const std::string& message = {});
  const std::string& phase() const noexcept { return phase_; }

 private:
  std::string phase_;
};

/// The server closed the connection before the response was complete (code
/// 599); the message says where.
class HTTPStreamClosedError : public HTTPClientError {
 public:
  explicit HTTPStreamClosedError(const std::string& message);
};

/// The response body, after decoding, is larger than max_body_size (code
/// 599); the fetch stops reading at the limit.
class HTTPBodyTooLargeError : public HTTPClientError {
 public:
  explicit HTTPBodyTooLargeError(std::size_t limit);
  std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t limit_;
};

enum class HTTPClientBackend { native, curl };

/// Options of a client instance (Tornado's AsyncHTTPClient.initialize).
struct HTTPClientOptions {
  /// Fetches in flight at once; more wait in a FIFO queue.
  int max_clients{10};
  /// Open connections per (scheme, host, port), idle ones included.
  int max_connections_per_host{10};
  /// An idle pooled connection is closed after this long.
  Duration idle_connection_timeout{std::chrono::seconds(60)};
  /// The response head (status line and fields).
  std::size_t max_header_size{64 * 1024};
  /// The body after decoding (gzip), streamed or not (as Tornado's); larger
  /// fails the fetch with HTTPBodyTooLargeError. 0: no limit.
  std::size_t max_body_size{100 * 1024 * 1024};
  /// Reads from the socket at once (the stream's max_buffer_size).
  std::size_t max_buffer_size{100 * 1024 * 1024};
  /// Null: net::default_resolver().
  std::shared_ptr<net::Resolver> resolver{};
  /// Request fields for fetch(url) and AsyncHTTPClient::request().
  HTTPRequest defaults{};
};

/// The non-blocking client. fetch() may be called many times at once; each
/// Future can be cancelled (the request leaves the queue, or its connection
/// is closed if in flight) — cancel() is how to abort a fetch.
class AsyncHTTPClient {
 public:
  /// The current loop's shared client, created on first use with the
  /// configured backend and options; closed and destroyed with the loop
  /// (IOLoop::close). After close() on it, the next instance() makes a new
  /// one (as Tornado's). Loop thread only.
  static AsyncHTTPClient& instance();
  /// A private client (Tornado's force_instance=True) on the current loop;
  /// the caller owns it and destroys it on that loop's thread.
  static std::unique_ptr<AsyncHTTPClient> create(HTTPClientBackend backend, HTTPClientOptions options = {});
  /// As above with the configured backend.
  static std::unique_ptr<AsyncHTTPClient> create(HTTPClientOptions options = {});
  /// Chooses the backend (default: native) and the options of clients
  /// created afterwards by instance(), create(options) (backend only) and
  /// HTTPClient(), process-wide. Thread-safe.
  static void configure(HTTPClientBackend backend, HTTPClientOptions options = {});
  /// The configured backend.
  static HTTPClientBackend configured_backend();

  virtual ~AsyncHTTPClient();
  AsyncHTTPClient(const AsyncHTTPClient&) = delete;
  AsyncHTTPClient& operator=(const AsyncHTTPClient&) = delete;

  /// A request for `url` carrying this client's defaults.
  HTTPRequest request(std::string url) const;

  /// Fetches a URL (GET with the defaults) or a request. With raise_error a
  /// status outside 200-299 throws HTTPClientError and a failure throws its
  /// cause (ConnectError, ResolveError, SSL verification errors naming the
  /// reason, HTTPTimeoutError, HTTPStreamClosedError, ...); without it the
  /// response carries the error and a failure gets code 599. A request that
  /// breaks the rules above (a body where none belongs, an unknown method
  /// without allow_nonstandard_methods, a URL that is not http or https)
  /// fails with std::invalid_argument either way, as does fetching on a
  /// closed client (HTTPClientError 599). Cancelling the Future aborts the
  /// fetch (CancelledError, never a 599 response).
  Future<HTTPResponse> fetch(std::string url, bool raise_error = true);
  Future<HTTPResponse> fetch(HTTPRequest request, bool raise_error = true);

  /// Fails queued fetches, aborts running ones (HTTPClientError 599, "closed")
  /// and closes pooled connections. Idempotent; the destructor calls it.
  virtual void close() = 0;
  bool closed() const noexcept { return closed_; }

  const HTTPClientOptions& options() const noexcept { return options_; }

 protected:
  explicit AsyncHTTPClient(HTTPClientOptions options);
  /// One fetch, redirects included; throws on failure, returns any status.
  /// fetch() has already checked the request (method, body, scheme) and
  /// turns the outcome into what its caller asked for: it sets the
  /// response's `request`, `error` and (if left zero) `request_time`.
  virtual Future<HTTPResponse> fetch_impl(std::shared_ptr<const HTTPRequest> request) = 0;

  HTTPClientOptions options_;
  bool closed_{false};
};

/// A blocking client (Tornado's HTTPClient): runs an AsyncHTTPClient on a
/// private loop in a private thread. For scripts and tools, not for code
/// already running on a loop.
///
///   HTTPClient client;
///   HTTPResponse r = client.fetch("http://127.0.0.1:8888/");
///
/// fetch() blocks until the response is complete and throws what the async
/// fetch would. Any thread may call it, several at once; a request's
/// callbacks (streaming_callback, body_producer...) run on the private thread.
class HTTPClient {
 public:
  /// The configured backend and options (AsyncHTTPClient::configure).
  HTTPClient();
  explicit HTTPClient(HTTPClientBackend backend, HTTPClientOptions options = {});
  /// close().
  ~HTTPClient();
  HTTPClient(const HTTPClient&) = delete;
  HTTPClient& operator=(const HTTPClient&) = delete;

  HTTPResponse fetch(std::string url, bool raise_error = true);
  HTTPResponse fetch(HTTPRequest request, bool raise_error = true);
  /// Closes the client and ends its thread; fetch() afterwards throws
  /// HTTPClientError (599). Idempotent. Not to be called while a fetch()
  /// of this client is blocked in another thread.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace squall::http
