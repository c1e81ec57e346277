// Form bodies: urlencoded and multipart/form-data (Tornado's
// MultipartFormDataTest cases), the streaming MultipartParser fed at every
// split point, limit errors, and linear time on 10,000 tiny parts.
#include "squall/http/body_arguments.hpp"

#include <gtest/gtest.h>

#include "../support/exact_input.hpp"

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

namespace squall::http {
namespace {

using testing::Exact;

struct Parsed {
  QueryArguments arguments;
  Files files;
};

Parsed multipart(std::string_view body, std::string_view boundary = "1234", const MultipartLimits& limits = {}) {
  Parsed p;
  parse_multipart_form_data(boundary, Exact(body).view(), p.arguments, p.files, limits);
  return p;
}

/// Records every delegate call as text, so two feeds can be compared.
class Recorder : public MultipartDelegate {
 public:
  void part_begin(const MultipartPart& part) override {
    log += "[" + part.name + "|" + part.filename + "|" + part.content_type + "]";
  }
  void part_data(std::string_view chunk) override { log.append(chunk); }
  void part_end() override { log += "<end>"; }
  std::string log;
};

const std::string kFileBody =
    "--1234\r\n"
    "Content-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\r\n"
    "\r\n"
    "Foo\r\n"
    "--1234--";

TEST(MultipartTest, ParsesAFilePart) {
  Parsed p = multipart(kFileBody);
  ASSERT_EQ(p.files["files"].size(), 1u);
  const HTTPFile& f = p.files["files"][0];
  EXPECT_EQ(f.filename, "ab.txt");
  EXPECT_EQ(f.body, "Foo");
  EXPECT_EQ(f.content_type, "application/unknown");
  EXPECT_TRUE(p.arguments.empty());
}

TEST(MultipartTest, ParsesFieldsFilesContentTypesAndUnicodeNames) {
  std::string body =
      "preamble to ignore\r\n"
      "--1234\r\n"
      "Content-Disposition: form-data; name=\"a\"\r\n"
      "\r\n"
      "1\r\n"
      "--1234\r\n"
      "Content-Disposition: form-data; name=\"a\"\r\n"
      "\r\n"
      "\r\n"
      "--1234  \t\r\n"
      "Content-Disposition: form-data; name=\"up\"; filename=\"\xc3\xa1" "b.txt\"\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "line1\r\nline2\r\n--12345 is not a boundary\r\n"
      "--1234--\r\n"
      "epilogue to ignore";
  Parsed p = multipart(body);
  EXPECT_EQ(p.arguments["a"], (std::vector<std::string>{"1", ""}));
  ASSERT_EQ(p.files["up"].size(), 1u);
  EXPECT_EQ(p.files["up"][0].filename, "\xc3\xa1" "b.txt");
  EXPECT_EQ(p.files["up"][0].content_type, "text/plain");
  EXPECT_EQ(p.files["up"][0].body, "line1\r\nline2\r\n--12345 is not a boundary");
}

TEST(MultipartTest, QuotedBoundaryAndEscapedFilename) {
  // Tornado's test_boundary_starts_and_ends_with_quotes and test_special_filenames.
  std::string body =
      "--1234\r\n"
      "Content-Disposition: form-data; name=\"files\"; filename=\"a\\\";b.txt\"\r\n"
      "\r\n"
      "Foo\r\n"
      "--1234--";
  Parsed p = multipart(body, "\"1234\"");
  EXPECT_EQ(p.files["files"][0].filename, "a\";b.txt");
}

TEST(MultipartTest, AnEmptyFilenameMakesAnArgument) {
  std::string body =
      "--1234\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\nx\r\n--1234--";
  Parsed p = multipart(body);
  EXPECT_EQ(p.arguments["f"], (std::vector<std::string>{"x"}));
  EXPECT_TRUE(p.files.empty());
}

// Found by fuzz/multipart: a part whose Content-Type field is empty gave a
// file with an empty content type; it now gets the default, as a missing one.
TEST(MultipartTest, AnEmptyPartContentTypeMeansTheDefault) {
  std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''%e2%82%ac\r\nContent-Type:  \r\n\r\n"
      "x\r\n--b--";
  Parsed p = multipart(body, "b");
  ASSERT_EQ(p.files["f"].size(), 1u);
  EXPECT_EQ(p.files["f"][0].filename, "\xe2\x82\xac");
  EXPECT_EQ(p.files["f"][0].content_type, "application/unknown");
}

// Found by fuzz/multipart: "--b\t--b" split after the tab was read as
// padding followed by a close delimiter, though whole it is an error.
TEST(MultipartParserTest, ADashAfterPaddingIsAnErrorHoweverTheBytesArrive) {
  std::string body = "-tio\r\n@b\r\n-tio\r\n--b\t--b\t\t\t";
  for (std::size_t i = 0; i <= body.size(); ++i) {
    Recorder r;
    MultipartParser parser("b", r);
    EXPECT_THROW(
        {
          parser.feed(Exact(std::string_view(body).substr(0, i)).view());
          parser.feed(Exact(std::string_view(body).substr(i)).view());
          parser.finish();
        },
        HTTPInputError)
        << "split at " << i;
  }
}

TEST(MultipartTest, MalformedBodiesAre400) {
  auto status = [](std::string_view body) {
    try {
      multipart(body);
    } catch (const HTTPInputError& e) {
      return e.status();
    }
    return 0;
  };
  // Tornado's test_missing_headers, test_invalid_content_disposition,
  // test_line_does_not_end_with_correct_line_break, test_content_disposition_header_without_name_parameter.
  EXPECT_EQ(status("--1234\r\n\r\nFoo\r\n--1234--"), 400);
  EXPECT_EQ(status("--1234\r\nContent-Disposition: invalid; name=\"files\"; filename=\"ab.txt\"\r\n\r\nFoo\r\n--1234--"), 400);
  EXPECT_EQ(status("--1234\r\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\r\n\r\nFoo--1234--"), 400);
  EXPECT_EQ(status("--1234\r\nContent-Disposition: form-data; filename=\"ab.txt\"\r\n\r\nFoo\r\n--1234--"), 400);
  // No final boundary, a body without any, junk after a boundary, bad header lines.
  EXPECT_EQ(status("--1234\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nFoo\r\n"), 400);
  EXPECT_EQ(status(""), 400);
  EXPECT_EQ(status("--1234x\r\n--1234--"), 0);  // "--1234x" is preamble, not a boundary
  EXPECT_EQ(status("--1234 x\r\n"), 400);
  EXPECT_EQ(status("--1234-x"), 400);
  EXPECT_EQ(status("--1234\r\nno colon\r\n\r\nFoo\r\n--1234--"), 400);
  EXPECT_EQ(status("--1234\r\n Content-Disposition: form-data; name=a\r\n\r\nx\r\n--1234--"), 400);
  EXPECT_EQ(status("--1234\rx"), 400);
  EXPECT_EQ(status("--1234--"), 0);
}

TEST(MultipartTest, BadBoundariesAre400) {
  EXPECT_THROW(multipart("--\r\n", ""), HTTPInputError);
  EXPECT_THROW(multipart("--\r\n", "\"\""), HTTPInputError);
  EXPECT_THROW(multipart("x", std::string(71, 'b')), HTTPInputError);
  EXPECT_NO_THROW(multipart("--" + std::string(70, 'b') + "--", std::string(70, 'b')));
}

TEST(MultipartTest, TooManyPartsIs400) {
  std::string body;
  for (int i = 0; i < 3; ++i) body += "--1234\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n";
  body += "--1234--";
  EXPECT_EQ(multipart(body, "1234", {.max_parts = 3}).arguments["a"].size(), 3u);
  try {
    multipart(body, "1234", {.max_parts = 2});
    FAIL() << "no exception";
  } catch (const HTTPInputError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("too many parts"), std::string::npos);
  }
}

TEST(MultipartTest, AnOversizedPartHeaderIs400) {
  std::string header = "Content-Disposition: form-data; name=\"a\"\r\nX-Pad: " + std::string(200, 'p');
  std::string body = "--1234\r\n" + header + "\r\n\r\nv\r\n--1234--";
  EXPECT_NO_THROW(multipart(body, "1234", {.max_part_header_size = header.size()}));
  EXPECT_THROW(multipart(body, "1234", {.max_part_header_size = header.size() - 1}), HTTPInputError);
  // Also when the header never ends, without buffering past the limit.
  std::string endless = "--1234\r\n" + std::string(100000, 'h');
  EXPECT_THROW(multipart(endless, "1234", {.max_part_header_size = 1000}), HTTPInputError);
}

TEST(MultipartParserTest, GivesTheSameCallsAtEverySplitPoint) {
  std::string body =
      "junk\r\n--bb\r\n"
      "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
      "value\r\n-\r\n--b\r\n-bb\r\n--bbx\r\n"
      "--bb\t \r\n"
      "Content-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: image/png\r\n\r\n"
      "\r\n\r\n"
      "\r\n--bb--\r\nepilogue";
  Recorder whole;
  {
    MultipartParser parser("bb", whole);
    parser.feed(Exact(body).view());
    parser.finish();
  }
  EXPECT_EQ(whole.log, "[a||application/unknown]value\r\n-\r\n--b\r\n-bb\r\n--bbx<end>[f|x.bin|image/png]\r\n\r\n<end>");
  for (std::size_t i = 0; i <= body.size(); ++i) {
    for (std::size_t j = i; j <= body.size(); j += 7) {
      Recorder split;
      MultipartParser parser("bb", split);
      parser.feed(Exact(std::string_view(body).substr(0, i)).view());
      parser.feed(Exact(std::string_view(body).substr(i, j - i)).view());
      parser.feed(Exact(std::string_view(body).substr(j)).view());
      parser.finish();
      ASSERT_EQ(split.log, whole.log) << "split at " << i << ", " << j;
    }
  }
  Recorder bytewise;
  MultipartParser parser("bb", bytewise);
  for (char c : body) parser.feed(Exact(std::string_view(&c, 1)).view());
  parser.finish();
  EXPECT_EQ(bytewise.log, whole.log);
  EXPECT_TRUE(parser.done());
}

TEST(MultipartParserTest, BuffersOnlyABoundaryWorthOfData) {
  // A big upload fed in chunks reaches the delegate as it arrives.
  struct Counter : MultipartDelegate {
    void part_begin(const MultipartPart&) override {}
    void part_data(std::string_view chunk) override { bytes += chunk.size(); }
    void part_end() override { ++ends; }
    std::size_t bytes = 0;
    int ends = 0;
  } counter;
  MultipartParser parser("boundary", counter);
  parser.feed("--boundary\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big\"\r\n\r\n");
  std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 64; ++i) {
    parser.feed(chunk);
    EXPECT_GE(counter.bytes + std::string_view("\r\n--boundary").size(), (i + 1) * chunk.size());
  }
  parser.feed("\r\n--boundary--");
  parser.finish();
  EXPECT_EQ(counter.bytes, 64 * chunk.size());
  EXPECT_EQ(counter.ends, 1);
}

TEST(MultipartParserTest, AFailedParserKeepsFailingAndADelegateMayStopIt) {
  Recorder r;
  MultipartParser parser("bb", r);
  EXPECT_THROW(parser.feed("--bb-x"), HTTPInputError);
  EXPECT_THROW(parser.feed("--bb--"), HTTPInputError);
  EXPECT_THROW(parser.finish(), HTTPInputError);

  struct Refuser : MultipartDelegate {
    void part_begin(const MultipartPart&) override { throw std::runtime_error("no uploads here"); }
    void part_data(std::string_view) override {}
    void part_end() override {}
  } refuser;
  MultipartParser stopped("bb", refuser);
  EXPECT_THROW(stopped.feed("--bb\r\nContent-Disposition: form-data; name=a\r\n\r\n"), std::runtime_error);
  EXPECT_THROW(stopped.feed("x"), HTTPInputError);
}

// Guards against Tornado's quadratic multipart parsing (CVE fix in 6.4.2):
// 10,000 tiny parts parse in linear time once max_parts allows them.
TEST(MultipartTest, TenThousandTinyPartsParseInLinearTime) {
  std::string body;
  for (int i = 0; i < 10000; ++i) body += "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n";
  body += "--B--";
  EXPECT_THROW(multipart(body, "B"), HTTPInputError);  // the default max_parts is 100
  auto start = std::chrono::steady_clock::now();
  Parsed p = multipart(body, "B", {.max_parts = 10000});
  EXPECT_EQ(p.arguments["a"].size(), 10000u);
  Recorder r;
  MultipartParser parser("B", r, {.max_parts = 10000});
  for (char c : body) parser.feed(std::string_view(&c, 1));
  parser.finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// A boundary-like run that never completes: each byte is compared a bounded
// number of times.
TEST(MultipartTest, NearMissBoundariesParseInLinearTime) {
  std::string boundary(70, 'a');
  std::string body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n";
  for (int i = 0; i < 20000; ++i) body += "\r\n--" + std::string(69, 'a') + "b";
  body += "\r\n--" + boundary + "--";
  auto start = std::chrono::steady_clock::now();
  Parsed p = multipart(body, boundary);
  EXPECT_EQ(p.arguments["x"][0].size(), 20000u * 74);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ParseBodyArgumentsTest, ParsesUrlencodedBodiesKeepingBlanks) {
  Parsed p;
  p.arguments["a"] = {"0"};
  parse_body_arguments("application/x-www-form-urlencoded; charset=UTF-8", Exact("a=1&b=&c+d=%41").view(),
                       p.arguments, p.files);
  EXPECT_EQ(p.arguments["a"], (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(p.arguments["b"], (std::vector<std::string>{""}));
  EXPECT_EQ(p.arguments["c d"], (std::vector<std::string>{"A"}));
}

TEST(ParseBodyArgumentsTest, ParsesMultipartBodiesWithTheirBoundary) {
  Parsed p;
  parse_body_arguments("multipart/form-data; boundary=1234", kFileBody, p.arguments, p.files);
  EXPECT_EQ(p.files["files"][0].body, "Foo");
  Parsed q;
  parse_body_arguments("Multipart/Form-Data; boundary=\"1234\"", kFileBody, q.arguments, q.files);
  EXPECT_EQ(q.files["files"][0].body, "Foo");
}

TEST(ParseBodyArgumentsTest, MissingBoundaryIs400AndOtherTypesAreIgnored) {
  Parsed p;
  EXPECT_THROW(parse_body_arguments("multipart/form-data", kFileBody, p.arguments, p.files), HTTPInputError);
  EXPECT_THROW(parse_body_arguments("multipart/form-data; boundary=", kFileBody, p.arguments, p.files), HTTPInputError);
  parse_body_arguments("application/json", "{\"a\": 1}", p.arguments, p.files);
  parse_body_arguments("", "a=1", p.arguments, p.files);
  EXPECT_TRUE(p.arguments.empty());
  EXPECT_TRUE(p.files.empty());
}

// The examples of docs/guide/http-utilities.md: an upload streamed to a
// sink part by part, never held whole.
class UploadSink : public MultipartDelegate {
 public:
  void part_begin(const MultipartPart& part) override {
    current_ = part.is_file() ? part.filename : part.name;
    sizes_[current_] = 0;
  }
  void part_data(std::string_view chunk) override { sizes_[current_] += chunk.size(); }
  void part_end() override {}
  const std::map<std::string, std::size_t>& sizes() const { return sizes_; }

 private:
  std::string current_;
  std::map<std::string, std::size_t> sizes_;
};

TEST(BodyArgumentsGuideTest, StreamingAnUpload) {
  UploadSink sink;
  MultipartParser parser("XyZ", sink, {.max_parts = 10});
  // In a stream_request_body handler, each data_received chunk goes to feed().
  parser.feed("--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\r\nhel");
  parser.feed("lo\r\n--XyZ--\r\n");
  parser.finish();  // throws HTTPInputError if the body was cut short
  EXPECT_EQ(sink.sizes().at("a.txt"), 5u);
}

TEST(BodyArgumentsGuideTest, WholeBodies) {
  QueryArguments arguments;
  Files files;
  parse_body_arguments("application/x-www-form-urlencoded", "name=Ada&lang=c%2B%2B", arguments, files);
  EXPECT_EQ(arguments["lang"], (std::vector<std::string>{"c++"}));
}

}  // namespace
}  // namespace squall::http
