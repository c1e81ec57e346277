// conformance: serves the conformance contract's endpoints on 127.0.0.1.
//
//   conformance --port 8080 [--static-root DIR] [--cookie-secret S]
//               [--max-body-size BYTES] [--idle-timeout SECONDS]
//   conformance --port 0        prints "listening on 127.0.0.1:<port>"
//   conformance --smoke         in-process self checks, exit status 0 if fine
//
// SIGTERM (or SIGINT) stops accepting, closes every connection and exits.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>

#include "conformance.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"
#include "squall/web/options.hpp"

namespace {

auto& port_option = squall::options::define<int>("port", -1, "TCP port on 127.0.0.1 (0: any free port)", "conformance");
auto& static_root_option =
    squall::options::define("static_root", "./static", "directory served under /static/", "conformance");
auto& cookie_secret_option = squall::options::define(
    "cookie_secret", std::string(conformance::kDevelopmentSecret).c_str(), "key of signed cookies", "conformance");
auto& max_body_size_option = squall::options::define<std::int64_t>(
    "max_body_size", 10 * 1024 * 1024, "largest request body (bytes), /upload-stream excepted", "conformance");
auto& idle_timeout_option = squall::options::define<std::chrono::seconds>(
    "idle_timeout", std::chrono::seconds(5), "header/idle timeout", "conformance");
auto& smoke_option = squall::options::define<bool>("smoke", false, "run quick self checks and exit", "conformance");

/// Stops accepting, closes every connection, then stops the loop; a timer
/// makes sure the loop stops even if some connection lingers.
squall::Future<void> shut_down(squall::web::Application& app) {
  squall::IOLoop& loop = squall::IOLoop::current();
  loop.call_later(std::chrono::seconds(3), [&loop] { loop.stop(); });
  for (const auto& server : app.servers()) server->stop();
  for (const auto& server : app.servers()) co_await server->close_all_connections();
  loop.stop();
}

int serve(const conformance::Config& config) {
  squall::IOLoop& loop = squall::IOLoop::current();
  std::unique_ptr<squall::web::Application> app = conformance::make_application(config);
  int port = conformance::listen(*app, config);
  auto on_signal = [&app](int) { (void)shut_down(*app); };
  loop.add_signal_handler(SIGTERM, on_signal);
  loop.add_signal_handler(SIGINT, on_signal);
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  loop.start();
  loop.remove_signal_handler(SIGTERM);
  loop.remove_signal_handler(SIGINT);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    squall::options::parse_command_line(argc, argv);
  } catch (const squall::options::Error& e) {
    std::fprintf(e.exit_code() == 0 ? stdout : stderr, "%s\n", e.what());
    return e.exit_code();
  }
  if (*smoke_option) return conformance::run_smoke();
  if (*port_option < 0 || *port_option > 65535) {
    std::fprintf(stderr, "--port N (0-65535) is required\n");
    return 2;
  }
  if (*max_body_size_option < 0 || *idle_timeout_option <= std::chrono::seconds(0)) {
    std::fprintf(stderr, "--max-body-size must be >= 0 and --idle-timeout > 0\n");
    return 2;
  }
  conformance::Config config;
  config.port = *port_option;
  config.static_root = *static_root_option;
  config.cookie_secret = *cookie_secret_option;
  config.max_body_size = static_cast<std::uint64_t>(*max_body_size_option);
  config.idle_timeout = *idle_timeout_option;
  try {
    return serve(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conformance: %s\n", e.what());
    return 1;
  }
}
