// netutil: bind_sockets, bind_unix_socket, add_accept_handler (batching,
// removal, errors, running out of descriptors) and is_valid_ip. Loopback only.
#include "squall/net/netutil.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/net/resolver.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::net {
namespace {

class NetutilTest : public testing::AsyncTest {};

int port_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
}

int family_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family;
}

int int_option(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  ::getsockopt(fd, level, name, &v, &len);
  return v;
}

/// A blocking client connected to 127.0.0.1:port (or [::1]:port).
UniqueFd connect_blocking(int port, bool ipv6 = false) {
  UniqueFd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::system_error(errno, std::system_category(), "socket");
  sockaddr_storage ss{};
  socklen_t len;
  if (ipv6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof a;
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof a;
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    throw std::system_error(errno, std::system_category(), "connect");
  }
  return fd;
}

std::string local_name(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(ntohs(a.sin_port));
}

/// Waits until `n` connections sit in the listener's accept queue. For a
/// listening socket, Linux reports the queue length in tcpi_unacked
/// (tcp_get_info). Fails after 5 s.
bool wait_for_accept_queue(int listener, unsigned n) {
  for (int i = 0; i < 5000; ++i) {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(listener, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_unacked >= n) return true;
    ::poll(nullptr, 0, 1);
  }
  return false;
}

/// A unique path in the temporary directory, removed with the guard.
struct TempPath {
  std::string path;
  TempPath() {
    char tmpl[] = "/tmp/squall-netutil-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::system_error(errno, std::system_category(), "mkdtemp");
    dir = tmpl;
    path = dir + "/sock";
  }
  ~TempPath() { std::filesystem::remove_all(dir); }
  std::string dir;
};

// --- bind_sockets ---------------------------------------------------------------------

TEST_F(NetutilTest, BindSocketsOnANumericAddressGivesOneListeningNonBlockingSocket) {
  auto sockets = bind_sockets(0, "127.0.0.1");
  ASSERT_EQ(sockets.size(), 1u);
  int fd = sockets[0].get();
  EXPECT_EQ(family_of(fd), AF_INET);
  EXPECT_GT(port_of(fd), 0);
  EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
  EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_REUSEADDR), 1);
  EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_REUSEPORT), 0);
  EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

TEST_F(NetutilTest, BindSocketsOnIPv6LoopbackGivesAV6OnlySocket) {
  auto sockets = bind_sockets(0, "::1");
  ASSERT_EQ(sockets.size(), 1u);
  EXPECT_EQ(family_of(sockets[0].get()), AF_INET6);
  EXPECT_EQ(int_option(sockets[0].get(), IPPROTO_IPV6, IPV6_V6ONLY), 1);
}

TEST_F(NetutilTest, AnEmptyAddressGivesAnIPv4AndAnIPv6SocketSharingTheChosenPort) {
  // Binds the wildcard addresses (nothing is sent anywhere); the test then
  // talks to them through loopback only.
  auto sockets = bind_sockets(0, "");
  ASSERT_EQ(sockets.size(), 2u);
  EXPECT_EQ(family_of(sockets[0].get()), AF_INET);
  EXPECT_EQ(family_of(sockets[1].get()), AF_INET6);
  int port = port_of(sockets[0].get());
  EXPECT_EQ(port_of(sockets[1].get()), port);
  EXPECT_EQ(int_option(sockets[1].get(), IPPROTO_IPV6, IPV6_V6ONLY), 1);
  // Each family reaches its own socket.
  UniqueFd v4 = connect_blocking(port);
  UniqueFd v6 = connect_blocking(port, true);
  EXPECT_TRUE(wait_for_accept_queue(sockets[0].get(), 1));
  EXPECT_TRUE(wait_for_accept_queue(sockets[1].get(), 1));
}

TEST_F(NetutilTest, TheFamilyOptionKeepsOnlyThatFamily) {
  auto sockets = bind_sockets(0, "", {.family = AF_INET6});
  ASSERT_EQ(sockets.size(), 1u);
  EXPECT_EQ(family_of(sockets[0].get()), AF_INET6);
}

TEST_F(NetutilTest, ReusePortLetsTwoSocketsListenOnOnePort) {
  auto first = bind_sockets(0, "127.0.0.1", {.reuse_port = true});
  int port = port_of(first[0].get());
  auto second = bind_sockets(port, "127.0.0.1", {.reuse_port = true});
  EXPECT_EQ(port_of(second[0].get()), port);
  EXPECT_EQ(int_option(second[0].get(), SOL_SOCKET, SO_REUSEPORT), 1);
}

TEST_F(NetutilTest, APortInUseIsASystemErrorNamingTheAddress) {
  auto first = bind_sockets(0, "127.0.0.1");
  int port = port_of(first[0].get());
  try {
    bind_sockets(port, "127.0.0.1");
    ADD_FAILURE() << "bound a port already in use";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.what();
  }
}

TEST_F(NetutilTest, AnAddressThatDoesNotParseIsAResolveError) {
  // AI_NUMERICHOST: the text is parsed, never looked up.
  EXPECT_THROW(bind_sockets(0, "not-an-address", {.flags = AI_PASSIVE | AI_NUMERICHOST}), ResolveError);
}

TEST_F(NetutilTest, TheBacklogOptionReachesListen) {
  auto sockets = bind_sockets(0, "127.0.0.1", {.backlog = 7});
  tcp_info info{};
  socklen_t len = sizeof info;
  ASSERT_EQ(::getsockopt(sockets[0].get(), IPPROTO_TCP, TCP_INFO, &info, &len), 0);
  EXPECT_EQ(info.tcpi_sacked, 7u);  // a listener's tcpi_sacked is its backlog
}

// --- bind_unix_socket ---------------------------------------------------------------------

TEST_F(NetutilTest, BindUnixSocketListensWithTheGivenMode) {
  TempPath tmp;
  UniqueFd fd = bind_unix_socket(tmp.path, {.mode = 0640});
  struct stat st{};
  ASSERT_EQ(::stat(tmp.path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(int_option(fd.get(), SOL_SOCKET, SO_ACCEPTCONN), 1);
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK);

  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", tmp.path.c_str());
  EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
}

TEST_F(NetutilTest, BindUnixSocketReplacesASocketFileLeftBehind) {
  TempPath tmp;
  { UniqueFd old = bind_unix_socket(tmp.path); }  // closed: the file stays
  ASSERT_TRUE(std::filesystem::exists(tmp.path));
  UniqueFd fd = bind_unix_socket(tmp.path);
  EXPECT_TRUE(fd);
}

TEST_F(NetutilTest, BindUnixSocketRefusesToRemoveAFileThatIsNotASocket) {
  TempPath tmp;
  { std::FILE* f = std::fopen(tmp.path.c_str(), "w"); ASSERT_NE(f, nullptr); std::fputs("keep me", f); std::fclose(f); }
  try {
    bind_unix_socket(tmp.path);
    ADD_FAILURE() << "replaced a regular file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EEXIST);
  }
  EXPECT_EQ(std::filesystem::file_size(tmp.path), 7u);
}

TEST_F(NetutilTest, BindUnixSocketRejectsAPathTooLongForSockaddrUn) {
  EXPECT_THROW(bind_unix_socket("/tmp/" + std::string(200, 'x')), std::invalid_argument);
}

// --- add_accept_handler ---------------------------------------------------------------------

struct Accepted {
  std::vector<UniqueFd> fds;
  std::vector<std::string> addresses;
};

TEST_F(NetutilTest, EachAcceptedConnectionIsHandedOverWithThePeerAddress) {
  auto [listener, port] = testing::bind_unused_port();
  Accepted got;
  AcceptHandler handler = add_accept_handler(listener.get(), [&](UniqueFd fd, std::string address) {
    EXPECT_TRUE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
    got.fds.push_back(std::move(fd));
    got.addresses.push_back(std::move(address));
    if (got.fds.size() == 2) io_loop().stop();
  });
  UniqueFd a = connect_blocking(port);
  UniqueFd b = connect_blocking(port);
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  ASSERT_EQ(got.fds.size(), 2u);
  EXPECT_EQ(got.addresses[0], local_name(a.get()));
  EXPECT_EQ(got.addresses[1], local_name(b.get()));
  EXPECT_TRUE(handler.active());
}

TEST_F(NetutilTest, AUnixSocketPeerHasAnEmptyAddress) {
  TempPath tmp;
  UniqueFd listener = bind_unix_socket(tmp.path);
  std::vector<std::string> addresses;
  AcceptHandler handler = add_accept_handler(listener.get(), [&](UniqueFd, std::string address) {
    addresses.push_back(std::move(address));
    io_loop().stop();
  });
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", tmp.path.c_str());
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(addresses, std::vector<std::string>{""});
}

TEST_F(NetutilTest, ABurstOfConnectionsIsAcceptedInOneWakeUp) {
  auto [listener, port] = testing::bind_unused_port();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 100; ++i) clients.push_back(connect_blocking(port));
  ASSERT_TRUE(wait_for_accept_queue(listener.get(), 100));

  // A callback added during the fd handler runs once the handler returned:
  // it sees how many connections that one wake-up accepted.
  Accepted got;
  std::size_t in_first_wakeup = 0;
  AcceptHandler handler = add_accept_handler(listener.get(), [&](UniqueFd fd, std::string) {
    got.fds.push_back(std::move(fd));
    if (got.fds.size() == 1) io_loop().add_callback([&] { in_first_wakeup = got.fds.size(); });
    if (got.fds.size() == 100) io_loop().add_callback([&] { io_loop().stop(); });
  });
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(got.fds.size(), 100u);
  EXPECT_EQ(in_first_wakeup, 100u);
}

TEST_F(NetutilTest, AWakeUpAcceptsAtMostMaxAcceptsPerWakeup) {
  auto [listener, port] = testing::bind_unused_port();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 25; ++i) clients.push_back(connect_blocking(port));
  ASSERT_TRUE(wait_for_accept_queue(listener.get(), 25));

  Accepted got;
  std::vector<std::size_t> marks;
  AcceptHandler handler = add_accept_handler(
      listener.get(),
      [&](UniqueFd fd, std::string) {
        got.fds.push_back(std::move(fd));
        if (got.fds.size() % 10 == 1) io_loop().add_callback([&] { marks.push_back(got.fds.size()); });
        if (got.fds.size() == 25) io_loop().add_callback([&] { io_loop().stop(); });
      },
      {.max_accepts_per_wakeup = 10});
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(got.fds.size(), 25u);
  EXPECT_EQ(marks, (std::vector<std::size_t>{10, 20, 25}));
}

TEST_F(NetutilTest, RemovingTheHandlerFromItsCallbackStopsAcceptingAtOnce) {
  auto [listener, port] = testing::bind_unused_port();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(port));
  ASSERT_TRUE(wait_for_accept_queue(listener.get(), 3));
  int accepted = 0;
  AcceptHandler handler;
  handler = add_accept_handler(listener.get(), [&](UniqueFd, std::string) {
    ++accepted;
    handler.remove();
    io_loop().add_callback([&] { io_loop().stop(); });
  });
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(accepted, 1);
  EXPECT_FALSE(handler.active());
  EXPECT_TRUE(wait_for_accept_queue(listener.get(), 2));  // the others still wait
}

TEST_F(NetutilTest, DestroyingTheHandlerFromItsCallbackIsSafe) {
  auto [listener, port] = testing::bind_unused_port();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(port));
  ASSERT_TRUE(wait_for_accept_queue(listener.get(), 3));
  int accepted = 0;
  auto handler = std::make_unique<AcceptHandler>();
  *handler = add_accept_handler(listener.get(), [&](UniqueFd, std::string) {
    ++accepted;
    handler.reset();  // destroys the callback's owner while it runs
    io_loop().add_callback([&] { io_loop().stop(); });
  });
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(accepted, 1);
}

TEST_F(NetutilTest, AnExceptionFromTheCallbackIsLoggedAndAcceptingGoesOn) {
  testing::ExpectLog expect("squall.application", "Exception in accept callback: no thanks");
  auto [listener, port] = testing::bind_unused_port();
  int accepted = 0;
  AcceptHandler handler = add_accept_handler(listener.get(), [&](UniqueFd, std::string) {
    if (++accepted == 2) io_loop().stop();
    throw std::runtime_error("no thanks");
  });
  UniqueFd a = connect_blocking(port);
  UniqueFd b = connect_blocking(port);
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  EXPECT_EQ(accepted, 2);
}

/// Lowers RLIMIT_NOFILE to the descriptors in use and fills every free slot
/// below it, so the next open fails with EMFILE. Restores both when
/// destroyed, so a failing test leaves the process as it found it.
class DescriptorExhaustion {
 public:
  DescriptorExhaustion() {
    if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) throw std::system_error(errno, std::system_category(), "getrlimit");
    int highest = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    }
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 1;
    if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) throw std::system_error(errno, std::system_category(), "setrlimit");
    for (;;) {
      UniqueFd filler(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!filler) break;  // EMFILE: the table is full
      fillers_.push_back(std::move(filler));
    }
  }
  ~DescriptorExhaustion() { restore(); }
  void restore() {
    fillers_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<UniqueFd> fillers_;
};

bool peer_closed(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

TEST_F(NetutilTest, OutOfDescriptorsNewConnectionsAreClosedAtOnceInsteadOfSpinning) {
  testing::ExpectLog expect("squall.general", "Too many open files; closing new connections unserved");
  {
    // A sanitizer artifact, not squall's: UBSan's first type check of an
    // object kind probes memory through a pipe, which fails with EMFILE and
    // reads as a bad vptr. Log once while descriptors are left, so the
    // warning logged under exhaustion finds its checks cached.
    testing::ExpectLog warm_up("squall.application", "warming up the log path");
    io_loop().add_callback([] { throw std::runtime_error("warming up the log path"); });
    io_loop().add_callback([&] { io_loop().stop(); });
    io_loop().start();
  }
  auto [listener, port] = testing::bind_unused_port();
  int accepted = 0;
  AcceptHandler handler = add_accept_handler(listener.get(), [&](UniqueFd, std::string) {
    ++accepted;
    io_loop().stop();
  });
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(port));
  ASSERT_TRUE(wait_for_accept_queue(listener.get(), 3));

  auto exhaustion = std::make_unique<DescriptorExhaustion>();
  // Each client must see its connection closed. Without the spare
  // descriptor nothing could accept them: they would hang, and the loop
  // would spin on the readable listener until the guard timer.
  for (auto& c : clients) {
    io_loop().add_handler(c.get(), IOLoop::READ, [&](int, std::uint32_t) {
      bool all = true;
      for (auto& x : clients) all = all && peer_closed(x.get());
      if (all) io_loop().stop();
    });
  }
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();
  for (auto& c : clients) io_loop().remove_handler(c.get());
  exhaustion.reset();
  EXPECT_EQ(accepted, 0);
  for (auto& c : clients) EXPECT_TRUE(peer_closed(c.get()));

  // Descriptors are back: the same handler serves again.
  UniqueFd later = connect_blocking(port);
  io_loop().call_later(5s, [&] { io_loop().stop(); });
  io_loop().start();  // the callback stops the loop
  EXPECT_EQ(accepted, 1);
}

// --- is_valid_ip -------------------------------------------------------------------------------

TEST(IsValidIp, AcceptsNumericIPv4AndIPv6) {
  EXPECT_TRUE(is_valid_ip("127.0.0.1"));
  EXPECT_TRUE(is_valid_ip("4.4.4.4"));
  EXPECT_TRUE(is_valid_ip("::1"));
  EXPECT_TRUE(is_valid_ip("2620:0:1cfe:face:b00c::3"));
  EXPECT_TRUE(is_valid_ip("::ffff:127.0.0.1"));
}

TEST(IsValidIp, RejectsNamesAndGarbageWithoutALookup) {
  // Tornado's own cases (tornado/test/netutil_test.py).
  EXPECT_FALSE(is_valid_ip(""));
  EXPECT_FALSE(is_valid_ip(" "));
  EXPECT_FALSE(is_valid_ip("-"));
  EXPECT_FALSE(is_valid_ip("localhost"));
  EXPECT_FALSE(is_valid_ip("www.google.com"));
  EXPECT_FALSE(is_valid_ip("4.4.4.4<"));
  EXPECT_FALSE(is_valid_ip(" 127.0.0.1"));
  EXPECT_FALSE(is_valid_ip(std::string_view("\0", 1)));
  EXPECT_FALSE(is_valid_ip(std::string_view("127.0.0.1\0x", 11)));
  EXPECT_FALSE(is_valid_ip("::1::"));
}

}  // namespace
}  // namespace squall::net
