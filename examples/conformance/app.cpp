// The conformance application: every part's rules, the settings, and the
// server options that carry the contract's limits and timeouts.
#include <limits>
#include <utility>

#include "conformance.hpp"
#include "squall/web/static_file_handler.hpp"

namespace conformance {

std::unique_ptr<squall::web::Application> make_application(const Config& config) {
  std::vector<squall::web::Rule> rules;
  auto add = [&rules](std::vector<squall::web::Rule> more) {
    for (squall::web::Rule& rule : more) rules.push_back(std::move(rule));
  };
  add(http_rules(config));
  add(form_rules(config));
  add(session_rules(config));
  add(upload_rules());
  add(websocket_rules());
  // 3.16: the handler percent-decodes the path once and confines it to the
  // root (403/404 otherwise); directories are 403 without a default file.
  rules.push_back({"/static/(.*)", squall::web::handler<squall::web::StaticFileHandler>(config.static_root)});

  squall::web::Settings settings{
      .compress_response = true,  // 2.7: gzip (or br) when accepted, Vary: Accept-Encoding
      .cookie_secret = config.cookie_secret,
      // A client that leaves cancels its handler (a /sleep stops waiting).
      .cancel_on_disconnect = true,
      // 4.2: messages up to 16 MiB are accepted (the default is 10 MiB).
      .websocket = {.max_message_size = std::size_t{16} * 1024 * 1024},
  };
  return std::make_unique<squall::web::Application>(std::move(rules), std::move(settings));
}

squall::http::HTTPServerOptions server_options(const Config& config) {
  squall::http::HTTPServerOptions options;
  // /upload-stream takes bodies of any size; every other endpoint that takes
  // a body sets --max-body-size as its request's limit (BoundedBodyHandler).
  options.max_body_size = std::numeric_limits<std::uint64_t>::max();
  // 2.6: a whole request head within --idle-timeout of the accept or of the
  // previous response, not restarted by arriving bytes.
  options.header_timeout = config.idle_timeout;
  options.idle_connection_timeout = config.idle_timeout;
  return options;
}

squall::net::BindOptions bind_options() {
  squall::net::BindOptions bind;
  bind.backlog = 1024;
  return bind;
}

int listen(squall::web::Application& app, const Config& config) {
  squall::http::HTTPServer& server = app.listen(config.port, "127.0.0.1", server_options(config), bind_options());
  return server.ports().at(0);
}

}  // namespace conformance
