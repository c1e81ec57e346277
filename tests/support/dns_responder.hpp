// A tiny DNS server for tests: answers A and AAAA queries from a table over
// UDP on 127.0.0.1 at a port the OS chose, on the test's IOLoop (so tests
// never send DNS anywhere else). Loop-affine, like everything it touches.
//
// Header-only because tests/support/ is not part of any CMake target.
//
//   squall::test_support::DnsResponder dns;
//   dns.add("www.example.test", "127.0.0.2");
//   CaresResolver resolver({.servers = {dns.address()}, .use_system_config = false});
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/unique_fd.hpp"

namespace squall::test_support {

// --- The message format (RFC 1035 §4.1), as pure functions -------------------------

inline constexpr std::uint16_t kTypeA = 1;       // RFC 1035 §3.2.2
inline constexpr std::uint16_t kTypeAAAA = 28;   // RFC 3596 §2.1
inline constexpr std::uint16_t kClassIN = 1;
inline constexpr std::uint8_t kRcodeNoError = 0;
inline constexpr std::uint8_t kRcodeFormErr = 1;
inline constexpr std::uint8_t kRcodeNxDomain = 3;
inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::size_t kMaxName = 255;   // RFC 1035 §2.3.4
inline constexpr std::size_t kMaxLabel = 63;

/// The parts of a query a responder needs. `question` views the query's
/// bytes (the question section, echoed verbatim in the answer).
struct DnsQuery {
  std::uint16_t id = 0;
  bool recursion_desired = false;
  std::string name;  // lower case, no trailing dot
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  std::span<const std::uint8_t> question;
};

inline std::uint16_t read_u16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

/// Parses a standard query with exactly one question. Nullopt for anything
/// else (a response, several questions, a compressed or oversized name,
/// truncated bytes). Never allocates beyond the name.
inline std::optional<DnsQuery> parse_dns_query(std::span<const std::uint8_t> msg) {
  if (msg.size() < kHeaderSize) return std::nullopt;
  DnsQuery q;
  q.id = read_u16(msg, 0);
  std::uint16_t flags = read_u16(msg, 2);
  if (flags & 0x8000) return std::nullopt;            // QR: a response
  if (((flags >> 11) & 0xF) != 0) return std::nullopt;  // OPCODE other than QUERY
  q.recursion_desired = (flags & 0x0100) != 0;
  if (read_u16(msg, 4) != 1) return std::nullopt;  // QDCOUNT
  std::size_t at = kHeaderSize;
  std::size_t wire_length = 0;
  for (;;) {
    if (at >= msg.size()) return std::nullopt;
    std::uint8_t len = msg[at++];
    ++wire_length;
    if (len == 0) break;
    // Queries carry a plain name; 0xC0 (a pointer, §4.1.4) or the reserved
    // 0x40/0x80 forms are not expected here.
    if (len > kMaxLabel || at + len > msg.size()) return std::nullopt;
    wire_length += len;
    if (wire_length > kMaxName) return std::nullopt;
    if (!q.name.empty()) q.name += '.';
    for (std::size_t i = 0; i < len; ++i) {
      q.name += static_cast<char>(std::tolower(msg[at + i]));
    }
    at += len;
  }
  if (at + 4 > msg.size()) return std::nullopt;
  q.qtype = read_u16(msg, at);
  q.qclass = read_u16(msg, at + 2);
  q.question = msg.subspan(kHeaderSize, at + 4 - kHeaderSize);
  return q;
}

inline void put_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

/// An answer to `q`: `rcode`, and one resource record of q's type per entry
/// of `rdata` (4 bytes for A, 16 for AAAA), each naming the question's name
/// through a compression pointer to offset 12 (§4.1.4).
inline std::vector<std::uint8_t> build_dns_response(const DnsQuery& q, std::uint8_t rcode,
                                                    const std::vector<std::vector<std::uint8_t>>& rdata,
                                                    std::uint32_t ttl = 60) {
  std::vector<std::uint8_t> out;
  // An answer record is at most 28 bytes: name pointer, type, class, TTL,
  // length (12) and a 16-byte AAAA address.
  out.reserve(kHeaderSize + q.question.size() + rdata.size() * 28);
  put_u16(out, q.id);
  // QR=1, OPCODE=QUERY, AA=1, RD copied, RA=1, RCODE (§4.1.1).
  auto flags =
      static_cast<std::uint16_t>(0x8000 | 0x0400 | (q.recursion_desired ? 0x0100 : 0) | 0x0080 | (rcode & 0xF));
  put_u16(out, flags);
  put_u16(out, 1);                                          // QDCOUNT
  put_u16(out, static_cast<std::uint16_t>(rdata.size()));  // ANCOUNT
  put_u16(out, 0);                                          // NSCOUNT
  put_u16(out, 0);                                          // ARCOUNT
  out.insert(out.end(), q.question.begin(), q.question.end());
  for (const auto& rd : rdata) {
    put_u16(out, static_cast<std::uint16_t>(0xC000 | kHeaderSize));
    put_u16(out, q.qtype);
    put_u16(out, kClassIN);
    put_u16(out, static_cast<std::uint16_t>(ttl >> 16));
    put_u16(out, static_cast<std::uint16_t>(ttl & 0xFFFF));
    put_u16(out, static_cast<std::uint16_t>(rd.size()));
    out.insert(out.end(), rd.begin(), rd.end());
  }
  return out;
}

/// A FORMERR answer to bytes that did not parse but carry an id (§4.1.1).
inline std::vector<std::uint8_t> build_dns_format_error(std::span<const std::uint8_t> msg) {
  std::vector<std::uint8_t> out(kHeaderSize, 0);
  out[0] = msg[0];
  out[1] = msg[1];
  out[2] = 0x80;
  out[3] = kRcodeFormErr;
  return out;
}

// --- The server ----------------------------------------------------------------------

class DnsResponder {
 public:
  enum class Mode {
    answer,  // answer every query from the table; NXDOMAIN for unknown names
    silent,  // count queries, never answer (a server that is down)
    hold,    // keep queries unanswered until release()
  };

  /// Binds 127.0.0.1:0 and starts serving on `loop`. The loop must outlive
  /// the responder.
  explicit DnsResponder(IOLoop& loop = IOLoop::current()) : loop_(loop) {
    fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) throw std::system_error(errno, std::generic_category(), "socket");
    // Hundreds of queries can arrive before the loop polls once (a test
    // that starts many lookups in a row); the default buffer may drop some.
    int size = 1 << 20;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::system_error(errno, std::generic_category(), "bind");
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::system_error(errno, std::generic_category(), "getsockname");
    }
    port_ = ntohs(addr.sin_port);
    loop_.add_handler(fd_.get(), IOLoop::READ, [this](int, std::uint32_t) { on_readable(); });
  }
  ~DnsResponder() { loop_.remove_handler(fd_.get()); }
  DnsResponder(const DnsResponder&) = delete;
  DnsResponder& operator=(const DnsResponder&) = delete;

  /// Adds an A (IPv4 text) or AAAA (IPv6 text) record for `name`.
  void add(const std::string& name, const std::string& ip) {
    auto& entry = table_[lower(name)];
    in_addr a4{};
    in6_addr a6{};
    if (::inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
      auto* p = reinterpret_cast<const std::uint8_t*>(&a4);
      entry.a.emplace_back(p, p + sizeof a4);
    } else if (::inet_pton(AF_INET6, ip.c_str(), &a6) == 1) {
      auto* p = reinterpret_cast<const std::uint8_t*>(&a6);
      entry.aaaa.emplace_back(p, p + sizeof a6);
    } else {
      throw std::invalid_argument("DnsResponder::add: not an IP address: " + ip);
    }
  }

  /// "127.0.0.1:<port>", for CaresResolver::Options::servers.
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const noexcept { return port_; }

  void set_mode(Mode mode) noexcept { mode_ = mode; }
  /// Queries received so far (answered, dropped or held).
  std::size_t queries() const noexcept { return received_; }
  /// Names asked so far, in order ("name/A", "name/AAAA").
  const std::vector<std::string>& log() const noexcept { return log_; }

  /// Resolves once at least `n` queries have arrived (at once if they have).
  Future<void> wait_for_queries(std::size_t n) {
    Future<void> f;
    if (received_ >= n) {
      f.set_result();
    } else {
      waiters_.emplace_back(n, f);
    }
    return f;
  }

  /// Answers the held queries (from the table, as in Mode::answer).
  void release() {
    auto held = std::exchange(held_, {});
    for (auto& [peer, bytes] : held) respond(peer, bytes);
  }

 private:
  struct Entry {
    std::vector<std::vector<std::uint8_t>> a, aaaa;
  };

  static std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  }

  void on_readable() {
    // Bounded: at most this many datagrams per wake-up, so one flood cannot
    // hold the loop; the rest wait for the next iteration (level-triggered).
    constexpr int kMaxPerWake = 1024;
    std::uint8_t buf[1500];
    for (int i = 0; i < kMaxPerWake; ++i) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
      if (n < 0) break;  // EAGAIN (or an error: nothing to serve)
      ++received_;
      std::vector<std::uint8_t> bytes(buf, buf + n);
      switch (mode_) {
        case Mode::answer:
          respond(peer, bytes);
          break;
        case Mode::silent:
          if (auto q = parse_dns_query(bytes)) log_.push_back(describe(*q));
          break;
        case Mode::hold:
          held_.emplace_back(peer, std::move(bytes));
          break;
      }
    }
    // Last: a waiter's continuation may destroy this responder.
    wake_waiters();
  }

  static std::string describe(const DnsQuery& q) {
    return q.name + (q.qtype == kTypeA ? "/A" : q.qtype == kTypeAAAA ? "/AAAA" : "/" + std::to_string(q.qtype));
  }

  void respond(const sockaddr_storage& peer, const std::vector<std::uint8_t>& bytes) {
    std::vector<std::uint8_t> reply;
    if (auto q = parse_dns_query(bytes)) {
      log_.push_back(describe(*q));
      auto it = table_.find(q->name);
      if (it == table_.end()) {
        reply = build_dns_response(*q, kRcodeNxDomain, {});
      } else if (q->qtype == kTypeA) {
        reply = build_dns_response(*q, kRcodeNoError, it->second.a);
      } else if (q->qtype == kTypeAAAA) {
        reply = build_dns_response(*q, kRcodeNoError, it->second.aaaa);
      } else {
        reply = build_dns_response(*q, kRcodeNoError, {});  // the name exists, no data of that type
      }
    } else if (bytes.size() >= 2) {
      reply = build_dns_format_error(bytes);
    } else {
      return;
    }
    socklen_t len = peer.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    ::sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&peer), len);
  }

  void wake_waiters() {
    std::vector<Future<void>> ready;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (received_ >= it->first) {
        ready.push_back(std::move(it->second));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& f : ready) {
      if (!f.done()) f.set_result();
    }
  }

  IOLoop& loop_;
  UniqueFd fd_;
  int port_ = 0;
  Mode mode_ = Mode::answer;
  std::map<std::string, Entry> table_;
  std::size_t received_ = 0;
  std::vector<std::string> log_;
  std::vector<std::pair<sockaddr_storage, std::vector<std::uint8_t>>> held_;
  std::vector<std::pair<std::size_t, Future<void>>> waiters_;
};

}  // namespace squall::test_support
