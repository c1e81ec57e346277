// TLS specifics: verification outcomes, start_tls, ALPN. (Reads and writes
// over TLS run in the typed suite of iostream_test.cpp.)
#include "squall/net/ssl_iostream.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../support/test_certs.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::net {
namespace {

testing::TestCerts& certs() {
  static testing::TestCerts instance;
  return instance;
}

/// A connected TCP pair on 127.0.0.1: {server side, client side}.
std::pair<UniqueFd, UniqueFd> tcp_pair() {
  auto [listener, port] = testing::bind_unused_port();
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  return {std::move(server), std::move(client)};
}

class SSLIOStreamTest : public testing::AsyncTest {
 protected:
  /// Runs a handshake of a server using `pair` against a client expecting
  /// `hostname`; returns the client's error text, empty on success.
  // The options are named by the callers rather than built inside the
  // co_await expression: GCC 12 destroys such aggregate temporaries twice.
  Future<std::string> client_handshake_error(const testing::TestCerts::Pair& pair, std::string hostname,
                                             const SSLOptions& client_options) {
    auto [server_fd, client_fd] = tcp_pair();
    SSLIOStream server(std::move(server_fd), SSLContext::server({.certfile = pair.cert, .keyfile = pair.key}));
    SSLIOStream client(std::move(client_fd), SSLContext::client(client_options), std::move(hostname));
    auto server_done = server.wait_for_handshake();
    std::string error;
    try {
      co_await client.wait_for_handshake();
    } catch (const SSLError& e) {
      error = e.what();
    }
    co_return error;
  }
};

SQUALL_ASYNC_TEST(SSLIOStreamTest, AClientTrustingTheCAConnectsToLocalhost) {
  SSLOptions options{.ca_certs = certs().ca_file()};
  auto error = co_await client_handshake_error(certs().server(), "localhost", options);
  EXPECT_EQ(error, "");
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, AnIPAddressIsCheckedAgainstTheCertificatesIPNames) {
  SSLOptions options{.ca_certs = certs().ca_file()};
  auto error = co_await client_handshake_error(certs().server(), "127.0.0.1", options);
  EXPECT_EQ(error, "");
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, ACertificateForAnotherHostIsRejected) {
  SSLOptions options{.ca_certs = certs().ca_file()};
  auto error = co_await client_handshake_error(certs().other_host(), "localhost", options);
  EXPECT_NE(error.find("hostname mismatch"), std::string::npos) << error;
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, AnExpiredCertificateIsRejected) {
  SSLOptions options{.ca_certs = certs().ca_file()};
  auto error = co_await client_handshake_error(certs().expired(), "localhost", options);
  EXPECT_NE(error.find("expired"), std::string::npos) << error;
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, ASelfSignedCertificateIsRejected) {
  SSLOptions options{.ca_certs = certs().ca_file()};
  auto error = co_await client_handshake_error(certs().self_signed(), "localhost", options);
  EXPECT_NE(error.find("self-signed"), std::string::npos) << error;
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, WithVerificationOffAnyCertificateIsAccepted) {
  SSLOptions options{.verify_peer = false};
  auto error = co_await client_handshake_error(certs().self_signed(), "wrong.name", options);
  EXPECT_EQ(error, "");
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, AFailedHandshakeFailsPendingReadsWithTheReason) {
  auto [server_fd, client_fd] = tcp_pair();
  SSLIOStream server(std::move(server_fd),
                     SSLContext::server({.certfile = certs().other_host().cert, .keyfile = certs().other_host().key}));
  SSLIOStream client(std::move(client_fd), SSLContext::client({.ca_certs = certs().ca_file()}), "localhost");
  std::string reason;
  try {
    co_await client.read_bytes(1);
  } catch (const StreamClosedError& e) {
    reason = e.what();
  }
  EXPECT_NE(reason.find("hostname mismatch"), std::string::npos) << reason;
  EXPECT_TRUE(client.closed());
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, StartTlsUpgradesAPlainConnection) {
  auto [server_fd, client_fd] = tcp_pair();
  auto server = std::make_unique<IOStream>(std::move(server_fd));
  auto client = std::make_unique<IOStream>(std::move(client_fd));
  co_await client->write("STARTTLS\r\n");
  EXPECT_EQ(co_await server->read_until("\r\n"), "STARTTLS\r\n");
  auto server_ctx = SSLContext::server({.certfile = certs().server().cert, .keyfile = certs().server().key});
  auto client_ctx = SSLContext::client({.ca_certs = certs().ca_file()});
  auto server_tls_f = start_tls(std::move(server), server_ctx);
  auto client_tls = co_await start_tls(std::move(client), client_ctx, "localhost");
  auto server_tls = co_await std::move(server_tls_f);
  co_await client_tls->write("secret\n");
  EXPECT_EQ(co_await server_tls->read_until("\n"), "secret\n");
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, StartTlsRefusesAStreamWithBufferedInput) {
  auto [server_fd, client_fd] = tcp_pair();
  auto server = std::make_unique<IOStream>(std::move(server_fd));
  IOStream client(std::move(client_fd));
  co_await client.write("early data");
  co_await server->read_bytes(1);
  while (server->buffered().empty()) co_await server->read_more();
  EXPECT_THROW(server->detach(), InvalidStateError);
}

SQUALL_ASYNC_TEST(SSLIOStreamTest, AlpnAgreesOnACommonProtocol) {
  auto [server_fd, client_fd] = tcp_pair();
  SSLIOStream server(std::move(server_fd), SSLContext::server({.certfile = certs().server().cert,
                                                               .keyfile = certs().server().key,
                                                               .alpn_protocols = {"h2", "http/1.1"}}));
  SSLIOStream client(std::move(client_fd),
                     SSLContext::client({.ca_certs = certs().ca_file(), .alpn_protocols = {"http/1.1"}}), "localhost");
  co_await client.wait_for_handshake();
  co_await server.wait_for_handshake();
  EXPECT_EQ(client.selected_alpn_protocol(), "http/1.1");
  EXPECT_EQ(server.selected_alpn_protocol(), "http/1.1");
}

TEST(SSLContextTest, AMissingCertificateFileIsAClearError) {
  try {
    SSLContext::server({.certfile = "/nonexistent/cert.pem"});
    FAIL() << "expected SSLError";
  } catch (const SSLError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cert.pem"), std::string::npos);
  }
}

}  // namespace
}  // namespace squall::net
