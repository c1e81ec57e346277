// Tornado's template language over nlohmann::json data: a Template is
// parsed and compiled once, then generate() renders it into a string.
// Template is an immutable, cheaply copied handle: generate() may run on any
// thread, concurrently. Loader (files under a directory) and DictLoader
// (strings in memory) cache compiled templates and are thread-safe.
//
//   squall::web::Loader loader("templates");
//   std::string html = loader.load("page.html").generate({{"title", "Hi"}});
//
// The syntax ({{ expr }}, {% if %}, {% for %}, {% extends %}, ...), the
// expression language and the differences from Tornado are described in
// docs/guide/templates.md.
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json_fwd.hpp>

#include "squall/core/errors.hpp"

namespace squall::web {

/// A template could not be loaded, compiled or rendered. what() reads
/// "name.html:12: message" (or "name.html: message" without a line).
class TemplateError : public Error {
 public:
  TemplateError(std::string message, std::string filename, int lineno);
  /// The message without the location.
  const std::string& message() const noexcept { return message_; }
  /// The template's name ("<string>" for an anonymous Template).
  const std::string& filename() const noexcept { return filename_; }
  /// 1-based line of the tag at fault, 0 when no line applies.
  int lineno() const noexcept { return lineno_; }

 private:
  std::string message_;
  std::string filename_;
  int lineno_;
};

/// A syntax error in a template, or a structural one found while linking it
/// (missing or cyclic {% extends %} / {% include %}), as Tornado's ParseError.
class ParseError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

/// The arguments of one call of a TemplateFunction: positional arguments in
/// order, then keyword arguments (`f(a, b, plus=False)`). The referenced
/// values live until the function returns.
class FunctionArgs {
 public:
  using Keyword = std::pair<std::string_view, const nlohmann::json*>;
  FunctionArgs(std::string_view function_name, std::span<const nlohmann::json* const> positional,
               std::span<const Keyword> keywords) noexcept
      : name_(function_name), positional_(positional), keywords_(keywords) {}

  /// The name the template called the function by.
  std::string_view function_name() const noexcept { return name_; }
  /// Number of positional arguments.
  std::size_t size() const noexcept { return positional_.size(); }
  /// The i-th positional argument (i < size()).
  const nlohmann::json& operator[](std::size_t i) const noexcept { return *positional_[i]; }
  /// The keyword argument `name`, or nullptr.
  const nlohmann::json* keyword(std::string_view name) const noexcept;
  /// Positional argument `i` if given, else keyword `name`, else nullptr
  /// (Python's way of binding a parameter).
  const nlohmann::json* get(std::size_t i, std::string_view name) const noexcept;
  /// Throws TemplateError unless min <= size() <= max and every keyword is
  /// one of `allowed_keywords`.
  void expect(std::size_t min, std::size_t max, std::initializer_list<std::string_view> allowed_keywords = {}) const;

 private:
  std::string_view name_;
  std::span<const nlohmann::json* const> positional_;
  std::span<const Keyword> keywords_;
};

/// A function templates can call. It may throw: the exception becomes a
/// TemplateError naming the template, line and function. Functions shared
/// by templates used from several threads must be thread-safe.
using TemplateFunction = std::function<nlohmann::json(const FunctionArgs&)>;

/// Names → functions visible to templates (Tornado's template namespace).
using TemplateNamespace = std::map<std::string, TemplateFunction, std::less<>>;

/// Whitespace handling of template text (Tornado's filter_whitespace).
enum class Whitespace {
  ByName,   ///< Single for names ending in ".html" or ".js", else All (Tornado's default)
  All,      ///< keep all whitespace
  Single,   ///< collapse runs of spaces and tabs to one space, runs around a newline to one newline
  Oneline,  ///< collapse every run of whitespace, newlines included, to one space
};

/// Compilation and generation settings of a Template or of every template
/// of a Loader. Limits are off (0) by default, as in Tornado; set them when
/// templates come from untrusted authors.
struct TemplateOptions {
  /// The function applied to every {{ }} (not {% raw %}) output: a name
  /// looked up like any template name, usually "xhtml_escape". nullopt
  /// disables autoescaping ({% autoescape None %}).
  std::optional<std::string> autoescape = "xhtml_escape";
  Whitespace whitespace = Whitespace::ByName;
  /// Functions added to the built-ins (data passed to generate() and the
  /// per-call namespace shadow them).
  TemplateNamespace functions{};
  /// Depth limit of nested tags, brackets in expressions, includes and
  /// blocks, and of nested values (bounds recursion; exceeding it is a
  /// ParseError or TemplateError, never a crash).
  std::size_t max_nesting = 100;
  /// Output (and string/list size) limit per generate() call; 0: none.
  std::size_t max_output_bytes = 0;
  /// Work allowed per generate() call: loop iterations ({% for %},
  /// {% while %}) plus the items built-ins such as range(), sorted() and
  /// list() produce; 0: none.
  std::size_t max_iterations = 0;
};

namespace detail {
struct Program;
}  // namespace detail

class BaseLoader;

/// A compiled template. Copies share the compiled form.
class Template {
 public:
  /// Compiles `source`; `name` appears in error messages and decides the
  /// default whitespace mode. Throws ParseError. {% extends %} and
  /// {% include %} need a loader: use the constructor below.
  explicit Template(std::string_view source, std::string name = "<string>", TemplateOptions options = {});
  /// Compiles `source` with `loader`'s options; {% extends %} and
  /// {% include %} are resolved (once, now) through `loader`, relative to
  /// `name`. `loader` need not outlive the Template.
  Template(std::string_view source, std::string name, BaseLoader& loader);

  /// Renders the template. `data` (an object, or null for none) gives the
  /// template's names; `functions` (optional, e.g. a request's
  /// static_url or xsrf_form_html) adds per-call functions, shadowed by
  /// `data`. Throws TemplateError on a runtime error (an undefined name, a
  /// type error, an exceeded limit). Thread-safe.
  std::string generate(const nlohmann::json& data, const TemplateNamespace* functions = nullptr) const;
  /// As generate, appending to `out`. On an error `out` holds a prefix of
  /// the output.
  void generate_into(std::string& out, const nlohmann::json& data, const TemplateNamespace* functions = nullptr) const;

  /// The name given at construction or by the loader.
  const std::string& name() const noexcept;

 private:
  friend class BaseLoader;
  explicit Template(std::shared_ptr<const detail::Program> program) noexcept : program_(std::move(program)) {}
  std::shared_ptr<const detail::Program> program_;
};

/// Loads templates by name and caches them compiled (Tornado's
/// BaseLoader). Each template file is read and parsed once, and each
/// template is linked with its {% extends %} ancestors and {% include %}s
/// once, until reset(). All methods are thread-safe.
class BaseLoader {
 public:
  explicit BaseLoader(TemplateOptions options = {});
  virtual ~BaseLoader();
  BaseLoader(const BaseLoader&) = delete;
  BaseLoader& operator=(const BaseLoader&) = delete;

  /// The compiled template `name`, resolved relative to `parent_path` (the
  /// name of the template that refers to it) as resolve_path does. Throws
  /// TemplateError when it does not exist, ParseError when it (or a
  /// template it extends or includes) does not compile.
  Template load(std::string_view name, std::string_view parent_path = {});

  /// Forgets every cached template; Templates already handed out keep
  /// working.
  void reset();

  /// The cache key of `name` referred to from `parent_path`: relative names
  /// are resolved against the parent's directory (Tornado's rules, in
  /// POSIX path terms); "." and ".." segments are normalized.
  virtual std::string resolve_path(std::string_view name, std::string_view parent_path = {}) const;

  const TemplateOptions& options() const noexcept;

 protected:
  /// The source of the template `name` (already resolved), or nullopt when
  /// there is none. May be called from any thread, under the loader's lock.
  virtual std::optional<std::string> read_source(const std::string& name) const = 0;

 private:
  friend class Template;
  struct State;
  std::unique_ptr<State> state_;
};

/// Loads templates from files under a root directory (Tornado's Loader).
/// Names are confined to the root: "../x" or an absolute name resolving
/// outside it is a TemplateError (Tornado would read it).
class Loader : public BaseLoader {
 public:
  explicit Loader(std::string root_directory, TemplateOptions options = {});
  /// The absolute root directory.
  const std::string& root() const noexcept { return root_; }

 protected:
  std::optional<std::string> read_source(const std::string& name) const override;

 private:
  std::string root_;
};

/// Loads templates from a name → source map (Tornado's DictLoader); handy
/// for tests and for templates compiled into a program.
class DictLoader : public BaseLoader {
 public:
  explicit DictLoader(std::map<std::string, std::string, std::less<>> templates, TemplateOptions options = {});

 protected:
  std::optional<std::string> read_source(const std::string& name) const override;

 private:
  std::map<std::string, std::string, std::less<>> templates_;
};

/// Tornado's filter_whitespace: applies `mode` (not ByName) to `text`.
std::string filter_whitespace(Whitespace mode, std::string_view text);

}  // namespace squall::web
