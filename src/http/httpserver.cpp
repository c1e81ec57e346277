#include "squall/http/httpserver.hpp"

#include <spdlog/spdlog.h>

#include <vector>

#include "squall/core/errors.hpp"
#include "squall/core/gen.hpp"
#include "squall/core/log.hpp"
#include "http/http1connection_context.hpp"
#include "squall/net/ssl_iostream.hpp"

namespace squall::http {

/// What the connections share with the server, and outlive it with: the
/// request callback and the connections' context (their parameters, their
/// list, their header timer). The server owns each connection from
/// handle_stream until the connection reports its end through on_close; the
/// Core keeps itself alive while any is open, so a server destroyed with
/// requests in flight leaves nothing dangling.
struct HTTPServer::Core final : HTTPServerConnectionDelegate {
  RequestCallback callback;
  HTTPServerConnectionDelegate* user = nullptr;  // valid while `alive`
  bool alive = true;
  std::shared_ptr<HTTP1ServerConnection::Context> context;
  std::shared_ptr<Core> self;     // set while connections are open
  Future<void> drained{nullptr};  // resolved when the last connection is gone

  std::unique_ptr<HTTPMessageDelegate> start_request(HTTP1ServerConnection& server_conn,
                                                     HTTPConnection& request_conn) override;
  void on_close(HTTP1ServerConnection& server_conn) override {
    if (alive && user) {
      try {
        user->on_close(server_conn);
      } catch (const std::exception& e) {
        log::app().error("Exception in on_close: {}", e.what());
      }
    }
    // Owned since handle_stream (through the context's list): freed here.
    std::unique_ptr<HTTP1ServerConnection> owned(&server_conn);
    owned.reset();
    if (context->size() > 0) return;
    Future<void> d = std::move(drained);
    drained = Future<void>(nullptr);
    std::shared_ptr<Core> keep = std::move(self);  // may be the last reference: released last
    if (d.valid() && !d.done()) d.set_result();
  }
  Future<void> wait_drained() {
    if (context->size() == 0) return Future<void>(nullptr);
    if (!drained.valid() || drained.done()) drained = Future<void>();
    return drained;
  }
};

namespace {

/// Request objects, recycled per thread with the memory their strings hold,
/// so a request costs no allocation once the pool is warm.
struct RequestPool {
  std::vector<std::unique_ptr<HTTPServerRequest>> spares;
  static RequestPool& get() {
    thread_local RequestPool pool;
    return pool;
  }
  std::unique_ptr<HTTPServerRequest> take(HTTPConnection& conn) {
    if (spares.empty()) return std::make_unique<HTTPServerRequest>(&conn);
    std::unique_ptr<HTTPServerRequest> r = std::move(spares.back());
    spares.pop_back();
    r->reset(&conn);
    return r;
  }
  void give(std::unique_ptr<HTTPServerRequest> r) {
    if (spares.size() < 64) spares.push_back(std::move(r));
  }
};

/// Collects a whole request for a RequestCallback (Tornado's _CallableAdapter).
/// Made per request from the pooled memory of PooledAllocation.
class RequestAdapter final : public HTTPMessageDelegate, public PooledAllocation {
 public:
  RequestAdapter(HTTPServer::RequestCallback& callback, HTTP1ServerConnection& conn)
      : callback_(callback), conn_(conn), request_(RequestPool::get().take(conn)) {}
  ~RequestAdapter() override { RequestPool::get().give(std::move(request_)); }
  RequestAdapter(const RequestAdapter&) = delete;
  RequestAdapter& operator=(const RequestAdapter&) = delete;

  Future<void> headers_received(const RequestStartLine& line, HTTPHeaders& headers) override {
    HTTPServerRequest& req = *request_;
    req.set_start_line(line.method, line.target, line.version);
    std::swap(req.headers, headers);  // both keep their capacity
    req.remote_ip = conn_.remote_ip();
    req.protocol = conn_.protocol();
    req.update_host();
    return Future<void>(nullptr);
  }

  Future<void> data_received(std::string_view chunk) override {
    request_->body.append(chunk);  // the connection enforces max_body_size
    return Future<void>(nullptr);
  }

  Future<void> finish() override {
    Future<void> f(nullptr);
    try {
      f = callback_(*request_);
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
    log::app().error("Request handler for {} {} returned without finishing the response", request_->method,
                     request_->uri);
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
      log::app().error("Uncaught exception in {} {}: {}", request_->method, request_->uri, ex.what());
    } catch (...) {
      log::app().error("Uncaught exception in {} {}", request_->method, request_->uri);
    }
    if (closed_) return;
    // CONFORMANCE 2.7: a 500 without the exception's text.
    if (!conn_.response_started()) internal_error();
    else if (!conn_.response_finished()) conn_.close();
  }

  void internal_error() {
    try {
      request_->respond(500, "application/json", R"({"status": 500, "reason": "Internal Server Error"})");
    } catch (const std::exception&) {
      conn_.close();
    }
  }

  HTTPServer::RequestCallback& callback_;
  HTTP1ServerConnection& conn_;
  std::unique_ptr<HTTPServerRequest> request_;
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
    : TCPServer(tcp_options(options)), options_(std::move(options)), core_(std::make_shared<Core>()) {
  core_->callback = std::move(callback);
  core_->context = HTTP1ServerConnection::make_context(params_from(options_));
}

HTTPServer::HTTPServer(HTTPServerConnectionDelegate& delegate, HTTPServerOptions options)
    : TCPServer(tcp_options(options)), options_(std::move(options)), core_(std::make_shared<Core>()) {
  core_->user = &delegate;
  core_->context = HTTP1ServerConnection::make_context(params_from(options_));
}

HTTPServer::~HTTPServer() {
  stop();
  core_->alive = false;
  // Closing ends each connection later, from the loop: the list stays valid.
  for (HTTP1ServerConnection* c : core_->context->connections()) c->close();
}

std::size_t HTTPServer::connection_count() const noexcept { return core_->context->size(); }

Future<void> HTTPServer::handle_stream(std::unique_ptr<net::IOStream> stream, std::string address) {
  // Responses go out in one write each: Nagle would only delay them.
  if (!address.empty()) {
    try {
      stream->set_nodelay(true);
    } catch (const std::exception&) {
      // Not a TCP socket after all; nothing to tune.
    }
  }
  auto conn = std::make_unique<HTTP1ServerConnection>(std::move(stream), std::move(address), core_->context);
  if (!core_->self) core_->self = core_;
  // From here the server owns the connection, through the context's list,
  // until Core::on_close frees it: no coroutine frame or Future per
  // connection (an idle connection should cost hundreds of bytes).
  conn.release()->start(*core_);
  return Future<void>(nullptr);
}

Future<void> HTTPServer::close_all_connections() {
  std::shared_ptr<Core> core = core_;  // the server may be gone when we resume
  for (HTTP1ServerConnection* c : core->context->connections()) c->close();
  while (core->context->size() > 0) co_await core->wait_drained();
}

Future<void> HTTPServer::close_gracefully(Duration timeout) {
  std::shared_ptr<Core> core = core_;
  stop();
  for (HTTP1ServerConnection* c : core->context->connections()) c->close_when_idle();
  if (core->context->size() == 0) co_return;
  bool timed_out = false;
  try {
    co_await with_timeout(timeout, core->wait_drained());
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  if (timed_out) {
    for (HTTP1ServerConnection* c : core->context->connections()) c->close();
    while (core->context->size() > 0) co_await core->wait_drained();
  }
}

}  // namespace squall::http
