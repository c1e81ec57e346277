// BoundedBodyHandler: see bounded_body.hpp.
#include "bounded_body.hpp"

#include <charconv>
#include <string>

#include "squall/web/http_error.hpp"

namespace conformance {

squall::Future<void> BoundedBodyHandler::prepare() {
  // The connection has already checked that Content-Length is 1*DIGIT.
  std::string_view length = request().headers.get("Content-Length", "");
  std::uint64_t declared = 0;
  auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), declared);
  if (!length.empty() && (ec != std::errc() || declared > max_body_size_)) {
    throw squall::web::HTTPError(413);
  }
  co_return;
}

squall::Future<void> BoundedBodyHandler::data_received(std::string_view chunk) {
  std::string& body = request().body;
  if (body.size() + chunk.size() > max_body_size_) throw squall::web::HTTPError(413);
  body.append(chunk);
  co_return;
}

}  // namespace conformance
