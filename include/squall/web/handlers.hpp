// Ready-made handlers (Tornado's RedirectHandler, ErrorHandler and
// FallbackHandler). Loop-affine like every RequestHandler.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "squall/core/future.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/web/request_handler.hpp"

namespace squall::web {

/// Redirects GET (and HEAD) to a URL built from `url` with the route's
/// groups substituted, as Python's str.format: "{0}", "{1}"... the
/// positional groups, "{name}" the named ones, "{{" and "}}" literal braces.
/// The request's query, if any, is appended. 301 by default, as Tornado.
///
///   {"/old/(.*)", handler<RedirectHandler>("/new/{0}")}
class RedirectHandler : public RequestHandler {
 public:
  explicit RedirectHandler(std::string url, bool permanent = true);
  RedirectHandler(const char* url, bool permanent = true) : RedirectHandler(std::string(url), permanent) {}
  Future<void> get() override;

 private:
  std::string url_;
  bool permanent_;
};

/// Answers every request with `status` (through send_error and
/// write_error), e.g. the default 404 of unmatched paths.
class ErrorHandler : public RequestHandler {
 public:
  explicit ErrorHandler(int status);
  Future<void> prepare() override;
  /// No XSRF check: the request ends with `status` anyway.
  void check_xsrf_cookie() override {}

 protected:
  bool supports_method(std::string_view method) const override;

 private:
  int status_;
};

/// Hands the request to something outside the web framework (Tornado's
/// FallbackHandler): a plain HTTPServer request callback, which gets the
/// whole request (body included) and answers it through
/// HTTPServerRequest::respond/write/finish; or another
/// HTTPServerConnectionDelegate (another Application, say), which gets the
/// request as it arrives, body streamed. Every method is passed on; the
/// XSRF check is skipped. The target must outlive the Application.
///
///   {"/legacy/.*", handler<FallbackHandler>(std::ref(other_app))}
class FallbackHandler : public RequestHandler {
 public:
  static constexpr bool stream_request_body = true;

  using Callback = std::function<Future<void>(http::HTTPServerRequest&)>;
  /// Wraps a request callback: a coroutine (or any function returning
  /// Future<void>), whose Future is awaited, or a plain function.
  explicit FallbackHandler(Callback callback);
  template <class F>
    requires(std::is_invocable_v<const F&, http::HTTPServerRequest&> && !std::is_same_v<F, Callback>)
  explicit FallbackHandler(const F& callback) : FallbackHandler(wrap(callback)) {}
  /// Wraps a delegate.
  explicit FallbackHandler(std::reference_wrapper<http::HTTPServerConnectionDelegate> target);
  template <class D>
    requires std::is_base_of_v<http::HTTPServerConnectionDelegate, D>
  explicit FallbackHandler(std::reference_wrapper<D> target)
      : FallbackHandler(std::reference_wrapper<http::HTTPServerConnectionDelegate>(target.get())) {}
  ~FallbackHandler() override;

  Future<void> prepare() override;
  Future<void> data_received(std::string_view chunk) override;
  void on_connection_close() override;
  void check_xsrf_cookie() override {}

 protected:
  bool supports_method(std::string_view method) const override;
  Future<void> execute_verb() override;

 private:
  template <class F>
  static Callback wrap(const F& f) {
    if constexpr (std::is_void_v<std::invoke_result_t<const F&, http::HTTPServerRequest&>>) {
      return [f](http::HTTPServerRequest& request) {
        f(request);
        return Future<void>(nullptr);
      };
    } else {
      return Callback(f);
    }
  }

  Callback callback_;
  http::HTTPServerConnectionDelegate* target_ = nullptr;
  std::unique_ptr<http::HTTPMessageDelegate> inner_;
};

}  // namespace squall::web
