#include "squall/web/http_error.hpp"

#include "squall/http/httputil.hpp"

namespace squall::web {

namespace {
/// Tornado's HTTPError.__str__: "HTTP 404: Not Found (no such story)".
std::string describe(int status, const std::string& log_message, const std::string& reason) {
  std::string s = "HTTP " + std::to_string(status) + ": " + reason;
  if (!log_message.empty()) s += " (" + log_message + ")";
  return s;
}
std::string reason_for(int status, std::string reason) {
  if (reason.empty()) reason = std::string(http::responses(status));
  return reason;
}
}  // namespace

HTTPError::HTTPError(int status, std::string log_message, std::string reason)
    : Error(describe(status, log_message, reason_for(status, reason))),
      status_(status),
      log_message_(std::move(log_message)),
      reason_(reason_for(status, std::move(reason))) {}

MissingArgumentError::MissingArgumentError(std::string arg_name)
    : HTTPError(400, "Missing argument " + arg_name), arg_name_(std::move(arg_name)) {}

}  // namespace squall::web
