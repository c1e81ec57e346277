// Helpers shared by the web tests: request builders for AsyncHTTPTest's
// fetch and an Application fixture that takes its rules from the test.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "squall/http/httpclient.hpp"
#include "squall/testing/http.hpp"
#include "squall/web/application.hpp"

namespace squall::web::test {

/// A request with a method, an optional body and extra headers. Build it
/// in a variable before `co_await fetch(...)` (GCC 12 and temporaries in
/// co_await expressions).
inline http::HTTPRequest request(std::string method, std::optional<std::string> body = std::nullopt,
                                 std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::HTTPRequest r;
  r.method = std::move(method);
  r.body = std::move(body);
  for (auto& [name, value] : headers) r.headers.add(name, value);
  r.follow_redirects = false;
  r.decompress_response = false;
  return r;
}

inline http::HTTPRequest get(std::vector<std::pair<std::string, std::string>> headers = {}) {
  return request("GET", std::nullopt, std::move(headers));
}

/// An AsyncHTTPTest whose application is made from rules() and settings().
class WebTest : public testing::AsyncHTTPTest {
 protected:
  virtual std::vector<Rule> rules() = 0;
  virtual Settings settings() { return {}; }
  std::unique_ptr<http::HTTPServerConnectionDelegate> get_app() override {
    auto app = std::make_unique<Application>(rules(), settings());
    app_ = app.get();
    return app;
  }
  Application& application() { return *app_; }

 private:
  Application* app_ = nullptr;
};

}  // namespace squall::web::test
