// The HTTP/1.1 message parser: pure functions of bytes (picohttpparser's
// shape). Span in, views and consumed/partial/error out; no socket, no
// logging, no allocation beyond the HTTPHeaders it fills. Strict per
// RFC 9112 and ../CONFORMANCE_APP.md section 2.4; linear in its input.
// Thread-agnostic: any thread, no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squall/http/headers.hpp"

namespace squall::http {

struct ParserLimits {
  /// Request or status line plus header fields; larger → 431.
  std::size_t max_header_size = 64 * 1024;
};

enum class ParseStatus : std::uint8_t { kComplete, kPartial, kError };

struct ParseResult {
  ParseStatus status = ParseStatus::kPartial;
  std::size_t consumed = 0;     // bytes used, when complete
  int error_status = 0;         // 400, 431, 501, 505 when kError
  const char* error = nullptr;  // a short reason when kError

  static ParseResult partial() noexcept { return {}; }
  static ParseResult complete(std::size_t n) noexcept { return {ParseStatus::kComplete, n, 0, nullptr}; }
  static ParseResult fail(int status, const char* why) noexcept { return {ParseStatus::kError, 0, status, why}; }
};

/// Views into the parser's input: copy what must outlive it.
struct RequestStartLine {
  std::string_view method;
  std::string_view target;
  std::string_view version;  // "HTTP/1.0" or "HTTP/1.1"
};

struct ResponseStartLine {
  std::string_view version;
  int code = 0;
  std::string_view reason;
};

/// Where the head in `input` ends (just past its empty line), or npos.
/// Resumes from `scanned`, which it updates, so a head that arrives a byte
/// at a time is searched in linear time overall. Leading empty lines
/// (RFC 9112 section 2.2) are skipped.
std::size_t find_head_end(std::string_view input, std::size_t& scanned) noexcept;

/// Parses a request head: request line, field lines and the empty line.
/// Fields are appended to `headers` (cleared first). kPartial until the
/// empty line arrives; kError (400/431/501/505) on anything malformed.
/// Also enforces Host: exactly one in HTTP/1.1, at most one in HTTP/1.0.
ParseResult parse_request_head(std::string_view input, RequestStartLine& line, HTTPHeaders& headers,
                               const ParserLimits& limits = {});

/// Parses a response head (status line, fields, empty line).
ParseResult parse_response_head(std::string_view input, ResponseStartLine& line, HTTPHeaders& headers,
                                const ParserLimits& limits = {});

/// How a message body is delimited (RFC 9112 section 6).
struct BodyFraming {
  enum Kind : std::uint8_t { kNone, kContentLength, kChunked, kUntilClose } kind = kNone;
  std::uint64_t length = 0;  // kContentLength
};

/// A request's framing from its headers: Content-Length must be 1*DIGIT
/// (repeats must agree), Transfer-Encoding must be exactly "chunked" (else
/// 501), both together → 400. Errors: kError with the status to answer.
ParseResult request_body_framing(const HTTPHeaders& headers, BodyFraming& out);

/// A response's framing: none for HEAD, 1xx, 204, 304; else as above, or
/// until close when neither header is present.
ParseResult response_body_framing(int code, bool head_request, const HTTPHeaders& headers, BodyFraming& out);

/// Incremental decoder of the chunked transfer coding (RFC 9112 section 7.1):
/// chunk extensions are skipped, trailers are parsed and dropped, sizes that
/// overflow are errors. Feed it the unconsumed input; each call consumes
/// framing and returns at most one run of body bytes (a view into the input).
class ChunkedDecoder {
 public:
  struct Step {
    ParseStatus status = ParseStatus::kPartial;  // kComplete: `data` and/or `done`
    std::size_t consumed = 0;                     // bytes of input used (framing and data)
    std::string_view data;                        // body bytes, may be empty
    bool done = false;                            // the last chunk and trailers were read
    int error_status = 0;
    const char* error = nullptr;
  };

  explicit ChunkedDecoder(const ParserLimits& limits = {}) : limits_(limits) {}
  Step feed(std::string_view input);
  bool done() const noexcept { return state_ == State::kDone; }

 private:
  enum class State : std::uint8_t { kSize, kData, kDataEnd, kTrailers, kDone };
  ParserLimits limits_;
  State state_ = State::kSize;
  std::uint64_t remaining_ = 0;  // bytes left in the current chunk
  std::size_t trailer_bytes_ = 0;
};

}  // namespace squall::http
