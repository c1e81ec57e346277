// Fuzzes multipart/form-data parsing: MultipartParser fed whole and in three
// pieces must make the same delegate calls and fail alike, and
// parse_body_arguments on a Content-Type line plus a body must only ever
// throw HTTPInputError.
//
// Input: byte 0 picks the boundary length (1-16), the next bytes are the
// boundary, bytes after it pick two split points, the rest is the body. The
// whole input is also read as "Content-Type line \n body".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "squall/http/body_arguments.hpp"

using namespace squall::http;

namespace {

class Recorder : public MultipartDelegate {
 public:
  void part_begin(const MultipartPart& part) override {
    SQUALL_FUZZ_CHECK(!in_part_ && !part.name.empty() && !part.content_type.empty());
    in_part_ = true;
    log_ += "[" + part.name + "|" + part.filename + "|" + part.content_type + "]";
  }
  void part_data(std::string_view chunk) override {
    SQUALL_FUZZ_CHECK(in_part_ && !chunk.empty());
    log_.append(chunk);
  }
  void part_end() override {
    SQUALL_FUZZ_CHECK(in_part_);
    in_part_ = false;
    log_ += "<end>";
  }
  const std::string& log() const { return log_; }

 private:
  bool in_part_ = false;
  std::string log_;
};

/// Runs a parser over `pieces`; returns false if it threw HTTPInputError.
bool run(std::string_view boundary, std::initializer_list<std::string_view> pieces, Recorder& recorder,
         const MultipartLimits& limits) {
  try {
    MultipartParser parser(boundary, recorder, limits);
    for (std::string_view piece : pieces) parser.feed(piece);
    parser.finish();
    SQUALL_FUZZ_CHECK(parser.done());
    return true;
  } catch (const HTTPInputError& e) {
    SQUALL_FUZZ_CHECK(e.status() == 400);
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const MultipartLimits limits{.max_parts = 20, .max_part_header_size = 256};

  if (size >= 3) {
    std::size_t blen = 1 + data[0] % 16;
    if (size >= 1 + blen + 2) {
      std::string_view boundary = input.substr(1, blen);
      std::string_view body = input.substr(1 + blen + 2);
      std::size_t a = body.empty() ? 0 : data[1 + blen] % (body.size() + 1);
      std::size_t b = body.empty() ? 0 : data[2 + blen] % (body.size() + 1);
      if (a > b) std::swap(a, b);
      Recorder whole, split;
      bool ok_whole = run(boundary, {body}, whole, limits);
      bool ok_split = run(boundary, {body.substr(0, a), body.substr(a, b - a), body.substr(b)}, split, limits);
      SQUALL_FUZZ_CHECK(ok_whole == ok_split);
      if (ok_whole) SQUALL_FUZZ_CHECK(whole.log() == split.log());
      // The non-streaming parser agrees with the streaming one.
      QueryArguments arguments;
      Files files;
      bool ok_batch = true;
      try {
        parse_multipart_form_data(boundary, body, arguments, files, limits);
      } catch (const HTTPInputError&) {
        ok_batch = false;
      }
      SQUALL_FUZZ_CHECK(ok_batch == ok_whole);
    }
  }

  std::size_t nl = input.find('\n');
  if (nl != std::string_view::npos) {
    QueryArguments arguments;
    Files files;
    try {
      parse_body_arguments(input.substr(0, nl), input.substr(nl + 1), arguments, files, limits);
      for (const auto& [name, list] : files) {
        for (const HTTPFile& f : list) SQUALL_FUZZ_CHECK(!f.filename.empty());
      }
    } catch (const HTTPInputError& e) {
      SQUALL_FUZZ_CHECK(e.status() == 400);
    }
  }
  return 0;
}
