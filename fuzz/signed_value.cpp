// Fuzzes signed values and XSRF tokens on arbitrary bytes:
// decode_signed_value (both versions, single and versioned secrets),
// get_signature_key_version and decode_xsrf_token must never crash or throw;
// what they accept must re-encode to something that decodes the same; and
// any bytes signed by create_signed_value (or encoded as an XSRF token) must
// decode back to themselves. The secret and name are those of Tornado's
// test vector, so corpus seeds made from it are valid values.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "squall/web/signed_value.hpp"
#include "squall/web/xsrf.hpp"

using namespace squall::web;

namespace {

const std::chrono::system_clock::time_point kNow{std::chrono::seconds(1300000010)};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const CookieSecret single = "It's a secret to everybody";
  static const CookieSecret versioned =
      CookieSecret::versioned({{0, "asdfbasdf"}, {1, "12312312"}, {2, "2342342"}}, 1);
  std::string_view input(reinterpret_cast<const char*>(data), size);

  DecodeSignedValueOptions lenient{.max_age_days = 31, .min_version = 1, .now = kNow};
  for (const CookieSecret* secret : {&single, &versioned}) {
    auto value = decode_signed_value(*secret, "key", input, lenient);
    auto strict = decode_signed_value(*secret, "key", input, {.now = kNow});
    SQUALL_FUZZ_CHECK(!strict || strict == value);
    if (value) {
      std::string again = create_signed_value(*secret, "key", *value, {.now = kNow});
      SQUALL_FUZZ_CHECK(decode_signed_value(*secret, "key", again, {.now = kNow}) == value);
    }
  }
  if (auto key_version = get_signature_key_version(input)) SQUALL_FUZZ_CHECK(*key_version >= 0);

  std::string signed_input = create_signed_value(versioned, "n", input, {.now = kNow});
  SQUALL_FUZZ_CHECK(decode_signed_value(versioned, "n", signed_input, {.now = kNow}) == input);
  SQUALL_FUZZ_CHECK(get_signature_key_version(signed_input) == 1);

  auto token = decode_xsrf_token(input, kNow);
  if (token) {
    SQUALL_FUZZ_CHECK(!token->token.empty() && (token->version == 1 || token->version == 2));
    auto back = decode_xsrf_token(encode_xsrf_token(*token), kNow);
    SQUALL_FUZZ_CHECK(back && back->token == token->token && back->timestamp == token->timestamp);
    SQUALL_FUZZ_CHECK(check_xsrf_token(input, encode_xsrf_token(*token, 1)) == XsrfCheck::ok);
  } else {
    SQUALL_FUZZ_CHECK(check_xsrf_token(input, input) != XsrfCheck::ok);
  }
  if (!input.empty()) {
    XsrfToken raw;
    raw.token = std::string(input);
    SQUALL_FUZZ_CHECK(decode_xsrf_token(encode_xsrf_token(raw), kNow)->token == input);
  }
  return 0;
}
