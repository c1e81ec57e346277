// What the load benchmarks (net_echo, websocket) need to run a server under
// test: a listening socket on loopback, a child process per server pinned to
// its CPU, and plain blocking-socket helpers for their clients.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

#include "machine.hpp"

namespace bench {

/// Ends the benchmark with what failed and errno's text.
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, std::strerror(errno));
  std::exit(1);
}

/// A non-blocking listening socket on 127.0.0.1 with an OS-chosen port.
inline int make_listener(int* port, int backlog) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (::listen(fd, backlog) != 0) die("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) die("getsockname");
  *port = ntohs(addr.sin_port);
  return fd;
}

/// A server under test, in a child process of its own.
struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  int control_fd = -1;  // closing it stops the server
};

/// Forks the server called `name`: the child pins itself to `cpu`, dies with its parent,
/// is killed by alarm() after `lifetime_s` whatever happens, and runs
/// `serve(listen_fd, control_fd)`, which must exit when `control_fd` becomes
/// readable (stop_server closes the other end). Both servers of a
/// comparison get a listening socket made the same way.
template <class Serve>
ServerProcess fork_server(const char* name, int cpu, unsigned lifetime_s, int backlog, Serve serve) {
  ServerProcess p;
  int listen_fd = make_listener(&p.port, backlog);
  int control[2];
  if (::pipe2(control, O_CLOEXEC) != 0) die("pipe2");
  pid_t parent = ::getpid();
  std::fflush(nullptr);
  p.pid = ::fork();
  if (p.pid < 0) die("fork");
  if (p.pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::alarm(lifetime_s);
    ::close(control[1]);
    pin_to_cpu(cpu);
    raise_nofile();
    int rc = 1;
    try {
      rc = serve(listen_fd, control[0]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s server: %s\n", program_invocation_short_name, name, e.what());
    }
    std::fflush(nullptr);
    ::_exit(rc);  // no teardown of thousands of connections
  }
  ::close(listen_fd);
  ::close(control[0]);
  p.control_fd = control[1];
  return p;
}

/// Asks the server to exit and waits for it (killing it after 5 s).
inline void stop_server(ServerProcess& p) {
  if (p.pid <= 0) return;
  ::close(p.control_fd);
  int status = 0;
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (::waitpid(p.pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(p.pid, SIGKILL);
      ::waitpid(p.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  p.pid = -1;
}

/// Sends all of [p, p + n) (yielding while a non-blocking socket is full).
inline void send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) {
      if (errno == EAGAIN) std::this_thread::yield();
      continue;
    }
    if (k <= 0) die("send");
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

/// Receives exactly n bytes into p; the peer closing first is an error.
inline void recv_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k == 0) errno = ECONNRESET;
    if (k <= 0) die("recv");
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

}  // namespace bench
