// Sha256: incremental SHA-256 over OpenSSL's EVP interface, for the form
// endpoint's file digests and /upload-stream. RAII over the EVP context.
#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace conformance {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  /// The digest of everything given, as 64 lower-case hex digits. Call once.
  std::string hex_digest();

 private:
  struct Free {
    void operator()(evp_md_ctx_st* ctx) const noexcept;
  };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

}  // namespace conformance
