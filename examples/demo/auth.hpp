// Users: the handlers' common base (who is logged in, from the signed
// `user` cookie) and sign-up, login and logout. Passwords are hashed on the
// loop's default executor (PBKDF2 is slow on purpose) and users are stored
// through NoteStore.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "squall/web/request_handler.hpp"

namespace demo {

struct Context;

/// Every page and API handler of the demo derives from this.
class BaseHandler : public squall::web::RequestHandler {
 public:
  void initialize(const std::shared_ptr<Context>& context) { context_ = context; }
  /// The username in the signed `user` cookie (Tornado's usual pattern).
  std::optional<std::string> get_current_user() override;

 protected:
  Context& context() { return *context_; }
  /// Logs `username` in: the signed, HttpOnly `user` cookie.
  void set_user_cookie(const std::string& username);

 private:
  std::shared_ptr<Context> context_;
};

class SignupHandler : public BaseHandler {
 public:
  squall::Future<void> get() override;
  squall::Future<void> post() override;
};

class LoginHandler : public BaseHandler {
 public:
  squall::Future<void> get() override;
  squall::Future<void> post() override;
};

class LogoutHandler : public BaseHandler {
 public:
  squall::Future<void> post() override;
};

/// `next` if it is a path on this site, else "/": a login link cannot send
/// the user to another site (an open redirect).
std::string safe_next(const std::string& next);

}  // namespace demo
