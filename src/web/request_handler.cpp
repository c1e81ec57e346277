// RequestHandler: construction, the lifecycle (execute), errors and the
// argument getters. Output lives in handler_output.cpp, cookies/XSRF/auth in
// handler_cookies.cpp, templates and JSON in handler_templates.cpp.
#include "squall/web/request_handler.hpp"

#include <cxxabi.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <stdexcept>

#include "squall/core/log.hpp"
#include "squall/http/httputil.hpp"
#include "squall/net/iostream.hpp"
#include "squall/web/application.hpp"
#include "squall/web/escape.hpp"
#include "web/handler_delegate.hpp"
#include "web/handler_extras.hpp"

namespace squall::web {

namespace {

// Response header blocks are recycled per thread: a cleared HTTPHeaders
// keeps its arena and field vector, so a response's headers cost no
// allocation once the loop has warmed up.
constexpr std::size_t kHeaderPoolSize = 64;
thread_local std::vector<http::HTTPHeaders> tls_header_pool;

http::HTTPHeaders take_headers() {
  if (tls_header_pool.empty()) return {};
  http::HTTPHeaders h = std::move(tls_header_pool.back());
  tls_header_pool.pop_back();
  return h;
}

void give_back_headers(http::HTTPHeaders& h) noexcept {
  try {
    if (tls_header_pool.size() < kHeaderPoolSize) {
      h.clear();
      tls_header_pool.push_back(std::move(h));
    }
  } catch (...) {
    // Out of memory while caching: just let it go.
  }
}

constexpr std::string_view kDefaultContentType = "text/html; charset=UTF-8";

bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8
    // (Python's decoder refuses them too).
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

/// Python's repr of a str, shortened: for the 400 message.
std::string short_repr(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s.substr(0, 40)) {
    if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 40) out += "...";
  return out + "'";
}

const http::QueryArguments& empty_arguments() {
  static const http::QueryArguments empty;
  return empty;
}

const http::Files& empty_files() {
  static const http::Files empty;
  return empty;
}

/// The current exception's type, demangled ("std::runtime_error").
std::string current_exception_type() {
  std::type_info* t = abi::__cxa_current_exception_type();
  if (!t) return "unknown exception";
  int status = 0;
  char* name = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : t->name();
  std::free(name);
  return out;
}

bool is_client_gone_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (const net::StreamClosedError&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

// --- construction ---------------------------------------------------------------------------

void* RequestHandler::operator new(std::size_t size) { return squall::detail::pool_allocate(size); }
void RequestHandler::operator delete(void* p, std::size_t size) noexcept { squall::detail::pool_deallocate(p, size); }

RequestHandler::RequestHandler() : headers_(take_headers()) {
  if (detail::HandlerContext* ctx = detail::tls_handler_context) {
    detail::tls_handler_context = nullptr;  // for this object only
    application_ = ctx->application;
    request_ = ctx->request;
    delegate_ = ctx->delegate;
    methods_ = ctx->methods;
    if (ctx->args) path_args_ = std::move(*ctx->args);
    if (ctx->kwargs) path_kwargs_ = std::move(*ctx->kwargs);
  }
  headers_.add_unchecked("Content-Type", kDefaultContentType);
}

RequestHandler::~RequestHandler() { give_back_headers(headers_); }

RequestHandler::Extras& RequestHandler::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

const Settings& RequestHandler::settings() const noexcept { return application_->settings(); }

// --- default entry points --------------------------------------------------------------------

Future<void> RequestHandler::prepare() { return Future<void>(nullptr); }
Future<void> RequestHandler::get() { throw HTTPError(405); }
Future<void> RequestHandler::head() { throw HTTPError(405); }
Future<void> RequestHandler::post() { throw HTTPError(405); }
Future<void> RequestHandler::delete_() { throw HTTPError(405); }
Future<void> RequestHandler::patch() { throw HTTPError(405); }
Future<void> RequestHandler::put() { throw HTTPError(405); }

Future<void> RequestHandler::options() {
  set_header("Allow", allowed_methods());
  set_status(204);
  finish();
  return Future<void>(nullptr);
}

void RequestHandler::on_finish() {}
void RequestHandler::on_connection_close() {}
Future<void> RequestHandler::data_received(std::string_view /*chunk*/) { return Future<void>(nullptr); }
std::optional<std::string> RequestHandler::get_current_user() { return std::nullopt; }
void RequestHandler::set_default_headers() {}
std::string RequestHandler::get_template_path() { return settings().template_path; }

std::string RequestHandler::get_login_url() {
  const std::string& url = settings().login_url;
  if (url.empty()) throw std::logic_error("the login_url setting is needed by authenticated()");
  return url;
}

bool RequestHandler::supports_method(std::string_view method) const {
  unsigned b = methods::bit(method);
  if (b == methods::kHead) return (methods_ & (methods::kHead | methods::kGet)) != 0;
  return (b & methods_) != 0;
}

std::string RequestHandler::allowed_methods() const { return methods::allow_header(methods_); }

Future<void> RequestHandler::execute_verb() {
  switch (methods::bit(request_->method)) {
    case methods::kGet: return get();
    case methods::kHead: return (methods_ & methods::kHead) ? head() : get();
    case methods::kPost: return post();
    case methods::kDelete: return delete_();
    case methods::kPatch: return patch();
    case methods::kPut: return put();
    case methods::kOptions: return options();
    default: throw HTTPError(405);
  }
}

// --- the lifecycle ------------------------------------------------------------------------------

Future<void> RequestHandler::execute() {
  std::exception_ptr error;
  try {
    std::string_view method = request_->method;
    if (!supports_method(method)) throw HTTPError(405);
    if (settings().xsrf_cookies && method != "GET" && method != "HEAD" && method != "OPTIONS") {
      check_xsrf_cookie();
    }
    Future<void> prepared = prepare();
    if (prepared.valid()) co_await prepared;
    prepared_ = true;
    if (delegate_) delegate_->handler_prepared();
    if (!finished_) {
      if (delegate_ && delegate_->streaming()) co_await delegate_->body_done();
      if (!finished_) {
        Future<void> verb = execute_verb();
        if (verb.valid()) co_await verb;
        if (!finished_ && !detached_) finish();
      }
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) handle_exception(error);
  if (!prepared_ && delegate_) delegate_->handler_prepared();  // let the connection go on
  if (!on_finish_called_) call_on_finish();
}

void RequestHandler::call_on_finish() noexcept {
  on_finish_called_ = true;
  try {
    on_finish();
  } catch (const std::exception& e) {
    log::app().error("Exception in on_finish of {}: {}", request_summary(), e.what());
  } catch (...) {
    log::app().error("Exception in on_finish of {}", request_summary());
  }
}

http::HTTP1ServerConnection& RequestHandler::server_connection() const {
  if (!delegate_) throw std::logic_error("this handler was not made by an Application");
  return delegate_->server_connection();
}

bool RequestHandler::client_gone() const noexcept {
  return connection_closed_ || (delegate_ && delegate_->closed());
}

// --- errors -------------------------------------------------------------------------------------

void RequestHandler::handle_exception(std::exception_ptr error) {
  bool finish_requested = false;
  try {
    std::rethrow_exception(error);
  } catch (const Finish&) {
    finish_requested = true;
  } catch (...) {
  }
  if (finish_requested) {
    if (!finished_ && !detached_) {
      try {
        finish();
      } catch (const std::exception& e) {
        log::app().error("Exception finishing {}: {}", request_summary(), e.what());
      }
    }
    return;
  }
  if (client_gone() && is_client_gone_error(error)) {
    log::general().debug("{}: client went away", request_summary());
    return;
  }
  log_exception(error);
  if (finished_ || detached_ || client_gone()) return;
  int status = 500;
  try {
    std::rethrow_exception(error);
  } catch (const HTTPError& e) {
    status = e.status();
  } catch (...) {
  }
  send_error(status, error);
}

void RequestHandler::log_exception(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const HTTPError& e) {
    if (!e.log_message().empty()) log::general().warn("{} {}: {}", e.status(), request_summary(), e.log_message());
  } catch (const std::exception& e) {
    log::app().error("Uncaught exception {}\n{}: {}", request_summary(), current_exception_type(), e.what());
  } catch (...) {
    log::app().error("Uncaught exception {}\n{}", request_summary(), current_exception_type());
  }
}

void RequestHandler::send_error(int status, std::exception_ptr error) {
  if (headers_written_) {
    log::general().error("Cannot send error response after headers written ({})", request_summary());
    if (!finished_) {
      // The client cannot tell a cut response from a whole one unless the
      // connection ends (Tornado finishes it instead).
      finished_ = true;
      if (delegate_ && !client_gone()) delegate_->server_connection().close();
      if (application_) application_->log_request(*this);
    }
    return;
  }
  clear();
  std::string reason;
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const HTTPError& e) {
      reason = e.reason();
    } catch (...) {
    }
  }
  if (status < 100 || status > 599) {
    status = 500;
    reason.clear();
  }
  try {
    set_status(status, reason);
  } catch (const std::invalid_argument&) {
    set_status(status);  // a reason phrase with CR/LF
  }
  if (status == 405) set_header("Allow", allowed_methods());
  try {
    write_error(status, error);
  } catch (const std::exception& e) {
    log::app().error("Uncaught exception in write_error of {}: {}", request_summary(), e.what());
  }
  if (!finished_) finish();
}

void RequestHandler::write_error(int status, std::exception_ptr error) {
  if (settings().serve_traceback && error) {
    // C++ keeps no traceback: the exception's type and message stand in.
    std::string text;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      text = current_exception_type() + ": " + e.what() + "\n";
    } catch (...) {
      text = current_exception_type() + "\n";
    }
    set_header("Content-Type", "text/plain; charset=UTF-8");
    write(text);
    return;
  }
  std::string reason = extras_ && !extras_->reason.empty() ? extras_->reason : std::string(http::responses(status));
  std::string message = std::to_string(status) + ": " + xhtml_escape(reason);
  write("<html><title>" + message + "</title><body>" + message + "</body></html>");
}

std::string RequestHandler::request_summary() const {
  if (!request_) return "(no request)";
  return request_->method + " " + request_->uri + " (" + request_->remote_ip + ")";
}

// --- arguments ----------------------------------------------------------------------------------

const http::QueryArguments& RequestHandler::query_arguments() { return request_->query_arguments(); }

void RequestHandler::parse_body_arguments() {
  Extras& x = extras();
  if (x.body_arguments) return;
  http::QueryArguments arguments;
  http::Files files;
  try {
    http::parse_body_arguments(request_->headers.get("Content-Type", ""), request_->body, arguments, files);
  } catch (const http::HTTPInputError& e) {
    throw HTTPError(400, std::string("Invalid request body: ") + e.what());
  }
  x.body_arguments = std::move(arguments);
  x.files = std::move(files);
}

const http::QueryArguments& RequestHandler::body_arguments() {
  if (request_->body.empty() && !(extras_ && extras_->body_arguments)) return empty_arguments();
  parse_body_arguments();
  return *extras_->body_arguments;
}

const http::Files& RequestHandler::files() {
  if (request_->body.empty() && !(extras_ && extras_->body_arguments)) return empty_files();
  parse_body_arguments();
  return extras_->files;
}

const std::string* RequestHandler::find_argument(const http::QueryArguments& args, std::string_view name) const {
  auto it = args.find(std::string(name));
  if (it == args.end() || it->second.empty()) return nullptr;
  return &it->second.back();
}

std::string RequestHandler::clean_argument(std::string_view name, std::string_view value, bool strip) const {
  // Tornado's decode_argument (UTF-8 or 400) and _get_arguments (control
  // characters but \t\n\v\f\r replaced by spaces, then strip()).
  if (!valid_utf8(value)) {
    throw HTTPError(400, "Invalid unicode in " + std::string(name) + ": " + short_repr(value));
  }
  std::string out(value);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x08 || (u >= 0x0E && u <= 0x1F)) c = ' ';
  }
  if (strip) {
    constexpr std::string_view kSpace = " \t\n\r\v\f";
    std::size_t b = out.find_first_not_of(kSpace);
    if (b == std::string::npos) return {};
    std::size_t e = out.find_last_not_of(kSpace);
    return out.substr(b, e - b + 1);
  }
  return out;
}

std::string RequestHandler::get_argument(std::string_view name) {
  auto v = get_argument(name, std::nullopt, true);
  if (!v) throw MissingArgumentError(std::string(name));
  return std::move(*v);
}

std::string RequestHandler::get_argument(std::string_view name, std::string_view default_value, bool strip) {
  auto v = get_argument(name, std::nullopt, strip);
  return v ? std::move(*v) : std::string(default_value);
}

std::optional<std::string> RequestHandler::get_argument(std::string_view name, std::nullopt_t, bool strip) {
  // The last value wins; body values come after the query's (Tornado's
  // request.arguments).
  const std::string* v = find_argument(body_arguments(), name);
  if (!v) v = find_argument(query_arguments(), name);
  if (!v) return std::nullopt;
  return clean_argument(name, *v, strip);
}

std::vector<std::string> RequestHandler::get_arguments(std::string_view name, bool strip) {
  std::vector<std::string> out = get_query_arguments(name, strip);
  std::vector<std::string> body = get_body_arguments(name, strip);
  out.insert(out.end(), std::make_move_iterator(body.begin()), std::make_move_iterator(body.end()));
  return out;
}

std::string RequestHandler::get_query_argument(std::string_view name) {
  auto v = get_query_argument(name, std::nullopt, true);
  if (!v) throw MissingArgumentError(std::string(name));
  return std::move(*v);
}

std::string RequestHandler::get_query_argument(std::string_view name, std::string_view default_value, bool strip) {
  auto v = get_query_argument(name, std::nullopt, strip);
  return v ? std::move(*v) : std::string(default_value);
}

std::optional<std::string> RequestHandler::get_query_argument(std::string_view name, std::nullopt_t, bool strip) {
  const std::string* v = find_argument(query_arguments(), name);
  if (!v) return std::nullopt;
  return clean_argument(name, *v, strip);
}

std::vector<std::string> RequestHandler::get_query_arguments(std::string_view name, bool strip) {
  std::vector<std::string> out;
  const http::QueryArguments& args = query_arguments();
  auto it = args.find(std::string(name));
  if (it != args.end()) {
    for (const std::string& v : it->second) out.push_back(clean_argument(name, v, strip));
  }
  return out;
}

std::string RequestHandler::get_body_argument(std::string_view name) {
  auto v = get_body_argument(name, std::nullopt, true);
  if (!v) throw MissingArgumentError(std::string(name));
  return std::move(*v);
}

std::string RequestHandler::get_body_argument(std::string_view name, std::string_view default_value, bool strip) {
  auto v = get_body_argument(name, std::nullopt, strip);
  return v ? std::move(*v) : std::string(default_value);
}

std::optional<std::string> RequestHandler::get_body_argument(std::string_view name, std::nullopt_t, bool strip) {
  const std::string* v = find_argument(body_arguments(), name);
  if (!v) return std::nullopt;
  return clean_argument(name, *v, strip);
}

std::vector<std::string> RequestHandler::get_body_arguments(std::string_view name, bool strip) {
  std::vector<std::string> out;
  const http::QueryArguments& args = body_arguments();
  auto it = args.find(std::string(name));
  if (it != args.end()) {
    for (const std::string& v : it->second) out.push_back(clean_argument(name, v, strip));
  }
  return out;
}

std::string RequestHandler::reverse_url_list(std::string_view name, const std::vector<std::string>& args) const {
  return application_->reverse_url_list(name, args);
}

std::string RequestHandler::static_url(std::string_view path, bool include_host, bool include_version) const {
  const Settings& s = settings();
  std::string url = s.make_static_url ? s.make_static_url(s, path, include_version)
                                      : s.static_url_prefix + std::string(path);
  if (include_host) url = request_->protocol + "://" + request_->host + url;
  return url;
}

}  // namespace squall::web
