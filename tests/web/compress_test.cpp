// Response compression: the choice of a coding from Accept-Encoding (q
// values, wildcards, refusals), which responses are compressed (type, size,
// status), gzip and brotli bodies that decode to the original, streamed
// (flushed) compressed responses, HEAD, and a plugged-in codec.
#include "squall/web/compression.hpp"

#include <brotli/decode.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <string>
#include <vector>

#include "squall/testing/http.hpp"
#include "squall/web/application.hpp"
#include "squall/web/request_handler.hpp"
#include "web_test_support.hpp"

namespace squall::web {
namespace {

using test::get;
using test::request;

std::string gunzip(std::string_view data) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return "<init failed>";
  std::string out;
  char buf[16384];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) return "<truncated: " + out + ">";
  return out;
}

/// libbrotlidec, opened at run time: only the library links brotli (the
/// encoder), and the tests need the decoder just here.
std::string unbrotli(std::string_view data) {
  void* lib = ::dlopen("libbrotlidec.so.1", RTLD_NOW);
  if (!lib) return "<no libbrotlidec>";
  using Decompress = BrotliDecoderResult (*)(size_t, const uint8_t*, size_t*, uint8_t*);
  auto decompress = reinterpret_cast<Decompress>(::dlsym(lib, "BrotliDecoderDecompress"));
  std::string out(std::size_t{4} << 20, '\0');
  std::size_t size = out.size();
  BrotliDecoderResult r = decompress(data.size(), reinterpret_cast<const uint8_t*>(data.data()), &size,
                                     reinterpret_cast<uint8_t*>(out.data()));
  ::dlclose(lib);
  if (r != BROTLI_DECODER_RESULT_SUCCESS) return "<brotli error>";
  out.resize(size);
  return out;
}

std::string fox_lines() {
  std::string body;
  char line[64];
  for (int i = 0; i < 2000; ++i) {
    std::snprintf(line, sizeof line, "%05d The quick brown fox jumps over the lazy dog.\n", i);
    body += line;
  }
  return body;
}

// --- choosing ---------------------------------------------------------------------------------------

std::string choice(std::string_view accept) {
  CompressionOptions defaults;
  const ContentCodec* c = choose_codec(accept, defaults.codecs);
  return c ? std::string(c->name()) : "identity";
}

TEST(ChooseCodecTest, FollowsAcceptEncodingAndQValues) {
  EXPECT_EQ(choice("gzip"), "gzip");
  EXPECT_EQ(choice("br"), "br");
  EXPECT_EQ(choice("gzip, deflate, br"), "br");  // a tie: the server's preference
  EXPECT_EQ(choice("gzip;q=1.0, br;q=0.5"), "gzip");
  EXPECT_EQ(choice("br;q=0.2, gzip;q=0.8"), "gzip");
  EXPECT_EQ(choice("GZIP"), "gzip");
  EXPECT_EQ(choice("x-gzip"), "gzip");
  EXPECT_EQ(choice(" gzip ; q=0.5 "), "gzip");
}

TEST(ChooseCodecTest, RefusalsAndWildcards) {
  EXPECT_EQ(choice(""), "identity");
  EXPECT_EQ(choice("identity"), "identity");
  EXPECT_EQ(choice("deflate"), "identity");
  EXPECT_EQ(choice("gzip;q=0"), "identity");
  EXPECT_EQ(choice("gzip;q=0.000, br;q=0"), "identity");
  EXPECT_EQ(choice("*"), "br");
  EXPECT_EQ(choice("*;q=0, gzip"), "gzip");
  EXPECT_EQ(choice("br;q=0, *"), "gzip");
  EXPECT_EQ(choice("gzip;q=abc"), "identity");  // malformed: refused, never preferred
  EXPECT_EQ(choice("gzip;q=1.5"), "identity");
}

TEST(CompressibleTypeTest, TextAndKnownApplicationTypes) {
  EXPECT_TRUE(is_compressible_type("text/plain; charset=utf-8"));
  EXPECT_TRUE(is_compressible_type("text/html"));
  EXPECT_TRUE(is_compressible_type("application/json"));
  EXPECT_TRUE(is_compressible_type("Application/JavaScript"));
  EXPECT_TRUE(is_compressible_type("image/svg+xml"));
  EXPECT_FALSE(is_compressible_type("image/png"));
  EXPECT_FALSE(is_compressible_type("application/octet-stream"));
  EXPECT_FALSE(is_compressible_type(""));
}

TEST(CodecTest, EncodersRoundTrip) {
  std::string body = fox_lines();
  for (auto codec : {gzip_codec(), brotli_codec()}) {
    auto e = codec->make_encoder();
    std::string out;
    e->encode(body.substr(0, 1000), false, out);
    std::size_t flushed = out.size();
    EXPECT_GT(flushed, 0u);
    e->encode(body.substr(1000), true, out);
    EXPECT_LT(out.size(), body.size() / 5);
    std::string back = codec->name() == "gzip" ? gunzip(out) : unbrotli(out);
    EXPECT_TRUE(back == body) << codec->name() << ": " << back.substr(0, 60);
  }
  EXPECT_THROW(gzip_codec(10), std::invalid_argument);
  EXPECT_THROW(brotli_codec(12), std::invalid_argument);
}

// --- serving ----------------------------------------------------------------------------------------

class TextHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::string kind = get_argument("kind", "big");
    if (kind == "big") {
      set_header("Content-Type", "text/plain; charset=utf-8");
      write(fox_lines());
    } else if (kind == "small") {
      set_header("Content-Type", "text/plain; charset=utf-8");
      write("tiny");
    } else if (kind == "png") {
      set_header("Content-Type", "image/png");
      write(std::string(5000, 'p'));
    } else if (kind == "stream") {
      set_header("Content-Type", "text/plain; charset=utf-8");
      for (int i = 0; i < 3; ++i) {
        write("piece " + std::to_string(i) + "\n");
        co_await flush();
      }
    }
  }
};

/// A toy coding that upper-cases, to show codecs plug in.
class UpperCodec final : public ContentCodec {
  class Encoder final : public ContentEncoder {
   public:
    void encode(std::string_view in, bool, std::string& out) override {
      for (char c : in) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  };

 public:
  std::string_view name() const noexcept override { return "x-upper"; }
  std::unique_ptr<ContentEncoder> make_encoder() const override { return std::make_unique<Encoder>(); }
};

class CompressTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override { return {{"/text", handler<TextHandler>()}}; }
  Settings settings() override {
    Settings s;
    s.compress_response = compress();
    s.compression.codecs.push_back(std::make_shared<UpperCodec>());
    return s;
  }
  virtual bool compress() const { return true; }

  Future<http::HTTPResponse> fetch_with(std::string path, std::string accept, std::string method = "GET") {
    auto req = request(method, std::nullopt, {{"Accept-Encoding", accept}});
    auto r = co_await fetch(path, req);
    co_return r;
  }
};

SQUALL_ASYNC_TEST(CompressTest, GzipsWhatTheClientAccepts) {
  auto r = co_await fetch_with("/text", "gzip");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "gzip");
  EXPECT_EQ(r.headers.get("Vary", ""), "Accept-Encoding");
  EXPECT_EQ(r.headers.get("Content-Length", ""), std::to_string(r.body.size()));
  EXPECT_LT(r.body.size(), 20000u);
  EXPECT_TRUE(gunzip(r.body) == fox_lines());
}

SQUALL_ASYNC_TEST(CompressTest, PrefersBrotliWhenAccepted) {
  auto r = co_await fetch_with("/text", "gzip, deflate, br");
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "br");
  EXPECT_TRUE(unbrotli(r.body) == fox_lines()) << unbrotli(r.body).substr(0, 60);
}

SQUALL_ASYNC_TEST(CompressTest, NeverUsesARefusedCoding) {
  for (std::string accept : {"", "gzip;q=0", "identity", "br;q=0, gzip;q=0"}) {
    auto r = co_await fetch_with("/text", accept);
    EXPECT_FALSE(r.headers.contains("Content-Encoding")) << accept;
    EXPECT_TRUE(r.body == fox_lines());
    EXPECT_EQ(r.headers.get("Vary", ""), "Accept-Encoding");  // the answer still depends on it
  }
}

SQUALL_ASYNC_TEST(CompressTest, SmallAndIncompressibleBodiesAreLeftAlone) {
  auto r = co_await fetch_with("/text?kind=small", "gzip");
  EXPECT_FALSE(r.headers.contains("Content-Encoding"));
  EXPECT_EQ(r.body, "tiny");
  r = co_await fetch_with("/text?kind=png", "gzip");
  EXPECT_FALSE(r.headers.contains("Content-Encoding"));
  EXPECT_FALSE(r.headers.contains("Vary"));
  EXPECT_EQ(r.body.size(), 5000u);
}

SQUALL_ASYNC_TEST(CompressTest, StreamedResponsesAreCompressedAsTheyGo) {
  auto r = co_await fetch_with("/text?kind=stream", "gzip");
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "gzip");
  EXPECT_EQ(r.headers.get("Transfer-Encoding", ""), "chunked");
  EXPECT_EQ(gunzip(r.body), "piece 0\npiece 1\npiece 2\n");
}

SQUALL_ASYNC_TEST(CompressTest, HeadAnnouncesTheSameRepresentationAsGet) {
  auto g = co_await fetch_with("/text", "gzip");
  auto h = co_await fetch_with("/text", "gzip", "HEAD");
  EXPECT_EQ(h.body, "");
  EXPECT_EQ(h.headers.get("Content-Encoding", ""), "gzip");
  EXPECT_EQ(h.headers.get("Content-Length", ""), g.headers.get("Content-Length", ""));
  EXPECT_EQ(h.headers.get("Etag", ""), g.headers.get("Etag", ""));
}

SQUALL_ASYNC_TEST(CompressTest, CodecsArePluggable) {
  auto r = co_await fetch_with("/text", "x-upper");
  EXPECT_EQ(r.headers.get("Content-Encoding", ""), "x-upper");
  EXPECT_EQ(r.body.substr(0, 20), "00000 THE QUICK BROW");
}

class NoCompressTest : public CompressTest {
 protected:
  bool compress() const override { return false; }
};

SQUALL_ASYNC_TEST(NoCompressTest, OffUnlessTheSettingIsOn) {
  auto r = co_await fetch_with("/text", "gzip, br");
  EXPECT_FALSE(r.headers.contains("Content-Encoding"));
  EXPECT_FALSE(r.headers.contains("Vary"));
  EXPECT_TRUE(r.body == fox_lines());
}

}  // namespace
}  // namespace squall::web
