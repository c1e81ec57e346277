// Routing values (Tornado's URLSpec and PathMatches): a Rule pairs a path
// pattern with a HandlerFactory that makes a RequestHandler per request.
// Rules are plain values built before the Application; they are read-only
// afterwards and may be shared between threads.
//
//   std::vector<squall::web::Rule> rules = {
//       {"/", squall::web::handler<MainHandler>()},
//       {"/story/([0-9]+)", squall::web::handler<StoryHandler>(std::ref(db)), "story"},
//   };
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "squall/core/future.hpp"

namespace squall::web {

class RequestHandler;

/// The verbs RequestHandler dispatches, as bits of a mask.
namespace methods {
inline constexpr unsigned kGet = 1u << 0;
inline constexpr unsigned kHead = 1u << 1;
inline constexpr unsigned kPost = 1u << 2;
inline constexpr unsigned kDelete = 1u << 3;
inline constexpr unsigned kPatch = 1u << 4;
inline constexpr unsigned kPut = 1u << 5;
inline constexpr unsigned kOptions = 1u << 6;
/// The bit of `method` ("GET", ...), 0 for any other method.
unsigned bit(std::string_view method) noexcept;
/// "GET, HEAD, OPTIONS": the Allow header value of a mask, in that order
/// (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS); HEAD is listed whenever
/// GET is (a handler's get() answers HEAD too).
std::string allow_header(unsigned mask);
}  // namespace methods

/// Longest path matched against a regular-expression pattern (and longest
/// host against a host pattern): PATH_MAX, far beyond real routes, and a
/// bounded stack for std::regex (about 400 bytes per character under ASan).
inline constexpr std::size_t kMaxRegexPathLength = 4096;

namespace detail {

/// Makes one handler; what handler<T>(args...) stores.
class HandlerMakerBase {
 public:
  virtual ~HandlerMakerBase() = default;
  virtual std::unique_ptr<RequestHandler> make() const = 0;
};

template <class T, class... Args>
class HandlerMaker final : public HandlerMakerBase {
 public:
  template <class... A>
  explicit HandlerMaker(A&&... a) : args_(std::forward<A>(a)...) {}

  std::unique_ptr<RequestHandler> make() const override {
    return std::apply([](const Args&... a) -> std::unique_ptr<RequestHandler> {
      if constexpr (sizeof...(Args) > 0 && std::is_constructible_v<T, const Args&...>) {
        return std::make_unique<T>(a...);
      } else {
        static_assert(std::is_default_constructible_v<T>,
                      "handler<T>(args...): T needs a constructor T(args...) or a default "
                      "constructor and initialize(args...)");
        auto h = std::make_unique<T>();
        static_assert(requires(T & t) { t.initialize(a...); },
                      "handler<T>(args...): T has neither T(args...) nor initialize(args...)");
        h->initialize(a...);
        return h;
      }
    }, args_);
  }

 private:
  std::tuple<Args...> args_;
};

/// The verbs T overrides: `&T::get` names RequestHandler::get unless a class
/// between them declares its own.
template <class T>
constexpr unsigned overridden_methods() noexcept {
  using Verb = Future<void> (RequestHandler::*)();
  unsigned m = 0;
  if constexpr (!std::is_same_v<decltype(&T::get), Verb>) m |= methods::kGet;
  if constexpr (!std::is_same_v<decltype(&T::head), Verb>) m |= methods::kHead;
  if constexpr (!std::is_same_v<decltype(&T::post), Verb>) m |= methods::kPost;
  if constexpr (!std::is_same_v<decltype(&T::delete_), Verb>) m |= methods::kDelete;
  if constexpr (!std::is_same_v<decltype(&T::patch), Verb>) m |= methods::kPatch;
  if constexpr (!std::is_same_v<decltype(&T::put), Verb>) m |= methods::kPut;
  return m | methods::kOptions;  // the default options() answers with Allow
}

template <class T>
constexpr bool streams_request_body() noexcept {
  if constexpr (requires { T::stream_request_body; }) {
    return static_cast<bool>(T::stream_request_body);
  } else {
    return false;
  }
}

}  // namespace detail

/// Makes the RequestHandler of a rule, once per request; copyable and cheap
/// to copy (the arguments are shared, never copied per request). Build one
/// with handler<T>(args...).
class HandlerFactory {
 public:
  /// An empty factory (no rule may hold one).
  HandlerFactory() = default;
  HandlerFactory(std::shared_ptr<const detail::HandlerMakerBase> maker, unsigned methods, bool stream_request_body)
      : maker_(std::move(maker)), methods_(methods), stream_request_body_(stream_request_body) {}

  explicit operator bool() const noexcept { return static_cast<bool>(maker_); }
  /// A new handler (not yet attached to a request: the Application does that).
  std::unique_ptr<RequestHandler> make() const;
  /// The verbs the handler class implements (methods::kGet | ...).
  unsigned methods() const noexcept { return methods_; }
  /// The class declared `static constexpr bool stream_request_body = true`.
  bool stream_request_body() const noexcept { return stream_request_body_; }

 private:
  std::shared_ptr<const detail::HandlerMakerBase> maker_;
  unsigned methods_ = 0;
  bool stream_request_body_ = false;
};

/// The factory of handler class T (Tornado's `(pattern, T, dict(...))`).
/// `args` are copied into the factory once and handed, per request, as const
/// lvalues to T's constructor `T(args...)` if there is one, else to
/// `initialize(args...)` after default construction. Pass shared state by
/// std::ref, pointer or shared_ptr.
///
///   handler<StoryHandler>(std::ref(db))   // StoryHandler::initialize(Database&) or StoryHandler(Database&)
///
/// Verbs (get, post, ...) must be public for handler<T> to see which ones
/// T implements (the Allow header and 405 come from that).
template <class T, class... Args>
HandlerFactory handler(Args&&... args) {
  static_assert(std::is_base_of_v<RequestHandler, T>, "handler<T>: T must derive from squall::web::RequestHandler");
  using Maker = detail::HandlerMaker<T, std::decay_t<Args>...>;
  return HandlerFactory(std::make_shared<const Maker>(std::forward<Args>(args)...), detail::overridden_methods<T>(),
                        detail::streams_request_body<T>());
}

/// A path pattern (Tornado's PathMatches): a regular expression matched
/// against the whole request path (not unescaped: match "%20", not " ").
/// Python's named groups `(?P<name>...)` are accepted and become named path
/// arguments; unnamed groups become positional ones. A pattern without
/// regular-expression syntax is compared as a string, without std::regex.
/// Syntax is ECMAScript's (std::regex), which Tornado-style routes share
/// with Python: `[0-9]+`, `([^/]+)`, `(.*)`, `\d`, `\w`, `(?:...)`.
///
/// std::regex matches recursively (stack use grows with the input), so
/// paths longer than kMaxRegexPathLength never match a regular-expression
/// pattern (the Application answers them 414); literal patterns have no
/// such limit.
class PathPattern {
 public:
  /// Throws std::invalid_argument for a malformed pattern.
  explicit PathPattern(std::string_view pattern);

  /// The pattern as given.
  const std::string& pattern() const noexcept;
  /// True when matched by string comparison.
  bool is_literal() const noexcept;
  /// The path a literal pattern matches ("^" and "$" removed, "\." unescaped).
  const std::string& literal() const noexcept;
  /// Names of the named groups, in group order (empty: positional).
  const std::vector<std::string>& group_names() const noexcept;

  /// Matches the whole `path`. On success, sets `args` to the unnamed
  /// groups' values or, when the pattern has named groups, `kwargs` to
  /// those (as Tornado: named groups win, positional ones are then
  /// dropped), each percent-decoded ('+' kept); a group that did not take
  /// part is "".
  bool match(std::string_view path, std::vector<std::string>& args,
             std::map<std::string, std::string, std::less<>>& kwargs) const;

  /// The path for `args` (Tornado's URLSpec.reverse): each group replaced by
  /// its argument, percent-encoded as a path segment. Throws
  /// std::invalid_argument when the pattern is too complex to reverse
  /// (nested groups, alternation...) or the argument count is wrong.
  std::string reverse(const std::vector<std::string>& args) const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> c_;
};

/// One route (Tornado's URLSpec, or its tuple form): pattern, handler, and
/// an optional name for Application::reverse_url.
struct Rule {
  Rule(std::string_view pattern, HandlerFactory handler, std::string name = {})
      : pattern(pattern), handler(std::move(handler)), name(std::move(name)) {}

  PathPattern pattern;
  HandlerFactory handler;
  std::string name;
};

}  // namespace squall::web
