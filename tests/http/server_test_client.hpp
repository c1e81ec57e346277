// A raw HTTP/1.1 client for the server tests: writes exact bytes over real
// loopback sockets (plain or TLS) and reads each response framed as RFC 9112
// section 6.3 says, so a test sees exactly what the server sent. Loop thread
// only, like the streams it uses. Include from test files only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "squall/core/future.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/parser.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/process.hpp"
#include "squall/net/ssl_iostream.hpp"

namespace squall::http::test {

struct Response {
  std::string status_line;  // "HTTP/1.1 200 OK"
  int code = 0;
  HTTPHeaders headers;
  std::string head;         // the raw head, status line to the empty line
  std::string body;
  bool closed = false;      // the body was delimited by the server closing
};

inline UniqueFd connect_fd(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A loopback connect completes at once (the backlog takes it).
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
  return fd;
}

inline std::unique_ptr<net::IOStream> connect_to(int port) { return std::make_unique<net::IOStream>(connect_fd(port)); }

/// A TLS client stream to 127.0.0.1:port verifying the server as
/// "localhost" against `context`.
inline std::unique_ptr<net::SSLIOStream> connect_tls(int port, std::shared_ptr<net::SSLContext> context) {
  return std::make_unique<net::SSLIOStream>(connect_fd(port), std::move(context), "localhost");
}

/// Reads one response from `s`.
inline Future<Response> read_response(net::BaseIOStream& s, bool head_request = false) {
  Response r;
  std::size_t scanned = 0, end;
  while ((end = find_head_end(s.buffered(), scanned)) == std::string_view::npos) co_await s.read_more();
  ResponseStartLine line;
  ParseResult p = parse_response_head(s.buffered().substr(0, end), line, r.headers);
  if (p.status != ParseStatus::kComplete) throw std::runtime_error("bad response head");
  r.code = line.code;
  r.head.assign(s.buffered().substr(0, end));
  r.status_line = r.head.substr(0, r.head.find("\r\n"));
  s.consume(end);
  BodyFraming framing;
  if (response_body_framing(r.code, head_request, r.headers, framing).status == ParseStatus::kError) {
    throw std::runtime_error("bad response framing");
  }
  if (framing.kind == BodyFraming::kContentLength) {
    while (s.buffered().size() < framing.length) co_await s.read_more();
    r.body.assign(s.buffered().substr(0, framing.length));
    s.consume(framing.length);
  } else if (framing.kind == BodyFraming::kChunked) {
    ChunkedDecoder dec;
    while (!dec.done()) {
      auto step = dec.feed(s.buffered());
      if (step.status == ParseStatus::kError) throw std::runtime_error("bad chunked response");
      r.body.append(step.data);
      s.consume(step.consumed);
      if (dec.done()) break;
      if (step.status == ParseStatus::kPartial) co_await s.read_more();
    }
  } else if (framing.kind == BodyFraming::kUntilClose) {
    r.body = co_await s.read_until_close();
    r.closed = true;
  }
  co_return r;
}

/// True once the server closed `s` (end of input), false if bytes came.
inline Future<bool> closed_by_server(net::BaseIOStream& s) {
  if (!s.buffered().empty()) co_return false;
  bool closed = false;
  try {
    co_await s.read_more();
  } catch (const net::StreamClosedError&) {
    closed = true;
  }
  co_return closed;
}

/// One request on a new connection; its response.
inline Future<Response> exchange(int port, std::string request, bool head_request = false) {
  auto s = connect_to(port);
  co_await s->write(std::move(request));
  Response r = co_await read_response(*s, head_request);
  co_return r;
}

/// An IMF-fixdate (RFC 9110 section 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
inline bool is_imf_fixdate(std::string_view value) {
  static const std::regex re(R"(^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$)");
  return std::regex_match(value.begin(), value.end(), re);
}

/// Runs a program to completion; its standard output. With `check`, a
/// non-zero exit throws CalledProcessError.
inline Future<std::string> run_program(std::vector<std::string> argv, bool check = true) {
  net::SubprocessOptions options;
  options.stdout_mode = net::Stdio::Stream;
  net::Subprocess proc(std::move(argv), std::move(options));
  std::string out = co_await proc.stdout_stream()->read_until_close();
  co_await proc.wait_for_exit(check);
  co_return out;
}

}  // namespace squall::http::test
