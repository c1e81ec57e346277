#include "squall/websocket/client.hpp"

#include <deque>
#include <stdexcept>

#include "squall/core/gen.hpp"
#include "squall/http/parser.hpp"
#include "squall/http/url.hpp"
#include "squall/net/ssl_iostream.hpp"
#include "squall/net/tcpclient.hpp"
#include "squall/websocket/handshake.hpp"

namespace squall::websocket {

// --- the connection's delegate ---------------------------------------------------------------------

struct WebSocketClientConnection::State final : ConnectionDelegate {
  std::shared_ptr<WebSocketConnection> conn;
  std::function<void(std::optional<Message>)> callback;
  std::optional<Message> ready;                                // a message nobody read yet
  Future<std::optional<Message>> reader{nullptr};              // a read_message() waiting
  Future<void> taken{nullptr};                                 // the socket waits for `ready` to be read
  bool closed = false;
  http::HTTPHeaders headers;
  std::string subprotocol;
  std::optional<DeflateParameters> deflate;

  ~State() override {
    // Let a reading loop that waits for a reader go on (it then finds the
    // delegate gone) rather than be abandoned with its frame.
    release_socket();
  }

  void release_socket() {
    if (taken.valid() && !taken.done()) {
      Future<void> t = std::move(taken);
      taken = Future<void>(nullptr);
      t.set_result();
    }
  }

  Future<void> on_message(Message message) override {
    if (callback) {
      callback(std::move(message));
      return Future<void>(nullptr);
    }
    if (reader.valid() && !reader.done()) {
      Future<std::optional<Message>> r = std::move(reader);
      reader = Future<std::optional<Message>>(nullptr);
      r.set_result(std::optional<Message>(std::move(message)));
      return Future<void>(nullptr);
    }
    ready = std::move(message);
    taken = Future<void>();
    return taken;
  }

  void on_connection_close() override {
    closed = true;
    if (callback) {
      callback(std::nullopt);
    } else if (reader.valid() && !reader.done()) {
      Future<std::optional<Message>> r = std::move(reader);
      reader = Future<std::optional<Message>>(nullptr);
      r.set_result(std::optional<Message>());
    }
  }

  Future<std::optional<Message>> read() {
    if (callback) throw std::logic_error("read_message() with an on_message callback");
    if (reader.valid() && !reader.done()) throw std::logic_error("read_message() while another read is pending");
    if (ready) {
      std::optional<Message> m = std::move(ready);
      ready.reset();
      release_socket();
      return make_ready_future(std::move(m));
    }
    if (closed) return make_ready_future(std::optional<Message>());
    reader = Future<std::optional<Message>>();
    return reader;
  }
};

WebSocketClientConnection::WebSocketClientConnection(std::shared_ptr<State> state) noexcept
    : state_(std::move(state)) {}
WebSocketClientConnection::WebSocketClientConnection(WebSocketClientConnection&&) noexcept = default;
WebSocketClientConnection& WebSocketClientConnection::operator=(WebSocketClientConnection&& other) noexcept {
  if (this != &other) {
    WebSocketClientConnection old(std::move(*this));
    state_ = std::move(other.state_);
  }
  return *this;
}

WebSocketClientConnection::~WebSocketClientConnection() {
  if (!state_) return;
  WebSocketConnection& c = *state_->conn;
  if (!c.is_closing()) {
    try {
      c.close(close_code::kGoingAway);
    } catch (const std::exception&) {
    }
  }
  c.set_delegate(nullptr);
}

Future<std::optional<Message>> WebSocketClientConnection::read_message() { return state_->read(); }
Future<void> WebSocketClientConnection::write_message(std::string_view message, bool binary) {
  return state_->conn->write_message(message, binary);
}
Future<void> WebSocketClientConnection::write_message(std::string&& message, bool binary) {
  return state_->conn->write_message(std::move(message), binary);
}
Future<void> WebSocketClientConnection::ping(std::string_view data) { return state_->conn->ping(data); }
void WebSocketClientConnection::close(std::optional<int> code, std::string_view reason) {
  state_->conn->close(code, reason);
}
Future<void> WebSocketClientConnection::wait_closed() { return state_->conn->wait_closed(); }
std::optional<int> WebSocketClientConnection::close_code() const noexcept { return state_->conn->close_code(); }
const std::string& WebSocketClientConnection::close_reason() const noexcept { return state_->conn->close_reason(); }
const std::string& WebSocketClientConnection::selected_subprotocol() const noexcept { return state_->subprotocol; }
const http::HTTPHeaders& WebSocketClientConnection::headers() const noexcept { return state_->headers; }
const std::optional<DeflateParameters>& WebSocketClientConnection::deflate_parameters() const noexcept {
  return state_->deflate;
}
WebSocketConnection& WebSocketClientConnection::connection() const noexcept { return *state_->conn; }

// --- connecting --------------------------------------------------------------------------------------

namespace {

struct Target {
  bool tls = false;
  std::string host;
  int port = 0;
  std::string host_header;  // host[:port] as the Host field wants it
  std::string resource;     // path?query
};

Target parse_target(const std::string& url) {
  http::SplitURL u = http::split_url(url);
  Target t;
  if (http::iequals(u.scheme, "ws") || http::iequals(u.scheme, "http")) {
    t.tls = false;
  } else if (http::iequals(u.scheme, "wss") || http::iequals(u.scheme, "https")) {
    t.tls = true;
  } else {
    throw std::invalid_argument("not a WebSocket URL: " + url);
  }
  if (u.host.empty()) throw std::invalid_argument("no host in URL: " + url);
  if (!u.fragment.empty()) throw std::invalid_argument("a WebSocket URL has no fragment: " + url);
  t.host = std::string(u.host);
  int default_port = t.tls ? 443 : 80;
  t.port = u.port ? *u.port : default_port;
  bool ipv6 = t.host.find(':') != std::string::npos;
  t.host_header = ipv6 ? "[" + t.host + "]" : t.host;
  if (t.port != default_port) t.host_header += ":" + std::to_string(t.port);
  t.resource = u.path.empty() ? "/" : std::string(u.path);
  if (!u.query.empty()) t.resource += "?" + std::string(u.query);
  return t;
}

std::string build_request(const Target& t, const http::HTTPHeaders& extra, const std::string& key,
                          const WebSocketConnectOptions& options) {
  http::HTTPHeaders h;
  h.add("Host", t.host_header);
  h.add("Upgrade", "websocket");
  h.add("Connection", "Upgrade");
  h.add("Sec-WebSocket-Key", key);
  h.add("Sec-WebSocket-Version", kWebSocketVersion);
  if (!options.subprotocols.empty()) {
    std::string list;
    for (const auto& p : options.subprotocols) {
      if (!list.empty()) list += ", ";
      list += p;
    }
    h.add("Sec-WebSocket-Protocol", list);
  }
  if (options.compression) h.add("Sec-WebSocket-Extensions", deflate_offer(*options.compression));
  for (auto field : extra) {
    // The handshake's own fields are ours to set.
    if (h.contains(field.name) && !http::iequals(field.name, "Host")) continue;
    if (http::iequals(field.name, "Host")) {
      h.set("Host", field.value);
    } else {
      h.add(field.name, field.value);
    }
  }
  std::string out = "GET " + t.resource + " HTTP/1.1\r\n";
  h.write_to(out);
  out += "\r\n";
  return out;
}

struct Handshake {
  std::unique_ptr<net::IOStream> stream;
  http::HTTPHeaders headers;
  std::string subprotocol;
  std::optional<DeflateParameters> deflate;
};

/// Sends the request and checks the 101 answer (RFC 6455 section 4.1).
Future<Handshake> handshake(std::unique_ptr<net::IOStream> stream, std::string request, std::string key,
                            const WebSocketConnectOptions* options) {
  co_await stream->write(std::move(request));
  std::size_t scanned = 0, end;
  while ((end = http::find_head_end(stream->buffered(), scanned)) == std::string_view::npos) {
    if (stream->buffered().size() > options->max_header_size) {
      throw WebSocketHandshakeError(0, "WebSocket handshake response head too large");
    }
    co_await stream->read_more();
  }
  Handshake hs;
  http::ResponseStartLine line;
  http::ParserLimits limits;
  limits.max_header_size = options->max_header_size;
  http::ParseResult p = http::parse_response_head(stream->buffered().substr(0, end), line, hs.headers, limits);
  if (p.status != http::ParseStatus::kComplete) {
    throw WebSocketHandshakeError(0, std::string("malformed WebSocket handshake response: ") +
                                         (p.error ? p.error : "incomplete"));
  }
  int code = line.code;
  std::string reason(line.reason);
  stream->consume(end);  // frames the server sent right after stay buffered
  if (code != 101) {
    throw WebSocketHandshakeError(code, "WebSocket handshake refused: " + std::to_string(code) + " " + reason,
                                  std::move(hs.headers));
  }
  auto refuse = [&](const std::string& why) { return WebSocketHandshakeError(101, why, hs.headers); };
  auto upgrade = hs.headers.get("Upgrade");
  if (!upgrade || !has_token(*upgrade, "websocket")) throw refuse("101 response without Upgrade: websocket");
  std::string connection = hs.headers.get_joined("Connection");
  if (!has_token(connection, "upgrade")) throw refuse("101 response without Connection: upgrade");
  auto accept = hs.headers.get("Sec-WebSocket-Accept");
  if (!accept || *accept != compute_accept_key(key)) {
    throw refuse("wrong Sec-WebSocket-Accept");
  }
  if (auto proto = hs.headers.get("Sec-WebSocket-Protocol")) {
    std::string chosen(*proto);
    bool offered = false;
    for (const auto& p2 : options->subprotocols) offered = offered || p2 == chosen;
    if (!offered) throw refuse("the server chose a subprotocol that was not offered: " + chosen);
    hs.subprotocol = std::move(chosen);
  }
  std::string extensions = hs.headers.get_joined("Sec-WebSocket-Extensions");
  if (!extensions.empty()) {
    auto list = parse_extensions(extensions);
    if (!list) throw refuse("malformed Sec-WebSocket-Extensions");
    if (!list->empty()) {
      if (!options->compression) throw refuse("the server answered with an extension that was not offered");
      if (list->size() != 1) throw refuse("the server accepted more than one extension");
      try {
        hs.deflate = accept_deflate_response(list->front(), *options->compression);
      } catch (const WebSocketError& e) {
        throw refuse(e.what());
      }
    }
  }
  hs.stream = std::move(stream);
  co_return hs;
}

Future<WebSocketClientConnection> connect(http::HTTPRequest request, WebSocketConnectOptions options) {
  Target target = parse_target(request.url);
  std::string key = generate_key();
  std::string head = build_request(target, request.headers, key, options);

  net::TCPClient tcp(options.resolver);
  net::ConnectOptions connect_options;
  connect_options.timeout = request.connect_timeout;
  std::unique_ptr<net::IOStream> stream = co_await tcp.connect(target.host, target.port, connect_options);
  if (target.tls) {
    std::shared_ptr<net::SSLContext> ctx = options.ssl_context;
    if (!ctx) {
      net::SSLOptions ssl;
      ssl.ca_certs = request.ca_certs;
      ssl.verify_peer = request.validate_cert;
      ssl.check_hostname = request.validate_cert;
      ssl.certfile = request.client_cert;
      ssl.keyfile = request.client_key;
      ctx = net::SSLContext::client(ssl);
    }
    Future<std::unique_ptr<net::SSLIOStream>> tls = net::start_tls(std::move(stream), ctx, target.host);
    std::unique_ptr<net::SSLIOStream> secured = co_await squall::timeout(request.connect_timeout, std::move(tls));
    stream = std::move(secured);
  }
  Future<Handshake> shaking = handshake(std::move(stream), std::move(head), std::move(key), &options);
  Handshake hs = co_await squall::timeout(request.request_timeout, std::move(shaking));

  WebSocketOptions ws;
  ws.ping_interval = options.ping_interval;
  ws.ping_timeout = options.ping_timeout;
  ws.max_message_size = options.max_message_size;
  ws.close_timeout = options.close_timeout;
  auto state = std::make_shared<WebSocketClientConnection::State>();
  state->callback = std::move(options.on_message);
  state->headers = std::move(hs.headers);
  state->subprotocol = std::move(hs.subprotocol);
  state->deflate = hs.deflate;
  state->conn = std::make_shared<WebSocketConnection>(std::move(hs.stream), Role::kClient, ws, hs.deflate,
                                                      options.compression.value_or(CompressionOptions{}));
  state->conn->start(state.get());
  co_return WebSocketClientConnection(std::move(state));
}

}  // namespace

Future<WebSocketClientConnection> websocket_connect(std::string url, WebSocketConnectOptions options) {
  http::HTTPRequest request;
  request.url = std::move(url);
  return connect(std::move(request), std::move(options));
}

Future<WebSocketClientConnection> websocket_connect(http::HTTPRequest request, WebSocketConnectOptions options) {
  return connect(std::move(request), std::move(options));
}

}  // namespace squall::websocket
