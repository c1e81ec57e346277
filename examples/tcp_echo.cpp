// tcp_echo: an echo server and its client, and the code shown in
// docs/guide/tcp.md and docs/guide/many-cores.md: each block between
// "// guide:" markers appears verbatim in a chapter.
//
//   tcp_echo --smoke                       a server on a free port, a client, an echo; exit 0
//   tcp_echo server [PORT]                 serve on one core (default port 8888)
//   tcp_echo server PORT --threads N       N loops in N threads, SO_REUSEPORT listeners
//   tcp_echo server PORT --processes N     N forked processes sharing the listeners
//   tcp_echo client HOST PORT MESSAGE      send a line, print the echo
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "squall/net/loop_thread_group.hpp"
#include "squall/net/netutil.hpp"
#include "squall/net/tcpclient.hpp"
#include "squall/net/tcpserver.hpp"
#include "squall/squall.hpp"

using namespace std::chrono_literals;
using squall::Future;
using squall::IOLoop;
using squall::net::IOStream;
using squall::net::StreamClosedError;
using squall::net::TCPClient;
using squall::net::TCPServer;

namespace {

/// Fails the program, and so the example_tcp_echo test, when the guide says
/// something the code does not do.
void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "tcp_echo: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

// =========================================================================
// tcp.md
// =========================================================================

// guide: echo-server
/// Sends every line back, until the client says "bye" or leaves. One
/// coroutine per connection; the stream is its to keep, and goes away
/// (closing the socket) when the coroutine ends.
class EchoServer : public TCPServer {
 protected:
  Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string /*address*/) override {
    // address: "127.0.0.1:50312", "[::1]:50312", or "" on a unix socket
    try {
      for (;;) {
        std::string line = co_await stream->read_until("\n", 64 * 1024);
        co_await stream->write(line);
        if (line == "bye\n") co_return;  // closes the connection
      }
    } catch (const StreamClosedError&) {
      // The client left: a normal end, not an error to log.
    }
  }
};
// guide: end

// guide: listen
void serve_forever(int port) {
  EchoServer server;
  server.listen(port);  // 0.0.0.0 and [::], on the current IOLoop
  IOLoop::current().start();
}
// guide: end

// guide: handler-function
Future<void> shout(std::unique_ptr<IOStream> stream, std::string /*address*/) {
  std::string line = co_await stream->read_until("\n");
  for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  co_await stream->write(line);
}

/// A server made from a function instead of a subclass.
std::unique_ptr<TCPServer> make_shouter() { return std::make_unique<TCPServer>(shout); }
// guide: end

// guide: client
Future<std::string> echo_once(TCPClient& client, std::string host, int port, std::string message) {
  std::unique_ptr<IOStream> stream = co_await client.connect(host, port);
  co_await stream->write(message + "\n");
  std::string reply = co_await stream->read_until("\n");
  co_return reply.substr(0, reply.size() - 1);
}
// guide: end

// guide: connect-options
Future<std::unique_ptr<IOStream>> connect_carefully(TCPClient& client, std::string host, int port) {
  co_return co_await client.connect(host, port,
                                    {
                                        .timeout = 5s,                // the whole connect, lookup included
                                        .secondary_delay = 250ms,     // Happy Eyeballs: when to try the other family
                                        .stream = {.max_buffer_size = 1 << 20},
                                    });
}
// guide: end

// guide: connect-errors
Future<std::string> describe_connect(TCPClient& client, std::string host, int port) {
  try {
    auto stream = co_await client.connect(host, port, {.timeout = 2s});
    co_return "connected to " + stream->peer_name();
  } catch (const squall::net::ConnectError& e) {
    co_return e.what();  // every address tried, each with its reason
  } catch (const squall::TimeoutError& e) {
    co_return e.what();  // what was still pending when time ran out
  }
}
// guide: end

// guide: bind-sockets
/// Sockets made by hand: a TCP port with a longer accept queue, and a unix
/// socket only this user and its group may connect to.
int serve_on_chosen_sockets(EchoServer& server, const std::string& unix_path) {
  server.add_sockets(squall::net::bind_sockets(0, "127.0.0.1", {.backlog = 1024}));
  server.add_socket(squall::net::bind_unix_socket(unix_path, {.mode = 0660}));
  return server.ports().front();  // the TCP port the OS chose
}
// guide: end

// guide: accept-handler
/// The layer under TCPServer: a listening socket and a callback per
/// connection, accepted in batches.
squall::net::AcceptHandler count_connections(int listening_fd, int& count) {
  return squall::net::add_accept_handler(listening_fd, [&count](squall::UniqueFd connection, std::string address) {
    ++count;
    std::printf("connection %d from %s\n", count, address.c_str());
    connection.reset();  // a real server would wrap it in an IOStream instead
  });
}
// guide: end

// =========================================================================
// many-cores.md
// =========================================================================

// guide: threads
int serve_on_threads(squall::net::LoopThreadGroup& group, int port) {
  // One EchoServer per loop, each with its own SO_REUSEPORT listener on the
  // same port; the kernel spreads connections over them.
  return group.serve([](IOLoop&, std::size_t) { return std::make_unique<EchoServer>(); }, port, "127.0.0.1");
}
// guide: end

// guide: processes
[[noreturn]] void serve_in_processes(int port, int processes) {
  EchoServer server;
  server.bind(port);           // before forking: the children share these sockets
  server.start(processes);     // forks; returns in each child (0: one per CPU)
  IOLoop::current().start();   // each child runs its own loop
  std::exit(0);
}
// guide: end

// guide: group-setup
/// Anything a loop owns is made on that loop's thread and kept by the group,
/// which destroys it there when it stops.
void make_a_client_per_loop(squall::net::LoopThreadGroup& group) {
  group.run_on_each([](IOLoop&, std::size_t) { return std::make_unique<TCPClient>(); });
}
// guide: end

// --- the smoke test ------------------------------------------------------------------

/// Says goodbye so the server ends the connection: once the client sees it
/// closed, nothing of it is left on the server's loop.
Future<void> say_bye(IOStream& stream) {
  co_await stream.write("bye\n");
  std::string rest = co_await stream.read_until_close();
  check(rest == "bye\n", "the server answers bye and closes");
}

/// A port on 127.0.0.1 where nobody listens (bound by the OS, then closed).
int closed_port() {
  auto sockets = squall::net::bind_sockets(0, "127.0.0.1");
  EchoServer probe;
  probe.add_sockets(std::move(sockets));
  int port = probe.ports().front();
  probe.stop();
  return port;
}

Future<void> smoke_one_loop() {
  TCPClient client;
  {
    EchoServer server;
    int port = server.listen(0, "127.0.0.1");
    std::string reply = co_await echo_once(client, "127.0.0.1", port, "hello");
    check(reply == "hello", "the echo server sends the line back");
  }
  {
    std::unique_ptr<TCPServer> server = make_shouter();
    int port = server->listen(0, "127.0.0.1");
    auto stream = co_await connect_carefully(client, "127.0.0.1", port);
    co_await stream->write("quiet\n");
    check(co_await stream->read_until("\n") == "QUIET\n", "the handler-function server shouts");
    check(stream->options().max_buffer_size == 1 << 20, "the stream options reach the stream");
  }
  {
    int port = closed_port();
    std::string said = co_await describe_connect(client, "127.0.0.1", port);
    check(said == "Could not connect to 127.0.0.1:" + std::to_string(port) + ": 127.0.0.1:" + std::to_string(port) +
                      ": Connection refused",
          "a refused connect names the address and the reason");
  }
  {
    char dir[] = "/tmp/tcp_echo-XXXXXX";
    check(::mkdtemp(dir) != nullptr, "a temporary directory");
    std::string path = std::string(dir) + "/echo.sock";
    EchoServer server;
    int port = serve_on_chosen_sockets(server, path);
    auto stream = co_await client.connect("127.0.0.1", port);
    co_await say_bye(*stream);
    check(::access(path.c_str(), F_OK) == 0, "the unix socket file exists");
    server.stop();
    ::unlink(path.c_str());
    ::rmdir(dir);
  }
  {
    auto sockets = squall::net::bind_sockets(0, "127.0.0.1");  // kept open while the handler runs
    int listening_fd = sockets.front().get();
    int count = 0;
    squall::net::AcceptHandler handler = count_connections(listening_fd, count);
    sockaddr_in where{};
    socklen_t len = sizeof where;
    ::getsockname(listening_fd, reinterpret_cast<sockaddr*>(&where), &len);
    auto stream = co_await client.connect("127.0.0.1", ntohs(where.sin_port));
    while (count == 0) co_await squall::moment();
    check(count == 1, "the accept handler saw the connection");
  }
}

void smoke_threads() {
  squall::net::LoopThreadGroup group({.threads = 2});
  int port = serve_on_threads(group, 0);
  make_a_client_per_loop(group);
  IOLoop loop;
  loop.run_sync([&]() -> Future<void> {
    TCPClient client;
    for (int i = 0; i < 4; ++i) {
      auto stream = co_await client.connect("127.0.0.1", port);
      co_await stream->write("ping\n");
      check(co_await stream->read_until("\n") == "ping\n", "a loop of the group echoes");
      co_await say_bye(*stream);
    }
  }, 10s);
  loop.close();
  group.stop();
}

/// `server PORT --threads N`: runs until SIGINT or SIGTERM, then stops
/// cleanly. The signals are blocked before the loops' threads start, so they
/// inherit the mask and only sigwait() here receives them.
void serve_on_threads_until_signalled(int port, std::size_t threads) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  squall::net::LoopThreadGroup group({.threads = threads});
  int bound = serve_on_threads(group, port);
  std::printf("echo server on 127.0.0.1:%d, %zu threads\n", bound, group.size());
  std::fflush(stdout);
  int signo = 0;
  sigwait(&stop_signals, &signo);
  group.stop();
}

int usage() {
  std::fprintf(stderr,
               "usage: tcp_echo --smoke\n"
               "       tcp_echo server [PORT] [--threads N | --processes N]\n"
               "       tcp_echo client HOST PORT MESSAGE\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--smoke") {
    {
      IOLoop loop;
      loop.run_sync(smoke_one_loop, 10s);
    }
    smoke_threads();
    std::puts("tcp_echo: every claim checked");
    return 0;
  }
  if (!args.empty() && args[0] == "server" && args.size() <= 4) {
    int port = args.size() >= 2 ? std::atoi(args[1].c_str()) : 8888;
    if (args.size() == 4 && args[2] == "--threads") {
      serve_on_threads_until_signalled(port, static_cast<std::size_t>(std::atoi(args[3].c_str())));
      return 0;
    }
    if (args.size() == 4 && args[2] == "--processes") serve_in_processes(port, std::atoi(args[3].c_str()));
    if (args.size() > 2) return usage();
    serve_forever(port);
    return 0;
  }
  if (args.size() == 4 && args[0] == "client") {
    IOLoop loop;
    TCPClient client;
    std::string reply =
        loop.run_sync([&] { return echo_once(client, args[1], std::atoi(args[2].c_str()), args[3]); }, 10s);
    std::printf("%s\n", reply.c_str());
    return 0;
  }
  return usage();
}
