// RequestHandler's cookies, signed cookies, XSRF tokens and authentication
// (Tornado's get/set_cookie, set/get_signed_cookie, xsrf_token,
// check_xsrf_cookie, current_user, @authenticated).
#include <stdexcept>

#include "squall/http/url.hpp"
#include "squall/web/application.hpp"
#include "squall/web/request_handler.hpp"
#include "squall/web/signed_value.hpp"
#include "squall/web/xsrf.hpp"
#include "web/handler_extras.hpp"

namespace squall::web {

namespace {

const CookieSecret& require_secret(const Settings& s) {
  if (!s.cookie_secret) {
    throw std::logic_error("the cookie_secret setting is needed by signed cookies and XSRF");
  }
  return *s.cookie_secret;
}

}  // namespace

std::optional<std::string> RequestHandler::get_cookie(std::string_view name) {
  const auto& cookies = request_->cookies();
  auto it = cookies.find(std::string(name));
  if (it == cookies.end()) return std::nullopt;
  return it->second;
}

std::string RequestHandler::get_cookie(std::string_view name, std::string_view default_value) {
  auto v = get_cookie(name);
  return v ? std::move(*v) : std::string(default_value);
}

void RequestHandler::set_cookie(std::string_view name, std::string_view value, const http::CookieOptions& options) {
  std::string header = http::format_set_cookie(name, value, options);  // validates: throws first
  auto& cookies = extras().new_cookies;
  for (auto& [n, h] : cookies) {
    if (n == name) {
      h = std::move(header);
      return;
    }
  }
  cookies.emplace_back(std::string(name), std::move(header));
}

void RequestHandler::clear_cookie(std::string_view name, std::string_view path, std::string_view domain) {
  http::CookieOptions options;
  options.path = std::string(path);
  options.domain = std::string(domain);
  options.expires = std::chrono::system_clock::now() - std::chrono::hours(24 * 365);
  set_cookie(name, "", options);
}

void RequestHandler::clear_all_cookies(std::string_view path, std::string_view domain) {
  std::vector<std::string> names;
  for (const auto& [name, value] : request_->cookies()) names.push_back(name);
  for (const std::string& name : names) {
    try {
      clear_cookie(name, path, domain);
    } catch (const std::invalid_argument&) {
      // A request cookie whose name we could not even write back: skip it.
    }
  }
}

std::string RequestHandler::create_signed_value(std::string_view name, std::string_view value) {
  return web::create_signed_value(require_secret(settings()), name, value);
}

void RequestHandler::set_signed_cookie(std::string_view name, std::string_view value,
                                       std::optional<double> expires_days, http::CookieOptions options) {
  std::string signed_value = create_signed_value(name, value);
  if (expires_days && !options.expires && !options.max_age) {
    options.expires = std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          std::chrono::duration<double, std::ratio<86400>>(*expires_days));
  }
  set_cookie(name, signed_value, options);
}

std::optional<std::string> RequestHandler::get_signed_cookie(std::string_view name, double max_age_days) {
  const CookieSecret& secret = require_secret(settings());
  auto cookie = get_cookie(name);
  if (!cookie) return std::nullopt;
  DecodeSignedValueOptions options;
  options.max_age_days = max_age_days;
  return decode_signed_value(secret, name, *cookie, options);
}

// --- XSRF ---------------------------------------------------------------------------------------

const std::string& RequestHandler::xsrf_token() {
  Extras& x = extras();
  if (x.xsrf_token) return *x.xsrf_token;
  const Settings& s = settings();
  std::optional<XsrfToken> raw;
  if (auto cookie = get_cookie(kXsrfCookieName)) raw = decode_xsrf_token(*cookie);
  bool fresh = !raw;
  if (fresh) raw = generate_xsrf_token();
  x.xsrf_token = encode_xsrf_token(*raw, s.xsrf_cookie_version == 1 ? 1 : 2);
  if (fresh) {
    http::CookieOptions options = s.xsrf_cookie_options;
    // Tornado: a logged-in user's token outlives the browser session.
    if (!options.expires && !options.max_age && current_user()) {
      options.expires = std::chrono::system_clock::now() + std::chrono::hours(24 * 30);
    }
    set_cookie(kXsrfCookieName, *x.xsrf_token, options);
  }
  return *x.xsrf_token;
}

std::string RequestHandler::xsrf_form_html() { return web::xsrf_form_html(xsrf_token()); }

void RequestHandler::check_xsrf_cookie() {
  std::string submitted;
  if (auto arg = get_argument(kXsrfArgumentName, std::nullopt)) submitted = std::move(*arg);
  if (submitted.empty()) submitted = std::string(request_->headers.get(kXsrfHeaderName, ""));
  if (submitted.empty()) submitted = std::string(request_->headers.get(kCsrfHeaderName, ""));
  std::string cookie = get_cookie(kXsrfCookieName, "");
  XsrfCheck result = check_xsrf_token(submitted, cookie);
  if (result != XsrfCheck::ok) {
    std::string message(xsrf_check_message(result));
    throw HTTPError(403, message);
  }
}

// --- authentication -----------------------------------------------------------------------------

const std::optional<std::string>& RequestHandler::current_user() {
  Extras& x = extras();
  if (!x.current_user_loaded) {
    x.current_user = get_current_user();
    x.current_user_loaded = true;
  }
  return x.current_user;
}

void RequestHandler::set_current_user(std::optional<std::string> user) {
  Extras& x = extras();
  x.current_user = std::move(user);
  x.current_user_loaded = true;
}

void RequestHandler::authenticated() {
  if (current_user()) return;
  std::string_view method = request_->method;
  if (method == "GET" || method == "HEAD") {
    std::string url = get_login_url();
    if (url.find('?') == std::string::npos) {
      // Tornado: an absolute login URL gets an absolute next URL.
      std::string next = http::split_url(url).scheme.empty() ? request_->uri : request_->full_url();
      url += "?next=" + http::url_escape(next);
    }
    redirect(url);
    throw Finish();
  }
  throw HTTPError(403);
}

}  // namespace squall::web
