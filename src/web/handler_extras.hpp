// RequestHandler::Extras: the per-request state most requests never touch
// (form bodies, cookies to set, XSRF, the current user, a custom reason
// phrase), allocated on first use so a plain handler stays small.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "squall/http/body_arguments.hpp"
#include "squall/http/url.hpp"
#include "squall/web/request_handler.hpp"

namespace squall::web {

struct RequestHandler::Extras {
  std::string reason;  // set_status's reason phrase, "" for the standard one
  std::optional<http::QueryArguments> body_arguments;
  http::Files files;
  std::vector<std::pair<std::string, std::string>> new_cookies;  // name, Set-Cookie value
  bool current_user_loaded = false;
  std::optional<std::string> current_user;
  std::optional<std::string> xsrf_token;  // this response's encoded token
};

}  // namespace squall::web
