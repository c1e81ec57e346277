#include "squall/net/resolver.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "net/sockaddr.hpp"
#include "squall/core/ioloop.hpp"

namespace squall::net {

namespace {

using Addresses = std::vector<ResolvedAddress>;

constexpr int kMaxPort = 65535;

Future<Addresses> failed(const std::string& message) {
  return make_exception_future<Addresses>(std::make_exception_ptr(ResolveError(message)));
}

std::string describe(const std::string& host, const std::string& why) {
  return "Failed to resolve '" + host + "': " + why;
}

const char* family_name(int family) {
  switch (family) {
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_UNSPEC:
      return "AF_UNSPEC";
    default:
      return "an unsupported family";
  }
}

void set_port(ResolvedAddress& a, int port) noexcept {
  auto p = htons(static_cast<std::uint16_t>(port));
  if (a.family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = p;
  } else if (a.family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = p;
  }
}

/// RFC 4007 §11.2: the zone after '%' is an interface name or its index.
std::optional<std::uint32_t> parse_zone(const std::string& zone) {
  if (zone.empty()) return std::nullopt;
  if (std::all_of(zone.begin(), zone.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    errno = 0;
    char* end = nullptr;
    unsigned long v = std::strtoul(zone.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX) return std::nullopt;
    return static_cast<std::uint32_t>(v);
  }
  unsigned index = ::if_nametoindex(zone.c_str());
  if (index == 0) return std::nullopt;
  return index;
}

/// Removes duplicates, keeping the first of each (/etc/hosts may list an
/// address twice, and with "multi on" glibc returns every line).
void dedupe(Addresses& list) {
  Addresses unique;
  unique.reserve(list.size());
  for (auto& a : list) {
    if (std::find(unique.begin(), unique.end(), a) == unique.end()) unique.push_back(std::move(a));
  }
  list = std::move(unique);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const noexcept { ::freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

/// The blocking half of DefaultResolver, run on an executor thread.
Addresses blocking_getaddrinfo(const std::string& host, int port, int family) {
  addrinfo hints{};
  hints.ai_family = family;
  // One answer per address: without a socket type getaddrinfo repeats each
  // address for SOCK_STREAM, SOCK_DGRAM and SOCK_RAW.
  hints.ai_socktype = SOCK_STREAM;
  // No AI_ADDRCONFIG (glibc's default when hints are null): it drops ::1 on
  // hosts whose only IPv6 address is loopback, which breaks local servers
  // and tests. AI_NUMERICSERV: the port is a number, so /etc/services is not
  // read.
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* raw = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &raw);
  AddrInfoPtr list(raw);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    throw ResolveError(describe(host, why));
  }
  Addresses out;
  for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress a;
    a.family = ai->ai_family;
    a.length = ai->ai_addrlen;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    out.push_back(a);
  }
  dedupe(out);
  if (out.empty()) throw ResolveError(describe(host, std::string("no addresses for ") + family_name(family)));
  return out;
}

}  // namespace

// --- ResolvedAddress ------------------------------------------------------------

std::string ResolvedAddress::to_string() const {
  if (family == AF_INET6) {
    // format_sockaddr drops the zone; keep it so the text round-trips.
    return "[" + ip() + "]:" + std::to_string(port());
  }
  return format_sockaddr(sockaddr_ptr(), length);
}

std::string ResolvedAddress::ip() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, text, sizeof text);
    return text;
  }
  if (family == AF_INET6) {
    auto* a6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    ::inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text);
    std::string out = text;
    if (a6->sin6_scope_id != 0) {
      char name[IF_NAMESIZE] = {};
      out += '%';
      out += ::if_indextoname(a6->sin6_scope_id, name) ? std::string(name) : std::to_string(a6->sin6_scope_id);
    }
    return out;
  }
  return {};
}

int ResolvedAddress::port() const noexcept {
  if (family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

std::optional<ResolvedAddress> ResolvedAddress::try_from_ip(const std::string& ip, int port) {
  if (port < 0 || port > kMaxPort) return std::nullopt;
  ResolvedAddress out;
  sockaddr_in a4{};
  // inet_pton, not inet_aton: "127.1" and "0x7f.1" are names to a resolver,
  // not addresses (POSIX inet_pton accepts only the dotted-quad form).
  if (::inet_pton(AF_INET, ip.c_str(), &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    out.family = AF_INET;
    out.length = sizeof a4;
    std::memcpy(&out.storage, &a4, sizeof a4);
    set_port(out, port);
    return out;
  }
  std::string text = ip;
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::uint32_t scope = 0;
  if (auto percent = text.find('%'); percent != std::string::npos) {
    auto zone = parse_zone(text.substr(percent + 1));
    if (!zone) return std::nullopt;
    scope = *zone;
    text.resize(percent);
  }
  sockaddr_in6 a6{};
  if (::inet_pton(AF_INET6, text.c_str(), &a6.sin6_addr) != 1) return std::nullopt;
  a6.sin6_family = AF_INET6;
  a6.sin6_scope_id = scope;
  out.family = AF_INET6;
  out.length = sizeof a6;
  std::memcpy(&out.storage, &a6, sizeof a6);
  set_port(out, port);
  return out;
}

ResolvedAddress ResolvedAddress::from_ip(const std::string& ip, int port) {
  if (port < 0 || port > kMaxPort) throw std::invalid_argument("port out of range: " + std::to_string(port));
  auto out = try_from_ip(ip, port);
  if (!out) throw std::invalid_argument("not an IP address: '" + ip + "'");
  return *out;
}

bool operator==(const ResolvedAddress& a, const ResolvedAddress& b) noexcept {
  if (a.family != b.family) return false;
  if (a.family == AF_INET) {
    auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage);
    auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.family == AF_INET6) {
    auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage);
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

// --- Resolver ---------------------------------------------------------------------

std::optional<Future<Addresses>> Resolver::resolve_locally(const std::string& host, int port, int family) {
  if (host.empty()) return failed("Failed to resolve an empty host name");
  if (port < 0 || port > kMaxPort) return failed(describe(host, "port out of range: " + std::to_string(port)));
  auto numeric = ResolvedAddress::try_from_ip(host, port);
  if (!numeric) return std::nullopt;
  if (family != AF_UNSPEC && family != numeric->family) {
    return failed(describe(host, std::string("the address is not in ") + family_name(family)));
  }
  return make_ready_future(Addresses{*numeric});
}

// --- DefaultResolver ----------------------------------------------------------------

Future<Addresses> DefaultResolver::resolve(const std::string& host, int port, int family) {
  if (auto local = resolve_locally(host, port, family)) return std::move(*local);
  // Tornado's DefaultResolver runs getaddrinfo on the IOLoop's executor. The
  // job holds copies: the caller's strings may be gone when it runs.
  return IOLoop::current().run_in_executor(executor_, [host, port, family] {
    return blocking_getaddrinfo(host, port, family);
  });
}

std::shared_ptr<Resolver> default_resolver() {
  // Stateless, so one instance serves every loop and thread; the
  // initialisation of a function-local static is thread-safe (C++11).
  static const std::shared_ptr<Resolver> instance = std::make_shared<DefaultResolver>();
  return instance;
}

// --- OverrideResolver ----------------------------------------------------------------

OverrideResolver::OverrideResolver(std::shared_ptr<Resolver> inner, OverrideMapping mapping)
    : inner_(std::move(inner)), mapping_(std::move(mapping)) {
  if (!inner_) throw std::invalid_argument("OverrideResolver: the inner resolver is null");
  for (const auto& [host, ips] : mapping_.addresses) {
    auto& parsed = fixed_[host];
    for (const auto& ip : ips) {
      auto a = ResolvedAddress::try_from_ip(ip, 0);
      if (!a) throw std::invalid_argument("OverrideResolver: '" + ip + "' (for " + host + ") is not an IP address");
      parsed.push_back(*a);
    }
  }
}

Future<Addresses> OverrideResolver::resolve(const std::string& host, int port, int family) {
  std::string target = host;
  int target_port = port;
  // Tornado's order: the most specific rule wins, and only one applies.
  if (auto it = mapping_.host_port_family.find(HostPortFamily{host, port, family});
      it != mapping_.host_port_family.end()) {
    target = it->second.host;
    target_port = it->second.port;
  } else if (auto it2 = mapping_.host_port.find(HostPort{host, port}); it2 != mapping_.host_port.end()) {
    target = it2->second.host;
    target_port = it2->second.port;
  } else if (auto it3 = mapping_.host.find(host); it3 != mapping_.host.end()) {
    target = it3->second;
  }
  if (auto fixed = fixed_.find(target); fixed != fixed_.end()) {
    if (target_port < 0 || target_port > kMaxPort) {
      return failed(describe(target, "port out of range: " + std::to_string(target_port)));
    }
    Addresses out;
    for (ResolvedAddress a : fixed->second) {
      if (family != AF_UNSPEC && a.family != family) continue;
      set_port(a, target_port);
      out.push_back(a);
    }
    if (out.empty()) return failed(describe(target, std::string("no override addresses in ") + family_name(family)));
    return make_ready_future(std::move(out));
  }
  return inner_->resolve(target, target_port, family);
}

void OverrideResolver::close() { inner_->close(); }

}  // namespace squall::net
