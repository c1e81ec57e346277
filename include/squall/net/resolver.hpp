// Resolver: asynchronous name resolution (Tornado's netutil.Resolver).
// Implementations: DefaultResolver (getaddrinfo on an executor, any loop
// thread), CaresResolver (c-ares on one IOLoop, caresresolver.hpp),
// OverrideResolver (a fixed map in front of another resolver, for tests).
// Unless a class says otherwise, a resolver is loop-affine: use it on the
// thread of the loop that was current when it was created.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <compare>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "squall/core/errors.hpp"
#include "squall/core/future.hpp"

namespace squall {
class Executor;
}  // namespace squall

namespace squall::net {

/// One address a name resolved to, ready for connect(). A plain value: any
/// thread may use it.
struct ResolvedAddress {
  int family = AF_UNSPEC;  // AF_INET or AF_INET6
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* sockaddr_ptr() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  /// "127.0.0.1:80" or "[::1]:80".
  std::string to_string() const;
  /// The address alone: "127.0.0.1", "::1" (with "%scope" if it has one).
  std::string ip() const;
  /// The port, in host byte order.
  int port() const noexcept;

  /// Builds one from a numeric IP text and a port; throws std::invalid_argument
  /// for text that is not an IP address or a port outside 0..65535. Accepts
  /// dotted-quad IPv4, RFC 4291 IPv6 text, "[...]" around IPv6, and an RFC
  /// 4007 zone ("fe80::1%eth0" or "fe80::1%2"). Never looks a name up.
  static ResolvedAddress from_ip(const std::string& ip, int port);
  /// Like from_ip(), but returns nullopt for text that is not an IP address.
  static std::optional<ResolvedAddress> try_from_ip(const std::string& ip, int port);

  /// Same family, address, port (and IPv6 zone).
  friend bool operator==(const ResolvedAddress& a, const ResolvedAddress& b) noexcept;
};

/// The name could not be resolved (NXDOMAIN, no addresses of the family,
/// a timeout of the DNS server, a closed resolver). The message names the
/// host and the resolver's reason (gai_strerror(3), ares_strerror(3)).
class ResolveError : public Error {
 public:
  using Error::Error;
};

/// The interface TCPClient and the HTTP client use to turn a host into
/// addresses.
class Resolver {
 public:
  virtual ~Resolver() = default;
  /// Resolves `host` (a name or a numeric address) for `port`. `family`
  /// limits the answers (AF_INET, AF_INET6 or AF_UNSPEC for both). The
  /// Future fails with ResolveError; cancel() abandons the lookup (the
  /// answer, if one still comes, is dropped).
  virtual Future<std::vector<ResolvedAddress>> resolve(const std::string& host, int port,
                                                       int family = AF_UNSPEC) = 0;
  /// Releases resources (threads, sockets); further resolves fail.
  /// Resolvers that hold nothing (DefaultResolver) ignore it.
  virtual void close() {}

 protected:
  /// What every implementation answers without a lookup: a ready Future for
  /// a numeric `host`, a failed one (ResolveError) for an empty host, a port
  /// outside 0..65535 or a numeric host of the wrong family; nullopt when
  /// `host` is a name that needs a real lookup.
  static std::optional<Future<std::vector<ResolvedAddress>>> resolve_locally(const std::string& host, int port,
                                                                             int family);
};

/// Tornado's DefaultResolver: the system's getaddrinfo(3) (so /etc/hosts,
/// nsswitch.conf and the system's DNS configuration apply), run on an
/// executor because it blocks. AI_ADDRCONFIG is not used, so "::1" and
/// "localhost" resolve on hosts without a global IPv6 address.
///
/// Stateless and thread-safe: any thread that has a current IOLoop may call
/// resolve(); the Future belongs to that loop. A lookup already on the
/// executor cannot be interrupted: cancel() abandons its answer. Numeric
/// hosts are answered at once, without the executor.
class DefaultResolver final : public Resolver {
 public:
  /// `executor` runs the blocking calls; null means the calling loop's
  /// default executor (IOLoop::default_executor()). A given executor must
  /// outlive every lookup started on it.
  explicit DefaultResolver(Executor* executor = nullptr) noexcept : executor_(executor) {}

  Future<std::vector<ResolvedAddress>> resolve(const std::string& host, int port, int family = AF_UNSPEC) override;
  /// Nothing to release (the executor belongs to the loop or to the caller).
  void close() override {}

 private:
  Executor* executor_;
};

/// The process-wide DefaultResolver (on each loop's default executor), for
/// code that was not given a resolver: TCPClient and the HTTP clients use it
/// when their `resolver` option is null. Thread-safe; never null; its
/// close() does nothing, so sharing it is safe.
std::shared_ptr<Resolver> default_resolver();

/// A host and a port, the key and value type of OverrideResolver's rules.
struct HostPort {
  std::string host;
  int port = 0;
  friend auto operator<=>(const HostPort&, const HostPort&) = default;
};

/// A host, a port and an address family (AF_INET, AF_INET6 or AF_UNSPEC).
struct HostPortFamily {
  std::string host;
  int port = 0;
  int family = AF_UNSPEC;
  friend auto operator<=>(const HostPortFamily&, const HostPortFamily&) = default;
};

/// Rules for OverrideResolver. Rewrites are tried most specific first
/// (Tornado's order): `host_port_family`, then `host_port`, then `host`;
/// at most one applies. Then, if the (possibly rewritten) host has an entry
/// in `addresses`, those are the answer and the inner resolver is not asked.
///
///   OverrideMapping{
///       .host = {{"example.com", "127.0.0.1"}},
///       .host_port = {{{"login.example.com", 443}, {"localhost", 8443}}},
///       .addresses = {{"api.test", {"127.0.0.1", "::1"}}},
///   }
struct OverrideMapping {
  /// host → host; the port is kept.
  std::map<std::string, std::string> host = {};
  /// (host, port) → (host, port).
  std::map<HostPort, HostPort> host_port = {};
  /// (host, port, family) → (host, port); `family` matches the family the
  /// caller asked for, AF_UNSPEC included.
  std::map<HostPortFamily, HostPort> host_port_family = {};
  /// host → numeric addresses, answered with the requested port and
  /// filtered by the requested family (ResolveError if none is left).
  /// Beyond Tornado: lets a test point a name at loopback with no DNS.
  std::map<std::string, std::vector<std::string>> addresses = {};
};

/// Tornado's OverrideResolver: applies OverrideMapping's rules, then asks
/// `inner` (or answers from `addresses`). Lets tests point real host names
/// at local servers. As thread-safe as `inner`; the mapping is immutable.
class OverrideResolver final : public Resolver {
 public:
  /// Throws std::invalid_argument if `inner` is null or an `addresses` entry
  /// is not a numeric IP address.
  OverrideResolver(std::shared_ptr<Resolver> inner, OverrideMapping mapping);

  Future<std::vector<ResolvedAddress>> resolve(const std::string& host, int port, int family = AF_UNSPEC) override;
  /// Closes the inner resolver (as Tornado's does).
  void close() override;

  const std::shared_ptr<Resolver>& inner() const noexcept { return inner_; }

 private:
  std::shared_ptr<Resolver> inner_;
  OverrideMapping mapping_;
  std::map<std::string, std::vector<ResolvedAddress>> fixed_;  // `addresses`, parsed once, port 0
};

}  // namespace squall::net
