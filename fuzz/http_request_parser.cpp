// Fuzzes the pure HTTP/1.1 parser: parse_request_head, request_body_framing
// and the ChunkedDecoder on the bytes after the head; parse_response_head;
// HTTPHeaders::parse. Besides "no crash, hang or overread" it checks that
// the head search resumed a byte at a time agrees with one search, that the
// chunked decoder gives the same body fed whole or a byte at a time, and
// that parsed headers survive serialization.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "squall/http/headers.hpp"
#include "squall/http/parser.hpp"

using namespace squall::http;

namespace {

/// Decodes `input` through `decoder`, resubmitting what it leaves unconsumed.
/// Returns false on an error.
bool decode_all(ChunkedDecoder& decoder, std::string_view input, std::string& body, std::size_t& used) {
  used = 0;
  while (used < input.size() && !decoder.done()) {
    std::string_view rest = input.substr(used);
    ChunkedDecoder::Step step = decoder.feed(rest);
    if (step.status == ParseStatus::kError) {
      SQUALL_FUZZ_CHECK(step.error != nullptr && step.error_status >= 400);
      return false;
    }
    SQUALL_FUZZ_CHECK(step.consumed <= rest.size());
    if (!step.data.empty()) {
      SQUALL_FUZZ_CHECK(step.data.data() >= rest.data() && step.data.data() + step.data.size() <= rest.data() + step.consumed);
      body.append(step.data);
    }
    if (step.consumed == 0) break;  // needs more input
    used += step.consumed;
  }
  return true;
}

void fuzz_chunked(std::string_view rest) {
  ChunkedDecoder whole;
  std::string body_whole;
  std::size_t used_whole = 0;
  bool ok_whole = decode_all(whole, rest, body_whole, used_whole);

  // The same bytes arriving one at a time, as a connection may deliver them.
  // Bounded: resubmitting a long size line byte by byte is quadratic here.
  if (rest.size() > 2048) return;
  ChunkedDecoder bytewise;
  std::string body_bytes, pending;
  bool ok_bytes = true;
  std::size_t used_bytes = 0;
  for (std::size_t i = 0; i < rest.size() && ok_bytes && !bytewise.done(); ++i) {
    pending.push_back(rest[i]);
    std::size_t used = 0;
    ok_bytes = decode_all(bytewise, pending, body_bytes, used);
    pending.erase(0, used);
    used_bytes += used;
  }
  SQUALL_FUZZ_CHECK(ok_whole == ok_bytes);
  if (ok_whole) {
    SQUALL_FUZZ_CHECK(whole.done() == bytewise.done());
    SQUALL_FUZZ_CHECK(body_whole == body_bytes);
    if (whole.done()) SQUALL_FUZZ_CHECK(used_whole == used_bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  // find_head_end resumed over growing prefixes agrees with one call.
  std::size_t scanned_once = 0;
  std::size_t end_once = find_head_end(input, scanned_once);
  std::size_t scanned = 0, end_inc = std::string_view::npos;
  for (std::size_t n = 0; n <= size && end_inc == std::string_view::npos; n += 1 + n / 8) {
    end_inc = find_head_end(input.substr(0, n), scanned);
  }
  if (end_inc == std::string_view::npos) end_inc = find_head_end(input, scanned);
  SQUALL_FUZZ_CHECK(end_once == end_inc);

  RequestStartLine line;
  HTTPHeaders headers;
  ParseResult r = parse_request_head(input, line, headers, ParserLimits{.max_header_size = 2048});
  if (r.status == ParseStatus::kError) {
    SQUALL_FUZZ_CHECK(r.error != nullptr && r.error_status >= 400);
  } else if (r.status == ParseStatus::kComplete) {
    SQUALL_FUZZ_CHECK(r.consumed <= size && r.consumed == end_once);
    SQUALL_FUZZ_CHECK(is_token(line.method) && !line.target.empty());
    // Only the target forms of RFC 9112 section 3.2 get through.
    SQUALL_FUZZ_CHECK(line.target.front() == '/' || (line.target == "*" && line.method == "OPTIONS") ||
                      line.method == "CONNECT" || line.target.find("://") != std::string_view::npos);
    SQUALL_FUZZ_CHECK(line.version == "HTTP/1.1" || line.version == "HTTP/1.0");
    // Parsed fields are valid and survive serialization.
    HTTPHeaders copy;
    for (HTTPHeaders::Field f : headers) copy.add(f.name, f.value);
    SQUALL_FUZZ_CHECK(HTTPHeaders::parse(copy.to_string()) == headers);
    BodyFraming framing;
    ParseResult fr = request_body_framing(headers, framing);
    if (fr.status != ParseStatus::kError && framing.kind == BodyFraming::kChunked) {
      fuzz_chunked(input.substr(r.consumed));
    }
  }

  ResponseStartLine status_line;
  HTTPHeaders response_headers;
  ParseResult rr = parse_response_head(input, status_line, response_headers);
  if (rr.status == ParseStatus::kComplete) {
    SQUALL_FUZZ_CHECK(status_line.code >= 0 && status_line.code <= 999);
    BodyFraming framing;
    (void)response_body_framing(status_line.code, false, response_headers, framing);
  }

  // The whole input as a chunked body, too: most inputs never reach it above.
  fuzz_chunked(input);

  try {
    HTTPHeaders parsed = HTTPHeaders::parse(input);
    SQUALL_FUZZ_CHECK(HTTPHeaders::parse(parsed.to_string()) == parsed);
  } catch (const HTTPInputError& e) {
    SQUALL_FUZZ_CHECK(e.status() == 400);
  }
  return 0;
}
