#include "squall/net/tcpclient.hpp"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>
#include <utility>

#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"

namespace squall::net {

// --- ConnectError -------------------------------------------------------------------

namespace {

std::string describe_attempts(const std::vector<ConnectError::Attempt>& attempts) {
  std::string out;
  for (const auto& a : attempts) {
    if (!out.empty()) out += "; ";
    out += a.address + ": " + a.reason;
  }
  return out;
}

}  // namespace

ConnectError::ConnectError(const std::string& target, std::vector<Attempt> attempts)
    : Error("Could not connect to " + target + ": " + describe_attempts(attempts)), attempts_(std::move(attempts)) {}

std::error_code ConnectError::code() const noexcept {
  return std::error_code(attempts_.empty() ? 0 : attempts_.back().error, std::system_category());
}

namespace {

// --- addresses ------------------------------------------------------------------------

std::string address_text(const ResolvedAddress& a) { return a.to_string(); }

std::string target_text(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ResolvedAddress wildcard(int family, int port) {
  ResolvedAddress a;
  a.family = family;
  if (family == AF_INET6) {
    auto& sin6 = reinterpret_cast<sockaddr_in6&>(a.storage);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(static_cast<std::uint16_t>(port));
    sin6.sin6_addr = in6addr_any;
    a.length = sizeof(sockaddr_in6);
  } else {
    auto& sin = reinterpret_cast<sockaddr_in&>(a.storage);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<std::uint16_t>(port));
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    a.length = sizeof(sockaddr_in);
  }
  return a;
}

// --- the connector --------------------------------------------------------------------

/// Connects to one of several addresses (Tornado's _Connector, RFC 8305).
///
/// States of each address: not tried -> connecting -> failed | won |
/// abandoned (closed because another won, the deadline passed, or the
/// caller cancelled). The connector finishes once: the first connection to
/// succeed, the deadline, the last failure, or cancellation; finishing
/// closes every socket still connecting and removes every timer, and the
/// result Future is resolved last (it may resume a coroutine).
///
/// Lifetime: the loop's fd handlers and timers hold the connector; the
/// result's cancel handler holds it only weakly, so nothing keeps it once
/// nothing can happen to it.
class Connector : public std::enable_shared_from_this<Connector> {
 public:
  struct Source {
    std::optional<ResolvedAddress> ip;  // bind to this (its port set)
    int port = 0;                       // or to the wildcard with this port
  };

  /// `started_at`: when connect() was called (for the timeout's message).
  Connector(IOLoop& loop, std::string target, std::vector<ResolvedAddress> addresses, Source source,
            Duration secondary_delay, TimePoint started_at, TimePoint deadline)
      : loop_(&loop), target_(std::move(target)), source_(std::move(source)), secondary_delay_(secondary_delay),
        deadline_(deadline), started_at_(started_at) {
    attempts_.reserve(addresses.size());
    for (auto& a : addresses) {
      Attempt attempt;
      attempt.address = std::move(a);
      attempts_.push_back(std::move(attempt));
    }
    // The first address's family is primary; the rest go second
    // (RFC 8305 section 4 interleaves them; Tornado, and we, race the two
    // lists instead, which gives the same preference with simpler state).
    int primary_family = attempts_.front().address.family;
    for (std::size_t i = 0; i < attempts_.size(); ++i) {
      (attempts_[i].address.family == primary_family ? primary_ : secondary_).indices.push_back(i);
    }
  }

  Future<UniqueFd> start() {
    std::weak_ptr<Connector> weak = weak_from_this();
    result_.set_cancel_handler([weak] {
      if (auto self = weak.lock()) self->finish_quietly();
    });
    auto keep = shared_from_this();
    if (deadline_ != TimePoint::max()) {
      deadline_timer_ = loop_->call_at(deadline_, [keep] { keep->on_deadline(); });
    }
    if (!secondary_.indices.empty()) {
      secondary_timer_ = loop_->call_later(secondary_delay_, [keep] {
        keep->secondary_timer_ = {};
        keep->start_secondary();
      });
    }
    try_next(primary_);
    return result_;
  }

 private:
  enum class Status { kNotTried, kConnecting, kFailed, kWon, kAbandoned };
  struct Attempt {
    ResolvedAddress address;
    UniqueFd fd;
    Status status = Status::kNotTried;
    int error = 0;
    std::string reason;
  };
  struct Queue {
    std::vector<std::size_t> indices;
    std::size_t next = 0;
    bool exhausted() const noexcept { return next == indices.size(); }
  };

  /// Starts the next address of `queue` that gets as far as connecting;
  /// addresses that fail at once are recorded and skipped.
  void try_next(Queue& queue) {
    while (!finished_ && !queue.exhausted()) {
      Attempt& attempt = attempts_[queue.indices[queue.next++]];
      if (begin(attempt, queue)) return;
      // Failed at once: like any failure, it lets the other family start.
      if (&queue == &primary_ && !secondary_started_) {
        start_secondary();
        if (finished_) return;
      }
    }
    fail_if_hopeless();
  }

  void start_secondary() {
    if (secondary_started_ || finished_) return;
    secondary_started_ = true;
    loop_->remove_timeout(secondary_timer_);
    secondary_timer_ = {};
    try_next(secondary_);
  }

  /// Opens a socket and starts a non-blocking connect (connect(2),
  /// EINPROGRESS: completion is signalled by writability, and the outcome
  /// read with SO_ERROR). False if it failed at once.
  bool begin(Attempt& attempt, Queue& queue) {
    const ResolvedAddress& to = attempt.address;
    UniqueFd fd(::socket(to.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return record_failure(attempt, errno, "");
    if (!bind_source(fd, attempt)) return false;
    if (::connect(fd.get(), to.sockaddr_ptr(), to.length) == 0) {
      attempt.fd = std::move(fd);
      win(attempt);
      return true;
    }
    // EINTR on a non-blocking connect also means it proceeds
    // asynchronously (connect(2)); calling connect again would EALREADY.
    if (errno != EINPROGRESS && errno != EINTR) return record_failure(attempt, errno, "");
    attempt.fd = std::move(fd);
    attempt.status = Status::kConnecting;
    ++connecting_;
    Queue* q = &queue;
    loop_->add_handler(attempt.fd.get(), IOLoop::WRITE,
                       [self = shared_from_this(), &attempt, q](int, std::uint32_t) { self->on_writable(attempt, *q); });
    return true;
  }

  bool bind_source(const UniqueFd& fd, Attempt& attempt) {
    if (!source_.ip && source_.port == 0) return true;
    ResolvedAddress from = source_.ip ? *source_.ip : wildcard(attempt.address.family, source_.port);
    if (source_.ip && source_.port == 0) {
      // Leave the port to connect(), which can share it among different
      // destinations, instead of reserving one at bind() (ip(7),
      // IP_BIND_ADDRESS_NO_PORT; Linux 4.2). Best effort.
      int one = 1;
      ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    }
    if (::bind(fd.get(), from.sockaddr_ptr(), from.length) != 0) {
      int err = errno;
      return record_failure(attempt, err, "bind " + address_text(from) + ": ");
    }
    return true;
  }

  bool record_failure(Attempt& attempt, int err, const std::string& prefix) {
    attempt.status = Status::kFailed;
    attempt.error = err;
    attempt.reason = prefix + std::strerror(err);
    attempt.fd.reset();
    return false;
  }

  void on_writable(Attempt& attempt, Queue& queue) {
    auto keep = shared_from_this();
    loop_->remove_handler(attempt.fd.get());
    --connecting_;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(attempt.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
      win(attempt);
      return;
    }
    record_failure(attempt, err, "");
    // Tornado: a failure moves this family on to its next address, and
    // starts the other family now rather than when its timer fires.
    try_next(queue);
    if (!finished_ && &queue == &primary_) start_secondary();
    fail_if_hopeless();
  }

  void fail_if_hopeless() {
    if (finished_ || connecting_ > 0 || !primary_.exhausted()) return;
    if (!secondary_.exhausted()) {
      if (!secondary_started_) start_secondary();
      return;
    }
    std::vector<ConnectError::Attempt> tried;
    for (auto& a : attempts_) {
      if (a.status == Status::kFailed) tried.push_back({address_text(a.address), a.error, a.reason});
    }
    auto error = std::make_exception_ptr(ConnectError(target_, std::move(tried)));
    finish_quietly();
    result_.set_exception(std::move(error));
  }

  void on_deadline() {
    deadline_timer_ = {};
    if (finished_) return;
    std::string tried;
    for (auto& a : attempts_) {
      if (a.status == Status::kNotTried) continue;
      if (!tried.empty()) tried += "; ";
      tried += address_text(a.address) + ": " + (a.status == Status::kConnecting ? "no answer" : a.reason);
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(loop_->time() - started_at_).count();
    auto error = std::make_exception_ptr(
        TimeoutError("Timeout connecting to " + target_ + " after " + std::to_string(ms) + " ms (" + tried + ")"));
    finish_quietly();
    result_.set_exception(std::move(error));
  }

  void win(Attempt& attempt) {
    attempt.status = Status::kWon;
    UniqueFd fd = std::move(attempt.fd);
    finish_quietly();
    result_.set_result(std::move(fd));
  }

  /// Stops everything without resolving the result: closes the sockets
  /// still connecting (the losers) and removes the timers.
  void finish_quietly() noexcept {
    if (finished_) return;
    finished_ = true;
    loop_->remove_timeout(secondary_timer_);
    loop_->remove_timeout(deadline_timer_);
    secondary_timer_ = deadline_timer_ = {};
    for (auto& a : attempts_) {
      if (a.status != Status::kConnecting) continue;
      loop_->remove_handler(a.fd.get());
      a.fd.reset();
      a.status = Status::kAbandoned;
    }
    connecting_ = 0;
  }

  IOLoop* loop_;
  std::string target_;
  Source source_;
  Duration secondary_delay_;
  TimePoint deadline_;
  TimePoint started_at_;
  std::vector<Attempt> attempts_;  // reserved up front: handlers point into it
  Queue primary_;
  Queue secondary_;
  std::size_t connecting_ = 0;
  bool secondary_started_ = false;
  bool finished_ = false;
  TimeoutHandle secondary_timer_;
  TimeoutHandle deadline_timer_;
  Future<UniqueFd> result_;
};

}  // namespace

// --- TCPClient ----------------------------------------------------------------------------

TCPClient::TCPClient(std::shared_ptr<Resolver> resolver)
    : resolver_(resolver ? std::move(resolver) : default_resolver()) {}

TCPClient::~TCPClient() { close(); }

void TCPClient::close() {
  // A resolver passed in belongs to the caller, and the shared default one
  // to everyone: neither is closed here (Tornado closes only a resolver it
  // made itself). Pending connects hold their own reference.
  resolver_.reset();
}

namespace {

/// connect()'s coroutine. Takes everything by value: it may run long after
/// the TCPClient and the caller's options are gone.
Future<std::unique_ptr<IOStream>> connect_to(std::shared_ptr<Resolver> resolver, std::string host, int port,
                                             int family, Connector::Source source, ConnectOptions options,
                                             TimePoint started_at, TimePoint deadline) {
  IOLoop& loop = IOLoop::current();
  const std::string target = target_text(host, port);
  std::vector<ResolvedAddress> addresses;
  if (auto numeric = ResolvedAddress::try_from_ip(host, port)) {
    if (family != AF_UNSPEC && numeric->family != family) {
      throw ResolveError("Cannot connect to " + target + ": the address is not of the requested family");
    }
    addresses.push_back(*numeric);
  } else {
    if (!resolver) throw ResolveError("Cannot resolve " + host + ": the TCPClient is closed");
    Future<std::vector<ResolvedAddress>> lookup = resolver->resolve(host, port, family);
    if (options.timeout) lookup = with_timeout(deadline, std::move(lookup), {.cancel_on_timeout = true});
    bool timed_out = false;
    try {
      addresses = co_await std::move(lookup);
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    if (timed_out) throw TimeoutError("Timeout resolving " + host + " while connecting to " + target);
    if (addresses.empty()) throw ResolveError("No addresses for " + host);
  }

  auto connector = std::make_shared<Connector>(loop, target, std::move(addresses), std::move(source),
                                               options.secondary_delay, started_at, deadline);
  UniqueFd fd = co_await connector->start();
  co_return std::make_unique<IOStream>(std::move(fd), options.stream);
}

}  // namespace

Future<std::unique_ptr<IOStream>> TCPClient::connect(std::string host, int port, ConnectOptions options) {
  // Not a coroutine: everything borrowed (this client, options.source_ip's
  // text) is read now, before connect() returns. Errors still arrive
  // through the Future, as they would from a coroutine.
  try {
    IOLoop& loop = IOLoop::current();
    const TimePoint now = loop.time();
    const TimePoint deadline = options.timeout ? now + *options.timeout : TimePoint::max();
    Connector::Source source;
    int family = options.family;
    if (!options.source_ip.empty()) {
      source.ip = ResolvedAddress::try_from_ip(std::string(options.source_ip), options.source_port);
      if (!source.ip) {
        throw std::invalid_argument("source_ip is not a numeric IP address: " + std::string(options.source_ip));
      }
      if (family == AF_UNSPEC) family = source.ip->family;
    }
    source.port = options.source_port;
    options.source_ip = {};  // the coroutine must not look at the caller's text
    return connect_to(resolver_, std::move(host), port, family, std::move(source), options, now, deadline);
  } catch (...) {
    return make_exception_future<std::unique_ptr<IOStream>>(std::current_exception());
  }
}

}  // namespace squall::net
