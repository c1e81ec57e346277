// The conformance app: the endpoints of the conformance contract
// (docs/guide/conformance-app.md), built from squall's public API only. One
// source per concept: plain HTTP endpoints, the form endpoint, cookies and
// XSRF, the streamed upload, WebSocket; app.cpp puts them together.
// Everything runs on the one loop thread of the program.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "squall/http/httpserver.hpp"
#include "squall/net/netutil.hpp"
#include "squall/web/application.hpp"
#include "squall/web/routing.hpp"

namespace conformance {

/// Used when --cookie-secret is not given: fine for tests, never for a
/// deployment.
inline constexpr std::string_view kDevelopmentSecret = "conformance-development-secret-do-not-deploy";

/// The command line (section 1 of the contract), parsed.
struct Config {
  int port{0};
  std::string static_root{"./static"};
  std::string cookie_secret{kDevelopmentSecret};
  /// Largest body of every endpoint but /upload-stream.
  std::uint64_t max_body_size{10 * 1024 * 1024};
  /// Header/idle timeout (contract 2.6).
  std::chrono::seconds idle_timeout{5};
};

// The rules of each part, in the order app.cpp lists them.
std::vector<squall::web::Rule> http_rules(const Config& config);     // http_endpoints.cpp
std::vector<squall::web::Rule> form_rules(const Config& config);     // form_endpoint.cpp
std::vector<squall::web::Rule> session_rules(const Config& config);  // session_endpoints.cpp
std::vector<squall::web::Rule> upload_rules();                       // upload_endpoint.cpp
std::vector<squall::web::Rule> websocket_rules();                    // websocket_endpoints.cpp

/// The whole application for `config` (app.cpp).
std::unique_ptr<squall::web::Application> make_application(const Config& config);
/// The HTTPServer options `config` asks for (app.cpp).
squall::http::HTTPServerOptions server_options(const Config& config);
/// The listening socket options: a backlog of at least 1024 (contract 1).
squall::net::BindOptions bind_options();

/// Starts the app on 127.0.0.1:`config.port` on the current loop; returns
/// the port it listens on (app.cpp).
int listen(squall::web::Application& app, const Config& config);

/// --smoke: serves on a free port and checks a few endpoints in-process;
/// returns the exit status (smoke.cpp).
int run_smoke();

}  // namespace conformance
