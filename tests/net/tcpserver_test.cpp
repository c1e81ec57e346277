// TCPServer: echo round trips through TCPServer and TCPClient (1 byte to
// 64 MiB, IPv4, IPv6, unix sockets), 1,000 concurrent connections, close
// callbacks, peer resets mid-read and mid-write, errors in handlers, stop(),
// bind()/start() (one process, and forked children). Loopback only.
#include "squall/net/tcpserver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/core/locks.hpp"
#include "squall/core/queues.hpp"
#include "squall/net/tcpclient.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::net {
namespace {

constexpr std::size_t kChunk = 64 * 1024;

class TCPServerTest : public testing::AsyncTest {
 protected:
  // 64 MiB echoes and 1,000 connections under sanitizers take seconds.
  Duration async_test_timeout() const override { return 60s; }
};

/// Echoes every byte back; counts connections and knows when all are done,
/// so a test can end with no handler still running.
class EchoServer : public TCPServer {
 public:
  using TCPServer::TCPServer;

  int served = 0;
  int active = 0;
  std::vector<std::string> addresses;

  /// Resolves once no handle_stream coroutine is running.
  Future<void> wait_idle() {
    while (active > 0) co_await idle_.wait();
  }

 protected:
  Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string address) override {
    ++served;
    ++active;
    idle_.clear();
    addresses.push_back(std::move(address));
    try {
      for (;;) {
        std::string data = co_await stream->read_bytes(kChunk, true);
        co_await stream->write(std::move(data));
      }
    } catch (const StreamClosedError&) {
      // The client left: the normal end of an echo session.
    }
    if (--active == 0) idle_.set();
  }

 private:
  Event idle_;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + i / 251) & 0xff);
  return s;
}

/// Writes `payload` and reads it back, both at once (a large echo would
/// otherwise deadlock on full socket buffers).
Future<bool> round_trip(IOStream& stream, std::string payload) {
  std::size_t n = payload.size();
  Future<void> written = stream.write(payload);
  std::string back = co_await stream.read_bytes(n);
  co_await written;
  co_return back == payload;
}

std::string local_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char text[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(a.sin_port));
  }
  auto& a = reinterpret_cast<sockaddr_in6&>(ss);
  ::inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(a.sin6_port));
}

/// Makes the next close() of `fd` send a RST instead of a FIN (socket(7),
/// SO_LINGER with a zero timeout).
void arm_reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/// The errno behind a StreamClosedError, or 0.
int closed_errno(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const StreamClosedError& closed) {
    if (!closed.real_error()) return 0;
    try {
      std::rethrow_exception(closed.real_error());
    } catch (const StreamIOError& io) {
      return io.code().value();
    } catch (...) {
      return -1;
    }
  } catch (...) {
    return -2;
  }
}

// --- echo round trips -------------------------------------------------------------------

SQUALL_ASYNC_TEST(TCPServerTest, EchoesPayloadsFromOneByteTo64MiBOverIPv4) {
  EchoServer server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  for (std::size_t size : {std::size_t{1}, std::size_t{100}, kChunk - 1, kChunk + 1, std::size_t{1} << 20,
                           std::size_t{64} << 20}) {
    EXPECT_TRUE(co_await round_trip(*stream, pattern(size))) << size << " bytes";
  }
  stream.reset();
  co_await server.wait_idle();
  EXPECT_EQ(server.served, 1);
}

SQUALL_ASYNC_TEST(TCPServerTest, EchoesOverIPv6Loopback) {
  EchoServer server;
  int port = server.listen(0, "::1");
  TCPClient client;
  auto stream = co_await client.connect("::1", port);
  EXPECT_TRUE(co_await round_trip(*stream, pattern(1)));
  EXPECT_TRUE(co_await round_trip(*stream, pattern(1 << 20)));
  EXPECT_EQ(stream->peer_name(), "[::1]:" + std::to_string(port));
  stream.reset();
  co_await server.wait_idle();
}

SQUALL_ASYNC_TEST(TCPServerTest, HandleStreamGetsThePeerAddress) {
  EchoServer server;
  int port4 = server.listen(0, "127.0.0.1");
  int port6 = server.listen(0, "::1");
  EXPECT_EQ(server.ports(), (std::vector<int>{port4, port6}));
  TCPClient client;
  auto a = co_await client.connect("127.0.0.1", port4);
  auto b = co_await client.connect("::1", port6);
  EXPECT_TRUE(co_await round_trip(*a, "x"));
  EXPECT_TRUE(co_await round_trip(*b, "y"));
  // Two listeners: the order of their accepts is the loop's business.
  EXPECT_EQ(std::set<std::string>(server.addresses.begin(), server.addresses.end()),
            (std::set<std::string>{local_name(a->fileno()), local_name(b->fileno())}));
  a.reset();
  b.reset();
  co_await server.wait_idle();
}

SQUALL_ASYNC_TEST(TCPServerTest, AHandlerFunctionServesLikeAnOverride) {
  int calls = 0;
  auto handler = [&calls](std::unique_ptr<IOStream> stream, std::string) -> Future<void> {
    ++calls;
    std::string line = co_await stream->read_until("\n");
    co_await stream->write("you said " + line);
  };
  TCPServer server(handler);
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  co_await stream->write("hi\n");
  EXPECT_EQ(co_await stream->read_until_close(), "you said hi\n");
  EXPECT_EQ(calls, 1);
}

SQUALL_ASYNC_TEST(TCPServerTest, AUnixSocketAddedWithAddSocketIsServed) {
  char tmpl[] = "/tmp/squall-tcpserver-XXXXXX";
  CO_ASSERT_TRUE(::mkdtemp(tmpl) != nullptr);
  std::string path = std::string(tmpl) + "/echo.sock";
  EchoServer server;
  server.add_socket(bind_unix_socket(path));

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  // A unix socket connect completes (or fails) at once.
  CO_ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto stream = std::make_unique<IOStream>(std::move(fd));
  EXPECT_TRUE(co_await round_trip(*stream, pattern(100'000)));
  stream.reset();
  co_await server.wait_idle();
  EXPECT_EQ(server.addresses, std::vector<std::string>{""});
  std::filesystem::remove_all(tmpl);
}

// --- many connections ----------------------------------------------------------------------

/// Raises the soft descriptor limit to the hard one (2,000 sockets here).
void raise_descriptor_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

SQUALL_ASYNC_TEST(TCPServerTest, AThousandConcurrentConnectionsAreAllServed) {
  constexpr int kConnections = 1000;
  raise_descriptor_limit();
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  CO_ASSERT_TRUE(r.rlim_cur > 2 * kConnections + 100);

  EchoServer server;
  // A backlog that holds the whole burst: a SYN dropped on a full queue is
  // retried only after a second (RFC 6298's initial RTO).
  int port = server.listen(0, "127.0.0.1", {.backlog = 2 * kConnections});
  TCPClient client;
  auto one = [&](int i) -> Future<std::unique_ptr<IOStream>> {
    auto stream = co_await client.connect("127.0.0.1", port);
    std::string line = "hello " + std::to_string(i) + "\n";
    co_await stream->write(line);
    std::string back = co_await stream->read_until("\n");
    EXPECT_EQ(back, line);
    co_return stream;  // kept open: every connection is alive at once
  };
  std::vector<Future<std::unique_ptr<IOStream>>> connects;
  for (int i = 0; i < kConnections; ++i) connects.push_back(one(i));
  std::vector<std::unique_ptr<IOStream>> streams = co_await multi(std::move(connects));
  EXPECT_EQ(streams.size(), std::size_t{kConnections});
  EXPECT_EQ(server.active, kConnections);
  streams.clear();
  co_await server.wait_idle();
  EXPECT_EQ(server.served, kConnections);
}

// --- closes and resets ---------------------------------------------------------------------

/// A server that hands each accepted stream to the test.
struct StreamCatcher {
  Queue<std::unique_ptr<IOStream>> accepted;
  TCPServer server{[this](std::unique_ptr<IOStream> stream, std::string) {
    accepted.put_nowait(std::move(stream));
    return make_ready_future();
  }};
};

SQUALL_ASYNC_TEST(TCPServerTest, CloseCallbacksRunOnBothSidesWhenOnePeerCloses) {
  StreamCatcher catcher;
  int port = catcher.server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  auto served = co_await catcher.accepted.get();

  Event server_side_closed;
  served->set_close_callback([&] { server_side_closed.set(); });
  auto reading = served->read_until_close();
  co_await stream->write("last words");
  stream->close();
  EXPECT_EQ(co_await std::move(reading), "last words");
  co_await server_side_closed.wait();
  EXPECT_TRUE(served->closed());

  // And the other way round.
  stream = co_await client.connect("127.0.0.1", port);
  served = co_await catcher.accepted.get();
  Event client_side_closed;
  stream->set_close_callback([&] { client_side_closed.set(); });
  auto client_reading = stream->read_until_close();
  served.reset();  // destroying the stream closes it
  EXPECT_EQ(co_await std::move(client_reading), "");
  co_await client_side_closed.wait();
}

SQUALL_ASYNC_TEST(TCPServerTest, APeerResetMidReadFailsTheReadWithTheResetAsCause) {
  StreamCatcher catcher;
  int port = catcher.server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  auto served = co_await catcher.accepted.get();

  auto reading = served->read_bytes(100);
  co_await stream->write("only part");
  arm_reset(stream->fileno());
  stream->close();
  std::exception_ptr failure;
  try {
    co_await std::move(reading);
  } catch (...) {
    failure = std::current_exception();
  }
  CO_ASSERT_TRUE(failure != nullptr);
  EXPECT_EQ(closed_errno(failure), ECONNRESET);
  EXPECT_TRUE(served->closed());
}

SQUALL_ASYNC_TEST(TCPServerTest, APeerResetMidWriteFailsTheWrite) {
  StreamCatcher catcher;
  int port = catcher.server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  auto served = co_await catcher.accepted.get();

  // Far more than the socket buffers hold: the write is still in progress
  // when the reset arrives.
  auto writing = served->write(std::string(std::size_t{64} << 20, 'x'));
  std::string first = co_await stream->read_bytes(1000);
  EXPECT_EQ(first, std::string(1000, 'x'));
  EXPECT_TRUE(served->writing());
  arm_reset(stream->fileno());
  stream->close();
  std::exception_ptr failure;
  try {
    co_await std::move(writing);
  } catch (...) {
    failure = std::current_exception();
  }
  CO_ASSERT_TRUE(failure != nullptr);
  int err = closed_errno(failure);
  EXPECT_TRUE(err == ECONNRESET || err == EPIPE) << err;
}

// --- errors in handlers ---------------------------------------------------------------------

class FlakyServer : public TCPServer {
 protected:
  Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string) override {
    std::string line = co_await stream->read_until("\n");
    if (line == "fail\n") throw std::runtime_error("the handler gave up");
    co_await stream->write("ok\n");
  }
};

class ThrowingServer : public TCPServer {
 protected:
  Future<void> handle_stream(std::unique_ptr<IOStream>, std::string) override {
    // Not a coroutine: throws before returning a Future.
    throw std::runtime_error("refused synchronously");
  }
};

SQUALL_ASYNC_TEST(TCPServerTest, AnExceptionEscapingHandleStreamIsLoggedAndTheServerGoesOn) {
  testing::ExpectLog expect("squall.application", "Error in connection callback: the handler gave up");
  FlakyServer server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto bad = co_await client.connect("127.0.0.1", port);
  co_await bad->write("fail\n");
  EXPECT_EQ(co_await bad->read_until_close(), "");  // the handler's stream died with it
  auto good = co_await client.connect("127.0.0.1", port);
  co_await good->write("work\n");
  EXPECT_EQ(co_await good->read_until("\n"), "ok\n");
  EXPECT_EQ(expect.matched(), 1);
}

SQUALL_ASYNC_TEST(TCPServerTest, AHandlerThatThrowsBeforeReturningIsLoggedToo) {
  testing::ExpectLog expect("squall.application", "Error in connection callback: refused synchronously");
  ThrowingServer server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  EXPECT_EQ(co_await stream->read_until_close(), "");
}

SQUALL_ASYNC_TEST(TCPServerTest, AServerWithNeitherOverrideNorHandlerLogsAndClosesEachConnection) {
  testing::ExpectLog expect("squall.application", "Error in connection callback: .*override handle_stream");
  TCPServer server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  EXPECT_EQ(co_await stream->read_until_close(), "");
}

// --- stream factory, stop, bind/start --------------------------------------------------------

SQUALL_ASYNC_TEST(TCPServerTest, TheStreamFactoryMakesEachStreamWithTheStreamOptions) {
  int made = 0;
  std::size_t seen_limit = 0;
  EchoServer server(TCPServerOptions{
      .stream = {.max_buffer_size = 12345},
      .make_stream =
          [&](UniqueFd fd, const StreamOptions& options) {
            ++made;
            seen_limit = options.max_buffer_size;
            return std::make_unique<IOStream>(std::move(fd), options);
          },
  });
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  EXPECT_TRUE(co_await round_trip(*stream, "abc"));
  EXPECT_EQ(made, 1);
  EXPECT_EQ(seen_limit, 12345u);
  stream.reset();
  co_await server.wait_idle();
}

SQUALL_ASYNC_TEST(TCPServerTest, StopClosesTheListenersButNotTheConnections) {
  EchoServer server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  EXPECT_TRUE(co_await round_trip(*stream, "before"));
  server.stop();
  server.stop();  // idempotent
  EXPECT_TRUE(server.ports().empty());

  bool refused = false;
  try {
    co_await client.connect("127.0.0.1", port);
  } catch (const ConnectError& e) {
    refused = e.code().value() == ECONNREFUSED;
  }
  EXPECT_TRUE(refused);
  EXPECT_TRUE(co_await round_trip(*stream, "after"));  // still served
  stream.reset();
  co_await server.wait_idle();
}

SQUALL_ASYNC_TEST(TCPServerTest, BindThenStartServesInThisProcess) {
  EchoServer server;
  int port = server.bind(0, "127.0.0.1");
  EXPECT_EQ(server.ports(), std::vector<int>{port});
  server.start();
  EXPECT_THROW(server.start(), InvalidStateError);
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port);
  EXPECT_TRUE(co_await round_trip(*stream, "started"));
  stream.reset();
  co_await server.wait_idle();
}

/// Answers each connection with its process id, then closes it.
class PidServer : public TCPServer {
 protected:
  Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string) override {
    co_await stream->write(std::to_string(::getpid()));
  }
};

/// Reads until EOF from a blocking socket with a 5 s receive timeout.
std::string read_all(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[256];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Not an AsyncTest: fork_processes must run where no IOLoop exists. The test
// forks a supervisor, which binds, calls start(2) and so forks two workers;
// the test talks to them over loopback and ends them all with SIGTERM, which
// the supervisor forwards.
TEST(TCPServerProcessTest, StartWithTwoProcessesServesFromForkedChildren) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd port_read(pipe_fds[0]);
  UniqueFd port_write(pipe_fds[1]);
  pid_t supervisor = ::fork();
  ASSERT_GE(supervisor, 0);
  if (supervisor == 0) {
    port_read.reset();
    try {
      PidServer server;
      int port = server.bind(0, "127.0.0.1");
      if (::write(port_write.get(), &port, sizeof port) != sizeof port) ::_exit(3);
      port_write.reset();
      server.start(2);  // the supervisor stays in here; workers return
      IOLoop::current().start();
    } catch (...) {
      ::_exit(4);
    }
    ::_exit(0);
  }
  port_write.reset();
  pollfd p{port_read.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  int port = 0;
  ASSERT_EQ(::read(port_read.get(), &port, sizeof port), static_cast<ssize_t>(sizeof port));

  std::set<std::string> pids;
  for (int i = 0; i < 10; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string pid = read_all(fd.get());
    ASSERT_FALSE(pid.empty()) << "connection " << i << " got no answer";
    pids.insert(pid);
  }
  EXPECT_EQ(pids.count(std::to_string(supervisor)), 0u);
  EXPECT_EQ(pids.count(std::to_string(::getpid())), 0u);
  EXPECT_LE(pids.size(), 2u);

  ::kill(supervisor, SIGTERM);
  int status = 0;
  pid_t reaped = 0;
  for (int i = 0; i < 500 && reaped == 0; ++i) {
    reaped = ::waitpid(supervisor, &status, WNOHANG);
    if (reaped == 0) ::poll(nullptr, 0, 10);
  }
  if (reaped == 0) {
    ::kill(supervisor, SIGKILL);
    ::waitpid(supervisor, &status, 0);
    FAIL() << "the supervisor did not stop on SIGTERM";
  }
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

}  // namespace
}  // namespace squall::net
