// The snippets of docs/guide/static-files.md, compiled. `--smoke` serves a
// temporary directory and fetches a versioned asset and a range from it.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/web/application.hpp"
#include "squall/web/static_file_handler.hpp"

namespace {

class PageHandler : public squall::web::RequestHandler {
 public:
  squall::Future<void> get() override {
    write("<link rel=\"stylesheet\" href=\"" + static_url("app.css") + "\">");
    co_return;
  }
};

std::vector<squall::web::Rule> docs_rules(const std::string& docs_dir) {
std::vector<squall::web::Rule> rules = {
    {"/docs/(.*)", squall::web::handler<squall::web::StaticFileHandler>(docs_dir, "index.html")},
};
  return rules;
}

int fail(const char* what) {
  std::fprintf(stderr, "guide_snippets_static: %s\n", what);
  return 1;
}

squall::Future<int> check(int port) {
  auto& client = squall::http::AsyncHTTPClient::instance();
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto page = co_await client.fetch(base + "/");
  auto start = page.body.find("/static/app.css?v=");
  if (start == std::string::npos) co_return fail("no versioned URL in the page");
  std::string url = page.body.substr(start, page.body.find('"', start) - start);
  auto css = co_await client.fetch(base + url);
  if (css.body != "body { color: teal; }" || css.headers.get("Cache-Control", "") != "max-age=315360000") {
    co_return fail("the versioned asset");
  }
  auto req = client.request(base + "/docs/");
  req.headers.add("Range", "bytes=0-5");
  auto index = co_await client.fetch(req);
  if (index.code != 206 || index.body != "<h1>Do") co_return fail("the range of the docs index");
  co_return 0;
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/squall-static-example-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  std::string static_dir = (dir / "static").string();
  std::string docs_dir = (dir / "docs").string();
  std::filesystem::create_directories(static_dir);
  std::filesystem::create_directories(docs_dir);
  std::ofstream(dir / "static" / "app.css") << "body { color: teal; }";
  std::ofstream(dir / "docs" / "index.html") << "<h1>Docs</h1>";

  int status = 1;
  {
squall::web::Settings settings;
squall::web::use_static_files(settings, static_dir);
squall::web::Application app({{"/", squall::web::handler<PageHandler>()}}, settings);
    app.add_handlers(".*", docs_rules(docs_dir));
    int port = app.listen(0, "127.0.0.1").ports().front();
    status = squall::IOLoop::current().run_sync([&] { return check(port); }, std::chrono::seconds(10));
  }
  std::filesystem::remove_all(dir);
  if (status == 0) std::puts("static files: ok");
  return status;
}
