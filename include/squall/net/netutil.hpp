// netutil: listening sockets and the accept loop (Tornado's tornado.netutil).
// bind_sockets, bind_unix_socket and is_valid_ip may be called from any
// thread; add_accept_handler registers with the calling thread's IOLoop, and
// the AcceptHandler it returns is used and destroyed on that thread only.
#pragma once

#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/clock.hpp"
#include "squall/core/unique_fd.hpp"
#include "squall/net/iostream.hpp"

namespace squall::net {

/// listen(2)'s default queue length, Tornado's `_DEFAULT_BACKLOG`.
inline constexpr int kDefaultBacklog = 128;

struct BindOptions {
  /// AF_INET, AF_INET6, or AF_UNSPEC for every family the address has.
  int family = AF_UNSPEC;
  /// listen(2)'s accept queue length (the kernel caps it at
  /// net.core.somaxconn).
  int backlog = kDefaultBacklog;
  /// SO_REUSEPORT: several sockets (in this process or others) may listen on
  /// the same port and the kernel spreads new connections among them.
  bool reuse_port = false;
  /// getaddrinfo(3) flags; AI_PASSIVE makes an empty address mean "every
  /// interface".
  int flags = AI_PASSIVE;
};

/// Creates listening, non-blocking, close-on-exec sockets bound to `port` on
/// `address` (Tornado's bind_sockets): one socket per getaddrinfo() answer,
/// so an empty address gives 0.0.0.0 and [::] sockets. IPv6 sockets are
/// IPV6_V6ONLY (the IPv4 socket serves IPv4), and every socket is
/// SO_REUSEADDR so a restarted server can bind while old connections sit in
/// TIME_WAIT. With port 0 the OS picks a port for the first socket and the
/// others reuse it. `address` may be a name; it is resolved with a blocking
/// getaddrinfo(), which is what a server's start-up wants.
/// Throws ResolveError (resolver.hpp) if getaddrinfo fails and
/// std::system_error if socket, bind or listen does, naming the address;
/// sockets already made are closed.
std::vector<UniqueFd> bind_sockets(int port, const std::string& address = "", const BindOptions& options = {});

struct UnixSocketOptions {
  /// Permission bits given to the socket file (chmod after bind).
  mode_t mode = 0600;
  int backlog = kDefaultBacklog;
};

/// Creates a listening, non-blocking unix stream socket at `path` (Tornado's
/// bind_unix_socket). A socket file already at `path` is removed first (a
/// previous run's leftover); any other kind of file is left alone and
/// std::system_error(EEXIST) is thrown. std::invalid_argument if the path
/// does not fit in sockaddr_un.
UniqueFd bind_unix_socket(const std::string& path, const UnixSocketOptions& options = {});

/// Called for each accepted connection with the connected, non-blocking,
/// close-on-exec socket and the peer's address as text ("127.0.0.1:5555",
/// "[::1]:80"; empty for unix sockets, whose peers are unnamed).
using AcceptCallback = UniqueFunction<void(UniqueFd connection, std::string address)>;

struct AcceptOptions {
  /// Connections accepted per readiness wake-up before the loop gets to run
  /// other handlers (Tornado accepts up to its backlog per call).
  std::size_t max_accepts_per_wakeup = kDefaultBacklog;
  /// How long accepting pauses when the process or system ran out of file
  /// descriptors or memory and the spare descriptor could not help.
  Duration retry_delay = std::chrono::milliseconds(100);
};

/// The registration made by add_accept_handler. Destroying it (or remove())
/// stops accepting; the listening socket is not closed, it belongs to the
/// caller. Move-only; use and destroy it on the thread that created it,
/// before its IOLoop is closed.
class AcceptHandler {
 public:
  struct State;

  AcceptHandler() noexcept;
  explicit AcceptHandler(std::shared_ptr<State> state) noexcept;
  AcceptHandler(AcceptHandler&&) noexcept;
  AcceptHandler& operator=(AcceptHandler&&) noexcept;
  AcceptHandler(const AcceptHandler&) = delete;
  AcceptHandler& operator=(const AcceptHandler&) = delete;
  ~AcceptHandler();

  /// Stops accepting at once, even from inside the callback.
  void remove() noexcept;
  bool active() const noexcept;

 private:
  std::shared_ptr<State> state_;
};

/// Calls `callback` for every connection accepted on `listening_fd`, a
/// non-blocking listening socket that must stay open while the handler is
/// active (Tornado's add_accept_handler; its remove function is the
/// returned handle). Each wake-up accepts a batch (accept4 with
/// SOCK_NONBLOCK|SOCK_CLOEXEC until EAGAIN or
/// options.max_accepts_per_wakeup), so a burst costs few epoll round trips.
///
/// Running out of descriptors does not make the loop spin: on EMFILE/ENFILE
/// the handler closes a spare descriptor it keeps for the purpose, accepts
/// the waiting connection and closes it at once (the peer sees a close, not
/// a hang), reopens the spare, and logs a warning (squall.general, at most
/// once a second). Should that not be possible either, it stops accepting
/// for options.retry_delay.
///
/// The callback may remove the handler, or destroy its owner; an exception
/// escaping it is logged (squall.application) and accepting goes on.
[[nodiscard]] AcceptHandler add_accept_handler(int listening_fd, AcceptCallback callback, AcceptOptions options = {});

/// Builds the stream for an accepted socket (TCPServerOptions::make_stream).
/// The default makes a plain IOStream; TLS plugs in here, with a factory that
/// wraps the socket in an SSLIOStream (an IOStream). Called on the loop
/// thread; may throw to refuse the connection (the socket is then closed).
using StreamFactory = std::function<std::unique_ptr<IOStream>(UniqueFd connection, const StreamOptions& options)>;

/// True if `text` is an IPv4 or IPv6 address in numeric form (Tornado's
/// is_valid_ip; the forms getaddrinfo(AI_NUMERICHOST) accepts). Never does
/// a name lookup.
bool is_valid_ip(std::string_view text);

}  // namespace squall::net
