// TCPClient: numeric hosts and resolved names, refused and hanging
// addresses, Happy Eyeballs between 127.0.0.1 and ::1, timeouts,
// cancellation, source addresses. Loopback only: every address a test
// resolver hands out is 127.0.0.1 or ::1.
#include "squall/net/tcpclient.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/net/tcpserver.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::net {
namespace {

class TCPClientTest : public testing::AsyncTest {};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// Answers each connection with "hello" and its peer's address, then
/// closes it.
class Greeter : public TCPServer {
 protected:
  Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string address) override {
    co_await stream->write("hello " + address);
  }
};

/// A socket bound to a loopback port but not listening: connecting to the
/// port is refused (RST), and nobody else can take the port meanwhile.
struct RefusingPort {
  UniqueFd fd;
  int port = 0;
  explicit RefusingPort(bool ipv6 = false) {
    fd.reset(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ResolvedAddress a = ResolvedAddress::from_ip(ipv6 ? "::1" : "127.0.0.1", 0);
    if (::bind(fd.get(), a.sockaddr_ptr(), a.length) != 0) throw std::system_error(errno, std::system_category());
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    port = ipv6 ? ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port) : ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
  }
};

/// A loopback listener that never answers a new connection: its accept
/// queue (listen backlog 0) is filled by one connection nobody accepts, and
/// Linux drops a SYN that arrives while the accept queue is full
/// (tcp_conn_request), so a connect to it neither succeeds nor fails until
/// the client gives up. probe() checks that this really holds here.
struct HangingListener {
  UniqueFd listener;
  UniqueFd filler;
  int port = 0;
  std::string ip;
  explicit HangingListener(bool ipv6 = false) : ip(ipv6 ? "::1" : "127.0.0.1") {
    listener.reset(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ResolvedAddress a = ResolvedAddress::from_ip(ip, 0);
    if (::bind(listener.get(), a.sockaddr_ptr(), a.length) != 0 || ::listen(listener.get(), 0) != 0) {
      throw std::system_error(errno, std::system_category(), "listen");
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    port = ipv6 ? ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port) : ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
    filler = start_connect();
    pollfd p{filler.get(), POLLOUT, 0};
    if (::poll(&p, 1, 5000) != 1) throw std::runtime_error("the filler connection did not complete");
  }
  ResolvedAddress address() const { return ResolvedAddress::from_ip(ip, port); }
  UniqueFd start_connect() const {
    ResolvedAddress a = address();
    UniqueFd fd(::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ::connect(fd.get(), a.sockaddr_ptr(), a.length);
    return fd;
  }
  /// True if a fresh connect is still pending after 200 ms.
  bool probe() const {
    UniqueFd fd = start_connect();
    pollfd p{fd.get(), POLLOUT, 0};
    return ::poll(&p, 1, 200) == 0;
  }
};

/// Sockets of this process's network namespace in SYN-SENT state towards
/// `port` (/proc/net/tcp and tcp6, state 02): connects still waiting.
int connects_pending_to(int port) {
  int count = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      auto colon = remote.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::stoi(remote.substr(colon + 1), nullptr, 16) == port && state == "02") ++count;
    }
  }
  return count;
}

/// A resolver for tests: fixed answers per name, a count of calls, and
/// optionally no answer at all (until cancelled).
class FixedResolver : public Resolver {
 public:
  std::map<std::string, std::vector<ResolvedAddress>> answers;
  bool never_answer = false;
  int calls = 0;
  int last_family = -1;
  bool cancelled = false;
  std::vector<Future<std::vector<ResolvedAddress>>> held;

  Future<std::vector<ResolvedAddress>> resolve(const std::string& host, int, int family) override {
    ++calls;
    last_family = family;
    Future<std::vector<ResolvedAddress>> f;
    if (never_answer) {
      f.set_cancel_handler([this] { cancelled = true; });
      held.push_back(f);
      return f;
    }
    auto it = answers.find(host);
    if (it == answers.end()) {
      f.set_exception(ResolveError("unknown test host " + host));
    } else {
      f.set_result(it->second);
    }
    return f;
  }
};

// --- numeric hosts and names ------------------------------------------------------------------

SQUALL_ASYNC_TEST(TCPClientTest, ConnectsToNumericIPv4AndIPv6Hosts) {
  Greeter server;
  int port4 = server.listen(0, "127.0.0.1");
  int port6 = server.listen(0, "::1");
  TCPClient client;
  auto a = co_await client.connect("127.0.0.1", port4);
  EXPECT_TRUE(contains(co_await a->read_until_close(), "hello 127.0.0.1:"));
  auto b = co_await client.connect("::1", port6);
  EXPECT_TRUE(contains(co_await b->read_until_close(), "hello [::1]:"));
  auto c = co_await client.connect("[::1]", port6);
  EXPECT_EQ(c->peer_name(), "[::1]:" + std::to_string(port6));
}

SQUALL_ASYNC_TEST(TCPClientTest, NumericHostsNeverReachTheResolver) {
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  auto resolver = std::make_shared<FixedResolver>();
  TCPClient client(resolver);
  auto stream = co_await client.connect("127.0.0.1", port);
  EXPECT_EQ(resolver->calls, 0);
}

SQUALL_ASYNC_TEST(TCPClientTest, NamesAreResolvedWithTheRequestedFamily) {
  Greeter server;
  int port = server.listen(0, "::1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["greeter.test"] = {ResolvedAddress::from_ip("::1", port)};
  TCPClient client(resolver);
  auto stream = co_await client.connect("greeter.test", port, {.family = AF_INET6});
  EXPECT_EQ(resolver->calls, 1);
  EXPECT_EQ(resolver->last_family, AF_INET6);
  EXPECT_TRUE(contains(co_await stream->read_until_close(), "hello [::1]:"));
}

SQUALL_ASYNC_TEST(TCPClientTest, AnOverrideResolverPointsANameAtLoopback) {
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  auto resolver = std::make_shared<OverrideResolver>(
      std::make_shared<FixedResolver>(), OverrideMapping{.addresses = {{"service.example", {"127.0.0.1"}}}});
  TCPClient client(resolver);
  auto stream = co_await client.connect("service.example", port);
  EXPECT_TRUE(contains(co_await stream->read_until_close(), "hello 127.0.0.1:"));
}

SQUALL_ASYNC_TEST(TCPClientTest, AResolveErrorReachesTheCaller) {
  TCPClient client(std::make_shared<FixedResolver>());
  bool failed = false;
  try {
    co_await client.connect("nowhere.test", 80);
  } catch (const ResolveError& e) {
    failed = contains(e.what(), "nowhere.test");
  }
  EXPECT_TRUE(failed);
}

SQUALL_ASYNC_TEST(TCPClientTest, ANumericHostOfAnotherFamilyIsAResolveError) {
  TCPClient client;
  EXPECT_THROW(co_await client.connect("::1", 80, {.family = AF_INET}), ResolveError);
}

// --- failures ---------------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(TCPClientTest, ARefusedConnectNamesTheAddressAndTheReason) {
  RefusingPort refusing;
  TCPClient client;
  std::string message;
  std::vector<ConnectError::Attempt> attempts;
  int code = 0;
  try {
    co_await client.connect("127.0.0.1", refusing.port);
  } catch (const ConnectError& e) {
    message = e.what();
    attempts = e.attempts();
    code = e.code().value();
  }
  std::string where = "127.0.0.1:" + std::to_string(refusing.port);
  EXPECT_TRUE(contains(message, "Could not connect to " + where + ": " + where + ": Connection refused")) << message;
  CO_ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].address, where);
  EXPECT_EQ(attempts[0].error, ECONNREFUSED);
  EXPECT_EQ(code, ECONNREFUSED);
}

SQUALL_ASYNC_TEST(TCPClientTest, WhenEveryAddressFailsTheErrorNamesEachOne) {
  RefusingPort refusing4;
  RefusingPort refusing6(true);
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["down.test"] = {ResolvedAddress::from_ip("127.0.0.1", refusing4.port),
                                    ResolvedAddress::from_ip("::1", refusing6.port)};
  TCPClient client(resolver);
  std::string message;
  std::size_t attempts = 0;
  try {
    co_await client.connect("down.test", 80);
  } catch (const ConnectError& e) {
    message = e.what();
    attempts = e.attempts().size();
  }
  EXPECT_EQ(attempts, 2u);
  EXPECT_TRUE(contains(message, "down.test:80")) << message;
  EXPECT_TRUE(contains(message, "127.0.0.1:" + std::to_string(refusing4.port) + ": Connection refused")) << message;
  EXPECT_TRUE(contains(message, "[::1]:" + std::to_string(refusing6.port) + ": Connection refused")) << message;
}

SQUALL_ASYNC_TEST(TCPClientTest, TheHangingListenerReallyHangs) {
  // Guards the premise of the Happy Eyeballs and timeout tests below.
  HangingListener hanging;
  EXPECT_TRUE(hanging.probe());
  HangingListener hanging6(true);
  EXPECT_TRUE(hanging6.probe());
  co_return;
}

SQUALL_ASYNC_TEST(TCPClientTest, ATimeoutNamesTheAddressesTriedAndClosesThem) {
  HangingListener hanging;
  TCPClient client;
  auto started = io_loop().time();
  std::string message;
  try {
    co_await client.connect("127.0.0.1", hanging.port, {.timeout = 100ms});
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  EXPECT_GE(io_loop().time() - started, 100ms);
  EXPECT_TRUE(contains(message, "Timeout connecting to 127.0.0.1:" + std::to_string(hanging.port))) << message;
  EXPECT_TRUE(contains(message, "127.0.0.1:" + std::to_string(hanging.port) + ": no answer")) << message;
  EXPECT_EQ(connects_pending_to(hanging.port), 0);
}

SQUALL_ASYNC_TEST(TCPClientTest, TheTimeoutCoversNameResolution) {
  auto resolver = std::make_shared<FixedResolver>();
  resolver->never_answer = true;
  TCPClient client(resolver);
  std::string message;
  try {
    co_await client.connect("slow.test", 80, {.timeout = 50ms});
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  EXPECT_TRUE(contains(message, "Timeout resolving slow.test")) << message;
  EXPECT_TRUE(resolver->cancelled);
}

// --- Happy Eyeballs ---------------------------------------------------------------------------------

SQUALL_ASYNC_TEST(TCPClientTest, WhenTheFirstFamilyHangsTheSecondIsTriedAfterTheDelayAndWins) {
  HangingListener hanging;
  Greeter server;
  int port6 = server.listen(0, "::1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["dual.test"] = {hanging.address(), ResolvedAddress::from_ip("::1", port6)};
  TCPClient client(resolver);
  auto started = io_loop().time();
  auto stream = co_await client.connect("dual.test", 80, {.secondary_delay = 100ms});
  EXPECT_GE(io_loop().time() - started, 100ms);
  EXPECT_EQ(stream->peer_name(), "[::1]:" + std::to_string(port6));
  // The loser was closed: nothing of ours still waits on the hanging port.
  EXPECT_EQ(connects_pending_to(hanging.port), 0);
}

SQUALL_ASYNC_TEST(TCPClientTest, ByDefaultTheSecondFamilyWaits300Milliseconds) {
  HangingListener hanging;
  Greeter server;
  int port6 = server.listen(0, "::1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["dual.test"] = {hanging.address(), ResolvedAddress::from_ip("::1", port6)};
  TCPClient client(resolver);
  auto started = io_loop().time();
  auto stream = co_await client.connect("dual.test", 80);
  EXPECT_GE(io_loop().time() - started, 300ms);
  EXPECT_EQ(stream->peer_name(), "[::1]:" + std::to_string(port6));
}

SQUALL_ASYNC_TEST(TCPClientTest, AFailureInTheFirstFamilyStartsTheSecondAtOnce) {
  RefusingPort refusing;
  Greeter server;
  int port6 = server.listen(0, "::1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["dual.test"] = {ResolvedAddress::from_ip("127.0.0.1", refusing.port),
                                    ResolvedAddress::from_ip("::1", port6)};
  TCPClient client(resolver);
  // An hour's delay: only the failure can start the second family in time.
  auto stream = co_await client.connect("dual.test", 80, {.secondary_delay = 1h});
  EXPECT_EQ(stream->peer_name(), "[::1]:" + std::to_string(port6));
}

SQUALL_ASYNC_TEST(TCPClientTest, AddressesOfOneFamilyAreTriedInOrder) {
  RefusingPort refusing;
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["two.test"] = {ResolvedAddress::from_ip("127.0.0.1", refusing.port),
                                   ResolvedAddress::from_ip("127.0.0.1", port)};
  TCPClient client(resolver);
  auto stream = co_await client.connect("two.test", 80);
  EXPECT_EQ(stream->peer_name(), "127.0.0.1:" + std::to_string(port));
}

SQUALL_ASYNC_TEST(TCPClientTest, AHangingAddressHoldsUpTheNextOneOfItsFamily) {
  // Tornado's order: within a family, one address at a time; only the
  // other family runs alongside.
  HangingListener hanging;
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["two.test"] = {hanging.address(), ResolvedAddress::from_ip("127.0.0.1", port)};
  TCPClient client(resolver);
  std::string message;
  try {
    co_await client.connect("two.test", 80, {.timeout = 200ms});
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  EXPECT_TRUE(contains(message, ": no answer")) << message;
  EXPECT_FALSE(contains(message, "127.0.0.1:" + std::to_string(port))) << message;  // never tried
}

SQUALL_ASYNC_TEST(TCPClientTest, CancellingTheConnectClosesEverySocketStillConnecting) {
  HangingListener hanging4;
  HangingListener hanging6(true);
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["black.hole"] = {hanging4.address(), hanging6.address()};
  TCPClient client(resolver);
  auto connecting = client.connect("black.hole", 80, {.timeout = 1h, .secondary_delay = 10ms});
  co_await squall::sleep(100ms);  // both families are connecting by now
  EXPECT_EQ(connects_pending_to(hanging4.port), 1);
  EXPECT_EQ(connects_pending_to(hanging6.port), 1);
  EXPECT_TRUE(connecting.cancel());
  EXPECT_THROW(co_await std::move(connecting), CancelledError);
  EXPECT_EQ(connects_pending_to(hanging4.port), 0);
  EXPECT_EQ(connects_pending_to(hanging6.port), 0);
}

SQUALL_ASYNC_TEST(TCPClientTest, CancellingWhileResolvingCancelsTheLookup) {
  auto resolver = std::make_shared<FixedResolver>();
  resolver->never_answer = true;
  TCPClient client(resolver);
  auto connecting = client.connect("slow.test", 80);
  EXPECT_TRUE(connecting.cancel());
  EXPECT_THROW(co_await std::move(connecting), CancelledError);
  EXPECT_TRUE(resolver->cancelled);
}

SQUALL_ASYNC_TEST(TCPClientTest, TheClientMayGoAwayWhileAConnectIsPending) {
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->never_answer = true;
  auto client = std::make_unique<TCPClient>(resolver);
  auto connecting = client->connect("later.test", port);
  client.reset();
  resolver->held.at(0).set_result({ResolvedAddress::from_ip("127.0.0.1", port)});
  auto stream = co_await std::move(connecting);
  EXPECT_TRUE(contains(co_await stream->read_until_close(), "hello"));
}

// --- source address and options ------------------------------------------------------------------

/// A loopback port free right now (bound, read, released).
int free_port() {
  RefusingPort probe;
  return probe.port;
}

SQUALL_ASYNC_TEST(TCPClientTest, TheSourceAddressAndPortAreBoundBeforeConnecting) {
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  int source_port = free_port();
  auto stream = co_await client.connect("127.0.0.1", port, {.source_ip = "127.0.0.1", .source_port = source_port});
  EXPECT_EQ(co_await stream->read_until_close(), "hello 127.0.0.1:" + std::to_string(source_port));
}

SQUALL_ASYNC_TEST(TCPClientTest, ASourcePortAloneBindsTheWildcardAddress) {
  Greeter server;
  int port = server.listen(0, "::1");
  TCPClient client;
  int source_port = free_port();
  auto stream = co_await client.connect("::1", port, {.source_port = source_port});
  EXPECT_EQ(co_await stream->read_until_close(), "hello [::1]:" + std::to_string(source_port));
}

SQUALL_ASYNC_TEST(TCPClientTest, ASourceIpOnlyKeepsItsFamily) {
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  auto resolver = std::make_shared<FixedResolver>();
  resolver->answers["dual.test"] = {ResolvedAddress::from_ip("127.0.0.1", port)};
  TCPClient client(resolver);
  auto stream = co_await client.connect("dual.test", port, {.source_ip = "127.0.0.1"});
  EXPECT_EQ(resolver->last_family, AF_INET);
  EXPECT_TRUE(contains(co_await stream->read_until_close(), "hello 127.0.0.1:"));
}

SQUALL_ASYNC_TEST(TCPClientTest, ASourceIpThatIsNotAnAddressIsInvalidArgument) {
  TCPClient client;
  EXPECT_THROW(co_await client.connect("127.0.0.1", 80, {.source_ip = "my-laptop"}), std::invalid_argument);
}

SQUALL_ASYNC_TEST(TCPClientTest, TheStreamOptionsReachTheStream) {
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port, {.stream = {.max_buffer_size = 4321}});
  EXPECT_EQ(stream->options().max_buffer_size, 4321u);
}

SQUALL_ASYNC_TEST(TCPClientTest, OptionsBuiltInsideTheAwaitExpressionSurvive) {
  // Guards ConnectOptions' trivial copyability (see its comment): a source
  // address given as a temporary std::string, in the co_await expression.
  Greeter server;
  int port = server.listen(0, "127.0.0.1");
  TCPClient client;
  auto stream = co_await client.connect("127.0.0.1", port,
                                        {.timeout = 5s, .source_ip = std::string("127.0.0.1"), .stream = {}});
  EXPECT_TRUE(contains(co_await stream->read_until_close(), "hello 127.0.0.1:"));
}

}  // namespace
}  // namespace squall::net
