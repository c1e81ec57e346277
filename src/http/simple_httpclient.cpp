// The native AsyncHTTPClient. Overview (see simple_httpclient.hpp):
//
//   fetch_impl -> run(): one coroutine per fetch, owning a FetchTask on its
//   frame (deadline timer, slot, timings). Per fetch:
//     queue    wait for one of max_clients slots (FIFO)            "queue"
//     per hop  (the request, then each redirect it follows)
//       acquire  an idle pooled connection, or wait for the host's
//                limit, or connect (DNS, TCP, TLS)                  "connect"
//       exchange write the request (one write), read the head
//                (100-continue in between), then the body           "request"
//       release  back to the pool if both sides allow keep-alive and
//                the response was read to its end; else close
//   A stale pooled connection (closed by the server while idle) that fails
//   before any byte of response is retried once on a fresh connection for
//   idempotent methods, as browsers do.
//
// Timeouts and close() abort a fetch by cancelling its coroutine (the
// CancelledError surfaces at whatever it awaits, which is thereby
// cancelled too) after recording why; the coroutine turns that into
// HTTPTimeoutError or a "closed" HTTPClientError. A caller's cancel()
// carries no reason and stays a cancellation. Every resource a fetch holds
// (slot, connection, timer, queue entry) is released by a destructor, so
// any way out leaks nothing.
//
// The client's state lives in a Core shared by the client object and the
// running fetches, so a fetch resumed after the client was destroyed (its
// close() having aborted it) still finds the pool it must give back to.
#include "http/simple_httpclient.hpp"

#include <openssl/evp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <coroutine>
#include <cstdio>
#include <deque>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/http1_client_connection.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/url.hpp"
#include "squall/net/resolver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/ssl_iostream.hpp"
#include "squall/net/tcpclient.hpp"

namespace squall::http {
namespace {

/// Sent when neither the request nor its headers name a User-Agent.
constexpr std::string_view kDefaultUserAgent = "squall/0.1";
/// A body up to this size travels in the same write as the head.
constexpr std::size_t kInlineBodyLimit = 64 * 1024;
/// A redirect's own body is read (to keep the connection) up to this size;
/// a longer one closes the connection instead.
constexpr std::uint64_t kMaxDrainedBody = 64 * 1024;

// --- URLs ---------------------------------------------------------------------------------------

/// Where a request goes, from its URL.
struct Target {
  bool https = false;
  std::string host;  // without IPv6 brackets
  int port = 0;
  std::string netloc;  // the Host field: host[:port] as the URL has it
  std::string path;    // origin-form request target: path?query
  bool has_userinfo = false;
  std::string username;
  std::string password;
};

bool has_forbidden_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

Target parse_target(const std::string& url) {
  SplitURL u = split_url(url);
  Target t;
  t.https = iequals(u.scheme, "https");
  if (!t.https && !iequals(u.scheme, "http")) throw std::invalid_argument("Unsupported url scheme: " + url);
  if (u.host.empty()) throw std::invalid_argument("No host in URL: " + url);
  t.host.assign(u.host);
  t.port = u.port ? *u.port : (t.https ? 443 : 80);
  t.netloc = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  if (u.port) t.netloc += ":" + std::to_string(*u.port);
  t.path.assign(u.path.empty() ? std::string_view("/") : u.path);
  if (!u.query.empty()) {
    t.path += '?';
    t.path.append(u.query);
  }
  // The target and Host go on the wire as they are: nothing that could
  // end a line or a field may get there (request splitting).
  if (has_forbidden_chars(t.path) || has_forbidden_chars(t.netloc)) {
    throw std::invalid_argument("URL has characters not allowed in a request: " + url);
  }
  if (!u.userinfo.empty()) {
    t.has_userinfo = true;
    auto colon = u.userinfo.find(':');
    t.username.assign(u.userinfo.substr(0, colon));
    if (colon != std::string_view::npos) t.password.assign(u.userinfo.substr(colon + 1));
  }
  return t;
}

bool has_scheme(std::string_view ref) {
  // RFC 3986 section 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
  if (ref.empty() || !std::isalpha(static_cast<unsigned char>(ref[0]))) return false;
  for (char c : ref) {
    if (c == ':') return true;
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return false;
}

/// RFC 3986 section 5.2.4.
std::string remove_dot_segments(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (in.starts_with("../")) {
      in.remove_prefix(3);
    } else if (in.starts_with("./")) {
      in.remove_prefix(2);
    } else if (in.starts_with("/./")) {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.starts_with("/../") || in == "/..") {
      in = in.size() == 3 ? std::string_view("/") : in.substr(3);
      auto slash = out.rfind('/');
      out.erase(slash == std::string::npos ? 0 : slash);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      auto next = in.find('/', 1);
      out.append(in.substr(0, next));
      in = next == std::string_view::npos ? std::string_view() : in.substr(next);
    }
  }
  return out;
}

/// The absolute URL `ref` (a Location value) names relative to `base`
/// (RFC 3986 section 5.2, as Python's urljoin).
std::string resolve_url(std::string_view base, std::string_view ref) {
  if (auto hash = ref.find('#'); hash != std::string_view::npos) ref = ref.substr(0, hash);
  if (has_scheme(ref)) return std::string(ref);
  auto scheme_end = base.find("://");
  std::string_view scheme = base.substr(0, scheme_end);
  if (ref.starts_with("//")) return std::string(scheme) + ":" + std::string(ref);
  std::size_t authority_end = base.find_first_of("/?#", scheme_end + 3);
  if (authority_end == std::string_view::npos) authority_end = base.size();
  std::string_view origin = base.substr(0, authority_end);
  std::string_view rest = base.substr(authority_end);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::string_view base_path = rest.substr(0, rest.find('?'));
  if (ref.empty()) return std::string(origin) + std::string(rest);
  if (ref[0] == '?') return std::string(origin) + std::string(base_path.empty() ? "/" : base_path) + std::string(ref);
  std::string_view ref_path = ref.substr(0, ref.find('?'));
  std::string_view ref_query = ref.substr(ref_path.size());
  std::string merged;
  if (ref[0] == '/') {
    merged.assign(ref_path);
  } else {
    auto slash = base_path.rfind('/');
    merged = slash == std::string_view::npos ? "/" : std::string(base_path.substr(0, slash + 1));
    merged.append(ref_path);
  }
  return std::string(origin) + remove_dot_segments(merged) + std::string(ref_query);
}

bool same_origin(const Target& a, const Target& b) {
  return a.https == b.https && a.port == b.port && iequals(a.host, b.host);
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool idempotent(std::string_view method) {
  // RFC 9110 section 9.2.2.
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" || method == "DELETE" ||
         method == "TRACE";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// --- the request head ------------------------------------------------------------------------------

/// The request line and fields (and, when `inline_body`, the body) as one
/// string, so the request goes out in one write. Tornado's rules for the
/// fields the client adds (simple_httpclient._HTTPConnection.run).
std::string build_head(const HTTPRequest& req, const Target& target, bool producer, bool expect, bool inline_body) {
  const bool has_body = req.body.has_value();
  const bool url_auth = target.has_userinfo;
  const bool auth = url_auth || !req.auth_username.empty();
  std::string head;
  head.reserve(160 + req.headers.size() * 48 + (inline_body ? req.body->size() : 0));
  head += req.method;
  head += ' ';
  head += target.path;
  head += " HTTP/1.1\r\n";
  bool has_host = false, has_ua = false, has_ae = false, has_ct = false, has_cl = false, has_te = false;
  for (auto field : req.headers) {
    std::string_view name = field.name;
    if (iequals(name, "Host")) {
      has_host = true;
    } else if (iequals(name, "User-Agent")) {
      if (!req.user_agent.empty()) continue;  // the request's user_agent wins
      has_ua = true;
    } else if (iequals(name, "Accept-Encoding")) {
      has_ae = true;
    } else if (iequals(name, "Content-Type")) {
      has_ct = true;
    } else if (iequals(name, "Content-Length")) {
      if (has_body) continue;  // the real length is written below
      has_cl = true;
    } else if (iequals(name, "Transfer-Encoding")) {
      if (has_body) continue;
      has_te = true;
    } else if (iequals(name, "Authorization")) {
      if (auth) continue;
    } else if (iequals(name, "Expect")) {
      if (expect) continue;
    }
    head += name;
    head += ": ";
    head += field.value;
    head += "\r\n";
  }
  if (!has_host) {
    head += "Host: ";
    head += target.netloc;
    head += "\r\n";
  }
  if (!req.user_agent.empty()) {
    head += "User-Agent: ";
    head += req.user_agent;
    head += "\r\n";
  } else if (!has_ua) {
    head += "User-Agent: ";
    head += kDefaultUserAgent;
    head += "\r\n";
  }
  if (req.decompress_response && !has_ae) head += "Accept-Encoding: gzip\r\n";
  if (auth) {
    std::string credentials = url_auth ? target.username + ":" + target.password
                                       : req.auth_username + ":" + req.auth_password;
    head += "Authorization: Basic ";
    head += base64(credentials);
    head += "\r\n";
  }
  if (has_body) {
    head += "Content-Length: ";
    head += std::to_string(req.body->size());
    head += "\r\n";
  } else if (producer && !has_cl && !has_te) {
    head += "Transfer-Encoding: chunked\r\n";
  }
  if (req.method == "POST" && !has_ct) head += "Content-Type: application/x-www-form-urlencoded\r\n";
  if (expect) head += "Expect: 100-continue\r\n";
  head += "\r\n";
  if (inline_body) head += *req.body;
  return head;
}

// --- body sinks ------------------------------------------------------------------------------------

class CollectSink final : public BodySink {
 public:
  explicit CollectSink(std::string& body) : body_(body) {}
  void data(std::string_view piece) override { body_.append(piece); }

 private:
  std::string& body_;
};

class StreamingSink final : public BodySink {
 public:
  explicit StreamingSink(const std::function<void(std::string_view)>& callback) : callback_(callback) {}
  void data(std::string_view piece) override { callback_(piece); }

 private:
  const std::function<void(std::string_view)>& callback_;
};

class DiscardSink final : public BodySink {
 public:
  void data(std::string_view) override {}
};

// --- body producers --------------------------------------------------------------------------------

/// What a body_producer's writer writes through; detached (stream null)
/// once the exchange is over, so a writer kept too long fails cleanly.
struct BodyWriterState {
  net::IOStream* stream = nullptr;
  bool chunked = true;
  std::uint64_t declared = 0;  // Content-Length, when not chunked
  std::uint64_t written = 0;

  Future<void> write(std::string chunk) {
    if (!stream) {
      return make_exception_future<void>(
          std::make_exception_ptr(HTTPStreamClosedError("The request body can no longer be written")));
    }
    if (chunk.empty()) return make_ready_future();  // an empty chunk would end a chunked body
    written += chunk.size();
    if (!chunked) {
      if (written > declared) {
        return make_exception_future<void>(std::make_exception_ptr(HTTPClientError(
            599, "body_producer wrote more than the request's Content-Length (" + std::to_string(declared) + ")")));
      }
      return stream->write(std::move(chunk));
    }
    // RFC 9112 section 7.1: size in hex, CRLF, data, CRLF; one write.
    char size[24];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    std::string framed;
    framed.reserve(static_cast<std::size_t>(n) + chunk.size() + 2);
    framed.append(size, static_cast<std::size_t>(n));
    framed += chunk;
    framed += "\r\n";
    return stream->write(std::move(framed));
  }
};

/// Runs the request's body_producer, framing its chunks.
Future<void> produce_body(net::IOStream& stream, const HTTPRequest& req) {
  auto state = std::make_shared<BodyWriterState>();
  state->stream = &stream;
  if (auto cl = req.headers.get("Content-Length")) {
    std::string_view v = trim(*cl);
    std::uint64_t n = 0;
    if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw std::invalid_argument("Invalid Content-Length for a body_producer: " + std::string(*cl));
    }
    for (char c : v) n = n * 10 + static_cast<std::uint64_t>(c - '0');
    state->chunked = false;
    state->declared = n;
  }
  struct Detach {
    std::shared_ptr<BodyWriterState> state;
    ~Detach() { state->stream = nullptr; }
  } detach{state};
  BodyWriter writer = [state](std::string chunk) { return state->write(std::move(chunk)); };
  Future<void> produced = req.body_producer(std::move(writer));
  if (produced.valid()) co_await std::move(produced);
  if (state->chunked) {
    stream.write(std::string_view("0\r\n\r\n"));
  } else if (state->written != state->declared) {
    throw HTTPClientError(599, "body_producer wrote " + std::to_string(state->written) +
                                   " bytes but the request's Content-Length is " + std::to_string(state->declared));
  }
}

/// Writes the head, with the body if it is small; a large body follows
/// without being copied (it is shared with the request).
void write_request(net::IOStream& stream, std::string head, const std::shared_ptr<const HTTPRequest>& owner,
                   const HTTPRequest& req, bool with_body, bool body_inline) {
  if (!head.empty()) stream.write(std::move(head));
  if (!with_body || body_inline || !req.body || req.body->empty()) return;
  if (owner.get() == &req) {
    stream.write(std::shared_ptr<const std::string>(owner, &*req.body));
  } else {
    stream.write(std::string_view(*req.body));  // a redirect's copy: short-lived
  }
}

// --- a resolver that answers with addresses already looked up ---------------------------------------

/// Lets TCPClient race a name's addresses (happy eyeballs) after the fetch
/// resolved them itself, so name lookup and connect are timed apart.
class ResolvedOnce final : public net::Resolver {
 public:
  explicit ResolvedOnce(std::vector<net::ResolvedAddress> addresses) : addresses_(std::move(addresses)) {}
  Future<std::vector<net::ResolvedAddress>> resolve(const std::string&, int, int) override {
    return make_ready_future(addresses_);
  }

 private:
  std::vector<net::ResolvedAddress> addresses_;
};

/// The coroutine's own promise, so a timer can cancel it.
struct CurrentPromise {
  detail::PromiseBase* promise = nullptr;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    promise = &h.promise();
    return false;  // carry on at once
  }
  detail::PromiseBase* await_resume() const noexcept { return promise; }
};

// --- the client's state ----------------------------------------------------------------------------

class Core;
struct HostPool;

/// One pooled connection and its bookkeeping.
struct PooledConnection {
  PooledConnection(std::unique_ptr<net::IOStream> stream, std::size_t max_header_size, HostPool* p)
      : conn(std::move(stream), max_header_size), pool(p) {}
  HTTP1ClientConnection conn;
  HostPool* pool;
  TimePoint idle_since{};
};

struct HostWaiter {
  struct FetchTask* task;
  Future<void> ready;
};

/// The connections of one (scheme, host, port, TLS settings).
struct HostPool {
  std::string key;
  std::vector<std::unique_ptr<PooledConnection>> idle;  // most recently used last
  int open = 0;                                         // idle, busy and connecting
  std::deque<HostWaiter> waiters;                       // fetches waiting for `open` to drop
};

enum class Abort : std::uint8_t { none, queue, connect, request, closed };

/// One fetch's state, on its coroutine's frame.
struct FetchTask {
  FetchTask(Core& c, TimePoint started);
  ~FetchTask();
  FetchTask(const FetchTask&) = delete;
  FetchTask& operator=(const FetchTask&) = delete;

  /// (Re)arms the one deadline timer: at `deadline`, abort with `kind`.
  void arm(TimePoint deadline, Abort kind);
  void disarm() noexcept;
  std::exception_ptr abort_error() const;

  Core* core;
  detail::PromiseBase* promise = nullptr;
  FetchTask* prev = nullptr;  // Core's list of live fetches
  FetchTask* next = nullptr;
  bool listed = false;
  TimeoutHandle timer{};
  Abort abort = Abort::none;
  bool has_slot = false;
  bool queued = false;  // in the max_clients queue
  TimePoint start;
  TimePoint transfer_start;  // once a slot was had: TimeInfo counts from here
  TimePoint request_deadline = TimePoint::max();
  TimeInfo time{};
};

/// A claim on one of a host's connections: a live one, or the right to
/// open one (counted in `open`). Gives it back however it is dropped.
class Lease {
 public:
  Lease() = default;
  Lease(Core* core, HostPool* pool) noexcept : core_(core), pool_(pool) {}
  Lease(Core* core, std::unique_ptr<PooledConnection> conn) noexcept
      : core_(core), pool_(conn->pool), conn_(std::move(conn)), reused_(true) {}
  Lease(Lease&& o) noexcept
      : core_(o.core_), pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)), reused_(o.reused_) {}
  Lease& operator=(Lease&& o) noexcept {
    if (this != &o) {
      reset();
      core_ = o.core_;
      pool_ = std::exchange(o.pool_, nullptr);
      conn_ = std::move(o.conn_);
      reused_ = o.reused_;
    }
    return *this;
  }
  ~Lease() { reset(); }

  explicit operator bool() const noexcept { return pool_ != nullptr; }
  PooledConnection* get() const noexcept { return conn_.get(); }
  bool reused() const noexcept { return reused_; }
  void attach(std::unique_ptr<PooledConnection> conn) noexcept { conn_ = std::move(conn); }
  /// Back to the pool for the next fetch.
  void release();
  /// Closes the connection (if any) and gives the claim up.
  void reset() noexcept;

 private:
  Core* core_ = nullptr;
  HostPool* pool_ = nullptr;
  std::unique_ptr<PooledConnection> conn_;
  bool reused_ = false;
};

/// What one exchange produced.
struct Hop {
  ClientResponseHead head;
  bool body_sent = false;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(IOLoop& loop, HTTPClientOptions options)
      : loop_(&loop), options_(std::move(options)),
        resolver_(options_.resolver ? options_.resolver : net::default_resolver()) {}
  ~Core() { loop_->remove_timeout(sweep_timer_); }

  static Future<HTTPResponse> run(std::shared_ptr<Core> self, std::shared_ptr<const HTTPRequest> original);
  void close();
  bool closed() const noexcept { return closed_; }
  IOLoop& loop() const noexcept { return *loop_; }

  // --- used by FetchTask and Lease ---
  void link(FetchTask& t) noexcept;
  void unlink(FetchTask& t) noexcept;
  void leave_queue(FetchTask& t) noexcept;
  void release_slot(FetchTask& t);
  void put_idle(std::unique_ptr<PooledConnection> c);
  void discard(std::unique_ptr<PooledConnection> c) noexcept;
  void give_back(HostPool* pool) noexcept;

 private:
  bool try_take_slot(FetchTask& t) noexcept;
  Future<void> wait_for_slot(FetchTask& t);
  HostPool& pool_for(const std::string& key);
  Lease take_idle(HostPool& pool);
  static Future<Lease> acquire_slow(std::shared_ptr<Core> self, FetchTask& t, std::string key, const Target& target,
                                    const HTTPRequest& req);
  static Future<void> wait_for_host(HostPool& pool, FetchTask& t);
  bool wake_host(HostPool& pool) noexcept;
  Future<std::unique_ptr<net::IOStream>> connect(FetchTask& t, const Target& target, const HTTPRequest& req);
  std::shared_ptr<net::SSLContext> tls_context(const HTTPRequest& req);
  Future<void> exchange(FetchTask& t, PooledConnection& pc, const std::shared_ptr<const HTTPRequest>& original,
                        const HTTPRequest& req, const Target& target, Hop& hop);
  void arm_sweep(TimePoint when);
  void sweep();

  IOLoop* loop_;
  HTTPClientOptions options_;
  std::shared_ptr<net::Resolver> resolver_;
  int active_ = 0;  // fetches holding a slot
  std::deque<std::pair<FetchTask*, Future<void>>> slot_queue_;
  FetchTask* first_ = nullptr;  // every live fetch (close() aborts them)
  FetchTask* last_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<HostPool>> pools_;
  TimeoutHandle sweep_timer_{};
  std::map<std::string, std::shared_ptr<net::SSLContext>> tls_contexts_;
  bool closed_ = false;
};

// --- FetchTask -------------------------------------------------------------------------------------

FetchTask::FetchTask(Core& c, TimePoint started) : core(&c), start(started) { c.link(*this); }

FetchTask::~FetchTask() {
  disarm();
  if (queued) core->leave_queue(*this);
  if (has_slot) core->release_slot(*this);
  core->unlink(*this);
}

void FetchTask::arm(TimePoint deadline, Abort kind) {
  disarm();
  if (deadline == TimePoint::max()) return;
  timer = core->loop().call_at(deadline, [this, kind] {
    timer = {};
    abort = kind;
    if (promise) promise->request_cancel();
  });
}

void FetchTask::disarm() noexcept {
  if (timer.valid()) core->loop().remove_timeout(timer);
  timer = {};
}

std::exception_ptr FetchTask::abort_error() const {
  switch (abort) {
    case Abort::queue:
      return std::make_exception_ptr(HTTPTimeoutError("queue"));
    case Abort::connect:
      return std::make_exception_ptr(HTTPTimeoutError("connect"));
    case Abort::request:
      return std::make_exception_ptr(HTTPTimeoutError("request"));
    case Abort::closed:
      return std::make_exception_ptr(HTTPClientError(599, "The HTTP client was closed"));
    case Abort::none:
      break;
  }
  return nullptr;
}

// --- Lease -------------------------------------------------------------------------------------------

void Lease::release() {
  pool_ = nullptr;
  core_->put_idle(std::move(conn_));
}

void Lease::reset() noexcept {
  HostPool* pool = std::exchange(pool_, nullptr);
  if (!pool) return;
  if (conn_) {
    core_->discard(std::move(conn_));
  } else {
    core_->give_back(pool);
  }
}

// --- Core: the list of fetches and the max_clients queue -------------------------------------------

void Core::link(FetchTask& t) noexcept {
  t.prev = last_;
  t.next = nullptr;
  (last_ ? last_->next : first_) = &t;
  last_ = &t;
  t.listed = true;
}

void Core::unlink(FetchTask& t) noexcept {
  if (!t.listed) return;
  (t.prev ? t.prev->next : first_) = t.next;
  (t.next ? t.next->prev : last_) = t.prev;
  t.prev = t.next = nullptr;
  t.listed = false;
}

bool Core::try_take_slot(FetchTask& t) noexcept {
  if (active_ >= options_.max_clients || !slot_queue_.empty()) return false;
  ++active_;
  t.has_slot = true;
  return true;
}

Future<void> Core::wait_for_slot(FetchTask& t) {
  Future<void> ready;
  slot_queue_.emplace_back(&t, ready);
  t.queued = true;
  // Cancelled (by its caller, a timeout or close()): out of the queue.
  ready.set_cancel_handler([this, &t] { leave_queue(t); });
  return ready;
}

void Core::leave_queue(FetchTask& t) noexcept {
  if (!t.queued) return;
  t.queued = false;
  auto it = std::find_if(slot_queue_.begin(), slot_queue_.end(), [&t](const auto& e) { return e.first == &t; });
  if (it != slot_queue_.end()) slot_queue_.erase(it);
}

void Core::release_slot(FetchTask& t) {
  if (!t.has_slot) return;
  t.has_slot = false;
  // The slot goes straight to the first waiter, in FIFO order.
  while (!closed_ && !slot_queue_.empty()) {
    auto [next, ready] = std::move(slot_queue_.front());
    slot_queue_.pop_front();
    next->queued = false;
    if (ready.done()) continue;
    ready.clear_cancel_handler();
    next->has_slot = true;
    ready.set_result();  // resumes that fetch, which runs until it waits
    return;
  }
  --active_;
}

// --- Core: the pool ---------------------------------------------------------------------------------

HostPool& Core::pool_for(const std::string& key) {
  auto [it, inserted] = pools_.try_emplace(key);
  if (inserted) {
    it->second = std::make_unique<HostPool>();
    it->second->key = key;
  }
  return *it->second;
}

Lease Core::take_idle(HostPool& pool) {
  TimePoint now = loop_->time();
  while (!pool.idle.empty()) {
    std::unique_ptr<PooledConnection> c = std::move(pool.idle.back());
    pool.idle.pop_back();
    // A connection the server closed while it idled (the stream noticed
    // the FIN) or one idle too long is not worth trying.
    if (c->conn.closed() || now - c->idle_since >= options_.idle_connection_timeout) {
      discard(std::move(c));
      continue;
    }
    return Lease(this, std::move(c));
  }
  return Lease();
}

Future<void> Core::wait_for_host(HostPool& pool, FetchTask& t) {
  Future<void> ready;
  pool.waiters.push_back(HostWaiter{&t, ready});
  HostPool* p = &pool;
  ready.set_cancel_handler([p, &t] {
    auto it = std::find_if(p->waiters.begin(), p->waiters.end(), [&t](const HostWaiter& w) { return w.task == &t; });
    if (it != p->waiters.end()) p->waiters.erase(it);
  });
  return ready;
}

bool Core::wake_host(HostPool& pool) noexcept {
  while (!pool.waiters.empty()) {
    HostWaiter w = std::move(pool.waiters.front());
    pool.waiters.pop_front();
    if (w.ready.done()) continue;
    w.ready.clear_cancel_handler();
    w.ready.set_result();
    return true;
  }
  return false;
}

void Core::put_idle(std::unique_ptr<PooledConnection> c) {
  if (closed_ || c->conn.closed()) {
    discard(std::move(c));
    return;
  }
  HostPool& pool = *c->pool;
  c->idle_since = loop_->time();
  pool.idle.push_back(std::move(c));
  if (!sweep_timer_.valid()) arm_sweep(loop_->time() + options_.idle_connection_timeout);
  wake_host(pool);
}

void Core::discard(std::unique_ptr<PooledConnection> c) noexcept {
  HostPool* pool = c->pool;
  c->conn.close();
  c.reset();
  give_back(pool);
}

void Core::give_back(HostPool* pool) noexcept {
  --pool->open;
  // An unused pool is forgotten by the next sweep, never here: callers up
  // the stack (a woken waiter's, take_idle's) may still hold it.
  if (!wake_host(*pool) && pool->open == 0 && !sweep_timer_.valid() && !closed_) {
    arm_sweep(loop_->time() + options_.idle_connection_timeout);
  }
}

void Core::arm_sweep(TimePoint when) {
  sweep_timer_ = loop_->call_at(when, [this] { sweep(); });
}

/// Closes idle connections past idle_connection_timeout (and any the server
/// closed), then re-arms for the next one to expire. One timer per client,
/// not one per connection.
void Core::sweep() {
  sweep_timer_ = {};
  TimePoint now = loop_->time();
  std::vector<std::unique_ptr<PooledConnection>> expired;
  for (auto& [key, pool] : pools_) {
    auto& idle = pool->idle;
    for (auto& c : idle) {
      if (c->conn.closed() || now - c->idle_since >= options_.idle_connection_timeout) expired.push_back(std::move(c));
    }
    std::erase(idle, nullptr);
  }
  // Discarded after the walk: giving a connection back may wake a waiter,
  // which may add pools.
  for (auto& c : expired) discard(std::move(c));
  // Then forget unused pools (nothing here resumes anyone).
  TimePoint next = TimePoint::max();
  for (auto it = pools_.begin(); it != pools_.end();) {
    HostPool& pool = *it->second;
    for (auto& c : pool.idle) next = std::min(next, c->idle_since + options_.idle_connection_timeout);
    if (pool.open == 0 && pool.waiters.empty() && pool.idle.empty()) {
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
  if (next != TimePoint::max() && !closed_ && !sweep_timer_.valid()) arm_sweep(next);
}

void Core::close() {
  if (closed_) return;
  closed_ = true;
  loop_->remove_timeout(sweep_timer_);
  sweep_timer_ = {};
  // Abort every fetch, queued or running. Each leaves the list before it is
  // cancelled, so whatever its cancellation sets off cannot upset the walk.
  while (FetchTask* t = first_) {
    unlink(*t);
    t->abort = Abort::closed;
    if (t->promise) t->promise->request_cancel();
  }
  std::vector<std::unique_ptr<PooledConnection>> idle;
  for (auto& [key, pool] : pools_) {
    for (auto& c : pool->idle) idle.push_back(std::move(c));
    pool->idle.clear();
  }
  for (auto& c : idle) discard(std::move(c));
}

// --- Core: connecting -------------------------------------------------------------------------------

std::shared_ptr<net::SSLContext> Core::tls_context(const HTTPRequest& req) {
  std::string key = std::string(req.validate_cert ? "1" : "0") + '\n' + req.ca_certs + '\n' + req.client_cert + '\n' +
                    req.client_key;
  auto it = tls_contexts_.find(key);
  if (it != tls_contexts_.end()) return it->second;
  net::SSLOptions o;
  o.verify_peer = req.validate_cert;
  o.check_hostname = req.validate_cert;
  o.ca_certs = req.ca_certs;
  o.certfile = req.client_cert;
  o.keyfile = req.client_key;
  o.alpn_protocols = {"http/1.1"};
  auto ctx = net::SSLContext::client(o);
  tls_contexts_.emplace(std::move(key), ctx);
  return ctx;
}

Future<std::unique_ptr<net::IOStream>> Core::connect(FetchTask& t, const Target& target, const HTTPRequest& req) {
  std::shared_ptr<net::SSLContext> ctx = target.https ? tls_context(req) : nullptr;
  std::vector<net::ResolvedAddress> addresses;
  if (auto numeric = net::ResolvedAddress::try_from_ip(target.host, target.port)) {
    addresses.push_back(*numeric);
  } else {
    addresses = co_await resolver_->resolve(target.host, target.port, AF_UNSPEC);
    if (addresses.empty()) throw net::ResolveError("No addresses for " + target.host);
  }
  t.time.namelookup = loop_->time() - t.transfer_start;
  net::TCPClient tcp(std::make_shared<ResolvedOnce>(std::move(addresses)));
  net::ConnectOptions options;
  options.stream.max_buffer_size = options_.max_buffer_size;
  std::unique_ptr<net::IOStream> stream = co_await tcp.connect(target.host, target.port, options);
  stream->set_nodelay(true);
  t.time.connect = loop_->time() - t.transfer_start;
  if (ctx) {
    std::unique_ptr<net::SSLIOStream> tls = co_await net::start_tls(std::move(stream), ctx, target.host);
    stream = std::move(tls);
    t.time.appconnect = loop_->time() - t.transfer_start;
  }
  co_return stream;
}

Future<Lease> Core::acquire_slow(std::shared_ptr<Core> self, FetchTask& t, std::string key, const Target& target,
                                 const HTTPRequest& req) {
  for (;;) {
    // Looked up afresh after each wait: the pool may have been forgotten.
    HostPool& pool = self->pool_for(key);
    if (Lease idle = self->take_idle(pool)) co_return idle;
    if (pool.open < std::max(1, self->options_.max_connections_per_host)) {
      ++pool.open;
      Lease lease(self.get(), &pool);
      TimePoint now = self->loop_->time();
      TimePoint connect_deadline =
          req.connect_timeout > Duration::zero() ? now + req.connect_timeout : TimePoint::max();
      if (connect_deadline <= t.request_deadline) {
        t.arm(connect_deadline, Abort::connect);
      } else {
        t.arm(t.request_deadline, Abort::request);
      }
      std::unique_ptr<net::IOStream> stream = co_await self->connect(t, target, req);
      lease.attach(std::make_unique<PooledConnection>(std::move(stream), self->options_.max_header_size, &pool));
      co_return lease;
    }
    t.arm(t.request_deadline, Abort::queue);
    co_await wait_for_host(pool, t);
  }
}

// --- Core: one exchange ---------------------------------------------------------------------------------

Future<void> Core::exchange(FetchTask& t, PooledConnection& pc, const std::shared_ptr<const HTTPRequest>& original,
                            const HTTPRequest& req, const Target& target, Hop& hop) {
  HTTP1ClientConnection& conn = pc.conn;
  net::IOStream& stream = conn.stream();
  conn.begin_exchange();
  const bool has_body = req.body.has_value();
  const bool producer = !has_body && static_cast<bool>(req.body_producer);
  const bool expect = req.expect_100_continue && (has_body || producer);
  const bool body_inline = has_body && !expect && req.body->size() <= kInlineBodyLimit;
  t.time.pretransfer = loop_->time() - t.transfer_start;
  std::string head = build_head(req, target, producer, expect, body_inline);
  hop.body_sent = false;
  if (!expect) {
    write_request(stream, std::move(head), original, req, has_body, body_inline);
    if (producer) co_await produce_body(stream, req);
    hop.body_sent = true;
  } else {
    stream.write(std::move(head));
  }
  for (;;) {
    co_await conn.read_head(hop.head, /*want_continue=*/!hop.body_sent);
    if (hop.body_sent || hop.head.code != 100) break;
    // 100 Continue (RFC 9110 section 10.1.1): now the body.
    conn.consume_head();
    write_request(stream, {}, original, req, has_body, false);
    if (producer) co_await produce_body(stream, req);
    hop.body_sent = true;
  }
  t.time.starttransfer = conn.first_byte_time() - t.transfer_start;
}

// --- Core: the fetch ------------------------------------------------------------------------------------

std::string pool_key(const Target& target, const HTTPRequest& req) {
  std::string key = target.https ? "https://" : "http://";
  key += target.netloc;
  if (target.https) {
    // Connections made with other TLS settings are other connections.
    key += '\n';
    key += req.validate_cert ? '1' : '0';
    key += '\n' + req.ca_certs + '\n' + req.client_cert + '\n' + req.client_key;
  }
  // netloc omits a default port; the key must not.
  key += '#' + std::to_string(target.port);
  return key;
}

void check_native_support(const HTTPRequest& req) {
  if (!req.proxy_host.empty() || req.proxy_port != 0 || !req.proxy_username.empty() || !req.proxy_password.empty()) {
    throw std::invalid_argument("proxy settings are not supported by the native HTTP client; use the curl backend");
  }
  if (req.auth_mode != "basic" && !req.auth_mode.empty()) {
    throw std::invalid_argument("auth_mode \"" + req.auth_mode +
                                "\" is not supported by the native HTTP client (basic only); use the curl backend");
  }
}

bool is_redirect(int code) { return code == 301 || code == 302 || code == 303 || code == 307 || code == 308; }

Future<HTTPResponse> Core::run(std::shared_ptr<Core> self, std::shared_ptr<const HTTPRequest> original) {
  IOLoop& loop = *self->loop_;
  FetchTask t(*self, loop.time());
  t.promise = co_await CurrentPromise{};
  std::exception_ptr failure;
  HTTPResponse response;
  try {
    if (self->closed_) throw HTTPClientError(599, "The HTTP client is closed");
    const HTTPRequest* req = original.get();
    check_native_support(*req);
    Target target = parse_target(req->url);
    if (original->request_timeout > Duration::zero()) t.request_deadline = t.start + original->request_timeout;

    // A slot among max_clients.
    if (!self->try_take_slot(t)) {
      t.arm(t.request_deadline, Abort::queue);
      co_await self->wait_for_slot(t);
    }
    t.transfer_start = loop.time();
    t.time.queue = t.transfer_start - t.start;

    std::optional<HTTPRequest> redirected;  // the request of the current hop, after a redirect
    int redirects_left = req->max_redirects;
    Hop hop;
    for (;;) {
      std::string key = pool_key(target, *req);
      Lease lease;
      // One retry on a fresh connection when a pooled one turns out dead.
      for (int attempt = 0;; ++attempt) {
        lease = self->take_idle(self->pool_for(key));
        if (!lease) {
          Lease fresh = co_await acquire_slow(self, t, key, target, *req);
          lease = std::move(fresh);
        }
        t.arm(t.request_deadline, Abort::request);
        bool stale = false;
        try {
          co_await self->exchange(t, *lease.get(), original, *req, target, hop);
        } catch (const net::StreamClosedError&) {
          stale = attempt == 0 && lease.reused() && !lease.get()->conn.received_any() && idempotent(req->method) &&
                  !req->body_producer;
          if (!stale) throw;
        }
        if (!stale) break;
        lease.reset();
      }
      HTTP1ClientConnection& conn = lease.get()->conn;

      BodyFraming framing;
      ParseResult fr = response_body_framing(hop.head.code, req->method == "HEAD", hop.head.headers, framing);
      if (fr.status == ParseStatus::kError) {
        throw HTTPInputError(std::string("Malformed HTTP response: ") + (fr.error ? fr.error : "bad framing"));
      }
      auto location = hop.head.headers.get("Location");
      bool follow = req->follow_redirects && is_redirect(hop.head.code) && redirects_left > 0 && location;
      if (follow) {
        // The redirect's own body: drained to keep the connection if short.
        std::string next_url = resolve_url(req->url, *location);
        conn.consume_head();
        bool drain = framing.kind == BodyFraming::kNone || framing.kind == BodyFraming::kChunked ||
                     (framing.kind == BodyFraming::kContentLength && framing.length <= kMaxDrainedBody);
        if (drain && hop.body_sent) {
          DiscardSink discard;
          try {
            co_await conn.read_body(framing, false, kMaxDrainedBody, discard);
          } catch (const HTTPBodyTooLargeError&) {
            drain = false;  // a long chunked body: not worth reading
          }
        }
        if (drain && hop.body_sent && conn.reusable(hop.head, framing) &&
            !iequals(req->headers.get("Connection", ""), "close")) {
          lease.release();
        } else {
          lease.reset();
        }

        Target next_target;
        try {
          next_target = parse_target(next_url);
        } catch (const std::invalid_argument&) {
          throw HTTPClientError(599, "Unsupported redirect location: " + std::string(*location));
        }
        HTTPRequest next = *req;
        next.url = std::move(next_url);
        next.headers.remove("Host");
        // RFC 9110 section 15.4: browsers turn a POST into a GET on 301 and
        // 302, and 303 means GET for anything but HEAD (Tornado, curl >= 7.70).
        if ((hop.head.code == 303 && req->method != "HEAD") ||
            ((hop.head.code == 301 || hop.head.code == 302) && req->method == "POST")) {
          next.method = "GET";
          next.body.reset();
          next.body_producer = nullptr;
          for (const char* h : {"Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding"}) {
            next.headers.remove(h);
          }
        }
        if (!same_origin(target, next_target)) {
          // Credentials are for the origin they were given to.
          next.headers.remove("Authorization");
          next.headers.remove("Cookie");
          next.auth_username.clear();
          next.auth_password.clear();
        }
        redirected = std::move(next);
        req = &*redirected;
        target = std::move(next_target);
        --redirects_left;
        t.time.redirect = loop.time() - t.transfer_start;
        continue;
      }

      if (req->header_callback) {
        std::string_view text = conn.head_text();
        while (!text.empty() && (text.front() == '\r' || text.front() == '\n')) text.remove_prefix(1);
        while (!text.empty()) {
          std::size_t eol = text.find('\n');
          std::size_t n = eol == std::string_view::npos ? text.size() : eol + 1;
          req->header_callback(text.substr(0, n));
          text.remove_prefix(n);
        }
      }
      conn.consume_head();
      std::string_view encoding = trim(hop.head.headers.get("Content-Encoding", ""));
      bool gzip = req->decompress_response && iequals(encoding, "gzip");
      const std::size_t max_body = self->options_.max_body_size ? self->options_.max_body_size : SIZE_MAX;
      if (hop.body_sent || framing.kind == BodyFraming::kNone) {
        if (req->streaming_callback) {
          StreamingSink sink(req->streaming_callback);
          co_await conn.read_body(framing, gzip, max_body, sink);
        } else {
          if (framing.kind == BodyFraming::kContentLength && !gzip && framing.length <= max_body) {
            response.body.reserve(static_cast<std::size_t>(framing.length));
          }
          CollectSink sink(response.body);
          co_await conn.read_body(framing, gzip, max_body, sink);
        }
      } else {
        // A final answer before the body went out (100-continue refused):
        // the body is read, but the connection cannot be trusted again.
        CollectSink sink(response.body);
        co_await conn.read_body(framing, gzip, max_body, sink);
      }
      if (hop.body_sent && conn.reusable(hop.head, framing) && !iequals(req->headers.get("Connection", ""), "close")) {
        lease.release();
      } else {
        lease.reset();
      }
      t.disarm();
      response.code = hop.head.code;
      response.reason = std::move(hop.head.reason);
      response.headers = std::move(hop.head.headers);
      response.effective_url = req->url;
      break;
    }
  } catch (const CancelledError&) {
    if (t.abort == Abort::none) throw;  // the caller's cancel()
    failure = t.abort_error();
  } catch (const net::StreamClosedError& e) {
    std::string message = "Stream closed";
    if (auto real = e.real_error()) {
      try {
        std::rethrow_exception(real);
      } catch (const std::exception& cause) {
        message += std::string(": ") + cause.what();
      } catch (...) {
      }
    }
    failure = std::make_exception_ptr(HTTPStreamClosedError(message));
  } catch (...) {
    failure = std::current_exception();
  }
  t.disarm();
  self->release_slot(t);
  if (failure) std::rethrow_exception(failure);
  response.time_info = t.time;
  response.time_info.total = loop.time() - t.transfer_start;
  response.request_time = loop.time() - t.start;
  co_return response;
}

// --- the client object ------------------------------------------------------------------------------------

class SimpleAsyncHTTPClient final : public AsyncHTTPClient {
 public:
  explicit SimpleAsyncHTTPClient(HTTPClientOptions options)
      : AsyncHTTPClient(std::move(options)), core_(std::make_shared<Core>(IOLoop::current(), options_)) {}
  ~SimpleAsyncHTTPClient() override { close(); }

  void close() override {
    closed_ = true;
    core_->close();
  }

 protected:
  Future<HTTPResponse> fetch_impl(std::shared_ptr<const HTTPRequest> request) override {
    return Core::run(core_, std::move(request));
  }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

std::unique_ptr<AsyncHTTPClient> make_simple_http_client(HTTPClientOptions options) {
  return std::make_unique<SimpleAsyncHTTPClient>(std::move(options));
}

}  // namespace squall::http
