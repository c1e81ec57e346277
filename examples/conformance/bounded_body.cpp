// BoundedBodyHandler: see bounded_body.hpp.
#include "bounded_body.hpp"

#include "squall/http/server_request.hpp"

namespace conformance {

squall::Future<void> BoundedBodyHandler::prepare() {
  // prepare() of a streaming handler runs before the body is read: the
  // connection checks Content-Length (and a chunked body's running total)
  // against this limit, for this request only.
  request().connection()->set_max_body_size(max_body_size_);
  return squall::Future<void>(nullptr);
}

squall::Future<void> BoundedBodyHandler::data_received(std::string_view chunk) {
  request().body.append(chunk);
  return squall::Future<void>(nullptr);
}

}  // namespace conformance
