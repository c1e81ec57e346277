// The exceptions a request handler throws to end a request (Tornado's
// tornado.web.HTTPError, MissingArgumentError and Finish). Plain values; any
// thread may construct them.
#pragma once

#include <string>

#include "squall/core/errors.hpp"

namespace squall::web {

/// Thrown anywhere in a handler (prepare, a verb, a helper it calls) to
/// answer with `status` instead of 500 (Tornado's HTTPError).
///
///   if (!story) throw squall::web::HTTPError(404, "story " + id + " not found");
///
/// `log_message` goes to the log (a warning, with the request), never to
/// the client; `reason` replaces the standard reason phrase of the status
/// line. The response body is what RequestHandler::write_error makes.
class HTTPError : public Error {
 public:
  explicit HTTPError(int status = 500, std::string log_message = {}, std::string reason = {});

  int status() const noexcept { return status_; }
  const std::string& log_message() const noexcept { return log_message_; }
  /// The reason phrase to send: `reason`, or the standard one for status.
  const std::string& reason() const noexcept { return reason_; }

 private:
  int status_;
  std::string log_message_;
  std::string reason_;
};

/// A required argument was not given (RequestHandler::get_argument without
/// a default): a 400 whose log message names the argument.
class MissingArgumentError : public HTTPError {
 public:
  explicit MissingArgumentError(std::string arg_name);
  const std::string& arg_name() const noexcept { return arg_name_; }

 private:
  std::string arg_name_;
};

/// Ends the request without an error (Tornado's Finish): the handler's
/// response is finished as it stands (finish() is called if it was not).
/// Thrown by redirecting helpers such as RequestHandler::authenticated.
class Finish : public Error {
 public:
  Finish() : Error("Finish") {}
};

}  // namespace squall::web
