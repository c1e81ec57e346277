// Fuzzes the template engine: the input is compiled as a template (alone,
// and through a DictLoader where it can extend, include and be included by
// fixed templates, cycles included) and rendered with a small fixed data
// object under tight limits. Every failure must be a TemplateError: no
// crash, no hang, no runaway recursion or memory.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_util.hpp"
#include "squall/web/template.hpp"

using namespace squall::web;

namespace {

const nlohmann::json& data() {
  static const nlohmann::json d = nlohmann::json::parse(R"({
    "name": "<Ann & \"Bob\">", "n": 3, "x": 2.5, "flag": true, "none": null, "s": "h\u00e9llo w\u00f6rld",
    "items": [1, "two", 3.5, null, true, [4, 5], {"k": "v"}],
    "obj": {"a": 1, "b": [1, 2], "c": {"d": "deep"}, "items": "not a method"}
  })");
  return d;
}

TemplateOptions options() {
  TemplateOptions o;
  o.max_nesting = 64;
  o.max_output_bytes = std::size_t{1} << 16;
  o.max_iterations = 5000;
  o.functions["echo"] = [](const FunctionArgs& args) {
    return args.size() > 0 ? args[0] : nlohmann::json(nullptr);
  };
  return o;
}

void render(const Template& t) {
  try {
    std::string out = t.generate(data());
    // One append may pass the limit before it is checked; nothing more.
    SQUALL_FUZZ_CHECK(out.size() <= (std::size_t{1} << 16) * 8);
  } catch (const TemplateError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size > 8192) return 0;
  std::string source(reinterpret_cast<const char*>(bytes), size);
  static const TemplateOptions opts = options();

  try {
    render(Template(source, "fuzz.html", opts));
  } catch (const TemplateError&) {
  }
  try {
    render(Template(source, "fuzz.txt", opts));
  } catch (const TemplateError&) {
  }

  DictLoader loader(
      {
          {"main.html", source},
          {"base.html", "<t>{% block title %}T{% end %}</t>{% block body %}{% include 'inc.html' %}{% end %}"},
          {"inc.html", "[{{ n }}{% block inc %}{% end %}]"},
          {"loop.html", "{% include 'main.html' %}"},
          {"child.html", "{% extends 'main.html' %}{% block body %}child{% end %}{% block title %}c{% end %}"},
      },
      opts);
  for (const char* name : {"main.html", "child.html", "loop.html"}) {
    try {
      render(loader.load(name));
    } catch (const TemplateError&) {
    }
  }
  return 0;
}
