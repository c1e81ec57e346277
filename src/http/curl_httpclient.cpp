// CurlAsyncHTTPClient: AsyncHTTPClient on libcurl's multi-socket API
// (Tornado's curl_httpclient).
//
// How curl is driven (curl_multi_socket_action(3)):
// - curl names each socket it wants watched through CURLMOPT_SOCKETFUNCTION;
//   that becomes add_handler / update_handler / remove_handler on the loop.
//   curl reports CURL_POLL_REMOVE before it closes a socket, so the loop
//   never watches a closed fd.
// - curl asks for one timer through CURLMOPT_TIMERFUNCTION; it is one loop
//   timer. Readiness and the timer both end in curl_multi_socket_action(),
//   then CURLMSG_DONE messages finish transfers. No thread, no polling.
// - curl forbids calling the multi API from its own callbacks, and a
//   callback may run user code (streaming_callback, header_callback, a body
//   producer resumed by back-pressure) that cancels a fetch or starts one.
//   So every call into curl is counted (curl_depth_), and what must touch
//   the multi handle meanwhile is deferred to after_curl_, run as soon as
//   curl has returned. Futures are resolved last, outside curl, and the
//   `alive_` token tells whether a continuation destroyed the client.
//
// What squall does itself rather than curl, and why:
// - Name resolution: HTTPClientOptions::resolver answers first and the
//   addresses go to curl through CURLOPT_RESOLVE (or CURLOPT_CONNECT_TO when
//   the resolver moved the port), so OverrideResolver and test resolvers
//   apply and no lookup leaves the machine behind the user's back.
// - Redirects: followed here, hop by hop (CURLOPT_FOLLOWLOCATION off), so
//   each hop's host goes through the resolver too and the rules are the
//   native backend's (301/302 turn POST into GET, 303 turns anything but
//   HEAD into GET, 307/308 keep method and body; credentials and cookies do
//   not follow a redirect to another origin).
// - Timeouts: loop timers, so they name the phase ("queue", "connect",
//   "request") and follow the loop's clock (virtual in tests). curl's own
//   timeouts are set a little later as a backstop.
// - max_clients: a FIFO queue in front of curl (curl's own pending queue
//   cannot say how long a transfer waited or time it out as "queue").
#include "http/curl_httpclient.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"
#include "squall/http/httputil.hpp"
#include "squall/http/url.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/resolver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/tcpclient.hpp"

namespace squall::http {

namespace {

using Addresses = std::vector<net::ResolvedAddress>;

/// curl's own timeouts fire this much after ours: they are a backstop for
/// a loop that stopped running timers, not the timeouts users see.
constexpr Duration kCurlTimeoutSlack = std::chrono::seconds(1);
/// Easy handles kept for reuse (curl_easy_reset keeps their caches).
constexpr std::size_t kMaxSpareHandles = 64;
constexpr std::string_view kDefaultUserAgent = "squall/0.1";

struct EasyDeleter {
  void operator()(CURL* easy) const noexcept { ::curl_easy_cleanup(easy); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;

struct MultiDeleter {
  void operator()(CURLM* multi) const noexcept { ::curl_multi_cleanup(multi); }
};
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const noexcept { ::curl_slist_free_all(list); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

void slist_append(SlistPtr& list, const std::string& item) {
  curl_slist* grown = ::curl_slist_append(list.get(), item.c_str());
  if (!grown) throw std::bad_alloc();
  (void)list.release();  // grown is the same list with one more node
  list.reset(grown);
}

void global_init() {
  // curl_global_init(3) is not thread-safe against itself on every build:
  // once per process, never undone (other code in the process may use curl).
  static std::once_flag once;
  std::call_once(once, [] {
    CURLcode rc = ::curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) throw std::runtime_error(std::string("curl_global_init: ") + ::curl_easy_strerror(rc));
  });
}

template <class T>
void setopt(CURL* easy, CURLoption option, T value) {
  CURLcode rc = ::curl_easy_setopt(easy, option, value);
  if (rc != CURLE_OK) {
    throw std::invalid_argument(std::string("curl_easy_setopt: ") + ::curl_easy_strerror(rc));
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

/// "HTTP/1.1 200 OK" → code and reason; false if it is not a status line.
bool parse_status_line(std::string_view line, int& code, std::string& reason) {
  line = trim(line);
  if (line.substr(0, 5) != "HTTP/") return false;
  auto sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string_view rest = line.substr(sp + 1);
  if (rest.size() < 3) return false;
  int value = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + 3, value);
  if (ec != std::errc() || end != rest.data() + 3) return false;
  code = value;
  reason = std::string(trim(rest.substr(3)));
  return true;
}

Duration info_time(CURL* easy, CURLINFO info) {
  curl_off_t us = 0;
  if (::curl_easy_getinfo(easy, info, &us) != CURLE_OK) return Duration::zero();
  return std::chrono::duration_cast<Duration>(std::chrono::microseconds(us));
}

long to_millis(Duration d) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return ms < 1 ? 1 : static_cast<long>(ms);
}

struct Origin {
  std::string scheme;
  std::string host;
  int port = 0;
  friend bool operator==(const Origin&, const Origin&) = default;
};

Origin origin_of(const std::string& url) {
  SplitURL parts = split_url(url);
  Origin o{lower(parts.scheme), lower(parts.host), 0};
  o.port = parts.port ? *parts.port : (o.scheme == "https" ? 443 : 80);
  return o;
}

/// "host:port:" for CURLOPT_RESOLVE / CURLOPT_CONNECT_TO (IPv6 in brackets).
std::string host_key(const std::string& host, int port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port) + ":";
}

std::string bracketed_ip(const net::ResolvedAddress& a) {
  return a.family == AF_INET6 ? "[" + a.ip() + "]" : a.ip();
}

bool is_ip_literal(const std::string& host) { return net::ResolvedAddress::try_from_ip(host, 0).has_value(); }

}  // namespace

class CurlAsyncHTTPClient final : public AsyncHTTPClient {
 public:
  explicit CurlAsyncHTTPClient(HTTPClientOptions options);
  ~CurlAsyncHTTPClient() override;

  void close() override;

 protected:
  Future<HTTPResponse> fetch_impl(std::shared_ptr<const HTTPRequest> request) override;

 private:
  /// One fetch, from fetch_impl() to its Future's result, redirects
  /// included. Owned by fetches_; per-hop state is reset by begin_hop().
  ///
  /// States: queued (waiting for a max_clients slot) → resolving (the
  /// resolver is looking the host up) → transferring (the easy handle is in
  /// the multi handle) → back to resolving for each redirect → finished.
  struct Fetch {
    enum class State { queued, resolving, transferring, finished };

    CurlAsyncHTTPClient* client = nullptr;
    std::shared_ptr<const HTTPRequest> original;
    std::shared_ptr<const HTTPRequest> request;  // this hop's
    Future<HTTPResponse> future;
    State state = State::queued;
    bool holds_slot = false;
    TimePoint start{};
    TimePoint deadline{};
    Duration queue_time{};
    Duration redirect_time{};
    int redirects = 0;
    TimeoutHandle request_timer{};
    TimeoutHandle connect_timer{};
    Future<Addresses> resolving{nullptr};

    // --- this hop ---
    unsigned hop = 0;
    TimePoint hop_start{};
    Duration resolve_time{};
    EasyPtr easy;
    bool in_multi = false;
    bool aborted = false;  // curl callbacks fail from here on
    SlistPtr headers;
    SlistPtr resolve;
    SlistPtr connect_to;
    std::array<char, CURL_ERROR_SIZE> errbuf{};
    bool connected = false;
    // The request body: a fixed one, or chunks from the body producer.
    std::string_view upload;
    std::size_t upload_offset = 0;
    bool producing = false;
    struct Chunk {
      std::string data;
      std::size_t offset = 0;
      Future<void> done;
    };
    std::deque<Chunk> chunks;
    bool producer_done = false;
    bool read_paused = false;
    Future<void> producer{nullptr};
    // The response.
    int code = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<std::string> head_lines;  // for header_callback
    bool interim = false;     // inside a 1xx head: not the response
    bool will_redirect = false;  // the body is not the caller's
    std::size_t head_bytes = 0;
    std::string body;
    std::size_t body_bytes = 0;
    std::exception_ptr error;  // a failure found in a callback
  };
  using FetchPtr = std::shared_ptr<Fetch>;

  // --- curl's callbacks (C linkage conventions; never throw) ---
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* userp, void* socketp) noexcept;
  static int on_timer(CURLM* multi, long timeout_ms, void* userp) noexcept;
  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* userp) noexcept;
  static std::size_t on_write(char* data, std::size_t size, std::size_t n, void* userp) noexcept;
  static std::size_t on_read(char* buffer, std::size_t size, std::size_t n, void* userp) noexcept;
  static int on_seek(void* userp, curl_off_t offset, int origin) noexcept;
  static int on_prereq(void* userp, char* primary_ip, char* local_ip, int primary_port, int local_port) noexcept;

  // --- driving curl ---
  void drive(curl_socket_t fd, int flags);
  /// Runs what was deferred while curl was on the stack, and the finished
  /// transfers' completions. May destroy the client (check `alive`).
  void settle(const std::shared_ptr<bool>& alive);
  void defer(std::function<void()> fn);
  void shutdown_multi();
  bool in_curl() const noexcept { return curl_depth_ > 0; }

  // --- a fetch's life ---
  void pump();
  void start(const FetchPtr& f);
  void begin_hop(const FetchPtr& f);
  void on_resolved(const FetchPtr& f, unsigned hop, Future<Addresses> result);
  void start_transfer(const FetchPtr& f, const Addresses& addresses, const std::string& resolved_host, int resolved_port);
  void configure(Fetch& f, const HTTPRequest& req);
  void transfer_done(const FetchPtr& f, CURLcode rc);
  std::exception_ptr translate(Fetch& f, CURLcode rc);
  HTTPResponse make_response(Fetch& f);
  std::shared_ptr<HTTPRequest> redirected(const Fetch& f, const std::string& location) const;
  void unpause(const FetchPtr& f);
  void on_producer_done(const FetchPtr& f, unsigned hop, Future<void> done);
  /// Takes the hop's easy handle out of curl and stops its producer.
  void end_hop(Fetch& f);
  /// Ends the fetch: timers, slot, bookkeeping; returns the Future to
  /// resolve. The caller resolves it last (user code runs there).
  Future<HTTPResponse> retire(const FetchPtr& f);
  void fail(const FetchPtr& f, std::exception_ptr error);
  void abort(const FetchPtr& f);  // the Future was cancelled
  void on_request_timeout(const FetchPtr& f);
  void on_connect_timeout(const FetchPtr& f);

  IOLoop& loop_;
  std::shared_ptr<net::Resolver> resolver_;
  MultiPtr multi_;
  TimeoutHandle timer_{};
  std::unordered_map<int, std::uint32_t> watched_;  // fd → events the loop watches for curl
  std::unordered_map<Fetch*, FetchPtr> fetches_;
  std::unordered_map<CURL*, Fetch*> by_easy_;
  std::deque<FetchPtr> queue_;
  int active_ = 0;
  int curl_depth_ = 0;
  std::vector<std::function<void()>> after_curl_;
  std::vector<EasyPtr> spare_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// --- construction -----------------------------------------------------------------

CurlAsyncHTTPClient::CurlAsyncHTTPClient(HTTPClientOptions options)
    : AsyncHTTPClient(std::move(options)), loop_(IOLoop::current()) {
  global_init();
  resolver_ = options_.resolver ? options_.resolver : net::default_resolver();
  multi_.reset(::curl_multi_init());
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
  CURLM* m = multi_.get();
  ::curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &CurlAsyncHTTPClient::on_socket);
  ::curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
  ::curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &CurlAsyncHTTPClient::on_timer);
  ::curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
  if (options_.max_connections_per_host > 0) {
    ::curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options_.max_connections_per_host));
  }
  // Idle connections kept: enough for every slot, as the native pool.
  ::curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, static_cast<long>(std::max(options_.max_clients, 1)));
}

CurlAsyncHTTPClient::~CurlAsyncHTTPClient() {
  close();
  if (multi_) shutdown_multi();
  *alive_ = false;
}

std::unique_ptr<AsyncHTTPClient> make_curl_http_client(HTTPClientOptions options) {
  return std::make_unique<CurlAsyncHTTPClient>(std::move(options));
}

void CurlAsyncHTTPClient::close() {
  loop_.assert_in_loop_thread();
  if (closed_) return;
  closed_ = true;
  auto alive = alive_;
  // Queued fetches first, so ending a running one does not start them.
  std::vector<FetchPtr> all(queue_.begin(), queue_.end());
  for (auto& [p, f] : fetches_) {
    if (f->state != Fetch::State::queued) all.push_back(f);
  }
  for (auto& f : all) {
    fail(f, std::make_exception_ptr(HTTPClientError(599, "The HTTP client was closed")));
    if (!*alive) return;
  }
  if (in_curl()) {
    // close() from a callback: the multi handle goes once curl has returned.
    defer([this] { shutdown_multi(); });
    return;
  }
  shutdown_multi();
}

void CurlAsyncHTTPClient::shutdown_multi() {
  // What a callback deferred (a removal) goes before the multi handle does.
  while (!after_curl_.empty()) {
    for (auto& cb : std::exchange(after_curl_, {})) cb();
  }
  loop_.remove_timeout(std::exchange(timer_, TimeoutHandle{}));
  for (auto& [easy, f] : by_easy_) {
    if (f->in_multi && multi_) ::curl_multi_remove_handle(multi_.get(), easy);
    f->in_multi = false;
  }
  multi_.reset();  // closes the connections; on_socket deregisters them
  for (const auto& [fd, events] : watched_) loop_.remove_handler(fd);
  watched_.clear();
  spare_.clear();
}

// --- fetch ------------------------------------------------------------------------

Future<HTTPResponse> CurlAsyncHTTPClient::fetch_impl(std::shared_ptr<const HTTPRequest> request) {
  loop_.assert_in_loop_thread();
  if (closed_) {
    return make_exception_future<HTTPResponse>(
        std::make_exception_ptr(HTTPClientError(599, "The HTTP client was closed")));
  }
  auto f = std::make_shared<Fetch>();
  f->client = this;
  f->original = request;
  f->request = request;
  f->start = loop_.time();
  f->deadline = f->start + request->request_timeout;
  Future<HTTPResponse> future = f->future;
  fetches_.emplace(f.get(), f);
  std::weak_ptr<Fetch> weak = f;
  future.set_cancel_handler([this, weak] {
    if (auto locked = weak.lock()) abort(locked);
  });
  f->request_timer = loop_.call_at(f->deadline, [this, weak] {
    if (auto locked = weak.lock()) on_request_timeout(locked);
  });
  queue_.push_back(f);
  pump();
  return future;
}

void CurlAsyncHTTPClient::pump() {
  auto alive = alive_;
  while (!closed_ && !queue_.empty() && active_ < std::max(options_.max_clients, 1)) {
    FetchPtr f = std::move(queue_.front());
    queue_.pop_front();
    ++active_;
    f->holds_slot = true;
    start(f);
    if (!*alive) return;
  }
}

void CurlAsyncHTTPClient::start(const FetchPtr& f) {
  f->queue_time = loop_.time() - f->start;
  begin_hop(f);
}

void CurlAsyncHTTPClient::begin_hop(const FetchPtr& f) {
  ++f->hop;
  f->hop_start = loop_.time();
  f->resolve_time = Duration::zero();
  f->state = Fetch::State::resolving;
  f->connected = false;
  loop_.remove_timeout(std::exchange(f->connect_timer, TimeoutHandle{}));
  std::weak_ptr<Fetch> weak = f;
  f->connect_timer = loop_.call_later(f->request->connect_timeout, [this, weak] {
    if (auto locked = weak.lock()) on_connect_timeout(locked);
  });

  const HTTPRequest& req = *f->request;
  std::string host;
  int port = 0;
  try {
    SplitURL parts = split_url(req.url);
    std::string scheme = lower(parts.scheme);
    if (scheme != "http" && scheme != "https") {
      throw std::invalid_argument("Unsupported URL scheme in '" + req.url + "' (http or https)");
    }
    if (parts.host.empty()) throw std::invalid_argument("No host in URL '" + req.url + "'");
    if (!req.proxy_host.empty()) {
      // curl connects to the proxy; the proxy looks the target up.
      host = req.proxy_host;
      port = req.proxy_port > 0 ? req.proxy_port : 80;
    } else {
      host = std::string(parts.host);
      port = parts.port ? *parts.port : (scheme == "https" ? 443 : 80);
    }
  } catch (...) {
    fail(f, std::current_exception());
    return;
  }
  if (is_ip_literal(host)) {
    // curl takes a numeric host as it is, without a lookup of its own.
    start_transfer(f, {}, host, port);
    return;
  }
  // A local handle keeps the state alive while a ready Future runs the
  // callback inside add_done_callback.
  Future<Addresses> resolving = resolver_->resolve(host, port);
  f->resolving = resolving;
  unsigned hop = f->hop;
  resolving.add_done_callback([this, weak, hop](Future<Addresses> done) {
    auto locked = weak.lock();
    // end_hop() clears `resolving` before it cancels the lookup.
    if (!locked || locked->hop != hop || locked->state != Fetch::State::resolving || !(locked->resolving == done)) {
      if (done.done()) (void)done.exception();
      return;
    }
    locked->resolving = Future<Addresses>(nullptr);
    on_resolved(locked, hop, std::move(done));
  });
}

void CurlAsyncHTTPClient::on_resolved(const FetchPtr& f, unsigned /*hop*/, Future<Addresses> result) {
  Addresses addresses;
  try {
    addresses = std::move(result.result());
    if (addresses.empty()) throw net::ResolveError("the resolver returned no address");
  } catch (...) {
    fail(f, std::current_exception());
    return;
  }
  f->resolve_time = loop_.time() - f->hop_start;
  const HTTPRequest& req = *f->request;
  std::string host;
  int port = 0;
  if (!req.proxy_host.empty()) {
    host = req.proxy_host;
    port = req.proxy_port > 0 ? req.proxy_port : 80;
  } else {
    SplitURL parts = split_url(req.url);
    host = std::string(parts.host);
    port = parts.port ? *parts.port : (lower(parts.scheme) == "https" ? 443 : 80);
  }
  start_transfer(f, addresses, host, port);
}

void CurlAsyncHTTPClient::start_transfer(const FetchPtr& f, const Addresses& addresses, const std::string& host,
                                         int port) {
  // Per-hop state starts afresh.
  f->code = 0;
  f->reason.clear();
  f->fields.clear();
  f->interim = false;
  f->will_redirect = false;
  f->head_bytes = 0;
  f->body.clear();
  f->body_bytes = 0;
  f->error = nullptr;
  f->aborted = false;
  f->upload = {};
  f->upload_offset = 0;
  f->producing = false;
  f->producer_done = false;
  f->read_paused = false;
  f->chunks.clear();
  f->errbuf[0] = '\0';
  try {
    if (!spare_.empty()) {
      f->easy = std::move(spare_.back());
      spare_.pop_back();
      ::curl_easy_reset(f->easy.get());
    } else {
      f->easy.reset(::curl_easy_init());
      if (!f->easy) throw std::runtime_error("curl_easy_init failed");
    }
    f->resolve.reset();
    f->connect_to.reset();
    if (!addresses.empty()) {
      bool same_port = std::all_of(addresses.begin(), addresses.end(),
                                   [port](const net::ResolvedAddress& a) { return a.port() == port || a.port() == 0; });
      if (same_port) {
        // "host:port:addr,addr" replaces whatever the multi's DNS cache held
        // for host:port, so every hop uses the resolver's current answer.
        std::string entry = host_key(host, port);
        for (std::size_t i = 0; i < addresses.size(); ++i) {
          if (i) entry += ',';
          entry += bracketed_ip(addresses[i]);
        }
        slist_append(f->resolve, entry);
      } else {
        // The resolver moved the port too (OverrideResolver's host_port
        // rules): only CONNECT_TO can say that, for one address.
        const auto& a = addresses.front();
        slist_append(f->connect_to, host_key(host, port) + bracketed_ip(a) + ":" + std::to_string(a.port()));
      }
    }
    configure(*f, *f->request);
  } catch (...) {
    fail(f, std::current_exception());
    return;
  }
  f->state = Fetch::State::transferring;
  by_easy_[f->easy.get()] = f.get();

  if (f->producing) {
    std::weak_ptr<Fetch> weak = f;
    unsigned hop = f->hop;
    BodyWriter writer = [weak, hop](std::string chunk) -> Future<void> {
      auto locked = weak.lock();
      if (!locked || locked->hop != hop || locked->state != Fetch::State::transferring || locked->aborted) {
        return make_exception_future<void>(
            std::make_exception_ptr(HTTPStreamClosedError("the request ended before its body was written")));
      }
      if (chunk.empty()) return make_ready_future();
      Future<void> done;
      locked->chunks.push_back(Fetch::Chunk{std::move(chunk), 0, done});
      if (locked->read_paused) locked->client->unpause(locked);
      return done;
    };
    try {
      f->producer = f->request->body_producer(std::move(writer));
    } catch (...) {
      fail(f, std::current_exception());
      return;
    }
    f->producer.add_done_callback([this, weak, hop](Future<void> done) {
      if (auto locked = weak.lock()) on_producer_done(locked, hop, std::move(done));
    });
    if (f->state != Fetch::State::transferring || f->hop != hop) return;  // the producer failed at once
  }

  auto add = [this, f, hop = f->hop] {
    if (f->state != Fetch::State::transferring || f->hop != hop || f->aborted || closed_) return;
    ++curl_depth_;
    CURLMcode rc = ::curl_multi_add_handle(multi_.get(), f->easy.get());
    --curl_depth_;
    if (rc != CURLM_OK) {
      fail(f, std::make_exception_ptr(HTTPClientError(599, std::string("curl: ") + ::curl_multi_strerror(rc))));
      return;
    }
    f->in_multi = true;
  };
  if (in_curl()) {
    defer(std::move(add));
  } else {
    add();
  }
}

void CurlAsyncHTTPClient::configure(Fetch& f, const HTTPRequest& req) {
  CURL* e = f.easy.get();
  setopt(e, CURLOPT_PRIVATE, static_cast<void*>(&f));
  setopt(e, CURLOPT_ERRORBUFFER, f.errbuf.data());
  setopt(e, CURLOPT_NOSIGNAL, 1L);
  setopt(e, CURLOPT_URL, req.url.c_str());
  // Only HTTP(S), also for whatever curl might follow (it follows nothing).
  setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  setopt(e, CURLOPT_HEADERFUNCTION, &CurlAsyncHTTPClient::on_header);
  setopt(e, CURLOPT_HEADERDATA, static_cast<void*>(&f));
  setopt(e, CURLOPT_WRITEFUNCTION, &CurlAsyncHTTPClient::on_write);
  setopt(e, CURLOPT_WRITEDATA, static_cast<void*>(&f));
  setopt(e, CURLOPT_PREREQFUNCTION, &CurlAsyncHTTPClient::on_prereq);
  setopt(e, CURLOPT_PREREQDATA, static_cast<void*>(&f));
  // A proxy's answer to CONNECT is not the response.
  setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);

  // Timeouts: ours are loop timers (see the top of the file).
  Duration left = f.deadline - loop_.time();
  setopt(e, CURLOPT_TIMEOUT_MS, to_millis(left + kCurlTimeoutSlack));
  setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to_millis(req.connect_timeout + kCurlTimeoutSlack));
  if (options_.idle_connection_timeout > Duration::zero()) {
    auto idle = std::chrono::ceil<std::chrono::seconds>(options_.idle_connection_timeout).count();
    setopt(e, CURLOPT_MAXAGE_CONN, static_cast<long>(std::max<decltype(idle)>(idle, 1)));
  }

  if (f.resolve) setopt(e, CURLOPT_RESOLVE, f.resolve.get());
  if (f.connect_to) setopt(e, CURLOPT_CONNECT_TO, f.connect_to.get());

  // Method and body. Tornado's curl client: GET, HEAD (NOBODY) and
  // anything else through CUSTOMREQUEST; a body is an upload of known size
  // (or chunked from a producer) whatever the method.
  const std::string& method = req.method;
  bool has_body = req.body.has_value() || static_cast<bool>(req.body_producer);
  bool needs_body = method == "POST" || method == "PUT" || method == "PATCH";
  if (method == "HEAD") {
    setopt(e, CURLOPT_NOBODY, 1L);
  } else if (method == "GET" && !has_body) {
    setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (has_body || needs_body) {
      setopt(e, CURLOPT_UPLOAD, 1L);
      setopt(e, CURLOPT_READFUNCTION, &CurlAsyncHTTPClient::on_read);
      setopt(e, CURLOPT_READDATA, static_cast<void*>(&f));
      setopt(e, CURLOPT_SEEKFUNCTION, &CurlAsyncHTTPClient::on_seek);
      setopt(e, CURLOPT_SEEKDATA, static_cast<void*>(&f));
      if (req.body_producer) {
        f.producing = true;
        curl_off_t size = -1;  // chunked
        if (auto cl = req.headers.get("Content-Length")) {
          curl_off_t v = 0;
          auto [end, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), v);
          if (ec == std::errc() && end == cl->data() + cl->size()) size = v;
        }
        setopt(e, CURLOPT_INFILESIZE_LARGE, size);
      } else {
        f.upload = req.body ? std::string_view(*req.body) : std::string_view();
        setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(f.upload.size()));
      }
    }
  }

  // Headers. "Name;" is curl's way to send an empty value ("Name:" would
  // remove the field). curl adds Expect: 100-continue to large uploads on
  // its own; as Tornado does, only when asked.
  f.headers.reset();
  bool has_expect = false;
  for (const auto& field : req.headers) {
    if (iequals(field.name, "Expect")) has_expect = true;
    // The request's user_agent wins over a User-Agent field (as natively).
    if (!req.user_agent.empty() && iequals(field.name, "User-Agent")) continue;
    std::string line(field.name);
    if (field.value.empty()) {
      line += ';';
    } else {
      line += ": ";
      line += field.value;
    }
    slist_append(f.headers, line);
  }
  if (!has_expect) slist_append(f.headers, req.expect_100_continue ? "Expect: 100-continue" : "Expect:");
  // Tornado's simple client (and so the native backend) labels a POST as a
  // form unless told otherwise; curl does too, but not for an upload.
  if (method == "POST" && !req.headers.contains("Content-Type")) {
    slist_append(f.headers, "Content-Type: application/x-www-form-urlencoded");
  }
  setopt(e, CURLOPT_HTTPHEADER, f.headers.get());

  std::string agent = req.user_agent.empty() ? std::string(kDefaultUserAgent) : req.user_agent;
  setopt(e, CURLOPT_USERAGENT, agent.c_str());  // curl copies strings
  if (req.decompress_response) {
    setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip,deflate");
  } else {
    setopt(e, CURLOPT_ACCEPT_ENCODING, static_cast<char*>(nullptr));
  }
  if (options_.max_body_size > 0) {
    // Refuses a declared Content-Length at once; the decoded size is
    // checked in on_write.
    setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_body_size));
  }

  if (!req.auth_username.empty() || !req.auth_password.empty()) {
    long mode = 0;
    if (req.auth_mode == "basic") {
      mode = CURLAUTH_BASIC;
    } else if (req.auth_mode == "digest") {
      mode = CURLAUTH_DIGEST;
    } else {
      throw std::invalid_argument("Unsupported auth_mode '" + req.auth_mode + "' (basic or digest)");
    }
    setopt(e, CURLOPT_HTTPAUTH, mode);
    setopt(e, CURLOPT_USERNAME, req.auth_username.c_str());
    setopt(e, CURLOPT_PASSWORD, req.auth_password.c_str());
  }

  if (!req.proxy_host.empty()) {
    setopt(e, CURLOPT_PROXY, req.proxy_host.c_str());
    setopt(e, CURLOPT_PROXYPORT, static_cast<long>(req.proxy_port > 0 ? req.proxy_port : 80));
    if (!req.proxy_username.empty() || !req.proxy_password.empty()) {
      long mode = 0;
      if (req.proxy_auth_mode == "basic") {
        mode = CURLAUTH_BASIC;
      } else if (req.proxy_auth_mode == "digest") {
        mode = CURLAUTH_DIGEST;
      } else {
        throw std::invalid_argument("Unsupported proxy_auth_mode '" + req.proxy_auth_mode + "' (basic or digest)");
      }
      setopt(e, CURLOPT_PROXYAUTH, mode);
      setopt(e, CURLOPT_PROXYUSERNAME, req.proxy_username.c_str());
      setopt(e, CURLOPT_PROXYPASSWORD, req.proxy_password.c_str());
    }
  } else {
    // "" turns proxies off, the environment's (http_proxy, ...) included.
    setopt(e, CURLOPT_PROXY, "");
  }

  setopt(e, CURLOPT_SSL_VERIFYPEER, req.validate_cert ? 1L : 0L);
  setopt(e, CURLOPT_SSL_VERIFYHOST, req.validate_cert ? 2L : 0L);
  if (!req.ca_certs.empty()) setopt(e, CURLOPT_CAINFO, req.ca_certs.c_str());
  if (!req.client_cert.empty()) setopt(e, CURLOPT_SSLCERT, req.client_cert.c_str());
  if (!req.client_key.empty()) setopt(e, CURLOPT_SSLKEY, req.client_key.c_str());

  if (!req.http_version.empty()) {
    long version = 0;
    if (req.http_version == "1.0") {
      version = CURL_HTTP_VERSION_1_0;
    } else if (req.http_version == "1.1") {
      version = CURL_HTTP_VERSION_1_1;
    } else if (req.http_version == "2") {
      version = CURL_HTTP_VERSION_2TLS;
    } else if (req.http_version == "2-prior-knowledge") {
      version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    } else if (req.http_version == "3") {
      version = CURL_HTTP_VERSION_3;
    } else {
      throw std::invalid_argument("Unsupported http_version '" + req.http_version +
                                  "' (1.0, 1.1, 2, 2-prior-knowledge or 3)");
    }
    CURLcode rc = ::curl_easy_setopt(e, CURLOPT_HTTP_VERSION, version);
    if (rc != CURLE_OK) {
      // This libcurl was built without that version (no nghttp2, no HTTP/3).
      throw std::invalid_argument("http_version '" + req.http_version + "' is not supported by this libcurl (" +
                                  ::curl_version() + "): " + ::curl_easy_strerror(rc));
    }
  }
  if (req.prepare_curl_callback) req.prepare_curl_callback(static_cast<void*>(e));
}

// --- curl's callbacks ---------------------------------------------------------------

int CurlAsyncHTTPClient::on_socket(CURL* /*easy*/, curl_socket_t fd, int what, void* userp, void* /*socketp*/) noexcept {
  auto& self = *static_cast<CurlAsyncHTTPClient*>(userp);
  std::uint32_t events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= IOLoop::READ;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= IOLoop::WRITE;
  try {
    auto it = self.watched_.find(fd);
    if (what == CURL_POLL_REMOVE || events == 0) {
      if (it != self.watched_.end()) {
        self.loop_.remove_handler(fd);
        self.watched_.erase(it);
      }
    } else if (it == self.watched_.end()) {
      self.loop_.add_handler(fd, events, [&self](int ready_fd, std::uint32_t ready) {
        int flags = 0;
        if (ready & IOLoop::READ) flags |= CURL_CSELECT_IN;
        if (ready & IOLoop::WRITE) flags |= CURL_CSELECT_OUT;
        if (ready & IOLoop::ERROR) flags |= CURL_CSELECT_ERR;
        self.drive(ready_fd, flags);
      });
      self.watched_.emplace(fd, events);
    } else if (it->second != events) {
      self.loop_.update_handler(fd, events);
      it->second = events;
    }
  } catch (const std::exception& e) {
    // Without the watch the transfer still ends: its timeout fires.
    log::general().error("CurlAsyncHTTPClient: cannot watch curl socket {}: {}", fd, e.what());
    return -1;
  }
  return 0;
}

int CurlAsyncHTTPClient::on_timer(CURLM* /*multi*/, long timeout_ms, void* userp) noexcept {
  auto& self = *static_cast<CurlAsyncHTTPClient*>(userp);
  self.loop_.remove_timeout(std::exchange(self.timer_, TimeoutHandle{}));
  if (timeout_ms < 0) return 0;  // curl wants no timer
  try {
    // Even a zero delay goes through the loop: curl_multi_socket_action
    // must not be called from this callback.
    self.timer_ = self.loop_.call_later(std::chrono::milliseconds(timeout_ms), [&self] {
      self.timer_ = {};
      self.drive(CURL_SOCKET_TIMEOUT, 0);
    });
  } catch (const std::exception& e) {
    log::general().error("CurlAsyncHTTPClient: cannot arm curl's timer: {}", e.what());
    return -1;
  }
  return 0;
}

std::size_t CurlAsyncHTTPClient::on_header(char* data, std::size_t size, std::size_t n, void* userp) noexcept {
  auto& f = *static_cast<Fetch*>(userp);
  std::size_t len = size * n;
  if (f.aborted) return 0;
  std::string_view line(data, len);
  try {
    int code = 0;
    std::string reason;
    if (parse_status_line(line, code, reason)) {
      // Each head starts afresh: an interim 1xx, or a 401 that curl answers
      // itself (digest), comes before the response.
      f.interim = code >= 100 && code < 200 && code != 101;
      if (f.interim) return len;
      f.code = code;
      f.reason = reason.empty() ? std::string(responses(code)) : std::move(reason);
      f.fields.clear();
      f.head_lines.clear();
      f.head_bytes = 0;
      f.will_redirect = false;
    } else if (f.interim) {
      if (trim(line).empty()) f.interim = false;
      return len;
    } else if (trim(line).empty()) {
      const HTTPRequest& req = *f.request;
      bool redirect_code = f.code == 301 || f.code == 302 || f.code == 303 || f.code == 307 || f.code == 308;
      bool has_location = std::any_of(f.fields.begin(), f.fields.end(),
                                      [](const auto& kv) { return iequals(kv.first, "Location"); });
      f.will_redirect = req.follow_redirects && redirect_code && has_location && f.redirects < req.max_redirects;
      // The head goes to header_callback whole, and only if it is not a
      // redirect being followed (as the native backend and Tornado do).
      if (req.header_callback && !f.will_redirect) {
        for (const auto& l : f.head_lines) req.header_callback(l);
        req.header_callback(line);
      }
      f.head_lines.clear();
      return len;
    } else if (line.front() == ' ' || line.front() == '\t') {
      // obs-fold (RFC 9112 section 5.2): part of the previous value.
      if (!f.fields.empty()) {
        f.fields.back().second += ' ';
        f.fields.back().second += trim(line);
      }
    } else {
      auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        f.fields.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
      }
    }
    f.head_bytes += len;
    if (f.head_bytes > f.client->options_.max_header_size) {
      throw HTTPInputError("Response head is larger than max_header_size (" +
                           std::to_string(f.client->options_.max_header_size) + " bytes)", 431);
    }
    if (f.request->header_callback) f.head_lines.emplace_back(line);
  } catch (...) {
    f.error = std::current_exception();
    return 0;
  }
  return len;
}

std::size_t CurlAsyncHTTPClient::on_write(char* data, std::size_t size, std::size_t n, void* userp) noexcept {
  auto& f = *static_cast<Fetch*>(userp);
  std::size_t len = size * n;
  if (f.aborted) return 0;
  if (f.will_redirect) return len;  // the redirect's body is nobody's
  try {
    f.body_bytes += len;
    std::size_t limit = f.client->options_.max_body_size;
    if (limit > 0 && f.body_bytes > limit) {
      throw HTTPBodyTooLargeError(limit);
    }
    if (f.request->streaming_callback) {
      f.request->streaming_callback(std::string_view(data, len));
    } else {
      f.body.append(data, len);
    }
  } catch (...) {
    f.error = std::current_exception();
    return 0;
  }
  return len;
}

std::size_t CurlAsyncHTTPClient::on_read(char* buffer, std::size_t size, std::size_t n, void* userp) noexcept {
  auto& f = *static_cast<Fetch*>(userp);
  std::size_t room = size * n;
  if (f.aborted) return CURL_READFUNC_ABORT;
  if (!f.producing) {
    std::size_t count = std::min(room, f.upload.size() - f.upload_offset);
    std::memcpy(buffer, f.upload.data() + f.upload_offset, count);
    f.upload_offset += count;
    return count;
  }
  std::size_t copied = 0;
  std::vector<Future<void>> drained;
  while (copied < room && !f.chunks.empty()) {
    auto& chunk = f.chunks.front();
    std::size_t count = std::min(room - copied, chunk.data.size() - chunk.offset);
    std::memcpy(buffer + copied, chunk.data.data() + chunk.offset, count);
    copied += count;
    chunk.offset += count;
    if (chunk.offset == chunk.data.size()) {
      drained.push_back(std::move(chunk.done));
      f.chunks.pop_front();
    }
  }
  if (!drained.empty()) {
    // Back-pressure released outside curl: the producer's continuation may
    // write again, or cancel the fetch.
    try {
      f.client->defer([drained = std::move(drained)]() mutable {
        for (auto& d : drained) {
          if (!d.done()) d.set_result();
        }
      });
    } catch (...) {
      f.error = std::current_exception();
      return CURL_READFUNC_ABORT;
    }
  }
  if (copied > 0) return copied;
  if (f.producer_done) return 0;  // the end of the body
  f.read_paused = true;
  return CURL_READFUNC_PAUSE;
}

int CurlAsyncHTTPClient::on_seek(void* userp, curl_off_t offset, int origin) noexcept {
  auto& f = *static_cast<Fetch*>(userp);
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  if (f.producing) {
    // A produced body cannot be sent twice (curl rewinds to resend after a
    // 401 or a dropped keep-alive connection); at the start is fine.
    return offset == 0 && f.chunks.empty() && !f.producer_done ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
  }
  if (static_cast<std::size_t>(offset) > f.upload.size()) return CURL_SEEKFUNC_FAIL;
  f.upload_offset = static_cast<std::size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

int CurlAsyncHTTPClient::on_prereq(void* userp, char*, char*, int, int) noexcept {
  // The connection is up (TCP, TLS, a proxy's tunnel): connect_timeout is
  // over for this hop.
  auto& f = *static_cast<Fetch*>(userp);
  f.connected = true;
  f.client->loop_.remove_timeout(std::exchange(f.connect_timer, TimeoutHandle{}));
  return CURL_PREREQFUNC_OK;
}

// --- driving curl ---------------------------------------------------------------------

void CurlAsyncHTTPClient::defer(std::function<void()> fn) { after_curl_.push_back(std::move(fn)); }

void CurlAsyncHTTPClient::drive(curl_socket_t fd, int flags) {
  if (!multi_) return;
  auto alive = alive_;
  int running = 0;
  ++curl_depth_;
  ::curl_multi_socket_action(multi_.get(), fd, flags, &running);
  --curl_depth_;
  settle(alive);
}

void CurlAsyncHTTPClient::settle(const std::shared_ptr<bool>& alive) {
  for (;;) {
    if (!*alive || in_curl()) return;
    if (!after_curl_.empty()) {
      for (auto& cb : std::exchange(after_curl_, {})) {
        cb();
        if (!*alive) return;
      }
      continue;
    }
    if (!multi_) return;
    // Finished transfers, collected before any of them runs user code.
    std::vector<std::pair<FetchPtr, CURLcode>> done;
    int left = 0;
    while (CURLMsg* msg = ::curl_multi_info_read(multi_.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = by_easy_.find(msg->easy_handle);
      if (it == by_easy_.end()) continue;
      auto owner = fetches_.find(it->second);
      if (owner == fetches_.end()) continue;
      done.emplace_back(owner->second, msg->data.result);
    }
    if (done.empty()) return;
    for (auto& [f, rc] : done) {
      if (f->state != Fetch::State::transferring || f->aborted) continue;
      transfer_done(f, rc);
      if (!*alive) return;
    }
  }
}

void CurlAsyncHTTPClient::unpause(const FetchPtr& f) {
  auto go = [this, f, hop = f->hop] {
    if (f->hop != hop || !f->read_paused || !f->in_multi || f->aborted) return;
    f->read_paused = false;
    ++curl_depth_;
    ::curl_easy_pause(f->easy.get(), CURLPAUSE_CONT);
    --curl_depth_;
  };
  if (in_curl()) {
    defer(std::move(go));
    return;
  }
  auto alive = alive_;
  go();
  settle(alive);
}

void CurlAsyncHTTPClient::on_producer_done(const FetchPtr& f, unsigned hop, Future<void> done) {
  std::exception_ptr error = done.exception();
  if (f->hop != hop || f->state != Fetch::State::transferring) return;
  f->producer_done = true;
  if (error) {
    if (in_curl()) {
      f->error = error;
      f->aborted = true;
      defer([this, f, hop, error] {
        if (f->hop == hop && f->state == Fetch::State::transferring) fail(f, error);
      });
    } else {
      fail(f, error);
    }
    return;
  }
  if (f->read_paused) unpause(f);
}

// --- the end of a hop, and of a fetch -------------------------------------------------

void CurlAsyncHTTPClient::transfer_done(const FetchPtr& f, CURLcode rc) {
  std::exception_ptr error = translate(*f, rc);
  if (error) {
    fail(f, error);
    return;
  }
  // A redirect goes on with a new hop.
  if (f->will_redirect) {
    char* location = nullptr;
    ::curl_easy_getinfo(f->easy.get(), CURLINFO_REDIRECT_URL, &location);
    if (location) {
      std::shared_ptr<HTTPRequest> next;
      try {
        next = redirected(*f, location);
      } catch (...) {
        fail(f, std::current_exception());
        return;
      }
      f->redirect_time += info_time(f->easy.get(), CURLINFO_TOTAL_TIME_T) + f->resolve_time;
      end_hop(*f);
      f->request = std::move(next);
      ++f->redirects;
      begin_hop(f);
      return;
    }
  }
  HTTPResponse response = make_response(*f);
  end_hop(*f);
  Future<HTTPResponse> future = retire(f);
  if (!future.done()) future.set_result(std::move(response));
}

std::exception_ptr CurlAsyncHTTPClient::translate(Fetch& f, CURLcode rc) {
  if (f.error) return f.error;
  if (rc == CURLE_OK) return nullptr;
  CURL* e = f.easy.get();
  std::string detail = f.errbuf[0] ? std::string(f.errbuf.data()) : std::string(::curl_easy_strerror(rc));
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
  const HTTPRequest& req = *f.request;
  std::string target;
  try {
    SplitURL parts = split_url(req.url);
    std::string scheme = lower(parts.scheme);
    int port = parts.port ? *parts.port : (scheme == "https" ? 443 : 80);
    target = std::string(parts.host) + ":" + std::to_string(port);
    if (!req.proxy_host.empty()) target = req.proxy_host + ":" + std::to_string(req.proxy_port);
  } catch (...) {
    target = req.url;
  }
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: {
      bool connect_phase = !f.connected && f.hop_start + req.connect_timeout <= f.deadline;
      return std::make_exception_ptr(HTTPTimeoutError(connect_phase ? "connect" : "request"));
    }
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;
      ::curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
      char* ip = nullptr;
      long port = 0;
      ::curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
      ::curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
      net::ConnectError::Attempt attempt;
      std::string address = ip && *ip ? std::string(ip) : target;
      if (ip && *ip) {
        address = (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
                  std::to_string(port ? port : 0);
      }
      attempt.address = address;
      attempt.error = static_cast<int>(os_errno);
      attempt.reason = os_errno ? std::string(std::strerror(static_cast<int>(os_errno))) : detail;
      return std::make_exception_ptr(net::ConnectError(target, {attempt}));
    }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return std::make_exception_ptr(net::ResolveError("Failed to resolve '" + target + "': " + detail));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return std::make_exception_ptr(net::SSLError(detail));
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      return std::make_exception_ptr(HTTPStreamClosedError(detail));
    case CURLE_FILESIZE_EXCEEDED:
      return std::make_exception_ptr(HTTPBodyTooLargeError(options_.max_body_size));
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
      return std::make_exception_ptr(HTTPInputError("Malformed HTTP response: " + detail, 502));
    case CURLE_UNSUPPORTED_PROTOCOL:
      // The scheme was checked before: this is the server's answer (an
      // HTTP/0.9 reply, a status line curl cannot read).
      return std::make_exception_ptr(HTTPInputError("Malformed HTTP response: " + detail, 502));
    case CURLE_URL_MALFORMAT:
      return std::make_exception_ptr(std::invalid_argument(detail + " ('" + req.url + "')"));
    default:
      return std::make_exception_ptr(
          HTTPClientError(599, std::string("curl: ") + ::curl_easy_strerror(rc) + ": " + detail));
  }
}

HTTPResponse CurlAsyncHTTPClient::make_response(Fetch& f) {
  CURL* e = f.easy.get();
  HTTPResponse r;
  r.request = f.original;
  long code = 0;
  ::curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  r.code = code ? static_cast<int>(code) : f.code;
  r.reason = f.reason.empty() ? std::string(responses(r.code)) : f.reason;
  for (auto& [name, value] : f.fields) {
    try {
      r.headers.add(name, value);
    } catch (const std::invalid_argument&) {
      // A field HTTPHeaders refuses (a bad name): curl was lenient, the
      // response is still usable without it.
      log::general().debug("CurlAsyncHTTPClient: dropped malformed response header '{}'", name);
    }
  }
  r.body = std::move(f.body);
  char* url = nullptr;
  ::curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
  r.effective_url = url ? std::string(url) : f.request->url;
  TimeInfo& t = r.time_info;
  Duration before = f.resolve_time;  // curl's times count from the transfer's start
  t.queue = f.queue_time;
  t.namelookup = before + info_time(e, CURLINFO_NAMELOOKUP_TIME_T);
  t.connect = before + info_time(e, CURLINFO_CONNECT_TIME_T);
  t.appconnect = before + info_time(e, CURLINFO_APPCONNECT_TIME_T);
  t.pretransfer = before + info_time(e, CURLINFO_PRETRANSFER_TIME_T);
  t.starttransfer = before + info_time(e, CURLINFO_STARTTRANSFER_TIME_T);
  t.total = before + info_time(e, CURLINFO_TOTAL_TIME_T);
  t.redirect = f.redirect_time;
  r.request_time = loop_.time() - f.start;
  return r;
}

std::shared_ptr<HTTPRequest> CurlAsyncHTTPClient::redirected(const Fetch& f, const std::string& location) const {
  const HTTPRequest& prev = *f.request;
  std::string scheme = lower(std::string_view(location).substr(0, location.find("://")));
  if (location.find("://") == std::string::npos || (scheme != "http" && scheme != "https")) {
    throw HTTPClientError(599, "Unsupported redirect location: " + location);
  }
  auto next = std::make_shared<HTTPRequest>(prev);
  next->url = location;
  bool to_get = (f.code == 303 && prev.method != "HEAD") || ((f.code == 301 || f.code == 302) && prev.method == "POST");
  if (to_get) {
    next->method = "GET";
    next->body.reset();
    next->body_producer = nullptr;
    for (const char* name : {"Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding"}) {
      next->headers.remove(name);
    }
  }
  // The Host of the old URL is wrong for the new one (Tornado drops it).
  next->headers.remove("Host");
  bool same_origin = false;
  try {
    same_origin = origin_of(prev.url) == origin_of(location);
  } catch (const std::invalid_argument&) {
    throw HTTPClientError(599, "Unsupported redirect location: " + location);
  }
  if (!same_origin) {
    // Credentials go only where they were meant to go.
    next->headers.remove("Authorization");
    next->headers.remove("Cookie");
    next->auth_username.clear();
    next->auth_password.clear();
  }
  return next;
}

void CurlAsyncHTTPClient::end_hop(Fetch& f) {
  // Cancelling the lookup or the producer below runs their callbacks at
  // once: seeing `finished`, they leave the fetch alone. begin_hop() sets
  // the state again for a redirect.
  f.state = Fetch::State::finished;
  loop_.remove_timeout(std::exchange(f.connect_timer, TimeoutHandle{}));
  if (f.resolving.valid()) {
    Future<Addresses> resolving = std::move(f.resolving);
    f.resolving = Future<Addresses>(nullptr);
    resolving.cancel();
  }
  if (f.easy) {
    by_easy_.erase(f.easy.get());
    if (f.in_multi && multi_) {
      ++curl_depth_;
      ::curl_multi_remove_handle(multi_.get(), f.easy.get());
      --curl_depth_;
    }
    f.in_multi = false;
    EasyPtr easy = std::move(f.easy);
    if (multi_ && spare_.size() < kMaxSpareHandles) {
      // Drop the pointers into this fetch before the handle waits for reuse.
      ::curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
      spare_.push_back(std::move(easy));
    }
  }
  f.headers.reset();
  f.resolve.reset();
  f.connect_to.reset();
  f.chunks.clear();
  f.read_paused = false;
  if (f.producer.valid()) {
    Future<void> producer = std::move(f.producer);
    f.producer = Future<void>(nullptr);
    // The body is no longer wanted: the producer stops at its co_await.
    if (!producer.done()) producer.cancel();
    if (producer.done()) (void)producer.exception();
  }
}

Future<HTTPResponse> CurlAsyncHTTPClient::retire(const FetchPtr& f) {
  f->state = Fetch::State::finished;
  loop_.remove_timeout(std::exchange(f->request_timer, TimeoutHandle{}));
  loop_.remove_timeout(std::exchange(f->connect_timer, TimeoutHandle{}));
  auto q = std::find(queue_.begin(), queue_.end(), f);
  if (q != queue_.end()) queue_.erase(q);
  fetches_.erase(f.get());
  Future<HTTPResponse> future = f->future;
  if (!future.done()) future.clear_cancel_handler();
  if (f->holds_slot) {
    f->holds_slot = false;
    --active_;
    // The next queued fetch starts now (FIFO); starting never runs the
    // caller's code before this one's Future is resolved by our caller.
    if (!queue_.empty()) {
      if (in_curl()) {
        defer([this] { pump(); });
      } else {
        loop_.add_callback([this, alive = std::weak_ptr<bool>(alive_)] {
          if (auto a = alive.lock(); a && *a) pump();
        });
      }
    }
  }
  return future;
}

void CurlAsyncHTTPClient::fail(const FetchPtr& f, std::exception_ptr error) {
  if (f->state == Fetch::State::finished) return;
  if (in_curl()) {
    // Called from inside curl (a producer failing in a callback): the
    // handle cannot leave the multi handle before curl has returned.
    f->aborted = true;
    defer([this, f, error] { fail(f, error); });
    return;
  }
  end_hop(*f);
  Future<HTTPResponse> future = retire(f);
  if (!future.done()) future.set_exception(std::move(error));
}

void CurlAsyncHTTPClient::abort(const FetchPtr& f) {
  // The Future is already cancelled; what is left is to let go of the work.
  if (f->state == Fetch::State::finished) return;
  if (in_curl()) {
    f->aborted = true;
    defer([this, f] { abort(f); });
    return;
  }
  end_hop(*f);
  (void)retire(f);
}

void CurlAsyncHTTPClient::on_request_timeout(const FetchPtr& f) {
  f->request_timer = {};
  if (f->state == Fetch::State::finished) return;
  bool queued = f->state == Fetch::State::queued;
  fail(f, std::make_exception_ptr(HTTPTimeoutError(queued ? "queue" : "request")));
}

void CurlAsyncHTTPClient::on_connect_timeout(const FetchPtr& f) {
  f->connect_timer = {};
  if (f->state == Fetch::State::finished || f->state == Fetch::State::queued || f->connected) return;
  fail(f, std::make_exception_ptr(HTTPTimeoutError("connect")));
}

}  // namespace squall::http
