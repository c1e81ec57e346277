#include "squall/websocket/handler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "squall/core/log.hpp"
#include "squall/http/http1connection.hpp"
#include "squall/http/url.hpp"
#include "squall/web/application.hpp"
#include "squall/websocket/handshake.hpp"

namespace squall::websocket {

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// Response headers of the handler that must not reach a 101 (they belong
/// to the handshake or to a body there is none of).
bool kept_in_101(std::string_view name) {
  for (std::string_view skip : {"Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade",
                                "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"}) {
    if (http::iequals(name, skip)) return false;
  }
  return true;
}

}  // namespace

/// The connection's view of the handler.
class WebSocketHandler::Events final : public ConnectionDelegate {
 public:
  explicit Events(WebSocketHandler& h) : h_(h) {}
  Future<void> on_message(Message message) override { return h_.on_message(std::move(message)); }
  void on_ping(std::string_view data) override { h_.on_ping(data); }
  void on_pong(std::string_view data) override { h_.on_pong(data); }
  void on_connection_close() override {
    if (h_.on_close_called_) return;
    h_.on_close_called_ = true;
    h_.on_close();
  }

 private:
  WebSocketHandler& h_;
};

WebSocketHandler::WebSocketHandler() = default;

WebSocketHandler::~WebSocketHandler() {
  if (conn_) {
    conn_->set_delegate(nullptr);
    conn_->abort();
  }
}

Future<void> WebSocketHandler::open() { return Future<void>(nullptr); }
void WebSocketHandler::on_ping(std::string_view) {}
void WebSocketHandler::on_pong(std::string_view) {}

std::optional<std::string> WebSocketHandler::select_subprotocol(const std::vector<std::string>&) {
  return std::nullopt;
}

bool WebSocketHandler::check_origin(std::string_view origin) {
  // Tornado's default: the origin's network location must be the Host.
  std::string netloc;
  try {
    std::string text(origin);
    http::SplitURL u = http::split_url(text);
    if (u.host.empty()) return false;  // "null", or not a URL
    bool ipv6 = u.host.find(':') != std::string_view::npos;
    netloc = ipv6 ? "[" + std::string(u.host) + "]" : std::string(u.host);
    if (u.port) netloc += ":" + std::to_string(*u.port);
  } catch (const std::invalid_argument&) {
    return false;
  }
  auto host = request().headers.get("Host");
  return host && http::iequals(netloc, trim(*host));
}

std::optional<CompressionOptions> WebSocketHandler::get_compression_options() { return std::nullopt; }

WebSocketOptions WebSocketHandler::get_websocket_options() {
  WebSocketOptions o;
  const web::WebSocketSettings& s = settings().websocket;
  o.max_message_size = s.max_message_size;
  o.ping_interval = s.ping_interval;
  o.ping_timeout = s.ping_timeout;
  return o;
}

bool WebSocketHandler::supports_method(std::string_view method) const { return method == "GET"; }
std::string WebSocketHandler::allowed_methods() const { return "GET"; }

// --- the handshake ------------------------------------------------------------------------------

std::string WebSocketHandler::check_handshake(int& status) {
  // RFC 6455 section 4.2.1, in Tornado's order and with its messages.
  const http::HTTPHeaders& h = request().headers;
  status = 400;
  if (request().version != "HTTP/1.1") return "WebSocket needs HTTP/1.1";
  auto upgrade = h.get("Upgrade");
  if (!upgrade || !has_token(h.get_joined("Upgrade"), "websocket")) return "Can \"Upgrade\" only to \"WebSocket\".";
  if (!has_token(h.get_joined("Connection"), "upgrade")) return "\"Connection\" must be \"Upgrade\".";
  auto version = h.get("Sec-WebSocket-Version");
  if (!version || trim(*version) != kWebSocketVersion) {
    status = 426;
    return "Unsupported WebSocket version";
  }
  auto key = h.get("Sec-WebSocket-Key");
  if (!key || h.count("Sec-WebSocket-Key") != 1 || !is_valid_key(*key)) return "Missing/Invalid WebSocket headers";
  if (auto origin = h.get("Origin"); origin && !check_origin(*origin)) {
    status = 403;
    return "Cross origin websockets not allowed";
  }
  status = 0;
  return {};
}

void WebSocketHandler::send_101(const std::optional<DeflateAgreement>& deflate) {
  const http::HTTPHeaders& h = request().headers;
  std::string out =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  out += compute_accept_key(*h.get("Sec-WebSocket-Key"));
  out += "\r\n";
  if (!subprotocol_.empty()) out += "Sec-WebSocket-Protocol: " + subprotocol_ + "\r\n";
  if (deflate) out += "Sec-WebSocket-Extensions: " + deflate->response + "\r\n";
  for (auto field : response_headers()) {
    if (!kept_in_101(field.name)) continue;
    out.append(field.name).append(": ").append(field.value).append("\r\n");
  }
  out += "\r\n";
  // From here the connection's stream is ours: the HTTP connection waits
  // for this handler to end and writes nothing meanwhile.
  detach_response();
  server_connection().stream()->write(std::move(out));
  set_status(101);
  application().log_request(*this);
}

Future<void> WebSocketHandler::get() {
  int status = 0;
  std::string refused = check_handshake(status);
  if (!refused.empty()) {
    log::general().debug("WebSocket handshake refused ({}): {}", status, refused);
    set_status(status);
    if (status == 426) set_header("Sec-WebSocket-Version", kWebSocketVersion);
    finish(refused);
    co_return;
  }
  const http::HTTPHeaders& h = request().headers;
  std::vector<std::string> offered = split_header_list(h.get_joined("Sec-WebSocket-Protocol"));
  if (!offered.empty()) {
    if (auto chosen = select_subprotocol(offered)) {
      if (std::find(offered.begin(), offered.end(), *chosen) == offered.end()) {
        throw std::logic_error("select_subprotocol returned a subprotocol the client did not offer: " + *chosen);
      }
      subprotocol_ = std::move(*chosen);
    }
  }
  std::optional<CompressionOptions> compression = get_compression_options();
  std::optional<DeflateAgreement> deflate;
  if (compression) {
    if (auto offers = parse_extensions(h.get_joined("Sec-WebSocket-Extensions"))) {
      deflate = accept_deflate_offer(*offers, *compression);
    }
  }
  WebSocketOptions options = get_websocket_options();
  send_101(deflate);

  std::optional<DeflateParameters> params;
  if (deflate) params = deflate->params;
  conn_ = std::make_shared<WebSocketConnection>(*server_connection().stream(), Role::kServer, options, params,
                                                compression.value_or(CompressionOptions{}));
  events_ = std::make_unique<Events>(*this);

  // open() runs before any message is read (Tornado's order).
  std::exception_ptr error;
  Future<void> opened(nullptr);
  try {
    opened = open();
  } catch (...) {
    error = std::current_exception();
  }
  if (!error && opened.valid()) {
    try {
      co_await opened;
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log::app().error("Uncaught exception in WebSocket open of {}: {}", request_summary(), e.what());
    } catch (...) {
      log::app().error("Uncaught exception in WebSocket open of {}", request_summary());
    }
    conn_->abort();
  }
  conn_->start(events_.get());
  // The handler, and the HTTP connection that owns the stream, live until
  // the WebSocket is over. A cancellation (the client left, with the
  // cancel_on_disconnect setting) does not cut this wait short: the
  // connection ends by itself at once then.
  for (;;) {
    bool cancelled = false;
    try {
      co_await conn_->wait_closed();
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (!cancelled) break;
  }
}

void WebSocketHandler::on_connection_close() {
  if (conn_) conn_->stream_closed();
}

// --- for subclasses -------------------------------------------------------------------------------

namespace {
Future<void> not_open() {
  Future<void> f;
  f.set_exception(std::make_exception_ptr(WebSocketClosedError("WebSocket is not open")));
  (void)f.exception();
  return f;
}
}  // namespace

Future<void> WebSocketHandler::write_message(std::string_view message, bool binary) {
  return conn_ ? conn_->write_message(message, binary) : not_open();
}
Future<void> WebSocketHandler::write_message(std::string&& message, bool binary) {
  return conn_ ? conn_->write_message(std::move(message), binary) : not_open();
}
Future<void> WebSocketHandler::write_message(const PreparedMessage& message) {
  return conn_ ? conn_->write_message(message) : not_open();
}
Future<void> WebSocketHandler::ping(std::string_view data) { return conn_ ? conn_->ping(data) : not_open(); }
void WebSocketHandler::close(std::optional<int> code, std::string_view reason) {
  if (conn_) conn_->close(code, reason);
}
std::optional<int> WebSocketHandler::close_code() const noexcept {
  return conn_ ? conn_->close_code() : std::nullopt;
}
const std::string& WebSocketHandler::close_reason() const noexcept {
  static const std::string kEmpty;
  return conn_ ? conn_->close_reason() : kEmpty;
}
bool WebSocketHandler::is_closing() const noexcept { return !conn_ || conn_->is_closing(); }

}  // namespace squall::websocket
