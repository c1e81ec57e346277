#include "squall/net/netutil.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "net/sockaddr.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"
#include "squall/net/resolver.hpp"

namespace squall::net {

namespace {

/// How many times bind_sockets starts over when port 0 gave the first socket
/// a port that another family's socket cannot have (someone else holds it
/// there). Each attempt asks the OS for a fresh port.
constexpr int kPortZeroAttempts = 8;

/// At most one "closing new connections unserved" warning per this long.
constexpr Duration kShedWarningInterval = std::chrono::seconds(1);

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

void set_int_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) throw_errno(errno, std::string("setsockopt ") + what);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const noexcept { ::freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

struct Candidate {
  int family;
  int protocol;
  sockaddr_storage addr;
  socklen_t len;
};

std::vector<Candidate> passive_addresses(int port, const std::string& address, const BindOptions& options) {
  addrinfo hints{};
  hints.ai_family = options.family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = options.flags;
  addrinfo* raw = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(address.empty() ? nullptr : address.c_str(), service.c_str(), &hints, &raw);
  AddrInfoPtr list(raw);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    throw ResolveError("bind_sockets: cannot resolve '" + address + "': " + why);
  }
  std::vector<Candidate> out;
  for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    Candidate c{ai->ai_family, ai->ai_protocol, {}, static_cast<socklen_t>(ai->ai_addrlen)};
    std::memcpy(&c.addr, ai->ai_addr, ai->ai_addrlen);
    bool duplicate = std::any_of(out.begin(), out.end(), [&](const Candidate& o) {
      return o.family == c.family && o.len == c.len && std::memcmp(&o.addr, &c.addr, c.len) == 0;
    });
    if (!duplicate) out.push_back(c);
  }
  // IPv4 first, as Tornado sorts its answers by family, so port 0 is chosen
  // by the IPv4 socket and the IPv6 one follows it.
  std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.family < b.family; });
  return out;
}

void set_port(sockaddr_storage& addr, int port) {
  if (addr.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in&>(addr).sin_port = htons(static_cast<std::uint16_t>(port));
  } else if (addr.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6&>(addr).sin6_port = htons(static_cast<std::uint16_t>(port));
  }
}

int bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno(errno, "getsockname");
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
  return 0;
}

/// One pass of bind_sockets. Returns nullopt when port 0 must be retried.
std::optional<std::vector<UniqueFd>> bind_once(int port, const std::string& address, const BindOptions& options) {
  std::vector<UniqueFd> sockets;
  int chosen_port = 0;
  for (Candidate& c : passive_addresses(port, address, options)) {
    UniqueFd fd(::socket(c.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, c.protocol));
    if (!fd) {
      // A kernel without IPv6 still resolves "::" for AI_PASSIVE.
      if (errno == EAFNOSUPPORT) continue;
      throw_errno(errno, "socket");
    }
    // SO_REUSEADDR lets a restarted server bind while connections of the
    // previous run linger in TIME_WAIT (RFC 9293 3.6.1 keeps them 2*MSL).
    set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    if (options.reuse_port) set_int_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
    if (c.family == AF_INET6) {
      // Linux's IPv6 sockets take IPv4 too by default, which makes binding
      // both 0.0.0.0 and [::] fail. Like Tornado, always keep IPv4 on its own
      // socket (ipv6(7), IPV6_V6ONLY).
      set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
    }
    bool reusing_chosen_port = port == 0 && chosen_port != 0;
    if (reusing_chosen_port) set_port(c.addr, chosen_port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&c.addr), c.len) != 0) {
      int err = errno;
      if (err == EADDRNOTAVAIL && address == "localhost" && c.family == AF_INET6) {
        // Containers with IPv6 half disabled resolve localhost to ::1 but
        // cannot bind it (Tornado skips it the same way).
        continue;
      }
      if (err == EADDRINUSE && reusing_chosen_port) return std::nullopt;
      throw_errno(err, "bind " + format_sockaddr(reinterpret_cast<const sockaddr*>(&c.addr), c.len));
    }
    if (chosen_port == 0) chosen_port = bound_port(fd.get());
    if (::listen(fd.get(), options.backlog) != 0) throw_errno(errno, "listen");
    sockets.push_back(std::move(fd));
  }
  if (sockets.empty()) {
    throw_errno(EAFNOSUPPORT, "bind_sockets: no usable address for '" + address + "'");
  }
  return sockets;
}

}  // namespace

std::vector<UniqueFd> bind_sockets(int port, const std::string& address, const BindOptions& options) {
  for (int attempt = 1;; ++attempt) {
    if (auto sockets = bind_once(port, address, options)) return std::move(*sockets);
    if (attempt == kPortZeroAttempts) {
      throw_errno(EADDRINUSE, "bind_sockets: no port free in every address family of '" + address + "'");
    }
  }
}

UniqueFd bind_unix_socket(const std::string& path, const UnixSocketOptions& options) {
  sockaddr_un addr{};
  if (path.empty() || path.find('\0') != std::string::npos || path.size() >= sizeof addr.sun_path) {
    throw std::invalid_argument("bind_unix_socket: unusable path '" + path + "'");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno(errno, "socket");
  struct stat st{};
  // lstat: a symlink is not ours to remove, even one pointing at a socket.
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw_errno(EEXIST, "bind_unix_socket: " + path + " exists and is not a socket");
    // A socket file outlives its server (unix(7): it stays until unlinked),
    // so one left by a previous run would make bind fail with EADDRINUSE.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(errno, "unlink " + path);
  } else if (errno != ENOENT) {
    throw_errno(errno, "stat " + path);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) throw_errno(errno, "bind " + path);
  // chmod on the path: fchmod on the socket fd would not change the file.
  if (::chmod(path.c_str(), options.mode) != 0) throw_errno(errno, "chmod " + path);
  if (::listen(fd.get(), options.backlog) != 0) throw_errno(errno, "listen " + path);
  return fd;
}

bool is_valid_ip(std::string_view text) {
  if (text.empty() || text.find('\0') != std::string_view::npos) return false;
  std::string host(text);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;  // parse only: never a lookup
  addrinfo* raw = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  AddrInfoPtr list(raw);
  return rc == 0 && list;
}

// --- accept handler ---------------------------------------------------------------

/// The accept loop's state. Shared between the AcceptHandler and the loop's
/// fd handler and retry timer, so a callback that destroys the handler (and
/// its owner) does not pull the state from under the running loop.
struct AcceptHandler::State : std::enable_shared_from_this<AcceptHandler::State> {
  IOLoop* loop;
  int fd;
  AcceptCallback callback;
  AcceptOptions options;
  /// Held open so that, out of descriptors, one can be freed to accept and
  /// close a waiting connection (libev's and nginx's answer to EMFILE: a
  /// level-triggered listener that cannot accept would wake the loop forever).
  UniqueFd spare;
  TimeoutHandle retry_timer;
  /// When shed_one last warned: a flood of connections must not flood the log.
  std::optional<TimePoint> last_shed_warning;
  bool registered = false;
  bool active = true;

  State(IOLoop& l, int listening_fd, AcceptCallback cb, AcceptOptions opts)
      : loop(&l), fd(listening_fd), callback(std::move(cb)), options(opts) {
    reopen_spare();
  }

  void reopen_spare() noexcept {
    if (!spare) spare.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }

  void register_handler() {
    std::weak_ptr<State> weak = weak_from_this();
    loop->add_handler(fd, IOLoop::READ, [weak](int, std::uint32_t) {
      if (auto self = weak.lock()) self->on_readable();
    });
    registered = true;
  }

  void unregister_handler() noexcept {
    if (registered) {
      loop->remove_handler(fd);
      registered = false;
    }
  }

  void stop() noexcept {
    if (!active) return;
    active = false;
    unregister_handler();
    loop->remove_timeout(retry_timer);
    retry_timer = {};
  }

  /// Stops accepting for options.retry_delay: the condition (no descriptors,
  /// no memory) is not one the next wake-up will have fixed.
  void pause(int err) {
    log::general().warn("accept on fd {} failed: {}; pausing for {} ms", fd, std::strerror(err),
                        std::chrono::duration_cast<std::chrono::milliseconds>(options.retry_delay).count());
    unregister_handler();
    std::weak_ptr<State> weak = weak_from_this();
    retry_timer = loop->call_later(options.retry_delay, [weak] {
      auto self = weak.lock();
      if (!self || !self->active) return;
      self->retry_timer = {};
      self->register_handler();
    });
  }

  /// Out of descriptors: frees the spare to accept the oldest waiting
  /// connection and close it at once. False if that was not possible.
  bool shed_one(int err) {
    reopen_spare();  // lost earlier if the last reopen found no free slot
    if (!spare) return false;
    spare.reset();
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    UniqueFd doomed(::accept4(fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    int accept_err = errno;
    bool shed = static_cast<bool>(doomed);
    doomed.reset();  // the peer sees its connection closed, not a hang
    reopen_spare();
    TimePoint now = loop->time();
    if (!last_shed_warning || now - *last_shed_warning >= kShedWarningInterval) {
      last_shed_warning = now;
      log::general().warn("accept on fd {} failed: {}; closing new connections unserved until descriptors free up", fd,
                          std::strerror(err));
    }
    // Still out of descriptors: another thread took the freed slot.
    return shed || (accept_err != EMFILE && accept_err != ENFILE);
  }

  void on_readable() {
    // Keeps the state alive if the callback destroys the AcceptHandler.
    auto keep = shared_from_this();
    for (std::size_t n = 0; n < options.max_accepts_per_wakeup && active; ++n) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      int conn = ::accept4(fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (conn < 0) {
        int err = errno;
        switch (err) {
          case EAGAIN:
#if EWOULDBLOCK != EAGAIN
          case EWOULDBLOCK:
#endif
            return;
          case EINTR:
          // The connection died while queued (Tornado ignores it too).
          case ECONNABORTED:
          // accept(2), "Error handling": Linux passes pending network errors
          // of the new socket to accept(); treat them like EAGAIN and retry.
          // EPERM: a firewall rule refused this connection.
          case EPROTO:
          case ENOPROTOOPT:
          case ENETDOWN:
          case ENETUNREACH:
          case EHOSTDOWN:
          case EHOSTUNREACH:
          case ENONET:
          case EOPNOTSUPP:
          case EPERM:
            continue;
          case EMFILE:
          case ENFILE:
            if (shed_one(err)) continue;
            pause(err);
            return;
          default:
            // ENOBUFS/ENOMEM, or a socket that stopped listening.
            pause(err);
            return;
        }
      }
      UniqueFd connection(conn);
      std::string address = ss.ss_family == AF_UNIX ? std::string()
                                                    : format_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
      try {
        callback(std::move(connection), std::move(address));
      } catch (const std::exception& e) {
        log::app().error("Exception in accept callback: {}", e.what());
      } catch (...) {
        log::app().error("Exception in accept callback: unknown exception");
      }
    }
  }
};

AcceptHandler::AcceptHandler() noexcept = default;
AcceptHandler::AcceptHandler(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
AcceptHandler::AcceptHandler(AcceptHandler&&) noexcept = default;
AcceptHandler& AcceptHandler::operator=(AcceptHandler&& other) noexcept {
  if (this != &other) {
    remove();
    state_ = std::move(other.state_);
  }
  return *this;
}
AcceptHandler::~AcceptHandler() { remove(); }

void AcceptHandler::remove() noexcept {
  if (state_) {
    state_->loop->assert_in_loop_thread();
    state_->stop();
    state_.reset();
  }
}

bool AcceptHandler::active() const noexcept { return state_ && state_->active; }

AcceptHandler add_accept_handler(int listening_fd, AcceptCallback callback, AcceptOptions options) {
  if (options.max_accepts_per_wakeup == 0) options.max_accepts_per_wakeup = 1;
  auto state = std::make_shared<AcceptHandler::State>(IOLoop::current(), listening_fd, std::move(callback), options);
  state->register_handler();
  return AcceptHandler(std::move(state));
}

}  // namespace squall::net
