// The code shown in docs/guide/streams-and-tls.md, compiled and run, so the
// guide cannot drift from the library: each block between "// guide:"
// markers appears verbatim in the chapter. main() runs every block over
// real sockets on 127.0.0.1 (TLS with certificates made for the run) and
// checks what the chapter says it does. Every block takes milliseconds, so
// `--smoke` (what CTest runs) and a plain run are the same program.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../tests/support/test_certs.hpp"  // a CA and certificates, made for this run
#include "squall/core/future.hpp"
#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/ssl_iostream.hpp"
#include "squall/net/tcpclient.hpp"
#include "squall/net/tcpserver.hpp"

using namespace std::chrono_literals;
using squall::Future;
using squall::UniqueFd;
using squall::net::IOStream;
using squall::net::PipeIOStream;
using squall::net::SSLContext;
using squall::net::SSLError;
using squall::net::SSLIOStream;
using squall::net::StreamClosedError;
using squall::net::StreamIOError;
using squall::net::StreamOptions;
using squall::net::TCPClient;
using squall::net::TCPServer;
using squall::net::TCPServerOptions;
using squall::net::UnsatisfiableReadError;
using squall::net::start_tls;

namespace {

/// Fails the program, and so the example_guide_snippets_streams test, when
/// the guide says something the code does not do.
void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_streams: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

/// Two connected stream sockets (a unix socketpair): {ours, the peer's}.
std::pair<UniqueFd, UniqueFd> socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::generic_category(), "socketpair");
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// =========================================================================
// Reading
// =========================================================================

// guide: read-message
/// One message of a small protocol: a header line "LEN <n>\r\n", then n bytes.
Future<std::string> read_message(IOStream& stream) {
  std::string header = co_await stream.read_until("\r\n", 64);  // a longer header is an error
  std::size_t length = std::stoul(header.substr(4));
  co_return co_await stream.read_bytes(length);
}
// guide: end

// guide: read-modes
Future<std::vector<std::string>> read_in_every_way(IOStream& stream) {
  std::vector<std::string> got;
  got.push_back(co_await stream.read_until_regex("\r?\n"));       // a line, either ending
  got.push_back(co_await stream.read_bytes(4096, /*partial=*/true));  // what is there, up to 4 KiB
  std::array<char, 8> header{};
  std::size_t n = co_await stream.read_into(header);               // exactly 8 bytes, into my memory
  got.emplace_back(header.data(), n);
  got.push_back(co_await stream.read_until_close());               // the rest, until the peer closes
  co_return got;
}
// guide: end

// guide: parse-in-place
/// Counts the lines of a stream without copying them: the parser looks at
/// the buffered bytes in place and consumes what it used.
Future<int> count_lines(IOStream& stream) {
  int lines = 0;
  try {
    for (;;) {
      std::string_view data = stream.buffered();  // valid until the next read or consume
      std::size_t eol = data.find('\n');
      if (eol == std::string_view::npos) {
        co_await stream.read_more();  // at least one more byte, or StreamClosedError
        continue;
      }
      ++lines;
      stream.consume(eol + 1);
    }
  } catch (const StreamClosedError&) {
    // The peer closed: every complete line was counted.
  }
  co_return lines;
}
// guide: end

// guide: relay
/// Forwards everything `from` receives to `to` without copying it out of
/// `from`'s read buffer: room for 64 KiB, one recv, one send.
Future<void> relay(IOStream& from, IOStream& to) {
  for (;;) {
    co_await from.read_more(64 * 1024);  // StreamClosedError at the end
    std::string_view data = from.buffered();
    Future<void> sent = to.write(data);  // what the kernel does not take at once is copied
    from.consume(data.size());           // an emptied buffer goes back to the pool
    co_await sent;                       // back-pressure: wait for `to`
  }
}
// guide: end

// guide: read-deadline
/// A line, or nothing if none comes within `patience`. The read cancelled
/// by the deadline gives up its place and loses nothing: what arrived of
/// the line stays buffered for the next read.
Future<std::optional<std::string>> read_line_within(IOStream& stream, squall::Duration patience) {
  try {
    co_return co_await squall::timeout(patience, stream.read_until("\n"));
  } catch (const squall::TimeoutError&) {
    co_return std::nullopt;  // stream.buffered() still holds the partial line
  }
}
// guide: end

// =========================================================================
// Writing
// =========================================================================

// guide: back-pressure
/// Sends a long sequence of chunks. Awaiting each write is the back-pressure:
/// the coroutine resumes once the kernel has taken the chunk, so a slow
/// reader slows the producer down instead of growing our memory.
Future<void> send_chunks(IOStream& stream, std::vector<std::string> chunks) {
  for (std::string& chunk : chunks) {
    co_await stream.write(std::move(chunk));
  }
}
// guide: end

// guide: shared-body
/// A body served to many clients: shared, never copied, kept alive until
/// the kernel has it.
Future<void> send_cached(IOStream& stream, std::shared_ptr<const std::string> body) {
  stream.write("HTTP/1.0 200 OK\r\n\r\n");  // not awaited: queued, sent in order
  co_await stream.write(std::move(body));
}
// guide: end

// =========================================================================
// Limits and errors
// =========================================================================

// guide: limits
/// A stream for a protocol of small messages: a peer that sends 64 KiB
/// without the delimiter we wait for, or stops reading what we send, is cut off.
std::unique_ptr<IOStream> careful_stream(UniqueFd connected) {
  return std::make_unique<IOStream>(std::move(connected),
                                    StreamOptions{
                                        .max_buffer_size = 64 * 1024,          // unread input (default 100 MB)
                                        .max_write_buffer_size = 1024 * 1024,  // unsent output (default: no limit)
                                        .read_chunk_size = 16 * 1024,          // asked of the kernel per read
                                    });
}
// guide: end

// guide: close-reason
/// Why a stream closed, from the StreamClosedError a read or write failed with.
std::string close_reason(const StreamClosedError& e) {
  if (!e.real_error()) return "the peer closed, or close() was called";
  try {
    std::rethrow_exception(e.real_error());
  } catch (const StreamIOError& io) {
    return "socket error: " + io.code().message();  // ECONNRESET, EPIPE, ...
  } catch (const UnsatisfiableReadError& limit) {
    return std::string("limit: ") + limit.what();  // max_bytes, max_buffer_size
  } catch (const std::exception& other) {
    return other.what();  // a TLS failure (SSLError), a full write buffer, ...
  }
}
// guide: end

// guide: close-callback
/// Notes a connection's end, whatever ended it. The callback runs once, on
/// the loop, after the close; the stream may be gone by then, so it does
/// not touch it.
void count_when_closed(IOStream& stream, std::shared_ptr<int> open_connections) {
  ++*open_connections;
  stream.set_close_callback([open_connections] { --*open_connections; });
}
// guide: end

// =========================================================================
// Pipes
// =========================================================================

// guide: pipe
/// Text through a pipe: both ends as streams, what one writes the other reads.
Future<std::string> through_a_pipe(std::string text) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  PipeIOStream reader{UniqueFd(fds[0])};
  PipeIOStream writer{UniqueFd(fds[1])};
  auto all = reader.read_until_close();  // reading first: a pipe holds only 64 KiB
  co_await writer.write(std::move(text));
  writer.close();  // the reader sees end of file
  co_return co_await std::move(all);
}
// guide: end

// =========================================================================
// TLS
// =========================================================================

// guide: contexts
std::shared_ptr<SSLContext> make_server_context(const std::string& cert, const std::string& key) {
  return SSLContext::server({.certfile = cert, .keyfile = key});  // PEM files; the key may sit in the cert file
}

std::shared_ptr<SSLContext> make_client_context(const std::string& ca_file) {
  if (ca_file.empty()) return SSLContext::client();  // the system's CA store; hostnames checked
  return SSLContext::client({.ca_certs = ca_file});  // trust exactly this CA
}
// guide: end

// guide: tls-server
Future<void> echo_lines(std::unique_ptr<IOStream> stream, std::string /*address*/) {
  try {
    for (;;) co_await stream->write(co_await stream->read_until("\n", 4096));
  } catch (const StreamClosedError&) {
    // The client left (or its handshake failed: the error says why).
  }
}

/// A TLS echo server: the handler is the one a plain server would use; the
/// factory wraps each accepted socket in an SSLIOStream, whose handshake
/// runs by itself (reads and writes wait for it).
std::unique_ptr<TCPServer> make_tls_server(std::shared_ptr<SSLContext> context) {
  TCPServerOptions options{
      .make_stream = [context](UniqueFd fd, const StreamOptions& stream_options) -> std::unique_ptr<IOStream> {
        return std::make_unique<SSLIOStream>(std::move(fd), context, "", stream_options);
      },
  };
  return std::make_unique<TCPServer>(echo_lines, std::move(options));
}
// guide: end

// guide: tls-client
/// A TLS client: connect, then upgrade. `host` is sent as SNI (unless it is
/// an IP address) and must be named by the server's certificate.
Future<std::string> tls_echo(TCPClient& client, std::string host, int port, std::shared_ptr<SSLContext> context) {
  std::unique_ptr<IOStream> plain = co_await client.connect(host, port);
  std::unique_ptr<SSLIOStream> tls = co_await start_tls(std::move(plain), context, host);
  co_await tls->write("hello over TLS\n");
  co_return co_await tls->read_until("\n");
}
// guide: end

// guide: verify-error
/// The reason a handshake failed, or "" if it succeeded.
Future<std::string> handshake_error(SSLIOStream& stream) {
  try {
    co_await stream.wait_for_handshake();
    co_return "";
  } catch (const SSLError& e) {
    co_return e.what();  // e.g. "TLS handshake failed: certificate verify failed: hostname mismatch"
  }
}
// guide: end

// guide: starttls
/// STARTTLS: a plain conversation first, then the same connection in TLS.
/// The client must wait for our go-ahead before it starts its handshake, so
/// that nothing of it sits unread in the plain stream's buffer.
Future<void> serve_starttls(std::unique_ptr<IOStream> stream, std::shared_ptr<SSLContext> context) {
  std::string command = co_await stream->read_until("\r\n", 1024);
  if (command != "STARTTLS\r\n") co_return;
  co_await stream->write("220 go ahead\r\n");
  std::unique_ptr<SSLIOStream> tls = co_await start_tls(std::move(stream), context);
  co_await tls->write("secure now\r\n");
}
// guide: end

// guide: alpn
/// Contexts that agree on an application protocol during the handshake.
std::pair<std::shared_ptr<SSLContext>, std::shared_ptr<SSLContext>> alpn_contexts(const std::string& cert,
                                                                                  const std::string& key,
                                                                                  const std::string& ca_file) {
  auto server = SSLContext::server({.certfile = cert, .keyfile = key, .alpn_protocols = {"h2", "http/1.1"}});
  auto client = SSLContext::client({.ca_certs = ca_file, .alpn_protocols = {"http/1.1"}});
  return {server, client};  // after the handshake: stream.selected_alpn_protocol() == "http/1.1"
}
// guide: end

// =========================================================================
// main: runs every block and checks the chapter's claims
// =========================================================================

Future<void> run_reading() {
  {
    auto [ours, theirs] = socket_pair();
    IOStream stream{std::move(ours)};
    IOStream peer{std::move(theirs)};
    co_await peer.write("LEN 5\r\nhelloLEN 0\r\n");
    check(co_await read_message(stream) == "hello", "read_message reads the header, then the body");
    check((co_await read_message(stream)).empty(), "a zero-length body is an empty string");
    // A header longer than max_bytes: UnsatisfiableReadError, and the stream closes.
    co_await peer.write(std::string(100, 'x'));
    bool refused = false;
    try {
      co_await read_message(stream);
    } catch (const StreamClosedError& e) {
      refused = close_reason(e).find("limit:") == 0;
    }
    check(refused && stream.closed(), "a read past max_bytes fails with the limit as its cause and closes the stream");
  }
  {
    auto [ours, theirs] = socket_pair();
    IOStream stream{std::move(ours)};
    IOStream peer{std::move(theirs)};
    co_await peer.write("hi\nsome bytes");
    auto reading = read_in_every_way(stream);  // runs up to read_into, which waits
    co_await peer.write("12345678tail");
    peer.close();
    std::vector<std::string> got = co_await std::move(reading);
    check(got.size() == 4 && got[0] == "hi\n", "read_until_regex returns up to and including the match");
    check(got[1] == "some bytes", "a partial read_bytes returns what is there");
    check(got[2] == "12345678", "read_into fills the caller's buffer");
    check(got[3] == "tail", "read_until_close returns the rest");
  }
  {
    auto [ours, theirs] = socket_pair();
    IOStream stream{std::move(ours)};
    IOStream peer{std::move(theirs)};
    auto counting = count_lines(stream);
    co_await peer.write("one\ntwo\nth");
    co_await peer.write("ree\nfour");
    peer.close();
    check(co_await std::move(counting) == 3, "count_lines counts complete lines in place");
  }
  {
    auto [a, b] = socket_pair();
    auto [c, d] = socket_pair();
    IOStream source{std::move(a)}, from{std::move(b)}, to{std::move(c)}, sink{std::move(d)};
    auto relaying = relay(from, to);
    std::string payload(300 * 1024, 'r');
    co_await source.write(payload);
    source.close();
    std::string got = co_await sink.read_bytes(payload.size());
    bool ended = false;
    try {
      co_await std::move(relaying);
    } catch (const StreamClosedError&) {
      ended = true;
    }
    check(got == payload && ended, "relay forwards every byte and ends when its source closes");
  }
  {
    auto [ours, theirs] = socket_pair();
    IOStream stream{std::move(ours)};
    IOStream peer{std::move(theirs)};
    co_await peer.write("partial ");
    std::optional<std::string> line = co_await read_line_within(stream, 20ms);
    check(!line, "no line within the deadline: nothing");
    check(stream.buffered() == "partial " && !stream.reading(), "the cancelled read kept the bytes buffered");
    co_await peer.write("line\n");
    line = co_await read_line_within(stream, 1s);
    check(line && *line == "partial line\n", "the next read starts with the kept bytes");
  }
}

Future<void> run_writing() {
  auto [ours, theirs] = socket_pair();
  IOStream stream{std::move(ours)};
  IOStream peer{std::move(theirs)};
  std::vector<std::string> chunks(64, std::string(64 * 1024, 'c'));  // 4 MiB: more than the socket holds
  auto reading = peer.read_bytes(64 * 64 * 1024);
  co_await send_chunks(stream, std::move(chunks));
  check((co_await std::move(reading)).size() == 64 * 64 * 1024, "every chunk arrived");
  check(!stream.writing(), "nothing waits in user space once the writes resolved");
  auto body = std::make_shared<const std::string>("cached body");
  auto reply = peer.read_until("body");
  co_await send_cached(stream, body);
  check(co_await std::move(reply) == "HTTP/1.0 200 OK\r\n\r\ncached body", "unawaited writes go out in order");
  check(body.use_count() == 1, "the shared body is released once sent");
}

Future<void> run_limits_and_errors() {
  {
    auto [ours, theirs] = socket_pair();
    auto stream = careful_stream(std::move(ours));
    IOStream peer{std::move(theirs)};
    auto counter = std::make_shared<int>(0);
    count_when_closed(*stream, counter);
    check(*counter == 1, "the connection is counted");
    auto send = peer.write(std::string(100 * 1024, 'x'));  // no newline in sight
    bool cut_off = false;
    try {
      co_await stream->read_until("\n");
    } catch (const StreamClosedError& e) {
      cut_off = close_reason(e) == "limit: Reached maximum read buffer size";
    }
    check(cut_off, "more than max_buffer_size unread closes the stream with the limit as its cause");
    co_await squall::sleep(1ms);
    check(*counter == 0, "the close callback ran on the loop after the close");
    peer.close();
  }
  {
    auto [ours, theirs] = socket_pair();
    IOStream stream{std::move(ours)};
    IOStream peer{std::move(theirs)};
    peer.close();
    bool clean = false;
    try {
      co_await stream.read_bytes(1);
    } catch (const StreamClosedError& e) {
      clean = close_reason(e) == "the peer closed, or close() was called";
    }
    check(clean, "a peer's orderly close has no cause");
  }
}

Future<void> run_tls(const squall::testing::TestCerts& certs) {
  auto server_ctx = make_server_context(certs.server().cert, certs.server().key);
  auto client_ctx = make_client_context(certs.ca_file());
  check(make_client_context("") != nullptr, "a client context may use the system's CA store");
  auto server = make_tls_server(server_ctx);
  int port = server->listen(0, "127.0.0.1");
  TCPClient client;
  check(co_await tls_echo(client, "localhost", port, client_ctx) == "hello over TLS\n",
        "the TLS client talks to the TLS server by name");
  check(co_await tls_echo(client, "127.0.0.1", port, client_ctx) == "hello over TLS\n",
        "an IP address is checked against the certificate's IP names");

  {  // a certificate for another host
    auto wrong_ctx = make_server_context(certs.other_host().cert, certs.other_host().key);
    auto [ours, theirs] = socket_pair();
    SSLIOStream server_side(std::move(theirs), wrong_ctx);
    SSLIOStream client_side(std::move(ours), client_ctx, "localhost");
    std::string error = co_await handshake_error(client_side);
    check(error.find("hostname mismatch") != std::string::npos, "a certificate for another name is refused");
  }
  {  // STARTTLS
    auto [ours, theirs] = socket_pair();
    auto plain_client = std::make_unique<IOStream>(std::move(ours));
    auto serving = serve_starttls(std::make_unique<IOStream>(std::move(theirs)), server_ctx);
    co_await plain_client->write("STARTTLS\r\n");
    check(co_await plain_client->read_until("\r\n") == "220 go ahead\r\n", "the server says go ahead in plain text");
    auto tls_client = co_await start_tls(std::move(plain_client), client_ctx, "localhost");
    check(co_await tls_client->read_until("\r\n") == "secure now\r\n", "then speaks TLS on the same connection");
    co_await std::move(serving);
  }
  {  // ALPN
    auto [alpn_server, alpn_client] = alpn_contexts(certs.server().cert, certs.server().key, certs.ca_file());
    auto [ours, theirs] = socket_pair();
    SSLIOStream server_side(std::move(theirs), alpn_server);
    SSLIOStream client_side(std::move(ours), alpn_client, "localhost");
    co_await client_side.wait_for_handshake();
    co_await server_side.wait_for_handshake();
    check(client_side.selected_alpn_protocol() == "http/1.1" && server_side.selected_alpn_protocol() == "http/1.1",
          "ALPN picks the server's first protocol the client offers");
  }
  server->stop();
  co_await squall::sleep(20ms);  // the server's handlers see their clients leave, and end
}

Future<void> run_all(const squall::testing::TestCerts& certs) {
  co_await run_reading();
  co_await run_writing();
  co_await run_limits_and_errors();
  check(co_await through_a_pipe("through\nthe pipe\n") == "through\nthe pipe\n", "a pipe carries the text");
  co_await run_tls(certs);
}

}  // namespace

int main() {
  squall::testing::TestCerts certs;
  squall::IOLoop::current().run_sync([&] { return run_all(certs); }, 30s);
  std::puts("guide_snippets_streams: every claim holds");
  return 0;
}
