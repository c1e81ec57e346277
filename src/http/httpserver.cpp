#include "squall/http/httpserver.hpp"

#include <spdlog/spdlog.h>

#include <unordered_set>

#include "squall/core/errors.hpp"
#include "squall/core/gen.hpp"
#include "squall/core/log.hpp"
#include "squall/net/ssl_iostream.hpp"

namespace squall::http {

/// What the connections share with the server, and outlive it with: the
/// set of open connections and the request callback. Connections hold it
/// by shared_ptr, so a server destroyed with requests in flight leaves
/// nothing dangling.
struct HTTPServer::Core final : HTTPServerConnectionDelegate {
  RequestCallback callback;
  HTTPServerConnectionDelegate* user = nullptr;  // valid while `alive`
  bool alive = true;
  std::unordered_set<HTTP1ServerConnection*> connections;
  Future<void> drained{nullptr};  // resolved when `connections` empties

  std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection& server_conn,
                                                     HTTPConnection& request_conn) override;
  void on_close(HTTP1ServerConnection& server_conn) override {
    if (alive && user) user->on_close(server_conn);
  }
  void connection_gone(HTTP1ServerConnection* conn) {
    connections.erase(conn);
    if (connections.empty() && drained.valid() && !drained.done()) {
      Future<void> d = std::move(drained);
      drained = Future<void>(nullptr);
      d.set_result();
    }
  }
  Future<void> wait_drained() {
    if (connections.empty()) return Future<void>(nullptr);
    if (!drained.valid() || drained.done()) drained = Future<void>();
    return drained;
  }
};

namespace {

/// Collects a whole request for a RequestCallback (Tornado's _CallableAdapter).
class RequestAdapter final : public HTTPMessageDelegate {
 public:
  RequestAdapter(HTTPServer::RequestCallback& callback, HTTP1ServerConnection& conn)
      : callback_(callback), conn_(conn), request_(&conn) {}

  Future<void> headers_received(const RequestStartLine& line, HTTPHeaders& headers) override {
    request_.set_start_line(line.method, line.target, line.version);
    request_.headers = std::move(headers);
    request_.remote_ip = conn_.remote_ip();
    request_.protocol = conn_.protocol();
    request_.update_host();
    return Future<void>(nullptr);
  }

  Future<void> data_received(std::string_view chunk) override {
    request_.body.append(chunk);  // the connection enforces max_body_size
    return Future<void>(nullptr);
  }

  Future<void> finish() override {
    Future<void> f(nullptr);
    try {
      f = callback_(request_);
    } catch (...) {
      failed(std::current_exception());
      return Future<void>(nullptr);
    }
    if (!f.valid()) return f;  // a plain callback: it answers now or later
    if (f.done()) {
      if (auto e = f.exception()) failed(e);
      else check_answered();
      return Future<void>(nullptr);
    }
    handler_ = watch(std::move(f));
    return handler_;
  }

  void on_connection_close() override {
    closed_ = true;
    // The client left: stop the handler's work (DESIGN: cancellation).
    if (pending_.valid() && !pending_.done()) pending_.cancel();
  }

 private:
  Future<void> watch(Future<void> f) {
    pending_ = f;
    std::exception_ptr error;
    try {
      co_await f;
    } catch (const CancelledError&) {
      if (!closed_) error = std::current_exception();
    } catch (...) {
      error = std::current_exception();
    }
    pending_ = Future<void>(nullptr);
    if (error) failed(error);
    else if (!closed_) check_answered();
  }

  /// A coroutine handler that returned without a complete response would
  /// leave the client waiting forever.
  void check_answered() {
    if (closed_ || conn_.response_finished()) return;
    log::app().error("Request handler for {} {} returned without finishing the response", request_.method,
                     request_.uri);
    if (!conn_.response_started()) {
      internal_error();
    } else {
      conn_.close();
    }
  }

  void failed(std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::app().error("Uncaught exception in {} {}: {}", request_.method, request_.uri, ex.what());
    } catch (...) {
      log::app().error("Uncaught exception in {} {}", request_.method, request_.uri);
    }
    if (closed_) return;
    // CONFORMANCE 2.7: a 500 without the exception's text.
    if (!conn_.response_started()) internal_error();
    else if (!conn_.response_finished()) conn_.close();
  }

  void internal_error() {
    try {
      request_.respond(500, "application/json", R"({"status": 500, "reason": "Internal Server Error"})");
    } catch (const std::exception&) {
      conn_.close();
    }
  }

  HTTPServer::RequestCallback& callback_;
  HTTP1ServerConnection& conn_;
  HTTPServerRequest request_;
  Future<void> handler_{nullptr};
  Future<void> pending_{nullptr};
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<HTTPMessageDelegate> HTTPServer::Core::start_request(HTTP1ServerConnection& server_conn,
                                                                     HTTPConnection& request_conn) {
  if (user) {
    if (!alive) throw InvalidStateError("HTTPServer is gone");
    return user->start_request(server_conn, request_conn);
  }
  return std::make_unique<RequestAdapter>(callback, server_conn);
}

Future<void> HTTPServer::run_connection(std::shared_ptr<Core> core, std::unique_ptr<HTTP1ServerConnection> conn) {
  core->connections.insert(conn.get());
  co_await conn->serve(*core);  // never throws
  HTTP1ServerConnection* key = conn.get();
  conn.reset();
  core->connection_gone(key);
}

net::TCPServerOptions HTTPServer::tcp_options(const HTTPServerOptions& options) {
  net::TCPServerOptions tcp = options.tcp;
  if (options.ssl_context && !tcp.make_stream) {
    tcp.make_stream = [ctx = options.ssl_context](UniqueFd fd, const net::StreamOptions& stream_options) {
      return std::unique_ptr<net::IOStream>(
          std::make_unique<net::SSLIOStream>(std::move(fd), ctx, std::string(), stream_options));
    };
  }
  return tcp;
}

namespace {
HTTP1ConnectionParameters params_from(const HTTPServerOptions& o) {
  HTTP1ConnectionParameters p;
  p.no_keep_alive = o.no_keep_alive;
  p.chunk_size = o.chunk_size;
  p.max_header_size = o.max_header_size;
  p.max_body_size = o.max_body_size;
  p.idle_connection_timeout = o.idle_connection_timeout;
  p.header_timeout = o.header_timeout;
  p.body_timeout = o.body_timeout;
  p.decompress = o.decompress_request;
  p.xheaders = o.xheaders;
  p.trusted_downstream = o.trusted_downstream;
  p.protocol = o.protocol;
  return p;
}
}  // namespace

HTTPServer::HTTPServer(RequestCallback callback, HTTPServerOptions options)
    : TCPServer(tcp_options(options)),
      options_(std::move(options)),
      params_(params_from(options_)),
      core_(std::make_shared<Core>()) {
  core_->callback = std::move(callback);
}

HTTPServer::HTTPServer(HTTPServerConnectionDelegate& delegate, HTTPServerOptions options)
    : TCPServer(tcp_options(options)),
      options_(std::move(options)),
      params_(params_from(options_)),
      core_(std::make_shared<Core>()) {
  core_->user = &delegate;
}

HTTPServer::~HTTPServer() {
  stop();
  core_->alive = false;
  std::vector<HTTP1ServerConnection*> open(core_->connections.begin(), core_->connections.end());
  for (HTTP1ServerConnection* c : open) {
    if (core_->connections.count(c)) c->close();
  }
}

std::size_t HTTPServer::connection_count() const noexcept { return core_->connections.size(); }

Future<void> HTTPServer::handle_stream(std::unique_ptr<net::IOStream> stream, std::string address) {
  // Responses go out in one write each: Nagle would only delay them.
  if (!address.empty()) {
    try {
      stream->set_nodelay(true);
    } catch (const std::exception&) {
      // Not a TCP socket after all; nothing to tune.
    }
  }
  auto conn = std::make_unique<HTTP1ServerConnection>(std::move(stream), std::move(address), params_);
  return run_connection(core_, std::move(conn));
}

Future<void> HTTPServer::close_all_connections() {
  std::shared_ptr<Core> core = core_;  // the server may be gone when we resume
  std::vector<HTTP1ServerConnection*> open(core->connections.begin(), core->connections.end());
  for (HTTP1ServerConnection* c : open) {
    if (core->connections.count(c)) c->close();
  }
  while (!core->connections.empty()) co_await core->wait_drained();
}

Future<void> HTTPServer::close_gracefully(Duration timeout) {
  std::shared_ptr<Core> core = core_;
  stop();
  std::vector<HTTP1ServerConnection*> open(core->connections.begin(), core->connections.end());
  for (HTTP1ServerConnection* c : open) {
    if (core->connections.count(c)) c->close_when_idle();
  }
  if (core->connections.empty()) co_return;
  bool timed_out = false;
  try {
    co_await with_timeout(timeout, core->wait_drained());
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  if (timed_out) {
    open.assign(core->connections.begin(), core->connections.end());
    for (HTTP1ServerConnection* c : open) {
      if (core->connections.count(c)) c->close();
    }
    while (!core->connections.empty()) co_await core->wait_drained();
  }
}

}  // namespace squall::http
