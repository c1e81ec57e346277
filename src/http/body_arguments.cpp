#include "squall/http/body_arguments.hpp"

#include <utility>

#include "squall/http/httputil.hpp"

namespace squall::http {

namespace {

constexpr std::size_t npos = std::string_view::npos;
// RFC 2046 section 5.1.1: a boundary is 1 to 70 characters. The bound also
// keeps the boundary search linear (each byte is compared at most this
// many times).
constexpr std::size_t kMaxBoundary = 70;

std::string_view strip_quotes(std::string_view boundary) noexcept {
  if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  return boundary;
}

/// Collects whole parts into arguments and files (the non-streaming API).
class Collector final : public MultipartDelegate {
 public:
  Collector(QueryArguments& arguments, Files& files) : arguments_(arguments), files_(files) {}

  void part_begin(const MultipartPart& part) override {
    name_ = part.name;
    is_file_ = part.is_file();
    if (is_file_) {
      file_ = HTTPFile{part.filename, part.content_type, {}};
    } else {
      value_.clear();
    }
  }
  void part_data(std::string_view chunk) override { (is_file_ ? file_.body : value_).append(chunk); }
  void part_end() override {
    if (is_file_) {
      files_[name_].push_back(std::move(file_));
    } else {
      arguments_[name_].push_back(std::move(value_));
    }
  }

 private:
  QueryArguments& arguments_;
  Files& files_;
  std::string name_;
  bool is_file_ = false;
  HTTPFile file_;
  std::string value_;
};

}  // namespace

MultipartParser::MultipartParser(std::string_view boundary, MultipartDelegate& delegate,
                                 const MultipartLimits& limits)
    : delegate_(delegate), limits_(limits) {
  boundary = strip_quotes(boundary);
  if (boundary.empty()) fail("empty boundary");
  if (boundary.size() > kMaxBoundary) fail("boundary longer than 70 characters");
  delimiter_ = "\r\n--";
  delimiter_.append(boundary);
  // A virtual CRLF before the body, so the first boundary (which needs none)
  // is found by the same search as the others.
  buffer_ = "\r\n";
  state_ = State::kPreamble;
}

void MultipartParser::fail(const char* why) {
  state_ = State::kFailed;
  throw HTTPInputError(std::string("Invalid multipart/form-data: ") + why, 400);
}

void MultipartParser::feed(std::string_view chunk) {
  if (state_ == State::kFailed) throw HTTPInputError("Invalid multipart/form-data: parser already failed", 400);
  try {
    if (buffer_.empty()) {
      std::size_t used = process(chunk);
      buffer_.assign(chunk.substr(used));
    } else {
      buffer_.append(chunk);
      std::size_t used = process(buffer_);
      buffer_.erase(0, used);
    }
  } catch (...) {
    state_ = State::kFailed;
    throw;
  }
}

void MultipartParser::finish() {
  if (state_ == State::kFailed) throw HTTPInputError("Invalid multipart/form-data: parser already failed", 400);
  if (state_ != State::kEpilogue) fail("no final boundary found");
  buffer_.clear();
}

void MultipartParser::begin_part(std::string_view header_block) {
  if (++parts_ > limits_.max_parts) fail("too many parts");
  MultipartPart part;
  part.headers = HTTPHeaders::parse(header_block);
  auto disposition = part.headers.get("Content-Disposition");
  if (!disposition) fail("part without Content-Disposition");
  ContentType parsed = parse_content_type(*disposition);
  if (parsed.type != "form-data") fail("part disposition is not form-data");
  if (auto it = parsed.params.find("name"); it != parsed.params.end()) part.name = std::move(it->second);
  if (part.name.empty()) fail("part without a name");
  if (auto it = parsed.params.find("filename"); it != parsed.params.end()) part.filename = std::move(it->second);
  // An empty Content-Type says no more than a missing one.
  part.content_type = part.headers.get("Content-Type", "");
  if (part.content_type.empty()) part.content_type = "application/unknown";
  delegate_.part_begin(part);
}

std::size_t MultipartParser::find_delimiter(std::string_view data) const noexcept {
  // "\r\n--boundary" followed by a byte that cannot follow a delimiter
  // ("--12345" when the boundary is "1234") is content, as Tornado's
  // parser takes it: search on past it. A match at the very end is
  // returned undecided. Each byte is compared at most delimiter-length times.
  for (std::size_t from = 0;;) {
    std::size_t at = data.find(delimiter_, from);
    if (at == npos || at + delimiter_.size() == data.size()) return at;
    char next = data[at + delimiter_.size()];
    if (next == '-' || next == ' ' || next == '\t' || next == '\r') return at;
    from = at + 1;
  }
}

std::size_t MultipartParser::process(std::string_view data) {
  std::size_t pos = 0;
  for (;;) {
    std::string_view rest = data.substr(pos);
    switch (state_) {
      case State::kPreamble: {
        std::size_t at = find_delimiter(rest);
        if (at == npos) {
          // Keep what could be the start of a delimiter; drop the rest.
          std::size_t keep = delimiter_.size();
          return rest.size() > keep ? pos + rest.size() - keep : pos;
        }
        if (at + delimiter_.size() == rest.size()) return pos + at;  // undecided until the next byte
        pos += at + delimiter_.size();
        state_ = State::kBoundaryTail;
        break;
      }
      case State::kBoundaryTail: {
        // Right after "--boundary": "--" closes the body, anything else
        // must be transport padding and CRLF (RFC 2046 section 5.1.1).
        if (rest.empty()) return pos;
        if (rest[0] == '-') {
          if (rest.size() < 2) return pos;
          if (rest[1] != '-') fail("invalid characters after a boundary");
          pos += 2;
          state_ = State::kEpilogue;
          break;
        }
        state_ = State::kBoundaryPadding;
        break;
      }
      case State::kBoundaryPadding: {
        std::size_t i = 0;
        while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t')) ++i;
        pos += i;  // padding is dropped as it arrives
        if (i == rest.size()) return pos;
        if (rest[i] != '\r') fail("invalid characters after a boundary");
        if (i + 1 == rest.size()) return pos;
        if (rest[i + 1] != '\n') fail("invalid characters after a boundary");
        // The CRLF stays: the header search below starts with it, so an
        // empty header block is "\r\n\r\n" at offset 0.
        scanned_ = 0;
        state_ = State::kHeaders;
        break;
      }
      case State::kHeaders: {
        std::size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;  // a terminator may straddle feeds
        std::size_t end = rest.find("\r\n\r\n", from);
        if (end == npos) {
          if (rest.size() > limits_.max_part_header_size + 5) fail("part header too large");
          scanned_ = rest.size();
          return pos;
        }
        std::string_view block = end == 0 ? std::string_view() : rest.substr(2, end - 2);
        if (block.size() > limits_.max_part_header_size) fail("part header too large");
        begin_part(block);
        pos += end + 4;
        scanned_ = 0;
        state_ = State::kBody;
        break;
      }
      case State::kBody: {
        std::size_t at = find_delimiter(rest);
        if (at == npos) {
          // Everything but a possible partial delimiter at the end is data.
          std::size_t keep = delimiter_.size();
          if (rest.size() > keep) {
            delegate_.part_data(rest.substr(0, rest.size() - keep));
            pos += rest.size() - keep;
          }
          return pos;
        }
        if (at > 0) delegate_.part_data(rest.substr(0, at));
        if (at + delimiter_.size() == rest.size()) return pos + at;  // undecided until the next byte
        delegate_.part_end();
        pos += at + delimiter_.size();
        state_ = State::kBoundaryTail;
        break;
      }
      case State::kEpilogue:
        return data.size();
      case State::kFailed:
        fail("parser already failed");
    }
  }
}

void parse_multipart_form_data(std::string_view boundary, std::string_view data, QueryArguments& arguments,
                               Files& files, const MultipartLimits& limits) {
  Collector collector(arguments, files);
  MultipartParser parser(boundary, collector, limits);
  parser.feed(data);
  parser.finish();
}

void parse_body_arguments(std::string_view content_type, std::string_view body, QueryArguments& arguments,
                          Files& files, const MultipartLimits& limits) {
  ContentType parsed = parse_content_type(content_type);
  if (parsed.type == "application/x-www-form-urlencoded") {
    parse_qs_into(body, arguments, true);
  } else if (parsed.type == "multipart/form-data") {
    auto it = parsed.params.find("boundary");
    if (it == parsed.params.end() || it->second.empty()) {
      throw HTTPInputError("Invalid multipart/form-data: multipart boundary not found", 400);
    }
    parse_multipart_form_data(it->second, body, arguments, files, limits);
  }
}

}  // namespace squall::http
