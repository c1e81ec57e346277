// /cookie and /xsrf (contract 3.11, 3.12): the framework's signed cookies
// (HMAC-SHA256 under --cookie-secret, see Settings::cookie_secret) and XSRF
// tokens. Only /xsrf checks tokens: the xsrf_cookies setting stays off and
// XsrfHandler calls check_xsrf_cookie() itself once its body is in.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "bounded_body.hpp"
#include "conformance.hpp"
#include "squall/web/http_error.hpp"

namespace conformance {
namespace {

using squall::Future;
using squall::web::HTTPError;

bool valid_cookie_value(const std::string& value) {
  if (value.empty() || value.size() > 64) return false;
  for (unsigned char c : value) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

nlohmann::json or_null(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

class CookieHandler : public BoundedBodyHandler {
 public:
  using BoundedBodyHandler::BoundedBodyHandler;

  Future<void> get() override {
    // get_signed_cookie answers nullopt for anything forged, tampered with or
    // signed under another secret; get_cookie removes RFC 6265 quotes.
    write(nlohmann::json{{"plain", or_null(get_cookie("plain"))}, {"signed", or_null(get_signed_cookie("signed"))}});
    co_return;
  }

  Future<void> post() override {
    std::optional<std::string> value = get_body_argument("value", std::nullopt, /*strip=*/false);
    if (!value || !valid_cookie_value(*value)) throw HTTPError(400, "value must match [A-Za-z0-9._-]{1,64}");
    set_cookie("plain", *value, squall::http::CookieOptions{.path = "/"});
    set_signed_cookie("signed", *value, 30.0, squall::http::CookieOptions{.path = "/", .httponly = true});
    write(nlohmann::json{{"value", *value}});
    co_return;
  }
};

class XsrfHandler : public BoundedBodyHandler {
 public:
  using BoundedBodyHandler::BoundedBodyHandler;

  Future<void> get() override {
    // xsrf_token() sets the _xsrf cookie when the client has none.
    write(nlohmann::json{{"token", xsrf_token()}});
    co_return;
  }

  Future<void> post() override {
    RequestHandler::check_xsrf_cookie();  // the body field, X-XSRFToken or X-CSRFToken; else 403
    write(nlohmann::json{{"ok", true}});
    co_return;
  }

  // Checked in post(), once the streamed body is in (the framework checks
  // before prepare() when the xsrf_cookies setting is on, which it is not).
  void check_xsrf_cookie() override {}
};

}  // namespace

std::vector<squall::web::Rule> session_rules(const Config& config) {
  using squall::web::handler;
  return {
      {"/cookie", handler<CookieHandler>(config.max_body_size)},
      {"/xsrf", handler<XsrfHandler>(config.max_body_size)},
  };
}

}  // namespace conformance
