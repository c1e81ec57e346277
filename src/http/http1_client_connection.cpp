#include "http/http1_client_connection.hpp"

#include <zlib.h>

#include <algorithm>
#include <utility>

#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"

namespace squall::http {

// --- gzip ---------------------------------------------------------------------------------

/// A streaming gzip decoder (RFC 1952 via zlib) writing into a fixed scratch
/// buffer, so a body of any size decodes in constant memory.
class HTTP1ClientConnection::GzipDecoder {
 public:
  GzipDecoder() {
    // 16 + MAX_WBITS: a gzip wrapper (zlib's inflateInit2 documentation),
    // as Tornado's GzipDecompressor.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw std::bad_alloc();
  }
  ~GzipDecoder() { inflateEnd(&z_); }
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  /// Decodes `in`, handing each decoded run to `out`. Input after the end
  /// of the gzip member is ignored (Tornado does the same).
  template <class Out>
  void feed(std::string_view in, Out&& out) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    while (!ended_ && (z_.avail_in > 0 || z_.avail_out == 0)) {
      z_.next_out = reinterpret_cast<Bytef*>(scratch_);
      z_.avail_out = sizeof scratch_;
      int rc = inflate(&z_, Z_NO_FLUSH);
      std::size_t produced = sizeof scratch_ - z_.avail_out;
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw HTTPInputError(std::string("Malformed gzip body: ") + (z_.msg ? z_.msg : "inflate failed"));
      }
      if (produced > 0) out(std::string_view(scratch_, produced));
      if (rc == Z_BUF_ERROR && produced == 0) break;  // needs more input
    }
    z_.next_in = nullptr;
    z_.avail_in = 0;
  }

 private:
  z_stream z_{};
  bool ended_ = false;
  char scratch_[32 * 1024];
};

// --- the connection ----------------------------------------------------------------------------

HTTP1ClientConnection::HTTP1ClientConnection(std::unique_ptr<net::IOStream> stream, std::size_t max_header_size)
    : stream_(std::move(stream)), max_header_size_(max_header_size) {}

HTTP1ClientConnection::~HTTP1ClientConnection() = default;

void HTTP1ClientConnection::close() noexcept { stream_->close(); }

void HTTP1ClientConnection::begin_exchange() noexcept {
  received_any_ = false;
  first_byte_ = {};
  head_length_ = 0;
}

void HTTP1ClientConnection::note_received() noexcept {
  if (received_any_) return;
  received_any_ = true;
  first_byte_ = stream_->io_loop().time();
}

Future<void> HTTP1ClientConnection::read_head(ClientResponseHead& head, bool want_continue) {
  const ParserLimits limits{max_header_size_};
  for (;;) {
    std::size_t scanned = 0;
    std::size_t end;
    for (;;) {
      std::string_view buf = stream_->buffered();
      if (!buf.empty()) note_received();
      end = find_head_end(buf, scanned);
      if (end != std::string_view::npos) break;
      if (buf.size() > max_header_size_) {
        throw HTTPInputError("Response head is larger than max_header_size (" + std::to_string(max_header_size_) +
                                 " bytes)",
                             431);
      }
      co_await stream_->read_more();
    }
    ResponseStartLine line;
    ParseResult p = parse_response_head(stream_->buffered().substr(0, end), line, head.headers, limits);
    if (p.status != ParseStatus::kComplete) {
      throw HTTPInputError(std::string("Malformed HTTP response: ") + (p.error ? p.error : "incomplete head"),
                           p.error_status ? p.error_status : 400);
    }
    head.code = line.code;
    head.reason.assign(line.reason);
    head.http10 = line.version == "HTTP/1.0";
    head_length_ = end;
    // Interim responses (RFC 9110 section 15.2) precede the final one; 101
    // is final for this client (it never asks to switch protocols).
    bool interim = head.code >= 100 && head.code < 200 && head.code != 101;
    if (!interim || (want_continue && head.code == 100)) co_return;
    consume_head();
  }
}

std::string_view HTTP1ClientConnection::head_text() const noexcept {
  return stream_->buffered().substr(0, head_length_);
}

void HTTP1ClientConnection::consume_head() noexcept {
  stream_->consume(head_length_);
  head_length_ = 0;
}

void HTTP1ClientConnection::deliver(std::string_view piece) {
  auto out = [this](std::string_view decoded) {
    if (delivered_ + decoded.size() > max_body_) throw HTTPBodyTooLargeError(max_body_);
    delivered_ += decoded.size();
    sink_->data(decoded);
  };
  if (gzip_) {
    gzip_->feed(piece, out);
  } else {
    out(piece);
  }
}

Future<void> HTTP1ClientConnection::read_body(BodyFraming framing, bool gzip, std::size_t max_body, BodySink& sink) {
  sink_ = &sink;
  max_body_ = max_body;
  delivered_ = 0;
  if (gzip && framing.kind != BodyFraming::kNone) {
    gzip_ = std::make_unique<GzipDecoder>();
  } else {
    gzip_.reset();
  }
  // Forget the sink (and the decoder's memory) however the body ends.
  struct Reset {
    HTTP1ClientConnection* c;
    ~Reset() {
      c->sink_ = nullptr;
      c->gzip_.reset();
    }
  } reset{this};

  switch (framing.kind) {
    case BodyFraming::kNone:
      break;
    case BodyFraming::kContentLength: {
      std::uint64_t remaining = framing.length;
      // Known too large before a byte is read (Tornado: "Content-Length too
      // long"); decoded sizes are checked as they come.
      if (!gzip_ && remaining > max_body) throw HTTPBodyTooLargeError(max_body);
      while (remaining > 0) {
        std::string_view buf = stream_->buffered();
        if (buf.empty()) {
          co_await stream_->read_more();
          continue;
        }
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), remaining));
        deliver(buf.substr(0, n));
        stream_->consume(n);
        remaining -= n;
      }
      break;
    }
    case BodyFraming::kChunked: {
      ChunkedDecoder decoder(ParserLimits{max_header_size_});
      for (;;) {
        ChunkedDecoder::Step step = decoder.feed(stream_->buffered());
        if (step.status == ParseStatus::kError) {
          throw HTTPInputError(std::string("Malformed chunked response body: ") + step.error);
        }
        if (!step.data.empty()) deliver(step.data);
        stream_->consume(step.consumed);
        if (decoder.done()) break;
        if (step.status == ParseStatus::kPartial) co_await stream_->read_more();
      }
      break;
    }
    case BodyFraming::kUntilClose: {
      bool ended = false;
      while (!ended) {
        std::string_view buf = stream_->buffered();
        if (!buf.empty()) {
          deliver(buf);
          stream_->consume(buf.size());
        }
        try {
          co_await stream_->read_more();
        } catch (const net::StreamClosedError& e) {
          // The end of the body, unless the stream died of an error.
          if (e.real_error()) throw;
          ended = true;
        }
      }
      break;
    }
  }
}

bool HTTP1ClientConnection::reusable(const ClientResponseHead& head, const BodyFraming& framing) const noexcept {
  if (stream_->closed() || framing.kind == BodyFraming::kUntilClose) return false;
  // Anything beyond the response is not ours to interpret (no pipelining).
  if (!stream_->buffered().empty()) return false;
  // RFC 9112 section 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only
  // with "keep-alive".
  bool close = false, keep_alive = false;
  for (std::string_view value : head.headers.get_list("Connection")) {
    while (!value.empty()) {
      std::size_t comma = value.find(',');
      std::string_view token = value.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (iequals(token, "close")) close = true;
      if (iequals(token, "keep-alive")) keep_alive = true;
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  return head.http10 ? keep_alive && !close : !close;
}

}  // namespace squall::http
