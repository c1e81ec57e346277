// Request body arguments (Tornado's httputil.parse_body_arguments):
// application/x-www-form-urlencoded and multipart/form-data, whole or
// streamed part by part through MultipartParser. Pure functions; a
// MultipartParser is a plain object used by one thread at a time.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "squall/http/headers.hpp"
#include "squall/http/url.hpp"

namespace squall::http {

/// An uploaded file of a multipart/form-data body.
struct HTTPFile {
  std::string filename{};
  std::string content_type{};  // "application/unknown" when the part names none (or an empty one)
  std::string body{};
};

/// Uploaded files by form field name.
using Files = std::map<std::string, std::vector<HTTPFile>>;

/// Limits on multipart/form-data bodies (Tornado 6.5's ParseMultipartConfig);
/// exceeding one is an HTTPInputError(400).
struct MultipartLimits {
  std::size_t max_parts = 100;                 // parts in one body
  std::size_t max_part_header_size = 10 * 1024;  // bytes of one part's header block
};

/// Adds the arguments and files of a request body to `arguments` and
/// `files`. form-urlencoded bodies go through parse_qs (blank values
/// kept); multipart/form-data through parse_multipart_form_data with the
/// `boundary` parameter of `content_type`. Other content types are ignored.
/// Throws HTTPInputError(400) on a malformed body or an exceeded limit.
void parse_body_arguments(std::string_view content_type, std::string_view body, QueryArguments& arguments,
                          Files& files, const MultipartLimits& limits = {});

/// Parses a whole multipart/form-data body (RFC 7578) with `boundary` (its
/// surrounding quotes, if any, are removed). Parts with a non-empty
/// filename become files, others arguments. The preamble and epilogue are
/// ignored; a missing final boundary is an error. Throws HTTPInputError(400).
void parse_multipart_form_data(std::string_view boundary, std::string_view data, QueryArguments& arguments,
                               Files& files, const MultipartLimits& limits = {});

/// One part's head, given to MultipartDelegate::part_begin.
struct MultipartPart {
  HTTPHeaders headers{};
  std::string name{};          // Content-Disposition's name, never empty
  std::string filename{};      // Content-Disposition's filename, empty for a plain field
  std::string content_type{};  // the part's Content-Type, "application/unknown" if absent or empty
  bool is_file() const noexcept { return !filename.empty(); }
};

/// Receives a multipart body part by part. A delegate that throws stops the
/// parser: the exception propagates out of feed() and the parser is failed.
class MultipartDelegate {
 public:
  virtual ~MultipartDelegate() = default;
  /// A part's headers were read; its data follows. `part` lives until the call returns.
  virtual void part_begin(const MultipartPart& part) = 0;
  /// Part data, in order; `chunk` is valid only during the call.
  virtual void part_data(std::string_view chunk) = 0;
  /// The current part is complete.
  virtual void part_end() = 0;
};

/// A streaming multipart/form-data parser for bodies that must not be held
/// whole (RequestHandler::data_received). Feed it the body in chunks of any
/// size; it calls the delegate as parts arrive and buffers at most one
/// part header block or one boundary's length of data. Linear in the bytes
/// fed: the boundary is searched once per byte, never rescanned from the
/// start of a part.
///
/// States: kPreamble (before the first boundary), kBoundaryTail (just
/// after a boundary: "--" ends the body), kBoundaryPadding (spaces and tabs,
/// then CRLF), kHeaders, kBody, kEpilogue (after the final boundary,
/// ignored), kFailed.
class MultipartParser {
 public:
  /// `delegate` must outlive the parser. Throws HTTPInputError(400) if
  /// `boundary` is empty or longer than 70 bytes (RFC 2046 section 5.1.1);
  /// surrounding quotes are removed first.
  MultipartParser(std::string_view boundary, MultipartDelegate& delegate, const MultipartLimits& limits = {});

  /// Consumes the next chunk of the body. Throws HTTPInputError(400) on
  /// malformed input or an exceeded limit; after any exception the parser
  /// is failed and every later call throws.
  void feed(std::string_view chunk);
  /// Declares the end of the body; throws HTTPInputError(400) if the final
  /// boundary has not been seen.
  void finish();
  /// True once the final boundary was read.
  bool done() const noexcept { return state_ == State::kEpilogue; }

 private:
  enum class State : unsigned char { kPreamble, kBoundaryTail, kBoundaryPadding, kHeaders, kBody, kEpilogue, kFailed };
  std::size_t process(std::string_view data);
  std::size_t find_delimiter(std::string_view data) const noexcept;
  [[noreturn]] void fail(const char* why);
  void begin_part(std::string_view header_block);

  MultipartDelegate& delegate_;
  MultipartLimits limits_;
  std::string delimiter_;  // "\r\n--" + boundary
  std::string buffer_;     // unconsumed bytes carried to the next feed
  std::size_t scanned_ = 0;  // bytes of buffer_ already searched for the end of a header block
  std::size_t parts_ = 0;
  State state_ = State::kPreamble;
};

}  // namespace squall::http
