// PUT /upload-stream (contract 3.15): the body is hashed as it arrives and
// never held whole; --max-body-size does not apply. While data_received's
// work is synchronous the connection keeps reading, so memory stays at the
// connection's read buffer plus one chunk.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

#include "conformance.hpp"
#include "sha256.hpp"
#include "squall/web/request_handler.hpp"

namespace conformance {
namespace {

class UploadStreamHandler : public squall::web::RequestHandler {
 public:
  static constexpr bool stream_request_body = true;

  squall::Future<void> data_received(std::string_view chunk) override {
    sha_.update(chunk);
    size_ += chunk.size();
    return squall::Future<void>(nullptr);  // done at once: no coroutine frame per chunk
  }

  squall::Future<void> put() override {
    write(nlohmann::json{{"size", size_}, {"sha256", sha_.hex_digest()}});
    co_return;
  }

 private:
  Sha256 sha_;
  std::uint64_t size_ = 0;
};

}  // namespace

std::vector<squall::web::Rule> upload_rules() {
  return {{"/upload-stream", squall::web::handler<UploadStreamHandler>()}};
}

}  // namespace conformance
