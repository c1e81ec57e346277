// The code shown in docs/guide/templates.md, compiled and run, so the guide
// cannot drift from the library: each block between "// guide:" markers
// appears verbatim in the chapter, and main() checks what the chapter says
// it does. Every block takes milliseconds, so `--smoke` (what CTest runs)
// and a plain run are the same program.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "squall/web/escape.hpp"
#include "squall/web/template.hpp"

namespace {

void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_templates: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

void first_template() {
  // guide: first template
  squall::web::Template t("<h1>{{ title }}</h1>\n"
                          "{% for item in items %}<li>{{ item }}</li>{% end %}");
  std::string html = t.generate({{"title", "Fish & Chips"}, {"items", {"cod", "haddock"}}});
  // html == "<h1>Fish &amp; Chips</h1>\n<li>cod</li><li>haddock</li>"
  // guide: end
  check(html == "<h1>Fish &amp; Chips</h1>\n<li>cod</li><li>haddock</li>", "first template output");
}

void loader(const std::filesystem::path& dir) {
  std::ofstream(dir / "base.html") << "<title>{% block title %}My site{% end %}</title>\n"
                                      "<main>{% block main %}{% end %}</main>\n";
  std::ofstream(dir / "article.html") << "{% extends \"base.html\" %}\n"
                                         "{% block title %}{{ article.title }}{% end %}\n"
                                         "{% block main %}{{ article.body }}{% end %}\n";
  std::string templates = dir.string();
  // guide: loader
  squall::web::Loader loader(templates);  // e.g. "templates", the directory of base.html
  nlohmann::json data = {{"article", {{"title", "Hello"}, {"body", "<p> is escaped"}}}};
  std::string page = loader.load("article.html").generate(data);
  // page == "<title>Hello</title>\n<main>&lt;p&gt; is escaped</main>\n"
  // guide: end
  check(page == "<title>Hello</title>\n<main>&lt;p&gt; is escaped</main>\n", "loader output");
}

void functions() {
  // guide: functions
  squall::web::TemplateOptions options;
  options.functions["money"] = [](const squall::web::FunctionArgs& args) {
    args.expect(1, 1, {"currency"});
    const nlohmann::json* currency = args.keyword("currency");
    std::string cents = std::to_string(args[0].get<long>() % 100);
    return nlohmann::json((currency ? currency->get<std::string>() : "$") + std::to_string(args[0].get<long>() / 100) +
                          "." + (cents.size() == 1 ? "0" : "") + cents);
  };
  squall::web::Template t("{{ money(price) }} or {{ money(price, currency='EUR ') }}", "price.txt", options);
  std::string text = t.generate({{"price", 1205}});
  // text == "$12.05 or EUR 12.05"
  // guide: end
  check(text == "$12.05 or EUR 12.05", "function output");
}

void per_call_functions() {
  squall::web::Template t("<img src=\"{{ static_url('logo.png') }}\">", "img.html");
  // guide: per-call functions
  squall::web::TemplateNamespace per_request;
  per_request["static_url"] = [](const squall::web::FunctionArgs& args) {
    return nlohmann::json("/static/" + args[0].get<std::string>() + "?v=abc123");
  };
  std::string html = t.generate(nlohmann::json::object(), &per_request);
  // html == "<img src=\"/static/logo.png?v=abc123\">"
  // guide: end
  check(html == "<img src=\"/static/logo.png?v=abc123\">", "per-call function output");
}

void errors() {
  std::string message;
  int line = 0;
  // guide: errors
  try {
    squall::web::Template t("<p>\n{{ user.name }}</p>", "profile.html");
    t.generate({{"user", {{"login", "ann"}}}});
  } catch (const squall::web::TemplateError& e) {
    message = e.what();  // "profile.html:2: 'dict' object has no attribute 'name'"
    line = e.lineno();   // 2, and e.filename() == "profile.html"
  }
  // guide: end
  check(message == "profile.html:2: 'dict' object has no attribute 'name'", "error text");
  check(line == 2, "error line");
}

void limits() {
  // guide: limits
  squall::web::TemplateOptions untrusted;
  untrusted.max_output_bytes = 1 << 20;  // 1 MiB per generate()
  untrusted.max_iterations = 100'000;    // loop iterations and built items per generate()
  untrusted.max_nesting = 50;            // nested tags, brackets, includes, blocks
  // guide: end
  bool stopped = false;
  try {
    squall::web::Template("{% while True %}{% end %}", "spin.txt", untrusted).generate(nullptr);
  } catch (const squall::web::TemplateError&) {
    stopped = true;
  }
  check(stopped, "limits stop a runaway loop");
}

void escaping() {
  // guide: escape
  std::string safe = squall::web::xhtml_escape("<a href='x'>");  // "&lt;a href=&#39;x&#39;&gt;"
  std::string script = squall::web::json_encode({{"end", "</script>"}});  // {"end": "<\/script>"}
  std::string link = squall::web::linkify("see http://example.com");
  // link == "see <a href=\"http://example.com\">http://example.com</a>"
  // guide: end
  check(safe == "&lt;a href=&#39;x&#39;&gt;", "xhtml_escape");
  check(script == "{\"end\": \"<\\/script>\"}", "json_encode");
  check(link == "see <a href=\"http://example.com\">http://example.com</a>", "linkify");
}

}  // namespace

int main() {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("squall_guide_templates_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  first_template();
  loader(dir);
  functions();
  per_call_functions();
  errors();
  limits();
  escaping();
  std::filesystem::remove_all(dir);
  std::printf("guide_snippets_templates: ok\n");
  return 0;
}
