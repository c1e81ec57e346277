// CaresResolver: DNS lookups with c-ares driven by the IOLoop (Tornado's
// caresresolver), no thread per lookup. Loop-affine: create, use, close and
// destroy it on the thread of the loop that was current at construction.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/net/resolver.hpp"

namespace squall::net {

/// Resolves names by asking DNS servers directly through c-ares: A and/or
/// AAAA queries (ares_getaddrinfo(3)) as `family` asks. The sockets c-ares
/// opens are watched by the IOLoop (ARES_OPT_SOCK_STATE_CB), its timeouts
/// are loop timers (ares_timeout(3)), so thousands of lookups cost no thread.
///
/// - Numeric hosts are answered at once, without a query.
/// - NXDOMAIN, a name with no address of the family, a server that never
///   answers: the Future fails with ResolveError carrying c-ares's message
///   (ares_strerror(3)) and the host.
/// - cancel() on a lookup's Future abandons it: the Future is cancelled at
///   once; c-ares finishes (or times out) the query on its own and the
///   answer is dropped.
/// - close() or destruction fails every pending lookup with ResolveError,
///   before returning. Both are safe from a lookup's continuation: Futures
///   are resolved only after c-ares has returned, never from inside it.
///
/// c-ares keeps its own clock (the system's monotonic clock), so on a loop
/// with a VirtualClock its timeouts still take real time.
///
/// The IOLoop must outlive the resolver: the resolver deregisters c-ares's
/// sockets from it when it closes them.
class CaresResolver final : public Resolver {
 public:
  struct Options {
    /// DNS servers as "ip", "ip:port" or "[ipv6]:port" (c-ares's
    /// ares_set_servers_ports_csv(3) syntax), tried in order. Empty: the
    /// servers of /etc/resolv.conf (only with use_system_config).
    std::vector<std::string> servers = {};
    /// How long one try waits for an answer. nullopt: resolv.conf's
    /// "options timeout:", or c-ares's default (5 s).
    std::optional<std::chrono::milliseconds> timeout = std::nullopt;
    /// How many times each server is tried. nullopt: resolv.conf's
    /// "options attempts:", or c-ares's default (4).
    std::optional<int> tries = std::nullopt;
    /// Read /etc/resolv.conf, /etc/hosts and the LOCALDOMAIN / RES_OPTIONS
    /// environment as the system resolver does (c-ares's default; what
    /// production wants). With false, nothing of the system applies: queries
    /// go only to `servers` (which must then be given), no search domains,
    /// no hosts file, no sortlist — what a hermetic test wants.
    bool use_system_config = true;
    /// SO_RCVBUF for c-ares's sockets (ARES_OPT_SOCK_RCVBUF). nullopt: the
    /// system's default (net.core.rmem_default). All answers to a burst of
    /// lookups arrive on one UDP socket, and the kernel drops what does not
    /// fit before the loop reads it (each drop costs a retry after
    /// `timeout`); raise it for programs that start hundreds of lookups at
    /// once. The kernel caps it at net.core.rmem_max.
    std::optional<int> socket_receive_buffer = std::nullopt;
  };

  /// Options{}: the system's configuration. Throws ResolveError if c-ares
  /// cannot initialise.
  CaresResolver();
  /// Throws std::invalid_argument for an unusable `servers` entry, or for
  /// use_system_config = false with no servers; ResolveError if c-ares
  /// cannot initialise.
  explicit CaresResolver(Options options);
  /// close().
  ~CaresResolver() override;
  CaresResolver(const CaresResolver&) = delete;
  CaresResolver& operator=(const CaresResolver&) = delete;

  Future<std::vector<ResolvedAddress>> resolve(const std::string& host, int port, int family = AF_UNSPEC) override;

  /// Cancels every pending lookup (their Futures fail with ResolveError),
  /// closes c-ares's sockets and releases the channel. Later resolve() calls
  /// fail with ResolveError. Idempotent.
  void close() override;

  /// Lookups c-ares still holds, abandoned (cancelled) ones included; for
  /// tests and monitoring.
  std::size_t pending() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace squall::net
