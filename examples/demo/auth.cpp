#include "demo/auth.hpp"

#include <nlohmann/json.hpp>

#include "demo/context.hpp"
#include "demo/password.hpp"
#include "squall/core/ioloop.hpp"

namespace demo {

namespace {

constexpr std::size_t kMaxUsername = 32;
constexpr std::size_t kMaxPassword = 1024;  // PBKDF2 hashes the password once per iteration

/// Letters, digits, '.', '_' and '-': names that need no escaping anywhere.
bool valid_username(const std::string& name) {
  if (name.empty() || name.size() > kMaxUsername) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

/// A hash to verify against when the user does not exist, so that a wrong
/// name takes as long as a wrong password (no user enumeration by timing).
const std::string& dummy_hash(int iterations) {
  static const std::string hash = hash_password("not a password", iterations);
  return hash;
}

}  // namespace

std::optional<std::string> BaseHandler::get_current_user() { return get_signed_cookie("user"); }

void BaseHandler::set_user_cookie(const std::string& username) {
  squall::http::CookieOptions options;
  options.httponly = true;
  options.samesite = "Lax";
  set_signed_cookie("user", username, 30.0, options);
}

std::string safe_next(const std::string& next) {
  // "/path" only: "//host" and "/\host" are other sites to browsers.
  if (next.size() < 1 || next[0] != '/' || (next.size() > 1 && (next[1] == '/' || next[1] == '\\'))) return "/";
  return next;
}

squall::Future<void> SignupHandler::get() {
  nlohmann::json data = {{"error", nullptr}, {"username", ""}};
  render("signup.html", data);
  co_return;
}

squall::Future<void> SignupHandler::post() {
  std::string username = get_body_argument("username", "");
  std::string password = get_body_argument("password", "", /*strip=*/false);
  std::string error;
  if (!valid_username(username)) {
    error = "Usernames are 1 to 32 letters, digits, '.', '_' or '-'.";
  } else if (password.empty() || password.size() > kMaxPassword) {
    error = "Choose a password (up to 1024 characters).";
  }
  if (error.empty()) {
    int iterations = context().config.password_iterations;
    // Named first: GCC 12 miscompiles a lambda temporary inside co_await.
    auto hash_it = [password, iterations] { return hash_password(password, iterations); };
    std::string hash = co_await squall::IOLoop::current().run_in_executor(nullptr, std::move(hash_it));
    bool created = co_await context().store.create_user(username, hash);
    if (created) {
      set_user_cookie(username);
      redirect("/");
      co_return;
    }
    set_status(409);
    error = "That username is taken.";
  } else {
    set_status(400);
  }
  nlohmann::json data = {{"error", error}, {"username", username}};
  render("signup.html", data);
}

squall::Future<void> LoginHandler::get() {
  nlohmann::json data = {{"error", nullptr}, {"username", ""}, {"next", safe_next(get_argument("next", "/"))}};
  render("login.html", data);
  co_return;
}

squall::Future<void> LoginHandler::post() {
  std::string username = get_body_argument("username", "");
  std::string password = get_body_argument("password", "", /*strip=*/false);
  std::string next = safe_next(get_argument("next", "/"));
  std::optional<std::string> stored;
  if (valid_username(username) && password.size() <= kMaxPassword) stored = co_await context().store.password_hash(username);
  int iterations = context().config.password_iterations;
  auto check = [password, stored, iterations] {
    if (!stored) {
      verify_password(password, dummy_hash(iterations));
      return false;
    }
    return verify_password(password, *stored);
  };
  bool ok = co_await squall::IOLoop::current().run_in_executor(nullptr, std::move(check));
  if (ok) {
    set_user_cookie(username);
    redirect(next);
    co_return;
  }
  set_status(403);
  nlohmann::json data = {{"error", "Wrong username or password."}, {"username", username}, {"next", next}};
  render("login.html", data);
}

squall::Future<void> LogoutHandler::post() {
  clear_cookie("user");
  redirect("/login");
  co_return;
}

}  // namespace demo
