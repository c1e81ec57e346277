// websocket: WebSocket servers side by side — squall (web::Application +
// WebSocketHandler), Boost.Beast (peers/beast_websocket.cpp) and Python
// Tornado 6.2 (peers/tornado_websocket.py) — driven by one client written
// once, so that only the server differs. Run it with bench/run-websocket.
//
// Every server runs in a child process of its own, pinned to CPU 0, on a
// listening socket the parent made (127.0.0.1, OS-chosen port). The client
// is the parent, one thread, pinned to CPU 1. Each server serves /echo
// (every message back) and /chat (every message to every member). No
// compression anywhere. A child dies with the parent (PR_SET_PDEATHSIG) and
// exits when the parent closes its control pipe.
//
// Cases (each bounded by --duration seconds):
//   echo_1          one connection, a 64-byte text message, wait for its
//                   echo, again: round trips per second.
//   echo_64         64 connections, one message in flight on each (epoll
//                   client): round trips per second, all connections.
//   broadcast_1000  1,000 members of /chat; one of them sends 8 messages of
//                   64 bytes at once, the client waits until every member
//                   has all 8, again: messages delivered per second
//                   (8,000 per round).
// The table gives each system's rate, the server's CPU time per operation
// (/proc/<pid>/schedstat, the steadier figure on a shared machine) and the
// ratios squall/beast and squall/tornado (higher is better for squall).
//
// Usage: websocket [--duration S] [--rounds N] [--smoke] [--no-tornado]
//        websocket --serve squall|beast   (a server alone, for perf: prints
//                                          its port, stops at EOF on stdin)
// --smoke: 0.3 s per case, one round, 100 chat members (checks that every
// server and case works end to end).

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
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/core/unique_fd.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/web/application.hpp"
#include "squall/websocket/handler.hpp"

#include "machine.hpp"
#include "server_process.hpp"

// peers/beast_websocket.cpp: serves `listen_fd` until `control_fd` is readable.
int serve_beast_websocket(int listen_fd, int control_fd);

namespace {

using namespace bench;  // the shared helpers of machine.hpp and server_process.hpp

constexpr std::size_t kMessage = 64;
constexpr int kEchoConnections = 64;
constexpr int kBurst = 8;
constexpr int kBacklog = 4096;
constexpr unsigned kChildLifetime = 900;  // seconds
constexpr int kSocketTimeoutSec = 10;
constexpr int kServerCpu = 0;
constexpr int kClientCpu = 1;

// --- the squall server -------------------------------------------------------

class EchoHandler : public squall::websocket::WebSocketHandler {
 public:
  squall::Future<void> on_message(squall::websocket::Message message) override {
    return write_message(std::move(message.data), message.binary);
  }
};

std::set<squall::websocket::WebSocketHandler*> g_members;

class ChatHandler : public squall::websocket::WebSocketHandler {
 public:
  squall::Future<void> open() override {
    g_members.insert(this);
    return squall::Future<void>(nullptr);
  }
  squall::Future<void> on_message(squall::websocket::Message message) override {
    squall::websocket::PreparedMessage shared(message.data, message.binary);
    for (auto* member : g_members) member->write_message(shared);
    return squall::Future<void>(nullptr);
  }
  void on_close() override { g_members.erase(this); }
};

int serve_squall(int listen_fd, int control_fd) {
  squall::IOLoop loop;
  squall::web::Settings settings;
  settings.log_function = [](squall::web::RequestHandler&) {};  // no access log: the peers write none
  squall::web::Application app({
      {"/echo", squall::web::handler<EchoHandler>()},
      {"/chat", squall::web::handler<ChatHandler>()},
  }, settings);
  squall::http::HTTPServer server(app);
  server.add_socket(squall::UniqueFd(listen_fd));
  loop.add_handler(control_fd, squall::IOLoop::READ, [](int, std::uint32_t) {
    std::fflush(nullptr);
    ::_exit(0);
  });
  loop.start();
  return 0;
}

// --- server processes ----------------------------------------------------------

enum class System { kSquall, kBeast, kTornado };
const char* name_of(System s) {
  switch (s) {
    case System::kSquall: return "squall";
    case System::kBeast: return "beast";
    default: return "tornado";
  }
}

std::string source_dir() {
  // The peers' scripts sit in bench/peers/ (CMake passes the directory).
#ifdef SQUALL_BENCH_DIR
  return SQUALL_BENCH_DIR;
#else
  std::string file = __FILE__;
  return file.substr(0, file.rfind('/'));
#endif
}

int serve(System system, int listen_fd, int control_fd) {
  if (system == System::kTornado) {
    // Python gets the listening socket as an inherited fd and the control
    // pipe as stdin.
    ::dup2(control_fd, 0);
    ::fcntl(listen_fd, F_SETFD, 0);
    std::string fd = std::to_string(listen_fd);
    std::string script = source_dir() + "/peers/tornado_websocket.py";
    ::execl("/usr/bin/python3", "python3", script.c_str(), fd.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "websocket: cannot run python3: %s\n", std::strerror(errno));
    return 127;
  }
  return system == System::kSquall ? serve_squall(listen_fd, control_fd) : serve_beast_websocket(listen_fd, control_fd);
}

ServerProcess start_server(System system) {
  return bench::fork_server(name_of(system), kServerCpu, kChildLifetime, kBacklog,
                            [system](int listen_fd, int control_fd) { return serve(system, listen_fd, control_fd); });
}

// --- the client (the same for every server) ----------------------------------

/// A blocking connection that has done the opening handshake on `path`.
int ws_connect(int port, const char* path) {
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
  std::string request = std::string("GET ") + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  send_all(fd, request.data(), request.size());
  // Read the response head byte by byte: nothing after it may be swallowed.
  std::string head;
  while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
    char c;
    recv_all(fd, &c, 1);
    head.push_back(c);
    if (head.size() > 8192) break;
  }
  if (head.compare(0, 12, "HTTP/1.1 101") != 0) {
    std::fprintf(stderr, "websocket: handshake refused: %s\n", head.c_str());
    std::exit(1);
  }
  return fd;
}

/// A masked 64-byte text frame (a fixed key: servers must unmask it all the
/// same) and the unmasked frame a server answers with.
std::string client_frame() {
  std::string f = {'\x81', static_cast<char>(0x80 | kMessage), '\x12', '\x34', '\x56', '\x78'};
  for (std::size_t i = 0; i < kMessage; ++i) f.push_back(static_cast<char>(('a' + i % 26) ^ f[2 + i % 4]));
  return f;
}
constexpr std::size_t kServerFrame = 2 + kMessage;

void check_echo(const char* in) {
  if (static_cast<unsigned char>(in[0]) != 0x81 || static_cast<unsigned char>(in[1]) != kMessage ||
      in[2] != 'a' || in[2 + kMessage - 1] != static_cast<char>('a' + (kMessage - 1) % 26)) {
    std::fprintf(stderr, "websocket: unexpected frame from the server\n");
    std::exit(1);
  }
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct Count {
  double count = 0;
  double seconds = 1;
  double rate() const { return count / seconds; }
};

Count echo_1(int port, double duration) {
  int fd = ws_connect(port, "/echo");
  const std::string out = client_frame();
  std::array<char, kServerFrame> in{};
  for (int i = 0; i < 100; ++i) {  // warm-up
    send_all(fd, out.data(), out.size());
    recv_all(fd, in.data(), in.size());
  }
  check_echo(in.data());
  std::uint64_t count = 0;
  auto t0 = Clock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 32; ++i) {
      send_all(fd, out.data(), out.size());
      recv_all(fd, in.data(), in.size());
    }
    count += 32;
    elapsed = seconds_since(t0);
  } while (elapsed < duration);
  ::close(fd);
  return {static_cast<double>(count), elapsed};
}

/// Reads what is there on each ready connection; calls `done(i)` for every
/// whole server frame connection `i` completed.
template <class F>
void pump(int ep, std::vector<std::size_t>& got, F&& done) {
  std::array<epoll_event, 256> events{};
  int k = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
  if (k < 0 && errno == EINTR) return;
  if (k < 0) die("epoll_wait");
  std::array<char, 64 * 1024> in{};
  for (int e = 0; e < k; ++e) {
    std::size_t i = events[e].data.u64;
    int fd = static_cast<int>(events[e].data.u64 >> 32);
    i &= 0xFFFFFFFF;
    for (;;) {
      ssize_t r = ::recv(fd, in.data(), in.size(), 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
      if (r == 0) errno = ECONNRESET;
      if (r <= 0) die("recv");
      got[i] += static_cast<std::size_t>(r);
      while (got[i] >= kServerFrame) {
        got[i] -= kServerFrame;
        done(i);
      }
      if (static_cast<std::size_t>(r) < in.size()) break;
    }
  }
}

int add_to_epoll(int ep, int fd, std::size_t index) {
  set_nonblocking(fd);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = (static_cast<std::uint64_t>(fd) << 32) | index;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  return fd;
}

Count echo_n(int port, int n, double duration) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) fds.push_back(add_to_epoll(ep, ws_connect(port, "/echo"), static_cast<std::size_t>(i)));
  std::vector<std::size_t> got(fds.size(), 0);
  const std::string out = client_frame();
  std::uint64_t count = 0;
  auto t0 = Clock::now();
  for (int fd : fds) send_all(fd, out.data(), out.size());
  double elapsed = 0;
  while ((elapsed = seconds_since(t0)) < duration) {
    pump(ep, got, [&](std::size_t i) {
      ++count;
      send_all(fds[i], out.data(), out.size());
    });
  }
  for (int fd : fds) ::close(fd);
  ::close(ep);
  return {static_cast<double>(count), elapsed};
}

Count broadcast(int port, int members, double duration) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  std::vector<int> fds;
  for (int i = 0; i < members; ++i) {
    fds.push_back(add_to_epoll(ep, ws_connect(port, "/chat"), static_cast<std::size_t>(i)));
  }
  std::vector<std::size_t> got(fds.size(), 0);
  const std::string one = client_frame();
  std::string burst;
  for (int i = 0; i < kBurst; ++i) burst += one;
  // One round: the first member sends the burst; wait for all of it everywhere.
  auto round = [&](double limit_seconds) {
    std::size_t frames = 0;
    send_all(fds[0], burst.data(), burst.size());
    auto t0 = Clock::now();
    std::size_t want = static_cast<std::size_t>(kBurst) * fds.size();
    while (frames < want) {
      pump(ep, got, [&](std::size_t) { ++frames; });
      if (seconds_since(t0) > limit_seconds) {
        std::fprintf(stderr, "websocket: broadcast round incomplete (%zu of %zu frames)\n", frames, want);
        std::exit(1);
      }
    }
  };
  // The handshakes are done, but a server may register members a moment
  // later (after open()): warm up until a round reaches everyone.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  round(30);
  std::uint64_t delivered = 0;
  auto t0 = Clock::now();
  double elapsed = 0;
  do {
    round(30);
    delivered += static_cast<std::uint64_t>(kBurst) * fds.size();
    elapsed = seconds_since(t0);
  } while (elapsed < duration);
  for (int fd : fds) ::close(fd);
  ::close(ep);
  return {static_cast<double>(delivered), elapsed};
}

// --- driver ----------------------------------------------------------------------

struct Options {
  double duration = 5;
  int rounds = 3;
  int members = 1000;
  bool tornado = true;
};

struct Result {
  double rate = 0;
  double cpu_ns_per_op = 0;
};

Result run_case(System system, const std::string& name, const Options& o) {
  ServerProcess p = start_server(system);
  // Wait until the server answers (Python takes a moment to start).
  std::this_thread::sleep_for(std::chrono::milliseconds(system == System::kTornado ? 400 : 50));
  std::uint64_t cpu0 = cpu_ns(p.pid);
  Count c;
  if (name == "echo_1") {
    c = echo_1(p.port, o.duration);
  } else if (name == "echo_64") {
    c = echo_n(p.port, kEchoConnections, o.duration);
  } else {
    c = broadcast(p.port, o.members, o.duration);
  }
  std::uint64_t cpu1 = cpu_ns(p.pid);
  stop_server(p);
  return {c.rate(), c.count > 0 ? static_cast<double>(cpu1 - cpu0) / c.count : 0};
}

int run_all(const Options& o) {
  std::vector<System> systems = {System::kSquall, System::kBeast};
  if (o.tornado) systems.push_back(System::kTornado);
  std::vector<std::string> cases = {"echo_1", "echo_64", "broadcast_" + std::to_string(o.members)};
  std::printf("websocket: %.1f s per case, best of %d rounds; load average %s\n", o.duration, o.rounds,
              load_average().c_str());
  std::map<std::pair<std::string, int>, Result> best;
  for (int r = 0; r < o.rounds; ++r) {
    for (const auto& name : cases) {
      for (System s : systems) {
        Result res = run_case(s, name, o);
        auto& b = best[{name, static_cast<int>(s)}];
        if (res.rate > b.rate) b = res;
      }
    }
  }
  std::printf("%-16s %14s %14s %14s %10s %10s\n", "case (ops/s)", "squall", "beast", "tornado", "sq/beast",
              "sq/tornado");
  for (const auto& name : cases) {
    Result sq = best[{name, 0}], be = best[{name, 1}], to = best[{name, 2}];
    std::printf("%-16s %14.0f %14.0f %14.0f %10.2f %10.2f\n", name.c_str(), sq.rate, be.rate, to.rate,
                be.rate > 0 ? sq.rate / be.rate : 0, to.rate > 0 ? sq.rate / to.rate : 0);
  }
  std::printf("%-16s %14s %14s %14s %10s %10s\n", "server CPU ns/op", "squall", "beast", "tornado", "be/sq",
              "to/sq");
  for (const auto& name : cases) {
    Result sq = best[{name, 0}], be = best[{name, 1}], to = best[{name, 2}];
    std::printf("%-16s %14.0f %14.0f %14.0f %10.2f %10.2f\n", name.c_str(), sq.cpu_ns_per_op, be.cpu_ns_per_op,
                to.cpu_ns_per_op, sq.cpu_ns_per_op > 0 ? be.cpu_ns_per_op / sq.cpu_ns_per_op : 0,
                sq.cpu_ns_per_op > 0 ? to.cpu_ns_per_op / sq.cpu_ns_per_op : 0);
  }
  return 0;
}

int serve_alone(System system) {
  int port = 0;
  int listen_fd = bench::make_listener(&port, kBacklog);
  std::printf("%d\n", port);
  std::fflush(stdout);
  return system == System::kSquall ? serve_squall(listen_fd, 0) : serve_beast_websocket(listen_fd, 0);
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "websocket: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--duration") {
      o.duration = std::max(0.1, std::atof(value().c_str()));
    } else if (a == "--rounds") {
      o.rounds = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--members") {
      o.members = std::max(2, std::atoi(value().c_str()));
    } else if (a == "--smoke") {
      o.duration = 0.3;
      o.rounds = 1;
      o.members = 100;
    } else if (a == "--no-tornado") {
      o.tornado = false;
    } else if (a == "--serve") {
      std::string which = value();
      return serve_alone(which == "beast" ? System::kBeast : System::kSquall);
    } else {
      std::fprintf(stderr,
                   "usage: websocket [--duration S] [--rounds N] [--members N] [--smoke] [--no-tornado]\n"
                   "       websocket --serve squall|beast\n");
      return 2;
    }
  }
  if (o.tornado && std::system("/usr/bin/python3 -c 'import tornado' >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "websocket: python3-tornado is missing; comparing with Beast only\n");
    o.tornado = false;
  }
  pin_to_cpu(kClientCpu);
  return run_all(o);
}
