// Application (routing tables, listen, access log, template loaders) and
// HandlerDelegate (one request's trip through a RequestHandler).
#include "squall/web/application.hpp"

#include <spdlog/spdlog.h>

#include <mutex>
#include <regex>
#include <stdexcept>
#include <unordered_map>

#include "squall/core/log.hpp"
#include "squall/net/iostream.hpp"
#include "squall/web/handlers.hpp"
#include "web/handler_delegate.hpp"

namespace squall::web {

namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// re.escape for a URL prefix.
std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view(".^$|?*+()[]{}\\").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

/// The rules of one host pattern, indexed for matching.
struct HostGroup {
  std::string host_pattern;
  bool match_all = false;
  std::optional<std::regex> host_regex;
  std::string literal_host;
  std::vector<Rule> rules;
  // First literal rule per path, and the regex rules in order.
  std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> literal_index;
  std::vector<std::size_t> regex_rules;

  HostGroup(std::string_view pattern, std::vector<Rule> r) : host_pattern(pattern), rules(std::move(r)) {
    std::string_view p = pattern;
    if (p.ends_with('$')) p.remove_suffix(1);
    if (p == ".*") {
      match_all = true;
    } else {
      PathPattern probe(pattern);  // same literal rules as paths
      if (probe.is_literal()) {
        literal_host = probe.literal();
        for (char& c : literal_host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else {
        try {
          host_regex.emplace(std::string(pattern), std::regex::ECMAScript | std::regex::icase);
        } catch (const std::regex_error& e) {
          throw std::invalid_argument("bad host pattern '" + std::string(pattern) + "': " + e.what());
        }
      }
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
      if (!rules[i].handler) throw std::invalid_argument("rule '" + rules[i].pattern.pattern() + "' has no handler");
      if (rules[i].pattern.is_literal()) {
        literal_index.emplace(rules[i].pattern.literal(), i);  // keeps the first
      } else {
        regex_rules.push_back(i);
      }
    }
  }

  bool matches_host(std::string_view host) const {
    if (match_all) return true;
    if (!host_regex) return host == literal_host;
    if (host.size() > kMaxRegexPathLength) return false;
    return std::regex_match(host.begin(), host.end(), *host_regex);
  }
};

}  // namespace

struct Application::Router {
  std::vector<HostGroup> groups;  // in matching order; the constructor's rules last
  std::map<std::string, const Rule*, std::less<>> named;
  HandlerFactory not_found = handler<ErrorHandler>(404);
  HandlerFactory too_long = handler<ErrorHandler>(414);
  std::mutex loaders_mutex;
  std::map<std::string, std::shared_ptr<BaseLoader>, std::less<>> loaders;

  void index_names(const HostGroup& g) {
    for (const Rule& r : g.rules) {
      if (!r.name.empty()) named.emplace(r.name, &r);  // Tornado: the first wins... and warns
    }
  }
};

Application::Application(std::vector<Rule> rules, Settings settings)
    : settings_(std::move(settings)), router_(std::make_unique<Router>()) {
  if (settings_.debug) {
    settings_.serve_traceback = true;
    settings_.compiled_template_cache = false;
  }
  if (!settings_.static_path.empty()) {
    if (!settings_.static_handler) {
      throw std::invalid_argument("the static_path setting needs a static_handler");
    }
    // Tornado puts these first (StaticFileHandler routes).
    std::vector<Rule> statics;
    statics.emplace_back(regex_escape(settings_.static_url_prefix) + "(.*)", settings_.static_handler);
    statics.emplace_back("/(favicon\\.ico)", settings_.static_handler);
    statics.emplace_back("/(robots\\.txt)", settings_.static_handler);
    rules.insert(rules.begin(), std::make_move_iterator(statics.begin()), std::make_move_iterator(statics.end()));
  }
  router_->groups.emplace_back(".*$", std::move(rules));
  router_->index_names(router_->groups.back());
}

Application::~Application() = default;

void Application::add_handlers(std::string_view host_pattern, std::vector<Rule> rules) {
  std::string pattern(host_pattern);
  if (!pattern.ends_with('$')) pattern += '$';
  // Before the constructor's group, after earlier add_handlers groups
  // (Tornado's rules.insert(-1, ...)).
  auto at = router_->groups.end() - 1;
  router_->groups.emplace(at, pattern, std::move(rules));
  // Rebuild the name index: emplace may have moved every group.
  router_->named.clear();
  for (const HostGroup& g : router_->groups) router_->index_names(g);
}

std::string Application::reverse_url_list(std::string_view name, const std::vector<std::string>& args) const {
  auto it = router_->named.find(name);
  if (it == router_->named.end()) throw std::out_of_range(std::string(name) + " not found in named urls");
  return it->second->pattern.reverse(args);
}

Application::Match Application::find_handler(std::string_view host_name, std::string_view path) const {
  Match m;
  for (const HostGroup& g : router_->groups) {
    if (!g.matches_host(host_name)) continue;
    std::size_t limit = g.rules.size();
    if (!g.literal_index.empty()) {
      auto hit = g.literal_index.find(path);
      if (hit != g.literal_index.end()) limit = hit->second;
    }
    for (std::size_t i : g.regex_rules) {
      if (i > limit) break;
      if (g.rules[i].pattern.match(path, m.args, m.kwargs)) {
        m.rule = &g.rules[i];
        return m;
      }
    }
    if (limit < g.rules.size()) {
      m.rule = &g.rules[limit];
      return m;
    }
    if (path.size() > kMaxRegexPathLength && !g.regex_rules.empty()) m.path_too_long = true;
  }
  return m;
}

http::HTTPServer& Application::listen(int port, const std::string& address, http::HTTPServerOptions options,
                                      const net::BindOptions& bind) {
  auto server = std::make_unique<http::HTTPServer>(*this, std::move(options));
  server->listen(port, address, bind);
  servers_.push_back(std::move(server));
  return *servers_.back();
}

void Application::log_request(RequestHandler& handler) {
  if (settings_.log_function) {
    settings_.log_function(handler);
    return;
  }
  int status = handler.get_status();
  spdlog::level::level_enum level =
      status < 400 ? spdlog::level::info : status < 500 ? spdlog::level::warn : spdlog::level::err;
  spdlog::logger& log = log::access();
  if (!log.should_log(level)) return;
  double ms = std::chrono::duration<double, std::milli>(handler.request().request_time()).count();
  const http::HTTPServerRequest& r = handler.request();
  log.log(level, "{} {} {} ({}) {:.2f}ms", status, r.method, r.uri, r.remote_ip, ms);
}

BaseLoader& Application::template_loader(const std::string& template_path) {
  if (settings_.template_loader) {
    if (!settings_.compiled_template_cache) settings_.template_loader->reset();
    return *settings_.template_loader;
  }
  std::lock_guard lock(router_->loaders_mutex);
  auto it = router_->loaders.find(template_path);
  if (it == router_->loaders.end()) {
    TemplateOptions options;
    options.autoescape = settings_.autoescape;
    it = router_->loaders.emplace(template_path, std::make_shared<Loader>(template_path, std::move(options))).first;
  } else if (!settings_.compiled_template_cache) {
    it->second->reset();
  }
  return *it->second;
}

std::unique_ptr<http::HTTPMessageDelegate> Application::start_request(http::HTTP1ServerConnection& server_conn,
                                                                      http::HTTPConnection& request_conn) {
  return std::make_unique<detail::HandlerDelegate>(*this, server_conn, request_conn);
}

// --- HandlerDelegate ---------------------------------------------------------------------------

namespace detail {

constinit thread_local HandlerContext* tls_handler_context = nullptr;

namespace {

/// Request objects recycled per thread with the memory their strings and
/// header block hold, so a request costs no allocation once warm (as
/// HTTPServer does for its callbacks).
struct RequestPool {
  static constexpr std::size_t kMax = 64;
  std::vector<std::unique_ptr<http::HTTPServerRequest>> spares;
  static RequestPool& get() {
    thread_local RequestPool pool;
    return pool;
  }
  std::unique_ptr<http::HTTPServerRequest> take(http::HTTPConnection& conn) {
    if (spares.empty()) return std::make_unique<http::HTTPServerRequest>(&conn);
    std::unique_ptr<http::HTTPServerRequest> r = std::move(spares.back());
    spares.pop_back();
    r->reset(&conn);
    return r;
  }
  void give(std::unique_ptr<http::HTTPServerRequest> r) noexcept {
    try {
      if (spares.size() < kMax) spares.push_back(std::move(r));
    } catch (...) {
      // Out of memory while caching: just let it go.
    }
  }
};

}  // namespace

HandlerDelegate::HandlerDelegate(Application& app, http::HTTP1ServerConnection& server_conn,
                                 http::HTTPConnection& request_conn)
    : app_(app), server_conn_(server_conn), request_(RequestPool::get().take(request_conn)) {}

HandlerDelegate::~HandlerDelegate() {
  if (execute_.valid() && !execute_.done()) {
    // The connection gave up on the request before the handler ended (a
    // client gone mid-body): end the wait for the body, then the handler.
    if (body_done_.valid() && !body_done_.done()) {
      body_done_.set_exception(std::make_exception_ptr(net::StreamClosedError()));
    }
    if (!execute_.done()) execute_.cancel();
    if (!execute_.done()) {
      log::app().error("Request handler for {} {} outlived its connection", request_->method, request_->uri);
    }
  }
  if (execute_.valid() && execute_.done()) (void)execute_.exception();
  handler_.reset();  // it refers to the request
  RequestPool::get().give(std::move(request_));
}

void HandlerDelegate::make_handler(const HandlerFactory& factory, std::vector<std::string>& args,
                                   std::map<std::string, std::string, std::less<>>& kwargs) {
  HandlerContext ctx{&app_, request_.get(), this, factory.methods(), &args, &kwargs};
  tls_handler_context = &ctx;
  try {
    handler_ = factory.make();
  } catch (...) {
    tls_handler_context = nullptr;
    throw;
  }
  tls_handler_context = nullptr;
  handler_->set_default_headers();
}

Future<void> HandlerDelegate::headers_received(const http::RequestStartLine& line, http::HTTPHeaders& headers) {
  http::HTTPServerRequest& request = *request_;
  request.set_start_line(line.method, line.target, line.version);
  std::swap(request.headers, headers);  // both keep their memory for the next request
  request.remote_ip = server_conn_.remote_ip();
  request.protocol = server_conn_.protocol();
  request.update_host();

  Application::Match m = app_.find_handler(request.host_name, request.path);
  const HandlerFactory* factory;
  bool error_handler = false;
  if (m.rule) {
    factory = &m.rule->handler;
  } else if (m.path_too_long) {
    factory = &app_.router_->too_long;
    error_handler = true;
  } else if (app_.settings_.default_handler) {
    factory = &app_.settings_.default_handler;
  } else {
    factory = &app_.router_->not_found;
    error_handler = true;
  }
  make_handler(*factory, m.args, m.kwargs);
  streaming_ = factory->stream_request_body();
  // Answer before the body when the answer cannot depend on it (404, 405:
  // a client waiting on 100-continue then never sends it), and start a
  // streaming handler so prepare() runs before the body flows.
  if (streaming_ || error_handler || !handler_->supports_method(request.method)) {
    if (streaming_) {
      prepared_ = Future<void>();
      body_done_ = Future<void>();
    }
    start();
    if (streaming_ && !prepared_.done()) return prepared_;
  }
  return Future<void>(nullptr);
}

void HandlerDelegate::start() {
  started_ = true;
  execute_ = handler_->execute();
}

void HandlerDelegate::handler_prepared() {
  if (prepared_.valid() && !prepared_.done()) prepared_.set_result();
}

Future<void> HandlerDelegate::data_received(std::string_view chunk) {
  if (!streaming_) {
    if (!started_) request_->body.append(chunk);  // else: answered already, body unwanted
    return Future<void>(nullptr);
  }
  if (!handler_ || handler_->finished() || closed_) return Future<void>(nullptr);
  Future<void> f(nullptr);
  try {
    f = handler_->data_received(chunk);
  } catch (...) {
    handler_->handle_exception(std::current_exception());
    return Future<void>(nullptr);
  }
  if (!f.valid()) return f;
  if (f.done()) {
    if (auto e = f.exception()) handler_->handle_exception(e);
    return Future<void>(nullptr);
  }
  return watch_data(std::move(f));
}

Future<void> HandlerDelegate::watch_data(Future<void> pending) {
  std::exception_ptr error;
  try {
    co_await pending;
  } catch (...) {
    error = std::current_exception();
  }
  if (error && handler_ && !handler_->finished()) handler_->handle_exception(error);
}

Future<void> HandlerDelegate::finish() {
  if (streaming_) {
    if (body_done_.valid() && !body_done_.done()) body_done_.set_result();
  } else if (!started_) {
    start();
  }
  if (execute_.valid() && !execute_.done()) return execute_;
  return Future<void>(nullptr);
}

void HandlerDelegate::on_connection_close() {
  closed_ = true;
  if (!handler_ || !started_) return;
  handler_->connection_closed_ = true;
  try {
    handler_->on_connection_close();
  } catch (const std::exception& e) {
    log::app().error("Exception in on_connection_close of {}: {}", handler_->request_summary(), e.what());
  }
  if (app_.settings_.cancel_on_disconnect && execute_.valid() && !execute_.done()) execute_.cancel();
  if (body_done_.valid() && !body_done_.done()) {
    body_done_.set_exception(std::make_exception_ptr(net::StreamClosedError()));
  }
}

}  // namespace detail

}  // namespace squall::web
