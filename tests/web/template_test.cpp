// Templates: every construct of Tornado's template language, the expression
// language, inheritance and includes, autoescape and whitespace modes, the
// loaders, errors with their template and line, limits, and a cross-check
// that renders the same templates and data with Debian's Tornado 6.2 and
// compares the output byte for byte.
#include "squall/web/template.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "../support/run_program.hpp"
#include "squall/web/escape.hpp"

namespace squall::web {
namespace {

using nlohmann::json;

std::string render(std::string_view source, const json& data = json::object(), TemplateOptions options = {}) {
  return Template(source, "<string>", std::move(options)).generate(data);
}

/// The TemplateError `source` raises when compiled and rendered.
std::string error_of(std::string_view source, const json& data = json::object(), std::string name = "t.txt") {
  try {
    Template(source, name).generate(data);
  } catch (const TemplateError& e) {
    return e.what();
  }
  return "(no error)";
}

// --- output and expressions ---

TEST(TemplateTest, RendersTextAndExpressions) {
  EXPECT_EQ(render("Hello {{ name }}!", {{"name", "Ben"}}), "Hello Ben!");
  EXPECT_EQ(render("no tags at all"), "no tags at all");
  EXPECT_EQ(render(""), "");
  EXPECT_EQ(render("{{ 1 + 2 }}{{ 'a' }}{{ \"b\" }}"), "3ab");
  EXPECT_EQ(render("a { b } c {x"), "a { b } c {x");
  EXPECT_EQ(render("trailing {"), "trailing {");
}

TEST(TemplateTest, AutoescapesByDefaultAndRawDoesNot) {
  json data = {{"html", "<b>\"x\" & 'y'</b>"}};
  EXPECT_EQ(render("{{ html }}", data), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
  EXPECT_EQ(render("{% raw html %}", data), "<b>\"x\" & 'y'</b>");
  // escape() under autoescape escapes twice, as in Tornado.
  EXPECT_EQ(render("{{ escape('<') }}"), "&amp;lt;");
  EXPECT_EQ(render("{% raw escape('<') %}"), "&lt;");
  EXPECT_EQ(render("{% autoescape None %}{{ html }}", data), "<b>\"x\" & 'y'</b>");
  EXPECT_EQ(render("{{ html }}", data, {.autoescape = std::nullopt}), "<b>\"x\" & 'y'</b>");
  // The last {% autoescape %} applies to the whole file, as in Tornado.
  EXPECT_EQ(render("{{ html }}{% autoescape None %}", data), "<b>\"x\" & 'y'</b>");
  // Any function may be the autoescape function; it gets the str() of the value.
  EXPECT_EQ(render("{% autoescape json_encode %}{{ html }}{{ 5 }}", data),
            "\"<b>\\\"x\\\" & 'y'<\\/b>\"\"5\"");
  EXPECT_EQ(render("{% autoescape url_escape %}{{ 'a b&c' }}"), "a+b%26c");
}

TEST(TemplateTest, PrintsValuesAsPythonsStr) {
  json data = {{"n", nullptr}, {"t", true}, {"f", false}, {"i", -7}, {"u", 18446744073709551615ULL},
               {"x", 2.5},     {"one", 1.0}, {"big", 1e16}, {"small", 1e-5},
               {"list", json::array({1, "a'b", nullptr, true, 0.5, json::array()})},
               {"obj", {{"k", "v"}, {"q", "it's \"q\""}}}};
  EXPECT_EQ(render("{{ n }} {{ t }} {{ f }} {{ i }} {{ u }}", data), "None True False -7 18446744073709551615");
  EXPECT_EQ(render("{{ x }} {{ one }} {{ big }} {{ small }} {{ 1 / 3 }}", data),
            "2.5 1.0 1e+16 1e-05 0.3333333333333333");
  EXPECT_EQ(render("{% raw list %}|{% raw obj %}", data),
            "[1, \"a'b\", None, True, 0.5, []]|{'k': 'v', 'q': 'it\\'s \"q\"'}");
  EXPECT_EQ(render("{% raw ['x\"', \"y'\", 'tab\\t\\x01'] %}"), "['x\"', \"y'\", 'tab\\t\\x01']");
  EXPECT_EQ(render("{% raw escape %}"), "<function escape>");
}

TEST(TemplateTest, EvaluatesArithmeticWithPythonSemantics) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
            "3 -4 -2 2 1024 0.5");
  EXPECT_EQ(render("{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 / 4 }} {{ 10 / 5 }} {{ 3 * 1.5 }}"), "3.0 0.5 0.25 2.0 4.5");
  EXPECT_EQ(render("{{ True + True }} {{ -(3) }} {{ +2 }} {{ 1 - 2 - 3 }} {{ 2 * 3 + 4 * 5 }} {{ (2 + 3) * 4 }}"),
            "2 -3 2 -4 26 20");
  EXPECT_EQ(render("{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 2 * 'x' }} {{ [1] + [2] }} {{ [0] * 3 }} {{ 'x' * -1 }}"),
            "abcd ababab xx [1, 2] [0, 0, 0] ");
  EXPECT_EQ(render("{{ 1_000 + 0x10 }} {{ 1e3 }} {{ .5 }} {{ 2. }}"), "1016 1000.0 0.5 2.0");
  EXPECT_NE(error_of("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("{{ 9223372036854775807 + 1 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("unsupported operand type(s) for +: 'str' and 'int'"), std::string::npos);
  EXPECT_NE(error_of("{{ '%s' % 1 }}").find("not supported"), std::string::npos);
}

TEST(TemplateTest, ComparesAndCombinesLikePython) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ True == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}"),
            "True False True True True True");
  EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ None is None }} "
                   "{{ 1 is not None }}"),
            "True True True True True True");
  EXPECT_EQ(render("{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ [] and 1 }} {{ not '' }} {{ not 0 == 1 }}"), "x b [] True True");
  EXPECT_EQ(render("{{ 'yes' if 1 > 0 else 'no' }} {{ 'yes' if [] else 'no' }}"), "yes no");
  EXPECT_NE(error_of("{{ 1 < 'a' }}").find("'<' not supported between instances of 'int' and 'str'"),
            std::string::npos);
}

TEST(TemplateTest, AccessesAttributesItemsAndSlices) {
  json data = {{"user", {{"name", "Ann"}, {"tags", {"a", "b", "c"}}, {"addr", {{"city", "Oslo"}}}}},
               {"s", "h\xc3\xa9llo"}, {"key", "name"}};
  EXPECT_EQ(render("{{ user.name }} {{ user['name'] }} {{ user[key] }} {{ user.addr.city }} {{ user.tags[-1] }}", data),
            "Ann Ann Ann Oslo c");
  EXPECT_EQ(render("{{ user.tags[1:] }} {{ user.tags[::-1] }} {{ s[1] }} {{ s[:2] }} {{ s[-3:] }} {{ len(s) }}", data),
            "[&#39;b&#39;, &#39;c&#39;] [&#39;c&#39;, &#39;b&#39;, &#39;a&#39;] \xc3\xa9 h\xc3\xa9 llo 5");
  EXPECT_EQ(render("{{ user.get('nope', 'dflt') }} {{ user.get('name') }} {{ user.get('x') }}", data), "dflt Ann None");
  EXPECT_EQ(render("{{ [1, 2, 3][1] }} {{ {'a': 1}['a'] }} {{ (1, 2)[0] }} {{ () }}"), "2 1 1 []");
  EXPECT_NE(error_of("{{ user.nme }}", data).find("'dict' object has no attribute 'nme'"), std::string::npos);
  EXPECT_NE(error_of("{{ user['nme'] }}", data).find("KeyError: 'nme'"), std::string::npos);
  EXPECT_NE(error_of("{{ user.tags[5] }}", data).find("list index out of range"), std::string::npos);
}

TEST(TemplateTest, CallsBuiltinsAndMethods) {
  json data = {{"xs", {3, 1, 2}}, {"d", {{"b", 2}, {"a", 1}}}, {"s", "  Hello World  "}};
  EXPECT_EQ(render("{{ len(xs) }} {{ sorted(xs) }} {{ sorted(xs, reverse=True) }} {{ min(xs) }} {{ max(3, 9) }} "
                   "{{ sum(xs) }} {{ list(reversed(xs)) }} {{ abs(-4) }}",
                   data),
            "3 [1, 2, 3] [3, 2, 1] 1 9 6 [2, 1, 3] 4");
  EXPECT_EQ(render("{{ range(3) }} {{ range(1, 7, 2) }} {{ range(3, 0, -1) }} {{ enumerate('ab') }}"),
            "[0, 1, 2] [1, 3, 5] [3, 2, 1] [[0, &#39;a&#39;], [1, &#39;b&#39;]]");
  EXPECT_EQ(render("{{ int('42') + int(3.9) }} {{ float('1.5') }} {{ str(5) + 'x' }} {{ bool([]) }} {{ any([0, 1]) }} "
                   "{{ all([]) }}"),
            "45 1.5 5x False True True");
  EXPECT_EQ(render("{{ s.strip() }}|{{ s.lower() }}|{{ s.upper() }}|{{ s.split() }}|{{ '-'.join(['a', 'b']) }}|"
                   "{{ 'a,b,,c'.split(',') }}|{{ s.strip().replace('l', 'L') }}|{{ s.strip().startswith('He') }}",
                   data, {.autoescape = std::nullopt}),
            "Hello World|  hello world  |  HELLO WORLD  |['Hello', 'World']|a-b|['a', 'b', '', 'c']|HeLLo WorLd|True");
  EXPECT_EQ(render("{{ d.keys() }} {{ d.values() }} {{ d.items() }} {{ [1, 2, 1].count(1) }} {{ [5, 6].index(6) }}",
                   data, {.autoescape = std::nullopt}),
            "['a', 'b'] [1, 2] [['a', 1], ['b', 2]] 2 1");
  EXPECT_EQ(render("{{ json_encode({'a': '</x>'}) }} {{ url_escape('a b') }} {{ url_escape('a b', plus=False) }} "
                   "{{ squeeze('  a   b ') }}",
                   data, {.autoescape = std::nullopt}),
            "{\"a\": \"<\\/x>\"} a+b a%20b a b");
  EXPECT_EQ(render("{% raw linkify('see http://x.org') %}"), "see <a href=\"http://x.org\">http://x.org</a>");
  EXPECT_NE(error_of("{{ len(5) }}").find("object of type 'int' has no len()"), std::string::npos);
  EXPECT_NE(error_of("{{ len() }}").find("len() takes 1 positional arguments but 0 were given"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x'.nosuch() }}").find("'str' object has no attribute 'nosuch'"), std::string::npos);
  EXPECT_NE(error_of("{{ 5() }}").find("'int' object is not callable"), std::string::npos);
}

TEST(TemplateTest, UndefinedNamesAreErrorsNamingTheVariable) {
  std::string e = error_of("line one\n{{ missing_var }}");
  EXPECT_EQ(e, "t.txt:2: name 'missing_var' is not defined");
  // Only the branch taken is evaluated.
  EXPECT_EQ(render("{% if False %}{{ nowhere }}{% end %}ok"), "ok");
  EXPECT_EQ(render("{{ x }}", {{"x", 1}}), "1");
  EXPECT_EQ(render("no names", nullptr), "no names");
  EXPECT_NE(error_of("x", json::array()).find("generate() needs an object"), std::string::npos);
}

// --- statements ---

TEST(TemplateTest, IfElifElse) {
  const char* src = "{% if n > 1 %}many{% elif n == 1 %}one{% else %}none{% end %}";
  EXPECT_EQ(render(src, {{"n", 5}}), "many");
  EXPECT_EQ(render(src, {{"n", 1}}), "one");
  EXPECT_EQ(render(src, {{"n", 0}}), "none");
  EXPECT_EQ(render("{% if x %}{% if y %}xy{% else %}x{% end %}{% end %}", {{"x", 1}, {"y", 0}}), "x");
}

TEST(TemplateTest, ForOverListsObjectsStringsAndItems) {
  json data = {{"xs", {"a", "b"}}, {"d", {{"k1", "v1"}, {"k2", "v2"}}}, {"pairs", {{1, 2}, {3, 4}}}};
  EXPECT_EQ(render("{% for x in xs %}[{{ x }}]{% end %}", data), "[a][b]");
  EXPECT_EQ(render("{% for k in d %}{{ k }};{% end %}", data), "k1;k2;");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% end %}", data), "k1=v1;k2=v2;");
  EXPECT_EQ(render("{% for kv in d.items() %}{{ kv[0] }}{% end %}", data), "k1k2");
  EXPECT_EQ(render("{% for v in d.values() %}{{ v }}{% end %}{% for k in d.keys() %}{{ k }}{% end %}", data),
            "v1v2k1k2");
  EXPECT_EQ(render("{% for a, b in pairs %}{{ a + b }},{% end %}", data), "3,7,");
  EXPECT_EQ(render("{% for (i, x) in enumerate(xs) %}{{ i }}{{ x }}{% end %}", data), "0a1b");
  EXPECT_EQ(render("{% for c in 'h\xc3\xa9' %}<{{ c }}>{% end %}"), "<h><\xc3\xa9>");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% end %}"), "empty");
  // The loop variable outlives the loop, as in Python.
  EXPECT_EQ(render("{% for x in range(3) %}{% end %}{{ x }}"), "2");
  EXPECT_EQ(render("{% for r in [[1, 2], [3]] %}{% for c in r %}{% end %}{% end %}{{ c }}{{ r }}"), "3[3]");
  EXPECT_NE(error_of("{% for x in 5 %}{% end %}").find("'int' object is not iterable"), std::string::npos);
  EXPECT_NE(error_of("{% for a, b in [[1]] %}{% end %}").find("not enough values to unpack (expected 2, got 1)"),
            std::string::npos);
}

TEST(TemplateTest, BreakContinueAndLoopElse) {
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 1 %}{% continue %}{% end %}"
                   "{% if i == 4 %}{% break %}{% end %}{{ i }}{% end %}"),
            "023");
  EXPECT_EQ(render("{% for i in [1] %}{% break %}{% else %}not here{% end %}done"), "done");
  EXPECT_EQ(render("{% for i in [1] %}{{ i }}{% else %}+else{% end %}"), "1+else");
  EXPECT_EQ(render("{% set i = 0 %}{% while i < 5 %}{% set i += 1 %}{% if i == 2 %}{% continue %}{% end %}"
                   "{{ i }}{% if i == 4 %}{% break %}{% end %}{% end %}"),
            "134");
  EXPECT_EQ(render("{% set n = 0 %}{% while n < 2 %}{% set n = n + 1 %}{% else %}[{{ n }}]{% end %}"), "[2]");
  // break inside a loop's else leaves the enclosing loop.
  EXPECT_EQ(render("{% for a in [1, 2] %}{{ a }}{% for b in [] %}{% else %}{% break %}{% end %}{% end %}"), "1");
}

TEST(TemplateTest, SetAssignsFunctionWideVariables) {
  EXPECT_EQ(render("{% set x = 5 %}{% set x += 2 %}{% set y = x * 2 %}{{ x }} {{ y }}"), "7 14");
  EXPECT_EQ(render("{% set s = 'a' %}{% for i in range(3) %}{% set s = s + str(i) %}{% end %}{{ s }}"), "a012");
  EXPECT_EQ(render("{% if True %}{% set inner = 1 %}{% end %}{{ inner }}"), "1");
  // A variable copied from another stays valid when that one changes.
  EXPECT_EQ(render("{% set a = [1, 2] %}{% set b = a %}{% set a = 3 %}{{ b }} {{ a }}"), "[1, 2] 3");
  EXPECT_EQ(render("{% set xs = [1, 2, 3] %}{% for x in xs %}{% set xs = 0 %}{{ x }}{% end %}{{ xs }}"), "1230");
  // Data can be shadowed but is never modified.
  json data = {{"v", 1}};
  EXPECT_EQ(render("{% set v = v + 1 %}{{ v }}", data), "2");
  EXPECT_EQ(data["v"], 1);
}

TEST(TemplateTest, TryExceptElseFinally) {
  EXPECT_EQ(render("{% try %}a{{ 1 // 0 }}b{% except %}E{% else %}L{% finally %}F{% end %}"), "aEF");
  EXPECT_EQ(render("{% try %}ok{% except %}E{% else %}L{% finally %}F{% end %}"), "okLF");
  EXPECT_EQ(render("{% try %}{{ nope }}{% except %}caught{% end %}"), "caught");
  EXPECT_NE(error_of("{% try %}{{ nope }}{% finally %}F{% end %}").find("name 'nope' is not defined"),
            std::string::npos);
  EXPECT_EQ(render("{% for i in [1, 2] %}{% try %}{{ i }}{% break %}{% finally %}F{% end %}{% end %}"), "1F");
}

TEST(TemplateTest, ApplyPassesTheBodyOutputThroughAFunction) {
  EXPECT_EQ(render("{% apply url_escape %}a b{{ '&' }}{% end %}!"), "a+b%26amp%3B!");
  TemplateOptions o;
  o.functions["upper"] = [](const FunctionArgs& a) { return json(a[0].get<std::string>() + "!"); };
  EXPECT_EQ(render("{% apply upper %}x{% end %}", json::object(), o), "x!");
}

TEST(TemplateTest, CommentsAndLiteralBraces) {
  EXPECT_EQ(render("a{# a comment {{ x }} #}b{% comment also {{ ignored }} %}c"), "abc");
  EXPECT_EQ(render("{{! not_an_expr }} {%! not_a_tag %} {#! not a comment #}"),
            "{{ not_an_expr }} {% not_a_tag %} {# not a comment #}");
  // More than two curlies: the innermost two open the expression (LaTeX).
  EXPECT_EQ(render("{{{ 1 }}}"), "{1}");
  EXPECT_EQ(render("{% if True %}{{! x }}{% end %}"), "{{ x }}");
}

TEST(TemplateTest, WhitespaceModes) {
  const char* src = "a  \t b\n\n\n   c  \n  d";
  EXPECT_EQ(Template(src, "x.txt").generate(nullptr), src);
  EXPECT_EQ(Template(src, "x.html").generate(nullptr), "a b\nc\nd");
  EXPECT_EQ(Template(src, "x.js").generate(nullptr), "a b\nc\nd");
  EXPECT_EQ(Template(src, "x.txt", {.whitespace = Whitespace::Oneline}).generate(nullptr), "a b c d");
  EXPECT_EQ(Template(src, "x.html", {.whitespace = Whitespace::All}).generate(nullptr), src);
  EXPECT_EQ(Template(std::string("{% whitespace oneline %}") + src, "x.txt").generate(nullptr), "a b c d");
  EXPECT_EQ(Template("a  b{% whitespace all %}c  d{% whitespace single %}e  f", "x.txt").generate(nullptr),
            "a  bc  de f");
  // Text containing <pre> is kept as is.
  EXPECT_EQ(Template("<pre>  x\n\n y</pre>", "x.html").generate(nullptr), "<pre>  x\n\n y</pre>");
  EXPECT_EQ(filter_whitespace(Whitespace::Single, " \xc2\xa0\n\xe3\x80\x80 x"), "\nx");
  EXPECT_NE(error_of("{% whitespace sometimes %}").find("invalid whitespace mode sometimes"), std::string::npos);
}

// --- user functions ---

TEST(TemplateTest, CallsRegisteredFunctionsWithKeywords) {
  TemplateOptions o;
  o.functions["greet"] = [](const FunctionArgs& a) {
    a.expect(1, 1, {"punct"});
    const json* p = a.keyword("punct");
    return json("Hi " + a[0].get<std::string>() + (p ? p->get<std::string>() : "."));
  };
  o.functions["fails"] = [](const FunctionArgs&) -> json { throw std::runtime_error("boom"); };
  Template t("{{ greet(name) }} {{ greet(name, punct='!') }}", "g.txt", o);
  EXPECT_EQ(t.generate({{"name", "Bo"}}), "Hi Bo. Hi Bo!");
  // Per-call functions shadow the template's; data shadows both.
  TemplateNamespace per_call;
  per_call["greet"] = [](const FunctionArgs&) { return json("per-call"); };
  EXPECT_EQ(t.generate({{"name", "Bo"}}, &per_call), "per-call per-call");
  Template shadow("{{ greet }}", "s.txt", o);
  EXPECT_EQ(shadow.generate({{"greet", "data"}}), "data");
  try {
    Template("{{ fails() }}", "f.txt", o).generate(nullptr);
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_EQ(std::string(e.what()), "f.txt:1: fails() raised: boom");
    EXPECT_EQ(e.filename(), "f.txt");
    EXPECT_EQ(e.lineno(), 1);
  }
  try {
    Template("{{ greet() }}", "e.txt", o).generate(nullptr);
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_EQ(std::string(e.what()), "e.txt:1: greet() takes 1 positional arguments but 0 were given");
  }
}

// --- parse errors ---

TEST(TemplateTest, ParseErrorsNameTheTemplateAndLine) {
  auto parse_error = [](std::string_view src) -> std::string {
    try {
      Template t(src, "page.html");
    } catch (const ParseError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(parse_error("a\n{% if x %}\nb\n"), "page.html:2: Missing {% end %} block for if");
  EXPECT_EQ(parse_error("\n\n{% frobnicate %}"), "page.html:3: unknown operator: 'frobnicate'");
  EXPECT_EQ(parse_error("x\n{% end %}"), "page.html:2: Extra {% end %} block");
  EXPECT_EQ(parse_error("{{ }}"), "page.html:1: Empty expression");
  EXPECT_EQ(parse_error("{% %}"), "page.html:1: Empty block tag ({% %})");
  EXPECT_EQ(parse_error("{{ x"), "page.html:1: Missing end expression }}");
  EXPECT_EQ(parse_error("{% if x"), "page.html:1: Missing end block %}");
  EXPECT_EQ(parse_error("{# x"), "page.html:1: Missing end comment #}");
  EXPECT_EQ(parse_error("{% else %}"), "page.html:1: else outside if, for, while or try block");
  EXPECT_EQ(parse_error("{% for x in y %}{% elif z %}{% end %}"), "page.html:1: elif block cannot be attached to for block");
  EXPECT_EQ(parse_error("{% break %}"), "page.html:1: break outside for or while block");
  EXPECT_EQ(parse_error("\n{{ 1 + }}"), "page.html:2: unexpected end of expression in expression: 1 +");
  EXPECT_EQ(parse_error("{{ a b }}"), "page.html:1: unexpected 'b' in expression: a b");
  EXPECT_EQ(parse_error("{{ 'abc }}"), "page.html:1: unterminated string literal in expression: 'abc");
  EXPECT_EQ(parse_error("{% set 5 = x %}"), "page.html:1: set needs 'name = expression' in expression: 5 = x");
  EXPECT_EQ(parse_error("{% for in xs %}{% end %}"), "page.html:1: expected a variable name in expression: in xs");
  EXPECT_EQ(parse_error("{% import os %}"),
            "page.html:1: {% import %} is not supported: templates cannot run Python; register a function instead");
  EXPECT_EQ(parse_error("{% extends \"base.html\" %}"), "page.html:1: {% extends %} block found, but no template loader");
  EXPECT_EQ(parse_error("{% include 'x.html' %}"), "page.html:1: {% include %} block found, but no template loader");
  EXPECT_EQ(parse_error("{% if x %}{% extends 'b.html' %}{% end %}"),
            "page.html:1: {% extends %} must be at the top level of the template");
  EXPECT_EQ(parse_error("{% try %}{% end %}"), "page.html:1: try needs an except or finally block");
  EXPECT_EQ(parse_error("{% block %}{% end %}"), "page.html:1: block missing name");
  EXPECT_EQ(parse_error("{% if x %}{% else %}{% else %}{% end %}"), "page.html:1: else after else");
}

TEST(TemplateTest, NestingIsBoundedWithAClearError) {
  std::string deep = "{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}";
  EXPECT_THROW(Template(deep, "d.txt"), ParseError);
  std::string tags;
  for (int i = 0; i < 300; ++i) tags += "{% if 1 %}";
  for (int i = 0; i < 300; ++i) tags += "{% end %}";
  EXPECT_THROW(Template(tags, "d.txt"), ParseError);
  std::string ok = "{{ " + std::string(50, '(') + "1" + std::string(50, ')') + " }}";
  EXPECT_EQ(render(ok), "1");
  std::string unary = "{{ " + std::string(5000, '-') + "1 }}";
  EXPECT_THROW(Template(unary, "d.txt"), ParseError);
  std::string chain = "{{ x" + std::string(5000, '.') + " }}";
  EXPECT_THROW(Template(chain, "d.txt"), ParseError);
}

// --- limits ---

TEST(TemplateTest, LimitsStopRunawayTemplatesAndTryCannotCatchThem) {
  TemplateOptions o{.max_output_bytes = 1000, .max_iterations = 100};
  EXPECT_THROW(Template("{% while True %}{% end %}", "l.txt", o).generate(nullptr), TemplateError);
  EXPECT_THROW(Template("{% for i in range(1000) %}{% end %}", "l.txt", o).generate(nullptr), TemplateError);
  EXPECT_THROW(Template("{{ 'x' * 5000 }}", "l.txt", o).generate(nullptr), TemplateError);
  EXPECT_THROW(Template("{% set s = 'ab' %}{% while True %}{% set s = s + s %}{% end %}", "l.txt", o).generate(nullptr),
               TemplateError);
  EXPECT_THROW(Template("{% try %}{% while True %}{% end %}{% except %}caught{% end %}", "l.txt", o).generate(nullptr),
               TemplateError);
  EXPECT_THROW(Template("{% set x = [] %}{% while True %}{% set x = [x] %}{% end %}", "l.txt",
                        {.max_nesting = 50, .max_iterations = 10000})
                   .generate(nullptr),
               TemplateError);
  try {
    Template("one\n{% for i in range(200) %}{{ i }}{% end %}", "l.txt", o).generate(nullptr);
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_EQ(e.lineno(), 2);
    EXPECT_NE(e.message().find("max_iterations"), std::string::npos);
  }
  // range(50) builds 50 items and the loop runs 50 times: 100 units.
  EXPECT_EQ(Template("{% for i in range(50) %}.{% end %}", "l.txt", o).generate(nullptr), std::string(50, '.'));
  // Items built-ins produce count too, so a quadratic template is bounded.
  EXPECT_THROW(Template("{% for i in range(60) %}{% set x = sorted(range(60)) %}{% end %}", "l.txt", o)
                   .generate(nullptr),
               TemplateError);
}

TEST(TemplateTest, RangeAtTheEdgesOfSixtyFourBits) {
  EXPECT_EQ(render("{{ range(-9223372036854775807 - 1, 9223372036854775807, 9223372036854775807) }}"),
            "[-9223372036854775808, -1, 9223372036854775806]");
  EXPECT_EQ(render("{{ range(5, 0) }} {{ range(0, 5, -1) }} {{ range(0, -3, -1) }}"), "[] [] [0, -1, -2]");
  EXPECT_NE(error_of("{{ range(0, 1, 0) }}").find("range() arg 3 must not be zero"), std::string::npos);
  EXPECT_NE(error_of("{{ -(-9223372036854775807 - 1) }}").find("integer overflow"), std::string::npos);
  EXPECT_EQ(render("{{ [1, 2, 3][::9223372036854775807] }} {{ [1, 2, 3][::-9223372036854775807 - 1] }}"),
            "[1] [3]");
}

// --- loaders, inheritance and includes ---

DictLoader make_site() {
  return DictLoader({
      {"base.html",
       "<title>{% block title %}Default title{% end %}</title>\n"
       "<body>{% block body %}base body{% end %}</body>\n"
       "<footer>{% block footer %}(c) {{ site }}{% end %}</footer>"},
      {"mid.html",
       "{% extends \"base.html\" %}ignored text outside blocks"
       "{% block title %}Mid - {% block subtitle %}sub{% end %}{% end %}"
       "{% block body %}<main>{% block content %}mid content{% end %}</main>{% end %}"},
      {"page.html",
       "{% extends 'mid.html' %}"
       "{% block subtitle %}{{ title }}{% end %}"
       "{% block content %}<ul>{% for item in items %}{% block item %}<li>{{ item }}</li>{% end %}{% end %}</ul>"
       "{% end %}"
       "{% block unused %}never shown{% end %}"},
      {"bold.html", "{% extends 'page.html' %}{% block item %}<li><b>{{ item }}</b></li>{% end %}"},
      {"includer.html",
       "{% set who = 'world' %}[{% include 'partial.html' %}]{{ from_partial }}"},
      {"partial.html", "hello {{ who }}{% set from_partial = '!' %}"},
      {"raw_include.html", "{% autoescape None %}{{ html }}|{% include 'escaped.html' %}"},
      {"escaped.html", "{{ html }}"},
      {"sub/page.html", "{% extends '../base.html' %}{% block body %}{% include 'part.html' %}{% end %}"},
      {"sub/part.html", "sub part"},
      {"cycle_a.html", "{% include 'cycle_b.html' %}"},
      {"cycle_b.html", "{% include 'cycle_a.html' %}"},
      {"self_extends.html", "{% extends 'self_extends.html' %}"},
      {"missing.html", "line 1\n{% include 'nope.html' %}"},
      {"bad_child.html", "{% extends 'base.html' %}{% block body %}\n\n{{ 1 + }}{% end %}"},
      {"runtime_error.html", "{% extends 'base.html' %}{% block body %}\n{{ undefined_thing }}{% end %}"},
      {"self_block.html", "{% extends 'base.html' %}{% block body %}{% block body %}{% end %}{% end %}"},
      {"break_block.html", "{% extends 'base.html' %}{% for x in [1] %}{% block body %}{% break %}{% end %}{% end %}"},
  });
}

TEST(TemplateLoaderTest, InheritanceChainsOverrideAndDefaultBlocks) {
  DictLoader loader = make_site();
  json data = {{"site", "squall"}, {"title", "Home & away"}, {"items", {"a", "<b>"}}};
  EXPECT_EQ(loader.load("base.html").generate(data),
            "<title>Default title</title>\n<body>base body</body>\n<footer>(c) squall</footer>");
  EXPECT_EQ(loader.load("mid.html").generate(data),
            "<title>Mid - sub</title>\n<body><main>mid content</main></body>\n<footer>(c) squall</footer>");
  EXPECT_EQ(loader.load("page.html").generate(data),
            "<title>Mid - Home &amp; away</title>\n<body><main><ul><li>a</li><li>&lt;b&gt;</li></ul></main></body>\n"
            "<footer>(c) squall</footer>");
  EXPECT_EQ(loader.load("bold.html").generate(data),
            "<title>Mid - Home &amp; away</title>\n"
            "<body><main><ul><li><b>a</b></li><li><b>&lt;b&gt;</b></li></ul></main></body>\n"
            "<footer>(c) squall</footer>");
  EXPECT_EQ(loader.load("sub/page.html").generate(data),
            "<title>Default title</title>\n<body>sub part</body>\n<footer>(c) squall</footer>");
}

TEST(TemplateLoaderTest, IncludeSharesTheNamespaceButNotAutoescape) {
  DictLoader loader = make_site();
  EXPECT_EQ(loader.load("includer.html").generate(nullptr), "[hello world]!");
  EXPECT_EQ(loader.load("raw_include.html").generate({{"html", "<i>"}}), "<i>|&lt;i&gt;");
}

TEST(TemplateLoaderTest, StructuralErrorsAreParseErrorsWithLocations) {
  DictLoader loader = make_site();
  auto error_of_load = [&](std::string_view name) -> std::string {
    try {
      loader.load(name).generate({{"site", "s"}});
    } catch (const TemplateError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error_of_load("cycle_a.html"),
            "cycle_b.html:1: {% include %} cycle: cycle_a.html -> cycle_b.html -> cycle_a.html");
  EXPECT_EQ(error_of_load("self_extends.html"),
            "self_extends.html:1: {% extends %} cycle: self_extends.html -> self_extends.html");
  EXPECT_EQ(error_of_load("missing.html"), "missing.html:2: template 'nope.html' not found");
  EXPECT_EQ(error_of_load("nope.html"), "nope.html: template not found");
  EXPECT_EQ(error_of_load("bad_child.html"), "bad_child.html:3: unexpected end of expression in expression: 1 +");
  EXPECT_EQ(error_of_load("runtime_error.html"), "runtime_error.html:2: name 'undefined_thing' is not defined");
  // The innermost definition of a name wins, as in Tornado, so a block
  // redefined inside itself renders its inner (here empty) body.
  EXPECT_EQ(loader.load("self_block.html").generate({{"site", "s"}}),
            "<title>Default title</title>\n<body></body>\n<footer>(c) s</footer>");
  EXPECT_EQ(error_of_load("break_block.html"), "break_block.html:1: 'break' outside loop");
  EXPECT_THROW(loader.load("cycle_a.html"), ParseError);
}

TEST(TemplateLoaderTest, ResolvesPathsRelativeToTheParent) {
  DictLoader loader({});
  EXPECT_EQ(loader.resolve_path("b.html", "dir/a.html"), "dir/b.html");
  EXPECT_EQ(loader.resolve_path("../b.html", "dir/a.html"), "b.html");
  EXPECT_EQ(loader.resolve_path("b.html", "a.html"), "b.html");
  EXPECT_EQ(loader.resolve_path("/b.html", "dir/a.html"), "/b.html");
  EXPECT_EQ(loader.resolve_path("b.html", "<string>"), "b.html");
  EXPECT_EQ(loader.resolve_path("x/./y/../b.html"), "x/b.html");
}

class TemplateFileLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("squall_templates_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "sub");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& name, const std::string& content) {
    std::ofstream(root_ / name, std::ios::binary) << content;
  }
  std::filesystem::path root_;
};

TEST_F(TemplateFileLoaderTest, LoadsFilesOnceUntilReset) {
  write("a.html", "A {{ x }}");
  write("sub/b.html", "{% extends '../layout.html' %}{% block b %}B{% end %}");
  write("layout.html", "[{% block b %}{% end %}]");
  Loader loader(root_.string());
  EXPECT_EQ(loader.root(), std::filesystem::absolute(root_).lexically_normal().string());
  Template a = loader.load("a.html");
  EXPECT_EQ(a.generate({{"x", 1}}), "A 1");
  EXPECT_EQ(a.name(), "a.html");
  write("a.html", "changed");
  EXPECT_EQ(loader.load("a.html").generate({{"x", 1}}), "A 1");  // cached
  loader.reset();
  EXPECT_EQ(loader.load("a.html").generate(nullptr), "changed");
  EXPECT_EQ(a.generate({{"x", 2}}), "A 2");  // handed-out templates keep working
  EXPECT_EQ(loader.load("sub/b.html").generate(nullptr), "[B]");
  EXPECT_THROW(loader.load("nope.html"), TemplateError);
}

TEST_F(TemplateFileLoaderTest, NamesCannotLeaveTheRoot) {
  write("a.html", "{% include '../../etc/passwd' %}");
  Loader loader((root_ / "sub").string());
  EXPECT_THROW(loader.load("../a.html"), TemplateError);
  Loader top(root_.string());
  try {
    top.load("a.html");
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the template root"), std::string::npos);
  }
  write("ok.html", "fine");
  EXPECT_EQ(top.load("/ok.html").generate(nullptr), "fine");  // a leading '/' is the root
}

TEST_F(TemplateFileLoaderTest, TemplateFromStringUsesTheLoaderForIncludes) {
  write("part.html", "part {{ v }}");
  Loader loader(root_.string(), {.autoescape = std::nullopt});
  Template t("<{% include 'part.html' %}>", "inline.html", loader);
  EXPECT_EQ(t.generate({{"v", "<x>"}}), "<part <x>>");
}

// --- cross-check with Tornado ---

std::map<std::string, std::string> cross_check_templates() {
  return {
      {"base.html",
       "<!DOCTYPE html>\n<html>\n  <head>\n    <title>{% block title %}Default{% end %}</title>\n  </head>\n"
       "  <body>\n    {% block body %}\n      base body\n    {% end %}\n"
       "    <footer>{% block footer %}{{ site.name }} &middot; {{ len(users) }} users{% end %}</footer>\n"
       "  </body>\n</html>\n"},
      {"mid.html",
       "{% extends \"base.html\" %}\n{% block title %}{{ site.name }}: {% block subtitle %}sub{% end %}{% end %}\n"
       "{% block body %}\n<div class=\"main\">\n  {% block content %}mid{% end %}\n</div>\n{% end %}\n"},
      {"page.html",
       "{% extends \"mid.html\" %}\n{% block subtitle %}{{ title }}{% end %}\n{% block content %}\n"
       "  <ul>\n  {% for i, user in enumerate(users) %}\n"
       "    <li class=\"{{ 'odd' if i % 2 else 'even' }}\" data-json=\"{{ json_encode(user) }}\">\n"
       "      {% block user %}{{ user.name }} ({{ user.age }}){% end %}\n"
       "      {% if user.admin %}<b>admin</b>{% elif user.age >= 30 %}senior{% else %}junior{% end %}\n"
       "    </li>\n  {% end %}\n  </ul>\n"
       "  {% include \"partial.html\" %}\n  {{ after_include }}\n{% end %}\n"},
      {"partial.html", "<p>{{ title }} has {{ len(users) }} users</p>{% set after_include = 'set in partial' %}"},
      {"expr.txt",
       "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -2 }} {{ 1 / 3 }} {{ 10 / 4 }}\n"
       "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 123.0 }} {{ -0.0 }} {{ 3 * 1.1 }} {{ 2.5 // 1 }}\n"
       "{{ True + True }} {{ True }} {{ None }} {{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'b' in 'abc' }} {{ 3 not in [1] }}\n"
       "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ [] and 1 }} {{ not '' }} {{ 'y' if 0 else 'n' }} {{ None is None }}\n"
       "{{ users[0].name }} {{ users[-1]['name'] }} {{ site.tags[1:] }} {{ site.tags[::-1] }} {{ title[2:5] }}\n"
       "{{ len(title) }} {{ title.upper() }} {{ title.lower() }} {{ '  x y  '.strip() }} {{ title.split() }}\n"
       "{{ ', '.join(site.tags) }} {{ title.replace('o', '0') }} {{ title.startswith('Th') }} {{ 'a,b,,c'.split(',') }}\n"
       "{{ sorted([3, 1, 2]) }} {{ sorted(site.tags, reverse=True) }} {{ min(4, 2, 8) }} {{ max([1, 5, 3]) }}\n"
       "{{ sum([1, 2, 3]) }} {{ abs(-2.5) }} {{ int('42') }} {{ int(-3.9) }} {{ float('2.5') }} {{ str(12) + 'x' }}\n"
       "{{ bool([]) }} {{ list(range(2, 10, 3)) }} {{ list(reversed([1, 2])) }} {{ any([0, '']) }} {{ all([1]) }}\n"
       "{{ [1, 'two', None, True, 2.5] }} {{ {'k': 'v', 'n': [1]} }} {{ site }}\n"
       "{{ json_encode(site) }} {{ url_escape('a b&c/d') }} {{ url_escape('a b/', plus=False) }}\n"
       "{{ squeeze('  lots   of \\n space ') }} {% raw linkify('see http://example.com/x?a=1&b=2.') %}\n"
       "{{ escape('<&>') }} {% raw escape('\\'\"') %} {{ 'caf\\u00e9 \\u20ac \\U0001F600' }} {{ \"it's\" }}\n"
       "{{ site.get('missing', 'dflt') }} {{ site.get('name') }} {{ [1, 2, 1].count(1) }} {{ [5, 6].index(6) }}\n"},
      {"loops.html",
       "{% for k, v in site.items() %}{{ k }}={{ v }};{% end %}\n"
       "{% for k in site %}{{ k }},{% end %} {% for t in site.values() %}{{ t }}|{% end %}\n"
       "{% for c in 'h\\u00e9!' %}<{{ c }}>{% end %}\n"
       "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% end %}{% if i == 6 %}{% break %}{% end %}{{ i }}{% end %}\n"
       "{% for x in [] %}never{% else %}empty loop{% end %} {% for x in [1] %}{% break %}{% else %}no{% end %}\n"
       "{% set n = 0 %}{% while n < 4 %}{% set n += 1 %}[{{ n }}]{% end %}\n"
       "{% for a, b in [[1, 2], [3, 4]] %}{{ a * b }} {% end %}{{ a }}{{ b }}\n"
       "{% for row in [[1, 2], [3]] %}{% for cell in row %}{{ cell }}{% end %};{% end %}{{ cell }}\n"
       "{% try %}before {{ 1 // 0 }} after{% except %}caught{% else %}no error{% finally %} finally{% end %}\n"
       "{% try %}fine{% except %}caught{% else %} else{% finally %} finally{% end %}\n"
       "{% apply url_escape %}a b {{ title }}{% end %} {% apply escape %}<{{ '&' }}>{% end %}\n"},
      {"raw.html",
       "{{ html }} {% raw html %} {{! literal }} {%! literal %} {#! literal #} {{{ 1 }}}\n"
       "{# a comment #}{% comment another comment %}\n{% autoescape None %}{{ html }}\n"},
      {"ws.html", "a   b\n\n\n   c {{ 1 }}  <pre>  keep\n\n  this  </pre>  d  \n  e\t\tf{{ 2 }}\n\n  g  h"},
      {"ws.txt",
       "a   b\n\n   c\n{% whitespace oneline %}one   line\n\n  text\n{% whitespace single %}single   mode\n\n\n  x\n"
       "{% whitespace all %}all   kept\n\n"},
      {"autoescape_url.txt", "{% autoescape url_escape %}{{ title }} {{ users[0].age }} {{ users[0] }}"},
  };
}

json cross_check_data() {
  return json::parse(R"({
    "title": "The <Squall> & \"Friends\"",
    "html": "<em class='x'>hi & bye</em>",
    "site": {"name": "Squall", "tags": ["fast", "async", "c++"], "version": 1.5},
    "users": [
      {"name": "Ann <admin>", "age": 31, "admin": true},
      {"name": "Bob", "age": 25, "admin": false},
      {"name": "Cle\u00e9", "age": 30, "admin": false}
    ]
  })");
}

TEST(TemplateTornadoTest, RendersLikeTornadoByteForByte) {
  if (!squall::testing::tornado_available()) GTEST_SKIP() << "Debian's python3-tornado is not installed";
  std::map<std::string, std::string> templates = cross_check_templates();
  json data = cross_check_data();
  const std::string script = R"PY(
import json, sys
from tornado import template
from tornado.util import ObjectDict
templates = json.loads(sys.argv[1])
data = json.loads(sys.argv[2], object_hook=ObjectDict)
loader = template.DictLoader(templates)
out = {}
for name in templates:
    if name in ('partial.html',):
        continue
    out[name] = loader.load(name).generate(**data).hex()
print(json.dumps(out))
)PY";
  auto result = squall::testing::run_python(script, {json(templates).dump(), data.dump()});
  ASSERT_TRUE(result && result->status == 0) << "python3 failed";
  json expected = json::parse(result->out);
  std::map<std::string, std::string, std::less<>> sources(templates.begin(), templates.end());
  DictLoader loader(sources);
  for (const auto& [name, hex_expected] : expected.items()) {
    std::string ours = loader.load(name).generate(data);
    std::string theirs;
    std::string h = hex_expected.get<std::string>();
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) theirs += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    EXPECT_EQ(ours, theirs) << "template " << name;
  }
  EXPECT_EQ(expected.size(), templates.size() - 1);
}

}  // namespace
}  // namespace squall::web
