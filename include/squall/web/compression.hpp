// Response compression (Tornado's GZipContentEncoding, plus brotli): the
// content codings a handler's output may be encoded with, chosen from the
// request's Accept-Encoding. Codecs are immutable and may be shared between
// threads; an encoder belongs to one response.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace squall::web {

/// Compresses one response body, piece by piece.
class ContentEncoder {
 public:
  virtual ~ContentEncoder() = default;
  /// Appends the encoding of `input` to `out`. With `finish`, the stream is
  /// ended (no call may follow); without, everything given so far is
  /// flushed so the client can decode it now (a streamed response).
  virtual void encode(std::string_view input, bool finish, std::string& out) = 0;
};

/// A content coding (RFC 9110 section 8.4.1): its token and a way to make
/// encoders. Implement it to plug in another coding (zstd, say).
class ContentCodec {
 public:
  virtual ~ContentCodec() = default;
  /// The Content-Encoding token: "gzip", "br".
  virtual std::string_view name() const noexcept = 0;
  virtual std::unique_ptr<ContentEncoder> make_encoder() const = 0;
};

/// gzip with zlib at `level` (Tornado's GZIP_LEVEL, 6).
std::shared_ptr<const ContentCodec> gzip_codec(int level = 6);
/// brotli (libbrotlienc) at `quality` 0-11; 4 is close to gzip -6 in speed
/// and smaller.
std::shared_ptr<const ContentCodec> brotli_codec(int quality = 4);

/// What the compress_response setting compresses, and with what.
struct CompressionOptions {
  /// In order of preference when the client accepts several with the same
  /// q-value.
  std::vector<std::shared_ptr<const ContentCodec>> codecs{brotli_codec(), gzip_codec()};
  /// Whole responses shorter than this are sent as they are (Tornado's
  /// MIN_LENGTH); streamed (flushed) responses are always compressed.
  std::size_t min_length{1024};
};

/// True for types worth compressing (Tornado's list): text/*, and
/// application/javascript, x-javascript, json, xml, atom+xml, xhtml+xml,
/// and image/svg+xml; parameters (charset) ignored.
bool is_compressible_type(std::string_view content_type) noexcept;

/// The codec to use for a request's Accept-Encoding (RFC 9110 section
/// 12.5.3): the accepted coding with the highest q-value, ties going to
/// the earlier codec in `codecs`; "*" stands for any coding not named;
/// q=0 refuses. Null when nothing offered is acceptable (identity).
const ContentCodec* choose_codec(std::string_view accept_encoding,
                                 const std::vector<std::shared_ptr<const ContentCodec>>& codecs);

}  // namespace squall::web
