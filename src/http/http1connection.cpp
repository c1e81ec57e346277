// HTTP1ServerConnection: see the header for the states of serve().
#include "squall/http/http1connection.hpp"

#include <sys/socket.h>
#include <zlib.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "squall/core/log.hpp"
#include "squall/http/httputil.hpp"
#include "squall/net/netutil.hpp"
#include "squall/net/ssl_iostream.hpp"

namespace squall::http {

namespace {

using namespace std::chrono_literals;

constexpr std::string_view kServerName = "squall";
// Lingering close after an error answer (nginx's lingering_close): how long
// and how much of the peer's unread request we swallow so that closing does
// not reset the connection before the client has read our answer (a close
// with unread input sends RST, RFC 9112 section 9.6).
constexpr Duration kLingerTime = 2s;
constexpr std::size_t kLingerBytes = 1024 * 1024;

/// The Date header's value (IMF-fixdate, RFC 9110 section 5.6.7), formatted
/// once per second per thread: every response carries it (CONFORMANCE 2.1).
std::string_view http_date() noexcept {
  struct Cache {
    std::time_t second = -1;
    char text[32] = {};
    std::size_t size = 0;
  };
  thread_local Cache cache;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);  // vDSO: no syscall
  if (now.tv_sec != cache.second) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm t{};
    ::gmtime_r(&now.tv_sec, &t);
    int n = std::snprintf(cache.text, sizeof cache.text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[t.tm_wday % 7],
                          t.tm_mday, kMonths[t.tm_mon % 12], t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
    cache.size = n > 0 ? static_cast<std::size_t>(n) : 0;
    cache.second = now.tv_sec;
  }
  return {cache.text, cache.size};
}

/// True if the comma-separated list `value` holds `token` (case-insensitive),
/// as in the Connection header (RFC 9110 section 7.6.1).
bool has_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

/// "1.2.3.4:80" → "1.2.3.4", "[::1]:80" → "::1"; unix sockets → "0.0.0.0"
/// (Tornado's choice for addresses that are not IPs).
std::string ip_of(const std::string& address) {
  if (address.empty()) return "0.0.0.0";
  if (address.front() == '[') {
    std::size_t end = address.find(']');
    return end == std::string::npos ? address : address.substr(1, end - 1);
  }
  std::size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void append_hex(std::string& out, std::size_t n) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, n, 16);
  out.append(buf, r.ptr);
}

}  // namespace

/// gzip request bodies (decompress_request), with zlib.
struct HTTP1ServerConnection::Inflater {
  z_stream z{};
  bool ok = false;
  bool ended = false;
  Inflater() { ok = inflateInit2(&z, 16 + MAX_WBITS) == Z_OK; }  // 16+: gzip wrapper only
  ~Inflater() {
    if (ok) inflateEnd(&z);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

HTTP1ServerConnection::HTTP1ServerConnection(std::unique_ptr<net::IOStream> stream, std::string address,
                                             HTTP1ConnectionParameters params)
    : stream_(std::move(stream)),
      address_(std::move(address)),
      params_(std::move(params)),
      peer_ip_(ip_of(address_)),
      watch_(std::make_shared<HTTP1ServerConnection*>(this)),
      loop_(&stream_->io_loop()) {
  if (!params_.protocol.empty()) {
    stream_protocol_ = params_.protocol;
  } else {
    stream_protocol_ = dynamic_cast<net::SSLIOStream*>(stream_.get()) ? "https" : "http";
  }
  remote_ip_ = peer_ip_;
  protocol_ = stream_protocol_;
  // The callback is deferred by the stream and may run after this object is
  // gone: it finds its way back through a weak reference.
  stream_->set_close_callback([w = std::weak_ptr<HTTP1ServerConnection*>(watch_)] {
    if (auto self = w.lock()) (*self)->on_stream_close();
  });
}

HTTP1ServerConnection::~HTTP1ServerConnection() { disarm_timer(); }

bool HTTP1ServerConnection::idle() const noexcept {
  return phase_ == Phase::kHead && !msg_ && (!stream_ || stream_->buffered().empty());
}

void HTTP1ServerConnection::close() {
  if (stream_ && !stream_->closed()) stream_->close();  // resolves serve's wait: touch nothing after
}

void HTTP1ServerConnection::close_when_idle() {
  closing_ = true;
  if (idle()) close();
}

// --- timers -----------------------------------------------------------------------------

void HTTP1ServerConnection::arm_timer(TimePoint when) {
  disarm_timer();
  timer_ = loop_->call_at(when, [this] {
    timer_ = {};
    on_timer();
  });
}

void HTTP1ServerConnection::disarm_timer() noexcept {
  if (timer_.valid()) {
    loop_->remove_timeout(timer_);
    timer_ = {};
  }
}

void HTTP1ServerConnection::on_timer() {
  if (!stream_ || stream_->closed()) return;
  TimePoint now = loop_->time();
  if (phase_ == Phase::kHead) {
    // The head deadline is absolute (slow-loris, CONFORMANCE 2.6); the idle
    // deadline only applies while no byte of a request has arrived.
    bool started = !stream_->buffered().empty();
    if (now >= head_deadline_ || (!started && now >= idle_deadline_)) {
      stream_->close();  // serve() resumes inside: touch nothing after
      return;
    }
    arm_timer(started ? head_deadline_ : std::min(head_deadline_, idle_deadline_));
  } else if (phase_ == Phase::kBody) {
    if (now - last_data_ >= params_.body_timeout) {
      spdlog::logger& log = log::general();
      log.info("Timeout reading body from {}", address_);
      stream_->close();
      return;
    }
    arm_timer(last_data_ + params_.body_timeout);
  }
}

// --- closing ------------------------------------------------------------------------------

void HTTP1ServerConnection::on_stream_close() {
  notify_close();
  wake();
}

void HTTP1ServerConnection::notify_close() {
  if (!msg_ || close_notified_ || response_finished_) return;
  close_notified_ = true;
  try {
    msg_->on_connection_close();
  } catch (const std::exception& e) {
    log::app().error("Exception in on_connection_close: {}", e.what());
  }
}

void HTTP1ServerConnection::wake() {
  if (!waiting_ || !wake_.valid() || wake_.done()) return;
  // Resume serve() from the loop, never inside the caller's finish(): the
  // caller may still be using the request that serve() would now destroy.
  loop_->add_callback([w = std::weak_ptr<HTTP1ServerConnection*>(watch_)] {
    auto self = w.lock();
    if (!self) return;
    HTTP1ServerConnection& c = **self;
    if (c.wake_.valid() && !c.wake_.done()) {
      Future<void> f = std::move(c.wake_);
      c.wake_ = Future<void>(nullptr);
      f.set_result();
    }
  });
}

// --- serving -------------------------------------------------------------------------------

Future<void> HTTP1ServerConnection::serve(HTTPServerConnectionDelegate& delegate) {
  try {
    co_await serve_loop(delegate);
  } catch (const std::exception& e) {
    log::general().error("Uncaught exception serving {}: {}", address_, e.what());
  }
  disarm_timer();
  phase_ = Phase::kDone;
  notify_close();
  msg_.reset();
  inflater_.reset();
  if (stream_ && !stream_->closed()) stream_->close();
  try {
    delegate.on_close(*this);
  } catch (const std::exception& e) {
    log::app().error("Exception in on_close: {}", e.what());
  }
}

Future<void> HTTP1ServerConnection::serve_loop(HTTPServerConnectionDelegate& delegate) {
  for (;;) {
    bool keep_alive = co_await serve_request(delegate);
    // Let the last response reach the kernel before closing or reading on
    // (back-pressure for pipelining clients that do not read).
    if (last_write_.valid() && !last_write_.done() && stream_ && !stream_->closed()) {
      try {
        co_await last_write_;
      } catch (const net::StreamClosedError&) {
        keep_alive = false;
      }
    }
    last_write_ = Future<void>(nullptr);
    if (!keep_alive || !stream_ || stream_->closed()) break;
  }
  if (stream_ && !stream_->closed() && body_unread_) {
    // Lingering close: the peer may still be sending the request we
    // refused; swallow some of it so our answer is not lost to a reset.
    ::shutdown(stream_->fileno(), SHUT_WR);
    phase_ = Phase::kDone;
    TimePoint until = loop_->time() + kLingerTime;
    timer_ = loop_->call_at(until, [this] {
      timer_ = {};
      if (stream_ && !stream_->closed()) stream_->close();
    });
    std::size_t swallowed = 0;
    while (stream_ && !stream_->closed() && swallowed < kLingerBytes) {
      swallowed += stream_->buffered().size();
      stream_->consume(stream_->buffered().size());
      try {
        co_await stream_->read_more();
      } catch (const net::StreamClosedError&) {
        break;
      }
    }
    disarm_timer();
  }
}

void HTTP1ServerConnection::apply_xheaders(const HTTPHeaders& headers) {
  // Tornado's _apply_xheaders: the client's address from the proxy, the
  // right-most X-Forwarded-For entry that is not a trusted downstream proxy.
  std::string ip;
  if (auto real = headers.get("X-Real-Ip")) {
    ip = std::string(trim(*real));
  } else if (headers.contains("X-Forwarded-For")) {
    std::string all = headers.get_joined("X-Forwarded-For");
    std::string_view rest(all);
    std::string_view pick;
    while (!rest.empty()) {
      std::size_t comma = rest.rfind(',');
      std::string_view item = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
      pick = item;
      bool trusted = std::find(params_.trusted_downstream.begin(), params_.trusted_downstream.end(), item) !=
                     params_.trusted_downstream.end();
      if (!trusted) break;
    }
    ip = std::string(pick);
  }
  if (!ip.empty() && net::is_valid_ip(ip)) remote_ip_ = std::move(ip);
  std::string_view proto = headers.get("X-Scheme", headers.get("X-Forwarded-Proto", ""));
  if (!proto.empty()) {
    // Several proxies append: the last is the one next to us.
    std::size_t comma = proto.rfind(',');
    if (comma != std::string_view::npos) proto = proto.substr(comma + 1);
    proto = trim(proto);
    if (iequals(proto, "http")) protocol_ = "http";
    else if (iequals(proto, "https")) protocol_ = "https";
  }
}

Future<bool> HTTP1ServerConnection::serve_request(HTTPServerConnectionDelegate& delegate) {
  // Per-request state.
  phase_ = Phase::kHead;
  response_started_ = response_finished_ = response_chunked_ = false;
  response_has_body_ = true;
  response_remaining_.reset();
  close_after_ = false;
  close_notified_ = false;
  body_unread_ = false;
  body_received_ = 0;
  request_http10_ = request_head_ = false;
  request_keep_alive_ = false;
  remote_ip_ = peer_ip_;
  protocol_ = stream_protocol_;

  if (!stream_ || stream_->closed()) co_return false;
  if (closing_ && stream_->buffered().empty()) co_return false;

  // kHead: find the end of the head, reading as needed.
  TimePoint start = loop_->time();
  head_deadline_ = start + params_.header_timeout;
  idle_deadline_ = start + params_.idle_connection_timeout;
  std::size_t scanned = 0;
  std::size_t head_end = std::string_view::npos;
  bool timer_armed = false;
  for (;;) {
    std::string_view buf = stream_->buffered();
    head_end = find_head_end(buf, scanned);
    if (head_end != std::string_view::npos) break;
    if (buf.size() > params_.max_header_size) {
      disarm_timer();
      send_error(431);
      co_return false;
    }
    if (!timer_armed) {
      arm_timer(buf.empty() ? std::min(head_deadline_, idle_deadline_) : head_deadline_);
      timer_armed = true;
    }
    bool eof = false;
    try {
      co_await stream_->read_more();
    } catch (const net::StreamClosedError&) {
      eof = true;
    }
    if (eof || !stream_ || stream_->closed()) {
      disarm_timer();
      co_return false;
    }
  }
  if (timer_armed) disarm_timer();

  std::string_view head = stream_->buffered().substr(0, head_end);
  RequestStartLine line;
  ParserLimits limits;
  limits.max_header_size = params_.max_header_size;
  ParseResult parsed = parse_request_head(head, line, headers_, limits);
  if (parsed.status != ParseStatus::kComplete) {
    log::general().info("Malformed HTTP request from {}: {}", address_, parsed.error ? parsed.error : "incomplete");
    send_error(parsed.status == ParseStatus::kError ? parsed.error_status : 400);
    co_return false;
  }
  BodyFraming framing;
  ParseResult framed = request_body_framing(headers_, framing);
  if (framed.status == ParseStatus::kError) {
    log::general().info("Malformed HTTP request from {}: {}", address_, framed.error ? framed.error : "bad framing");
    send_error(framed.error_status);
    co_return false;
  }
  if (framing.kind == BodyFraming::kContentLength && framing.length == 0) framing.kind = BodyFraming::kNone;
  bool has_body = framing.kind != BodyFraming::kNone;

  request_http10_ = line.version == "HTTP/1.0";
  request_head_ = line.method == "HEAD";
  // Persistence, RFC 9112 section 9.3 and CONFORMANCE 2.2.
  auto connection = headers_.get("Connection");
  if (request_http10_) {
    request_keep_alive_ = connection && has_token(*connection, "keep-alive");
  } else {
    request_keep_alive_ = !(connection && has_token(*connection, "close"));
  }
  if (params_.no_keep_alive || closing_) request_keep_alive_ = false;

  // A declared body over the limit is refused before anyone sees it, without
  // waiting for it (CONFORMANCE 2.5).
  if (framing.kind == BodyFraming::kContentLength && framing.length > params_.max_body_size) {
    body_unread_ = true;
    send_error(413);
    co_return false;
  }
  // Expect: 100-continue (RFC 9110 section 10.1.1); HTTP/1.0 ignores it.
  bool expect_continue = false;
  if (has_body && !request_http10_) {
    if (auto expect = headers_.get("Expect")) expect_continue = iequals(trim(*expect), "100-continue");
  }
  if (params_.xheaders) apply_xheaders(headers_);
  if (params_.decompress && has_body) {
    if (auto coding = headers_.get("Content-Encoding"); coding && iequals(trim(*coding), "gzip")) {
      std::string value(*coding);
      headers_.remove("Content-Encoding");
      headers_.add_unchecked("X-Consumed-Content-Encoding", value);
      inflater_ = std::make_unique<Inflater>();
    }
  }

  // Hand the head over. `line` views the stream's buffer: valid until consume.
  std::exception_ptr error;
  Future<void> flow(nullptr);
  try {
    msg_ = delegate.start_request(*this, *this);
    flow = msg_->headers_received(line, headers_);
  } catch (...) {
    error = std::current_exception();
  }
  stream_->consume(head_end);
  if (!error && flow.valid()) {
    try {
      co_await flow;
    } catch (...) {
      error = std::current_exception();
    }
  }

  if (!error && has_body && !closed_or_gone()) {
    if (response_started_ && expect_continue) {
      // The delegate answered without wanting the body (a 404, say): the
      // client was told to wait for us, so it may or may not send it.
      body_unread_ = true;
      close_after_ = true;
    } else {
      if (expect_continue) send(std::string("HTTP/1.1 100 Continue\r\n\r\n"));
      phase_ = Phase::kBody;
      bool ok = false;
      try {
        ok = co_await read_body(framing);
      } catch (const HTTPInputError& e) {
        log::general().info("Malformed HTTP request body from {}: {}", address_, e.what());
        body_unread_ = true;
        disarm_timer();
        send_error(e.status());
        co_return false;
      } catch (...) {
        error = std::current_exception();
      }
      disarm_timer();
      if (!ok && !error) {
        co_return false;  // closed mid-body: serve() tells the delegate
      }
    }
  }

  // kHandler: the request is in; wait for the response.
  phase_ = Phase::kHandler;
  Future<void> handler(nullptr);
  if (!error && !closed_or_gone()) {
    try {
      handler = msg_->finish();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log::app().error("Uncaught exception in HTTP delegate: {}", e.what());
    } catch (...) {
      log::app().error("Uncaught exception in HTTP delegate");
    }
    if (!response_started_) {
      send_error(500);
    } else {
      close_after_ = true;
      if (!response_finished_) close();
    }
  }
  while (!response_finished_ && !closed_or_gone()) {
    Future<void> w;
    wake_ = w;
    waiting_ = true;
    co_await w;
    waiting_ = false;
  }
  if (closed_or_gone()) notify_close();
  if (handler.valid() && !handler.done()) {
    try {
      co_await handler;
    } catch (...) {
      // Its failure was the delegate's to report (CancelledError after a close).
    }
  } else if (handler.valid()) {
    (void)handler.exception();
  }
  msg_.reset();
  inflater_.reset();
  co_return !close_after_ && request_keep_alive_ && !closed_or_gone();
}

bool HTTP1ServerConnection::closed_or_gone() const noexcept { return !stream_ || stream_->closed(); }

Future<bool> HTTP1ServerConnection::read_body(const BodyFraming& framing) {
  last_data_ = loop_->time();
  arm_timer(last_data_ + params_.body_timeout);
  auto more = [this]() -> Future<bool> {
    bool eof = false;
    try {
      co_await stream_->read_more();
    } catch (const net::StreamClosedError&) {
      eof = true;
    }
    last_data_ = loop_->time();
    co_return !eof && !closed_or_gone();
  };
  if (framing.kind == BodyFraming::kContentLength) {
    std::uint64_t remaining = framing.length;
    while (remaining > 0) {
      std::string_view buf = stream_->buffered();
      if (buf.empty()) {
        if (!co_await more()) co_return false;
        continue;
      }
      std::size_t take = std::min<std::uint64_t>({remaining, buf.size(), params_.chunk_size});
      Future<void> flow = deliver(buf.substr(0, take));
      stream_->consume(take);
      remaining -= take;
      if (flow.valid() && !flow.done()) {
        disarm_timer();  // the delegate is slow, not the client
        co_await flow;
        last_data_ = loop_->time();
        if (closed_or_gone()) co_return false;
        arm_timer(last_data_ + params_.body_timeout);
      } else if (flow.valid()) {
        flow.result();
      }
    }
  } else {
    ParserLimits limits;
    limits.max_header_size = params_.max_header_size;
    ChunkedDecoder decoder(limits);
    // Feed at most chunk_size bytes so data runs stay under it; framing
    // lines longer than that are fed whole.
    std::size_t window = std::max<std::size_t>(params_.chunk_size, 1);
    while (!decoder.done()) {
      std::string_view buf = stream_->buffered();
      ChunkedDecoder::Step step = decoder.feed(buf.substr(0, std::min(buf.size(), window)));
      if (step.status == ParseStatus::kPartial && step.consumed == 0 && buf.size() > window) {
        step = decoder.feed(buf);
      }
      if (step.status == ParseStatus::kError) {
        throw HTTPInputError(step.error ? step.error : "bad chunked body", step.error_status ? step.error_status : 400);
      }
      Future<void> flow(nullptr);
      if (!step.data.empty()) flow = deliver(step.data);
      stream_->consume(step.consumed);
      if (flow.valid() && !flow.done()) {
        disarm_timer();
        co_await flow;
        last_data_ = loop_->time();
        if (closed_or_gone()) co_return false;
        arm_timer(last_data_ + params_.body_timeout);
      } else if (flow.valid()) {
        flow.result();
      }
      if (decoder.done()) break;
      if (step.status == ParseStatus::kPartial) {
        if (!co_await more()) co_return false;
      }
    }
  }
  if (inflater_ && !inflater_->ended && body_received_ > 0) {
    throw HTTPInputError("truncated gzip body", 400);
  }
  co_return true;
}

Future<void> HTTP1ServerConnection::deliver(std::string_view data) {
  if (!inflater_) {
    body_received_ += data.size();
    if (body_received_ > params_.max_body_size) throw HTTPInputError("body too large", 413);
    return msg_->data_received(data);
  }
  // gzip: decode from a copy, since the delegate may pause us between pieces
  // and the stream's buffer may move meanwhile.
  return deliver_inflated(std::string(data));
}

Future<void> HTTP1ServerConnection::deliver_inflated(std::string input) {
    Inflater& inf = *inflater_;
    if (!inf.ok) throw HTTPInputError("cannot decode gzip", 400);
    std::string out(std::max<std::size_t>(params_.chunk_size, 1024), '\0');
    inf.z.next_in = reinterpret_cast<Bytef*>(input.data());
    inf.z.avail_in = static_cast<uInt>(input.size());
    while (inf.z.avail_in > 0 && !inf.ended) {
      inf.z.next_out = reinterpret_cast<Bytef*>(out.data());
      inf.z.avail_out = static_cast<uInt>(out.size());
      int rc = ::inflate(&inf.z, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) inf.ended = true;
      else if (rc != Z_OK && rc != Z_BUF_ERROR) throw HTTPInputError("invalid gzip body", 400);
      std::size_t n = out.size() - inf.z.avail_out;
      if (n == 0 && rc == Z_BUF_ERROR) break;
      body_received_ += n;
      // The limit applies to what the application gets (zip bombs).
      if (body_received_ > params_.max_body_size) throw HTTPInputError("body too large", 413);
      if (n > 0) {
        Future<void> flow = msg_->data_received(std::string_view(out.data(), n));
        if (flow.valid()) co_await flow;
      }
    }
}

// --- responses ---------------------------------------------------------------------------------

Future<void> HTTP1ServerConnection::send(std::string data) {
  if (!stream_ || stream_->closed()) {
    Future<void> f = make_exception_future<void>(std::make_exception_ptr(net::StreamClosedError()));
    (void)f.exception();  // nobody has to look: on_connection_close tells the story
    return f;
  }
  Future<void> f = stream_->write(std::move(data));
  last_write_ = f;
  return f;
}

void HTTP1ServerConnection::send_error(int status) {
  close_after_ = true;
  request_keep_alive_ = false;
  if (response_started_) {
    close();
    return;
  }
  std::string_view reason = responses(status);
  std::string body = "{\"status\": " + std::to_string(status) + ", \"reason\": \"" + std::string(reason) + "\"}";
  HTTPHeaders headers;
  headers.add_unchecked("Content-Type", "application/json");
  headers.add_unchecked("Content-Length", std::to_string(body.size()));
  std::string out;
  try {
    start_response(status, reason, headers, body, out);
  } catch (const std::exception&) {
    close();
    return;
  }
  response_finished_ = true;
  send(std::move(out));
}

void HTTP1ServerConnection::start_response(int code, std::string_view reason, HTTPHeaders& headers,
                                           std::string_view first_chunk, std::string& out) {
  if (response_started_) throw HTTPOutputError("write_headers called twice");
  if (code < 100 || code > 999) throw HTTPOutputError("invalid status code");
  if (reason.empty()) reason = responses(code);
  if (reason.find_first_of("\r\n") != std::string_view::npos) throw HTTPOutputError("CR or LF in reason phrase");
  response_started_ = true;

  // Framing, RFC 9112 section 6.3 and CONFORMANCE 2.1: never both
  // Content-Length and Transfer-Encoding; chunked only for HTTP/1.1.
  bool no_body_status = code < 200 || code == 204 || code == 304;
  response_has_body_ = !no_body_status && !request_head_;
  headers.remove("Transfer-Encoding");
  if (code < 200 || code == 204) headers.remove("Content-Length");
  if (auto cl = headers.get("Content-Length")) {
    std::uint64_t n = 0;
    auto r = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (r.ec != std::errc() || r.ptr != cl->data() + cl->size() || cl->empty()) {
      response_started_ = false;
      throw HTTPOutputError("invalid Content-Length");
    }
    if (response_has_body_) response_remaining_ = n;
  } else if (response_has_body_) {
    if (!request_http10_) {
      response_chunked_ = true;
      headers.add_unchecked("Transfer-Encoding", "chunked");
    } else {
      close_after_ = true;  // delimited by closing (HTTP/1.0)
    }
  }
  if (auto c = headers.get("Connection"); c && has_token(*c, "close")) close_after_ = true;
  if (!request_keep_alive_ || closing_) close_after_ = true;  // closing_: a graceful stop
  headers.remove("Connection");
  if (close_after_) {
    headers.add_unchecked("Connection", "close");
  } else if (request_http10_) {
    headers.add_unchecked("Connection", "keep-alive");
  }
  if (!headers.contains("Date")) headers.add_unchecked("Date", http_date());
  if (!headers.contains("Server")) headers.add_unchecked("Server", kServerName);

  out.reserve(64 + headers.size() * 32 + first_chunk.size());
  out.append("HTTP/1.1 ");
  char code_text[4];
  auto r = std::to_chars(code_text, code_text + 4, code);
  out.append(code_text, r.ptr);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\n");
  headers.write_to(out);
  out.append("\r\n");
  if (!first_chunk.empty() && response_has_body_) {
    if (response_remaining_) {
      if (first_chunk.size() > *response_remaining_) {
        close_after_ = true;
        throw HTTPOutputError("body longer than its Content-Length");
      }
      *response_remaining_ -= first_chunk.size();
    }
    if (response_chunked_) {
      append_hex(out, first_chunk.size());
      out.append("\r\n");
      out.append(first_chunk);
      out.append("\r\n");
    } else {
      out.append(first_chunk);
    }
  }
}

Future<void> HTTP1ServerConnection::write_headers(int code, std::string_view reason, HTTPHeaders& headers,
                                                  std::string_view first_chunk) {
  std::string out;
  start_response(code, reason, headers, first_chunk, out);
  return send(std::move(out));
}

Future<void> HTTP1ServerConnection::write(std::string_view chunk) {
  if (!response_started_) throw HTTPOutputError("write before write_headers");
  if (response_finished_) throw HTTPOutputError("write after finish");
  if (chunk.empty() || !response_has_body_) return send(std::string());
  if (response_remaining_) {
    if (chunk.size() > *response_remaining_) {
      // The peer could not frame what follows: Tornado closes too.
      close_after_ = true;
      close();
      throw HTTPOutputError("body longer than its Content-Length");
    }
    *response_remaining_ -= chunk.size();
  }
  if (!response_chunked_) return send(std::string(chunk));
  std::string out;
  out.reserve(chunk.size() + 24);
  append_hex(out, chunk.size());
  out.append("\r\n");
  out.append(chunk);
  out.append("\r\n");
  return send(std::move(out));
}

void HTTP1ServerConnection::finish() {
  if (!response_started_) throw HTTPOutputError("finish before write_headers");
  if (response_finished_) throw HTTPOutputError("finish called twice");
  response_finished_ = true;
  if (response_chunked_) send(std::string("0\r\n\r\n"));  // RFC 9112 section 7.1: last-chunk, no trailers
  if (response_remaining_ && *response_remaining_ > 0) {
    log::general().warn("Response to {} ended {} bytes short of its Content-Length", address_,
                           *response_remaining_);
    close_after_ = true;
    close();
  }
  wake();
}

}  // namespace squall::http
