// HTTPServer over TLS (HTTPServerOptions::ssl_context): squall's own TLS
// client and curl with --cacert against certificates made for the test, keep-
// alive and pipelining through TLS, and clients whose handshakes fail or
// stall while others are served.
#include <fstream>
#include <string>
#include <vector>

#include "../support/test_certs.hpp"
#include "server_test_client.hpp"
#include "server_test_fixture.hpp"
#include "squall/core/gen.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/testing.hpp"

using namespace std::chrono_literals;

namespace squall::http {
namespace {

using test::read_response;
using test::Response;

class TLSServerTest : public test::ServerTest {
 protected:
  void start(HTTPServerOptions options = {}) {
    net::SSLOptions tls;
    tls.certfile = certs_.server().cert;
    tls.keyfile = certs_.server().key;
    options.ssl_context = net::SSLContext::server(tls);
    ServerTest::start(std::move(options));
  }

  Future<void> handle(HTTPServerRequest& req) override {
    if (req.path == "/echo") {
      req.respond(200, "application/octet-stream", req.body);
    } else if (req.path == "/sleep") {
      co_await sleep(50ms);
      req.respond(200, "text/plain", "slept");
    } else {
      req.respond(200, "text/plain", req.protocol + " " + req.full_url());
    }
  }

  /// A client context trusting the test CA.
  std::shared_ptr<net::SSLContext> client_context() {
    net::SSLOptions tls;
    tls.ca_certs = certs_.ca_file();
    return net::SSLContext::client(tls);
  }

  testing::TestCerts certs_;
};

SQUALL_ASYNC_TEST(TLSServerTest, ServesHttpsToAVerifyingClient) {
  start();
  auto s = test::connect_tls(port_, client_context());
  co_await s->write("GET /where HTTP/1.1\r\nHost: localhost\r\n\r\n");
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "https https://localhost/where");  // protocol from the stream type
  EXPECT_TRUE(s->handshake_done());
}

SQUALL_ASYNC_TEST(TLSServerTest, KeepsTlsConnectionsAliveAndPipelines) {
  start();
  auto s = test::connect_tls(port_, client_context());
  for (int i = 0; i < 3; ++i) {
    co_await s->write("GET /k HTTP/1.1\r\nHost: localhost\r\n\r\n");
    Response r = co_await read_response(*s);
    EXPECT_EQ(r.body, "https https://localhost/k");
    EXPECT_FALSE(r.headers.contains("Connection"));
  }
  // Pipelined, with bodies in both framings and a handler that waits.
  co_await s->write(
      "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
      "GET /sleep HTTP/1.1\r\nHost: localhost\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n");
  EXPECT_EQ((co_await read_response(*s)).body, "abc");
  EXPECT_EQ((co_await read_response(*s)).body, "slept");
  EXPECT_EQ((co_await read_response(*s)).body, "def");
  // A large body through TLS records.
  std::string big(300 * 1024, 'z');
  co_await s->write("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(big.size()) +
                    "\r\n\r\n" + big);
  Response r = co_await read_response(*s);
  EXPECT_EQ(r.body.size(), big.size());
  EXPECT_EQ(requests_, 7);
  EXPECT_EQ(server_->connection_count(), 1u);
}

SQUALL_ASYNC_TEST(TLSServerTest, ServesCurlWithCacertOnOneConnection) {
  start();
  std::string base = "https://localhost:" + std::to_string(port_);
  // Two URLs in one curl run share a connection: the second makes no new
  // connect (num_connects 0). --cacert: the chain must verify for
  // "localhost" against the test CA, without -k.
  std::vector<std::string> twice = {"curl", "-sS", "--http1.1", "--cacert", certs_.ca_file(), "-w", " %{num_connects}\n",
                                    base + "/a", base + "/b"};
  std::string out = co_await test::run_program(twice);
  EXPECT_EQ(out, "https " + base + "/a 1\nhttps " + base + "/b 0\n");
  // A chunked upload.
  std::string file = ::testing::TempDir() + "squall_tls_upload.bin";
  std::string payload;
  for (int i = 0; i < 50000; ++i) payload += static_cast<char>('a' + i % 26);
  std::ofstream(file, std::ios::binary) << payload;
  std::vector<std::string> upload = {"curl",        "-sS", "--http1.1", "--cacert", certs_.ca_file(), "-H",
                                     "Transfer-Encoding: chunked", "--data-binary", "@" + file, base + "/echo"};
  out = co_await test::run_program(upload);
  EXPECT_EQ(out, payload);
  std::remove(file.c_str());
  // Without the CA, curl refuses the certificate (and the server goes on).
  std::vector<std::string> untrusted = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/a"};
  out = co_await test::run_program(untrusted, /*check=*/false);
  EXPECT_EQ(out, "000");
}

SQUALL_ASYNC_TEST(TLSServerTest, BadHandshakesDoNotDisturbOtherClients) {
  HTTPServerOptions options;
  options.header_timeout = 1s;  // also bounds a handshake that never comes
  start(std::move(options));
  // A client in the middle of a keep-alive session.
  auto good = test::connect_tls(port_, client_context());
  co_await good->write("GET /before HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ((co_await read_response(*good)).body, "https https://localhost/before");

  // Plain HTTP to the TLS port: the handshake fails and that connection closes.
  auto plain = test::connect_to(port_);
  co_await plain->write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  std::string reply;
  bool closed = false;
  try {
    reply = co_await plain->read_until_close();
    closed = true;
  } catch (const net::StreamClosedError&) {
    closed = true;  // reset
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(reply.find("HTTP/1.1"), std::string::npos);

  // Garbage that looks like the start of a TLS record, then silence; a TCP
  // connection that never says anything; a client refusing the server's
  // certificate (it trusts nobody): all at once.
  auto half = test::connect_to(port_);
  co_await half->write(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  auto silent = test::connect_to(port_);
  net::SSLOptions distrust;
  distrust.ca_certs = certs_.self_signed().cert;  // not the server's CA
  auto refusing = test::connect_tls(port_, net::SSLContext::client(distrust));
  bool refused = false;
  try {
    co_await refusing->wait_for_handshake();
  } catch (const net::SSLError&) {
    refused = true;
  } catch (const net::StreamClosedError&) {
    refused = true;
  }
  EXPECT_TRUE(refused);

  // Meanwhile the first client goes on, and a new one is served.
  co_await good->write("GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ((co_await read_response(*good)).body, "https https://localhost/after");
  auto fresh = test::connect_tls(port_, client_context());
  co_await fresh->write("GET /fresh HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ((co_await read_response(*fresh)).body, "https https://localhost/fresh");

  // The stalled ones are cut off by the header timeout, not kept forever.
  EXPECT_TRUE(co_await test::closed_by_server(*silent));
  EXPECT_TRUE(co_await test::closed_by_server(*half));
  EXPECT_EQ(requests_, 3);
}

SQUALL_ASYNC_TEST(TLSServerTest, ReportsHttpsBehindAnHttpsProxyToo) {
  // xheaders: a TLS-terminating proxy in front says which scheme the client used.
  HTTPServerOptions options;
  options.xheaders = true;
  start(std::move(options));
  auto s = test::connect_tls(port_, client_context());
  co_await s->write("GET /p HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: http\r\n\r\n");
  EXPECT_EQ((co_await read_response(*s)).body, "http http://localhost/p");
  co_await s->write("GET /p HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ((co_await read_response(*s)).body, "https https://localhost/p");  // per request, not sticky
}

}  // namespace
}  // namespace squall::http
