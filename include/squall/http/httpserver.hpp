// HTTPServer: a non-blocking HTTP/1.1 server (Tornado's httpserver). A
// TCPServer whose connections are HTTP1ServerConnections, feeding either a
// request callback or an HTTPServerConnectionDelegate (a web Application).
// Loop-affine like TCPServer: use and destroy it on its loop's thread.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/future.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/http1connection.hpp"
#include "squall/http/server_request.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/tcpserver.hpp"

namespace squall::http {

/// HTTPServer's options; each default is written beside it.
struct HTTPServerOptions {
  /// Close every connection after one response.
  bool no_keep_alive{false};
  /// Trust X-Real-Ip/X-Forwarded-For and X-Scheme/X-Forwarded-Proto: only
  /// behind a proxy you run (docs/guide/http-server.md).
  bool xheaders{false};
  /// Proxy IPs skipped from the right of X-Forwarded-For.
  std::vector<std::string> trusted_downstream{};
  /// Force request.protocol ("http"/"https"); empty: from the stream.
  std::string protocol{};
  /// Decode gzip request bodies (Content-Encoding: gzip).
  bool decompress_request{false};
  /// Largest piece of body handed to a delegate's data_received.
  std::size_t chunk_size{64 * 1024};
  /// Request head limit; larger → 431.
  std::size_t max_header_size{64 * 1024};
  /// Request body limit; larger → 413 (100 MB, Tornado's default). A
  /// request's delegate may change it for its request
  /// (HTTPConnection::set_max_body_size).
  std::uint64_t max_body_size{std::uint64_t{100} * 1024 * 1024};
  /// No byte of a next request for this long closes the connection.
  Duration idle_connection_timeout{std::chrono::hours(1)};
  /// A complete head must arrive within this long (not restarted by bytes).
  Duration header_timeout{std::chrono::seconds(60)};
  /// No body data for this long closes the connection (per request:
  /// HTTPConnection::set_body_timeout).
  Duration body_timeout{std::chrono::seconds(60)};
  /// Serve HTTPS with this context (SSLContext::server); null: plain HTTP.
  std::shared_ptr<net::SSLContext> ssl_context{};
  /// Listening and stream options of the TCP layer.
  net::TCPServerOptions tcp{};
};

/// An HTTP server.
///
///   HTTPServer server([](HTTPServerRequest& req) {
///     req.respond(200, "text/plain", "Hello, World!");
///   });
///   server.listen(8888);
///   IOLoop::current().start();
///
/// The request callback runs once the whole request (body included) has
/// arrived, and answers through the request: at once, or later (the request
/// lives until its response is finished or the client leaves). A callback
/// that returns a Future (a coroutine) is awaited: the request lives until
/// it is done, an exception before the response started becomes a 500, and
/// if the client leaves the Future is cancelled.
///
/// Streaming bodies, routing and the rest belong to an
/// HTTPServerConnectionDelegate (a web Application), given instead of a
/// callback.
class HTTPServer : public net::TCPServer {
 public:
  using RequestCallback = UniqueFunction<Future<void>(HTTPServerRequest&)>;

  /// A server calling a coroutine (or Future-returning function) per request.
  explicit HTTPServer(RequestCallback callback, HTTPServerOptions options = {});
  /// A server calling a plain function per request.
  template <class F>
    requires(std::is_void_v<std::invoke_result_t<F&, HTTPServerRequest&>>)
  explicit HTTPServer(F callback, HTTPServerOptions options = {})
      : HTTPServer(RequestCallback([cb = std::move(callback)](HTTPServerRequest& req) mutable {
                     cb(req);
                     return Future<void>(nullptr);
                   }),
                   std::move(options)) {}
  /// A server feeding `delegate`, which must outlive the server.
  explicit HTTPServer(HTTPServerConnectionDelegate& delegate, HTTPServerOptions options = {});
  /// Stops accepting and closes every connection (close_all_connections).
  ~HTTPServer() override;

  /// Closes every open connection; resolves once they are all gone
  /// (Tornado's close_all_connections). Call stop() first to refuse new ones.
  Future<void> close_all_connections();

  /// Graceful stop: stops accepting, closes idle connections at once and
  /// the others after their current response; resolves when all are gone,
  /// closing what is left once `timeout` has passed.
  Future<void> close_gracefully(Duration timeout);

  /// Open connections.
  std::size_t connection_count() const noexcept;

  const HTTPServerOptions& http_options() const noexcept { return options_; }

 protected:
  /// Starts an HTTP1ServerConnection on the stream; the server owns it until
  /// it closes. Returns no Future (nothing per connection waits on one).
  Future<void> handle_stream(std::unique_ptr<net::IOStream> stream, std::string address) override;

 private:
  struct Core;
  static net::TCPServerOptions tcp_options(const HTTPServerOptions& options);

  HTTPServerOptions options_;
  std::shared_ptr<Core> core_;
};

}  // namespace squall::http
