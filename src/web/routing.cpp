// Path patterns: Python's named groups rewritten for std::regex, a literal
// fast path, and Tornado's URLSpec.reverse.
#include "squall/web/routing.hpp"

#include <regex>
#include <stdexcept>

#include "squall/http/url.hpp"
#include "squall/web/request_handler.hpp"

namespace squall::web {

namespace methods {

unsigned bit(std::string_view method) noexcept {
  switch (method.size()) {
    case 3:
      if (method == "GET") return kGet;
      if (method == "PUT") return kPut;
      break;
    case 4:
      if (method == "HEAD") return kHead;
      if (method == "POST") return kPost;
      break;
    case 5:
      if (method == "PATCH") return kPatch;
      break;
    case 6:
      if (method == "DELETE") return kDelete;
      break;
    case 7:
      if (method == "OPTIONS") return kOptions;
      break;
    default:
      break;
  }
  return 0;
}

std::string allow_header(unsigned mask) {
  if (mask & kGet) mask |= kHead;
  static constexpr std::pair<unsigned, std::string_view> kOrder[] = {
      {kGet, "GET"},     {kHead, "HEAD"},     {kPost, "POST"},      {kPut, "PUT"},
      {kPatch, "PATCH"}, {kDelete, "DELETE"}, {kOptions, "OPTIONS"},
  };
  std::string out;
  for (auto [b, name] : kOrder) {
    if (!(mask & b)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace methods

std::unique_ptr<RequestHandler> HandlerFactory::make() const { return maker_->make(); }

struct PathPattern::Compiled {
  std::string pattern;
  bool literal = false;
  std::string literal_path;
  std::regex regex;
  std::size_t groups = 0;
  std::vector<std::string> names;  // per group, "" for unnamed
  std::vector<std::string> named;  // the non-empty names, in order
  // Reversal: pieces between groups; reversible only for simple patterns.
  bool reversible = false;
  std::vector<std::string> pieces;  // groups + 1 literal pieces
};

namespace {

bool is_regex_special(char c) noexcept {
  switch (c) {
    case '.': case '^': case '$': case '|': case '?': case '*': case '+':
    case '(': case ')': case '[': case ']': case '{': case '}': case '\\':
      return true;
    default:
      return false;
  }
}

bool is_alnum(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// Tornado's re_unescape: "\x" is x for punctuation; "\d" and other
/// alphanumeric escapes cannot be unescaped.
bool re_unescape(std::string_view s, std::string& out) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      if (i + 1 >= s.size() || is_alnum(s[i + 1])) return false;
      out.push_back(s[++i]);
    } else {
      out.push_back(s[i]);
    }
  }
  return true;
}

/// The literal string `body` (pattern without ^ and $) stands for, if it
/// has no regular-expression syntax beyond escaped punctuation.
bool literal_of(std::string_view body, std::string& out) {
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\\') {
      if (i + 1 >= body.size() || is_alnum(body[i + 1])) return false;
      out.push_back(body[++i]);
    } else if (is_regex_special(c)) {
      return false;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

/// Rewrites Python-only syntax for ECMAScript: `(?P<name>` → `(` (the name
/// remembered), `(?P=name)` → a backreference. Counts capturing groups.
std::string rewrite(std::string_view p, std::vector<std::string>& names) {
  std::string out;
  out.reserve(p.size());
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      out.push_back(c);
      if (i + 1 < p.size()) out.push_back(p[++i]);
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (c != '(') {
      out.push_back(c);
      continue;
    }
    std::string_view rest = p.substr(i);
    if (rest.starts_with("(?P<")) {
      std::size_t end = rest.find('>');
      if (end == std::string_view::npos) throw std::invalid_argument("unterminated group name in pattern");
      std::string name(rest.substr(4, end - 4));
      if (name.empty()) throw std::invalid_argument("empty group name in pattern");
      for (const auto& n : names) {
        if (n == name) throw std::invalid_argument("group name '" + name + "' used twice in pattern");
      }
      names.push_back(std::move(name));
      out.push_back('(');
      i += end;
    } else if (rest.starts_with("(?P=")) {
      std::size_t end = rest.find(')');
      if (end == std::string_view::npos) throw std::invalid_argument("unterminated backreference in pattern");
      std::string_view name = rest.substr(4, end - 4);
      std::size_t index = 0;
      for (; index < names.size(); ++index) {
        if (names[index] == name) break;
      }
      if (index == names.size()) throw std::invalid_argument("unknown group name in backreference");
      out += "(?:\\" + std::to_string(index + 1) + ")";
      i += end;
    } else if (rest.starts_with("(?")) {
      out.push_back(c);  // (?: (?= (?! — not capturing
    } else {
      names.emplace_back();
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

PathPattern::PathPattern(std::string_view pattern) {
  auto c = std::make_shared<Compiled>();
  c->pattern.assign(pattern);
  std::string_view body = pattern;
  if (body.starts_with('^')) body.remove_prefix(1);
  if (body.ends_with('$') && !body.ends_with("\\$")) body.remove_suffix(1);
  if (literal_of(body, c->literal_path)) {
    c->literal = true;
    c->reversible = true;
    c->pieces.push_back(c->literal_path);
    c_ = std::move(c);
    return;
  }
  std::string rewritten = rewrite(pattern, c->names);
  try {
    c->regex = std::regex(rewritten, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw std::invalid_argument("bad path pattern '" + std::string(pattern) + "': " + e.what());
  }
  c->groups = c->regex.mark_count();
  for (const auto& n : c->names) {
    if (!n.empty()) c->named.push_back(n);
  }
  // Tornado's _find_groups: reversible when every '(' opens a capturing
  // group at the top level and the text between groups unescapes.
  std::size_t opens = 0;
  for (char ch : body) opens += ch == '(';
  if (opens == c->groups) {
    bool ok = true;
    std::vector<std::string> pieces;
    std::size_t pos = 0;
    std::string piece;
    for (;;) {
      std::size_t open = body.find('(', pos);
      std::string_view fragment = body.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos);
      if (!re_unescape(fragment, piece)) {
        ok = false;
        break;
      }
      if (open == std::string_view::npos) break;
      pieces.push_back(std::move(piece));
      piece.clear();
      std::size_t close = body.find(')', open);
      if (close == std::string_view::npos) {
        ok = false;
        break;
      }
      pos = close + 1;
    }
    if (ok) {
      pieces.push_back(std::move(piece));
      c->pieces = std::move(pieces);
      c->reversible = c->pieces.size() == c->groups + 1;
    }
  }
  c_ = std::move(c);
}

const std::string& PathPattern::pattern() const noexcept { return c_->pattern; }
bool PathPattern::is_literal() const noexcept { return c_->literal; }
const std::string& PathPattern::literal() const noexcept { return c_->literal_path; }
const std::vector<std::string>& PathPattern::group_names() const noexcept { return c_->named; }

bool PathPattern::match(std::string_view path, std::vector<std::string>& args,
                        std::map<std::string, std::string, std::less<>>& kwargs) const {
  const Compiled& c = *c_;
  if (c.literal) return path == c.literal_path;
  if (path.size() > kMaxRegexPathLength) return false;
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(path.begin(), path.end(), m, c.regex)) return false;
  args.clear();
  kwargs.clear();
  if (!c.named.empty()) {
    for (std::size_t g = 0; g < c.names.size() && g + 1 < m.size(); ++g) {
      if (c.names[g].empty()) continue;
      const auto& sub = m[g + 1];
      kwargs[c.names[g]] = sub.matched && sub.length() > 0
                               ? http::url_unescape(std::string_view(&*sub.first, sub.length()), false)
                               : std::string();
    }
  } else {
    args.reserve(m.size() - 1);
    for (std::size_t g = 1; g < m.size(); ++g) {
      const auto& sub = m[g];
      args.push_back(sub.matched && sub.length() > 0
                         ? http::url_unescape(std::string_view(&*sub.first, sub.length()), false)
                         : std::string());
    }
  }
  return true;
}

std::string PathPattern::reverse(const std::vector<std::string>& args) const {
  const Compiled& c = *c_;
  if (!c.reversible) throw std::invalid_argument("cannot reverse url regex " + c.pattern);
  if (args.size() != c.pieces.size() - 1) {
    throw std::invalid_argument("reverse of " + c.pattern + ": " + std::to_string(c.pieces.size() - 1) +
                                " arguments required, " + std::to_string(args.size()) + " given");
  }
  std::string out = c.pieces[0];
  for (std::size_t i = 0; i < args.size(); ++i) {
    out += http::url_escape(args[i], /*plus=*/false);
    out += c.pieces[i + 1];
  }
  return out;
}

}  // namespace squall::web
