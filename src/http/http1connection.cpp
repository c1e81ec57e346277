// HTTP1ServerConnection: see the header for the states and the design.
#include "squall/http/http1connection.hpp"

#include <sys/socket.h>
#include <zlib.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <optional>

#include "http/http1connection_context.hpp"
#include "squall/core/gen.hpp"
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
// Output collected while input is being handled goes out once it is this
// large, without waiting for the connection to run out of input.
constexpr std::size_t kCorkLimit = 64 * 1024;
// Per-thread pools: how many spare objects each keeps, and the largest
// buffer worth keeping (a bigger one was for an unusual request).
constexpr std::size_t kPoolSize = 64;
constexpr std::size_t kKeepCapacity = 64 * 1024;

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
std::string_view ip_of(std::string_view address) noexcept {
  if (address.empty()) return "0.0.0.0";
  if (address.front() == '[') {
    std::size_t end = address.find(']');
    return end == std::string_view::npos ? address : address.substr(1, end - 1);
  }
  std::size_t colon = address.rfind(':');
  return colon == std::string_view::npos ? address : address.substr(0, colon);
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

void append_decimal(std::string& out, std::uint64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

const std::string& protocol_name(bool https) noexcept {
  static const std::string kHttp = "http", kHttps = "https";
  return https ? kHttps : kHttp;
}

/// A Future that is already resolved, shared per thread (no allocation).
Future<void> ready_future() {
  thread_local Future<void> ready = make_ready_future();
  return ready;
}

/// A spare-object pool per thread: objects keep their capacity between uses.
template <class T>
struct Spares {
  std::vector<T> items;
  T take() {
    if (items.empty()) return T();
    T t = std::move(items.back());
    items.pop_back();
    return t;
  }
  void give(T t) {
    if (items.size() < kPoolSize) items.push_back(std::move(t));
  }
};

/// Request heads are parsed into headers lent by this pool; the delegate may
/// swap them with its own (HTTPServer does), which keeps both capacities.
class HeadersLease {
 public:
  HeadersLease() : headers_(pool().take()) {
    if (!headers_) headers_ = std::make_unique<HTTPHeaders>();
  }
  ~HeadersLease() {
    std::size_t bytes = 0;
    for (HTTPHeaders::Field f : *headers_) bytes += f.name.size() + f.value.size();
    if (bytes <= kKeepCapacity) pool().give(std::move(headers_));
  }
  HeadersLease(const HeadersLease&) = delete;
  HeadersLease& operator=(const HeadersLease&) = delete;
  HTTPHeaders& get() noexcept { return *headers_; }

 private:
  static Spares<std::unique_ptr<HTTPHeaders>>& pool() {
    thread_local Spares<std::unique_ptr<HTTPHeaders>> spares;
    return spares;
  }
  std::unique_ptr<HTTPHeaders> headers_;
};

Spares<std::shared_ptr<std::string>>& output_pool() {
  thread_local Spares<std::shared_ptr<std::string>> spares;
  return spares;
}

}  // namespace

// --- per-request state ------------------------------------------------------------------

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

/// One request and its response. Taken from a per-thread pool when a head
/// is complete and given back when the request is done, so an idle
/// connection holds none and a busy one allocates none.
struct HTTP1ServerConnection::Exchange {
  std::unique_ptr<HTTPMessageDelegate> msg;
  std::unique_ptr<Inflater> inflater;
  std::string remote_ip;
  Future<void> wake{nullptr};      // kAsync: resolved when the response is finished
  std::optional<std::uint64_t> remaining;  // response Content-Length left
  std::uint64_t body_received = 0;
  // This request's body limits: the server's unless the delegate changed
  // them (set_max_body_size, set_body_timeout).
  std::uint64_t max_body_size = 0;
  Duration body_timeout{};
  TimePoint last_data{};           // body: when bytes last arrived
  bool https = false;
  // The request, as the response needs it.
  bool http10 = false;
  bool head = false;
  bool keep_alive = false;         // what the request allows (RFC 9112 section 9.3)
  bool expect_continue = false;   // and 100 Continue not sent yet
  bool body_unread = false;        // its body was refused or not read
  // The response.
  bool started = false;
  bool finished = false;
  bool chunked = false;
  bool has_body = true;            // not HEAD, 1xx, 204, 304
  bool close_after = false;        // the connection ends with this response
  bool notified = false;           // on_connection_close was called
  bool waiting = false;            // kAsync: the coroutine waits in `wake`

  void reset() {
    msg.reset();
    inflater.reset();
    remote_ip.clear();
    wake = Future<void>(nullptr);
    remaining.reset();
    body_received = 0;
    last_data = {};
    https = http10 = head = keep_alive = expect_continue = body_unread = false;
    started = finished = chunked = close_after = notified = waiting = false;
    has_body = true;
  }

  static Spares<std::unique_ptr<Exchange>>& pool() {
    thread_local Spares<std::unique_ptr<Exchange>> spares;
    return spares;
  }
  static std::unique_ptr<Exchange> take() {
    std::unique_ptr<Exchange> x = pool().take();
    return x ? std::move(x) : std::make_unique<Exchange>();
  }
  static void give(std::unique_ptr<Exchange> x) {
    x->reset();
    if (x->remote_ip.capacity() <= 64) pool().give(std::move(x));
  }
};

/// A loop callback that calls member function `Step` of the connection if
/// the connection still exists. If a closing loop drops it unrun, it runs
/// then, from its destructor, so that serving still ends and the owner still
/// frees the connection (nothing else would). One weak reference, 16 bytes:
/// it fits the stream's close callback without an allocation.
template <void (HTTP1ServerConnection::*Step)()>
class HTTP1ServerConnection::Deferred {
 public:
  explicit Deferred(std::weak_ptr<HTTP1ServerConnection*> conn) noexcept : conn_(std::move(conn)) {}
  Deferred(Deferred&& o) noexcept : conn_(std::move(o.conn_)) {}
  Deferred& operator=(Deferred&&) = delete;
  ~Deferred() {
    if (HTTP1ServerConnection* c = target(); c && c->loop().closed()) (c->*Step)();
  }
  void operator()() {
    HTTP1ServerConnection* c = target();
    conn_.reset();
    if (c) (c->*Step)();
  }

 private:
  HTTP1ServerConnection* target() const noexcept {
    std::shared_ptr<HTTP1ServerConnection*> self = conn_.lock();
    return self && *self && !(*self)->dying_ ? *self : nullptr;
  }
  std::weak_ptr<HTTP1ServerConnection*> conn_;
};

// --- lifetime -------------------------------------------------------------------------------

std::shared_ptr<HTTP1ServerConnection::Context> HTTP1ServerConnection::make_context(HTTP1ConnectionParameters params) {
  return std::make_shared<Context>(std::move(params));
}

HTTP1ServerConnection::HTTP1ServerConnection(std::unique_ptr<net::IOStream> stream, std::string address,
                                             HTTP1ConnectionParameters params)
    : HTTP1ServerConnection(std::move(stream), std::move(address), make_context(std::move(params))) {}

HTTP1ServerConnection::HTTP1ServerConnection(std::unique_ptr<net::IOStream> stream, std::string address,
                                             std::shared_ptr<Context> context)
    : stream_(std::move(stream)), context_(std::move(context)), address_(std::move(address)) {
  const std::string& forced = context_->params.protocol;
  https_ = forced.empty() ? dynamic_cast<net::SSLIOStream*>(stream_.get()) != nullptr : forced == "https";
  context_->add(this);
}

HTTP1ServerConnection::~HTTP1ServerConnection() {
  dying_ = true;
  watch_.reset();  // Deferred steps still queued find nothing
  context_->disarm(this);
  context_->remove(this);
  disarm_timer();
  // Closing the stream resolves what waits on it; those callbacks see
  // dying_ and leave.
  stream_.reset();
  x_.reset();
}

const HTTP1ConnectionParameters& HTTP1ServerConnection::params() const noexcept { return context_->params; }

bool HTTP1ServerConnection::response_started() const noexcept { return x_ && x_->started; }
bool HTTP1ServerConnection::response_finished() const noexcept { return x_ && x_->finished; }

const std::string& HTTP1ServerConnection::remote_ip() const noexcept {
  static const std::string kNone;
  return x_ ? x_->remote_ip : kNone;
}

const std::string& HTTP1ServerConnection::protocol() const noexcept { return protocol_name(x_ ? x_->https : https_); }

bool HTTP1ServerConnection::idle() const noexcept {
  return phase_ == Phase::kHead && !x_ && stream_->buffered().empty();
}

void HTTP1ServerConnection::close() {
  if (stream_->closed()) return;
  flush();  // what was answered so far still goes out (one attempt, no waiting)
  if (!stream_->closed()) stream_->close();  // what waits on the stream wakes up and winds down
}

void HTTP1ServerConnection::close_when_idle() {
  closing_ = true;
  if (idle()) close();
}

std::weak_ptr<HTTP1ServerConnection*> HTTP1ServerConnection::weak_self() {
  if (!watch_) watch_ = std::make_shared<HTTP1ServerConnection*>(this);
  return watch_;
}

bool HTTP1ServerConnection::gone(const std::weak_ptr<HTTP1ServerConnection*>& alive) noexcept {
  std::shared_ptr<HTTP1ServerConnection*> self = alive.lock();
  return !self || !*self || (*self)->dying_;
}

// --- serving in plain calls ------------------------------------------------------------------

Future<void> HTTP1ServerConnection::serve(HTTPServerConnectionDelegate& delegate) {
  Future<void> done;
  done_ = done;
  start(delegate);
  return done;
}

void HTTP1ServerConnection::start(HTTPServerConnectionDelegate& delegate) {
  delegate_ = &delegate;
  phase_ = Phase::kHead;
  head_start_ = loop().time();
  // Hear about a client that leaves while nothing is read (a handler at
  // work), as Tornado's HTTP1Connection does. Deferred by the stream, so it
  // finds its way back through a weak reference. Whoever takes the stream
  // over (a WebSocket) may replace it: the end of its handler wakes us too.
  stream_->set_close_callback(Deferred<&HTTP1ServerConnection::on_stream_close>(weak_self()));
  run();
}

void HTTP1ServerConnection::run() {
  // Callbacks may ask again while we run (a read that completes at once, a
  // request that finished synchronously): they set rerun_ instead of nesting.
  if (running_) {
    rerun_ = true;
    return;
  }
  running_ = true;
  do {
    rerun_ = false;
    while (step()) {
    }
  } while (rerun_);
  running_ = false;
}

bool HTTP1ServerConnection::step() {
  switch (phase_) {
    case Phase::kHead:
      return step_head();
    case Phase::kEnd:
      wind_down();
      return false;
    case Phase::kAsync:
    case Phase::kWinding:
    case Phase::kDone:
      return false;
  }
  return false;
}

bool HTTP1ServerConnection::step_head() {
  net::IOStream& s = *stream_;
  if (s.closed()) {
    phase_ = Phase::kEnd;
    return true;
  }
  if (timed_out_) {
    if (read_.valid()) return false;  // on_read comes back here
    timed_out_ = false;
    context_->disarm(this);
    if (last_write_.valid() && !last_write_.done()) {
      // Not even reading our answers: nothing more to say.
      s.close();
      phase_ = Phase::kEnd;
    } else if (!s.buffered().empty()) {
      // Part of a head, too slowly: say why before closing (RFC 9110
      // section 15.5.9), then linger so the answer is not lost to a reset.
      log::general().info("Timeout reading the request head from {}", address_);
      refuse(408);
    } else {
      s.close();
      phase_ = Phase::kEnd;
    }
    return true;
  }
  if (last_write_.valid()) {
    // An answer is still on its way: let it reach the kernel before reading
    // on (back-pressure for clients that pipeline without reading). The
    // header deadline runs meanwhile: a client that reads nothing is cut off.
    if (!last_write_.done()) {
      if (!write_waited_) {
        write_waited_ = true;
        context_->arm(this, head_start_ + params().header_timeout);
        Future<void> w = last_write_;
        w.add_done_callback([this] {
          if (dying_) return;
          write_waited_ = false;
          run();
        });
      }
      return false;
    }
    (void)last_write_.exception();  // a failed write closed the stream
    last_write_ = Future<void>(nullptr);
    return true;
  }
  std::string_view buf = s.buffered();
  if (closing_ && buf.empty()) {
    s.close();
    phase_ = Phase::kEnd;
    return true;
  }
  const HTTP1ConnectionParameters& p = params();
  std::size_t scanned = scanned_;
  std::size_t head_end = find_head_end(buf, scanned);
  scanned_ = static_cast<std::uint32_t>(std::min<std::size_t>(scanned, UINT32_MAX));
  if (head_end != std::string_view::npos) {
    context_->disarm(this);
    scanned_ = 0;
    return serve_head(head_end);
  }
  if (buf.size() > p.max_header_size) {
    context_->disarm(this);
    refuse(431);
    return true;
  }
  if (read_.valid()) return false;  // on_read comes back here
  // Out of input: what earlier pipelined requests produced goes out now, in
  // one write, before we wait.
  flush();
  if (s.closed()) return true;
  // CONFORMANCE 2.6: the head deadline counts from the start, whatever
  // arrives; the idle deadline applies while nothing of a request came.
  Duration limit = buf.empty() ? std::min(p.header_timeout, p.idle_connection_timeout) : p.header_timeout;
  context_->arm(this, head_start_ + limit);
  // A local handle keeps the state alive if the callback runs at once (the
  // read found data) and on_read drops read_.
  Future<void> more = s.read_more();
  read_ = more;
  more.add_done_callback([this](Future<void> done) { on_read(done); });
  return false;
}

void HTTP1ServerConnection::on_read(Future<void>& done) {
  (void)done.exception();  // a failure closed the stream, or we cancelled the read
  if (dying_) return;
  read_ = Future<void>(nullptr);
  run();
}

void HTTP1ServerConnection::on_head_timeout() {
  if (phase_ != Phase::kHead || closed()) return;
  timed_out_ = true;
  // Give up the pending read; on_read runs step_head, which answers.
  if (read_.valid() && !read_.done()) {
    Future<void> r = read_;
    r.cancel();
  } else {
    run();
  }
}

bool HTTP1ServerConnection::serve_head(std::size_t head_end) {
  const HTTP1ConnectionParameters& p = params();
  x_ = Exchange::take();
  Exchange& x = *x_;
  x.https = https_;
  x.remote_ip.assign(ip_of(address_));
  x.max_body_size = p.max_body_size;
  x.body_timeout = p.body_timeout;

  HeadersLease lease;
  HTTPHeaders& headers = lease.get();
  std::string_view head = stream_->buffered().substr(0, head_end);
  RequestStartLine line;
  ParserLimits limits;
  limits.max_header_size = p.max_header_size;
  ParseResult parsed = parse_request_head(head, line, headers, limits);
  if (parsed.status != ParseStatus::kComplete) {
    log::general().info("Malformed HTTP request from {}: {}", address_, parsed.error ? parsed.error : "incomplete");
    refuse(parsed.status == ParseStatus::kError ? parsed.error_status : 400);
    return true;
  }
  BodyFraming framing;
  ParseResult framed = request_body_framing(headers, framing);
  if (framed.status == ParseStatus::kError) {
    log::general().info("Malformed HTTP request from {}: {}", address_, framed.error ? framed.error : "bad framing");
    refuse(framed.error_status);
    return true;
  }
  if (framing.kind == BodyFraming::kContentLength && framing.length == 0) framing.kind = BodyFraming::kNone;
  bool has_body = framing.kind != BodyFraming::kNone;

  x.http10 = line.version == "HTTP/1.0";
  x.head = line.method == "HEAD";
  // Persistence, RFC 9112 section 9.3 and CONFORMANCE 2.2.
  auto connection = headers.get("Connection");
  if (x.http10) {
    x.keep_alive = connection && has_token(*connection, "keep-alive");
  } else {
    x.keep_alive = !(connection && has_token(*connection, "close"));
  }
  if (p.no_keep_alive || closing_) x.keep_alive = false;

  // A declared body over the limit is refused before any of it is read
  // (CONFORMANCE 2.5), but only once the delegate had its say: it may change
  // the limit for this request (Tornado checks when the body reading starts,
  // after headers_received). A request with a body waits in finish_async
  // anyway, so that is where the check is.
  // Expect: 100-continue (RFC 9110 section 10.1.1); HTTP/1.0 ignores it.
  if (has_body && !x.http10) {
    if (auto expect = headers.get("Expect")) x.expect_continue = iequals(trim(*expect), "100-continue");
  }
  if (p.xheaders) apply_xheaders(x, headers);
  if (p.decompress && has_body) {
    if (auto coding = headers.get("Content-Encoding"); coding && iequals(trim(*coding), "gzip")) {
      std::string value(*coding);
      headers.remove("Content-Encoding");
      headers.add_unchecked("X-Consumed-Content-Encoding", value);
      x.inflater = std::make_unique<Inflater>();
    }
  }

  // Hand the head over. `line` views the stream's buffer: valid until consume.
  std::exception_ptr error;
  Future<void> flow(nullptr);
  try {
    x.msg = delegate_->start_request(*this, *this);
    if (!x.msg) throw InvalidStateError("start_request returned no delegate");
    flow = x.msg->headers_received(line, headers);
  } catch (...) {
    error = std::current_exception();
  }
  stream_->consume(head_end);
  if (!error && ((flow.valid() && !flow.done()) || has_body)) {
    go_async(Stage::kHeaders, framing, std::move(flow), Future<void>(nullptr));
    return false;
  }
  if (!error && flow.valid()) error = flow.exception();
  return finish_stage(error);
}

/// The request is in: tells the delegate (finish), and ends the request if
/// its response is complete; otherwise a coroutine waits for it.
bool HTTP1ServerConnection::finish_stage(std::exception_ptr error) {
  Future<void> handler = handler_future(std::move(error));
  Exchange& x = *x_;
  if ((!x.finished && !closed()) || (handler.valid() && !handler.done())) {
    go_async(Stage::kResponse, BodyFraming{}, Future<void>(nullptr), std::move(handler));
    return false;
  }
  if (handler.valid()) (void)handler.exception();  // its failure was the delegate's to report
  return end_request();
}

/// Calls the delegate's finish (unless the request failed) and answers a
/// failure; returns the Future finish gave.
Future<void> HTTP1ServerConnection::handler_future(std::exception_ptr error) {
  Future<void> handler(nullptr);
  if (!error && !closed()) {
    try {
      handler = x_->msg->finish();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) report_error(error);
  return handler;
}

void HTTP1ServerConnection::report_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log::app().error("Uncaught exception in HTTP delegate: {}", e.what());
  } catch (...) {
    log::app().error("Uncaught exception in HTTP delegate");
  }
  Exchange& x = *x_;
  if (!x.started) {
    send_error(500);  // CONFORMANCE 2.7: without the exception's text
  } else {
    x.close_after = true;
    if (!x.finished) {
      flush();
      close();
    }
  }
}

/// The current request is done: back to kHead, or on to kEnd.
bool HTTP1ServerConnection::end_request() {
  if (closed()) notify_close();
  std::unique_ptr<Exchange> x = std::move(x_);
  bool keep = !x->close_after && x->keep_alive && !closed();
  if (x->body_unread) linger_ = true;
  disarm_timer();
  x->msg.reset();  // the delegate's destructor may use the connection: x_ is already clear
  Exchange::give(std::move(x));
  if (keep) {
    phase_ = Phase::kHead;
    head_start_ = loop().time();
  } else {
    phase_ = Phase::kEnd;
  }
  return true;
}

/// Answers a request no delegate saw (malformed, too large, too slow) and
/// ends the connection after a lingering close.
void HTTP1ServerConnection::refuse(int status) {
  if (!x_) {
    x_ = Exchange::take();
    x_->https = https_;
  }
  x_->body_unread = true;
  send_error(status);
  end_request();
}

void HTTP1ServerConnection::apply_xheaders(Exchange& x, const HTTPHeaders& headers) {
  // Tornado's _apply_xheaders: the client's address from the proxy, the
  // right-most X-Forwarded-For entry that is not a trusted downstream proxy.
  const HTTP1ConnectionParameters& p = params();
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
      bool trusted = std::find(p.trusted_downstream.begin(), p.trusted_downstream.end(), item) !=
                     p.trusted_downstream.end();
      if (!trusted) break;
    }
    ip = std::string(pick);
  }
  if (!ip.empty() && net::is_valid_ip(ip)) x.remote_ip = std::move(ip);
  std::string_view proto = headers.get("X-Scheme", headers.get("X-Forwarded-Proto", ""));
  if (!proto.empty()) {
    // Several proxies append: the last is the one next to us.
    std::size_t comma = proto.rfind(',');
    if (comma != std::string_view::npos) proto = proto.substr(comma + 1);
    proto = trim(proto);
    if (iequals(proto, "http")) x.https = false;
    else if (iequals(proto, "https")) x.https = true;
  }
}

// --- serving a request that waits --------------------------------------------------------------

void HTTP1ServerConnection::go_async(Stage stage, BodyFraming framing, Future<void> flow, Future<void> handler) {
  phase_ = Phase::kAsync;
  // What is ready goes out now: this request may take a while.
  flush();
  (void)finish_async(stage, framing, std::move(flow), std::move(handler));
}

Future<void> HTTP1ServerConnection::finish_async(Stage stage, BodyFraming framing, Future<void> flow,
                                                 Future<void> handler) {
  std::weak_ptr<HTTP1ServerConnection*> alive = weak_self();
  std::exception_ptr error;
  if (stage == Stage::kHeaders) {
    if (flow.valid()) {
      bool waited = !flow.done();
      try {
        co_await flow;
      } catch (...) {
        error = std::current_exception();
      }
      if (gone(alive)) co_return;
      if (waited) {
        // Whoever resolved the Future (a streaming web handler's prepare(),
        // say) is still on the stack below us: go on from the loop, so that
        // refusing the body (a limit prepare() lowered) cannot destroy the
        // delegate under it.
        co_await moment();
        if (gone(alive)) co_return;
      }
    }
    Exchange* x = x_.get();
    if (!error && framing.kind != BodyFraming::kNone && !closed()) {
      if (x->started && x->expect_continue) {
        // The delegate answered without wanting the body (a 404, say): the
        // client was told to wait for us, so it may or may not send it.
        x->body_unread = true;
        x->close_after = true;
      } else if (framing.kind == BodyFraming::kContentLength && framing.length > x->max_body_size) {
        // Before a 100 Continue: the client need not send what we refuse.
        // The delegate saw the head but gets no body: it is told the
        // request ends here, unless it already answered.
        notify_close();
        if (gone(alive)) co_return;
        refuse(413);
        run();
        co_return;
      } else {
        if (x->expect_continue) {
          output().append("HTTP/1.1 100 Continue\r\n\r\n");
          flush();
          x->expect_continue = false;  // told: the body comes
        }
        bool ok = false;
        int refused = 0;
        try {
          ok = co_await read_body(framing);
        } catch (const HTTPInputError& e) {
          log::general().info("Malformed HTTP request body from {}: {}", address_, e.what());
          refused = e.status();
        } catch (...) {
          error = std::current_exception();
        }
        if (gone(alive)) co_return;
        disarm_timer();
        if (refused) {
          // As above: the delegate gets no more of this request (Tornado
          // calls on_connection_close when the body is refused).
          notify_close();
          if (gone(alive)) co_return;
          refuse(refused);
          run();
          co_return;
        }
        if (!ok && !error) {
          // The client left mid-body: serving ends (the delegate is told).
          end_request();
          run();
          co_return;
        }
      }
    }
    handler = handler_future(error);
  }

  // The request is in; wait for the response, then for the handler. A
  // handler that ends wakes the wait too: one that took the stream over
  // (a WebSocket) never finishes the response, and may have replaced our
  // close callback before closing the stream.
  bool watching = false;
  while (!x_->finished && !closed()) {
    Future<void> w;
    x_->wake = w;
    x_->waiting = true;
    if (handler.valid() && !watching) {
      watching = true;
      handler.add_done_callback([alive] {
        std::shared_ptr<HTTP1ServerConnection*> self = alive.lock();
        if (self && *self && !(*self)->dying_) (*self)->wake();
      });
    }
    co_await w;
    if (gone(alive)) co_return;
    x_->waiting = false;
  }
  if (closed()) notify_close();
  if (handler.valid() && !handler.done()) {
    try {
      co_await handler;
    } catch (...) {
      // Its failure was the delegate's to report (CancelledError after a close).
    }
    if (gone(alive)) co_return;
  } else if (handler.valid()) {
    (void)handler.exception();
  }
  end_request();
  run();
}

Future<bool> HTTP1ServerConnection::read_more_body() {
  std::weak_ptr<HTTP1ServerConnection*> alive = weak_self();
  bool eof = false;
  try {
    co_await stream_->read_more();
  } catch (const net::StreamClosedError&) {
    eof = true;
  }
  if (gone(alive)) co_return false;
  x_->last_data = loop().time();
  co_return !eof && !closed();
}

Future<bool> HTTP1ServerConnection::read_body(BodyFraming framing) {
  std::weak_ptr<HTTP1ServerConnection*> alive = weak_self();
  const HTTP1ConnectionParameters& p = params();
  x_->last_data = loop().time();
  arm_body_timer(x_->last_data + x_->body_timeout);
  if (framing.kind == BodyFraming::kContentLength) {
    std::uint64_t remaining = framing.length;
    while (remaining > 0) {
      std::string_view buf = stream_->buffered();
      if (buf.empty()) {
        if (!co_await read_more_body()) co_return false;
        continue;
      }
      std::size_t take = std::min<std::uint64_t>({remaining, buf.size(), p.chunk_size});
      Future<void> flow = deliver(buf.substr(0, take));
      stream_->consume(take);
      remaining -= take;
      if (flow.valid() && !flow.done()) {
        disarm_timer();  // the delegate is slow, not the client
        co_await flow;
        if (gone(alive)) co_return false;
        x_->last_data = loop().time();
        if (closed()) co_return false;
        arm_body_timer(x_->last_data + x_->body_timeout);
      } else if (flow.valid()) {
        flow.result();
      }
    }
  } else {
    ParserLimits limits;
    limits.max_header_size = p.max_header_size;
    ChunkedDecoder decoder(limits);
    // Feed at most chunk_size bytes so data runs stay under it; framing
    // lines longer than that are fed whole.
    std::size_t window = std::max<std::size_t>(p.chunk_size, 1);
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
        if (gone(alive)) co_return false;
        x_->last_data = loop().time();
        if (closed()) co_return false;
        arm_body_timer(x_->last_data + x_->body_timeout);
      } else if (flow.valid()) {
        flow.result();
      }
      if (decoder.done()) break;
      if (step.status == ParseStatus::kPartial) {
        if (!co_await read_more_body()) co_return false;
      }
    }
  }
  if (x_->inflater && !x_->inflater->ended && x_->body_received > 0) {
    throw HTTPInputError("truncated gzip body", 400);
  }
  co_return true;
}

Future<void> HTTP1ServerConnection::deliver(std::string_view data) {
  Exchange& x = *x_;
  if (!x.inflater) {
    x.body_received += data.size();
    if (x.body_received > x.max_body_size) throw HTTPInputError("body too large", 413);
    return x.msg->data_received(data);
  }
  // gzip: decode from a copy, since the delegate may pause us between pieces
  // and the stream's buffer may move meanwhile.
  return deliver_inflated(std::string(data));
}

Future<void> HTTP1ServerConnection::deliver_inflated(std::string input) {
  std::weak_ptr<HTTP1ServerConnection*> alive = weak_self();
  Inflater& inf = *x_->inflater;
  if (!inf.ok) throw HTTPInputError("cannot decode gzip", 400);
  std::string out(std::max<std::size_t>(params().chunk_size, 1024), '\0');
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
    x_->body_received += n;
    // The limit applies to what the application gets (zip bombs).
    if (x_->body_received > x_->max_body_size) throw HTTPInputError("body too large", 413);
    if (n > 0) {
      Future<void> flow = x_->msg->data_received(std::string_view(out.data(), n));
      if (flow.valid()) {
        co_await flow;
        if (gone(alive)) co_return;
      }
    }
  }
}

void HTTP1ServerConnection::on_stream_close() {
  // Only a request at work needs telling: otherwise a pending read failed
  // with the close and serving already winds down.
  if (phase_ != Phase::kAsync || !x_) return;
  notify_close();
  do_wake();
}

void HTTP1ServerConnection::notify_close() {
  Exchange* x = x_.get();
  if (!x || !x->msg || x->notified || x->finished) return;
  x->notified = true;
  try {
    x->msg->on_connection_close();
  } catch (const std::exception& e) {
    log::app().error("Exception in on_connection_close: {}", e.what());
  }
}

void HTTP1ServerConnection::wake() {
  if (!x_ || !x_->waiting || !x_->wake.valid() || x_->wake.done()) return;
  // Resume from the loop, never inside the caller's finish(): the caller
  // may still be using the request that would now be destroyed.
  loop().add_callback(Deferred<&HTTP1ServerConnection::do_wake>(weak_self()));
}

void HTTP1ServerConnection::do_wake() {
  if (!x_ || !x_->wake.valid() || x_->wake.done()) return;
  Future<void> w = std::move(x_->wake);
  x_->wake = Future<void>(nullptr);
  w.set_result();
}

void HTTP1ServerConnection::arm_body_timer(TimePoint when) {
  disarm_timer();
  timer_ = loop().call_at(when, [this] {
    timer_ = {};
    if (closed() || !x_) return;
    Duration limit = x_->body_timeout;
    if (loop().time() - x_->last_data >= limit) {
      log::general().info("Timeout reading body from {}", address_);
      close();  // the body's read fails: touch nothing after
      return;
    }
    arm_body_timer(x_->last_data + limit);
  });
}

void HTTP1ServerConnection::disarm_timer() noexcept {
  if (timer_.valid()) {
    loop().remove_timeout(timer_);
    timer_ = {};
  }
}

// --- the end ------------------------------------------------------------------------------------

void HTTP1ServerConnection::wind_down() {
  phase_ = Phase::kWinding;
  context_->disarm(this);
  disarm_timer();
  if (x_) {
    notify_close();
    std::unique_ptr<Exchange> x = std::move(x_);
    if (x->body_unread) linger_ = true;
    x->msg.reset();
    Exchange::give(std::move(x));
  }
  if (read_.valid() && !read_.done()) {
    // close_when_idle on a connection waiting for a head: give up the read.
    Future<void> r = read_;
    r.cancel();
  }
  read_ = Future<void>(nullptr);
  flush();
  (void)close_after_output();
}

/// Lets the last answer reach the kernel, lingers if the client may still
/// be sending, closes, and tells the delegate from the loop.
Future<void> HTTP1ServerConnection::close_after_output() {
  std::weak_ptr<HTTP1ServerConnection*> alive = weak_self();
  if (last_write_.valid() && !last_write_.done() && !closed()) {
    Future<void> w = last_write_;
    try {
      co_await w;
    } catch (const std::exception&) {
      // The stream closed: nothing more to say.
    }
    if (gone(alive)) co_return;
  }
  if (last_write_.valid() && last_write_.done()) (void)last_write_.exception();
  last_write_ = Future<void>(nullptr);
  if (linger_ && !closed()) {
    // Lingering close: the peer may still be sending the request we
    // refused; swallow some of it so our answer is not lost to a reset.
    ::shutdown(stream_->fileno(), SHUT_WR);
    timer_ = loop().call_at(loop().time() + kLingerTime, [this] {
      timer_ = {};
      close();
    });
    std::size_t swallowed = 0;
    while (!closed() && swallowed < kLingerBytes) {
      swallowed += stream_->buffered().size();
      stream_->consume(stream_->buffered().size());
      bool eof = false;
      try {
        co_await stream_->read_more();
      } catch (const net::StreamClosedError&) {
        eof = true;
      }
      if (gone(alive)) co_return;
      if (eof) break;
    }
    disarm_timer();
  }
  close();
  loop().add_callback(Deferred<&HTTP1ServerConnection::finish_serving>(alive));
}

void HTTP1ServerConnection::finish_serving() {
  if (phase_ == Phase::kDone || !delegate_) return;
  phase_ = Phase::kDone;
  Future<void> done = std::move(done_);
  done_ = Future<void>(nullptr);
  HTTPServerConnectionDelegate& delegate = *delegate_;
  try {
    delegate.on_close(*this);  // may destroy this connection: touch nothing after
  } catch (const std::exception& e) {
    log::app().error("Exception in on_close: {}", e.what());
  }
  if (done.valid()) done.set_result();
}

// --- responses ------------------------------------------------------------------------------------

std::string& HTTP1ServerConnection::output() {
  if (!out_) {
    out_ = output_pool().take();
    if (!out_) out_ = std::make_shared<std::string>();
  }
  return *out_;
}

Future<void> HTTP1ServerConnection::emit() {
  // Answering inside run() without waiting: the connection is handling
  // input and may find more requests, so collect (see the header).
  if (running_ && phase_ == Phase::kHead && out_ && out_->size() < kCorkLimit) return ready_future();
  return flush();
}

Future<void> HTTP1ServerConnection::flush() {
  if (!out_ || out_->empty()) return ready_future();
  if (closed()) {
    out_->clear();
    Future<void> f = make_exception_future<void>(std::make_exception_ptr(net::StreamClosedError()));
    (void)f.exception();  // nobody has to look: on_connection_close tells the story
    return f;
  }
  // Shared, not moved: once the stream has written it (usually at once), the
  // buffer comes back to the pool with its capacity.
  Future<void> f = stream_->write(std::shared_ptr<const std::string>(out_));
  if (out_.use_count() == 1) {
    out_->clear();
    if (out_->capacity() <= kKeepCapacity) output_pool().give(std::move(out_));
  }
  out_.reset();
  if (!f.done()) last_write_ = f;
  return f;
}

void HTTP1ServerConnection::send_error(int status) {
  Exchange& x = *x_;
  x.close_after = true;
  x.keep_alive = false;
  if (x.started) {
    flush();
    close();
    return;
  }
  std::string_view reason = responses(status);
  char body[96];
  int n = std::snprintf(body, sizeof body, "{\"status\": %d, \"reason\": \"%.*s\"}", status,
                        static_cast<int>(reason.size()), reason.data());
  std::string_view text(body, n > 0 ? std::min<std::size_t>(static_cast<std::size_t>(n), sizeof body - 1) : 0);
  HeadersLease lease;
  HTTPHeaders& headers = lease.get();
  headers.clear();
  char length[24];
  auto r = std::to_chars(length, length + sizeof length, text.size());
  headers.add_unchecked("Content-Type", "application/json");
  headers.add_unchecked("Content-Length", std::string_view(length, static_cast<std::size_t>(r.ptr - length)));
  try {
    start_response(status, reason, headers, text);
  } catch (const std::exception&) {
    close();
    return;
  }
  x.finished = true;
  flush();
}

void HTTP1ServerConnection::start_response(int code, std::string_view reason, const HTTPHeaders& headers,
                                           std::string_view first_chunk) {
  if (!x_) throw HTTPOutputError("no request to answer");
  Exchange& x = *x_;
  if (x.started) throw HTTPOutputError("write_headers called twice");
  if (code < 100 || code > 999) throw HTTPOutputError("invalid status code");
  if (reason.empty()) reason = responses(code);
  if (reason.find_first_of("\r\n") != std::string_view::npos) throw HTTPOutputError("CR or LF in reason phrase");

  // Framing, RFC 9112 section 6.3 and CONFORMANCE 2.1: never both
  // Content-Length and Transfer-Encoding; chunked only for HTTP/1.1. The
  // caller's fields are read once; the ones the connection decides
  // (Transfer-Encoding, Connection) are skipped, and nothing is added to
  // the caller's headers.
  bool no_body_status = code < 200 || code == 204 || code == 304;
  bool drop_length = code < 200 || code == 204;
  bool has_body = !no_body_status && !x.head;
  std::optional<std::uint64_t> length;
  bool has_date = false, has_server = false, asks_close = false;
  for (HTTPHeaders::Field f : headers) {
    if (f.name.size() == 14 && iequals(f.name, "Content-Length")) {
      if (drop_length || length) continue;
      std::uint64_t n = 0;
      auto r = std::from_chars(f.value.data(), f.value.data() + f.value.size(), n);
      if (f.value.empty() || r.ec != std::errc() || r.ptr != f.value.data() + f.value.size()) {
        throw HTTPOutputError("invalid Content-Length");
      }
      length = n;
    } else if (f.name.size() == 10 && iequals(f.name, "Connection")) {
      asks_close = asks_close || has_token(f.value, "close");
    } else if (f.name.size() == 4 && iequals(f.name, "Date")) {
      has_date = true;
    } else if (f.name.size() == 6 && iequals(f.name, "Server")) {
      has_server = true;
    }
  }
  if (has_body && length && !first_chunk.empty() && first_chunk.size() > *length) {
    x.close_after = true;
    throw HTTPOutputError("body longer than its Content-Length");
  }

  // Decided: from here on nothing throws but allocation.
  x.started = true;
  x.has_body = has_body;
  if (length) {
    if (has_body) x.remaining = *length - std::min<std::uint64_t>(*length, first_chunk.size());
  } else if (has_body) {
    if (!x.http10) x.chunked = true;
    else x.close_after = true;  // delimited by closing (HTTP/1.0)
  }
  if (asks_close || !x.keep_alive || closing_) x.close_after = true;  // closing_: a graceful stop
  // Answered before the client, waiting for 100 Continue, was told to send
  // its body: it may send it or not, so nothing after it can be framed.
  if (x.expect_continue) x.close_after = true;

  std::string& out = output();
  out.append("HTTP/1.1 ");
  append_decimal(out, static_cast<std::uint64_t>(code));
  out.push_back(' ');
  out.append(reason);
  out.append("\r\n");
  bool first_length = true;
  for (HTTPHeaders::Field f : headers) {
    if (f.name.size() == 17 && iequals(f.name, "Transfer-Encoding")) continue;
    if (f.name.size() == 10 && iequals(f.name, "Connection")) continue;
    if (f.name.size() == 14 && iequals(f.name, "Content-Length")) {
      if (drop_length || !first_length) continue;
      first_length = false;
    }
    out.append(f.name);
    out.append(": ");
    out.append(f.value);
    out.append("\r\n");
  }
  if (x.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (x.close_after) {
    out.append("Connection: close\r\n");
  } else if (x.http10) {
    out.append("Connection: keep-alive\r\n");
  }
  if (!has_date) {
    out.append("Date: ");
    out.append(http_date());
    out.append("\r\n");
  }
  if (!has_server) {
    out.append("Server: ");
    out.append(kServerName);
    out.append("\r\n");
  }
  out.append("\r\n");
  if (!first_chunk.empty() && has_body) {
    if (x.chunked) {
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
  start_response(code, reason, headers, first_chunk);
  return emit();
}

void HTTP1ServerConnection::set_max_body_size(std::uint64_t max_body_size) {
  if (x_) x_->max_body_size = max_body_size;
}

void HTTP1ServerConnection::set_body_timeout(Duration body_timeout) {
  if (x_) x_->body_timeout = body_timeout;
}

Future<void> HTTP1ServerConnection::write(std::string_view chunk) {
  if (!x_ || !x_->started) throw HTTPOutputError("write before write_headers");
  Exchange& x = *x_;
  if (x.finished) throw HTTPOutputError("write after finish");
  if (chunk.empty() || !x.has_body) return ready_future();
  if (x.remaining) {
    if (chunk.size() > *x.remaining) {
      // The peer could not frame what follows: Tornado closes too.
      x.close_after = true;
      flush();
      close();
      throw HTTPOutputError("body longer than its Content-Length");
    }
    *x.remaining -= chunk.size();
  }
  std::string& out = output();
  if (x.chunked) {
    append_hex(out, chunk.size());
    out.append("\r\n");
    out.append(chunk);
    out.append("\r\n");
  } else {
    out.append(chunk);
  }
  return emit();
}

void HTTP1ServerConnection::finish() {
  if (!x_ || !x_->started) throw HTTPOutputError("finish before write_headers");
  Exchange& x = *x_;
  if (x.finished) throw HTTPOutputError("finish called twice");
  x.finished = true;
  if (x.chunked) output().append("0\r\n\r\n");  // RFC 9112 section 7.1: last-chunk, no trailers
  if (x.remaining && *x.remaining > 0) {
    log::general().warn("Response to {} ended {} bytes short of its Content-Length", address_, *x.remaining);
    x.close_after = true;
    flush();
    close();
  } else {
    emit();
  }
  wake();
}

}  // namespace squall::http
