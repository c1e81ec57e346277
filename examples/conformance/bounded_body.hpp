// BoundedBodyHandler: the base of every endpoint that takes a body, except
// /upload-stream. The server itself accepts bodies of any size (so that
// /upload-stream can take 1 GiB); these handlers stream the body in and set
// --max-body-size as their request's limit from prepare()
// (HTTPConnection::set_max_body_size, contract 2.5): the connection then
// refuses a Content-Length above it with 413 before any of the body is read
// (and before a 100 Continue is sent), and a chunked body that grows past it
// with 413 as soon as it does. The body ends up in request().body, so the
// form getters (body_arguments(), get_argument(), files()) work as usual.
#pragma once

#include <cstdint>
#include <string_view>

#include "squall/core/future.hpp"
#include "squall/web/request_handler.hpp"

namespace conformance {

class BoundedBodyHandler : public squall::web::RequestHandler {
 public:
  static constexpr bool stream_request_body = true;

  explicit BoundedBodyHandler(std::uint64_t max_body_size) : max_body_size_(max_body_size) {}

  squall::Future<void> prepare() override;
  squall::Future<void> data_received(std::string_view chunk) override;

 private:
  std::uint64_t max_body_size_;
};

}  // namespace conformance
