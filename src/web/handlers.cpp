// RedirectHandler, ErrorHandler and FallbackHandler.
#include "squall/web/handlers.hpp"

#include <stdexcept>

#include "squall/core/log.hpp"
#include "squall/http/url.hpp"
#include "squall/http/http1connection.hpp"

namespace squall::web {

namespace {

/// Python's str.format for "{0}", "{name}", "{}" and "{{"/"}}" (no format
/// specs): RedirectHandler's URL templates.
std::string format_url(std::string_view fmt, const std::vector<std::string>& args,
                       const std::map<std::string, std::string, std::less<>>& kwargs) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out.push_back('}');
      ++i;
    } else if (c == '{') {
      std::size_t close = fmt.find('}', i);
      if (close == std::string_view::npos) throw std::invalid_argument("unmatched '{' in redirect URL");
      std::string_view field = fmt.substr(i + 1, close - i - 1);
      if (field.empty()) {
        if (auto_index >= args.size()) throw std::invalid_argument("redirect URL needs more groups");
        out += args[auto_index++];
      } else if (field.find_first_not_of("0123456789") == std::string_view::npos) {
        std::size_t n = std::stoul(std::string(field));
        if (n >= args.size()) throw std::invalid_argument("redirect URL names a missing group");
        out += args[n];
      } else {
        auto it = kwargs.find(field);
        if (it == kwargs.end()) throw std::invalid_argument("redirect URL names a missing group");
        out += it->second;
      }
      i = close;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

// --- RedirectHandler ------------------------------------------------------------------------------

RedirectHandler::RedirectHandler(std::string url, bool permanent) : url_(std::move(url)), permanent_(permanent) {}

Future<void> RedirectHandler::get() {
  std::string to = format_url(url_, path_args(), path_kwargs());
  if (!request().query.empty()) to = http::url_concat(to, query_arguments());
  redirect(to, permanent_);
  return Future<void>(nullptr);
}

// --- ErrorHandler -----------------------------------------------------------------------------------

ErrorHandler::ErrorHandler(int status) : status_(status) {}

Future<void> ErrorHandler::prepare() { throw HTTPError(status_); }

bool ErrorHandler::supports_method(std::string_view) const { return true; }

// --- FallbackHandler --------------------------------------------------------------------------------

FallbackHandler::FallbackHandler(Callback callback) : callback_(std::move(callback)) {
  if (!callback_) throw std::invalid_argument("FallbackHandler needs a callback");
}

FallbackHandler::FallbackHandler(std::reference_wrapper<http::HTTPServerConnectionDelegate> target)
    : target_(&target.get()) {}

FallbackHandler::~FallbackHandler() = default;

bool FallbackHandler::supports_method(std::string_view) const { return true; }

Future<void> FallbackHandler::prepare() {
  if (!target_) co_return;  // a callback wants the whole body: see execute_verb
  detach_response();
  inner_ = target_->start_request(server_connection(), *request().connection());
  http::RequestStartLine line{request().method, request().uri, request().version};
  Future<void> flow = inner_->headers_received(line, request().headers);
  if (flow.valid()) co_await flow;
}

Future<void> FallbackHandler::data_received(std::string_view chunk) {
  if (inner_) return inner_->data_received(chunk);
  request().body.append(chunk);  // the connection enforces max_body_size
  return Future<void>(nullptr);
}

void FallbackHandler::on_connection_close() {
  if (inner_) inner_->on_connection_close();
}

Future<void> FallbackHandler::execute_verb() {
  if (inner_) {
    Future<void> done = inner_->finish();
    if (done.valid()) co_await done;
    co_return;
  }
  detach_response();
  Future<void> done(nullptr);
  std::exception_ptr error;
  try {
    done = callback_(request());
    if (done.valid()) co_await done;
  } catch (...) {
    error = std::current_exception();
  }
  if (!error) co_return;
  // As HTTPServer does for its callbacks: a 500 if nothing was sent yet,
  // else the connection ends so the client sees the answer is cut.
  http::HTTP1ServerConnection& conn = server_connection();
  if (!conn.response_started()) {
    log_exception(error);
    try {
      request().respond(500, "text/html; charset=UTF-8",
                        "<html><title>500: Internal Server Error</title>"
                        "<body>500: Internal Server Error</body></html>");
    } catch (const std::exception&) {
      conn.close();
    }
    co_return;
  }
  if (!conn.response_finished()) conn.close();
  std::rethrow_exception(error);  // logged by the handler
}

}  // namespace squall::web
