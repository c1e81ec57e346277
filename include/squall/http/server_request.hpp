// HTTPServerRequest: one complete HTTP request as a server application sees
// it (Tornado's httputil.HTTPServerRequest), with the connection to answer
// on. Loop-affine: use it on the thread of the connection that made it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/clock.hpp"
#include "squall/core/future.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/url.hpp"

namespace squall::http {

/// A request: its head, its body (whole), where it came from, and the
/// connection its response goes to. The fields are plain values, as in
/// Tornado; HTTPServer fills them before the request callback runs.
///
///   server callback: [](HTTPServerRequest& req) {
///     HTTPHeaders h;
///     h.add("Content-Type", "text/plain");
///     req.respond(200, h, "Hello, " + req.remote_ip);
///   }
class HTTPServerRequest {
 public:
  /// A request answered through `connection` (may be null for a request
  /// made by hand, in tests). `connection` must outlive the request's
  /// response; HTTPServer guarantees it until the request is finished.
  explicit HTTPServerRequest(HTTPConnection* connection = nullptr);

  /// Makes this a blank request answered through `connection`, as if newly
  /// made, but keeping the memory its strings hold (servers recycle request
  /// objects this way).
  void reset(HTTPConnection* connection);

  /// Sets method, uri, version and the parts derived from the uri (path,
  /// query; host from an absolute-form target, RFC 9112 section 3.2.2).
  void set_start_line(std::string_view method, std::string_view uri, std::string_view version);
  /// Sets host and host_name from the target or the Host header.
  void update_host();

  std::string method{};       // "GET"
  std::string uri{};          // the request target as sent: "/path?query"
  std::string version{};      // "HTTP/1.1"
  std::string path{};         // the target up to '?', not unescaped
  std::string query{};        // the target after '?', not unescaped
  HTTPHeaders headers{};
  std::string body{};         // the whole body (chunked framing removed)
  std::string remote_ip{};    // the client's IP (with xheaders, the proxy's report)
  std::string protocol{"http"};  // "http" or "https"
  std::string host{};         // Host (or the absolute-form authority), else "127.0.0.1"
  std::string host_name{};    // host without its port, lower-cased
  TimePoint start_time{};     // when the head arrived (loop time)

  /// protocol + "://" + host + uri (Tornado's full_url).
  std::string full_url() const;
  /// Time from the head's arrival until finish(), or until now.
  Duration request_time() const;
  /// The Cookie header's name=value pairs (parsed once, on first use).
  const std::map<std::string, std::string>& cookies();
  /// The query's arguments, percent-decoded, blank values kept (parsed once).
  const QueryArguments& query_arguments();

  /// Where the response goes. Null for a request without a connection.
  HTTPConnection* connection() const noexcept { return connection_; }

  // --- answering (shorthands for connection()) -----------------------------------
  /// write_headers with the first piece of body, in one write.
  Future<void> write_headers(int code, HTTPHeaders& headers, std::string_view first_chunk = {},
                             std::string_view reason = {});
  Future<void> write(std::string_view chunk);
  /// Ends the response; records request_time().
  void finish();
  /// A whole response: `headers` plus Content-Length, and `body`, in one
  /// write; then finish(). The common case for small answers.
  Future<void> respond(int code, HTTPHeaders& headers, std::string_view body, std::string_view reason = {});
  /// respond() with only a Content-Type.
  Future<void> respond(int code, std::string_view content_type, std::string_view body);

 private:
  HTTPConnection* require_connection() const;

  HTTPConnection* connection_;
  std::optional<TimePoint> finish_time_;
  std::optional<std::map<std::string, std::string>> cookies_;
  std::optional<QueryArguments> arguments_;
  std::string target_host_;  // from an absolute-form target
};

}  // namespace squall::http
