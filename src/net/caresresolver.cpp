// CaresResolver: c-ares on the IOLoop.
//
// How c-ares is driven (ares_process_fd(3), ares_timeout(3)):
// - c-ares reports each socket it wants watched through the sock_state
//   callback (ARES_OPT_SOCK_STATE_CB); the resolver mirrors that into
//   add_handler / update_handler / remove_handler. c-ares owns and closes
//   those sockets; it reports (0, 0) before closing one, so the loop never
//   watches a closed fd.
// - When a socket is ready, ares_process_fd() reads/writes it; a loop timer
//   at ares_timeout()'s deadline lets c-ares retry and time queries out. The
//   timer is re-armed after every call into c-ares that may change it.
// - c-ares calls our ares_getaddrinfo callback from inside those calls. That
//   callback only records the outcome: Futures are resolved after c-ares has
//   returned, last thing, because a resumed coroutine may close or destroy
//   the resolver, and ares_destroy(3) must not be called from a callback.
#include "squall/net/caresresolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"

namespace squall::net {

namespace {

using Addresses = std::vector<ResolvedAddress>;

struct ChannelDeleter {
  void operator()(ares_channeldata* channel) const noexcept { ::ares_destroy(channel); }
};
using ChannelPtr = std::unique_ptr<ares_channeldata, ChannelDeleter>;

struct AddrInfoDeleter {
  void operator()(ares_addrinfo* ai) const noexcept { ::ares_freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<ares_addrinfo, AddrInfoDeleter>;

std::string describe(const std::string& host, const std::string& why) {
  return "Failed to resolve '" + host + "': " + why;
}

Future<Addresses> failed(const std::string& message) {
  return make_exception_future<Addresses>(std::make_exception_ptr(ResolveError(message)));
}

void library_init() {
  // Required before any channel on Windows, harmless elsewhere
  // (ares_library_init(3)); done once per process, never undone.
  static std::once_flag once;
  std::call_once(once, [] { ::ares_library_init(ARES_LIB_INIT_ALL); });
}

Addresses to_addresses(const ares_addrinfo* result, int port) {
  Addresses out;
  for (const ares_addrinfo_node* n = result ? result->nodes : nullptr; n; n = n->ai_next) {
    if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) || n->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress a;
    a.family = n->ai_family;
    a.length = static_cast<socklen_t>(n->ai_addrlen);
    std::memcpy(&a.storage, n->ai_addr, n->ai_addrlen);
    // We pass no service to ares_getaddrinfo (it would consult
    // /etc/services for names), so the port is ours to fill in.
    auto p = htons(static_cast<std::uint16_t>(port));
    if (a.family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = p;
    } else {
      reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = p;
    }
    out.push_back(a);
  }
  return out;
}

}  // namespace

class CaresResolver::Impl {
 public:
  Impl(IOLoop& loop, const Options& options);
  ~Impl() { close(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Future<Addresses> resolve(const std::string& host, int port, int family);
  void close();
  std::size_t pending() const noexcept { return queries_.size(); }

 private:
  /// One ares_getaddrinfo call. Owned by queries_ from the call until
  /// c-ares calls back, which it does exactly once (with ARES_ECANCELLED or
  /// ARES_EDESTRUCTION at the latest), so the pointer handed to c-ares as
  /// `arg` is always valid when it comes back.
  struct Query {
    Impl* owner;
    std::string host;
    int port;
    Future<Addresses> future;
    bool abandoned = false;  // the Future was cancelled; drop the answer
  };
  /// An outcome waiting to be delivered once c-ares has returned.
  struct Completion {
    Future<Addresses> future;
    Addresses addresses;
    std::exception_ptr error;
  };

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept;
  static void on_addrinfo(void* arg, int status, int timeouts, ares_addrinfo* result) noexcept;
  void on_io(int fd, std::uint32_t events);
  void on_timer();
  void rearm_timer();
  /// Resolves the Futures. Touches no member: a continuation may destroy
  /// the resolver, so callers make this their last statement.
  static void deliver(std::vector<Completion> done);

  IOLoop& loop_;
  ChannelPtr channel_;
  std::unordered_map<int, std::uint32_t> watched_;  // fd → events the loop watches for c-ares
  std::unordered_map<Query*, std::unique_ptr<Query>> queries_;
  std::vector<Completion> completed_;
  TimeoutHandle timer_;
};

CaresResolver::Impl::Impl(IOLoop& loop, const Options& options) : loop_(loop) {
  if (!options.use_system_config && options.servers.empty()) {
    // c-ares would fall back to 127.0.0.1:53; say what is missing instead.
    throw std::invalid_argument("CaresResolver: use_system_config = false needs explicit servers");
  }
  std::string servers_csv;
  for (const auto& s : options.servers) {
    if (s.empty() || s.find(',') != std::string::npos) {
      throw std::invalid_argument("CaresResolver: bad server '" + s + "'");
    }
    if (!servers_csv.empty()) servers_csv += ',';
    servers_csv += s;
  }
  library_init();

  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB;
  opts.sock_state_cb = &Impl::on_sock_state;
  opts.sock_state_cb_data = this;
  if (options.timeout) {
    mask |= ARES_OPT_TIMEOUTMS;
    opts.timeout = static_cast<int>(options.timeout->count());
  }
  if (options.tries) {
    mask |= ARES_OPT_TRIES;
    opts.tries = *options.tries;
  }
  if (options.socket_receive_buffer) {
    mask |= ARES_OPT_SOCK_RCVBUF;
    opts.socket_receive_buffer_size = *options.socket_receive_buffer;
  }
  char dns_only[] = "b";
  if (!options.use_system_config) {
    // Every setting resolv.conf could supply is given here, so c-ares has
    // nothing to take from the system (ares_init_options(3): options take
    // precedence, and it reads resolv.conf only for what is still unset).
    // The server list is empty until ares_set_servers_ports_csv below; no
    // query can be sent before that, so nothing ever goes to the system's
    // resolvers.
    mask |= ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS | ARES_OPT_SORTLIST | ARES_OPT_NDOTS |
            ARES_OPT_FLAGS | ARES_OPT_NOROTATE;
    opts.servers = nullptr;
    opts.nservers = 0;
    opts.domains = nullptr;
    opts.ndomains = 0;   // no search domains (not even LOCALDOMAIN's)
    opts.lookups = dns_only;  // "b": DNS only, no /etc/hosts
    opts.sortlist = nullptr;
    opts.nsort = 0;
    opts.ndots = 1;  // resolv.conf(5)'s default
    opts.flags = 0;
    if (!options.timeout) {
      mask |= ARES_OPT_TIMEOUTMS;
      opts.timeout = 5000;  // c-ares's default, without resolv.conf's say
    }
    if (!options.tries) {
      mask |= ARES_OPT_TRIES;
      opts.tries = 4;  // c-ares's default
    }
  }
  ares_channel raw = nullptr;
  int rc = ::ares_init_options(&raw, &opts, mask);
  if (rc != ARES_SUCCESS) {
    throw ResolveError(std::string("CaresResolver: c-ares initialisation failed: ") + ::ares_strerror(rc));
  }
  channel_.reset(raw);
  if (!servers_csv.empty()) {
    rc = ::ares_set_servers_ports_csv(channel_.get(), servers_csv.c_str());
    if (rc != ARES_SUCCESS) {
      throw std::invalid_argument("CaresResolver: bad servers '" + servers_csv + "': " + ::ares_strerror(rc));
    }
  }
}

Future<Addresses> CaresResolver::Impl::resolve(const std::string& host, int port, int family) {
  loop_.assert_in_loop_thread();
  if (!channel_) return failed(describe(host, "the resolver is closed"));
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) {
    return failed(describe(host, "unsupported address family " + std::to_string(family)));
  }

  auto owned = std::make_unique<Query>(Query{this, host, port, Future<Addresses>()});
  Query* query = owned.get();
  queries_.emplace(query, std::move(owned));
  Future<Addresses> future = query->future;
  // c-ares cannot cancel one query, so a cancelled lookup runs to its end
  // and its answer is dropped; the Query lives until then.
  future.set_cancel_handler([query] { query->abandoned = true; });

  ares_addrinfo_hints hints{};
  hints.ai_family = family;
  // c-ares answers some lookups inside this call (an error it sees at once),
  // so the callback may already have run when it returns.
  ::ares_getaddrinfo(channel_.get(), host.c_str(), nullptr, &hints, &Impl::on_addrinfo, query);
  rearm_timer();
  // Anything completed here is this lookup, whose Future has no
  // continuations yet: delivering cannot run user code.
  deliver(std::exchange(completed_, {}));
  return future;
}

void CaresResolver::Impl::close() {
  loop_.assert_in_loop_thread();
  if (!channel_) return;
  loop_.remove_timeout(std::exchange(timer_, TimeoutHandle{}));
  // Cancel first, then destroy: ares_cancel(3) ends each lookup through the
  // normal path (ARES_ECANCELLED once per query, counted by
  // ares_getaddrinfo), whereas some c-ares releases end an AF_UNSPEC lookup
  // on the first of its two ARES_EDESTRUCTION callbacks and then touch it
  // again on the second.
  ::ares_cancel(channel_.get());
  ChannelPtr channel = std::move(channel_);  // resolve() sees it closed from here on
  channel.reset();  // closes the sockets; on_sock_state deregisters them
  // Defensive: a socket c-ares did not report closed must not stay watched.
  for (const auto& [fd, events] : watched_) loop_.remove_handler(fd);
  watched_.clear();
  deliver(std::exchange(completed_, {}));
}

void CaresResolver::Impl::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
  auto& self = *static_cast<Impl*>(data);
  std::uint32_t events = (readable ? IOLoop::READ : 0u) | (writable ? IOLoop::WRITE : 0u);
  try {
    auto it = self.watched_.find(fd);
    if (events == 0) {
      if (it != self.watched_.end()) {
        self.loop_.remove_handler(fd);
        self.watched_.erase(it);
      }
    } else if (it == self.watched_.end()) {
      self.loop_.add_handler(fd, events, [&self](int ready_fd, std::uint32_t ready) { self.on_io(ready_fd, ready); });
      self.watched_.emplace(fd, events);
    } else if (it->second != events) {
      self.loop_.update_handler(fd, events);
      it->second = events;
    }
  } catch (const std::exception& e) {
    // Called from C: nothing may propagate. Without the watch the query
    // still ends: the timer drives c-ares to retry and time it out.
    log::general().error("CaresResolver: cannot watch c-ares socket {}: {}", fd, e.what());
  }
}

void CaresResolver::Impl::on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) noexcept {
  AddrInfoPtr owned_result(result);
  auto* query = static_cast<Query*>(arg);
  Impl& self = *query->owner;
  auto node = self.queries_.extract(query);
  std::unique_ptr<Query> owned = std::move(node.mapped());
  if (owned->abandoned) return;
  // The Future may be cancelled between now and delivery (by an earlier
  // continuation in the same batch); this Query is gone by then.
  owned->future.clear_cancel_handler();
  // Allocation failures here end in std::terminate (noexcept): an exception
  // cannot cross c-ares's C frames, and a lost lookup would hang its caller.
  Completion done{std::move(owned->future), {}, nullptr};
  if (status == ARES_SUCCESS) {
    done.addresses = to_addresses(result, owned->port);
    if (done.addresses.empty()) {
      done.error = std::make_exception_ptr(ResolveError(describe(owned->host, ::ares_strerror(ARES_ENODATA))));
    }
  } else {
    std::string why = status == ARES_ECANCELLED || status == ARES_EDESTRUCTION
                          ? std::string("the resolver was closed")
                          : std::string(::ares_strerror(status));
    done.error = std::make_exception_ptr(ResolveError(describe(owned->host, why)));
  }
  self.completed_.push_back(std::move(done));
}

void CaresResolver::Impl::on_io(int fd, std::uint32_t events) {
  // An error or hang-up is reported as readable: c-ares then reads, sees the
  // error, and moves the queries to the next server.
  ares_socket_t read_fd = (events & (IOLoop::READ | IOLoop::ERROR)) ? fd : ARES_SOCKET_BAD;
  ares_socket_t write_fd = (events & IOLoop::WRITE) ? fd : ARES_SOCKET_BAD;
  ::ares_process_fd(channel_.get(), read_fd, write_fd);
  rearm_timer();
  deliver(std::exchange(completed_, {}));
}

void CaresResolver::Impl::on_timer() {
  timer_ = {};
  // With no fd, ares_process_fd only processes timeouts.
  ::ares_process_fd(channel_.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  rearm_timer();
  deliver(std::exchange(completed_, {}));
}

void CaresResolver::Impl::rearm_timer() {
  loop_.remove_timeout(std::exchange(timer_, TimeoutHandle{}));
  if (!channel_) return;
  timeval tv{};
  // Null when no query is pending (maxtv is null): no timer then.
  if (!::ares_timeout(channel_.get(), nullptr, &tv)) return;
  auto delay = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  // Rounded up to the loop's millisecond waits, so the timer does not fire
  // just before c-ares's deadline and have to be armed again.
  timer_ = loop_.call_later(std::chrono::ceil<std::chrono::milliseconds>(delay), [this] { on_timer(); });
}

void CaresResolver::Impl::deliver(std::vector<Completion> done) {
  for (auto& c : done) {
    if (c.future.done()) continue;  // cancelled by an earlier continuation
    if (c.error) {
      c.future.set_exception(std::move(c.error));
    } else {
      c.future.set_result(std::move(c.addresses));
    }
  }
}

// --- CaresResolver ----------------------------------------------------------------

CaresResolver::CaresResolver() : CaresResolver(Options{}) {}

CaresResolver::CaresResolver(Options options) : impl_(std::make_unique<Impl>(IOLoop::current(), options)) {}

CaresResolver::~CaresResolver() {
  if (impl_) impl_->close();
}

Future<Addresses> CaresResolver::resolve(const std::string& host, int port, int family) {
  if (auto local = resolve_locally(host, port, family)) return std::move(*local);
  return impl_->resolve(host, port, family);
}

void CaresResolver::close() { impl_->close(); }

std::size_t CaresResolver::pending() const noexcept { return impl_->pending(); }

}  // namespace squall::net
