// net_echo: TCP echo servers side by side, squall (TCPServer + IOStream)
// against Boost.Asio (peers/asio_echo.cpp), driven by one client written
// once, so that only the server differs. Run it with bench/run-net;
// bench/README-net.md explains the table.
//
// Every server runs in a child process of its own, pinned to CPU 0, on a
// listening socket the parent made (127.0.0.1, OS-chosen port, the same
// backlog for both). The client is the parent, one thread, pinned to CPU 1.
// A child dies with the parent (PR_SET_PDEATHSIG), exits (_exit, no
// teardown) when the parent closes its control pipe, and is killed by alarm() after kChildLifetime
// whatever happens.
//
// Cases (each bounded by --duration seconds):
//   pingpong_1     one connection, 64-byte message, wait for its echo, again:
//                  round trips per second (blocking client socket).
//   pingpong_64    64 connections, one 64-byte message in flight on each
//                  (epoll client): round trips per second, all connections.
//   bulk_echo      one connection; the client writes 64 KiB chunks as fast
//                  as the server echoes them (for the duration) and reads the echo
//                  back: GB/s (1e9 bytes) of payload echoed back. Each byte
//                  crosses the loopback twice and passes through the server.
//   idle_rss       10,000 connections, one 64-byte echo on each (so every
//                  stream has had a read buffer once), then idle: the server
//                  process's VmRSS growth per connection, in bytes. A fresh
//                  server for each system. Kernel socket memory is not in
//                  VmRSS and is the same for both.
//
// For the first three cases the table also gives the server's CPU time per
// operation (/proc/<pid>/schedstat of its one thread), the steadier figure
// when the machine is shared.
//
// Both servers set TCP_NODELAY on accepted sockets and read in 64 KiB
// chunks: squall with read_more(65536), write(buffered()), consume() and a
// co_awaited write (no copy: the stream's read buffer comes from a
// per-thread pool, goes to the kernel as it is, and goes back to the pool
// when the stream is idle), Asio with a coroutine per connection owning a
// 64 KiB buffer (async_read_some + async_write).
//
// Usage: net_echo [--duration S] [--rounds N] [--idle N] [--no-rss | --rss-only]
//                 [--case NAME[,NAME...]] [--verbose]
//        net_echo --serve squall|asio     (a server alone, for perf: prints
//                                          its port, stops at EOF on stdin)
//        net_echo --connect PORT [--case NAME]  (the client cases, or one
//                                          of them, against that server)

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/unique_fd.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/tcpserver.hpp"

#include "machine.hpp"
#include "server_process.hpp"

// peers/asio_echo.cpp: serves `listen_fd` until `control_fd` is readable.
int serve_asio_echo(int listen_fd, int control_fd);

namespace {

using namespace bench;  // the shared helpers of machine.hpp and server_process.hpp

constexpr std::size_t kMessage = 64;
constexpr std::size_t kReadChunk = 64 * 1024;  // both servers' read size
constexpr std::size_t kBulkChunk = 64 * 1024;  // the client's write size
// A cap, not the usual end: at loopback speeds the duration ends the case.
constexpr std::uint64_t kBulkTotal = std::uint64_t{64} << 30;
constexpr int kPingConnections = 64;
constexpr int kBacklog = 4096;
constexpr unsigned kChildLifetime = 600;  // seconds
constexpr int kSocketTimeoutSec = 5;      // client blocking calls
constexpr int kServerCpu = 0;
constexpr int kClientCpu = 1;

rlim_t nofile_limit() {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

// VmRSS of `pid` in bytes; 0 if unreadable.
std::uint64_t vm_rss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

// --- the squall server -------------------------------------------------------

squall::Future<void> squall_echo(std::unique_ptr<squall::net::IOStream> stream, std::string /*address*/) {
  stream->set_nodelay(true);
  try {
    for (;;) {
      co_await stream->read_more(kReadChunk);
      std::string_view data = stream->buffered();
      squall::Future<void> sent = stream->write(data);  // what the kernel did not take is copied
      stream->consume(data.size());
      co_await sent;
    }
  } catch (const squall::net::StreamClosedError&) {
    // The client left.
  }
}

int serve_squall_echo(int listen_fd, int control_fd) {
  squall::IOLoop loop;
  squall::net::TCPServer server(squall_echo);
  server.add_socket(squall::UniqueFd(listen_fd));
  // Exits at once, with no teardown of thousands of connections.
  loop.add_handler(control_fd, squall::IOLoop::READ, [](int, std::uint32_t) {
    std::fflush(nullptr);
    ::_exit(0);
  });
  loop.start();
  return 0;
}

// --- server processes ----------------------------------------------------------

enum class System { kSquall, kAsio };
const char* name_of(System s) { return s == System::kSquall ? "squall" : "asio"; }

int serve(System system, int listen_fd, int control_fd) {
  return system == System::kSquall ? serve_squall_echo(listen_fd, control_fd) : serve_asio_echo(listen_fd, control_fd);
}

bench::ServerProcess start_server(System system) {
  return bench::fork_server(name_of(system), kServerCpu, kChildLifetime, kBacklog,
                            [system](int listen_fd, int control_fd) { return serve(system, listen_fd, control_fd); });
}

// --- the client (the same for every server) ----------------------------------

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{kSocketTimeoutSec, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect");
  return fd;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::array<char, kMessage> message() {
  std::array<char, kMessage> m{};
  for (std::size_t i = 0; i < kMessage; ++i) m[i] = static_cast<char>('a' + i % 26);
  return m;
}

// Round trips per second on one connection.
// What a case did: `count` round trips (or bytes) in `seconds`.
struct Count {
  double count = 0;
  double seconds = 1;
  double rate() const { return count / seconds; }
};

Count pingpong_1(int port, double duration) {
  int fd = connect_to(port);
  const auto msg = message();
  std::array<char, kMessage> in{};
  for (int i = 0; i < 100; ++i) {  // warm-up
    send_all(fd, msg.data(), kMessage);
    recv_all(fd, in.data(), kMessage);
  }
  if (std::memcmp(in.data(), msg.data(), kMessage) != 0) {
    std::fprintf(stderr, "net_echo: the echo differs from the message\n");
    std::exit(1);
  }
  std::uint64_t count = 0;
  auto t0 = Clock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 64; ++i) {
      send_all(fd, msg.data(), kMessage);
      recv_all(fd, in.data(), kMessage);
    }
    count += 64;
    elapsed = seconds_since(t0);
  } while (elapsed < duration);
  ::close(fd);
  return {static_cast<double>(count), elapsed};
}

// Round trips per second over `n` connections, one message in flight on each.
Count pingpong_n(int port, int n, double duration) {
  struct Conn {
    int fd;
    std::size_t got;
  };
  std::vector<Conn> conns;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  const auto msg = message();
  for (int i = 0; i < n; ++i) conns.push_back({connect_to(port), 0});
  for (std::size_t i = 0; i < conns.size(); ++i) {
    set_nonblocking(conns[i].fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) die("epoll_ctl");
  }
  std::uint64_t count = 0;
  auto t0 = Clock::now();
  for (auto& c : conns) send_all(c.fd, msg.data(), kMessage);
  std::array<epoll_event, 128> events{};
  std::array<char, kMessage> in{};
  double elapsed = 0;
  while ((elapsed = seconds_since(t0)) < duration) {
    int k = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) die("epoll_wait");
    for (int e = 0; e < k; ++e) {
      Conn& c = conns[events[e].data.u64];
      ssize_t r = ::recv(c.fd, in.data(), kMessage - c.got, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r == 0) errno = ECONNRESET;
      if (r <= 0) die("recv");
      c.got += static_cast<std::size_t>(r);
      if (c.got == kMessage) {
        c.got = 0;
        ++count;
        send_all(c.fd, msg.data(), kMessage);  // the socket buffer is empty: never blocks
      }
    }
  }
  for (auto& c : conns) ::close(c.fd);
  ::close(ep);
  return {static_cast<double>(count), elapsed};
}

// Bytes of payload echoed back on one connection (see the top of the file).
Count bulk_echo(int port, double duration) {
  int fd = connect_to(port);
  set_nonblocking(fd);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.fd = fd;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  std::vector<char> out(kBulkChunk, 'x');
  std::vector<char> in(kBulkChunk);
  std::uint64_t sent = 0, received = 0;
  std::size_t offset = 0;  // into the chunk being sent
  bool sending = true;
  auto t0 = Clock::now();
  double elapsed = 0;
  while (received < kBulkTotal && (elapsed = seconds_since(t0)) < duration) {
    epoll_event got[1];
    int k = ::epoll_wait(ep, got, 1, 100);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) die("epoll_wait");
    if (k == 0) continue;
    if (got[0].events & EPOLLIN) {
      for (;;) {
        ssize_t r = ::recv(fd, in.data(), in.size(), 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (r == 0) errno = ECONNRESET;
        if (r <= 0) die("recv");
        received += static_cast<std::uint64_t>(r);
      }
    }
    if (sending && (got[0].events & EPOLLOUT)) {
      for (;;) {
        ssize_t w = ::send(fd, out.data() + offset, kBulkChunk - offset, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (w <= 0) die("send");
        sent += static_cast<std::uint64_t>(w);
        offset = (offset + static_cast<std::size_t>(w)) % kBulkChunk;
        if (sent >= kBulkTotal && offset == 0) {
          sending = false;
          ev.events = EPOLLIN;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
          break;
        }
      }
    }
  }
  elapsed = seconds_since(t0);
  ::close(fd);
  ::close(ep);
  return {static_cast<double>(received), elapsed};
}

struct RssResult {
  double bytes_per_connection = 0;
  std::uint64_t before = 0, after = 0;
  int connections = 0;
};

// Opens `n` connections to a fresh server, one echo on each, then idles and
// reads the server's VmRSS growth.
RssResult idle_rss(System system, int n) {
  ServerProcess server = start_server(system);
  const auto msg = message();
  std::array<char, kMessage> in{};
  {  // warm-up: the server's first connection and first read buffer
    int fd = connect_to(server.port);
    send_all(fd, msg.data(), kMessage);
    recv_all(fd, in.data(), kMessage);
    ::close(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RssResult r;
  r.before = vm_rss(server.pid);
  std::vector<int> fds;
  fds.reserve(static_cast<std::size_t>(n));
  constexpr int kBatch = 100;  // below the backlog: connect() never waits on accept()
  for (int done = 0; done < n;) {
    int batch = std::min(kBatch, n - done);
    for (int i = 0; i < batch; ++i) {
      fds.push_back(connect_to(server.port));
      send_all(fds.back(), msg.data(), kMessage);
    }
    for (int i = 0; i < batch; ++i) recv_all(fds[static_cast<std::size_t>(done + i)], in.data(), kMessage);
    done += batch;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // idle
  r.after = vm_rss(server.pid);
  r.connections = n;
  r.bytes_per_connection = (static_cast<double>(r.after) - static_cast<double>(r.before)) / n;
  for (int fd : fds) ::close(fd);
  stop_server(server);
  return r;
}

// --- driver ---------------------------------------------------------------------

struct Options {
  double duration = 2.0;
  int rounds = 3;
  int idle = 10000;
  bool rss = true;
  bool rss_only = false;  // skip the throughput cases
  std::optional<System> serve_only;
  int connect_port = 0;
  std::vector<std::string> cases;  // --case: run just these (comma-separated)
  bool verbose = false;   // each round's figures on stderr
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: net_echo [--duration S] [--rounds N] [--idle N] [--no-rss | --rss-only]\n"
               "                [--case NAME[,NAME...]] [--verbose]\n"
               "       net_echo --serve squall|asio\n"
               "       net_echo --connect PORT [--duration S] [--case pingpong_1|pingpong_64|bulk_echo]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--duration") {
      o.duration = std::atof(value().c_str());
    } else if (a == "--rounds") {
      o.rounds = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--idle") {
      o.idle = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--no-rss") {
      o.rss = false;
    } else if (a == "--rss-only") {
      o.rss_only = true;
    } else if (a == "--serve") {
      std::string s = value();
      if (s == "squall") o.serve_only = System::kSquall;
      else if (s == "asio") o.serve_only = System::kAsio;
      else usage();
    } else if (a == "--connect") {
      o.connect_port = std::atoi(value().c_str());
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--case") {
      std::string list = value();
      for (std::size_t from = 0; from <= list.size();) {
        std::size_t comma = std::min(list.find(',', from), list.size());
        std::string name = list.substr(from, comma - from);
        if (name != "pingpong_1" && name != "pingpong_64" && name != "bulk_echo") usage();
        o.cases.push_back(name);
        from = comma + 1;
      }
    } else {
      usage();
    }
  }
  if (o.duration <= 0 || (o.rss_only && !o.rss)) usage();
  return o;
}

struct CaseResult {
  std::vector<double> squall, asio;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

double spread(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  double med = median(v);
  return med > 0 ? (*hi - *lo) / med : 0;
}

// One case against one server: its rate, and the server's CPU time per
// operation (ns per round trip, ns per KiB for bulk_echo), read from
// /proc/<pid>/schedstat (the server is one thread). On a shared machine the
// CPU cost is the steadier figure: waiting for a CPU does not count.
struct Measured {
  double rate = 0;
  double cpu_per_op = 0;
};

template <class Case>
Measured measure(pid_t server, double per_op_unit, Case run_case) {
  std::uint64_t cpu0 = cpu_ns(server);
  Count c = run_case();
  std::uint64_t cpu1 = cpu_ns(server);
  return {c.rate(), c.count > 0 ? static_cast<double>(cpu1 - cpu0) / (c.count / per_op_unit) : 0};
}

int serve_foreground(System system) {
  int port = 0;
  int listen_fd = bench::make_listener(&port, kBacklog);
  raise_nofile();
  std::printf("%s echo server on 127.0.0.1:%d (pid %d); stops at EOF on stdin\n", name_of(system), port,
              static_cast<int>(::getpid()));
  std::fflush(stdout);
  ::alarm(kChildLifetime);
  return serve(system, listen_fd, STDIN_FILENO);
}

std::string fmt(double v, const char* format) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  if (opt.serve_only) return serve_foreground(*opt.serve_only);

  raise_nofile();
  bool pinned = pin_to_cpu(kClientCpu);
  auto wanted = [&](const char* name) {
    return opt.cases.empty() || std::find(opt.cases.begin(), opt.cases.end(), name) != opt.cases.end();
  };
  if (opt.connect_port) {
    if (wanted("pingpong_1"))
      std::printf("pingpong_1   %12.0f round trips/s\n", pingpong_1(opt.connect_port, opt.duration).rate());
    if (wanted("pingpong_64"))
      std::printf("pingpong_64  %12.0f round trips/s\n", pingpong_n(opt.connect_port, kPingConnections, opt.duration).rate());
    if (wanted("bulk_echo")) std::printf("bulk_echo    %12.3f GB/s\n", bulk_echo(opt.connect_port, opt.duration).rate() / 1e9);
    return 0;
  }

  std::string load_before = load_average();
  if (opt.rss_only) {
    std::fprintf(stderr, "net_echo: idle_rss only, %d connections per server...\n", opt.idle);
  } else {
    std::fprintf(stderr, "net_echo: %d round(s) of 3 cases x 2 servers, %.1f s each%s...\n", opt.rounds, opt.duration,
                 opt.rss ? ", then idle_rss" : "");
  }
  CaseResult p1, p64, bulk, p1_cpu, p64_cpu, bulk_cpu;
  for (int round = 0; round < (opt.rss_only ? 0 : opt.rounds); ++round) {
    // Alternate which system goes first, so drifting load hits both alike.
    System order[2] = {System::kSquall, System::kAsio};
    if (round % 2) std::swap(order[0], order[1]);
    for (System s : order) {
      ServerProcess server = start_server(s);
      int port = server.port;
      double d = opt.duration;
      auto add = [&](CaseResult& r, double v) { (s == System::kSquall ? r.squall : r.asio).push_back(v); };
      auto report = [&](const char* name, double rate, double cpu) {
        if (opt.verbose) std::fprintf(stderr, "round %d %-6s %-11s %14.3f  cpu/op %8.0f\n", round + 1, name_of(s), name, rate, cpu);
      };
      if (wanted("pingpong_1")) {
        Measured a = measure(server.pid, 1, [&] { return pingpong_1(port, d); });
        add(p1, a.rate);
        add(p1_cpu, a.cpu_per_op);
        report("pingpong_1", a.rate, a.cpu_per_op);
      }
      if (wanted("pingpong_64")) {
        Measured b = measure(server.pid, 1, [&] { return pingpong_n(port, kPingConnections, d); });
        add(p64, b.rate);
        add(p64_cpu, b.cpu_per_op);
        report("pingpong_64", b.rate, b.cpu_per_op);
      }
      if (wanted("bulk_echo")) {
        Measured c = measure(server.pid, 1024, [&] { return bulk_echo(port, d); });
        add(bulk, c.rate / 1e9);
        add(bulk_cpu, c.cpu_per_op);
        report("bulk_echo", c.rate / 1e9, c.cpu_per_op);
      }
      stop_server(server);
    }
  }

  std::optional<RssResult> rss_squall, rss_asio;
  std::string rss_note;
  if (opt.rss) {
    // Client and server each hold one fd per connection, plus a few.
    if (nofile_limit() < static_cast<rlim_t>(opt.idle) + 64) {
      rss_note = "idle_rss skipped: RLIMIT_NOFILE " + std::to_string(nofile_limit()) + " < " +
                 std::to_string(opt.idle + 64);
    } else {
      rss_squall = idle_rss(System::kSquall, opt.idle);
      rss_asio = idle_rss(System::kAsio, opt.idle);
    }
  }
  std::string load_after = load_average();

  std::vector<std::string> noisy;
  auto row = [&](const char* name, const CaseResult& c, const char* format, bool higher_is_better) {
    if (c.squall.empty()) return;  // not run (--case)
    double s = median(c.squall), a = median(c.asio);
    double ratio = a > 0 ? s / a : 0;
    bool met = higher_is_better ? ratio >= 1.0 : ratio <= 1.0;
    std::printf("| %-27s | %12s | %12s | %11.2f | %s | %-4s |\n", name, fmt(s, format).c_str(),
                fmt(a, format).c_str(), ratio, higher_is_better ? ">= 1.00" : "<= 1.00", met ? "yes" : "no");
    if (spread(c.squall) > 0.10) noisy.push_back(std::string(name) + " squall " + fmt(spread(c.squall) * 100, "%.0f%%"));
    if (spread(c.asio) > 0.10) noisy.push_back(std::string(name) + " asio " + fmt(spread(c.asio) * 100, "%.0f%%"));
  };
  if (!opt.rss_only) {
    std::printf("| case                        |       squall |         asio | squall/asio | target  | met? |\n");
    std::printf("|-----------------------------|--------------|--------------|-------------|---------|------|\n");
    row("pingpong_1 (round trips/s)", p1, "%.0f", true);
    row("pingpong_64 (round trips/s)", p64, "%.0f", true);
    row("bulk_echo (GB/s)", bulk, "%.3f", true);
    std::printf("\n| server CPU per operation    |       squall |         asio | squall/asio | target  | met? |\n");
    std::printf("|-----------------------------|--------------|--------------|-------------|---------|------|\n");
    row("pingpong_1 (ns/round trip)", p1_cpu, "%.0f", false);
    row("pingpong_64 (ns/round trip)", p64_cpu, "%.0f", false);
    row("bulk_echo (ns/KiB)", bulk_cpu, "%.0f", false);
  }
  if (rss_squall && rss_asio) {
    double s = rss_squall->bytes_per_connection, a = rss_asio->bytes_per_connection;
    std::printf("\n| case                        |       squall |         asio | squall/asio | target  | met? |\n");
    std::printf("|-----------------------------|--------------|--------------|-------------|---------|------|\n");
    std::printf("| idle_rss (B/connection)     | %12.0f | %12.0f | %11.2f | <= 1024 | %-4s |\n", s, a, a > 0 ? s / a : 0,
                s <= 1024 ? "yes" : "no");
    std::printf("\nidle_rss: %d connections; server VmRSS before/after: squall %.1f/%.1f MiB, asio %.1f/%.1f MiB\n",
                rss_squall->connections, rss_squall->before / 1048576.0, rss_squall->after / 1048576.0,
                rss_asio->before / 1048576.0, rss_asio->after / 1048576.0);
  } else if (!rss_note.empty()) {
    std::printf("\n%s\n", rss_note.c_str());
  }
  if (!opt.rss_only) {
    std::printf("\nmedian of %d round(s), %.1f s per case; ", opt.rounds, opt.duration);
  } else {
    std::printf("\n");
  }
  std::printf("servers on CPU %d, client on CPU %d%s; %u CPUs\n", kServerCpu, kClientCpu,
              pinned ? "" : " (pinning unavailable: not pinned)", std::thread::hardware_concurrency());
  std::printf("load average before: %s, after: %s\n", load_before.c_str(), load_after.c_str());
  if (!noisy.empty()) {
    std::printf("spread (max-min)/median above 10%%:");
    for (const auto& n : noisy) std::printf(" %s;", n.c_str());
    std::printf("\n");
  }
  return 0;
}
