// HandlerDelegate: what an Application gives the HTTP connection for one
// request (Tornado's _HandlerDelegate). It owns the HTTPServerRequest and
// the RequestHandler, routes on the head, feeds a streaming handler the
// body, and runs the handler's lifecycle. Loop-affine.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/http1connection.hpp"
#include "squall/http/server_request.hpp"
#include "squall/web/application.hpp"
#include "squall/web/request_handler.hpp"

namespace squall::web::detail {

/// What a RequestHandler's constructor picks up (set just around
/// HandlerFactory::make, on the loop thread).
struct HandlerContext {
  Application* application = nullptr;
  http::HTTPServerRequest* request = nullptr;
  HandlerDelegate* delegate = nullptr;
  unsigned methods = 0;
  std::vector<std::string>* args = nullptr;
  std::map<std::string, std::string, std::less<>>* kwargs = nullptr;
};
extern constinit thread_local HandlerContext* tls_handler_context;

class HandlerDelegate final : public http::HTTPMessageDelegate, public http::PooledAllocation {
 public:
  HandlerDelegate(Application& app, http::HTTP1ServerConnection& server_conn, http::HTTPConnection& request_conn);
  ~HandlerDelegate() override;

  Future<void> headers_received(const http::RequestStartLine& start_line, http::HTTPHeaders& headers) override;
  Future<void> data_received(std::string_view chunk) override;
  Future<void> finish() override;
  void on_connection_close() override;

  // --- for the handler ------------------------------------------------------------------
  http::HTTP1ServerConnection& server_connection() noexcept { return server_conn_; }
  bool streaming() const noexcept { return streaming_; }
  /// prepare() is over: a streaming request's body may flow.
  void handler_prepared();
  /// The body is complete (streaming); fails with StreamClosedError if the
  /// client left first.
  Future<void>& body_done() noexcept { return body_done_; }
  bool closed() const noexcept { return closed_; }

 private:
  void make_handler(const HandlerFactory& factory, std::vector<std::string>& args,
                    std::map<std::string, std::string, std::less<>>& kwargs);
  void start();
  Future<void> watch_data(Future<void> pending);

  Application& app_;
  http::HTTP1ServerConnection& server_conn_;
  std::unique_ptr<http::HTTPServerRequest> request_;  // recycled per thread, strings and all
  std::unique_ptr<RequestHandler> handler_;
  Future<void> execute_{nullptr};
  Future<void> prepared_{nullptr};
  Future<void> body_done_{nullptr};
  bool streaming_ = false;
  bool started_ = false;
  bool closed_ = false;
};

}  // namespace squall::web::detail
