// TCPClient: opens TCP connections by host name and port and hands them back
// as IOStreams (Tornado's tcpclient), trying the addresses a name has with
// Happy Eyeballs (RFC 8305). Loop-affine: create, use and destroy a client
// on one IOLoop's thread; its Futures belong to that loop.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "squall/core/clock.hpp"
#include "squall/core/errors.hpp"
#include "squall/core/future.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/resolver.hpp"

namespace squall::net {

/// Every address of the host failed. The message names each address tried
/// and why ("Could not connect to db:5432: 127.0.0.1:5432: Connection
/// refused; [::1]:5432: Connection refused").
class ConnectError : public Error {
 public:
  struct Attempt {
    std::string address;  // "127.0.0.1:5432", "[::1]:5432"
    int error = 0;        // errno
    std::string reason;   // strerror(error), or what failed ("bind 10.0.0.1: ...")
  };

  ConnectError(const std::string& target, std::vector<Attempt> attempts);
  const std::vector<Attempt>& attempts() const noexcept { return attempts_; }
  /// The last attempt's errno.
  std::error_code code() const noexcept;

 private:
  std::vector<Attempt> attempts_;
};

/// Options of one connect(). Trivially copyable on purpose: callers build it
/// inline, `co_await client.connect(host, port, {.timeout = 5s})`, and GCC 12
/// destroys an aggregate temporary made in a co_await expression twice
/// (double free) when it has members with destructors (GCC 13 fixed it;
/// tremotesf2 #539, asio #1073). TLS is not an option here: upgrade the
/// stream with start_tls() (ssl_iostream.hpp).
struct ConnectOptions {
  /// AF_INET or AF_INET6 to use only that family; AF_UNSPEC for any.
  int family = AF_UNSPEC;
  /// Deadline for the whole connect, name resolution included (Tornado's
  /// `timeout`); TimeoutError when it passes. None: each address waits as
  /// long as the OS lets a connect wait (about two minutes on Linux).
  std::optional<Duration> timeout = std::nullopt;
  /// Local address to connect from (numeric); empty: the OS chooses.
  /// Limits the addresses tried to its family. Read when connect() is
  /// called: the text need not outlive the call.
  std::string_view source_ip = {};
  /// Local port to connect from; 0: the OS chooses. Without source_ip the
  /// socket binds the wildcard address of each address's family.
  int source_port = 0;
  /// How long the first address family gets before the other one is tried
  /// alongside it (RFC 8305's "Connection Attempt Delay"; Tornado's
  /// _INITIAL_CONNECT_TIMEOUT).
  Duration secondary_delay = std::chrono::milliseconds(300);
  /// Buffer limits of the stream (Tornado's max_buffer_size).
  StreamOptions stream = {};
};
static_assert(std::is_trivially_copyable_v<ConnectOptions>, "see the comment on ConnectOptions");

/// A non-blocking TCP client factory (Tornado's TCPClient).
///
///   TCPClient client;
///   std::unique_ptr<IOStream> stream = co_await client.connect("localhost", 8888);
///
/// How connect() picks an address (Tornado's _Connector, after RFC 8305):
/// the host's addresses, in the resolver's order, are split into the first
/// address's family (primary) and the other family (secondary). Primary
/// addresses are tried one at a time, in order; the secondary ones start,
/// also in order, after `secondary_delay` or as soon as a primary attempt
/// fails, whichever comes first. The first connection made wins and every
/// other attempt is closed.
///
/// A numeric host ("127.0.0.1", "::1", "[::1]") never goes to the resolver.
class TCPClient {
 public:
  /// Resolves names with `resolver`, or with the process-wide
  /// default_resolver() when null.
  explicit TCPClient(std::shared_ptr<Resolver> resolver = nullptr);
  TCPClient(const TCPClient&) = delete;
  TCPClient& operator=(const TCPClient&) = delete;
  /// close().
  ~TCPClient();

  /// Lets go of the resolver without closing it: it belongs to whoever
  /// passed it in, or is the shared default one (Tornado closes only a
  /// resolver the client made itself, which a squall client never does).
  /// Connects already started go on; later connects to a name fail with
  /// ResolveError.
  void close();

  /// Connects to `host`:`port` and resolves with a stream over the new
  /// connection, or fails with ConnectError (every address failed),
  /// ResolveError, TimeoutError (options.timeout passed; the message names
  /// what was tried), or std::invalid_argument (a source_ip that is not a
  /// numeric address).
  ///
  /// Cancelling the Future stops everything at once: the lookup is
  /// cancelled, every socket still connecting is closed, every timer
  /// removed. The client may be destroyed while connects are pending;
  /// they go on with the resolver they started with.
  Future<std::unique_ptr<IOStream>> connect(std::string host, int port, ConnectOptions options = {});

 private:
  std::shared_ptr<Resolver> resolver_;
};

}  // namespace squall::net
