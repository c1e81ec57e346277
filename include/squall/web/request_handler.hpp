// RequestHandler: the base class of the code that answers one request
// (Tornado's tornado.web.RequestHandler). An Application makes one per
// request from the matched Rule's factory, runs its lifecycle, and destroys
// it once the response is done. Loop-affine: a handler lives and runs on the
// thread of its connection's loop.
//
//   class MainHandler : public squall::web::RequestHandler {
//    public:
//     squall::Future<void> get() override {
//       write("Hello, " + get_argument("name", "world"));
//       co_return;
//     }
//   };
//
// Lifecycle, in order (Tornado's):
//   constructor / initialize(args...)  with the rule's arguments
//   prepare()                          a coroutine; may finish() the request
//   get() / post() / ...               the verb's coroutine
//   finish()                           automatic when the verb returns
//   on_finish()                        always once, even if the client left
// on_connection_close() is called if the client goes away before the
// response is finished.
//
// Cookies, XSRF, compression and ETags are implemented in their own
// sources; this class is their one entry point, as in Tornado.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "squall/core/future.hpp"
#include "squall/http/body_arguments.hpp"
#include "squall/http/cookies.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/server_request.hpp"
#include "squall/http/url.hpp"
#include "squall/web/http_error.hpp"
#include "squall/web/routing.hpp"
#include "squall/web/template.hpp"

namespace squall::web {

class Application;
struct Settings;
class ContentEncoder;

namespace detail {
class HandlerDelegate;
/// reverse_url's arguments as strings: text as is, numbers in decimal.
template <class A>
std::string route_arg(const A& a) {
  if constexpr (std::is_arithmetic_v<A>) {
    return std::to_string(a);
  } else {
    return std::string(std::string_view(a));
  }
}
}  // namespace detail

class RequestHandler {
 public:
  /// A handler made by the Application (through handler<T>) is attached to
  /// its request before its constructor body runs: request(), settings()
  /// and the argument getters work in the constructor too.
  RequestHandler();
  virtual ~RequestHandler();
  RequestHandler(const RequestHandler&) = delete;
  RequestHandler& operator=(const RequestHandler&) = delete;

  // Handlers come and go with every request: they are allocated from the
  // loop thread's free lists, not from malloc.
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size) noexcept;

  // --- what subclasses override ----------------------------------------------------------

  /// Receives the rule's arguments (handler<T>(args...)) when T has no
  /// constructor taking them. Declare your own `initialize(...)`.
  void initialize() {}

  /// Runs before the verb, for every method (Tornado's prepare). May
  /// finish() the request (a redirect, an error page), and the verb is then
  /// skipped. Write it as a coroutine: `co_return;`.
  virtual Future<void> prepare();

  /// The verbs: each a coroutine answering its method. The response is
  /// finished when it returns (unless it already was). Verbs you do not
  /// override answer 405 with an Allow header naming those you did; HEAD
  /// runs get() when only get() is overridden (the body is not sent); the
  /// default options() answers 204 with Allow. Keep overrides public.
  virtual Future<void> get();
  virtual Future<void> head();
  virtual Future<void> post();
  virtual Future<void> delete_();
  virtual Future<void> patch();
  virtual Future<void> put();
  virtual Future<void> options();

  /// Called once after the response is finished, or after the client went
  /// away and the handler's coroutine ended (Tornado calls it only in the
  /// first case). For cleanup and logging; it must not write.
  virtual void on_finish();
  /// The client closed the connection before the response was finished.
  /// With the cancel_on_disconnect setting, the handler's coroutine is then
  /// cancelled (CancelledError at its current co_await).
  virtual void on_connection_close();

  /// Handlers whose class declares `static constexpr bool
  /// stream_request_body = true;` (Tornado's @stream_request_body) get the
  /// body piece by piece here, after prepare() and before the verb (which
  /// runs once the body is complete; request().body stays empty). While the
  /// returned Future is pending the connection reads no more of the body.
  /// `chunk` is valid only during the call: copy what you keep. Their
  /// prepare() may change this request's body limits, as in Tornado:
  /// `request().connection()->set_max_body_size(n)` (or set_body_timeout).
  /// A handler that does not stream cannot: its prepare() runs once the
  /// body was read, under the server's limits.
  virtual Future<void> data_received(std::string_view chunk);

  /// Produces the body of an error response (Tornado's write_error).
  /// `error` is the exception that caused it, if any. The default writes a
  /// small HTML page with the status; with the serve_traceback setting
  /// (or debug) a text/plain page with the exception's type and what().
  virtual void write_error(int status, std::exception_ptr error);

  /// The logged-in user (Tornado's get_current_user), e.g. from a signed
  /// cookie. Called at most once per request, by current_user(). The default
  /// has none.
  virtual std::optional<std::string> get_current_user();
  /// Where authenticated() sends anonymous users; default: login_url setting.
  virtual std::string get_login_url();
  /// Checks the XSRF token of a POST/PUT/PATCH/DELETE when the xsrf_cookies
  /// setting is on (before prepare): the `_xsrf` argument, or else the
  /// X-XSRFToken / X-CSRFToken header, must match the `_xsrf` cookie.
  /// Throws HTTPError(403) otherwise. Override to exempt a handler.
  virtual void check_xsrf_cookie();
  /// The response's ETag, or nullopt for none (Tornado's compute_etag). The
  /// default hashes the body written so far (a 64-bit hash; an ETag is a
  /// cache validator, not a signature).
  virtual std::optional<std::string> compute_etag();
  /// Sets headers every response of this handler starts with, errors
  /// included (called again by clear()).
  virtual void set_default_headers();
  /// Directory for render() (default: the template_path setting).
  virtual std::string get_template_path();
  /// Adds to what every template sees (Tornado's get_template_namespace):
  /// the default puts `current_user` and `request` (method, uri, path,
  /// query, host, remote_ip, protocol) in `data`, and the functions
  /// `xsrf_form_html()`, `static_url(path)` and `reverse_url(name, ...)` in
  /// `functions`. Values passed to render() win over these.
  virtual void get_template_namespace(nlohmann::json& data, TemplateNamespace& functions);
  /// Logs an exception that ended the request (Tornado's log_exception):
  /// an HTTPError with a log message as a warning, anything else as an
  /// error with the request summary.
  virtual void log_exception(std::exception_ptr error);

  // --- the request -----------------------------------------------------------------------

  http::HTTPServerRequest& request() noexcept { return *request_; }
  const http::HTTPServerRequest& request() const noexcept { return *request_; }
  Application& application() noexcept { return *application_; }
  const Settings& settings() const noexcept;

  /// The route's unnamed groups, percent-decoded, in order ("" for a group
  /// that did not match). Empty when the pattern has named groups.
  const std::vector<std::string>& path_args() const noexcept { return path_args_; }
  /// The route's named groups `(?P<name>...)`, percent-decoded.
  const std::map<std::string, std::string, std::less<>>& path_kwargs() const noexcept { return path_kwargs_; }

  /// The last value of argument `name` from the query or the form body
  /// (Tornado's get_argument): stripped of surrounding whitespace unless
  /// `strip` is false, control characters replaced by spaces. Invalid UTF-8
  /// is a 400. Without a default, a missing argument throws
  /// MissingArgumentError (a 400).
  std::string get_argument(std::string_view name);
  std::string get_argument(std::string_view name, std::string_view default_value, bool strip = true);
  /// nullopt when missing: `get_argument("next", std::nullopt)` is
  /// Tornado's `get_argument("next", None)`.
  std::optional<std::string> get_argument(std::string_view name, std::nullopt_t, bool strip = true);
  /// Every value of `name`, query first, then body.
  std::vector<std::string> get_arguments(std::string_view name, bool strip = true);
  /// As get_argument, from the query string only.
  std::string get_query_argument(std::string_view name);
  std::string get_query_argument(std::string_view name, std::string_view default_value, bool strip = true);
  std::optional<std::string> get_query_argument(std::string_view name, std::nullopt_t, bool strip = true);
  std::vector<std::string> get_query_arguments(std::string_view name, bool strip = true);
  /// As get_argument, from the form body only (urlencoded or multipart).
  std::string get_body_argument(std::string_view name);
  std::string get_body_argument(std::string_view name, std::string_view default_value, bool strip = true);
  std::optional<std::string> get_body_argument(std::string_view name, std::nullopt_t, bool strip = true);
  std::vector<std::string> get_body_arguments(std::string_view name, bool strip = true);

  /// The query's arguments, every value, undecoded beyond percent-escapes.
  const http::QueryArguments& query_arguments();
  /// The form body's arguments (parsed on first use; a malformed body is a 400).
  const http::QueryArguments& body_arguments();
  /// The multipart body's uploaded files by field name (Tornado's
  /// request.files), parsed with body_arguments().
  const http::Files& files();
  /// The request body as JSON. Throws HTTPError(400, with the parser's
  /// message) if it is not JSON. Include <nlohmann/json.hpp> to use it.
  nlohmann::json get_json_body();

  // --- the response ----------------------------------------------------------------------

  /// Sets the status and its reason phrase (default: the standard one, or
  /// "Unknown"). Throws std::invalid_argument outside 100-599.
  void set_status(int status, std::string_view reason = {});
  int get_status() const noexcept { return status_; }
  /// Replaces a response header. Values with CR, LF or NUL (header
  /// injection) throw std::invalid_argument, as do names that are not
  /// tokens. Numbers are written in decimal, times as HTTP dates.
  void set_header(std::string_view name, std::string_view value);
  void set_header(std::string_view name, std::int64_t value);
  void set_header(std::string_view name, std::chrono::system_clock::time_point value);
  /// Adds a header, keeping those of the same name (Set-Cookie style).
  void add_header(std::string_view name, std::string_view value);
  void add_header(std::string_view name, std::int64_t value);
  /// Removes every header of that name.
  void clear_header(std::string_view name);
  /// The response headers as they stand (Set-Cookie fields are added when
  /// the headers are sent).
  const http::HTTPHeaders& response_headers() const noexcept { return headers_; }
  /// Resets the status, headers (then set_default_headers()) and the
  /// unsent body (Tornado's clear).
  void clear();

  /// Appends to the response body, sent by flush() or finish(). Text and
  /// bytes alike: a std::string may hold any bytes.
  void write(std::string_view chunk);
  void write(const char* chunk) { write(std::string_view(chunk)); }
  void write(const std::string& chunk) { write(std::string_view(chunk)); }
  /// Writes `value` as JSON (escape.hpp's json_encode) and sets
  /// Content-Type to application/json. Include <nlohmann/json.hpp> to use it.
  void write(const nlohmann::json& value);
  /// Sends the headers (first time) and what was written so far; the
  /// response then streams (chunked for HTTP/1.1 without a Content-Length).
  /// The Future resolves when the bytes are in the kernel: await it to
  /// apply back-pressure. It fails with StreamClosedError if the client left.
  Future<void> flush();
  /// Ends the response: sends what is left with Content-Length (and ETag
  /// and compression as configured) if nothing was flushed yet. Calling it
  /// twice throws std::logic_error. After the client left it only records
  /// the end (and calls on_finish()).
  void finish();
  void finish(std::string_view chunk);
  /// True once finish() was called.
  bool finished() const noexcept { return finished_; }
  /// True once the headers went out (flush(), finish()).
  bool headers_written() const noexcept { return headers_written_; }

  /// Renders template `name` (from get_template_path()) with `data` (a JSON
  /// object) plus get_template_namespace(), and finishes the response with
  /// it (Tornado's render). Throws TemplateError.
  void render(std::string_view name);
  void render(std::string_view name, const nlohmann::json& data);
  /// Renders without writing (Tornado's render_string).
  std::string render_string(std::string_view name);
  std::string render_string(std::string_view name, const nlohmann::json& data);

  /// Redirects to `url` and finishes: 302, 301 when `permanent`, or
  /// `status` (300-399) when given. Throws std::logic_error if headers
  /// were already sent; std::invalid_argument for a URL with CR/LF/NUL.
  void redirect(std::string_view url, bool permanent = false, int status = 0);

  /// Answers with an error page (clear(), set_status, write_error, finish).
  /// After the headers went out it can only close the connection.
  void send_error(int status = 500, std::exception_ptr error = nullptr);

  /// The URL path of a named rule (Application::reverse_url).
  template <class... A>
  std::string reverse_url(std::string_view name, const A&... args) const {
    return reverse_url_list(name, {detail::route_arg(args)...});
  }
  std::string reverse_url_list(std::string_view name, const std::vector<std::string>& args) const;
  /// The URL of a static file (static_url_prefix + path, versioned by the
  /// static handler's make_static_url hook when set); with `include_host`,
  /// absolute (protocol://host).
  std::string static_url(std::string_view path, bool include_host = false, bool include_version = true) const;

  // --- cookies (cookies.cpp) -------------------------------------------------------------

  /// A request cookie's value (double quotes removed), or nullopt.
  std::optional<std::string> get_cookie(std::string_view name);
  std::string get_cookie(std::string_view name, std::string_view default_value);
  /// Sets a cookie on the response (replacing one of the same name set
  /// earlier in this request). Throws std::invalid_argument for names or
  /// values that would break the header.
  void set_cookie(std::string_view name, std::string_view value, const http::CookieOptions& options = {});
  /// Deletes a cookie: sets it empty, expired a year ago.
  void clear_cookie(std::string_view name, std::string_view path = "/", std::string_view domain = {});
  /// clear_cookie for every cookie of the request.
  void clear_all_cookies(std::string_view path = "/", std::string_view domain = {});

  /// Signs and timestamps `value` (signed_value.hpp, Tornado's v2 format
  /// with the cookie_secret setting) and sets it (Tornado 6.3's
  /// set_signed_cookie, 6.2's set_secure_cookie). `expires_days` (default
  /// 30; nullopt: a session cookie) applies unless `options` set expires or
  /// max_age. Throws std::logic_error without a cookie_secret.
  void set_signed_cookie(std::string_view name, std::string_view value, std::optional<double> expires_days = 30.0,
                         http::CookieOptions options = {});
  /// The value of a signed cookie, or nullopt if it is missing, forged,
  /// tampered with, or older than `max_age_days` (Tornado's get_signed_cookie).
  std::optional<std::string> get_signed_cookie(std::string_view name, double max_age_days = 31);
  /// The signed form of `value` for `name`, as set_signed_cookie stores it.
  std::string create_signed_value(std::string_view name, std::string_view value);

  /// The XSRF token for this request's forms, masked afresh per request
  /// (Tornado's xsrf_token, version 2 unless xsrf_cookie_version says 1);
  /// sets the `_xsrf` cookie if the client has none.
  const std::string& xsrf_token();
  /// `<input type="hidden" name="_xsrf" value="...">` for a form.
  std::string xsrf_form_html();

  // --- authentication ---------------------------------------------------------------------

  /// The user from get_current_user() (asked once), or from set_current_user.
  const std::optional<std::string>& current_user();
  /// Sets the user, e.g. from an asynchronous lookup in prepare().
  void set_current_user(std::optional<std::string> user);
  /// Tornado's @authenticated, called as a verb's first line: with no
  /// current user, GET and HEAD are redirected to get_login_url() with
  /// `next=<this URI>` and the request ends (throws Finish); other methods
  /// get HTTPError(403). Returns normally for a logged-in user.
  ///
  ///   Future<void> get() override {
  ///     authenticated();
  ///     write("Hello, " + *current_user());
  ///     co_return;
  ///   }
  void authenticated();

  // --- details ------------------------------------------------------------------------------

  /// "GET /path?x=1 (127.0.0.1)" (Tornado's _request_summary).
  std::string request_summary() const;
  /// Sets the ETag header from compute_etag() (no-op if it returns nullopt).
  void set_etag_header();
  /// True if the request's If-None-Match matches the response's ETag
  /// (weak comparison, `*` matches).
  bool check_etag_header() const;

 protected:
  /// Whether this handler answers `method` (default: the verbs the class
  /// overrides, as handler<T> found them). FallbackHandler accepts all.
  virtual bool supports_method(std::string_view method) const;
  /// Calls the verb of the request's method (FallbackHandler forwards).
  virtual Future<void> execute_verb();
  /// The Allow header of a 405 or OPTIONS answer.
  virtual std::string allowed_methods() const;
  /// Takes over a request whose response someone else (a wrapped HTTP
  /// callback or delegate) writes straight to the connection: the handler
  /// then neither writes nor finishes it, nor logs it.
  void detach_response() noexcept { detached_ = true; }
  bool response_detached() const noexcept { return detached_; }
  /// The connection the request came on, for handlers that take it over
  /// (FallbackHandler, WebSocket handlers). Throws std::logic_error for a
  /// handler made outside an Application.
  http::HTTP1ServerConnection& server_connection() const;

 private:
  friend class detail::HandlerDelegate;
  friend class Application;
  struct Extras;  // state most requests never touch

  Extras& extras();
  Future<void> execute();
  void handle_exception(std::exception_ptr error);
  void finish_response();
  Future<void> write_out(bool finishing);
  void add_pending_cookies();
  std::string_view next_encoded_chunk(bool finishing, std::string& scratch);
  void call_on_finish() noexcept;
  bool client_gone() const noexcept;
  const std::string* find_argument(const http::QueryArguments& args, std::string_view name) const;
  std::string clean_argument(std::string_view name, std::string_view value, bool strip) const;
  void parse_body_arguments();

  Application* application_ = nullptr;
  http::HTTPServerRequest* request_ = nullptr;
  detail::HandlerDelegate* delegate_ = nullptr;
  http::HTTPHeaders headers_;
  std::string write_buffer_;
  std::vector<std::string> path_args_;
  std::map<std::string, std::string, std::less<>> path_kwargs_;
  std::unique_ptr<Extras> extras_;
  std::unique_ptr<ContentEncoder> encoder_;
  int status_ = 200;
  unsigned methods_ = 0;
  bool headers_written_ = false;
  bool finished_ = false;
  bool on_finish_called_ = false;
  bool connection_closed_ = false;
  bool detached_ = false;
  bool prepared_ = false;
  bool encoding_decided_ = false;
};

}  // namespace squall::web
