// Parsing: template text → File (Tornado's _TemplateReader and _parse, with
// the same rules for braces, "{{!" escapes, comments and whitespace), and
// expression text → Expr trees (a recursive-descent parser for the Python
// subset described in docs/guide/templates.md, with Python's precedence).
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "web/template_ast.hpp"
#include "web/template_unicode.hpp"

namespace squall::web {

TemplateError::TemplateError(std::string message, std::string filename, int lineno)
    : Error(lineno > 0 ? filename + ":" + std::to_string(lineno) + ": " + message : filename + ": " + message),
      message_(std::move(message)),
      filename_(std::move(filename)),
      lineno_(lineno) {}

std::string filter_whitespace(Whitespace mode, std::string_view text) {
  if (mode == Whitespace::All || mode == Whitespace::ByName) return std::string(text);
  std::string collapsed;
  if (mode == Whitespace::Single) {
    // re.sub(r"([\t ]+)", " ", text)
    collapsed.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == ' ' || text[i] == '\t') {
        while (i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\t')) ++i;
        collapsed += ' ';
      } else {
        collapsed += text[i];
      }
    }
    text = collapsed;
  }
  // Single: re.sub(r"(\s*\n\s*)", "\n", text): a whitespace run holding a
  // newline becomes one newline. Oneline: re.sub(r"(\s+)", " ", text).
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    detail::Decoded d = detail::decode_utf8(text, i);
    if (!detail::is_space(d.cp)) {
      out.append(text, i, d.length);
      i += d.length;
      continue;
    }
    std::size_t start = i;
    bool newline = false;
    while (i < text.size()) {
      detail::Decoded w = detail::decode_utf8(text, i);
      if (!detail::is_space(w.cp)) break;
      newline = newline || w.cp == '\n';
      i += w.length;
    }
    if (mode == Whitespace::Oneline) {
      out += ' ';
    } else if (newline) {
      out += '\n';
    } else {
      out.append(text, start, i - start);
    }
  }
  return out;
}

namespace detail {

void throw_parse_error(const std::string& file, int line, std::string message) {
  throw ParseError(std::move(message), file, line);
}

void throw_template_error(const std::string& file, int line, std::string message) {
  throw TemplateError(std::move(message), file, line);
}

namespace {

constexpr std::size_t npos = std::string_view::npos;

// --- expressions ------------------------------------------------------------------------------

enum class Tok : std::uint8_t { End, Name, Int, Float, String, Punct };

struct Token {
  Tok kind = Tok::End;
  std::string_view text;  // Name, Punct: the characters
  std::string str;        // String: the decoded value
  std::int64_t i = 0;
  double f = 0;
};

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class ExprParser {
 public:
  ExprParser(std::string_view text, const std::string& file, int line, std::vector<std::string>& names,
             std::size_t max_nesting)
      : text_(text), file_(file), line_(line), names_(names), max_nesting_(max_nesting) {
    advance();
  }

  ExprPtr parse_full() {
    ExprPtr e = parse_expr();
    expect_end();
    return e;
  }

  ExprPtr parse_expr() {
    Depth guard(*this);
    ExprPtr cond_true = parse_or();
    if (is_keyword("if")) {
      advance();
      ExprPtr cond = parse_or();
      if (!is_keyword("else")) error("expected 'else' in conditional expression");
      advance();
      ExprPtr otherwise = parse_expr();
      ExprPtr e = make(ExprKind::IfElse);
      e->children.push_back(std::move(cond));
      e->children.push_back(std::move(cond_true));
      e->children.push_back(std::move(otherwise));
      return e;
    }
    return cond_true;
  }

  /// NAME or NAME, NAME ... (optionally in parentheses) for {% for %}.
  std::vector<std::uint32_t> parse_targets() {
    std::vector<std::uint32_t> targets;
    bool paren = is_punct("(");
    if (paren) advance();
    while (true) {
      if (tok_.kind != Tok::Name || is_reserved(tok_.text)) error("expected a variable name");
      targets.push_back(intern(tok_.text));
      advance();
      if (!is_punct(",")) break;
      advance();
      if (!paren && is_keyword("in")) break;
      if (paren && is_punct(")")) break;
    }
    if (paren) {
      if (!is_punct(")")) error("expected ')'");
      advance();
    }
    return targets;
  }

  bool is_keyword(std::string_view kw) const { return tok_.kind == Tok::Name && tok_.text == kw; }
  bool is_punct(std::string_view p) const { return tok_.kind == Tok::Punct && tok_.text == p; }
  const Token& token() const { return tok_; }
  void advance() { tok_ = lex(); }
  void expect_end() {
    if (tok_.kind != Tok::End) error("unexpected " + describe(tok_));
  }
  std::uint32_t intern(std::string_view name) {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return static_cast<std::uint32_t>(i);
    }
    names_.emplace_back(name);
    return static_cast<std::uint32_t>(names_.size() - 1);
  }
  [[noreturn]] void error(const std::string& message) const {
    throw_parse_error(file_, line_, message + " in expression: " + std::string(text_));
  }
  static bool is_reserved(std::string_view n) {
    static constexpr std::string_view kReserved[] = {"and", "or", "not", "in", "is", "if", "else", "True",
                                                     "False", "None", "lambda", "for"};
    for (auto r : kReserved) {
      if (n == r) return true;
    }
    return false;
  }

 private:
  struct Depth {
    explicit Depth(ExprParser& p) : p_(p) {
      if (++p_.depth_ > p_.max_nesting_) p_.error("expression nested too deeply");
    }
    ~Depth() { --p_.depth_; }
    ExprParser& p_;
  };

  ExprPtr make(ExprKind kind) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line_;
    return e;
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::End: return "end of expression";
      case Tok::String: return "string";
      case Tok::Int:
      case Tok::Float: return "number";
      default: return "'" + std::string(t.text) + "'";
    }
  }

  ExprPtr binary(ExprKind kind, Op op, ExprPtr a, ExprPtr b) {
    ExprPtr e = make(kind);
    e->op = op;
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_keyword("or")) {
      advance();
      e = binary(ExprKind::Or, Op::Add, std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_keyword("and")) {
      advance();
      e = binary(ExprKind::And, Op::Add, std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_keyword("not")) {
      Depth guard(*this);
      advance();
      ExprPtr e = make(ExprKind::Unary);
      e->op = Op::Not;
      e->children.push_back(parse_not());
      return e;
    }
    return parse_comparison();
  }

  bool comparison_op(Op& op) {
    if (tok_.kind == Tok::Punct) {
      std::string_view t = tok_.text;
      if (t == "==") op = Op::Eq;
      else if (t == "!=") op = Op::Ne;
      else if (t == "<") op = Op::Lt;
      else if (t == "<=") op = Op::Le;
      else if (t == ">") op = Op::Gt;
      else if (t == ">=") op = Op::Ge;
      else return false;
      advance();
      return true;
    }
    if (is_keyword("in")) {
      op = Op::In;
      advance();
      return true;
    }
    if (is_keyword("is")) {
      advance();
      op = Op::Is;
      if (is_keyword("not")) {
        op = Op::IsNot;
        advance();
      }
      return true;
    }
    if (is_keyword("not")) {
      // "not in" (a bare "not" here is a syntax error).
      std::size_t save_pos = pos_;
      Token save = tok_;
      advance();
      if (is_keyword("in")) {
        op = Op::NotIn;
        advance();
        return true;
      }
      pos_ = save_pos;
      tok_ = std::move(save);
      return false;
    }
    return false;
  }

  ExprPtr parse_comparison() {
    ExprPtr first = parse_arith();
    Op op;
    if (!comparison_op(op)) return first;
    ExprPtr e = make(ExprKind::Compare);
    e->children.push_back(std::move(first));
    do {
      e->cmp_ops.push_back(op);
      e->children.push_back(parse_arith());
    } while (comparison_op(op));
    return e;
  }

  ExprPtr parse_arith() {
    ExprPtr e = parse_term();
    while (is_punct("+") || is_punct("-")) {
      Op op = tok_.text == "+" ? Op::Add : Op::Sub;
      advance();
      e = binary(ExprKind::Binary, op, std::move(e), parse_term());
    }
    return e;
  }

  ExprPtr parse_term() {
    ExprPtr e = parse_factor();
    while (true) {
      Op op;
      if (is_punct("*")) op = Op::Mul;
      else if (is_punct("/")) op = Op::Div;
      else if (is_punct("//")) op = Op::FloorDiv;
      else if (is_punct("%")) op = Op::Mod;
      else break;
      advance();
      e = binary(ExprKind::Binary, op, std::move(e), parse_factor());
    }
    return e;
  }

  ExprPtr parse_factor() {
    if (is_punct("-") || is_punct("+")) {
      Depth guard(*this);
      Op op = tok_.text == "-" ? Op::Neg : Op::Pos;
      advance();
      ExprPtr e = make(ExprKind::Unary);
      e->op = op;
      e->children.push_back(parse_factor());
      return e;
    }
    return parse_power();
  }

  ExprPtr parse_power() {
    ExprPtr e = parse_postfix();
    if (is_punct("**")) {
      Depth guard(*this);
      advance();
      e = binary(ExprKind::Binary, Op::Pow, std::move(e), parse_factor());
    }
    return e;
  }

  ExprPtr parse_postfix() {
    ExprPtr e = parse_atom();
    std::size_t chain = 0;
    while (true) {
      if (++chain > max_nesting_) error("expression nested too deeply");
      if (is_punct(".")) {
        advance();
        if (tok_.kind != Tok::Name) error("expected an attribute name after '.'");
        ExprPtr a = make(ExprKind::Attr);
        a->name = std::string(tok_.text);
        a->children.push_back(std::move(e));
        e = std::move(a);
        advance();
      } else if (is_punct("[")) {
        advance();
        e = parse_subscript(std::move(e));
      } else if (is_punct("(")) {
        advance();
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr base) {
    ExprPtr parts[3];
    int colons = 0;
    if (!is_punct(":")) parts[0] = parse_expr();
    while (is_punct(":") && colons < 2) {
      advance();
      ++colons;
      if (!is_punct(":") && !is_punct("]")) parts[colons] = parse_expr();
    }
    if (!is_punct("]")) error("expected ']'");
    advance();
    if (colons == 0) {
      ExprPtr e = make(ExprKind::Index);
      e->children.push_back(std::move(base));
      e->children.push_back(std::move(parts[0]));
      return e;
    }
    ExprPtr e = make(ExprKind::Slice);
    e->children.push_back(std::move(base));
    for (auto& p : parts) e->children.push_back(std::move(p));
    return e;
  }

  ExprPtr parse_call(ExprPtr callee) {
    ExprPtr e = make(ExprKind::Call);
    e->children.push_back(std::move(callee));
    while (!is_punct(")")) {
      // NAME "=" expr is a keyword argument.
      if (tok_.kind == Tok::Name && !is_reserved(tok_.text)) {
        std::size_t save_pos = pos_;
        Token save = tok_;
        advance();
        if (is_punct("=")) {
          advance();
          e->keywords.emplace_back(save.text);
          e->children.push_back(parse_expr());
          if (!is_punct(",")) break;
          advance();
          continue;
        }
        pos_ = save_pos;
        tok_ = std::move(save);
      }
      if (!e->keywords.empty()) error("positional argument follows keyword argument");
      e->children.push_back(parse_expr());
      if (!is_punct(",")) break;
      advance();
    }
    if (!is_punct(")")) error("expected ')' or ','");
    advance();
    return e;
  }

  ExprPtr parse_atom() {
    switch (tok_.kind) {
      case Tok::End:
        error("unexpected end of expression");
      case Tok::Int: {
        ExprPtr e = make(ExprKind::Const);
        e->constant = tok_.i;
        advance();
        return e;
      }
      case Tok::Float: {
        ExprPtr e = make(ExprKind::Const);
        e->constant = tok_.f;
        advance();
        return e;
      }
      case Tok::String: {
        std::string s = std::move(tok_.str);
        advance();
        while (tok_.kind == Tok::String) {  // "a" "b": Python's implicit concatenation
          s += tok_.str;
          advance();
        }
        ExprPtr e = make(ExprKind::Const);
        e->constant = std::move(s);
        return e;
      }
      case Tok::Name: {
        std::string_view n = tok_.text;
        ExprPtr e = make(ExprKind::Const);
        if (n == "True") {
          e->constant = true;
        } else if (n == "False") {
          e->constant = false;
        } else if (n == "None") {
          e->constant = nullptr;
        } else if (is_reserved(n)) {
          error("unexpected '" + std::string(n) + "'");
        } else {
          e->kind = ExprKind::Name;
          e->name = std::string(n);
          e->name_index = intern(n);
        }
        advance();
        return e;
      }
      case Tok::Punct:
        break;
    }
    if (is_punct("(")) {
      advance();
      if (is_punct(")")) {  // () is an empty tuple
        advance();
        return make(ExprKind::List);
      }
      ExprPtr first = parse_expr();
      if (is_punct(")")) {
        advance();
        return first;
      }
      ExprPtr e = make(ExprKind::List);  // a tuple
      e->children.push_back(std::move(first));
      while (is_punct(",")) {
        advance();
        if (is_punct(")")) break;
        e->children.push_back(parse_expr());
      }
      if (!is_punct(")")) error("expected ')'");
      advance();
      return e;
    }
    if (is_punct("[")) {
      advance();
      ExprPtr e = make(ExprKind::List);
      while (!is_punct("]")) {
        e->children.push_back(parse_expr());
        if (!is_punct(",")) break;
        advance();
      }
      if (!is_punct("]")) error("expected ']'");
      advance();
      return e;
    }
    if (is_punct("{")) {
      advance();
      ExprPtr e = make(ExprKind::Dict);
      while (!is_punct("}")) {
        e->children.push_back(parse_expr());
        if (!is_punct(":")) error("expected ':' in dict literal");
        advance();
        e->children.push_back(parse_expr());
        if (!is_punct(",")) break;
        advance();
      }
      if (!is_punct("}")) error("expected '}'");
      advance();
      return e;
    }
    error("unexpected " + describe(tok_));
  }

  // --- lexer ---

  Token lex() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\f' || text_[pos_] == '\v')) {
      ++pos_;
    }
    Token t;
    if (pos_ >= text_.size()) return t;
    char c = text_[pos_];
    std::size_t start = pos_;
    if (is_ident_start(c)) {
      while (pos_ < text_.size() && is_ident_char(text_[pos_])) ++pos_;
      t.kind = Tok::Name;
      t.text = text_.substr(start, pos_ - start);
      return t;
    }
    if (is_digit(c) || (c == '.' && pos_ + 1 < text_.size() && is_digit(text_[pos_ + 1]))) return lex_number();
    if (c == '"' || c == '\'') return lex_string();
    static constexpr std::string_view kPuncts[] = {"**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}",
                                                   ",", ":", ".", "+", "-", "*", "/", "%", "<", ">", "="};
    for (std::string_view p : kPuncts) {
      if (text_.substr(pos_, p.size()) == p) {
        pos_ += p.size();
        t.kind = Tok::Punct;
        t.text = p;
        return t;
      }
    }
    if (static_cast<unsigned char>(c) >= 0x80) error("non-ASCII character outside a string");
    error(std::string("unexpected character '") + c + "'");
  }

  Token lex_number() {
    Token t;
    std::size_t start = pos_;
    std::string digits;
    auto take_digits = [&](auto valid) {
      bool last_underscore = true;
      while (pos_ < text_.size() && (valid(text_[pos_]) || text_[pos_] == '_')) {
        if (text_[pos_] == '_') {
          if (last_underscore) error("invalid number");
          last_underscore = true;
        } else {
          digits += text_[pos_];
          last_underscore = false;
        }
        ++pos_;
      }
      if (last_underscore && !digits.empty() && text_[pos_ - 1] == '_') error("invalid number");
    };
    if (text_[pos_] == '0' && pos_ + 1 < text_.size() && (text_[pos_ + 1] == 'x' || text_[pos_ + 1] == 'X')) {
      pos_ += 2;
      take_digits([](char ch) {
        return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
      });
      std::uint64_t v = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, 16);
      if (digits.empty() || ec != std::errc() || v > static_cast<std::uint64_t>(INT64_MAX)) {
        error("invalid or too large integer literal");
      }
      t.kind = Tok::Int;
      t.i = static_cast<std::int64_t>(v);
      return t;
    }
    take_digits(is_digit);
    bool is_float = false;
    if (pos_ < text_.size() && text_[pos_] == '.' &&
        !(pos_ + 1 < text_.size() && is_ident_start(text_[pos_ + 1]))) {
      is_float = true;
      digits += '.';
      ++pos_;
      if (pos_ < text_.size() && is_digit(text_[pos_])) take_digits(is_digit);
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      std::size_t save = pos_;
      std::string save_digits = digits;
      digits += 'e';
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) digits += text_[pos_++];
      if (pos_ < text_.size() && is_digit(text_[pos_])) {
        take_digits(is_digit);
        is_float = true;
      } else {
        pos_ = save;
        digits = std::move(save_digits);
      }
    }
    if (pos_ < text_.size() && is_ident_char(text_[pos_])) error("invalid number");
    if (is_float) {
      if (digits[0] == '.') digits.insert(digits.begin(), '0');
      if (std::size_t dot = digits.find('.'); dot != std::string::npos &&
                                             (dot + 1 == digits.size() || !is_digit(digits[dot + 1]))) {
        digits.insert(dot + 1, "0");  // "2." and "2.e5": from_chars wants a digit after the point
      }
      double v = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (ec == std::errc::result_out_of_range) {
        // Python reads overflowing literals as inf and underflowing ones as 0.
        v = digits.find("e-") != std::string::npos ? 0.0 : HUGE_VAL;
      } else if (ec != std::errc()) {
        error("invalid number");
      }
      t.kind = Tok::Float;
      t.f = v;
      return t;
    }
    if (digits.size() > 1 && digits[0] == '0' && digits.find_first_not_of('0') != std::string::npos) {
      error("leading zeros in a decimal integer literal are not permitted");
    }
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || p != digits.data() + digits.size()) error("integer literal too large");
    (void)start;
    t.kind = Tok::Int;
    t.i = v;
    return t;
  }

  int hex_digits(std::size_t at, std::size_t n) const {
    if (at + n > text_.size()) return -1;
    int v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      char h = text_[at + k];
      int d;
      if (is_digit(h)) d = h - '0';
      else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
      else return -1;
      v = v * 16 + d;
    }
    return v;
  }

  Token lex_string() {
    char quote = text_[pos_++];
    Token t;
    t.kind = Tok::String;
    std::string& s = t.str;
    while (true) {
      if (pos_ >= text_.size() || text_[pos_] == '\n') error("unterminated string literal");
      char c = text_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        s += c;
        continue;
      }
      if (pos_ >= text_.size()) error("unterminated string literal");
      char e = text_[pos_++];
      switch (e) {
        case '\n': break;
        case '\\': s += '\\'; break;
        case '\'': s += '\''; break;
        case '"': s += '"'; break;
        case 'a': s += '\a'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'v': s += '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          long v = 0;
          if (n == 8) {
            int hi = hex_digits(pos_, 4), lo = hex_digits(pos_ + 4, 4);
            v = hi < 0 || lo < 0 ? -1 : (static_cast<long>(hi) << 16) | lo;
          } else {
            v = hex_digits(pos_, n);
          }
          if (v < 0) error(std::string("truncated \\") + e + " escape");
          if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) error("escape is not a Unicode scalar value");
          pos_ += n;
          append_utf8(s, static_cast<char32_t>(v));
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            int v = e - '0';
            for (int k = 0; k < 2 && pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '7'; ++k) {
              v = v * 8 + (text_[pos_++] - '0');
            }
            append_utf8(s, static_cast<char32_t>(v));
          } else {
            s += '\\';  // Python keeps unknown escapes
            s += e;
          }
      }
    }
    return t;
  }

  std::string_view text_;
  const std::string& file_;
  int line_;
  std::vector<std::string>& names_;
  std::size_t max_nesting_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  Token tok_;
};

// --- templates --------------------------------------------------------------------------------

/// Tornado's _TemplateReader: a cursor over the source counting lines.
struct Reader {
  std::string_view text;
  std::size_t pos = 0;
  int line = 1;
  Whitespace whitespace = Whitespace::All;

  std::size_t remaining() const { return text.size() - pos; }
  /// Offset from pos of `needle` at or after pos + start, or npos.
  std::size_t find(std::string_view needle, std::size_t start = 0) const {
    std::size_t i = text.find(needle, pos + start);
    return i == npos ? npos : i - pos;
  }
  char at(std::size_t offset) const { return text[pos + offset]; }
  std::string_view consume(std::size_t count) {
    count = std::min(count, remaining());
    std::string_view s = text.substr(pos, count);
    for (char c : s) line += c == '\n';
    pos += count;
    return s;
  }
};

class TemplateParser {
 public:
  TemplateParser(std::string_view source, File& file, const TemplateOptions& options)
      : file_(file), options_(options) {
    reader_.text = source;
    Whitespace ws = options.whitespace;
    if (ws == Whitespace::ByName) {
      std::string_view n = file.name;
      bool html_or_js = (n.size() >= 5 && n.substr(n.size() - 5) == ".html") ||
                        (n.size() >= 3 && n.substr(n.size() - 3) == ".js");
      ws = html_or_js ? Whitespace::Single : Whitespace::All;
    }
    reader_.whitespace = ws;
  }

  Body parse_file() {
    Body body;
    End end = parse_body(body, nullptr, false, 0, 0);
    (void)end;
    return body;
  }

 private:
  /// How a nested body ended: the intermediate or end tag that closed it.
  struct End {
    std::string op;      // "end", "else", "elif", "except", "finally"; empty at EOF
    std::string suffix;  // the rest of the tag
    int line = 0;
  };

  [[noreturn]] void error(const std::string& message, int line = 0) const {
    throw_parse_error(file_.name, line > 0 ? line : reader_.line, message);
  }

  void add_text(Body& body, std::string_view value) {
    // Tornado's crude heuristic to keep preformatted text intact.
    std::string text = value.find("<pre>") == npos ? filter_whitespace(reader_.whitespace, value) : std::string(value);
    if (text.empty()) return;
    if (!body.empty() && body.back().kind == NodeKind::Text) {
      body.back().text += text;
      return;
    }
    Node n;
    n.kind = NodeKind::Text;
    n.line = reader_.line;
    n.text = std::move(text);
    body.push_back(std::move(n));
  }

  ExprPtr expression(std::string_view text, int line) {
    ExprParser p(text, file_.name, line, file_.names, options_.max_nesting);
    return p.parse_full();
  }

  static std::string_view strip(std::string_view s) { return strip_space(s); }

  static std::string strip_quotes(std::string_view s) {
    // Python's suffix.strip('"').strip("'")
    auto strip_char = [](std::string_view v, char q) {
      while (!v.empty() && v.front() == q) v.remove_prefix(1);
      while (!v.empty() && v.back() == q) v.remove_suffix(1);
      return v;
    };
    return std::string(strip_char(strip_char(s, '"'), '\''));
  }

  /// Parses until EOF (in_block null) or a closing tag of `in_block`.
  End parse_body(Body& body, const char* in_block, bool in_loop, int block_line, std::size_t depth) {
    if (depth > options_.max_nesting) error("tags nested too deeply");
    while (true) {
      std::size_t curly = 0;
      while (true) {
        curly = reader_.find("{", curly);
        if (curly == npos || curly + 1 == reader_.remaining()) {
          if (in_block) {
            error(std::string("Missing {% end %} block for ") + in_block, block_line);
          }
          add_text(body, reader_.consume(reader_.remaining()));
          return End{};
        }
        char next = reader_.at(curly + 1);
        if (next != '{' && next != '%' && next != '#') {
          ++curly;
          continue;
        }
        // More than two curlies in a row: use the innermost ones (LaTeX).
        if (curly + 2 < reader_.remaining() && next == '{' && reader_.at(curly + 2) == '{') {
          ++curly;
          continue;
        }
        break;
      }
      if (curly > 0) add_text(body, reader_.consume(curly));

      std::string_view start_brace = reader_.consume(2);
      int line = reader_.line;

      if (reader_.remaining() && reader_.at(0) == '!') {  // "{{!", "{%!", "{#!": literal braces
        reader_.consume(1);
        add_text(body, start_brace);
        continue;
      }
      if (start_brace == "{#") {
        std::size_t end = reader_.find("#}");
        if (end == npos) error("Missing end comment #}");
        reader_.consume(end + 2);
        continue;
      }
      if (start_brace == "{{") {
        std::size_t end = reader_.find("}}");
        if (end == npos) error("Missing end expression }}");
        std::string_view contents = strip(reader_.consume(end));
        reader_.consume(2);
        if (contents.empty()) error("Empty expression", line);
        Node n;
        n.kind = NodeKind::Output;
        n.line = line;
        n.expr = expression(contents, line);
        body.push_back(std::move(n));
        continue;
      }
      std::size_t end = reader_.find("%}");
      if (end == npos) error("Missing end block %}");
      std::string_view contents = strip(reader_.consume(end));
      reader_.consume(2);
      if (contents.empty()) error("Empty block tag ({% %})", line);

      std::size_t space = contents.find(' ');
      std::string op(contents.substr(0, space));
      std::string_view suffix = space == npos ? std::string_view() : strip(contents.substr(space + 1));

      if (op == "else" || op == "elif" || op == "except" || op == "finally") {
        const char* allowed = op == "else" ? "if, for, while or try" : op == "elif" ? "if" : "try";
        if (!in_block) error(op + " outside " + allowed + " block", line);
        std::string_view parent = in_block;
        bool ok = op == "else" ? (parent == "if" || parent == "for" || parent == "while" || parent == "try")
                               : op == "elif" ? parent == "if" : parent == "try";
        if (!ok) error(op + " block cannot be attached to " + std::string(parent) + " block", line);
        return End{op, std::string(suffix), line};
      }
      if (op == "end") {
        if (!in_block) error("Extra {% end %} block", line);
        return End{op, std::string(suffix), line};
      }
      if (op == "comment") continue;
      if (op == "extends" || op == "include") {
        std::string name = strip_quotes(suffix);
        if (name.empty()) error(op + " missing file path", line);
        if (op == "extends" && in_block) error("{% extends %} must be at the top level of the template", line);
        Node n;
        n.kind = op == "extends" ? NodeKind::Extends : NodeKind::Include;
        n.line = line;
        n.text = std::move(name);
        body.push_back(std::move(n));
        continue;
      }
      if (op == "import" || op == "from") {
        error("{% " + op + " %} is not supported: templates cannot run Python; register a function instead", line);
      }
      if (op == "module") error("{% module %} is not supported: UI modules are not part of squall", line);
      if (op == "set") {
        if (suffix.empty()) error("set missing statement", line);
        body.push_back(parse_set(suffix, line));
        continue;
      }
      if (op == "autoescape") {
        if (suffix.empty()) error("autoescape missing function name", line);
        if (suffix == "None") {
          file_.autoescape.reset();
        } else {
          for (char c : suffix) {
            if (!is_ident_char(c)) error("autoescape needs a function name or None", line);
          }
          file_.autoescape = std::string(suffix);
        }
        continue;
      }
      if (op == "whitespace") {
        if (suffix == "all") reader_.whitespace = Whitespace::All;
        else if (suffix == "single") reader_.whitespace = Whitespace::Single;
        else if (suffix == "oneline") reader_.whitespace = Whitespace::Oneline;
        else error("invalid whitespace mode " + std::string(suffix), line);
        continue;
      }
      if (op == "raw") {
        if (suffix.empty()) error("raw missing expression", line);
        Node n;
        n.kind = NodeKind::Output;
        n.raw = true;
        n.line = line;
        n.expr = expression(suffix, line);
        body.push_back(std::move(n));
        continue;
      }
      if (op == "break" || op == "continue") {
        if (!in_loop) error(op + " outside for or while block", line);
        if (!suffix.empty()) error("unexpected text after " + op, line);
        Node n;
        n.kind = op == "break" ? NodeKind::Break : NodeKind::Continue;
        n.line = line;
        body.push_back(std::move(n));
        continue;
      }
      if (op == "if") {
        body.push_back(parse_if(suffix, line, in_loop, depth));
        continue;
      }
      if (op == "for" || op == "while") {
        body.push_back(parse_loop(op, suffix, line, in_loop, depth));
        continue;
      }
      if (op == "try") {
        body.push_back(parse_try(suffix, line, in_loop, depth));
        continue;
      }
      if (op == "block" || op == "apply") {
        if (suffix.empty()) error(op == "block" ? "block missing name" : "apply missing method name", line);
        Node n;
        n.line = line;
        if (op == "block") {
          n.kind = NodeKind::Block;
          n.text = std::string(suffix);
        } else {
          n.kind = NodeKind::Apply;
          n.expr = expression(suffix, line);
        }
        // apply runs its body as a nested function: not inside the loop.
        End e = parse_body(n.body, op == "block" ? "block" : "apply", op == "block" && in_loop, line, depth + 1);
        expect_end(e, op);
        body.push_back(std::move(n));
        continue;
      }
      error("unknown operator: '" + op + "'", line);
    }
  }

  void expect_end(const End& e, const std::string& block) {
    if (e.op != "end") error("expected {% end %} for " + block, e.line);
    if (!e.suffix.empty()) error("unexpected text after end", e.line);
  }

  Node parse_set(std::string_view statement, int line) {
    ExprParser p(statement, file_.name, line, file_.names, options_.max_nesting);
    if (p.token().kind != Tok::Name || ExprParser::is_reserved(p.token().text)) {
      p.error("set needs 'name = expression'");
    }
    Node n;
    n.kind = NodeKind::Set;
    n.line = line;
    n.targets.push_back(p.intern(p.token().text));
    p.advance();
    static constexpr std::pair<std::string_view, Op> kAugmented[] = {
        {"+", Op::Add}, {"-", Op::Sub}, {"*", Op::Mul}, {"/", Op::Div}, {"//", Op::FloorDiv}, {"%", Op::Mod}};
    if (!p.is_punct("=")) {
      bool found = false;
      for (auto [text, op] : kAugmented) {
        if (p.is_punct(text)) {
          p.advance();
          if (!p.is_punct("=")) break;
          n.augmented = true;
          n.set_op = op;
          found = true;
          break;
        }
      }
      if (!found) p.error("set needs 'name = expression'");
    }
    p.advance();
    n.expr = p.parse_expr();
    p.expect_end();
    return n;
  }

  Node parse_if(std::string_view condition, int line, bool in_loop, std::size_t depth) {
    Node n;
    n.kind = NodeKind::If;
    n.line = line;
    if (condition.empty()) error("if missing condition", line);
    ExprPtr cond = expression(condition, line);
    while (true) {
      Body body;
      End e = parse_body(body, "if", in_loop, line, depth + 1);
      n.branches.emplace_back(std::move(cond), std::move(body));
      if (e.op == "elif") {
        if (!n.branches.back().first) error("elif after else", e.line);
        if (e.suffix.empty()) error("elif missing condition", e.line);
        cond = expression(e.suffix, e.line);
        continue;
      }
      if (e.op == "else") {
        if (!n.branches.back().first) error("else after else", e.line);
        if (!e.suffix.empty()) error("unexpected text after else", e.line);
        cond = nullptr;
        continue;
      }
      expect_end(e, "if");
      return n;
    }
  }

  Node parse_loop(const std::string& op, std::string_view header, int line, bool outer_in_loop, std::size_t depth) {
    Node n;
    n.line = line;
    if (header.empty()) error(op + " missing " + (op == "for" ? "'x in expression'" : "condition"), line);
    if (op == "while") {
      n.kind = NodeKind::While;
      n.expr = expression(header, line);
    } else {
      n.kind = NodeKind::For;
      ExprParser p(header, file_.name, line, file_.names, options_.max_nesting);
      n.targets = p.parse_targets();
      if (!p.is_keyword("in")) p.error("for needs 'name in expression'");
      p.advance();
      n.expr = p.parse_expr();
      p.expect_end();
      // d.items() / d.keys() / d.values(): iterate d in place when it is a dict.
      const Expr& it = *n.expr;
      if (it.kind == ExprKind::Call && it.children.size() == 1 && it.children[0]->kind == ExprKind::Attr) {
        const std::string& m = it.children[0]->name;
        n.iter_method = m == "items" ? IterMethod::Items : m == "keys" ? IterMethod::Keys
                                                        : m == "values" ? IterMethod::Values : IterMethod::None;
      }
    }
    End e = parse_body(n.body, op.c_str(), true, line, depth + 1);
    if (e.op == "else") {
      if (!e.suffix.empty()) error("unexpected text after else", e.line);
      n.has_else = true;
      // A loop's else is not inside the loop (Python).
      e = parse_body(n.else_body, op.c_str(), outer_in_loop, line, depth + 1);
      if (e.op != "end") error(e.op + " after else in " + op, e.line);
    }
    expect_end(e, op);
    return n;
  }

  Node parse_try(std::string_view suffix, int line, bool in_loop, std::size_t depth) {
    if (!suffix.empty()) error("unexpected text after try", line);
    Node n;
    n.kind = NodeKind::Try;
    n.line = line;
    End e = parse_body(n.body, "try", in_loop, line, depth + 1);
    while (e.op != "end") {
      if (e.op == "except") {
        if (n.has_except || n.has_else || n.has_finally) error("misplaced except", e.line);
        if (!e.suffix.empty()) {
          error("only a bare {% except %} is supported: template errors have no types", e.line);
        }
        n.has_except = true;
        e = parse_body(n.except_body, "try", in_loop, line, depth + 1);
      } else if (e.op == "else") {
        if (!n.has_except || n.has_else || n.has_finally) error("else in try needs a preceding except", e.line);
        n.has_else = true;
        e = parse_body(n.else_body, "try", in_loop, line, depth + 1);
      } else if (e.op == "finally") {
        if (n.has_finally) error("misplaced finally", e.line);
        if (!e.suffix.empty()) error("unexpected text after finally", e.line);
        n.has_finally = true;
        e = parse_body(n.finally_body, "try", in_loop, line, depth + 1);
      } else {
        error(e.op + " in try", e.line);
      }
    }
    expect_end(e, "try");
    if (!n.has_except && !n.has_finally) error("try needs an except or finally block", line);
    return n;
  }

  File& file_;
  const TemplateOptions& options_;
  Reader reader_;
};

}  // namespace

std::shared_ptr<const File> parse_template(std::string_view source, const std::string& name,
                                           const TemplateOptions& options) {
  auto file = std::make_shared<File>();
  file->name = name;
  file->autoescape = options.autoescape;
  TemplateParser parser(source, *file, options);
  file->body = parser.parse_file();
  return file;
}

ExprPtr parse_expression(std::string_view text, const std::string& name, int line, std::vector<std::string>& names,
                         std::size_t max_nesting) {
  ExprParser p(text, name, line, names, max_nesting);
  return p.parse_full();
}

}  // namespace detail
}  // namespace squall::web
