// squall notes: a shared notes board, the program `make demo` runs. Sign up,
// post notes (with an optional attachment), and watch other people's notes
// appear live. See docs/guide/demo.md for a tour of how it is built.
//
//   demo [--port 8888] [--address 127.0.0.1] [--data-dir demo-data] [--db PATH]
//        [--cookie-secret S] [--template-path DIR] [--static-path DIR]
//   demo --smoke     serve on a free port, sign up and post a note in-process, exit 0
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "demo/app.hpp"
#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/url.hpp"
#include "squall/web/options.hpp"
#include "squall/websocket/client.hpp"

using namespace std::chrono_literals;

namespace {

auto& port = squall::options::define<int>("port", 8888, "listen on this port (0: any free port)");
auto& address = squall::options::define("address", "127.0.0.1", "listen on this address");
auto& data_dir = squall::options::define("data-dir", "demo-data", "directory of uploaded attachments");
auto& db = squall::options::define("db", "", "SQLite database file (default: <data-dir>/demo.db)");
auto& cookie_secret = squall::options::define("cookie-secret", "", "key of signed cookies (default: random per start)");
auto& template_path = squall::options::define("template-path", demo::default_template_path(), "templates directory");
auto& static_path = squall::options::define("static-path", demo::default_static_path(), "static files directory");
auto& smoke = squall::options::define<bool>("smoke", false, "run one sign-up and note round trip on a free port, exit");

/// The cookies a browser would keep between the smoke test's requests.
class CookieJar {
 public:
  void update(const squall::http::HTTPResponse& response) {
    for (std::string_view line : response.headers.get_list("Set-Cookie")) {
      std::string_view pair = line.substr(0, line.find(';'));
      std::size_t eq = pair.find('=');
      if (eq != std::string_view::npos) cookies_[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
    }
  }
  std::string header() const {
    std::string out;
    for (const auto& [name, value] : cookies_) out += (out.empty() ? "" : "; ") + name + "=" + value;
    return out;
  }
  const std::string& get(const std::string& name) const { return cookies_.at(name); }

 private:
  std::map<std::string, std::string> cookies_;
};

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("smoke: " + what);
}

/// Signs up, opens the live socket, posts a note through the JSON API and
/// checks it comes back on the socket, in the API and on the page.
squall::Future<void> smoke_round_trip(int port) {
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto client = squall::http::AsyncHTTPClient::create();
  CookieJar jar;

  squall::http::HTTPResponse page = co_await client->fetch(base + "/signup");
  jar.update(page);
  expect(page.body.find("<form id=\"signup\"") != std::string::npos, "no sign-up form");

  squall::http::HTTPRequest signup = client->request(base + "/signup");
  signup.method = "POST";
  signup.follow_redirects = false;
  signup.headers.add("Cookie", jar.header());
  signup.headers.add("Content-Type", "application/x-www-form-urlencoded");
  signup.body = "username=smoke&password=correct%20horse&_xsrf=" + squall::http::url_escape(jar.get("_xsrf"));
  squall::http::HTTPResponse signed_up = co_await client->fetch(signup, false);
  expect(signed_up.code == 302, "sign-up answered " + std::to_string(signed_up.code));
  jar.update(signed_up);

  squall::http::HTTPRequest ws_request;
  ws_request.url = "ws://127.0.0.1:" + std::to_string(port) + "/ws/notes";
  ws_request.headers.add("Cookie", jar.header());
  auto live = co_await squall::websocket::websocket_connect(ws_request);

  squall::http::HTTPRequest post = client->request(base + "/api/notes");
  post.method = "POST";
  post.headers.add("Cookie", jar.header());
  post.headers.add("X-XSRFToken", jar.get("_xsrf"));
  post.headers.add("Content-Type", "application/json");
  post.body = R"({"body": "hello from --smoke"})";
  squall::http::HTTPResponse posted = co_await client->fetch(post);
  expect(posted.code == 201, "POST /api/notes answered " + std::to_string(posted.code));

  auto pushed = co_await squall::with_timeout(5s, live.read_message());
  expect(pushed && nlohmann::json::parse(pushed->data)["note"]["body"] == "hello from --smoke", "no live update");
  live.close(1000);

  squall::http::HTTPRequest list = client->request(base + "/api/notes");
  list.headers.add("Cookie", jar.header());
  squall::http::HTTPResponse listed = co_await client->fetch(list);
  expect(nlohmann::json::parse(listed.body)["notes"][0]["body"] == "hello from --smoke", "note not listed");

  squall::http::HTTPRequest home = client->request(base + "/");
  home.headers.add("Cookie", jar.header());
  squall::http::HTTPResponse notes_page = co_await client->fetch(home);
  expect(notes_page.body.find("hello from --smoke") != std::string::npos, "note not on the page");
  co_await live.wait_closed();
  std::printf("smoke: signed up, posted a note, got it live, in the API and on the page\n");
}

int run_smoke(demo::Config config) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("squall-demo-smoke-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  config.data_dir = dir.string();
  config.db_path = (dir / "demo.db").string();
  std::filesystem::create_directories(dir);
  int status = 0;
  {
    auto app = demo::make_application(config);
    squall::http::HTTPServer& server = app->listen(0, "127.0.0.1");
    int bound = server.ports().at(0);
    try {
      squall::IOLoop::current().run_sync([bound] { return smoke_round_trip(bound); }, 30s);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      status = 1;
    }
  }
  std::filesystem::remove_all(dir);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    squall::options::parse_command_line(argc, argv);
  } catch (const squall::options::Error& e) {
    std::fprintf(e.exit_code() == 0 ? stdout : stderr, "%s\n", e.what());
    return e.exit_code();
  }

  demo::Config config;
  config.data_dir = *data_dir;
  config.db_path = db->empty() ? (std::filesystem::path(*data_dir) / "demo.db").string() : *db;
  config.cookie_secret = *cookie_secret;
  config.template_path = *template_path;
  config.static_path = *static_path;
  if (*smoke) return run_smoke(config);

  try {
    std::filesystem::create_directories(config.data_dir);
    auto app = demo::make_application(config);
    squall::http::HTTPServerOptions server_options;
    server_options.max_body_size = config.max_attachment_size + 64 * 1024;  // the form's other fields
    squall::http::HTTPServer& server = app->listen(*port, *address, server_options);
    std::printf("squall notes on http://%s:%d/ (data in %s; Ctrl-C stops)\n", address->c_str(),
                server.ports().at(0), config.data_dir.c_str());
    std::fflush(stdout);
    auto stop = [](int) { squall::IOLoop::current().stop(); };
    squall::IOLoop::current().add_signal_handler(SIGINT, stop);
    squall::IOLoop::current().add_signal_handler(SIGTERM, stop);
    squall::IOLoop::current().start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
