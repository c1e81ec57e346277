// Application: a collection of routes and settings that makes up a web
// application (Tornado's tornado.web.Application). It is the
// HTTPServerConnectionDelegate an HTTPServer feeds: per request it matches a
// Rule, makes its RequestHandler and runs it. Build it, then use it on one
// loop thread (or one Application per loop thread, or shared read-only by
// several loops' servers: routing and settings are never modified after
// add_handlers).
//
//   squall::web::Application app({
//       {"/", squall::web::handler<MainHandler>()},
//       {"/story/([0-9]+)", squall::web::handler<StoryHandler>(std::ref(db)), "story"},
//   }, settings);
//   app.listen(8888);
//   squall::IOLoop::current().start();
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/clock.hpp"
#include "squall/http/cookies.hpp"
#include "squall/http/delegates.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/netutil.hpp"
#include "squall/web/compression.hpp"
#include "squall/web/request_handler.hpp"
#include "squall/web/routing.hpp"
#include "squall/web/signed_value.hpp"
#include "squall/web/template.hpp"

namespace squall::web {

/// Settings the WebSocket layer reads (Tornado's websocket_* settings).
/// Held here so an Application carries them; the WebSocket handlers define
/// their meaning.
struct WebSocketSettings {
  /// Largest message accepted (after decompression); larger closes with 1009.
  /// 10 MiB, Tornado's websocket_max_message_size (and the client's default,
  /// websocket::kDefaultMaxMessageSize).
  std::size_t max_message_size{std::size_t{10} * 1024 * 1024};
  /// Send a ping this often; zero: never.
  Duration ping_interval{};
  /// Close if no pong within this long after a ping; zero: 3 ping intervals.
  Duration ping_timeout{};
};

/// The application's settings (Tornado's `**settings`), typed. Build with
/// designated initializers, in declaration order:
///
///   squall::web::Settings settings{
///       .cookie_secret = "a long random string",
///       .xsrf_cookies = true,
///       .login_url = "/login",
///       .template_path = "templates",
///   };
struct Settings {
  /// Development mode: implies serve_traceback and disables the template
  /// cache (templates are re-read on every render).
  bool debug{false};
  /// Error pages show the exception (type and what()). Never in production.
  bool serve_traceback{false};
  /// Compress responses the client accepts compressed (gzip, br).
  bool compress_response{false};
  CompressionOptions compression{};

  /// The key of signed cookies and XSRF timestamps: a string, or versioned
  /// keys (CookieSecret::versioned). Needed by set/get_signed_cookie.
  std::optional<CookieSecret> cookie_secret{};
  /// Check XSRF tokens on POST, PUT, PATCH and DELETE.
  bool xsrf_cookies{false};
  /// 2 (masked, Tornado's default) or 1 (plain hex, for old clients).
  int xsrf_cookie_version{2};
  /// Attributes of the `_xsrf` cookie (Tornado's xsrf_cookie_kwargs).
  http::CookieOptions xsrf_cookie_options{};

  /// Where authenticated() sends anonymous users.
  std::string login_url{};

  /// Directory of static files; when set, the static handler serves
  /// static_url_prefix + "(.*)", /favicon.ico and /robots.txt from it.
  std::string static_path{};
  std::string static_url_prefix{"/static/"};
  /// The handler of those routes (Tornado's static_handler_class and
  /// static_handler_args); required when static_path is set. It reads its
  /// directory from settings().static_path and the file from path_args()[0].
  HandlerFactory static_handler{};
  /// How static_url() builds a URL (Tornado's make_static_url classmethod),
  /// e.g. adding a version hash; null: static_url_prefix + path.
  std::function<std::string(const Settings& settings, std::string_view path, bool include_version)>
      make_static_url{};

  /// Directory of templates for render().
  std::string template_path{};
  /// The escaping function of {{ }} in templates; nullopt: none.
  std::optional<std::string> autoescape{"xhtml_escape"};
  /// Loads templates instead of a Loader over template_path.
  std::shared_ptr<BaseLoader> template_loader{};
  /// Keep compiled templates (false: re-read on every render; debug sets it).
  bool compiled_template_cache{true};

  /// Serves requests no rule matches (default: 404).
  HandlerFactory default_handler{};
  /// Replaces the access log (Tornado's log_function): called once per
  /// finished request.
  std::function<void(RequestHandler& handler)> log_function{};
  /// Cancel a handler's coroutine when its client disconnects.
  bool cancel_on_disconnect{false};

  WebSocketSettings websocket{};
};

/// See the top of this file.
class Application : public http::HTTPServerConnectionDelegate {
 public:
  /// Rules are matched in order against the request path (for any host).
  /// Throws std::invalid_argument for a bad pattern, a rule without a
  /// handler, or static_path without static_handler.
  explicit Application(std::vector<Rule> rules = {}, Settings settings = {});
  ~Application() override;
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  /// Rules for requests whose host (Host without port, lower-cased) matches
  /// `host_pattern` entirely (a regular expression; ".*" for all). Host
  /// groups are tried in the order added, before the rules of the
  /// constructor; within a group, rules in order.
  void add_handlers(std::string_view host_pattern, std::vector<Rule> rules);

  /// The path of the rule named `name` with `args` in its groups (Tornado's
  /// reverse_url). Throws std::out_of_range for an unknown name.
  ///
  ///   app.reverse_url("story", 42)   // "/story/42"
  template <class... A>
  std::string reverse_url(std::string_view name, const A&... args) const {
    return reverse_url_list(name, {detail::route_arg(args)...});
  }
  std::string reverse_url_list(std::string_view name, const std::vector<std::string>& args) const;

  /// Serves this application on `port` (0: the OS picks; see
  /// HTTPServer::ports()) with a new HTTPServer, kept by the Application
  /// (Tornado's listen). Call on the loop thread that will run it.
  http::HTTPServer& listen(int port, const std::string& address = "", http::HTTPServerOptions options = {},
                           const net::BindOptions& bind = {});
  /// The servers listen() made.
  const std::vector<std::unique_ptr<http::HTTPServer>>& servers() const noexcept { return servers_; }

  const Settings& settings() const noexcept { return settings_; }

  /// Writes the access log line of a finished request: the log_function
  /// setting, or "200 GET /path (127.0.0.1) 1.23ms" on the squall.access
  /// logger, info below 400, warning below 500, error above (Tornado's).
  virtual void log_request(RequestHandler& handler);

  /// The template loader for `template_path` (the setting's loader, or a
  /// Loader made once per directory).
  BaseLoader& template_loader(const std::string& template_path);

  // --- HTTPServerConnectionDelegate -----------------------------------------------------
  std::unique_ptr<http::HTTPMessageDelegate> start_request(http::HTTP1ServerConnection& server_conn,
                                                           http::HTTPConnection& request_conn) override;

  /// The routes' result for one request (for tests and custom delegates).
  struct Match {
    const Rule* rule = nullptr;  // null: nothing matched
    std::vector<std::string> args{};
    std::map<std::string, std::string, std::less<>> kwargs{};
    /// No rule matched, and the path was too long for the regular
    /// expressions to be tried (kMaxRegexPathLength): a 414.
    bool path_too_long = false;
  };
  /// Finds the rule for `host_name` (lower-cased, no port) and `path`.
  Match find_handler(std::string_view host_name, std::string_view path) const;

 private:
  friend class detail::HandlerDelegate;
  struct Router;
  Settings settings_;
  std::unique_ptr<Router> router_;
  std::vector<std::unique_ptr<http::HTTPServer>> servers_;
};

}  // namespace squall::web
