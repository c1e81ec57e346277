// Content codings: gzip (zlib) and br (libbrotlienc), and the choice of one
// from Accept-Encoding.
#include "squall/web/compression.hpp"

#include <brotli/encode.h>
#include <zlib.h>

#include <algorithm>
#include <stdexcept>

#include "squall/core/errors.hpp"
#include "squall/http/headers.hpp"

namespace squall::web {

namespace {

class GzipEncoder final : public ContentEncoder {
 public:
  explicit GzipEncoder(int level) {
    // 16 + MAX_WBITS: a gzip wrapper (RFC 1952), as Tornado's GzipFile.
    if (deflateInit2(&z_, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw Error("zlib deflateInit2 failed");
    }
  }
  ~GzipEncoder() override { deflateEnd(&z_); }
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;

  void encode(std::string_view input, bool finish, std::string& out) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    z_.avail_in = static_cast<uInt>(input.size());
    int flush = finish ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
      std::size_t room = std::max<std::size_t>(deflateBound(&z_, z_.avail_in) + 16, 256);
      std::size_t at = out.size();
      out.resize(at + room);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + at);
      z_.avail_out = static_cast<uInt>(room);
      int rc = deflate(&z_, flush);
      out.resize(at + room - z_.avail_out);
      if (rc == Z_STREAM_END) return;
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw Error("zlib deflate failed");
      // Done when the input is consumed and deflate had room to spare.
      if (z_.avail_in == 0 && z_.avail_out != 0 && !finish) return;
    }
  }

 private:
  z_stream z_{};
};

class GzipCodec final : public ContentCodec {
 public:
  explicit GzipCodec(int level) : level_(level) {}
  std::string_view name() const noexcept override { return "gzip"; }
  std::unique_ptr<ContentEncoder> make_encoder() const override { return std::make_unique<GzipEncoder>(level_); }

 private:
  int level_;
};

class BrotliEncoder final : public ContentEncoder {
 public:
  explicit BrotliEncoder(int quality) : s_(BrotliEncoderCreateInstance(nullptr, nullptr, nullptr)) {
    if (!s_) throw Error("BrotliEncoderCreateInstance failed");
    BrotliEncoderSetParameter(s_, BROTLI_PARAM_QUALITY, static_cast<std::uint32_t>(quality));
    // A 4 MiB window: brotli's default (lgwin 22), enough for web bodies.
    BrotliEncoderSetParameter(s_, BROTLI_PARAM_LGWIN, 22);
  }
  ~BrotliEncoder() override { BrotliEncoderDestroyInstance(s_); }
  BrotliEncoder(const BrotliEncoder&) = delete;
  BrotliEncoder& operator=(const BrotliEncoder&) = delete;

  void encode(std::string_view input, bool finish, std::string& out) override {
    const std::uint8_t* next_in = reinterpret_cast<const std::uint8_t*>(input.data());
    std::size_t avail_in = input.size();
    BrotliEncoderOperation op = finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    for (;;) {
      std::size_t room = std::max<std::size_t>(avail_in + avail_in / 8 + 64, 256);
      std::size_t at = out.size();
      out.resize(at + room);
      std::uint8_t* next_out = reinterpret_cast<std::uint8_t*>(out.data() + at);
      std::size_t avail_out = room;
      if (!BrotliEncoderCompressStream(s_, op, &avail_in, &next_in, &avail_out, &next_out, nullptr)) {
        out.resize(at);
        throw Error("brotli compression failed");
      }
      out.resize(at + room - avail_out);
      bool drained = avail_in == 0 && !BrotliEncoderHasMoreOutput(s_);
      if (finish ? BrotliEncoderIsFinished(s_) : drained) return;
    }
  }

 private:
  BrotliEncoderState* s_;
};

class BrotliCodec final : public ContentCodec {
 public:
  explicit BrotliCodec(int quality) : quality_(quality) {}
  std::string_view name() const noexcept override { return "br"; }
  std::unique_ptr<ContentEncoder> make_encoder() const override { return std::make_unique<BrotliEncoder>(quality_); }

 private:
  int quality_;
};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// A qvalue (RFC 9110 section 12.4.2) in thousandths; -1 if malformed.
int parse_qvalue(std::string_view v) noexcept {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
  int whole = v[0] - '0';
  int thousandths = 0;
  if (v.size() > 1) {
    if (v[1] != '.' || v.size() > 5) return -1;
    int scale = 100;
    for (std::size_t i = 2; i < v.size(); ++i, scale /= 10) {
      if (v[i] < '0' || v[i] > '9') return -1;
      thousandths += (v[i] - '0') * scale;
    }
  }
  int q = whole * 1000 + thousandths;
  return q > 1000 ? -1 : q;
}

}  // namespace

std::shared_ptr<const ContentCodec> gzip_codec(int level) {
  if (level < 0 || level > 9) throw std::invalid_argument("gzip level must be 0-9");
  return std::make_shared<const GzipCodec>(level);
}

std::shared_ptr<const ContentCodec> brotli_codec(int quality) {
  if (quality < 0 || quality > 11) throw std::invalid_argument("brotli quality must be 0-11");
  return std::make_shared<const BrotliCodec>(quality);
}

bool is_compressible_type(std::string_view content_type) noexcept {
  std::string_view type = trim(content_type.substr(0, content_type.find(';')));
  if (type.size() >= 5 && http::iequals(type.substr(0, 5), "text/")) return true;
  static constexpr std::string_view kTypes[] = {
      "application/javascript", "application/x-javascript", "application/xml",
      "application/atom+xml",   "application/json",         "application/xhtml+xml",
      "image/svg+xml",
  };
  for (std::string_view t : kTypes) {
    if (http::iequals(type, t)) return true;
  }
  return false;
}

const ContentCodec* choose_codec(std::string_view accept_encoding,
                                 const std::vector<std::shared_ptr<const ContentCodec>>& codecs) {
  if (accept_encoding.empty() || codecs.empty()) return nullptr;
  // q per codec (thousandths), -1 while not named; the wildcard's q.
  constexpr std::size_t kMax = 16;
  int q[kMax];
  std::size_t n = std::min(codecs.size(), kMax);
  std::fill(q, q + n, -1);
  int star = -1;
  std::string_view rest = accept_encoding;
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    std::size_t semi = item.find(';');
    std::string_view coding = trim(item.substr(0, semi));
    if (coding.empty()) continue;
    int value = 1000;
    std::string_view params = semi == std::string_view::npos ? std::string_view() : item.substr(semi + 1);
    while (!params.empty()) {
      std::size_t next = params.find(';');
      std::string_view param = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      std::size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view key = trim(param.substr(0, eq));
      if (key == "q" || key == "Q") {
        value = parse_qvalue(trim(param.substr(eq + 1)));
        if (value < 0) value = 0;  // malformed: refused, never preferred
      }
    }
    if (coding == "*") {
      star = value;
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      std::string_view name = codecs[i]->name();
      if (http::iequals(coding, name) || (name == "gzip" && http::iequals(coding, "x-gzip"))) q[i] = value;
    }
  }
  const ContentCodec* best = nullptr;
  int best_q = 0;
  for (std::size_t i = 0; i < n; ++i) {
    int v = q[i] >= 0 ? q[i] : star;
    if (v > best_q) {
      best_q = v;
      best = codecs[i].get();
    }
  }
  return best;
}

}  // namespace squall::web
