#include "squall/http/parser.hpp"

#include <cstring>

#include "http/char_tables.hpp"

namespace squall::http {

namespace {

constexpr std::size_t npos = std::string_view::npos;
// A chunk-size line with extensions longer than this is an attack.
constexpr std::size_t kMaxChunkLine = 4096;
constexpr std::uint64_t kMaxChunkSize = std::uint64_t{1} << 60;

/// Skips the empty lines a client may send before a request line.
std::size_t skip_leading_empty_lines(std::string_view input) noexcept {
  std::size_t i = 0;
  while (i < input.size()) {
    if (input[i] == '\n') {
      ++i;
    } else if (input[i] == '\r' && i + 1 < input.size() && input[i + 1] == '\n') {
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

/// One line of the head, without its terminator; `next` is past it.
/// Returns false on a bare CR (RFC 9112 section 2.2: never a line end).
bool next_line(std::string_view head, std::size_t& pos, std::string_view& line) noexcept {
  std::size_t eol = head.find('\n', pos);
  if (eol == npos) eol = head.size();
  line = head.substr(pos, eol - pos);
  pos = eol + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line.find('\r') == npos;
}

ParseResult parse_fields(std::string_view head, std::size_t pos, HTTPHeaders& headers) {
  std::string_view line;
  bool first = true;
  while (pos < head.size()) {
    if (!next_line(head, pos, line)) return ParseResult::fail(400, "bare CR in the header section");
    if (line.empty()) break;  // the end of the head
    if (line.front() == ' ' || line.front() == '\t') {
      return ParseResult::fail(400, first ? "whitespace before the first header field" : "obsolete line folding");
    }
    first = false;
    std::size_t colon = 0;
    while (colon < line.size() && kTokenChar[static_cast<unsigned char>(line[colon])]) ++colon;
    if (colon == line.size() || line[colon] != ':') {
      if (colon < line.size() && (line[colon] == ' ' || line[colon] == '\t')) {
        return ParseResult::fail(400, "whitespace between a header name and its colon");
      }
      return ParseResult::fail(400, colon == line.size() ? "header line without a colon" : "invalid header name");
    }
    if (colon == 0) return ParseResult::fail(400, "empty header name");
    std::size_t v = colon + 1;
    std::size_t end = line.size();
    while (v < end && (line[v] == ' ' || line[v] == '\t')) ++v;
    while (end > v && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
    for (std::size_t i = v; i < end; ++i) {
      if (!kFieldValueChar[static_cast<unsigned char>(line[i])]) {
        return ParseResult::fail(400, "control character in a header value");
      }
    }
    headers.add_unchecked(line.substr(0, colon), line.substr(v, end - v));
  }
  return ParseResult::complete(0);
}

/// RFC 9112 section 3.2: origin-form ("/path?query"), absolute-form with an
/// authority ("http://host/path", the only kind HTTP URIs have),
/// authority-form ("host:port", CONNECT only) or asterisk-form ("*",
/// OPTIONS only). Anything else is malformed (CONFORMANCE 2.3: 400).
bool is_valid_target_form(std::string_view method, std::string_view target) noexcept {
  if (target.front() == '/') return true;
  if (target == "*") return method == "OPTIONS";
  if (method == "CONNECT") {
    std::size_t colon = target.rfind(':');
    if (colon == 0 || colon == npos || target.find_first_of("/?#@") != npos) return false;
    for (char c : target.substr(colon + 1)) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" and an authority
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(target.front())) return false;
  std::size_t i = 1;
  while (i < target.size() && (alpha(target[i]) || (target[i] >= '0' && target[i] <= '9') || target[i] == '+' ||
                               target[i] == '-' || target[i] == '.')) {
    ++i;
  }
  return target.substr(i, 3) == "://" && target.size() > i + 3;
}

bool is_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// Content-Length per RFC 9110 section 8.6: 1*DIGIT; repeats (as fields or
/// a list) must agree.
ParseResult content_length(const HTTPHeaders& headers, bool& present, std::uint64_t& out) {
  present = false;
  for (std::string_view value : headers.get_list("Content-Length")) {
    std::size_t pos = 0;
    do {
      std::size_t comma = value.find(',', pos);
      std::string_view item = trim(value.substr(pos, comma == npos ? npos : comma - pos));
      pos = comma == npos ? npos : comma + 1;
      if (!is_digits(item) || item.size() > 18) return ParseResult::fail(400, "invalid Content-Length");
      std::uint64_t n = 0;
      for (char c : item) n = n * 10 + static_cast<std::uint64_t>(c - '0');
      if (present && n != out) return ParseResult::fail(400, "conflicting Content-Length values");
      present = true;
      out = n;
    } while (pos != npos);
  }
  return ParseResult::complete(0);
}

/// Transfer-Encoding: only a single, final "chunked" is supported.
ParseResult transfer_encoding(const HTTPHeaders& headers, bool& chunked) {
  chunked = false;
  auto values = headers.get_list("Transfer-Encoding");
  if (values.empty()) return ParseResult::complete(0);
  if (values.size() > 1) return ParseResult::fail(501, "repeated Transfer-Encoding");
  std::string_view v = trim(values.front());
  if (v.find(',') != npos) return ParseResult::fail(501, "unsupported transfer coding list");
  if (!iequals(v, "chunked")) return ParseResult::fail(501, "unsupported transfer coding");
  chunked = true;
  return ParseResult::complete(0);
}

}  // namespace

std::size_t find_head_end(std::string_view input, std::size_t& scanned) noexcept {
  std::size_t start = skip_leading_empty_lines(input);
  std::size_t from = scanned > start ? scanned : start;
  // Back up so a terminator split across calls is still seen.
  from = from >= start + 2 ? from - 2 : start;
  for (std::size_t i = input.find('\n', from); i != npos; i = input.find('\n', i + 1)) {
    if (i + 1 < input.size() && input[i + 1] == '\n') return i + 2;
    if (i + 2 < input.size() && input[i + 1] == '\r' && input[i + 2] == '\n') return i + 3;
    if (i + 2 >= input.size()) break;
  }
  scanned = input.size();
  return npos;
}

namespace {

/// Finds a complete head: `end` just past its empty line, `start` at its
/// first line. Leading empty lines count against the limit too, so a flood
/// of CRLFs cannot grow a connection's buffer without bound.
ParseResult locate_head(std::string_view input, const ParserLimits& limits, std::size_t& end, std::size_t& start) {
  std::size_t scanned = 0;
  end = find_head_end(input, scanned);
  start = skip_leading_empty_lines(input);
  if (end == npos) {
    if (input.size() > limits.max_header_size) return ParseResult::fail(431, "header section too large");
    return ParseResult::partial();
  }
  if (end > limits.max_header_size) return ParseResult::fail(431, "header section too large");
  return ParseResult::complete(end);
}

}  // namespace

ParseResult parse_request_head(std::string_view input, RequestStartLine& line, HTTPHeaders& headers,
                               const ParserLimits& limits) {
  headers.clear();
  std::size_t end = 0, pos = 0;
  if (ParseResult r = locate_head(input, limits, end, pos); r.status != ParseStatus::kComplete) return r;
  std::string_view head = input.substr(0, end);
  std::string_view request_line;
  if (!next_line(head, pos, request_line)) return ParseResult::fail(400, "bare CR in the request line");
  // method SP request-target SP HTTP-version (RFC 9112 section 3)
  std::size_t sp1 = request_line.find(' ');
  if (sp1 == npos) return ParseResult::fail(400, "malformed request line");
  std::size_t sp2 = request_line.find(' ', sp1 + 1);
  if (sp2 == npos) return ParseResult::fail(400, "malformed request line");
  line.method = request_line.substr(0, sp1);
  line.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  line.version = request_line.substr(sp2 + 1);
  if (!is_token(line.method)) return ParseResult::fail(400, "the method is not a token");
  if (line.target.empty()) return ParseResult::fail(400, "empty request target");
  for (char c : line.target) {
    if (!kTargetChar[static_cast<unsigned char>(c)]) return ParseResult::fail(400, "invalid character in the request target");
  }
  if (!is_valid_target_form(line.method, line.target)) return ParseResult::fail(400, "request target in no known form");
  if (line.version != "HTTP/1.1" && line.version != "HTTP/1.0") {
    bool well_formed = line.version.size() == 8 && line.version.substr(0, 5) == "HTTP/" && line.version[5] >= '0' &&
                       line.version[5] <= '9' && line.version[6] == '.' && line.version[7] >= '0' && line.version[7] <= '9';
    return well_formed ? ParseResult::fail(505, "HTTP version not supported") : ParseResult::fail(400, "malformed HTTP version");
  }

  ParseResult fields = parse_fields(head, pos, headers);
  if (fields.status == ParseStatus::kError) return fields;
  std::size_t hosts = headers.count("Host");
  if (hosts > 1) return ParseResult::fail(400, "more than one Host header");
  if (hosts == 0 && line.version == "HTTP/1.1") return ParseResult::fail(400, "HTTP/1.1 request without Host");
  return ParseResult::complete(end);
}

ParseResult parse_response_head(std::string_view input, ResponseStartLine& line, HTTPHeaders& headers,
                                const ParserLimits& limits) {
  headers.clear();
  std::size_t end = 0, pos = 0;
  if (ParseResult r = locate_head(input, limits, end, pos); r.status != ParseStatus::kComplete) return r;
  std::string_view head = input.substr(0, end);
  std::string_view status_line;
  if (!next_line(head, pos, status_line)) return ParseResult::fail(400, "bare CR in the status line");
  // HTTP-version SP status-code SP [reason-phrase] (RFC 9112 section 4)
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
    return ParseResult::fail(400, "malformed status line");
  }
  line.version = status_line.substr(0, 8);
  std::string_view code = status_line.substr(9, 3);
  if (!is_digits(code) || (status_line.size() > 12 && status_line[12] != ' ')) {
    return ParseResult::fail(400, "malformed status code");
  }
  line.code = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  line.reason = status_line.size() > 13 ? status_line.substr(13) : std::string_view();
  for (char c : line.reason) {
    if (!kFieldValueChar[static_cast<unsigned char>(c)]) return ParseResult::fail(400, "control character in the reason");
  }
  ParseResult fields = parse_fields(head, pos, headers);
  if (fields.status == ParseStatus::kError) return fields;
  return ParseResult::complete(end);
}

ParseResult request_body_framing(const HTTPHeaders& headers, BodyFraming& out) {
  out = BodyFraming{};
  bool has_length = false, chunked = false;
  std::uint64_t length = 0;
  if (auto r = content_length(headers, has_length, length); r.status == ParseStatus::kError) return r;
  bool has_te = headers.contains("Transfer-Encoding");
  // RFC 9112 section 6.1: both at once is how requests get smuggled.
  if (has_te && has_length) return ParseResult::fail(400, "both Content-Length and Transfer-Encoding");
  if (auto r = transfer_encoding(headers, chunked); r.status == ParseStatus::kError) return r;
  if (chunked) {
    out.kind = BodyFraming::kChunked;
  } else if (has_length) {
    out.kind = BodyFraming::kContentLength;
    out.length = length;
  }
  return ParseResult::complete(0);
}

ParseResult response_body_framing(int code, bool head_request, const HTTPHeaders& headers, BodyFraming& out) {
  out = BodyFraming{};
  if (head_request || (code >= 100 && code < 200) || code == 204 || code == 304) return ParseResult::complete(0);
  bool has_length = false, chunked = false;
  std::uint64_t length = 0;
  if (auto r = transfer_encoding(headers, chunked); r.status == ParseStatus::kError) return r;
  if (chunked) {
    out.kind = BodyFraming::kChunked;  // Transfer-Encoding overrides Content-Length
    return ParseResult::complete(0);
  }
  if (auto r = content_length(headers, has_length, length); r.status == ParseStatus::kError) return r;
  if (has_length) {
    out.kind = BodyFraming::kContentLength;
    out.length = length;
  } else {
    out.kind = BodyFraming::kUntilClose;
  }
  return ParseResult::complete(0);
}

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view input) {
  Step step;
  auto fail = [&](int status, const char* why) {
    step.status = ParseStatus::kError;
    step.error_status = status;
    step.error = why;
    return step;
  };
  std::size_t pos = 0;
  for (;;) {
    std::string_view rest = input.substr(pos);
    switch (state_) {
      case State::kSize: {
        std::size_t eol = rest.find('\n');
        // Checked whole or in pieces alike, so the outcome never depends on
        // how the line was split.
        if ((eol == npos ? rest.size() : eol) > kMaxChunkLine) return fail(400, "chunk size line too long");
        if (eol == npos) goto out_of_input;
        std::string_view l = rest.substr(0, eol);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        std::size_t i = 0;
        std::uint64_t size = 0;
        while (i < l.size()) {
          char c = l[i];
          int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
          if (d < 0) break;
          if (size >= kMaxChunkSize) return fail(400, "chunk size overflows");
          size = size * 16 + static_cast<std::uint64_t>(d);
          ++i;
        }
        if (i == 0) return fail(400, "invalid chunk size");
        // chunk-ext: *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ignored.
        std::size_t j = i;
        while (j < l.size() && (l[j] == ' ' || l[j] == '\t')) ++j;
        if (j < l.size() && l[j] != ';') return fail(400, "invalid chunk size");
        for (std::size_t k = j; k < l.size(); ++k) {
          auto u = static_cast<unsigned char>(l[k]);
          if ((u < 0x20 && l[k] != '\t') || u == 0x7f) return fail(400, "control character in a chunk extension");
        }
        pos += eol + 1;
        if (size == 0) {
          state_ = State::kTrailers;
        } else {
          remaining_ = size;
          state_ = State::kData;
        }
        break;
      }
      case State::kData: {
        if (rest.empty()) goto out_of_input;
        std::size_t take = rest.size() < remaining_ ? rest.size() : static_cast<std::size_t>(remaining_);
        step.data = rest.substr(0, take);
        remaining_ -= take;
        pos += take;
        if (remaining_ == 0) state_ = State::kDataEnd;
        step.status = ParseStatus::kComplete;
        step.consumed = pos;
        return step;  // one run of data per call
      }
      case State::kDataEnd: {
        if (rest.empty()) goto out_of_input;
        if (rest[0] == '\n') {
          pos += 1;
        } else if (rest[0] == '\r') {
          if (rest.size() < 2) goto out_of_input;
          if (rest[1] != '\n') return fail(400, "chunk data not followed by CRLF");
          pos += 2;
        } else {
          return fail(400, "chunk data longer than its size");
        }
        state_ = State::kSize;
        break;
      }
      case State::kTrailers: {
        std::size_t eol = rest.find('\n');
        if (eol == npos) {
          if (trailer_bytes_ + rest.size() > limits_.max_header_size) return fail(431, "trailer section too large");
          goto out_of_input;
        }
        std::string_view l = rest.substr(0, eol);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        trailer_bytes_ += eol + 1;
        if (trailer_bytes_ > limits_.max_header_size) return fail(431, "trailer section too large");
        pos += eol + 1;
        if (l.empty()) {
          state_ = State::kDone;
          step.done = true;
          step.status = ParseStatus::kComplete;
          step.consumed = pos;
          return step;
        }
        if (l.find('\r') != npos || l.find(':') == npos) return fail(400, "malformed trailer field");
        break;  // trailer fields are read and dropped
      }
      case State::kDone:
        step.done = true;
        step.status = ParseStatus::kComplete;
        step.consumed = pos;
        return step;
    }
  }
out_of_input:
  step.consumed = pos;
  step.status = pos > 0 ? ParseStatus::kComplete : ParseStatus::kPartial;
  return step;
}

}  // namespace squall::http
