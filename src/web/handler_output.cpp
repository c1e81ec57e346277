// RequestHandler's output: status and headers, the write buffer, flush and
// finish (Content-Length, ETag and 304, compression), redirects.
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "squall/core/log.hpp"
#include "squall/http/httputil.hpp"
#include "squall/net/iostream.hpp"
#include "squall/web/application.hpp"
#include "squall/web/compression.hpp"
#include "squall/web/request_handler.hpp"
#include "web/handler_delegate.hpp"
#include "web/handler_extras.hpp"

namespace squall::web {

namespace {

std::string_view decimal(std::int64_t value, char (&buf)[24]) noexcept {
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  return {buf, static_cast<std::size_t>(r.ptr - buf)};
}

bool has_no_body(int status) noexcept { return status < 200 || status == 204 || status == 304; }

/// A 64-bit hash of the body for the default ETag (MurmurHash64A's mixing,
/// eight bytes at a time): cheap enough to run on every response.
std::uint64_t body_hash(std::string_view data) noexcept {
  constexpr std::uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  std::uint64_t h = 0x8445d61a4e774912ULL ^ (data.size() * m);
  const char* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    std::uint64_t k;
    std::memcpy(&k, p, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
    p += 8;
    n -= 8;
  }
  std::uint64_t tail = 0;
  for (std::size_t i = 0; i < n; ++i) tail |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
  if (n) {
    h ^= tail;
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

/// The entity-tags of an If-None-Match value (RFC 9110 section 13.1.2):
/// `*` or a list of `"..."` / `W/"..."`, as Tornado's regex finds them.
template <class F>
void for_each_etag(std::string_view value, F&& f) {
  std::size_t i = 0;
  while (i < value.size()) {
    if (value[i] == '*') {
      f(std::string_view("*"));
      ++i;
      continue;
    }
    std::size_t start = i;
    if (value.substr(i, 3) == "W/\"") i += 2;
    if (i < value.size() && value[i] == '"') {
      std::size_t close = value.find('"', i + 1);
      if (close == std::string_view::npos) return;
      f(value.substr(start, close + 1 - start));
      i = close + 1;
      continue;
    }
    i = start + 1;
  }
}

std::string_view strip_weak(std::string_view tag) noexcept { return tag.starts_with("W/") ? tag.substr(2) : tag; }

}  // namespace

// --- status and headers -----------------------------------------------------------------------

void RequestHandler::set_status(int status, std::string_view reason) {
  if (status < 100 || status > 599) throw std::invalid_argument("HTTP status " + std::to_string(status));
  if (reason.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    throw std::invalid_argument("CR, LF or NUL in a reason phrase");
  }
  status_ = status;
  if (!reason.empty()) extras().reason.assign(reason);
  else if (extras_) extras_->reason.clear();
}

void RequestHandler::set_header(std::string_view name, std::string_view value) { headers_.set(name, value); }

void RequestHandler::set_header(std::string_view name, std::int64_t value) {
  char buf[24];
  headers_.set(name, decimal(value, buf));
}

void RequestHandler::set_header(std::string_view name, std::chrono::system_clock::time_point value) {
  headers_.set(name, http::format_timestamp(value));
}

void RequestHandler::add_header(std::string_view name, std::string_view value) { headers_.add(name, value); }

void RequestHandler::add_header(std::string_view name, std::int64_t value) {
  char buf[24];
  headers_.add(name, decimal(value, buf));
}

void RequestHandler::clear_header(std::string_view name) { headers_.remove(name); }

void RequestHandler::clear() {
  headers_.clear();
  headers_.add_unchecked("Content-Type", "text/html; charset=UTF-8");
  write_buffer_.clear();
  status_ = 200;
  if (extras_) extras_->reason.clear();
  set_default_headers();
}

// --- the body -----------------------------------------------------------------------------------

void RequestHandler::write(std::string_view chunk) {
  if (finished_) throw std::logic_error("Cannot write() after finish()");
  write_buffer_.append(chunk);
}

Future<void> RequestHandler::flush() {
  if (finished_) return make_ready_future();
  return write_out(false);
}

void RequestHandler::add_pending_cookies() {
  if (!extras_) return;
  for (const auto& [name, value] : extras_->new_cookies) headers_.add_unchecked("Set-Cookie", value);
}

Future<void> RequestHandler::write_out(bool finishing) {
  if (client_gone() || detached_) {
    write_buffer_.clear();
    Future<void> f = make_exception_future<void>(std::make_exception_ptr(net::StreamClosedError()));
    (void)f.exception();  // the caller may ignore it: on_connection_close told the story
    return f;
  }
  std::string encoded;
  if (!headers_written_) {
    headers_written_ = true;
    const Settings& s = settings();
    if (s.compress_response && !has_no_body(status_)) {
      std::string_view content_type = headers_.get("Content-Type", "");
      if (is_compressible_type(content_type)) {
        // The answer depends on Accept-Encoding even when it is not
        // compressed this time (RFC 9110 section 12.5.5).
        if (auto vary = headers_.get("Vary")) {
          if (vary->find("Accept-Encoding") == std::string_view::npos) {
            std::string merged = std::string(*vary) + ", Accept-Encoding";
            headers_.set("Vary", merged);
          }
        } else {
          headers_.add_unchecked("Vary", "Accept-Encoding");
        }
        if (!headers_.contains("Content-Encoding") &&
            (!finishing || write_buffer_.size() >= s.compression.min_length)) {
          if (const ContentCodec* codec =
                  choose_codec(request_->headers.get("Accept-Encoding", ""), s.compression.codecs)) {
            encoder_ = codec->make_encoder();
            headers_.set("Content-Encoding", codec->name());
          }
        }
      }
    }
    std::string_view body = write_buffer_;
    if (encoder_) {
      encoder_->encode(write_buffer_, finishing, encoded);
      body = encoded;
      if (finishing) {
        char buf[24];
        headers_.set("Content-Length", decimal(static_cast<std::int64_t>(encoded.size()), buf));
      } else {
        headers_.remove("Content-Length");
      }
    }
    add_pending_cookies();
    std::string_view reason = extras_ ? std::string_view(extras_->reason) : std::string_view();
    Future<void> f = request_->write_headers(status_, headers_, body, reason);
    write_buffer_.clear();
    return f;
  }
  std::string_view chunk = write_buffer_;
  if (encoder_) {
    encoder_->encode(write_buffer_, finishing, encoded);
    chunk = encoded;
  }
  Future<void> f = request_->write(chunk);
  write_buffer_.clear();
  return f;
}

void RequestHandler::finish(std::string_view chunk) {
  write(chunk);
  finish();
}

void RequestHandler::finish() {
  if (finished_) throw std::logic_error("finish() called twice");
  if (detached_ || client_gone()) {
    write_buffer_.clear();
    finished_ = true;
    if (!detached_ && application_) application_->log_request(*this);
    if (!on_finish_called_) call_on_finish();
    return;
  }
  if (!headers_written_) {
    std::string_view method = request_->method;
    if (status_ == 200 && (method == "GET" || method == "HEAD") && !headers_.contains("Etag")) {
      set_etag_header();
      if (check_etag_header()) {
        write_buffer_.clear();
        set_status(304);
      }
    }
    if (has_no_body(status_)) {
      write_buffer_.clear();
      if (status_ == 304) {
        // RFC 9110 section 15.4.5: a 304 describes the stored representation.
        headers_.remove("Content-Encoding");
        headers_.remove("Content-Language");
        headers_.remove("Content-Type");
      }
    } else if (!headers_.contains("Content-Length")) {
      char buf[24];
      headers_.add_unchecked("Content-Length", decimal(static_cast<std::int64_t>(write_buffer_.size()), buf));
    }
  }
  // Errors of this write reach on_connection_close; nobody awaits it.
  Future<void> sent = write_out(true);
  (void)sent;
  request_->finish();
  finished_ = true;
  application_->log_request(*this);
  if (!on_finish_called_) call_on_finish();
}

// --- ETags --------------------------------------------------------------------------------------

std::optional<std::string> RequestHandler::compute_etag() {
  // 64 bits in 11 base64url digits: with the quotes, 13 characters, which
  // std::string keeps without allocating.
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::uint64_t h = body_hash(write_buffer_);
  char buf[13];
  buf[0] = buf[12] = '"';
  for (int i = 11; i >= 1; --i, h >>= 6) buf[i] = kDigits[h & 63];
  return std::string(buf, sizeof buf);
}

void RequestHandler::set_etag_header() {
  if (auto etag = compute_etag()) headers_.set("Etag", *etag);
}

bool RequestHandler::check_etag_header() const {
  auto computed = headers_.get("Etag");
  auto inm = request_->headers.get("If-None-Match");
  if (!computed || computed->empty() || !inm) return false;
  bool match = false;
  bool first = true;
  for_each_etag(*inm, [&](std::string_view tag) {
    if (match) return;
    if (first && tag == "*") match = true;
    else if (strip_weak(tag) == strip_weak(*computed)) match = true;
    first = false;
  });
  return match;
}

// --- redirects ------------------------------------------------------------------------------------

void RequestHandler::redirect(std::string_view url, bool permanent, int status) {
  if (headers_written_) throw std::logic_error("Cannot redirect after headers have been written");
  if (status == 0) {
    status = permanent ? 301 : 302;
  } else if (status < 300 || status > 399) {
    throw std::invalid_argument("redirect status must be 3xx");
  }
  set_header("Location", url);
  set_status(status);
  finish();
}

}  // namespace squall::web
